"""The shipped saved objects, checked against the index templates' own mappings (no server).

The field rules are computed here from the template bodies the pipeline PUTs into
OpenSearch (``events_component_body`` / ``sessions_component_body``), not from the
dashboards module's helpers: a visualization may only aggregate on a field that exists
there with a type that has doc values, and each aggregation only on types it accepts.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from pipeline.contract.names import IndexNames
from pipeline.dashboards.ndjson import SavedObject, dumps, loads
from pipeline.dashboards.saved_objects import INDEX_REF, SHIPPED_FILE, build, shipped_text
from pipeline.sinks.opensearch.mappings import events_component_body, sessions_component_body

PREFIXES = ["clickstream", "t0a1b2c3d4-clickstream"]

NUMERIC = {"byte", "short", "integer", "long", "float", "double", "scaled_float"}
WITH_DOC_VALUES = NUMERIC | {"keyword", "date", "boolean"}
ACCEPTS = {
    # aggregation type -> mapping types it can run on (Dashboards' editor rules)
    "date_histogram": {"date"},
    "sum": NUMERIC,
    "avg": NUMERIC,
    "min": NUMERIC | {"date"},
    "max": NUMERIC | {"date"},
    "cardinality": WITH_DOC_VALUES,
    "terms": WITH_DOC_VALUES,
}


class Fields(dict[str, str]):
    """name -> mapping type of one template, and which fields it keeps out of the index or doc values."""

    not_searchable: set[str]
    no_doc_values: set[str]


def template_fields(body: dict[str, Any]) -> Fields:
    """Straight from a component template body, multi-fields included."""
    out = Fields()
    out.not_searchable, out.no_doc_values = set(), set()
    for name, spec in body["template"]["mappings"]["properties"].items():
        out[name] = spec["type"]
        if spec.get("index") is False:
            out.not_searchable.add(name)
        if spec.get("doc_values") is False:
            out.no_doc_values.add(name)
        for sub, sub_spec in spec.get("fields", {}).items():
            out[f"{name}.{sub}"] = sub_spec["type"]
    return out


EVENTS = template_fields(events_component_body())
SESSIONS = template_fields(sessions_component_body())


def aggregatable(template: Fields) -> dict[str, str]:
    return {n: kind for n, kind in template.items() if kind in WITH_DOC_VALUES and n not in template.no_doc_values}


def searchable(template: Fields) -> set[str]:
    return set(template) - template.not_searchable


def _objects(prefix: str) -> list[SavedObject]:
    return loads(dumps(build(prefix)))


def _template_for(pattern: SavedObject, prefix: str) -> Fields:
    names = IndexNames(prefix)
    return {names.events_alias: EVENTS, names.sessions_alias: SESSIONS}[pattern.attributes["title"]]


def _scripted_types(pattern: SavedObject, template: Fields) -> dict[str, str]:
    """Scripted fields of a pattern as 'number', after checking each reads only aggregatable template fields."""
    out = {}
    for spec in json.loads(pattern.attributes["fields"]):
        if not spec["scripted"]:
            continue
        read = re.findall(r"doc\['([^']+)'\]", spec["script"])
        assert read, f"scripted field {spec['name']} reads no field"
        for name in read:
            assert name in aggregatable(template), f"scripted field {spec['name']} reads {name}"
        assert spec["name"] not in template, f"scripted field {spec['name']} shadows a mapped field"
        out[spec["name"]] = "double" if spec["type"] == "number" else spec["type"]
    return out


def _kql_fields(query: str) -> set[str]:
    return set(re.findall(r"([A-Za-z_][\w.]*)\s*(?::|>=|<=|>|<)", query))


def _index_pattern_of(obj: SavedObject, patterns: dict[str, SavedObject]) -> SavedObject:
    refs = [r for r in obj.references if r.name == INDEX_REF]
    assert len(refs) == 1 and refs[0].type == "index-pattern", f"{obj.id} must reference one index pattern"
    assert refs[0].id in patterns, f"{obj.id} references index pattern {refs[0].id}, not in the file"
    source = json.loads(obj.attributes["kibanaSavedObjectMeta"]["searchSourceJSON"])
    assert source["indexRefName"] == INDEX_REF and "index" not in source
    return patterns[refs[0].id]


@pytest.mark.parametrize("prefix", PREFIXES)
def test_index_patterns_are_the_aliases_with_the_template_fields_and_a_date_time_field(prefix: str) -> None:
    patterns = [o for o in _objects(prefix) if o.type == "index-pattern"]
    names = IndexNames(prefix)
    assert sorted(p.attributes["title"] for p in patterns) == sorted([names.events_alias, names.sessions_alias])
    for pattern in patterns:
        template = _template_for(pattern, prefix)
        assert template[pattern.attributes["timeFieldName"]] == "date"
        mapped = {f["name"]: f for f in json.loads(pattern.attributes["fields"]) if not f["scripted"]}
        assert set(mapped) == set(template)
        for name, spec in mapped.items():
            assert spec["esTypes"] == [template[name]]
            assert spec["aggregatable"] == (name in aggregatable(template))
            assert spec["searchable"] == (name in searchable(template))


@pytest.mark.parametrize("prefix", PREFIXES)
def test_every_visualization_aggregates_only_existing_aggregatable_fields(prefix: str) -> None:
    objects = _objects(prefix)
    patterns = {o.id: o for o in objects if o.type == "index-pattern"}
    visualizations = [o for o in objects if o.type == "visualization"]
    assert len(visualizations) >= 10
    for vis in visualizations:
        pattern = _index_pattern_of(vis, patterns)
        template = _template_for(pattern, prefix)
        fields = {**aggregatable(template), **_scripted_types(pattern, template)}
        state = json.loads(vis.attributes["visState"])
        assert state["title"] == vis.title and state["aggs"], vis.id
        for agg in state["aggs"]:
            field = agg["params"].get("field")
            if agg["type"] == "count":
                assert field is None
                continue
            if agg["type"] == "filters":
                for f in agg["params"]["filters"]:
                    used = _kql_fields(f["input"]["query"])
                    assert used and used <= searchable(template), f"{vis.id}: filter {f['input']['query']!r}"
                continue
            assert field is not None, f"{vis.id}: {agg['type']} without a field"
            assert field in fields, f"{vis.id}: field {field} is not in the {pattern.attributes['title']} template"
            assert fields[field] in ACCEPTS[agg["type"]], f"{vis.id}: {agg['type']} on {field} ({fields[field]})"
        query = json.loads(vis.attributes["kibanaSavedObjectMeta"]["searchSourceJSON"])["query"]["query"]
        assert _kql_fields(query) <= searchable(template), f"{vis.id}: query {query!r}"


@pytest.mark.parametrize("prefix", PREFIXES)
def test_the_recent_purchases_search_shows_existing_event_fields(prefix: str) -> None:
    objects = _objects(prefix)
    patterns = {o.id: o for o in objects if o.type == "index-pattern"}
    (search,) = [o for o in objects if o.type == "search"]
    pattern = _index_pattern_of(search, patterns)
    template = _template_for(pattern, prefix)
    assert template is EVENTS
    assert search.attributes["columns"] and set(search.attributes["columns"]) <= set(template)
    assert [[field, "desc"] for field in ("occurred_at",)] == search.attributes["sort"]
    query = json.loads(search.attributes["kibanaSavedObjectMeta"]["searchSourceJSON"])["query"]["query"]
    assert query == "event_type:purchase"


@pytest.mark.parametrize("prefix", PREFIXES)
def test_the_dashboard_shows_every_visualization_and_the_search_without_overlap(prefix: str) -> None:
    objects = _objects(prefix)
    (dashboard,) = [o for o in objects if o.type == "dashboard"]
    shown = {(r.type, r.id) for r in dashboard.references}
    assert shown == {(o.type, o.id) for o in objects if o.type in ("visualization", "search")}
    panels = json.loads(dashboard.attributes["panelsJSON"])
    assert sorted(p["panelRefName"] for p in panels) == sorted(r.name for r in dashboard.references)
    cells: set[tuple[int, int]] = set()
    for p in panels:
        g = p["gridData"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 48 and g["h"] > 0
        area = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not area & cells, f"panel {p['panelIndex']} overlaps another"
        cells |= area
    names = {o.title for o in objects}
    assert ("Clickstream" in names) == (prefix == "clickstream")


def test_ids_and_titles_are_unique_and_every_reference_resolves_inside_the_file() -> None:
    objects = _objects("clickstream")
    keys = {(o.type, o.id) for o in objects}
    assert len(keys) == len(objects) == len({o.title for o in objects})
    for o in objects:
        for ref in o.references:
            assert (ref.type, ref.id) in keys, f"{o.id} -> {ref.type} {ref.id}"


def test_the_shipped_file_is_what_the_code_builds_and_parses_back_to_it() -> None:
    text = SHIPPED_FILE.read_bytes()
    assert text == shipped_text(), "regenerate pipeline/dashboards/clickstream.ndjson (pipeline dashboards --export)"
    parsed = loads(text)
    assert parsed == build("clickstream")
    assert dumps(parsed) == text
