"""Print the check catalogue as a Markdown table, or rewrite README.md's copy.

    python scripts/catalogue.py            # print
    python scripts/catalogue.py --update   # rewrite the block between the markers in README.md

tests/unit/test_readme.py fails when README.md's table is out of date.
"""

from __future__ import annotations

import sys
from pathlib import Path

from acpcheck.catalog import load_catalog

README = Path(__file__).resolve().parents[1] / "README.md"
BEGIN, END = "<!-- catalogue:begin -->", "<!-- catalogue:end -->"


def table() -> str:
    rows = ["| id | the compliant state | severity | scope | applies to |", "|---|---|---|---|---|"]
    for meta in load_catalog().values():
        rows.append(f"| `{meta.id}` | {meta.title} | {meta.severity} | {meta.scope} | {meta.applies.describe()} |")
    return "\n".join(rows)


def updated_readme() -> str:
    text = README.read_text()
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    return f"{head}{BEGIN}\n{table()}\n{END}{tail}"


if __name__ == "__main__":
    if "--update" in sys.argv:
        README.write_text(updated_readme())
    else:
        print(table())
