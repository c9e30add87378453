"""Property-based tests over hostile and careless input (issue 10).

For every generated plan, profile, waivers file, facts directory and command line
(hostile.py), ``acpcheck`` must (judge.py): exit 0, 1, 2, 4 or 5 and never with a
traceback; put ``file:line`` on every problem line of an exit 4; finish in bounded
time and memory; and never print or write the planted canary secret. Reports it
writes must be well-formed.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import hostile
import pytest
from hypothesis import given
from hypothesis import strategies as st
from judge import TALLY, violations
from sandbox import RSS_LIMIT_KB, Sandbox


def judge(kind: str, case: hostile.Case, sandbox: Sandbox) -> None:
    with tempfile.TemporaryDirectory(prefix="acpfuzz-") as name:
        directory = Path(name)
        case.lay_out(directory)
        outcome = sandbox.run(case.argv, directory, case.env)
        broken = violations(case, directory, outcome)
    tally = TALLY[kind]
    tally["cases"] += 1
    tally["timeout" if outcome.code is None else f"exit {outcome.code}"] += 1
    for violation in broken:
        tally[f"broken: {violation}"] += 1
    if outcome.max_rss_kb > RSS_LIMIT_KB * 0.8:
        sandbox.close()  # start the next case from a fresh worker
    assert not broken, (
        f"{case.label}: {broken}\nargv: {case.argv}\nfiles: {sorted(case.files)}\n--- output "
        f"---\n{outcome.output[-3000:]}"
    )


@pytest.mark.parametrize("kind", list(hostile.STRATEGIES))
@given(data=st.data())
def test_hostile_input(sandbox: Sandbox, kind: str, data: st.DataObject) -> None:
    """One property per kind of input: plans, profiles, waivers, facts, secret references, options."""
    judge(kind, data.draw(hostile.STRATEGIES[kind](), label="case"), sandbox)


@pytest.mark.parametrize("fan", [10, 30])
def test_alias_bomb_is_refused_in_bounded_time_and_memory(sandbox: Sandbox, fan: int) -> None:
    """The 500-byte bomb of the issue (and a bigger one): refused at once, not expanded."""
    levels = 9
    text = (
        hostile.dump(hostile.BASE_PLAN, {}).replace("annotations: {}", "")
        + "x: "
        + hostile.alias_bomb(levels, fan)
        + "\n"
    )
    case = hostile.Case("plan", {"plan.yaml": text}, hostile.run_args(), expect={4})
    judge("plan", case, sandbox)
