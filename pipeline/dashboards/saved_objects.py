"""The "Clickstream" dashboard and everything it stands on, built from the index templates (pure).

Index patterns take their field lists from the templates' own mappings, so a field the
sink stops writing disappears from the patterns, and a test holds every visualization
to fields that exist there with an aggregatable type. Ids are derived from the index
prefix, so importing again (with overwrite) replaces the same objects: idempotent.

Rates (bounce, engagement, conversion) are averages of 0/1 scripted fields over the
sessions' boolean flags: Dashboards' average aggregation accepts numbers only, and a
scripted field keeps the definition where the flag already is (the session document,
computed by PostgreSQL as ``pipeline/sessions/columns.py`` declares).

Saved objects carry no ``migrationVersion``, so Dashboards runs its own migrations on
import and the file works across Dashboards 1.x and 2.x.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from pipeline.contract.names import DEFAULT_INDEX_PREFIX, IndexNames
from pipeline.dashboards.ndjson import Reference, SavedObject, dumps
from pipeline.sinks.opensearch.mappings import EVENT_PROPERTIES, SESSION_PROPERTIES

SHIPPED_FILE: Final = Path(__file__).with_name("clickstream.ndjson")
"""The objects for the default prefix, for a manual import (Dashboards Management > Saved objects > Import)."""

INDEX_REF: Final = "kibanaSavedObjectMeta.searchSourceJSON.index"
"""The reference name Dashboards uses for a visualization's or search's index pattern."""

PANEL_VERSION: Final = "7.10.2"
"""The saved-object format version of the panels (Dashboards' upstream base); migrations start from it."""

GRID_COLUMNS: Final = 48

NUMBER_TYPES: Final = frozenset({"byte", "short", "integer", "long", "float", "double", "scaled_float"})
_DASHBOARDS_TYPES: Final = {"keyword": "string", "text": "string", "date": "date", "boolean": "boolean"}

RATE_FIELDS: Final[Mapping[str, str]] = {
    "bounce_rate": "is_bounce",
    "engagement_rate": "is_engaged",
    "conversion_rate": "converted",
}
"""Scripted 0/1 fields of the sessions pattern -> the boolean session field each one reads."""


@dataclass(frozen=True)
class FieldSpec:
    name: str
    mapping_type: str
    indexed: bool = True
    doc_values: bool = True

    @property
    def aggregatable(self) -> bool:
        """Doc values exist for every mapped type here except ``text``, unless the mapping turns them off."""
        return self.mapping_type != "text" and self.doc_values

    def to_json(self) -> dict[str, Any]:
        kind = "number" if self.mapping_type in NUMBER_TYPES else _DASHBOARDS_TYPES[self.mapping_type]
        spec: dict[str, Any] = {
            "name": self.name,
            "type": kind,
            "esTypes": [self.mapping_type],
            "count": 0,
            "scripted": False,
            "searchable": self.indexed,
            "aggregatable": self.aggregatable,
            "readFromDocValues": self.aggregatable,
        }
        if "." in self.name:
            spec["subType"] = {"multi": {"parent": self.name.rsplit(".", 1)[0]}}
        return spec


def _field_spec(name: str, spec: Mapping[str, Any]) -> FieldSpec:
    return FieldSpec(name, spec["type"], spec.get("index", True), spec.get("doc_values", True))


def field_specs(properties: Mapping[str, Mapping[str, Any]]) -> list[FieldSpec]:
    """Every field of a mapping, multi-fields (``search_query.keyword``) included."""
    out: list[FieldSpec] = []
    for name, spec in properties.items():
        out.append(_field_spec(name, spec))
        for sub, sub_spec in spec.get("fields", {}).items():
            out.append(_field_spec(f"{name}.{sub}", sub_spec))
    return out


def _rate_script(flag: str) -> str:
    return f"doc['{flag}'].size() > 0 && doc['{flag}'].value ? 1 : 0"


def _scripted_rate(name: str, flag: str) -> dict[str, Any]:
    return {
        "name": name,
        "type": "number",
        "count": 0,
        "scripted": True,
        "script": _rate_script(flag),
        "lang": "painless",
        "searchable": True,
        "aggregatable": True,
        "readFromDocValues": False,
    }


def _json(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def dashboard_title(prefix: str) -> str:
    return "Clickstream" if prefix == DEFAULT_INDEX_PREFIX else f"Clickstream ({prefix})"


# --- building blocks -----------------------------------------------------------------------


def _index_pattern(
    object_id: str,
    title: str,
    time_field: str,
    properties: Mapping[str, Mapping[str, Any]],
    scripted: list[dict[str, Any]],
    formats: dict[str, Any],
) -> SavedObject:
    fields = [f.to_json() for f in field_specs(properties)] + scripted
    return SavedObject(
        "index-pattern",
        object_id,
        {
            "title": title,
            "timeFieldName": time_field,
            "fields": _json(fields),
            "fieldFormatMap": _json(formats),
        },
    )


def _search_source(query: str = "", *, with_index: bool = True) -> str:
    source: dict[str, Any] = {"query": {"query": query, "language": "kuery"}, "filter": []}
    if with_index:
        source["indexRefName"] = INDEX_REF
    return _json(source)


def _visualization(
    object_id: str,
    title: str,
    pattern_id: str,
    vis_type: str,
    params: dict[str, Any],
    aggs: list[dict[str, Any]],
    *,
    query: str = "",
    description: str = "",
) -> SavedObject:
    state = {"title": title, "type": vis_type, "params": params, "aggs": aggs}
    return SavedObject(
        "visualization",
        object_id,
        {
            "title": title,
            "description": description,
            "version": 1,
            "uiStateJSON": "{}",
            "visState": _json(state),
            "kibanaSavedObjectMeta": {"searchSourceJSON": _search_source(query)},
        },
        (Reference(INDEX_REF, "index-pattern", pattern_id),),
    )


def _agg(agg_id: int, agg_type: str, schema: str, **params: Any) -> dict[str, Any]:
    return {"id": str(agg_id), "enabled": True, "type": agg_type, "schema": schema, "params": params}


def _count(agg_id: int = 1, label: str = "") -> dict[str, Any]:
    return _agg(agg_id, "count", "metric", **({"customLabel": label} if label else {}))


def _metric(agg_id: int, agg_type: str, field: str, label: str) -> dict[str, Any]:
    return _agg(agg_id, agg_type, "metric", field=field, customLabel=label)


def _over_time(agg_id: int, field: str) -> dict[str, Any]:
    return _agg(
        agg_id,
        "date_histogram",
        "segment",
        field=field,
        interval="auto",
        min_doc_count=1,
        useNormalizedOpenSearchInterval=True,
        scaleMetricValues=False,
        drop_partials=False,
        extended_bounds={},
    )


def _terms(agg_id: int, schema: str, field: str, size: int, label: str = "") -> dict[str, Any]:
    params: dict[str, Any] = {
        "field": field,
        "size": size,
        "order": "desc",
        "orderBy": "1",
        "otherBucket": False,
        "otherBucketLabel": "Other",
        "missingBucket": False,
        "missingBucketLabel": "Missing",
    }
    if label:
        params["customLabel"] = label
    return _agg(agg_id, "terms", schema, **params)


def _xy(
    chart: str,
    metrics: list[tuple[str, str]],
    *,
    mode: str = "normal",
    horizontal: bool = False,
    axis_title: str = "",
    percent: bool = False,
) -> dict[str, Any]:
    """Params of a line/bar chart; ``metrics`` are (agg id, label) pairs drawn as ``chart`` series."""
    series_type = "histogram" if chart == "horizontal_bar" else chart
    category = {
        "id": "CategoryAxis-1",
        "type": "category",
        "position": "left" if horizontal else "bottom",
        "show": True,
        "style": {},
        "scale": {"type": "linear"},
        "labels": {"show": True, "filter": not horizontal, "truncate": 200},
        "title": {},
    }
    value = {
        "id": "ValueAxis-1",
        "name": "BottomAxis-1" if horizontal else "LeftAxis-1",
        "type": "value",
        "position": "bottom" if horizontal else "left",
        "show": True,
        "style": {},
        "scale": {"type": "linear", "mode": "normal", **({"setYExtents": True, "min": 0, "max": 1} if percent else {})},
        "labels": {"show": True, "rotate": 0, "filter": False, "truncate": 100},
        "title": {"text": axis_title},
    }
    series = [
        {
            "show": True,
            "type": series_type,
            "mode": mode,
            "data": {"label": label, "id": agg_id},
            "valueAxis": "ValueAxis-1",
            "drawLinesBetweenPoints": True,
            "lineWidth": 2,
            "showCircles": True,
            "interpolate": "linear",
        }
        for agg_id, label in metrics
    ]
    return {
        "type": chart,
        "grid": {"categoryLines": False},
        "categoryAxes": [category],
        "valueAxes": [value],
        "seriesParams": series,
        "addTooltip": True,
        "addLegend": True,
        "legendPosition": "right",
        "times": [],
        "addTimeMarker": False,
        "labels": {"show": horizontal},
        "thresholdLine": {"show": False, "value": 10, "width": 1, "style": "full", "color": "#E7664C"},
    }


def _pie() -> dict[str, Any]:
    return {
        "type": "pie",
        "addTooltip": True,
        "addLegend": True,
        "legendPosition": "right",
        "isDonut": True,
        "labels": {"show": True, "values": True, "last_level": True, "truncate": 100},
    }


def _table(per_page: int = 10) -> dict[str, Any]:
    return {
        "perPage": per_page,
        "showPartialRows": False,
        "showMetricsAtAllLevels": False,
        "sort": {"columnIndex": None, "direction": None},
        "showTotal": False,
        "totalFunc": "sum",
        "percentageCol": "",
    }


def _metric_tiles() -> dict[str, Any]:
    return {
        "addTooltip": True,
        "addLegend": False,
        "type": "metric",
        "metric": {
            "percentageMode": False,
            "useRanges": False,
            "colorSchema": "Green to Red",
            "metricColorMode": "None",
            "colorsRange": [{"from": 0, "to": 10000}],
            "labels": {"show": True},
            "invertColors": False,
            "style": {"bgFill": "#000", "bgColor": False, "labelColor": False, "subText": "", "fontSize": 36},
        },
    }


FUNNEL_STEPS: Final = (
    ("page_view", "page_views > 0"),
    ("add_to_cart", "page_views > 0 and add_to_carts > 0"),
    ("purchase", "page_views > 0 and add_to_carts > 0 and purchases > 0"),
)
"""Nested steps over session counters, the same nesting as ``pipeline summary``'s funnel."""

RECENT_PURCHASE_COLUMNS: Final = (
    "order_id",
    "revenue",
    "user_id",
    "session_id",
    "country",
    "device_type",
    "utm_source",
)


# --- the objects ---------------------------------------------------------------------------


def build(prefix: str = DEFAULT_INDEX_PREFIX) -> list[SavedObject]:
    """Index patterns, visualizations, the recent-purchases search and the dashboard, for one prefix."""
    names = IndexNames(prefix)

    def oid(slug: str) -> str:
        return f"{prefix}-{slug}"

    money = {"id": "number", "params": {"pattern": "0,0.00"}}
    events_pattern = _index_pattern(
        oid("events"), names.events_alias, "occurred_at", EVENT_PROPERTIES, [], {"price": money, "revenue": money}
    )
    sessions_pattern = _index_pattern(
        oid("sessions"),
        names.sessions_alias,
        "started_at",
        SESSION_PROPERTIES,
        [_scripted_rate(name, flag) for name, flag in RATE_FIELDS.items()],
        {"revenue": money, **{name: {"id": "percent"} for name in RATE_FIELDS}},
    )
    ev, se = events_pattern.id, sessions_pattern.id
    visualizations = [
        _visualization(
            oid("kpis"),
            "Sessions, users, revenue and rates",
            se,
            "metric",
            _metric_tiles(),
            [
                _count(1, "Sessions"),
                _metric(2, "cardinality", "user_id", "Users"),
                _metric(3, "sum", "revenue", "Revenue"),
                _metric(4, "avg", "bounce_rate", "Bounce rate"),
                _metric(5, "avg", "engagement_rate", "Engagement rate"),
                _metric(6, "avg", "conversion_rate", "Conversion rate"),
            ],
        ),
        _visualization(
            oid("events-over-time"),
            "Events over time, by type",
            ev,
            "histogram",
            _xy("histogram", [("1", "Events")], mode="stacked", axis_title="Events"),
            [_count(1, "Events"), _over_time(2, "occurred_at"), _terms(3, "group", "event_type", 5)],
        ),
        _visualization(
            oid("sessions-over-time"),
            "Sessions and users over time",
            se,
            "line",
            _xy("line", [("1", "Sessions"), ("2", "Users")]),
            [_count(1, "Sessions"), _metric(2, "cardinality", "user_id", "Users"), _over_time(3, "started_at")],
        ),
        _visualization(
            oid("rates-over-time"),
            "Bounce, engagement and conversion rate over time",
            se,
            "line",
            _xy(
                "line",
                [("1", "Bounce rate"), ("2", "Engagement rate"), ("3", "Conversion rate")],
                axis_title="Share of sessions",
                percent=True,
            ),
            [
                _metric(1, "avg", "bounce_rate", "Bounce rate"),
                _metric(2, "avg", "engagement_rate", "Engagement rate"),
                _metric(3, "avg", "conversion_rate", "Conversion rate"),
                _over_time(4, "started_at"),
            ],
        ),
        _visualization(
            oid("revenue-over-time"),
            "Revenue over time",
            ev,
            "histogram",
            _xy("histogram", [("1", "Revenue")], axis_title="Revenue"),
            [_metric(1, "sum", "revenue", "Revenue"), _over_time(2, "occurred_at")],
            query="event_type:purchase",
        ),
        _visualization(
            oid("funnel"),
            "Funnel: page view, add to cart, purchase (sessions)",
            se,
            "horizontal_bar",
            _xy("horizontal_bar", [("1", "Sessions")], horizontal=True, axis_title="Sessions"),
            [
                _count(1, "Sessions"),
                _agg(
                    2,
                    "filters",
                    "segment",
                    filters=[
                        {"input": {"query": query, "language": "kuery"}, "label": label}
                        for label, query in FUNNEL_STEPS
                    ],
                ),
            ],
        ),
        _visualization(
            oid("top-pages"),
            "Top pages (page views)",
            ev,
            "table",
            _table(),
            [
                _count(1, "Page views"),
                _terms(2, "bucket", "page_path", 20, "Page"),
                _metric(3, "cardinality", "session_id", "Sessions"),
            ],
            query="event_type:page_view",
        ),
        _visualization(
            oid("devices"),
            "Sessions by device",
            se,
            "pie",
            _pie(),
            [_count(1, "Sessions"), _terms(2, "segment", "device_type", 5)],
        ),
        _visualization(
            oid("browsers"),
            "Sessions by browser",
            se,
            "pie",
            _pie(),
            [_count(1, "Sessions"), _terms(2, "segment", "browser", 8)],
        ),
        _visualization(
            oid("countries"),
            "Sessions by country",
            se,
            "horizontal_bar",
            _xy("horizontal_bar", [("1", "Sessions")], horizontal=True, axis_title="Sessions"),
            [_count(1, "Sessions"), _terms(2, "segment", "country", 20)],
        ),
        _visualization(
            oid("top-searches"),
            "Top search queries",
            ev,
            "table",
            _table(),
            [_count(1, "Searches"), _terms(2, "bucket", "search_query.keyword", 20, "Query")],
            query="event_type:search",
        ),
    ]
    purchases = SavedObject(
        "search",
        oid("recent-purchases"),
        {
            "title": "Recent purchases",
            "description": "",
            "hits": 0,
            "version": 1,
            "columns": list(RECENT_PURCHASE_COLUMNS),
            "sort": [["occurred_at", "desc"]],
            "kibanaSavedObjectMeta": {"searchSourceJSON": _search_source("event_type:purchase")},
        },
        (Reference(INDEX_REF, "index-pattern", ev),),
    )
    dashboard = _dashboard(oid("dashboard"), dashboard_title(prefix), [*visualizations, purchases])
    return [events_pattern, sessions_pattern, *visualizations, purchases, dashboard]


# Panel sizes (width, height) in the 48-column grid, in dashboard order; rows fill left to right.
_LAYOUT: Final = [
    (48, 7),
    (24, 13),
    (24, 13),
    (24, 13),
    (24, 13),
    (16, 13),
    (16, 13),
    (16, 13),
    (16, 15),
    (16, 15),
    (16, 15),
    (48, 15),
]


def _dashboard(object_id: str, title: str, panels: list[SavedObject]) -> SavedObject:
    if len(panels) != len(_LAYOUT):
        raise ValueError(f"the layout has {len(_LAYOUT)} places for {len(panels)} panels")
    entries, references = [], []
    x = y = row_height = 0
    for n, (panel, (w, h)) in enumerate(zip(panels, _LAYOUT, strict=False)):
        if x + w > GRID_COLUMNS:
            x, y, row_height = 0, y + row_height, 0
        ref = f"panel_{n}"
        entries.append(
            {
                "version": PANEL_VERSION,
                "panelIndex": str(n + 1),
                "panelRefName": ref,
                "gridData": {"x": x, "y": y, "w": w, "h": h, "i": str(n + 1)},
                "embeddableConfig": {},
            }
        )
        references.append(Reference(ref, panel.type, panel.id))
        x += w
        row_height = max(row_height, h)
    return SavedObject(
        "dashboard",
        object_id,
        {
            "title": title,
            "description": "The clickstream pipeline's sessions, funnel, pages and revenue",
            "hits": 0,
            "version": 1,
            "timeRestore": True,
            "timeFrom": "now-24h",
            "timeTo": "now",
            "refreshInterval": {"pause": False, "value": 30_000},
            "panelsJSON": _json(entries),
            "optionsJSON": _json({"hidePanelTitles": False, "useMargins": True}),
            "kibanaSavedObjectMeta": {"searchSourceJSON": _search_source(with_index=False)},
        },
        tuple(references),
    )


def shipped_text() -> bytes:
    """What ``SHIPPED_FILE`` must hold: the default prefix's objects as canonical NDJSON."""
    return dumps(build(DEFAULT_INDEX_PREFIX))
