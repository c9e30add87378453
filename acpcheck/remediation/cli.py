"""``acpcheck remediate`` and ``acpcheck rollback`` (also ``python -m acpcheck.remediation``).

    remediate --plan P [--from results.json] [--check SEL]... [--apply] [--allow-removals] [--out DIR]
    rollback RUN-ID [--journal-dir DIR] [--plan P]

``remediate`` is a dry-run unless ``--apply``: per node the steps, the exact commands
and a unified diff of every file. ``--apply`` performs them (nodes in parallel, steps
in order), journals what undoes each change before making it, and grades the owning
checks again. ``rollback`` undoes every change of a run from its journal, also after
an interrupted or killed apply.

Exit codes. remediate: 0 nothing (left) to do; 1 a dry-run with changes to make, or
after --apply findings that remain (needs reboot, still failing, refused, skipped);
2 a node could not be reached or a step failed (its own changes undone); 4 bad input;
130 interrupted (the journal holds what was done). rollback: 0 every change undone
(commands without a reverse are listed); 2 something could not be undone (a node
could not be reached, another remediation holds it, an undo failed); 4 no such
journal, or one that is damaged, was changed after it was written, is of an older
format, or names a target the plan lacks: refused before any node is touched.
3: acpcheck itself broke. A node held by another remediation is exit 2 for remediate too.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from acpcheck.clihelp import HelpFormatter, epilog
from acpcheck.constants import DEFAULT_OUT
from acpcheck.errors import InputError, Problem, visible
from acpcheck.model.result import EXIT_BAD_INPUT, EXIT_ERROR, EXIT_FAIL, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_OK


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_BAD_INPUT, visible(f"{self.prog}: error: {message}\n"))


def parser() -> argparse.ArgumentParser:
    top = _Parser(
        prog="acpcheck",
        description="Fix what an assessment found, show it first, and undo it.",
        formatter_class=HelpFormatter,
    )
    commands = top.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    fix = commands.add_parser(
        "remediate",
        help="fix the findings that have a remediation step (a dry-run unless --apply)",
        formatter_class=HelpFormatter,
        description=(
            "Fixes the findings of the plan's nodes and cluster that have a remediation step. Without --apply it is a "
            "dry-run: per node the steps, the exact commands and a unified diff of every file, and nothing changes. "
            "With --apply it makes the changes (nodes in parallel, steps in order), journals what undoes each one "
            "before making it, and grades the owning checks again. Removing software or data needs --allow-removals "
            "as well. `acpcheck explain ID` lists the steps that fix a check."
        ),
        epilog=epilog(
            [
                ("acpcheck remediate --plan plan.yaml", "what would change on every node, and why"),
                (
                    "acpcheck remediate --plan plan.yaml --from reports/out/RUN-ID/results.json",
                    "only the findings of that run (graded again now)",
                ),
                ("acpcheck remediate --plan plan.yaml --check ACP-NODE-010 --apply", "fix one check's findings"),
                ("acpcheck remediate --plan plan.yaml --apply --out fix-1", "fix them all; journal in fix-1/journal"),
                ("acpcheck rollback RUN-ID --journal-dir fix-1/journal", "undo that run"),
            ],
            {
                EXIT_OK: "nothing (left) to do",
                EXIT_FAIL: (
                    "a dry-run with changes to make, or after --apply findings that remain (needs reboot, still "
                    "failing, refused, skipped)"
                ),
                EXIT_ERROR: (
                    "a node could not be reached, another remediation holds it, or a step failed (its own changes "
                    "undone)"
                ),
                EXIT_INTERNAL: "acpcheck itself broke",
                EXIT_INTERRUPTED: "interrupted: the journal holds what was done (undo it with `acpcheck rollback`)",
            },
        ),
    )
    fix.add_argument("--plan", required=True, help="cluster plan YAML")
    fix.add_argument(
        "--from",
        dest="results",
        metavar="RESULTS",
        help="only the findings (fail/warn) of this results.json, graded again now",
    )
    fix.add_argument(
        "--check",
        action="append",
        default=[],
        metavar="SEL",
        help="only steps of these checks: ACP-NODE-010, ACP-NODE-00*, tag:X (repeatable)",
    )
    fix.add_argument("--apply", action="store_true", help="make the changes (default: show them only)")
    fix.add_argument(
        "--allow-removals",
        action="store_true",
        help="also remove conflicting packages, stray binaries and leftover paths (backed up on the node)",
    )
    fix.add_argument(
        "--out",
        metavar="DIR",
        help="write remediation.json (and with --apply the journal) here; default with --apply: reports/out/<run-id>",
    )
    fix.add_argument("--run-id", help=argparse.SUPPRESS)
    back = commands.add_parser(
        "rollback",
        help="undo every change of a remediation run, from its journal",
        formatter_class=HelpFormatter,
        description=(
            "Undoes every change of a remediation run, newest first, from the journal `acpcheck remediate --apply` "
            "wrote before each change: also after an apply that was interrupted or killed. The journal is verified "
            "whole before any node is touched; commands that have no reverse are listed."
        ),
        epilog=epilog(
            [
                ("acpcheck rollback RUN-ID", "the run's journal in its default place, reports/out/RUN-ID/journal"),
                ("acpcheck rollback RUN-ID --journal-dir fix-1/journal", "a run applied with --out fix-1"),
            ],
            {
                EXIT_OK: "every change undone (commands without a reverse are listed)",
                EXIT_ERROR: (
                    "something could not be undone: a node could not be reached, another remediation holds it, "
                    "or an undo failed"
                ),
                EXIT_INTERNAL: "acpcheck itself broke",
                EXIT_BAD_INPUT: (
                    "no such journal, or one that is damaged, was changed after it was written, is of an older "
                    "format, or names a target the plan lacks: refused before any node is touched"
                ),
                EXIT_INTERRUPTED: "interrupted",
            },
        ),
    )
    back.add_argument(
        "run_id",
        metavar="RUN-ID",
        help="the id of the remediation run (remediate prints it; its remediation.json has it)",
    )
    back.add_argument("--journal-dir", metavar="DIR", help="the run's journal (default: reports/out/RUN-ID/journal)")
    back.add_argument("--plan", help="the plan to reach the nodes with (default: the one the run used)")
    return top


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as stop:  # usage errors (exit 4) and --help (exit 0) return, they do not exit
        return int(stop.code or 0)
    if not args.command:
        parser().print_help()
        return EXIT_BAD_INPUT
    try:
        return remediate_command(args) if args.command == "remediate" else rollback_command(args)
    except InputError as error:
        print(f"acpcheck: bad input\n{error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("acpcheck: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as error:  # noqa: BLE001 — one line and exit 3, never a traceback with a node's data
        print(
            f"acpcheck: internal error: {type(error).__name__}: {visible(str(error), one_line=True)}", file=sys.stderr
        )
        return EXIT_INTERNAL


def remediate_command(args: argparse.Namespace) -> int:
    from acpcheck.model.plan import load_plan
    from acpcheck.model.profile import selector_problems
    from acpcheck.model.result import new_run_id
    from acpcheck.remediation.output import document, run_lines
    from acpcheck.remediation.runner import Options, SshAccess, findings_of, remediate
    from acpcheck.report.outdir import usable
    from acpcheck.yamlsource import read_input

    plan = load_plan(args.plan)
    problems = selector_problems(args.check)
    if problems:
        raise InputError(problems)
    findings = findings_of(Path(args.results), plan) if args.results else None
    run_id = args.run_id or new_run_id()
    out = Path(args.out) if args.out else (DEFAULT_OUT / run_id if args.apply else None)
    journal_dir = out / "journal" if out is not None and args.apply else None
    if journal_dir is not None and (journal_dir / "run.json").exists():
        raise InputError(
            [Problem(str(out), None, "--out", "already holds a remediation journal; choose another directory")]
        )
    if out is not None:
        usable(out, "--out")  # read-only, full or too long: exit 4 now, before any node is contacted
    plan_path = Path(args.plan).resolve()
    header = {
        "planPath": str(plan_path),
        "planText": read_input(plan_path).decode("utf-8"),  # load_plan read it already: a plan, within the limits
        "options": {"checks": args.check, "from": args.results, "allowRemovals": args.allow_removals},
    }
    options = Options(
        apply=args.apply,
        allow_removals=args.allow_removals,
        selectors=tuple(args.check),
        findings=findings,
        run_id=run_id,
        journal_dir=journal_dir,
        header=header,
    )
    access = SshAccess(plan)
    total = len(plan.spec.nodes)
    done = [0]

    def progress(node: str) -> None:
        done[0] += 1
        print(
            f"\rremediate: {done[0]}/{total} nodes", end="\n" if done[0] == total else "", file=sys.stderr, flush=True
        )

    try:
        # a JournalError (another run's journal in --out, or one made at the same moment) is exit 4
        report = remediate(plan, options, access, progress=progress if sys.stderr.isatty() else None)
    finally:
        access.close()
    code = report.exit_code()
    _write(lambda width: run_lines(report, width))
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "remediation.json").write_text(json.dumps(document(report, code), indent=2) + "\n", encoding="utf-8")
    return code


def rollback_command(args: argparse.Namespace) -> int:
    from acpcheck.model.plan import load_plan
    from acpcheck.remediation.journal import Journal
    from acpcheck.remediation.output import rollback_lines
    from acpcheck.remediation.runner import SshAccess, rollback
    from acpcheck.testing import load_plan_text

    directory = Path(args.journal_dir) if args.journal_dir else DEFAULT_OUT / args.run_id / "journal"
    journal = Journal.open(
        directory
    )  # verified whole, before any node is touched: JournalError (exit 4) names file and record
    if journal.run_id != args.run_id:
        raise InputError(
            [Problem(str(directory), None, "run", f"is the journal of run {journal.run_id}, not {args.run_id}")]
        )
    if args.plan:
        plan = load_plan(args.plan)
    elif Path(journal.header.get("planPath", "")).is_file():
        plan = load_plan(journal.header["planPath"])
    else:
        plan = load_plan_text(journal.header["planText"], journal.header.get("planPath", "plan.yaml"))
    access = SshAccess(plan)
    try:
        report = rollback(plan, journal, access)
    finally:
        access.close()
    _write(lambda width: rollback_lines(report, plan.metadata.name, width))
    return report.exit_code()


def _write(lines_of: Callable[[int], list[tuple[str, dict[str, bool]]]]) -> None:
    """Print to stdout as ``run`` prints its summary: pytest's TerminalWriter wraps to the
    terminal's width (COLUMNS, else 80 off a terminal) and colours on a terminal only
    (NO_COLOR, FORCE_COLOR and PY_COLORS as pytest reads them)."""
    from _pytest._io import TerminalWriter

    writer = TerminalWriter(sys.stdout)
    for text, markup in lines_of(writer.fullwidth):
        writer.line(text, **markup)
    writer.flush()


def after_run(plan: str, out: Path) -> int:
    """``acpcheck run --remediate``: the dry-run of the fixes for that run's findings."""
    print(flush=True)
    return main(["remediate", "--plan", plan, "--from", str(out / "results.json")])
