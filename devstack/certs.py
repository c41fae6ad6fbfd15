"""A private CA for the local stack and the certificates it signs, made with the openssl CLI.

Aiven gives every project a CA; Kafka clients authenticate with a certificate and key
signed by it, and PostgreSQL and OpenSearch present server certificates it signs. The
local stack does the same so the pipeline's TLS code paths are the real ones.
Keys are EC P-256 in PKCS#8 (Kafka's PEM keystore and libpq both read that form).
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from devstack.errors import DevstackError

CA_NAME = "ca"
VALID_DAYS = 825


@dataclass(frozen=True)
class CertPair:
    cert: Path
    key: Path

    def cert_pem(self) -> str:
        return self.cert.read_text()

    def key_pem(self) -> str:
        return self.key.read_text()


def _openssl(*args: str) -> None:
    result = subprocess.run(["openssl", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise DevstackError(f"openssl {args[0]} failed: {result.stderr.strip()}")


def _new_key(path: Path) -> None:
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(path))
    os.chmod(path, 0o600)


def ensure_ca(certs_dir: Path) -> CertPair:
    certs_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(certs_dir, 0o700)
    pair = CertPair(certs_dir / f"{CA_NAME}.pem", certs_dir / f"{CA_NAME}.key")
    if pair.cert.exists() and pair.key.exists():
        return pair
    _new_key(pair.key)
    _openssl(
        "req",
        "-x509",
        "-new",
        "-key",
        str(pair.key),
        "-out",
        str(pair.cert),
        "-days",
        str(VALID_DAYS),
        "-subj",
        "/CN=clickstream-devstack-ca",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    )
    return pair


def ensure_leaf(
    certs_dir: Path,
    ca: CertPair,
    name: str,
    *,
    common_name: str,
    server_names: tuple[str, ...] = (),
    server_ips: tuple[str, ...] = (),
    client: bool = True,
    days: int = VALID_DAYS,
) -> CertPair:
    """Issue (once) a certificate for a server, a client, or both, signed by the stack CA."""
    pair = CertPair(certs_dir / f"{name}.pem", certs_dir / f"{name}.key")
    if pair.cert.exists() and pair.key.exists():
        return pair
    issue_certificate(
        ca,
        pair,
        common_name=common_name,
        server_names=server_names,
        server_ips=server_ips,
        client=client,
        days=days,
    )
    return pair


def issue_certificate(
    ca: CertPair,
    pair: CertPair,
    *,
    common_name: str,
    server_names: tuple[str, ...] = (),
    server_ips: tuple[str, ...] = (),
    client: bool = True,
    days: int = VALID_DAYS,
) -> None:
    """Write a new key and certificate to ``pair``; also used by tests to mint bad certificates."""
    usages = (["serverAuth"] if server_names or server_ips else []) + (["clientAuth"] if client else [])
    ext_lines = [
        "basicConstraints=critical,CA:FALSE",
        "keyUsage=critical,digitalSignature,keyEncipherment",
        "extendedKeyUsage=" + ",".join(usages),
    ]
    alt = [f"DNS:{n}" for n in server_names] + [f"IP:{ip}" for ip in server_ips]
    if alt:
        ext_lines.append("subjectAltName=" + ",".join(alt))
    _new_key(pair.key)
    with tempfile.TemporaryDirectory() as tmp:
        csr = Path(tmp) / "req.csr"
        ext = Path(tmp) / "ext.cnf"
        ext.write_text("\n".join(ext_lines) + "\n")
        _openssl("req", "-new", "-key", str(pair.key), "-out", str(csr), "-subj", f"/CN={common_name}")
        _openssl(
            "x509",
            "-req",
            "-in",
            str(csr),
            "-CA",
            str(ca.cert),
            "-CAkey",
            str(ca.key),
            "-CAcreateserial",
            "-out",
            str(pair.cert),
            "-days",
            str(days),
            "-sha256",
            "-extfile",
            str(ext),
        )


def issue_expired_certificate(ca: CertPair, pair: CertPair, *, common_name: str) -> None:
    """A client certificate signed by ``ca`` whose validity ended a day ago (tests of expiry).

    ``openssl x509`` cannot back-date a certificate; ``openssl ca`` takes explicit start
    and end dates, so it signs this one from a throw-away CA database.
    """
    now = dt.datetime.now(dt.UTC)
    stamp = "%y%m%d%H%M%SZ"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "index.txt").write_text("")
        (work / "serial").write_text("1000\n")
        config = work / "ca.cnf"
        config.write_text(
            "[ca]\ndefault_ca = stack\n"
            f"[stack]\ndatabase = {work}/index.txt\nserial = {work}/serial\nnew_certs_dir = {work}\n"
            "default_md = sha256\npolicy = any\nunique_subject = no\n"
            "[any]\ncommonName = supplied\n"
            "[client]\nbasicConstraints = critical,CA:FALSE\n"
            "keyUsage = critical,digitalSignature,keyEncipherment\nextendedKeyUsage = clientAuth\n"
        )
        _new_key(pair.key)
        csr = work / "req.csr"
        _openssl("req", "-new", "-key", str(pair.key), "-out", str(csr), "-subj", f"/CN={common_name}")
        _openssl(
            "ca",
            "-batch",
            "-config",
            str(config),
            "-cert",
            str(ca.cert),
            "-keyfile",
            str(ca.key),
            "-in",
            str(csr),
            "-out",
            str(pair.cert),
            "-notext",
            "-extensions",
            "client",
            "-startdate",
            (now - dt.timedelta(days=3)).strftime(stamp),
            "-enddate",
            (now - dt.timedelta(days=1)).strftime(stamp),
        )
