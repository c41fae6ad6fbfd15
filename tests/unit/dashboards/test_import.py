"""The Dashboards import client against a local HTTPS server that answers like the documented API.

No OpenSearch Dashboards can run here; ``tests/support/fake_dashboards.py`` checks the
request shape (method, path, overwrite flag, ``osd-xsrf``, credentials, multipart body with
a ``.ndjson`` file) and answers as Dashboards does, over TLS from a CA of this test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.config.outputs import Output
from pipeline.config.secret import Secret
from pipeline.config.settings import OpenSearchSettings
from pipeline.dashboards.importer import import_saved_objects
from pipeline.dashboards.ndjson import Reference, SavedObject
from pipeline.dashboards.saved_objects import build
from pipeline.errors import ConfigError, ServiceError
from tests.support.fake_dashboards import FakeDashboards, running, server_certificate

USER, PASSWORD = "avnadmin", "pa:ss/w@rd#1"
QUOTED = "pa%3Ass%2Fw%40rd%231"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    directory = tmp_path_factory.mktemp("dashboards-certs")
    ca, leaf = server_certificate(directory)
    foreign_ca, foreign_leaf = server_certificate(directory, ca_name="foreign")
    return {"ca": ca.cert_pem(), "leaf": leaf, "foreign_leaf": foreign_leaf}


@pytest.fixture
def fake(certs: dict[str, object]) -> Iterator[FakeDashboards]:
    with running(FakeDashboards(USER, PASSWORD), certs["leaf"]) as server:  # type: ignore[arg-type]
        yield server


def settings_for(port: int, ca: str, *, with_credentials: bool = True, admin_uri: str = "") -> OpenSearchSettings:
    auth = f"{USER}:{QUOTED}@" if with_credentials else ""
    return OpenSearchSettings(
        uri=Secret("https://pipeline:x@127.0.0.1:9200"),
        admin_uri=Secret(admin_uri),
        dashboards_uri=Secret(f"https://{auth}localhost:{port}"),
        ca_pem=ca,
    )


def test_the_import_is_the_documented_request_and_repeating_it_changes_nothing(
    fake: FakeDashboards, certs: dict[str, object]
) -> None:
    objects = build("clickstream")
    settings = settings_for(fake.port, str(certs["ca"]))
    first = import_saved_objects(settings, objects)
    stored_once = json.dumps(sorted(fake.stored.items()), sort_keys=True)
    second = import_saved_objects(settings, objects)

    assert (first.imported, first.overwritten) == (len(objects), 0)
    assert (second.imported, second.overwritten) == (len(objects), len(objects))
    assert json.dumps(sorted(fake.stored.items()), sort_keys=True) == stored_once
    assert set(fake.stored) == {(o.type, o.id) for o in objects}
    for o in objects:
        assert fake.stored[(o.type, o.id)] == json.loads(json.dumps(o.to_json()))
    for r in fake.requests:
        assert (r.method, r.path, r.query) == ("POST", "/api/saved_objects/_import", {"overwrite": ["true"]})
        assert r.headers["osd-xsrf"] and r.headers["content-type"].startswith("multipart/form-data; boundary=")
        assert r.file_name == "clickstream.ndjson" and r.file_type == "application/ndjson"
        assert len(r.objects) == len(objects)


def test_credentials_come_from_the_admin_uri_when_the_dashboards_uri_has_none(
    fake: FakeDashboards, certs: dict[str, object]
) -> None:
    settings = settings_for(
        fake.port, str(certs["ca"]), with_credentials=False, admin_uri=f"https://{USER}:{QUOTED}@search.example:443"
    )
    assert import_saved_objects(settings, build("clickstream")).imported == 15


def test_objects_dashboards_refuses_are_one_line_naming_them(fake: FakeDashboards, certs: dict[str, object]) -> None:
    dangling = SavedObject(
        "visualization",
        "v1",
        {"title": "v"},
        (Reference("kibanaSavedObjectMeta.searchSourceJSON.index", "index-pattern", "gone"),),
    )
    with pytest.raises(ServiceError) as err:
        import_saved_objects(settings_for(fake.port, str(certs["ca"])), [dangling])
    message = str(err.value)
    assert "\n" not in message and "refused 1 of 1 saved objects: visualization v1 (missing_references)" in message
    assert not fake.stored


def test_a_refused_request_is_one_line_without_the_password(fake: FakeDashboards, certs: dict[str, object]) -> None:
    fake.password = "another"
    with pytest.raises(ServiceError) as err:
        import_saved_objects(settings_for(fake.port, str(certs["ca"])), build("clickstream"))
    assert "refused the credentials (HTTP 401)" in str(err.value)
    fake.password = PASSWORD
    fake.scripted.append(
        (400, {"statusCode": 400, "error": "Bad Request", "message": "Request must contain a osd-xsrf header."})
    )
    with pytest.raises(ServiceError) as err:
        import_saved_objects(settings_for(fake.port, str(certs["ca"])), build("clickstream"))
    assert str(err.value) == (
        f"OpenSearch Dashboards localhost:{fake.port} refused the import: HTTP 400 "
        "Bad Request: Request must contain a osd-xsrf header."
    )
    assert PASSWORD not in str(err.value) and QUOTED not in str(err.value)


def test_a_restarting_dashboards_is_waited_for(fake: FakeDashboards, certs: dict[str, object]) -> None:
    fake.scripted.append((503, {"statusCode": 503, "error": "Service Unavailable", "message": "not ready"}))
    result = import_saved_objects(settings_for(fake.port, str(certs["ca"])), build("clickstream"), first_backoff_s=0.01)
    assert result.imported == 15 and len(fake.requests) == 2


def test_the_server_certificate_is_verified(certs: dict[str, object]) -> None:
    with running(FakeDashboards(USER, PASSWORD), certs["foreign_leaf"]) as foreign:  # type: ignore[arg-type]
        with pytest.raises(ServiceError, match="TLS certificate not trusted"):
            import_saved_objects(settings_for(foreign.port, str(certs["ca"])), build("clickstream"))
        assert not foreign.requests


def test_a_plain_http_or_empty_uri_is_a_configuration_error_that_does_not_quote_it() -> None:
    for uri in (f"http://{USER}:{QUOTED}@localhost:5601", "", "https://user:p/ss@host:notaport"):
        settings = OpenSearchSettings(uri=Secret(""), admin_uri=Secret(""), dashboards_uri=Secret(uri))
        with pytest.raises(ConfigError) as err:
            import_saved_objects(settings, build("clickstream"))
        assert QUOTED not in str(err.value) and "p/ss" not in str(err.value)


def test_the_cli_prints_one_line_and_exits_3_when_dashboards_refuses(
    fake: FakeDashboards, certs: dict[str, object], tmp_path: Path
) -> None:
    outputs = {o.value: "x" for o in Output}
    outputs.update(
        {
            Output.KAFKA_BOOTSTRAP.value: "127.0.0.1:1",
            Output.POSTGRES_TIMESCALEDB.value: "false",
            Output.OPENSEARCH_CA_CERT.value: str(certs["ca"]),
            Output.OPENSEARCH_DASHBOARDS_URI.value: f"https://{USER}:{QUOTED}@localhost:{fake.port}",
        }
    )
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(outputs))
    fake.scripted.append(
        (
            413,
            {
                "statusCode": 413,
                "error": "Request Entity Too Large",
                "message": "Payload content length greater than maximum allowed: 26214400",
            },
        )
    )
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", "--outputs", str(path), "dashboards"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert result.returncode == 3, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"pipeline: error: OpenSearch Dashboards localhost:{fake.port} refused the import: HTTP 413 "
        "Request Entity Too Large: Payload content length greater than maximum allowed: 26214400"
    ]
    ok = subprocess.run(
        [sys.executable, "-m", "pipeline", "--outputs", str(path), "dashboards"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ok.returncode == 0 and f"localhost:{fake.port}: 15 saved objects imported" in ok.stdout
    assert QUOTED not in ok.stdout + ok.stderr + result.stderr
