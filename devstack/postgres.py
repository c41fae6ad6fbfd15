"""PostgreSQL from the OS packages: own data directory, loopback only, TLS, password auth.

Two roles, as on Aiven: ``avnadmin`` (superuser, for migrations) and ``clickstream_app``
(login only; the migrations grant it exactly what the pipeline needs). Only ``hostssl``
lines exist in pg_hba.conf, so a client without TLS is refused.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg import sql

from devstack import certs, proc
from devstack.errors import DevstackError
from devstack.layout import Layout
from devstack.secrets_store import password
from pipeline.contract import names

ADMIN_USER = "avnadmin"
HOST = "127.0.0.1"


def bin_dir() -> Path:
    """The newest installed PostgreSQL >= 15 server binaries."""
    found = sorted(
        (p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "initdb").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    found = [p for p in found if p.parent.name.isdigit() and int(p.parent.name) >= 15]
    if not found:
        raise DevstackError(
            "PostgreSQL server >= 15 not found under /usr/lib/postgresql; "
            "install it with: sudo apt-get install postgresql"
        )
    return found[-1]


def _data_dir(layout: Layout) -> Path:
    return layout.service_dir("postgres") / "data"


def _pid_file(layout: Layout) -> Path:
    return _data_dir(layout) / "postmaster.pid"


def uri(layout: Layout, user: str, *, database: str = names.DATABASE) -> str:
    pw = password(layout.secrets_file, f"postgres:{user}")
    credentials = f"{quote(user, safe='')}:{quote(pw, safe='')}"
    return f"postgres://{credentials}@{HOST}:{layout.postgres_port}/{database}?sslmode=verify-full"


def connect(layout: Layout, user: str, *, database: str = names.DATABASE, timeout: int = 5) -> psycopg.Connection:
    return psycopg.connect(
        uri(layout, user, database=database),
        sslrootcert=str(layout.certs_dir / "ca.pem"),
        connect_timeout=timeout,
        autocommit=True,
    )


def pid(layout: Layout) -> int | None:
    """The postmaster's process id while it runs (the first line of ``postmaster.pid``)."""
    try:
        number = int(_pid_file(layout).read_text().splitlines()[0])
    except (FileNotFoundError, ValueError, IndexError, PermissionError):
        return None
    return number if proc.pid_alive(number) else None


def is_running(layout: Layout) -> bool:
    return pid(layout) is not None


def _answers(layout: Layout) -> bool:
    try:
        with connect(layout, ADMIN_USER, database="postgres", timeout=2) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


def _init(layout: Layout, ca: certs.CertPair) -> None:
    service_dir = layout.service_dir("postgres")
    data = _data_dir(layout)
    service_dir.mkdir(parents=True, exist_ok=True)
    server = certs.ensure_leaf(
        layout.certs_dir,
        ca,
        "postgres-server",
        common_name="localhost",
        server_names=("localhost",),
        server_ips=(HOST,),
        client=False,
    )
    admin_pw = password(layout.secrets_file, f"postgres:{ADMIN_USER}")
    with tempfile.NamedTemporaryFile("w", dir=service_dir, delete=False) as pwfile:
        pwfile.write(admin_pw + "\n")
    proc.own(layout, service_dir)
    try:
        proc.run(
            layout,
            [
                str(bin_dir() / "initdb"),
                "-D",
                str(data),
                "-U",
                ADMIN_USER,
                f"--pwfile={pwfile.name}",
                "--auth-local=scram-sha-256",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
            ],
            what="initdb",
        )
    finally:
        Path(pwfile.name).unlink(missing_ok=True)
    shutil.copy(server.cert, data / "server.crt")
    shutil.copy(server.key, data / "server.key")
    (data / "server.key").chmod(0o600)
    with open(data / "postgresql.conf", "a") as conf:
        conf.write(
            "\n# --- clickstream devstack ---\n"
            f"listen_addresses = '{HOST}'\n"
            f"port = {layout.postgres_port}\n"
            f"unix_socket_directories = '{service_dir}'\n"
            "ssl = on\n"
            "ssl_cert_file = 'server.crt'\n"
            "ssl_key_file = 'server.key'\n"
            "ssl_min_protocol_version = 'TLSv1.2'\n"
            "password_encryption = 'scram-sha-256'\n"
            "shared_buffers = '512MB'\n"
            "max_connections = 200\n"
            "max_wal_size = '2GB'\n"
            "logging_collector = off\n"
        )
    (data / "pg_hba.conf").write_text(
        "# TLS-only password authentication on loopback; nothing else is accepted.\n"
        "local   all  all                 scram-sha-256\n"
        f"hostssl all  all  {HOST}/32    scram-sha-256\n"
    )
    proc.own(layout, service_dir)


def up(layout: Layout, ca: certs.CertPair) -> None:
    data = _data_dir(layout)
    if not (data / "PG_VERSION").exists():
        _init(layout, ca)
    if not is_running(layout):
        log_file = layout.service_dir("postgres") / "postgres.log"
        proc.run(
            layout,
            # On the command line, not in postgresql.conf: a stack made before the setting gets it too.
            [
                str(bin_dir() / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(log_file),
                "-o",
                f"-c max_locks_per_transaction={names.MAX_LOCKS_PER_TRANSACTION}",
                "-w",
                "-t",
                "60",
                "start",
            ],
            what=f"starting PostgreSQL (log: {log_file})",
        )
    proc.wait_until(lambda: _answers(layout), what="PostgreSQL", timeout=60)
    _bootstrap_roles(layout)


def _bootstrap_roles(layout: Layout) -> None:
    """Create the database and the application role once; re-running changes nothing."""
    app_pw = password(layout.secrets_file, f"postgres:{names.APP_ROLE}")
    with connect(layout, ADMIN_USER, database="postgres") as conn:
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (names.APP_ROLE,)).fetchone() is None:
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {}").format(
                    sql.Identifier(names.APP_ROLE), sql.Literal(app_pw)
                )
            )
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (names.DATABASE,)).fetchone() is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(names.DATABASE)))
    with connect(layout, ADMIN_USER) as conn:
        conn.execute(
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                sql.Identifier(names.DATABASE), sql.Identifier(names.APP_ROLE)
            )
        )
        conn.execute(sql.SQL("REVOKE CREATE ON SCHEMA public FROM PUBLIC"))


def down(layout: Layout) -> None:
    if is_running(layout):
        proc.run(
            layout,
            [str(bin_dir() / "pg_ctl"), "-D", str(_data_dir(layout)), "-m", "fast", "-w", "stop"],
            what="stopping PostgreSQL",
        )


def status(layout: Layout) -> str:
    if not is_running(layout):
        return "stopped"
    return f"running on {HOST}:{layout.postgres_port}" if _answers(layout) else "starting (not answering yet)"
