"""``pipeline schema --refresh-interval``: OpenSearch's interval syntax, checked before anything connects."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import main


@pytest.mark.parametrize("value", ["5x", "0s", "1.5s", "s", "", "1 s", "-2"])
def test_a_malformed_interval_is_a_usage_error_naming_it(value: str) -> None:
    result = CliRunner().invoke(main, ["schema", "--refresh-interval", value])
    assert result.exit_code == 2
    assert "is not an interval such as 500ms, 1s, 30s or 1m" in result.output


@pytest.mark.parametrize("value", ["500ms", "1s", "30s", "1m", "-1"])
def test_a_wellformed_interval_passes_the_option_check(value: str, tmp_path: Path) -> None:
    outputs = tmp_path / "outputs.json"
    outputs.write_text("not json")
    result = CliRunner().invoke(main, ["schema", "--refresh-interval", value, "--outputs", str(outputs)])
    assert "is not an interval" not in result.output
    assert "is not valid JSON" in result.output  # it got as far as reading the outputs
