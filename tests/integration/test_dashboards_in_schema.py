"""`pipeline schema` imports the dashboards when the stack has a Dashboards URI (here: the local API stand-in).

The rest of the world is the real local stack (migrations, templates); only Dashboards,
which cannot run here, is the HTTPS stand-in of ``tests/support/fake_dashboards.py``,
trusted through the same ``opensearch_ca_cert`` output as OpenSearch itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from devstack.secrets_store import write_private
from pipeline.contract.outputs import Output
from pipeline.dashboards.saved_objects import build
from tests.support.fake_dashboards import FakeDashboards, running, server_certificate
from tests.support.world import IsolatedPipeline


def test_schema_imports_the_dashboards_for_its_index_prefix_and_says_so(
    world: IsolatedPipeline, tmp_path: Path
) -> None:
    ca, leaf = server_certificate(tmp_path / "certs")
    with running(FakeDashboards("avnadmin", "dash-secret-1"), leaf) as fake:
        values = json.loads(world.outputs_file.read_text())
        values[Output.OPENSEARCH_CA_CERT.value] += "\n" + ca.cert_pem()
        values[Output.OPENSEARCH_DASHBOARDS_URI.value] = f"https://avnadmin:dash-secret-1@localhost:{fake.port}"
        path = tmp_path / "with-dashboards.json"
        write_private(path, json.dumps(values))
        command = [
            sys.executable,
            "-m",
            "pipeline",
            "--outputs",
            str(path),
            "schema",
            "--index-prefix",
            world.index_prefix,
        ]
        runs = [
            subprocess.run(
                command, capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONUNBUFFERED": "1"}
            )
            for _ in range(2)
        ]
    for run in runs:
        assert run.returncode == 0, run.stderr[-2000:]
        assert f"OpenSearch Dashboards at localhost:{fake.port}: 15 saved objects imported" in run.stdout
        assert "dash-secret-1" not in run.stdout + run.stderr
    assert "(15 replaced)" in runs[1].stdout
    assert set(fake.stored) == {(o.type, o.id) for o in build(world.index_prefix)}
    titles = {o["attributes"]["title"] for (kind, _), o in fake.stored.items() if kind == "index-pattern"}
    assert titles == {f"{world.index_prefix}-events", f"{world.index_prefix}-sessions"}
