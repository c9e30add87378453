"""pytest's own selection on check items (issue 21, item 1): ``--lf``, ``--ff``, ``--nf``,
``--sw`` on pytest's real cache, ``-k`` by check id and target, ``-m`` by area and
severity, serially and under ``-n 2``.

Each run is a pytest process of its own (a second run reads what the first wrote in
``.pytest_cache``), on the first-party node checks ACP-NODE-00x of the example plan's
five nodes, replaying saved facts in which swap is on for cp2 and w1: ACP-NODE-008
(swap is disabled) fails on those two and passes on the other three.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from acpcheck.facts.store import save_facts
from acpcheck.model.plan import load_plan
from acpcheck.run.inputs import CHECKS_DIR
from acpcheck.testing import healthy_node_facts

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "workload-kube-ovn.yaml"
NODES = ("cp1", "cp2", "cp3", "w1", "w2")
SWAP_ON = {"cp2": ("/dev/sda2",), "w1": ("/swapfile",)}
SWAP_CHECK = "checks/node_kernel.py::check_swap_disabled"
FAILED = {f"{SWAP_CHECK}[cp2]", f"{SWAP_CHECK}[w1]"}
#: an item's line in pytest -v output (the path before it is relative to where pytest runs)
VERBOSE_LINE = re.compile(r"(checks/\S+::\w+\[\w+\]) (PASSED|FAILED|SKIPPED)")


class Runs:
    """Runs of pytest in ``pytester.path`` on the first-party checks, each with its own report
    directory, sharing one pytest cache there (the checkout's pyproject.toml is the
    configuration, so ``--strict-markers`` is on, as in this suite)."""

    def __init__(self, pytester: pytest.Pytester) -> None:
        self.pytester = pytester
        self.count = 0
        self.save_facts(SWAP_ON)

    def save_facts(self, swaps: dict[str, tuple[str, ...]]) -> None:
        plan = load_plan(str(EXAMPLE))
        addresses = {node.name: str(node.ipv4 or node.ipv6) for node in plan.spec.nodes}
        save_facts(
            self.pytester.path / "facts",
            {name: healthy_node_facts(name, addresses[name], swaps=swaps.get(name, ())) for name in NODES},
        )

    def __call__(self, *args: str, select: str = "ACP-NODE-00*") -> tuple[pytest.RunResult, Path]:
        self.count += 1
        out = self.pytester.path / f"out{self.count}"
        result = self.pytester.runpytest_subprocess(
            str(CHECKS_DIR),
            f"--acp-plan={EXAMPLE}",
            f"--acp-facts={self.pytester.path / 'facts'}",
            f"--acp-out={out}",
            f"--acp-select={select}",
            f"-o=cache_dir={self.pytester.path / '.pytest_cache'}",
            "--strict-markers",
            *args,
        )
        return result, out


@pytest.fixture
def runs(pytester: pytest.Pytester) -> Runs:
    return Runs(pytester)


def ran(out: Path) -> set[tuple[str, str]]:
    """(check, target) of every result of a run, from its results.json."""
    return {(r["check"], r["target"]) for r in json.loads((out / "results.json").read_text())["results"]}


def in_order(result: pytest.RunResult) -> list[tuple[str, str]]:
    """(node id, outcome) of each item, in the order a serial ``-v`` run ran them."""
    return [match.groups() for match in map(VERBOSE_LINE.search, result.outlines) if match]


def collected(result: pytest.RunResult) -> set[str]:
    """The node ids a ``--co -q`` run lists."""
    return {line for line in result.outlines if line.startswith("checks/")}


@pytest.mark.parametrize("workers", [(), ("-n", "2")], ids=["serial", "xdist"])
def test_lf_reruns_exactly_the_failed_node_items(runs: Runs, workers: tuple[str, ...]) -> None:
    first, first_out = runs(*workers)
    assert first.parseoutcomes()["failed"] == 2 and len(ran(first_out)) > 2
    cache = json.loads((runs.pytester.path / ".pytest_cache" / "v" / "cache" / "lastfailed").read_text())
    assert set(cache) == FAILED

    again, again_out = runs("--lf", *workers)
    again.assert_outcomes(failed=2)
    assert ran(again_out) == {("ACP-NODE-008", "node:cp2"), ("ACP-NODE-008", "node:w1")}
    if not workers:  # xdist's controller does not print the line
        again.stdout.fnmatch_lines(["run-last-failure: rerun previous 2 failures*"])


def test_ff_runs_the_failed_node_items_first_then_the_rest(runs: Runs) -> None:
    _, first_out = runs()
    result, _ = runs("--ff", "-v")
    order = in_order(result)
    assert {nodeid for nodeid, _ in order[:2]} == FAILED and {outcome for _, outcome in order[:2]} == {"FAILED"}
    assert len(order) == len(ran(first_out))
    result.stdout.fnmatch_lines(["run-last-failure: rerun previous 2 failures first*"])


def test_nf_runs_new_items_first(runs: Runs) -> None:
    """After a run of ACP-NODE-008 alone, its items are the known ones: last under --nf."""
    runs(select="ACP-NODE-008")
    result, _ = runs("--nf", "-v")
    order = [nodeid for nodeid, _ in in_order(result)]
    swap_items = {f"{SWAP_CHECK}[{name}]" for name in NODES}
    assert len(order) > len(swap_items) and set(order[-len(swap_items) :]) == swap_items


def test_sw_stops_at_the_first_failure_and_resumes_from_it(runs: Runs) -> None:
    first, _ = runs("--sw", "-v")
    first_order = in_order(first)
    assert first_order[-1] == (f"{SWAP_CHECK}[cp2]", "FAILED")  # stopped there
    first.stdout.fnmatch_lines(["*Interrupted: Test failed, continuing from this test next run*"])

    runs.save_facts({"w1": SWAP_ON["w1"]})  # swap turned off on cp2
    resumed, _ = runs("--sw", "-v")
    resumed_order = in_order(resumed)
    assert resumed_order[0] == (f"{SWAP_CHECK}[cp2]", "PASSED")  # from where it stopped, not from the start
    assert resumed_order[-1] == (f"{SWAP_CHECK}[w1]", "FAILED")
    resumed.stdout.fnmatch_lines([f"*{len(first_order) - 1} deselected*"])


@pytest.mark.parametrize("workers", [(), ("-n", "2")], ids=["serial", "xdist"])
def test_k_selects_by_check_id_and_by_target(runs: Runs, workers: tuple[str, ...]) -> None:
    by_id, _ = runs("--co", "-q", "-k", "ACP-NODE-008", *workers)
    assert collected(by_id) == {f"{SWAP_CHECK}[{name}]" for name in NODES}

    by_target, _ = runs("--co", "-q", "-k", "node:cp2", *workers)
    assert collected(by_target) and all(nodeid.endswith("[cp2]") for nodeid in collected(by_target))

    _, out = runs("-k", "ACP-NODE-008 and not w1", *workers)
    assert ran(out) == {("ACP-NODE-008", f"node:{name}") for name in NODES if name != "w1"}


@pytest.mark.parametrize("workers", [(), ("-n", "2")], ids=["serial", "xdist"])
def test_m_selects_by_area_and_severity(runs: Runs, workers: tuple[str, ...]) -> None:
    """The markers carry each check's area and its severity in the run's profile."""
    select = "ACP-NODE-00*,ACP-VER-*"
    _, everything = runs(select=select)
    results = json.loads((everything / "results.json").read_text())["results"]
    _, high_node = runs("-m", "area_NODE and severity_high", *workers, select=select)
    expected = {(r["check"], r["target"]) for r in results if r["area"] == "NODE" and r["severity"] == "high"}
    assert expected and ran(high_node) == expected and expected != {(r["check"], r["target"]) for r in results}

    _, versions = runs("-m", "area_VER", *workers, select=select)
    assert ran(versions) == {(r["check"], r["target"]) for r in results if r["area"] == "VER"} != set()
