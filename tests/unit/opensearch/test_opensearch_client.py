"""How the OpenSearch client is built from a stack-output URI.

Credentials are kept out of the host list, and TLS is always verified.
"""

from __future__ import annotations

import base64
import ssl
from pathlib import Path

import pytest

from devstack.certs import ensure_ca
from pipeline.config.secret import Secret
from pipeline.errors import ConfigError
from pipeline.sinks.opensearch_client import connect_opensearch, tls_context


def test_the_stack_ca_is_added_to_the_system_trust_store(tmp_path: Path) -> None:
    ca = ensure_ca(tmp_path / "ca").cert_pem()
    system = tls_context().cert_store_stats()["x509_ca"]
    with_stack = tls_context(ca).cert_store_stats()["x509_ca"]
    assert with_stack == system + 1


def test_verification_and_hostname_checks_are_on_with_or_without_a_ca(tmp_path: Path) -> None:
    for ca in ("", ensure_ca(tmp_path / "ca").cert_pem()):
        context = tls_context(ca)
        assert context.verify_mode is ssl.CERT_REQUIRED
        assert context.check_hostname is True


def test_an_https_client_uses_the_verifying_context() -> None:
    client = connect_opensearch(Secret("https://pipeline:s3cret@search.example.com:24947"))
    connection = client.transport.connection_pool.connections[0]
    assert connection.host == "https://search.example.com:24947"
    context = connection.pool.conn_kw["ssl_context"]
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname is True
    assert "s3cret" not in repr(client) + connection.host


def test_a_ca_that_is_not_pem_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match="opensearch_ca_cert is not a PEM certificate"):
        connect_opensearch(Secret("https://u:p@h:1"), ca_pem="not a certificate")


@pytest.mark.parametrize(
    ("uri", "secret"),
    [
        ("pipeline:s3cr3t@h:1", "s3cr3t"),  # no scheme
        ("http://pipeline:plain-s3cr3t@h:9200", "s3cr3t"),  # a password must never travel in clear text
        ("https://pipeline:s3c/r3t-tail@h:9200", "s3c"),  # unescaped '/' makes the password look like a port
    ],
)
def test_a_uri_that_is_not_usable_https_is_a_configuration_error_that_quotes_nothing(uri: str, secret: str) -> None:
    with pytest.raises(ConfigError, match="must look like https://user:password@host:port") as caught:
        connect_opensearch(Secret(uri))
    assert secret not in str(caught.value)


def test_the_credentials_become_basic_auth_and_the_port_defaults_to_443() -> None:
    client = connect_opensearch(Secret("https://clickstream%2Dpipeline:p%40ss@search.example.com"))
    connection = client.transport.connection_pool.connections[0]
    assert connection.host == "https://search.example.com:443"
    assert connection.headers["authorization"] == "Basic " + base64.b64encode(b"clickstream-pipeline:p@ss").decode()
