"""The ``--help`` of acpcheck's commands: a formatter that keeps the examples' lines, and
the one function that writes a command's examples and exit codes.

Exit codes are written from the names in ``acpcheck.model.result`` (each command says
what each code means for it), so a number is never typed twice; the numbers and their
meanings for ``run`` are also in docs/interfaces.md ("Exit codes of `acpcheck run`").

Layout rules of the formatter (descriptions and epilogs alike), so that one plain string
reads well at any terminal width:

- a paragraph of lines that start at the margin is prose: joined and wrapped;
- a line indented by two spaces is kept as it is (a command to copy), unless it starts
  with a digit: then it is an exit code row, wrapped under its meaning;
- a line indented further is prose about the line above: wrapped at its indent.
"""

from __future__ import annotations

import argparse
import re
import textwrap
from collections.abc import Mapping, Sequence

from acpcheck.model.result import EXIT_BAD_INPUT

#: What exit 4 means for every command: said once, here.
BAD_INPUT = (
    "bad input: a usage error, or an option value or file acpcheck cannot use; each problem is named (file, line, "
    "field) before anything is run"
)

#: An example's command, and what it does.
Example = tuple[str, str]

_CODE_WIDTH = 3  # the widest exit code, 130
_EXIT_ROW = re.compile(r"  (\d+ +)")  # two spaces, the code, the spaces before its meaning


class HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, with descriptions and epilogs laid out by the rules of this module."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        out: list[str] = []
        for paragraph in text.strip("\n").split("\n\n"):
            prose: list[str] = []
            lines: list[str] = []
            for line in paragraph.splitlines() + [""]:  # the empty line ends the last run of prose
                if line and not line[0].isspace():
                    prose.append(line)
                    continue
                if prose:
                    lines += textwrap.wrap(" ".join(prose), width, initial_indent=indent, subsequent_indent=indent)
                    prose = []
                if line:
                    lines += _indented(line, width, indent)
            out.append("\n".join(lines))
        return "\n\n".join(out)

    def _split_lines(self, text: str, width: int) -> list[str]:
        # never at a hyphen: ACP-NODE-*, built-in and --options stay whole
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)


def _indented(line: str, width: int, indent: str) -> list[str]:
    margin = line[: len(line) - len(line.lstrip())]
    row = _EXIT_ROW.match(line)
    if row:
        hanging = " " * len(row.group(0))  # under the meaning, past the code
    elif len(margin) == 2:
        return [indent + line]  # a command: copied as it is, never broken
    else:
        hanging = margin
    return textwrap.wrap(
        line.strip(), width, initial_indent=indent + margin, subsequent_indent=indent + hanging, break_on_hyphens=False
    )


def epilog(examples: Sequence[Example], exit_codes: Mapping[int, str] | None = None) -> str:
    """The end of a command's ``--help``: its examples, each with what it does, and what each of
    its exit codes means (keys: the ``EXIT_*`` names of ``acpcheck.model.result``; exit 4 is
    always there, with its meaning for every command unless ``exit_codes`` gives one). Without
    ``exit_codes`` (``acpcheck --help``), a line says where each command's are."""
    lines = ["examples:"]
    for command, what in examples:
        lines += [f"  {command}", f"      {what}"]
    if exit_codes is None:
        return "\n".join([*lines, "", "Each command's --help says what its exit codes mean."])
    lines += ["", "exit codes:"]
    for code, meaning in sorted({EXIT_BAD_INPUT: BAD_INPUT, **exit_codes}.items()):
        lines.append(f"  {code:<{_CODE_WIDTH}}  {meaning}")
    return "\n".join(lines)
