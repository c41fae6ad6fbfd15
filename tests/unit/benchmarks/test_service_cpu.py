"""The CPU of a local service is its root process's and every descendant's, and nobody else's."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from benchmarks.whole_pipeline.procs import tree_cpu

SERVICES = ("kafka", "opensearch", "postgresql")


@st.composite
def process_tables(draw: st.DrawFn) -> tuple[dict[str, int | None], dict[int, tuple[int, float]], dict[str, float]]:
    """A process table grown one process at a time under init (pid 1), a service's tree, or a stranger's
    tree; the expected sums are kept while growing it, not derived from the table afterwards."""
    stats: dict[int, tuple[int, float]] = {1: (0, draw(st.floats(0, 100)))}
    belongs: dict[int, str | None] = {1: None}
    roots: dict[str, int | None] = {}
    expected = dict.fromkeys(SERVICES, 0.0)
    pids = draw(st.lists(st.integers(2, 10_000), min_size=3, max_size=40, unique=True))
    for i, pid in enumerate(pids):
        seconds = draw(st.floats(0, 1_000))
        if i < len(SERVICES):
            name: str | None = SERVICES[i]
            running = draw(st.booleans()) or i == 0
            roots[SERVICES[i]] = pid if running else None
            parent = 1
            if not running:
                name = None  # a root that is not running leaves its former processes to nobody
        else:
            parent = draw(st.sampled_from(sorted(stats)))
            name = belongs[parent]
        stats[pid] = (parent, seconds)
        belongs[pid] = name
        if name is not None:
            expected[name] += seconds
    order = draw(st.permutations(sorted(stats)))  # /proc lists processes in no order that helps
    return roots, {pid: stats[pid] for pid in order}, expected


@given(process_tables())
def test_each_service_counts_its_whole_tree_and_nothing_else(
    table: tuple[dict[str, int | None], dict[int, tuple[int, float]], dict[str, float]],
) -> None:
    roots, stats, expected = table
    got = tree_cpu(roots, stats)
    assert set(got) == set(SERVICES)
    for name in SERVICES:
        assert abs(got[name] - expected[name]) < 1e-6 * max(1.0, expected[name])


def test_a_process_whose_parent_is_gone_belongs_to_no_service() -> None:
    stats = {10: (1, 5.0), 11: (10, 2.0), 12: (999, 7.0)}
    assert tree_cpu({"kafka": 10, "postgresql": None}, stats) == {"kafka": 7.0, "postgresql": 0.0}
