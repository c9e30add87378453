"""Benchmark: the secret scan on values of 64 KiB to 16 MiB (issue 22, item 3).

Every input string goes through every secret shape (``acpcheck.secretshapes``), and a
value may be as long as the 16 MiB input limit. The scan must be linear: each doubling
of the value must about double the time. A pattern that backtracks shows as 4x per
doubling (the URL shape before issue 22: 41 s for 200 KB).

For each kind of value built to defeat one pattern (a long word, ``-eyJ`` over and over,
``password`` and spaces, colons and digits …) and each size, it measures

- ``scan``: CPU seconds of ``secret_shape(value)``, the whole list of shapes;
- ``base``: CPU seconds of a baseline measured on the same value in the same run, one
  ``re`` search that tests every character against a class and finds nothing (a linear
  pass at the speed of C);
- ``scan/base``: the work of the scan in units of that pass: constant when the scan is
  linear, whatever the machine and its load;
- ``x per 2x``: the scan's time over the previous size's (linear: about 2).

and then the whole loader (``parse_yaml`` + secret scan + validation) on a plan
holding the long-word value, which is what ``acpcheck validate`` does.

CPU seconds (``time.process_time``), not wall seconds: the machine this runs on is
shared, and CPU time is what the scan costs. Nothing is asserted; this is a measuring
tool. ``--before`` also times the URL pattern as it was before issue 22 on the small
sizes (it is quadratic: ~4x per doubling, and 16 MiB would take days).

    python bench/secret_scan_bench.py [--max-mib 16] [--before]

Results: printed, and written to bench/out/secret_scan.json.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from acpcheck.model.plan import plan_from_document  # noqa: E402
from acpcheck.secretshapes import secret_shape  # noqa: E402
from acpcheck.yamlsource import parse_yaml  # noqa: E402

OUT = ROOT / "bench" / "out"
KIB = 1024

#: Values built to make one pattern or another try many starting points over long runs.
KINDS: dict[str, Callable[[int], str]] = {
    "long word": lambda n: "a" * n,  # the URL shape's scheme before issue 22
    "mixed word": lambda n: ("Ab3" * n)[:n],
    "-eyJ repeated": lambda n: ("-eyJ" * n)[:n],  # JWT header starts
    "eyJ segments": lambda n: ("eyJ" + "a" * 60 + ".x") * (n // 65),  # a header, never a payload
    "://, no @": lambda n: ("a://" + "b" * 61) * (n // 65),
    "password, spaces": lambda n: ("password" + " " * 56) * (n // 64),
    "-----BEGIN AAA": lambda n: "-----BEGIN " + "A" * (n - 11),
    "$6$ and a run": lambda n: "$6$" + "a" * (n - 3),
    "colons, digits": lambda n: ("a:*:1:2" * n)[:n],
    "Bearer words": lambda n: ("Bearer abcdefgh " * n)[:n],
    "base64 from M": lambda n: ("M" + "A" * 62 + " ") * (n // 64),
}
#: One ``re`` pass that tests every character against a class and finds nothing.
BASELINE = re.compile("[\x00-\x08]")

#: The URL-with-user-info pattern before issue 22, for --before.
URL_BEFORE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/\s@?#]+@")


def cpu(function: Callable[[], object], repeat: int = 3) -> float:
    """Fastest of ``repeat`` runs, in CPU seconds (the fastest is the least disturbed)."""
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        function()
        best = min(best, time.process_time() - started)
    return best


def sizes(max_mib: int) -> list[int]:
    size, found = 64 * KIB, []
    while size <= max_mib * KIB * KIB:
        found.append(size)
        size *= 2
    return found


def plan_with(value: str) -> str:
    base = (ROOT / "examples" / "workload-kube-ovn.yaml").read_text()
    return base.replace("    nodeName: ip\n", f'    nodeName: ip\n    annotations: {{example.com/blob: "{value}"}}\n')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-mib", type=int, default=16, help="largest value, in MiB (default 16: the input limit)")
    parser.add_argument(
        "--before", action="store_true", help="also time the URL pattern before issue 22 (64 and 128 KiB only)"
    )
    args = parser.parse_args()
    results: dict[str, list[dict[str, float]]] = {}
    print(f"{'value':18} {'size':>9} {'scan s':>8} {'base s':>8} {'scan/base':>9} {'x per 2x':>8}")
    for kind, build in KINDS.items():
        rows = results.setdefault(kind, [])
        for size in sizes(args.max_mib):
            value = build(size)
            assert secret_shape(value) is None, kind  # a value that holds no secret: the whole scan runs
            repeat = max(3, 2 * KIB * KIB // size)  # more runs of the small sizes, whose times are short
            scan, base = cpu(partial(secret_shape, value), repeat), cpu(partial(BASELINE.search, value), repeat)
            growth = scan / rows[-1]["scan"] if rows and rows[-1]["scan"] > 0 else float("nan")
            rows.append({"bytes": len(value), "scan": scan, "base": base, "growth": growth})
            print(
                f"{kind:18} {len(value) // KIB:>6} Ki {scan:8.4f} {base:8.4f} {scan / max(base, 1e-9):9.1f} "
                f"{growth:8.2f}"
            )
    loader = results.setdefault("loader: plan with a long word", [])
    for size in sizes(args.max_mib):
        text = plan_with("a" * (size - 2048))  # the plan itself is about 1.2 KiB: the file stays within the limit
        load = cpu(lambda text=text: plan_from_document(parse_yaml(text, "bench.yaml")), repeat=1)
        growth = load / loader[-1]["scan"] if loader and loader[-1]["scan"] > 0 else float("nan")
        loader.append({"bytes": len(text), "scan": load, "growth": growth})
        print(f"{'loader (plan)':18} {len(text) // KIB:>6} Ki {load:8.4f} {'':>8} {'':>9} {growth:8.2f}")
    if args.before:
        before = results.setdefault("URL pattern before issue 22", [])
        for size in (64 * KIB, 128 * KIB):
            value = "a" * size
            took = cpu(partial(URL_BEFORE.search, value), repeat=1)
            growth = took / before[-1]["scan"] if before else float("nan")
            before.append({"bytes": size, "scan": took, "growth": growth})
            print(f"{'URL before #22':18} {size // KIB:>6} Ki {took:8.4f} {'':>8} {'':>9} {growth:8.2f}")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "secret_scan.json").write_text(json.dumps(results, indent=1) + "\n")
    worst = max(
        row["growth"] for kind, rows in results.items() if not kind.startswith("URL pattern before") for row in rows[1:]
    )
    print(f"largest growth per doubling: {worst:.2f}x (linear: about 2; quadratic: about 4)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
