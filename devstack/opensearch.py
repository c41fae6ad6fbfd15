"""OpenSearch with its security plugin, single node on loopback, both from Maven Central.

As on Aiven, the node speaks HTTPS only and every request needs a user: ``avnadmin``
may do anything, the pipeline user only what :mod:`devstack.opensearch_access` grants.
The node's certificate is signed by the stack CA, which the outputs file exports as
``opensearch_ca_cert``. devstack itself configures users and roles over the security
REST API with an admin client certificate (the plugin's ``admin_dn``), so no password
hash is ever written to a file, and the demo users the plugin ships with are replaced
by an empty user list before the node first starts.
"""

from __future__ import annotations

import http.client
import os
import shutil
import ssl
import subprocess
import urllib.request
import zipfile
from pathlib import Path

from opensearchpy import OpenSearch
from opensearchpy.exceptions import TransportError

from devstack import certs, proc
from devstack.errors import DevstackError
from devstack.layout import OPENSEARCH_VERSION, REPO_ROOT, Layout
from devstack.opensearch_access import (
    ADMIN_USER,
    PIPELINE_USER,
    ensure_admin,
    grant_prefix,
    remove_stale_users,
    user_uri,
)
from devstack.secrets_store import password, write_private
from pipeline.contract.names import IndexNames

HOST = "127.0.0.1"
POM = REPO_ROOT / "devstack" / "maven" / "opensearch-pom.xml"
NODE_CN = "clickstream-devstack-opensearch-node"
ADMIN_CERT_CN = "clickstream-devstack-opensearch-admin"
#: The plugin initialises its configuration index from these files on the first start only.
#: Users, roles and mappings are then managed over the REST API (idempotently, on every
#: ``up``), so the files hold nothing but their headers: no demo users, no demo roles.
_EMPTY_SECURITY_FILES = {
    "internal_users.yml": "internalusers",
    "roles.yml": "roles",
    "roles_mapping.yml": "rolesmapping",
    "tenants.yml": "tenants",
    "action_groups.yml": "actiongroups",
}


def home(layout: Layout) -> Path:
    return layout.dist_dir / f"opensearch-{OPENSEARCH_VERSION}"


