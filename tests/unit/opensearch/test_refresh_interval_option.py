"""What a refresh interval is (``check_refresh_interval``), and ``pipeline schema --refresh-interval``
checking it before anything connects."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import example, given
from hypothesis import strategies as st

from pipeline.cli import main
from pipeline.errors import ConfigError
from pipeline.sinks.opensearch.mappings import DEFAULT_REFRESH_INTERVAL, check_refresh_interval

UNITS = ("ms", "s", "m")


def is_interval(value: str) -> bool:
    """The rule read by hand, without a pattern: ``-1``, or a positive whole number written
    without leading zeros, in ASCII digits, followed by one of the units."""
    if value == "-1":
        return True
    for unit in UNITS:
        number = value.removesuffix(unit)
        if number != value and number.isascii() and number.isdigit() and str(int(number)) == number:
            return int(number) > 0
    return False


intervals = st.one_of(
    st.just("-1"),
    st.builds(lambda n, unit: f"{n}{unit}", st.integers(min_value=1, max_value=10**18), st.sampled_from(UNITS)),
)
near_misses = st.text(alphabet="-0123456789.msh \n\u0660", max_size=8)
"""Texts made of what intervals are made of, and a few neighbours (a space, a newline, an Arabic-Indic zero)."""


@given(intervals)
def test_every_interval_of_the_documented_form_is_accepted_unchanged(value: str) -> None:
    assert check_refresh_interval(value) == value


padded = st.one_of(intervals.map(lambda v: f" {v}"), intervals.map(lambda v: v + "\n"))


@given(st.one_of(near_misses, st.text(max_size=12), padded))
@example("0s")
@example("01s")
@example("1.5s")
@example("1h")
@example("-2")
@example("")
def test_a_text_is_accepted_exactly_when_it_is_an_interval_else_one_line_naming_it(value: str) -> None:
    if is_interval(value):
        assert check_refresh_interval(value) == value
        return
    with pytest.raises(ConfigError) as caught:
        check_refresh_interval(value)
    message = str(caught.value)
    assert repr(value) in message and "\n" not in message


def test_the_default_is_an_interval() -> None:
    assert check_refresh_interval(DEFAULT_REFRESH_INTERVAL) == DEFAULT_REFRESH_INTERVAL


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
