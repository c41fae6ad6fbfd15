"""OpenSearch from the integ-test distribution on Maven Central, single node on loopback.

That distribution carries the core engine without the security plugin, so the local
node speaks plain HTTP on 127.0.0.1 with no authentication; the README says so. The
pipeline's HTTPS and credential code paths are the ones it uses against Aiven.
"""

from __future__ import annotations

import shutil
import subprocess
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from devstack import proc
from devstack.errors import DevstackError
from devstack.layout import OPENSEARCH_VERSION, REPO_ROOT, Layout

HOST = "127.0.0.1"
POM = REPO_ROOT / "devstack" / "maven" / "opensearch-pom.xml"


def home(layout: Layout) -> Path:
    return layout.dist_dir / f"opensearch-{OPENSEARCH_VERSION}"


def install(layout: Layout) -> None:
    """Resolve the distribution zip with Maven (cached in ~/.m2) and unpack it once."""
    if (home(layout) / "bin" / "opensearch").exists():
        return
    mvn = proc.require_tool("mvn", "install Maven (sudo apt-get install maven)")
    download = layout.dist_dir / "opensearch-zip"
    shutil.rmtree(download, ignore_errors=True)
    result = subprocess.run(
        [mvn, "-q", "-B", "-f", str(POM), "dependency:copy-dependencies",
         f"-Dopensearch.version={OPENSEARCH_VERSION}", f"-DoutputDirectory={download}"],
        capture_output=True, text=True,
    )
    if result.returncode != 0:
        raise DevstackError("fetching OpenSearch with Maven failed: " + (result.stdout + result.stderr).strip()[-500:])
    archive = next(download.glob("opensearch-*.zip"))
    partial = layout.dist_dir / "opensearch.partial"
    shutil.rmtree(partial, ignore_errors=True)
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(partial)
    unpacked = partial / f"opensearch-{OPENSEARCH_VERSION}"
    for script in (unpacked / "bin").iterdir():
        script.chmod(0o755)
    unpacked.replace(home(layout))
    shutil.rmtree(partial, ignore_errors=True)
    shutil.rmtree(download, ignore_errors=True)


def _service_dir(layout: Layout) -> Path:
    return layout.service_dir("opensearch")


def _pid_file(layout: Layout) -> Path:
    return _service_dir(layout) / "opensearch.pid"


def _log_file(layout: Layout) -> Path:
    return _service_dir(layout) / "opensearch.out"


def url(layout: Layout) -> str:
    return f"http://{HOST}:{layout.opensearch_port}"


def _write_config(layout: Layout) -> Path:
    service_dir = _service_dir(layout)
    conf = service_dir / "config"
    if conf.exists():
        shutil.rmtree(conf)
    shutil.copytree(home(layout) / "config", conf)
    # The shipped jvm.options names paths relative to the distribution; the node's
    # logs and heap dumps belong in its own service directory.
    jvm_options = conf / "jvm.options"
    jvm_options.write_text(
        jvm_options.read_text()
        .replace("logs/", f"{service_dir / 'logs'}/")
        .replace("HeapDumpPath=data", f"HeapDumpPath={service_dir / 'data'}")
    )
    (conf / "opensearch.yml").write_text(
        "cluster.name: clickstream-devstack\n"
        "node.name: devstack-1\n"
        f"path.data: {service_dir / 'data'}\n"
        f"path.logs: {service_dir / 'logs'}\n"
        f"network.host: {HOST}\n"
        f"http.port: {layout.opensearch_port}\n"
        f"transport.port: {layout.opensearch_transport_port}\n"
        "discovery.type: single-node\n"
        "action.auto_create_index: false\n"
        "cluster.routing.allocation.disk.threshold_enabled: false\n"
    )
    return conf


def is_running(layout: Layout) -> bool:
    return proc.read_pid(_pid_file(layout)) is not None


def _answers(layout: Layout) -> bool:
    try:
        with urllib.request.urlopen(f"{url(layout)}/_cluster/health?wait_for_status=yellow&timeout=2s", timeout=5) as r:
            return r.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def up(layout: Layout) -> None:
    install(layout)
    service_dir = _service_dir(layout)
    service_dir.mkdir(parents=True, exist_ok=True)
    if not is_running(layout):
        conf = _write_config(layout)
        (service_dir / "data").mkdir(exist_ok=True)
        (service_dir / "logs").mkdir(exist_ok=True)
        proc.own(layout, service_dir)
        env = {
            "OPENSEARCH_JAVA_HOME": str(layout.java_home),
            "OPENSEARCH_PATH_CONF": str(conf),
            "OPENSEARCH_JAVA_OPTS": f"-Xms{layout.opensearch_heap} -Xmx{layout.opensearch_heap}",
        }
        proc.spawn(
            layout, [str(home(layout) / "bin" / "opensearch")],
            env=env, log_file=_log_file(layout), pid_file=_pid_file(layout),
        )
    proc.wait_until(
        lambda: _answers(layout), what="OpenSearch", timeout=180,
        alive=lambda: is_running(layout), log_file=_log_file(layout),
    )


def down(layout: Layout) -> None:
    proc.stop_pid(_pid_file(layout), name="OpenSearch", timeout=60)


def status(layout: Layout) -> str:
    return f"running on {url(layout)}" if is_running(layout) else "stopped"
