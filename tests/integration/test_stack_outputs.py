"""The local stack writes the same outputs contract the Pulumi program exports."""

from __future__ import annotations

import stat
from pathlib import Path

from pipeline.contract.outputs import Output


def test_outputs_file_has_every_contract_name_and_nothing_else(outputs: dict[str, str]) -> None:
    assert set(outputs) == {o.value for o in Output}
    assert all(isinstance(v, str) for v in outputs.values())


def test_outputs_file_is_private(outputs_path: Path) -> None:
    assert stat.S_IMODE(outputs_path.stat().st_mode) == 0o600


def test_certificates_and_keys_are_pem(outputs: dict[str, str]) -> None:
    for name in (Output.KAFKA_CA_CERT, Output.KAFKA_PRODUCER_CERT, Output.KAFKA_CONSUMER_CERT, Output.POSTGRES_CA_CERT):
        assert outputs[name.value].startswith("-----BEGIN CERTIFICATE-----")
    for name in (Output.KAFKA_PRODUCER_KEY, Output.KAFKA_CONSUMER_KEY, Output.KAFKA_ADMIN_KEY):
        assert "PRIVATE KEY-----" in outputs[name.value]
