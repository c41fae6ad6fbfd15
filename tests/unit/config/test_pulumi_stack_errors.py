"""The Pulumi CLI's failures become one bounded line that says what to do.

The pure part; the real CLI is exercised in tests/infra.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pipeline.config.pulumi_stack import MAX_DETAIL, bounded, cli_error

words = st.lists(
    st.text(alphabet=st.characters(blacklist_categories=("Cs", "Zs", "Zl", "Zp", "Cc")), min_size=1, max_size=30),
    max_size=40,
)


@given(words, st.integers(min_value=10, max_value=300))
def test_bounded_keeps_whole_words_on_one_line(parts: list[str], limit: int) -> None:
    text = " \n".join(parts)
    out = bounded(text, limit)
    assert "\n" not in out and len(out) <= limit
    kept = out.removesuffix("…").split()
    if text.split() and len(text.split()[0]) >= limit:  # one word longer than the line: cut inside it
        assert text.split()[0].startswith(kept[0])
        return
    assert kept == text.split()[: len(kept)], "a word was cut or changed"
    if out.endswith("…"):
        assert len(" ".join(text.split())) > limit
    else:
        assert out == " ".join(text.split())


@given(st.text(max_size=2000))
def test_any_cli_output_becomes_one_bounded_line(stderr: str) -> None:
    message = str(cli_error("dev", stderr))
    assert "\n" not in message and "\r" not in message
    assert len(message) <= MAX_DETAIL + 200


def test_known_failures_get_their_fix() -> None:
    cases = {
        "error: no stack named 'nope' found": "pulumi stack ls",
        "error: getting secrets manager: passphrase must be set with PULUMI_CONFIG_PASSPHRASE or "
        "PULUMI_CONFIG_PASSPHRASE_FILE environment variables": "set PULUMI_CONFIG_PASSPHRASE",
        "error: PULUMI_ACCESS_TOKEN must be set for login during non-interactive CLI sessions": "pulumi login",
    }
    for stderr, fix in cases.items():
        message = str(cli_error("nope", "warning: something first\n" + stderr + "\n"))
        assert stderr.removeprefix("error: ") in message and fix in message, message
