"""What must hold for every input, however hostile: the properties the fuzzing asserts.

``violations(case, directory, outcome)`` lists, by class, every promise a run
broke; an empty list is a pass:

- ``crash``       a traceback or INTERNALERROR, or an exit code other than 0, 1, 2, 4, 5
- ``hang``        the case did not finish in time (the worker was killed)
- ``slow``        it finished, but took longer than ``TIME_LIMIT``
- ``memory``      the worker's peak resident memory went over the limit
- ``leak``        the planted canary appears in the output or in a written file
- ``wrong-code``  an exit code the contract does not allow for this case (a usage error that is not 4 …)
- ``no-line``     exit 4 with a problem line that does not say ``file:line:`` (or a fixed file-level reason)
- ``raw-control`` a control or escape character reached the terminal output raw
- ``ill-formed``  a report file that does not parse (XML, JSON, SARIF) or holds raw control characters
"""

from __future__ import annotations

import collections
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from hostile import CANARY, Case
from sandbox import RSS_LIMIT_KB, Outcome

TIME_LIMIT = 15.0
#: kind -> outcome ("exit 4", "broken: leak" …) -> count, for this process (printed by conftest.py).
TALLY: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
EXIT_CODES = {0, 1, 2, 4, 5}

#: Characters that must never reach a terminal raw (tab and newline may, and the carriage
#: return that acpcheck's own progress line starts with).
RAW_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
#: Problems about a file as a whole (it has no line to name).
FILE_LEVEL = re.compile(
    r": (file not found|not a regular file|is a directory|a FIFO|a device|too large|larger than|"
    r"cannot read|permission denied|"
    r"profile .* not found|facts directory not found|not a valid facts file|not readable JSON|no such|"
    r"is in use by|holds files|"
    r"cannot be used as|is not a directory|cannot (be )?(created|written)|extends itself|is empty)",
    re.IGNORECASE,
)


def violations(case: Case, directory: Path, outcome: Outcome) -> list[str]:
    found: list[str] = []
    if outcome.code is None:
        return ["hang"]
    text = outcome.output
    if (
        outcome.crashed
        or outcome.code not in EXIT_CODES
        or "Traceback (most recent call last)" in text
        or "INTERNALERROR" in text
    ):
        found.append("crash")
    if case.expect is not None and outcome.code not in case.expect:
        found.append("wrong-code")
    if outcome.seconds > TIME_LIMIT:
        found.append("slow")
    if outcome.max_rss_kb > RSS_LIMIT_KB:
        found.append("memory")
    written = _written_files(case, directory)
    if CANARY in text or any(CANARY in content for content in written.values()):
        found.append("leak")
    if RAW_CONTROL.search(text):
        found.append("raw-control")
    if outcome.code == 4 and not _every_problem_located(case, text):
        found.append("no-line")
    if _ill_formed(written):
        found.append("ill-formed")
    return found


def _written_files(case: Case, directory: Path) -> dict[str, str]:
    """Every regular file under ``directory`` that the case did not lay out itself, as text."""
    inputs = {directory / name for name in case.files}
    found = {}
    for path in directory.rglob("*"):
        if path.is_symlink() or not path.is_file() or path in inputs:
            continue
        found[str(path.relative_to(directory))] = path.read_bytes().decode("utf-8", "replace")
    return found


def _every_problem_located(case: Case, text: str) -> bool:
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return False
    if any(line.startswith(("usage:", "acpcheck: error:")) for line in lines):
        return True  # an option error: argparse's own usage message
    problems = [
        line for line in lines if not line.startswith(("acpcheck: bad input", "acpcheck:")) and not line.startswith(" ")
    ]
    located = re.compile(r"^(\S.*?:\d+: |--?[a-z-]+: )")
    return bool(problems) and all(located.match(line) or FILE_LEVEL.search(line) for line in problems)


def _ill_formed(written: dict[str, str]) -> bool:
    for name, content in written.items():
        base = name.rsplit("/", 1)[-1]
        try:
            if base == "junit.xml":
                ET.fromstring(content.encode())
            elif base in ("results.json", "results.sarif") or name.endswith(".json") and "/facts/" not in f"/{name}":
                json.loads(content, parse_constant=_no_constant)
        except (ET.ParseError, ValueError):
            return True
        if base in ("junit.xml", "report.html", "summary.md") and RAW_CONTROL.search(content.replace("\r", "")):
            return True
    return False


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")