def install(layout: Layout) -> None:
    """Resolve the distribution and the security plugin with Maven (cached in ~/.m2); unpack and install once."""
    if (home(layout) / "plugins" / "opensearch-security").is_dir():
        return
    mvn = proc.require_tool("mvn", "install Maven (sudo apt-get install maven)")
    download = layout.dist_dir / "opensearch-zip"
    shutil.rmtree(download, ignore_errors=True)
    result = subprocess.run(
        [
            mvn,
            "-q",
            "-B",
            "-f",
            str(POM),
            "dependency:copy-dependencies",
            f"-Dopensearch.version={OPENSEARCH_VERSION}",
            f"-DoutputDirectory={download}",
            "-DexcludeTransitive=true",
        ],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise DevstackError("fetching OpenSearch with Maven failed: " + (result.stdout + result.stderr).strip()[-500:])
    archive = next(download.glob(f"opensearch-{OPENSEARCH_VERSION}.zip"))
    plugin = next(download.glob("opensearch-security-*.zip"))
    partial = layout.dist_dir / "opensearch.partial"
    shutil.rmtree(partial, ignore_errors=True)
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(partial)
    unpacked = partial / f"opensearch-{OPENSEARCH_VERSION}"
    for script in (unpacked / "bin").iterdir():
        script.chmod(0o755)
    result = subprocess.run(
        [str(unpacked / "bin" / "opensearch-plugin"), "install", "--batch", plugin.resolve().as_uri()],
        env={**os.environ, "OPENSEARCH_JAVA_HOME": str(layout.java_home)},
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise DevstackError(
            "installing the OpenSearch security plugin failed: " + (result.stdout + result.stderr).strip()[-500:]
        )
    shutil.rmtree(home(layout), ignore_errors=True)
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
    return f"https://{HOST}:{layout.opensearch_port}"


def admin_password(layout: Layout) -> str:
    return password(layout.secrets_file, f"opensearch:{ADMIN_USER}")


def pipeline_password(layout: Layout) -> str:
    return password(layout.secrets_file, f"opensearch:{PIPELINE_USER}")


def admin_uri(layout: Layout) -> str:
    return user_uri(url(layout), ADMIN_USER, admin_password(layout))


def pipeline_uri(layout: Layout) -> str:
    return user_uri(url(layout), PIPELINE_USER, pipeline_password(layout))


def _admin_context(layout: Layout, ca: certs.CertPair) -> ssl.SSLContext:
    """TLS that trusts the stack CA and presents the admin certificate: how devstack manages users."""
    admin = certs.ensure_leaf(layout.certs_dir, ca, "opensearch-admin", common_name=ADMIN_CERT_CN)
    context = ssl.create_default_context(cafile=str(ca.cert))
    context.load_cert_chain(str(admin.cert), str(admin.key))
    return context


def _write_config(layout: Layout, ca: certs.CertPair) -> Path:
    service_dir = _service_dir(layout)
    conf = service_dir / "config"
    if conf.exists():
        shutil.rmtree(conf)
    shutil.copytree(home(layout) / "config", conf)
    conf.chmod(0o700)  # before the node's private key is written into it
    node = certs.ensure_leaf(
        layout.certs_dir,
        ca,
        "opensearch-node",
        common_name=NODE_CN,
        server_names=("localhost",),
        server_ips=(HOST,),
        client=True,
    )
    shutil.copy(ca.cert, conf / "ca.pem")
    shutil.copy(node.cert, conf / "node.pem")
    write_private(conf / "node.key", node.key_pem())
    for name, kind in _EMPTY_SECURITY_FILES.items():
        (conf / "opensearch-security" / name).write_text(f'_meta:\n  type: "{kind}"\n  config_version: 2\n')
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
        "plugins.security.ssl.transport.pemcert_filepath: node.pem\n"
        "plugins.security.ssl.transport.pemkey_filepath: node.key\n"
        "plugins.security.ssl.transport.pemtrustedcas_filepath: ca.pem\n"
        "plugins.security.ssl.transport.enforce_hostname_verification: false\n"
        "plugins.security.ssl.http.enabled: true\n"
        "plugins.security.ssl.http.pemcert_filepath: node.pem\n"
        "plugins.security.ssl.http.pemkey_filepath: node.key\n"
        "plugins.security.ssl.http.pemtrustedcas_filepath: ca.pem\n"
        "plugins.security.ssl.http.clientauth_mode: OPTIONAL\n"
        "plugins.security.allow_default_init_securityindex: true\n"
        f"plugins.security.authcz.admin_dn: ['CN={ADMIN_CERT_CN}']\n"
        f"plugins.security.nodes_dn: ['CN={NODE_CN}']\n"
        "plugins.security.restapi.roles_enabled: ['all_access']\n"
        "plugins.security.system_indices.enabled: true\n"
        "plugins.security.audit.type: noop\n"
    )
    return conf


def pid(layout: Layout) -> int | None:
    """The service's process id while it runs."""
    return proc.read_pid(_pid_file(layout))


def is_running(layout: Layout) -> bool:
    return pid(layout) is not None


def _answers(layout: Layout, context: ssl.SSLContext) -> bool:
    """Yellow health, and the security plugin's configuration loaded (it answers 500 before)."""
    for path in ("/_cluster/health?wait_for_status=yellow&timeout=2s", "/_plugins/_security/api/rolesmapping"):
        try:
            with urllib.request.urlopen(f"{url(layout)}{path}", timeout=5, context=context) as r:
                if r.status != 200:
                    return False
        except (OSError, http.client.HTTPException):  # URLError, TLS and socket errors are OSErrors
            return False
    return True


def _check_data_version(layout: Layout) -> None:
    """Refuse, with the way out, data that this OpenSearch version cannot open.

    OpenSearch refuses to start on data written by a newer release; without this check
    the user would only see the node die and have to dig the reason out of its log.
    """
    data = _service_dir(layout) / "data"
    written_by = _data_version(layout)
    if data.is_dir() and any(data.iterdir()) and written_by != OPENSEARCH_VERSION:
        raise DevstackError(
            f"the OpenSearch data in {data} was written by "
            f"{'OpenSearch ' + written_by if written_by else 'an earlier devstack (OpenSearch without security)'}, "
            f"and this stack now runs {OPENSEARCH_VERSION} with the security plugin; "
            "run `devstack reset` to start the local stack afresh"
        )
    _version_marker(layout).write_text(OPENSEARCH_VERSION + "\n")


def _version_marker(layout: Layout) -> Path:
    return _service_dir(layout) / "version"


def _data_version(layout: Layout) -> str | None:
    marker = _version_marker(layout)
    return marker.read_text().strip() if marker.exists() else None


def up(layout: Layout, ca: certs.CertPair) -> None:
    install(layout)
    service_dir = _service_dir(layout)
    service_dir.mkdir(parents=True, exist_ok=True)
    if is_running(layout) and _data_version(layout) != OPENSEARCH_VERSION:
        raise DevstackError(
            f"an OpenSearch from an earlier devstack is running from {service_dir}; "
            "stop it with `devstack down`, then run `devstack reset` to start afresh"
        )
    if not is_running(layout):
        _check_data_version(layout)
        conf = _write_config(layout, ca)
        (service_dir / "data").mkdir(exist_ok=True)
        (service_dir / "logs").mkdir(exist_ok=True)
        proc.own(layout, service_dir)
        env = {
            "OPENSEARCH_JAVA_HOME": str(layout.java_home),
            "OPENSEARCH_PATH_CONF": str(conf),
            "OPENSEARCH_JAVA_OPTS": f"-Xms{layout.opensearch_heap} -Xmx{layout.opensearch_heap}",
        }
        proc.spawn(
            layout,
            [str(home(layout) / "bin" / "opensearch")],
            env=env,
            log_file=_log_file(layout),
            pid_file=_pid_file(layout),
        )
    context = _admin_context(layout, ca)
    proc.wait_until(
        lambda: _answers(layout, context),
        what="OpenSearch",
        timeout=180,
        alive=lambda: is_running(layout),
        log_file=_log_file(layout),
    )
    client = OpenSearch(hosts=[url(layout)], use_ssl=True, ssl_context=context, timeout=30)
    try:
        ensure_admin(client, admin_password(layout))
        grant_prefix(client, user=PIPELINE_USER, password=pipeline_password(layout), names=IndexNames())
        remove_stale_users(client)
    except TransportError as exc:
        raise DevstackError(f"setting up OpenSearch users failed: {exc.status_code} {exc.error}") from None
    finally:
        client.close()


def down(layout: Layout) -> None:
    proc.stop_pid(_pid_file(layout), name="OpenSearch", timeout=60)


def status(layout: Layout) -> str:
    return f"running on {url(layout)}" if is_running(layout) else "stopped"
