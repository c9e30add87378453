"""Count outcomes of generated cases without stopping at the first broken promise.

    python tests/fuzz/survey.py [CASES_PER_KIND] [KIND ...] [--json FILE]

Prints, per kind of input, how many cases ran, their exit codes, and how many
broke each property of ``judge.py`` (with the mutation labels most often behind
each). The "before and after" figures of issue 10 come from this script; the
assertions live in test_fuzz.py, which uses the same generators.
"""

from __future__ import annotations

import collections
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import hostile
from hypothesis import HealthCheck, Phase, given, settings
from judge import violations
from sandbox import Sandbox


def survey(kind: str, cases: int, sandbox: Sandbox) -> dict[str, object]:
    codes: collections.Counter[str] = collections.Counter()
    broken: collections.Counter[str] = collections.Counter()
    causes: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    examples: dict[str, str] = {}
    count = 0

    @settings(
        max_examples=cases,
        database=None,
        phases=[Phase.generate],
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(hostile.STRATEGIES[kind]())
    def one(case: hostile.Case) -> None:
        nonlocal count
        with tempfile.TemporaryDirectory(prefix="acpfuzz-") as name:
            directory = Path(name)
            case.lay_out(directory)
            outcome = sandbox.run(case.argv, directory, case.env)
            found = violations(case, directory, outcome)
        count += 1
        codes["timeout" if outcome.code is None else str(outcome.code)] += 1
        for violation in found:
            broken[violation] += 1
            for label in case.labels or ["clean"]:
                causes[violation][label] += 1
            examples.setdefault(violation, f"{case.label}: {outcome.output[-600:]}")
        if outcome.max_rss_kb > 600 * 1024:
            sandbox.close()  # a fresh worker, so that one case's peak does not count against the next

    one()
    return {
        "kind": kind,
        "cases": count,
        "exit": dict(codes),
        "broken": dict(broken),
        "causes": {k: dict(v.most_common(6)) for k, v in causes.items()},
        "examples": examples,
    }


def main(argv: list[str]) -> int:
    output = None
    if "--json" in argv:
        at = argv.index("--json")
        output = argv[at + 1]
        del argv[at : at + 2]
    cases = int(argv[0]) if argv else 100
    kinds = argv[1:] or list(hostile.STRATEGIES)
    sandbox = Sandbox(timeout=float(__import__("os").environ.get("FUZZ_TIMEOUT", "20")))
    reports = []
    started = time.monotonic()
    try:
        for kind in kinds:
            report = survey(kind, cases, sandbox)
            reports.append(report)
            broken_cases = report["broken"]
            print(f"{kind:<12} {report['cases']:>5} cases  exit {report['exit']}  broken {broken_cases}", flush=True)
            for violation, labels in report["causes"].items():  # type: ignore[union-attr]
                print(f"{'':<14}{violation}: {labels}")
    finally:
        sandbox.close()
    total = sum(int(r["cases"]) for r in reports)  # type: ignore[call-overload]
    print(f"{total} cases in {time.monotonic() - started:.0f} s")
    if output:
        Path(output).write_text(json.dumps(reports, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
