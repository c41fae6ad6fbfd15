"""Loading settings from stack outputs: every mistake is one clear line, no secret in it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.config.secret import Secret
from pipeline.config.settings import Settings, load_settings, read_outputs_file
from pipeline.contract.outputs import SECRET_OUTPUTS, Output
from pipeline.errors import ConfigError

SECRET_VALUE = "s3cr3t-value-that-must-not-leak"


def _outputs() -> dict[str, str]:
    values = {o.value: f"value-of-{o.value}" for o in Output}
    values[Output.KAFKA_BOOTSTRAP.value] = "kafka.example.com:12345"
    values[Output.POSTGRES_APP_URI.value] = (
        f"postgres://app:{SECRET_VALUE}@pg.example.com:5432/clickstream?sslmode=require"
    )
    values[Output.POSTGRES_ADMIN_URI.value] = f"postgres://avnadmin:{SECRET_VALUE}@pg.example.com:5432/clickstream"
    values[Output.OPENSEARCH_URI.value] = f"https://pipeline:{SECRET_VALUE}@os.example.com:443"
    values[Output.KAFKA_PRODUCER_KEY.value] = SECRET_VALUE
    values[Output.POSTGRES_TIMESCALEDB.value] = "false"
    return values


def test_every_name_is_read(tmp_path: Path) -> None:
    path = tmp_path / "out.json"
    path.write_text(json.dumps(_outputs()))
    settings = load_settings(outputs_file=path)
    assert settings.kafka.bootstrap == "kafka.example.com:12345"
    assert settings.kafka.events_topic == "value-of-kafka_events_topic"
    assert settings.kafka.client_config("producer")["ssl.key.pem"] == SECRET_VALUE
    assert settings.postgres.database == "clickstream"


def test_postgres_conninfo_upgrades_to_verify_full_with_the_stack_ca(tmp_path: Path) -> None:
    settings = Settings.from_outputs(_outputs(), source="test")
    conninfo = settings.postgres.conninfo("app")
    assert "sslmode=verify-full" in conninfo and "sslmode=require" not in conninfo
    ca_path = conninfo.split("sslrootcert=")[1].split("&")[0]
    assert Path(ca_path.replace("%2F", "/")).read_text() == "value-of-postgres_ca_cert"


def test_missing_output_names_the_output() -> None:
    values = _outputs()
    del values[Output.KAFKA_CONSUMER_GROUP.value]
    with pytest.raises(ConfigError, match="kafka_consumer_group"):
        Settings.from_outputs(values, source="test")


def test_missing_file_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="devstack up"):
        read_outputs_file(tmp_path / "nope.json")


def test_malformed_file_gives_position_not_content(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"postgres_app_uri": "' + SECRET_VALUE + '",,}')
    with pytest.raises(ConfigError) as excinfo:
        read_outputs_file(path)
    assert "line 1" in str(excinfo.value)
    assert SECRET_VALUE not in str(excinfo.value)


def test_non_object_file_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "list.json"
    path.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="JSON object"):
        read_outputs_file(path)


def test_stack_and_file_together_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not both"):
        load_settings(outputs_file=tmp_path / "x.json", stack="dev")


def test_stack_without_pulumi_cli_names_the_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ConfigError, match="Pulumi CLI"):
        load_settings(stack="dev")


@pytest.mark.parametrize(("raw", "expected"), [("true", True), ("false", False), ("yes", None), ("", None)])
def test_the_timescaledb_switch_is_read_strictly(raw: str, expected: bool | None) -> None:
    values = _outputs() | {Output.POSTGRES_TIMESCALEDB.value: raw}
    if expected is None:
        with pytest.raises(ConfigError, match="postgres_timescaledb must be 'true' or 'false'"):
            Settings.from_outputs(values, source="test")
    else:
        assert Settings.from_outputs(values, source="test").postgres.timescaledb is expected


def test_secrets_do_not_print_themselves() -> None:
    settings = Settings.from_outputs(_outputs(), source="test")
    assert SECRET_VALUE not in repr(settings)
    assert SECRET_VALUE not in str(settings)
    assert str(Secret("x")) == "***"


def test_contract_marks_keys_and_credential_uris_secret() -> None:
    assert {
        Output.KAFKA_PRODUCER_KEY,
        Output.KAFKA_CONSUMER_KEY,
        Output.KAFKA_ADMIN_KEY,
        Output.POSTGRES_APP_URI,
        Output.POSTGRES_ADMIN_URI,
        Output.OPENSEARCH_URI,
    } <= SECRET_OUTPUTS
    assert Output.KAFKA_BOOTSTRAP not in SECRET_OUTPUTS
