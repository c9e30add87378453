"""The ``acpcheck`` command: a thin front over pytest and the catalogue.

    acpcheck run --plan PLAN [--profile NAME|FILE] [--out DIR] [--waivers FILE] [--check SEL]
    acpcheck diff OLD NEW [--format text|json]
    acpcheck validate --plan PLAN
    acpcheck list [--area A] [--scope S] [--profile P] [--json]
    acpcheck explain ID
    acpcheck schema
    acpcheck completion bash|zsh

Each command's ``--help`` has a description, examples and its exit codes (acpcheck/clihelp.py).

Input is validated before pytest starts, so bad input exits 4 with every problem
listed and nothing run. Exit codes of ``run``: 0 compliant (warnings allowed),
1 a FAIL (or an expired waiver), 2 no FAIL but an ERROR, 4 bad input (options
and usage errors included, and a path acpcheck cannot read or write: a name too
long, no permission, a read-only or full file system), 5 nothing selected, 3 the
run did not complete (its reports then say "incomplete" and why); with ``--baseline OLD``
only results that were no finding in OLD count (``acpcheck.report.diff``). The exit code
of a run is handed back by the plugin (``RunInputs.exit_code``), never re-read
from a report file; pytest's own early exits with 0 (``-- --co``, ``-- --markers``)
are 0.
"""

from __future__ import annotations

import argparse
import errno
import gc
import importlib.metadata
import json
import os
import re
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from acpcheck import __version__
from acpcheck.clihelp import Example
from acpcheck.completion import SHELLS
from acpcheck.errors import InputError, Problem, visible
from acpcheck.model.check import AREAS
from acpcheck.model.result import (
    EXIT_BAD_INPUT,
    EXIT_ERROR,
    EXIT_FAIL,
    EXIT_INTERNAL,
    EXIT_NOTHING_SELECTED,
    EXIT_OK,
)


class UsageParser(argparse.ArgumentParser):
    """argparse, but a usage error is bad input: exit 4 (argparse's own is 2, which
    acpcheck's contract reserves for an incomplete assessment). Every acpcheck
    command line uses it, ``acpcheck lab`` included."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_BAD_INPUT, visible(f"{self.prog}: error: {_unquoted_secrets(message)}\n"))


def _unquoted_secrets(message: str) -> str:
    """argparse's message with every word that has a secret's shape left out: it quotes
    what was typed (``unrecognized arguments: --token=sk_live_…``)."""
    from acpcheck.secretshapes import secret_shape

    return " ".join("<not shown: looks like a secret>" if secret_shape(word) else word for word in message.split(" "))


class _QuietWhenClosed:
    """A standard stream that, once its reader is gone (``acpcheck run … | head``),
    drops what is written instead of raising BrokenPipeError: the command goes on to
    its end, quietly, and exits with its own code (a compliant plan still exits 0).
    The file descriptor is pointed at /dev/null too, so nothing at exit (Python's
    final flush, xdist, pytest) trips over the closed pipe either."""

    def __init__(self, stream: Any):
        self._stream = stream
        self.reader_gone = False

    def write(self, text: str) -> int:
        if not self.reader_gone:
            try:
                return int(self._stream.write(text))
            except BrokenPipeError:
                self._gone()
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if not self.reader_gone:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._gone()

    def _gone(self) -> None:
        self.reader_gone = True
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(devnull, self._stream.fileno())
            finally:
                os.close(devnull)
        except (OSError, ValueError, AttributeError):
            pass  # not a real file (a test's capture): dropping is enough

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def main(argv: Sequence[str] | None = None) -> int:
    """The ``acpcheck`` command; every subcommand's output to a closed pipe ends quietly."""
    streams = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _QuietWhenClosed(sys.stdout), _QuietWhenClosed(sys.stderr)
    try:
        return _main(argv)
    finally:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        sys.stdout, sys.stderr = streams


def _main(argv: Sequence[str] | None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["lab"]:  # the lab has its own parser (and --help), in its own distribution
        return _lab(arguments[1:])
    if arguments[:1] in (["remediate"], ["rollback"]):  # remediation has its own parser (and --help)
        from acpcheck.remediation.cli import main as remediation_main

        return int(remediation_main(arguments))
    parser = _parser()
    args = parser.parse_args(arguments)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_BAD_INPUT
    try:
        return int(args.handler(args))
    except InputError as error:
        print(f"acpcheck: bad input\n{error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as error:
        problem = path_problem(error, args)
        if problem is None:
            raise
        print(f"acpcheck: bad input\n{problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("acpcheck: interrupted", file=sys.stderr)
        return EXIT_ERROR


#: File-system errors that are the user's or the machine's, never acpcheck's: a path
#: given too long or pointing nowhere, permission, a read-only or full file system.
PATH_ERRORS = frozenset(
    {
        errno.ENAMETOOLONG,
        errno.ENOENT,
        errno.ENOTDIR,
        errno.EISDIR,
        errno.ELOOP,
        errno.EACCES,
        errno.EPERM,
        errno.EROFS,
        errno.ENOSPC,
        errno.EDQUOT,
        errno.EFBIG,
        errno.EEXIST,
        errno.ENXIO,
    }
)


def path_problem(error: OSError, args: argparse.Namespace) -> Problem | None:
    """The Problem (exit 4) of a file-system error about a path, naming the path and
    the option that gave it (when one did); None for any other error, which stays a
    bug of acpcheck's. The input loader and the report directory name their own
    paths already: this is the net under everything else that opens a file (a
    profile or facts path over the file system's name limit was a traceback)."""
    if error.errno not in PATH_ERRORS or error.filename is None:
        return None
    path = os.fsdecode(error.filename)
    option = next(
        (
            f"--{name.replace('_', '-')}"
            for name, value in sorted(vars(args).items())
            if isinstance(value, str) and value and _names(value, path)
        ),
        "",
    )
    cause = error.strerror or str(error)
    writing = error.errno in (errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
    # The loader's and the report directory's words, so a person (and tests/fuzz) reads one language.
    return Problem(path, None, option, f"cannot be written to ({cause})" if writing else f"cannot read file: {cause}")


def _names(given: str, path: str) -> bool:
    """Whether ``path`` is the option value ``given``, lies under it, or is the built-in
    file it names (``--profile NAME`` is looked up as ``profiles/NAME.yaml``)."""
    given = given.rstrip("/") or "/"
    return (
        path == given
        or path.startswith(given + "/")
        or os.path.abspath(path) == os.path.abspath(given)
        or Path(path).stem == given
    )


# Commands other distributions add to `acpcheck` (entry points of this group, named after the command):
# the lab, acpcheck-lab (lab/pyproject.toml), registers `lab`. The product imports none of them.
COMMANDS_GROUP = "acpcheck.commands"


def _lab(arguments: list[str]) -> int:
    """``acpcheck lab ARGS``: the lab's own command line, if the acpcheck-lab distribution is installed."""
    for entry_point in importlib.metadata.entry_points(group=COMMANDS_GROUP, name="lab"):
        return int(entry_point.load()(arguments))
    print(
        "acpcheck lab: the lab is the separate acpcheck-lab distribution, not installed here; "
        "install it with `pip install ./lab` from a source checkout, or `pip install acpcheck-lab`",
        file=sys.stderr,
    )
    return EXIT_BAD_INPUT


def _parser() -> argparse.ArgumentParser:
    """Every command's options and ``--help``; remediate and rollback keep theirs in acpcheck/remediation/cli.py,
    the lab its own in its distribution (here they are only listed)."""
    from acpcheck.clihelp import HelpFormatter, epilog

    parser = UsageParser(
        prog="acpcheck",
        formatter_class=HelpFormatter,
        description=(
            "Checks an Alauda Container Platform cluster plan, its nodes and its clusters against what the ACP "
            "documentation requires: before an install, an upgrade or a CI merge."
        ),
        epilog=epilog(
            [
                ("acpcheck run --plan plan.yaml", "the pre-install assessment: the plan, its nodes over SSH, the LB"),
                ("acpcheck run --plan plan.yaml --profile plan", "the plan alone: no connection, well under a second"),
                ("acpcheck explain ACP-NODE-008", "why a rule exists, how to fix it, where it comes from"),
                ("acpcheck remediate --plan plan.yaml", "the fixes for the findings, shown and not made"),
                ("acpcheck run --help", "a command's options, examples and exit codes"),
            ]
        ),
    )
    parser.add_argument("--version", action="version", version=f"acpcheck {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=UsageParser)

    def command(name: str, summary: str, description: str, examples: list[Example], exits: dict[int, str]) -> Any:
        return commands.add_parser(
            name,
            help=summary,
            description=description,
            epilog=epilog(examples, exits),
            formatter_class=HelpFormatter,
        )

    run = command(
        "run",
        "assess a plan (and its nodes and cluster, by profile)",
        "Assesses a cluster plan with the checks its profile selects: the plan itself, its nodes over SSH, the load "
        "balancer and the connectivity between the nodes, and with a kubeconfig the live cluster and its etcd. "
        "Every input is read and validated first: bad input ends the run before anything connects. Writes "
        "results.json, junit.xml, summary.md, report.html and results.sarif to --out.",
        [
            ("acpcheck run --plan plan.yaml", "the pre-install assessment (profile preinstall)"),
            ("acpcheck run --plan plan.yaml --profile plan --out reports/ci", "the plan alone, no connection"),
            (
                "acpcheck run --plan plan.yaml --profile upgrade --kubeconfig ~/.kube/config",
                "upgrade readiness, with the live cluster's API and etcd",
            ),
            ("acpcheck run --plan plan.yaml --check 'ACP-NODE-*' -n auto", "the node checks only, in parallel"),
            ("acpcheck gather --plan plan.yaml --out evidence", "save every node's facts once, then judge them"),
            ("acpcheck run --plan plan.yaml --facts evidence", "... offline, as often as needed"),
            ("acpcheck run --plan plan.yaml --waivers waivers.yaml --remediate", "accepted findings; then the fixes"),
            ("acpcheck run --plan plan.yaml -- --co", "pytest arguments after --: here, list the items only"),
        ],
        {
            EXIT_OK: "compliant: no FAIL, no ERROR, no expired waiver (WARN allowed)",
            EXIT_FAIL: "at least one FAIL, or an expired waiver (with --baseline: a FAIL that was no finding in it)",
            EXIT_ERROR: "no FAIL, but at least one ERROR (a target could not be checked), or stopped by Ctrl-C",
            EXIT_INTERNAL: "the run did not complete (acpcheck or a plugin broke); its reports say why",
            EXIT_BAD_INPUT: (
                "bad input: plan, profile, waivers, saved facts, kubeconfig, a --baseline that is no results.json "
                "of this cluster, options or an unusable --out; every problem is listed with its file, line and "
                "field, and nothing is run"
            ),
            EXIT_NOTHING_SELECTED: "nothing selected: the --check selectors and the profile select no check",
        },
    )
    judged = run.add_mutually_exclusive_group(required=True)
    judged.add_argument("--plan", help="cluster plan YAML")
    judged.add_argument(
        "--fleet",
        metavar="FILE",
        help=(
            "fleet file YAML (kind: Fleet): every cluster it names (and the workload clusters its global cluster "
            "lists) judged in one run, one verdict each (docs/fleet.md)"
        ),
    )
    run.add_argument(
        "--profile",
        default=None,
        help=(
            "built-in profile name or profile file (default: preinstall; with --fleet: upgrade); an unknown name's "
            "error lists the built-ins"
        ),
    )
    run.add_argument("--out", help="report directory (default: reports/out/<run-id>); locked for the run")
    run.add_argument(
        "--force",
        action="store_true",
        help="write reports into an --out directory that holds files acpcheck did not write",
    )
    run.add_argument("--waivers", help="waivers YAML")
    run.add_argument(
        "--kubeconfig", metavar="FILE", help="kubeconfig of the live cluster (default: the plan's spec.kubeconfig)"
    )
    run.add_argument(
        "--context",
        metavar="NAME",
        help="its context (default: the plan's spec.kubeconfigContext, else its current-context)",
    )
    run.add_argument(
        "--request-timeout",
        metavar="SECONDS",
        help=(
            "deadline of each whole exchange with the Kubernetes API, etcd or an exec credential plugin (default "
            "60; ACPCHECK_REQUEST_TIMEOUT)"
        ),
    )
    run.add_argument(
        "--etcd-sample",
        metavar="N",
        type=int,
        help="read an even sample of N etcd objects instead of all of them (default: all, up to 100000)",
    )
    run.add_argument(
        "--live",
        action="store_true",
        help=(
            "the cluster exists: probe its API servers through the load balancer instead of the pre-install LB "
            "and connectivity proofs"
        ),
    )
    run.add_argument(
        "--remediate",
        action="store_true",
        help=(
            "after the assessment, show the fixes for its findings (a dry-run; apply with `acpcheck remediate --apply`)"
        ),
    )
    run.add_argument(
        "--facts",
        metavar="DIR",
        help="replay evidence saved by a run (<out>/facts) or by `acpcheck gather` instead of connecting",
    )
    run.add_argument(
        "--check",
        action="append",
        default=[],
        metavar="SEL",
        help="only these checks: ACP-NET-*, area:VER, scope:plan (repeatable)",
    )
    run.add_argument(
        "--baseline",
        metavar="RESULTS",
        help=(
            "results.json of an earlier run of this cluster: only findings not in it fail the run (expired waivers "
            "still do); the reports count the known ones and SARIF marks each result new, unchanged or updated"
        ),
    )
    run.add_argument("-n", "--workers", help="parallel workers (pytest-xdist), e.g. 4 or auto")
    run.add_argument(
        "--tx",
        action="append",
        default=[],
        metavar="SPEC",
        help=(
            "a pytest-xdist worker, e.g. ssh=HOST//python=/opt/acpcheck/bin/python on a host with acpcheck installed "
            "(repeatable; a fleet's clusters are spread over them, each gathered on its worker: docs/fleet.md)"
        ),
    )
    run.add_argument("--alluredir", help="also write Allure results here")
    run.add_argument("-v", "--verbose", action="store_true", help="one line per check")
    run.add_argument("pytest_args", nargs="*", metavar="PYTEST_ARG", help="extra pytest arguments, after --")
    run.set_defaults(handler=_run)

    gather = command(
        "gather",
        "collect every node's facts into an evidence directory (for --facts, offline review, bug reports)",
        "Connects to every node of the plan once and saves what the node checks judge, one JSON file per node "
        "(DIR/nodes/<node>.json), judging nothing. `acpcheck run --facts DIR` replays them without connecting: on "
        "another machine, after the nodes are gone, or attached to a bug report.",
        [
            ("acpcheck gather --plan plan.yaml --out evidence", "every node's facts, in evidence/nodes/"),
            ("acpcheck run --plan plan.yaml --facts evidence", "judge them, no connection"),
        ],
        {
            EXIT_OK: "every node's facts saved",
            EXIT_ERROR: "a node could not be reached or read (its failure is saved too, and replays as ERROR)",
        },
    )
    gather.add_argument("--plan", required=True, help="cluster plan YAML")
    gather.add_argument("--out", required=True, help="evidence directory: node facts go to DIR/nodes/<node>.json")
    gather.add_argument(
        "--force", action="store_true", help="write into a directory that holds files acpcheck did not write"
    )
    gather.set_defaults(handler=_gather)

    commands.add_parser(
        "lab", help="the local lab: sshd nodes in network namespaces (root only); see `acpcheck lab --help`"
    )
    commands.add_parser(
        "remediate",
        help=(
            "fix the findings that have a remediation step; a dry-run unless --apply (see `acpcheck remediate --help`)"
        ),
    )
    commands.add_parser("rollback", help="undo a remediation run from its journal (see `acpcheck rollback --help`)")

    diff = command(
        "diff",
        "what changed between two runs: new, fixed, changed and still-failing findings",
        "Compares two results.json files of one cluster, an earlier run (OLD) and a later one (NEW). A finding is "
        "a FAIL, ERROR, WARN, MANUAL or WAIVED result, known by its check and target: new (a finding in NEW only), "
        "fixed (a finding in OLD that NEW passes, skips or has no result for), changed (a finding in both, with "
        "another status or message) and still failing (the same in both). Files of two different clusters are "
        "refused.",
        [
            ("acpcheck diff reports/out/monday/results.json reports/out/today/results.json", "what changed"),
            ("acpcheck diff old.json new.json --format json", "the same, for tools (schema acpcheck/diff/v1)"),
        ],
        {
            EXIT_OK: "nothing new (findings may have been fixed, changed or still be there)",
            EXIT_FAIL: "at least one new finding",
            EXIT_BAD_INPUT: (
                "bad input: a file that cannot be read, is not a results.json or has another schema version, or two "
                "files of different clusters; the file and what is wrong are named"
            ),
        },
    )
    diff.add_argument("old", metavar="OLD", help="results.json of the earlier run")
    diff.add_argument("new", metavar="NEW", help="results.json of the later run")
    diff.add_argument(
        "--format", choices=["text", "json"], default="text", help="text (default) or json (acpcheck/diff/v1)"
    )
    diff.set_defaults(handler=_diff)

    validate = command(
        "validate",
        "validate a plan or fleet file only",
        "Reads and validates a plan (or a fleet file and the plans it names) against its schema, connecting to "
        "nothing and running no check: every problem at once, as file:line: field: what is wrong. A schema problem "
        "is bad input; a plan that is valid but breaks a rule (two CIDRs that overlap) is a finding of `acpcheck "
        "run --profile plan`.",
        [
            ("acpcheck validate --plan plan.yaml", "is this a plan acpcheck can read?"),
            ("acpcheck validate --fleet fleet.yaml", "... a fleet file, with every plan it names"),
        ],
        {EXIT_OK: "valid", EXIT_BAD_INPUT: "not valid (or no such file): every problem is listed"},
    )
    validated = validate.add_mutually_exclusive_group(required=True)
    validated.add_argument("--plan", help="cluster plan YAML")
    validated.add_argument("--fleet", metavar="FILE", help="fleet file YAML (kind: Fleet)")
    validate.set_defaults(handler=_validate)

    listing = command(
        "list",
        "list checks",
        "Lists the check catalogue, one line per check: id, severity, scope and title; filtered by area, scope "
        "or the checks a profile selects.",
        [
            ("acpcheck list --area NODE", "the node checks"),
            ("acpcheck list --profile ci", "what the ci profile runs"),
            ("acpcheck list --json", "every check's metadata, for tools"),
        ],
        {EXIT_OK: "listed (also when no check matches)"},
    )
    listing.add_argument("--area", type=str.upper, choices=AREAS, metavar="AREA", help="one of " + ", ".join(AREAS))
    listing.add_argument("--scope", choices=["plan", "node", "cluster"], help="what the checks look at")
    listing.add_argument("--profile", help="only checks this profile selects (a built-in name or a file)")
    listing.add_argument("--json", action="store_true", help="machine-readable")
    listing.set_defaults(handler=_list)

    explain = command(
        "explain",
        "everything about one check",
        "Everything about one check: severity, scope, when it applies, why the rule exists, how to fix a finding, "
        "the remediation steps that fix it (`acpcheck remediate`) and the docs pages it comes from.",
        [("acpcheck explain ACP-NODE-008", "one check (the case of the id does not matter)")],
        {EXIT_OK: "explained", EXIT_BAD_INPUT: "no such check (close ids are suggested)"},
    )
    explain.add_argument("id", help="a check id, e.g. ACP-NODE-008")
    explain.set_defaults(handler=_explain)

    schema = command(
        "schema",
        "print the plan's (or the fleet file's) JSON Schema",
        "Prints the JSON Schema of the plan file (JSON Schema 2020-12), with a title and a description for every "
        "field: for editors that check and complete a plan as it is typed (the YAML language server).",
        [
            (
                "acpcheck schema > plan.schema.json",
                "then start the plan with: # yaml-language-server: $schema=plan.schema.json",
            )
        ],
        {EXIT_OK: "printed"},
    )
    schema.add_argument(
        "kind", nargs="?", choices=("plan", "fleet"), default="plan", help="whose schema: plan (default) or fleet"
    )
    schema.set_defaults(handler=_schema)

    completion = command(
        "completion",
        "print a shell completion script (bash or zsh)",
        "Prints a completion script for bash or zsh: commands, options, built-in profiles, check ids and files. "
        "It is written from this version's commands, so generate it again after an upgrade.",
        [
            ("source <(acpcheck completion bash)", "bash: add this line to ~/.bashrc"),
            ("source <(acpcheck completion zsh)", "zsh: add this line to ~/.zshrc, after compinit"),
            (
                "acpcheck completion zsh > ~/.zfunc/_acpcheck",
                "zsh, or install it as a function file in a directory of $fpath",
            ),
        ],
        {EXIT_OK: "printed"},
    )
    completion.add_argument("shell", choices=SHELLS, help="the shell: " + " or ".join(SHELLS))
    completion.set_defaults(handler=_completion)
    return parser


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity), at least 1."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def bounded_workers(requested: str) -> str:
    """``-n``: a number of workers, auto or logical, at most the CPUs this process may use.

    Our bound: under ``-n`` the controller gathers every node's evidence first and the
    workers only judge it, which is CPU work with no waiting, so a worker beyond the
    CPUs adds its start-up (importing pytest and acpcheck, reading the evidence) and
    its memory and nothing else. ``-n 1000`` once started a thousand processes. A
    larger number is lowered to the bound, with a line on stderr saying so."""
    if not re.fullmatch(r"\d+|auto|logical", requested):
        raise InputError([Problem("-n", None, "", "give a number of workers, auto or logical")])
    cpus = usable_cpus()
    if requested.isdigit() and int(requested) > cpus:
        print(
            f"acpcheck: -n {int(requested)} lowered to {cpus}: this machine gives acpcheck {cpus} CPU(s), and workers "
            "only judge evidence already gathered, so more workers than CPUs make a run slower, not faster",
            file=sys.stderr,
        )
        return str(cpus)
    return requested


def _run(args: argparse.Namespace) -> int:
    import pytest

    from acpcheck.run.inputs import prepare_run

    if args.profile is None:
        args.profile = "upgrade" if args.fleet else "preinstall"
    if args.fleet:
        # Each member's kubeconfig is the fleet file's; a run-wide one would point them all at one cluster.
        given = [f"--{name}" for name in ("kubeconfig", "context") if getattr(args, name)]
        given += ["--remediate"] if args.remediate else []
        if given:
            raise InputError(
                [
                    Problem(
                        option,
                        None,
                        "",
                        "not with --fleet (each cluster's kubeconfig and context are in the fleet file; remediate "
                        "one cluster at a time with --plan)",
                    )
                    for option in given
                ]
            )
    if args.workers is not None:
        args.workers = bounded_workers(args.workers)
    # Everything is read and checked once, here, before pytest starts: bad input is
    # exit 4 with nothing run, and the report directory is locked for this run.
    # Read by the live-cluster sources, in this process and in xdist workers alike.
    if args.live:
        os.environ["ACPCHECK_LIVE"] = "1"
    if args.request_timeout is not None:
        from acpcheck.transport.deadline import REQUEST_TIMEOUT_ENV, request_timeout

        try:
            request_timeout({REQUEST_TIMEOUT_ENV: args.request_timeout})
        except ValueError as error:
            raise InputError([Problem("--request-timeout", None, "", str(error))]) from None
        os.environ[REQUEST_TIMEOUT_ENV] = args.request_timeout  # read by the live sources, here and in xdist workers
    if args.kubeconfig or args.context or args.etcd_sample is not None:
        from acpcheck.sources.encryption_scan import SAMPLE_ENV
        from acpcheck.transport.kube import CONTEXT_ENV, KUBECONFIG_ENV

        if args.etcd_sample is not None and args.etcd_sample < 1:
            raise InputError([Problem("--etcd-sample", None, "", "give a number of objects, 1 or more")])
        if args.kubeconfig:
            os.environ[KUBECONFIG_ENV] = str(Path(args.kubeconfig).resolve())
        if args.context:
            os.environ[CONTEXT_ENV] = args.context
        if args.etcd_sample is not None:
            os.environ[SAMPLE_ENV] = str(args.etcd_sample)
    if args.baseline and not args.fleet:  # a fleet's is checked as the run starts (the collector)
        from acpcheck.model.plan import load_plan
        from acpcheck.report.diff import Baseline, refuse_other_cluster

        # Exit 4 naming the file before anything runs (the collector reads it again, for use).
        baseline = Baseline.read(args.baseline)
        try:
            cluster = load_plan(args.plan).metadata.name
        except InputError:
            cluster = None  # prepare_run lists the plan's problems with every other one
        if cluster is not None:
            refuse_other_cluster(baseline.file, cluster, "the plan (metadata.name)", "--baseline", fleet=False)
    from acpcheck.catalog import load_catalog

    inputs = prepare_run(
        args.plan,
        args.profile,
        args.waivers,
        args.out,
        None,
        args.check,
        args.facts,
        args.force,
        args.alluredir,
        known_checks=load_catalog(),
        fleet=args.fleet,
    )
    inputs.command_line = True  # what went wrong is said here, on stderr (_run_checks)
    try:
        code = _run_checks(args, inputs, pytest)
    finally:
        inputs.out.release()
    if (
        args.remediate and not args.facts and code in (0, 1, 2) and not inputs.failure
    ):  # an interrupted run (2) wrote no results.json
        from acpcheck.remediation.cli import after_run

        after_run(args.plan, inputs.out.path)
    return code


def _run_checks(args: argparse.Namespace, inputs: Any, pytest: Any) -> int:
    from acpcheck.run.inputs import CHECKS_DIR, CHECKS_PACKAGE

    plan = inputs.plan
    spec = plan.spec
    if inputs.fleet is not None:
        members = inputs.fleet.members
        about = (
            f"fleet {inputs.fleet.name} (target ACP {inputs.fleet.target}, {len(members)} clusters: "
            f"{', '.join(m.name for m in members[:8])}{', …' if len(members) > 8 else ''})"
        )
    else:
        about = (
            f"{plan.metadata.name} (ACP {spec.acp.version}, {spec.cluster.role} {spec.cluster.type}, Kubernetes "
            f"{spec.cluster.kubernetes_version}, {len(spec.nodes)} nodes)"
        )
    print(visible(f"acpcheck {__version__}: {about}, profile {args.profile}", one_line=True), flush=True)
    # xdist hands a remote (--tx ssh=…) worker the command line with every argument that
    # is an existing path rewritten relative to an rsync root, and refuses the run when it
    # is not under one: there, the checks are named by package and each path option is
    # given as option=value, which xdist passes on as it is (so acpcheck is installed at
    # the same path on each worker host: docs/fleet.md). The environment does not travel
    # over SSH either, so a remote worker loads its entry-point plugins itself: plugins are
    # named by their entry points ("acpcheck", "xdist", "allure_pytest"), which pytest
    # loads once whether it loads entry points by itself or not. Each is one argument
    # (``-pacpcheck``): a bare ``acpcheck`` is a path in a checkout, which xdist would rewrite.
    remote = bool(args.tx)
    argv = [
        # Only the plugins a run needs: whatever else is installed next to acpcheck
        # cannot slow the run down or change it (see the environment below).
        "-pacpcheck",
        # The first-party checks by their directory, with conftest.py files looked for
        # there and below only: given a package name, pytest would import the
        # conftest.py of the caller's working directory and its tests/ (someone
        # else's code, in every run), and per-path hook proxies would cost every item.
        *(["--pyargs", CHECKS_PACKAGE] if remote else [str(CHECKS_DIR)]),
        f"--confcutdir={CHECKS_DIR}",
        f"--config-file={Path(__file__).with_name('run.ini')}",  # our settings, never the caller's pytest.ini
        f"--rootdir={Path(__file__).resolve().parent.parent}",
        "-pno:cacheprovider",
        # Per-item log, warning and output capture costs ~12 % of a large node run
        # and buys nothing here: checks report through their results (they do not
        # print), and acpcheck's own warnings (e.g. an insecure host-key policy)
        # should reach the terminal.
        "-pno:logging",
        "-pno:warnings",
        "-pno:capture",
        # They report exceptions nobody caught as pytest warnings, and their clean-up
        # runs gc.collect() five times over the run's whole heap (1 s at 1,000 nodes).
        "-pno:unraisableexception",
        "-pno:threadexception",
        "--no-header",
        "-q" if not args.verbose else "-v",
        # Findings are printed once, by acpcheck's own summary; pytest's failure
        # sections would repeat them (pass `-- --tb=short` to see tracebacks).
        "--tb=no",
        "-rN",
        # option=value form: pytest would take a bare path value for a test path
        # when it looks for its rootdir and ini file. The plugin takes the input
        # from `inputs` (registered below), already read and checked.
        f"--acp-fleet={args.fleet}" if args.fleet else f"--acp-plan={args.plan}",
        f"--acp-profile={args.profile}",
        f"--acp-out={inputs.out.path}",
        f"--acp-run-id={inputs.run_id}",
    ]
    if args.waivers:
        argv.append(f"--acp-waivers={args.waivers}")
    if args.facts:
        argv.append(f"--acp-facts={args.facts}")
    if args.baseline:
        argv.append(f"--acp-baseline={args.baseline}")
    if inputs.select:
        argv.append(f"--acp-select={','.join(inputs.select)}")
    if args.workers:
        # A worker that dies is not replaced: with --dist loadgroup, pytest-xdist 3.8
        # hangs for ever once it replaces one (pytest-dev/pytest-xdist#1323, #1327).
        # The run ends instead, and its reports say which check gave no result (exit 3).
        argv += ["-pxdist", "-n", args.workers, "--dist", "loadgroup", "--max-worker-restart", "0"]
    elif args.tx:
        argv += ["-pxdist", "--dist", "loadgroup", "--max-worker-restart", "0"]
    for spec_text in args.tx:
        argv += ["--tx", spec_text]
    if args.alluredir:
        argv += ["-pallure_pytest", f"--alluredir={args.alluredir}"]
    argv += args.pytest_args
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # inherited by xdist workers too
    # No cyclic garbage collection while pytest runs: a large run keeps its items,
    # evidence and results to the end, and each full collection walks them all
    # again (a fifth of the CPU of a 1,000-node run, with the same peak memory).
    gc.disable()
    try:
        code = pytest.main(argv, plugins=[inputs])
    finally:
        gc.enable()
    if code == pytest.ExitCode.USAGE_ERROR:
        return EXIT_BAD_INPUT
    if code == pytest.ExitCode.NO_TESTS_COLLECTED:
        return EXIT_NOTHING_SELECTED
    if inputs.exit_code is not None:
        # The collector reached the end: its code, 3 (or 2, interrupted) with the
        # reason when the run did not complete, 4 when --out could not take the reports.
        if inputs.failure:
            print(f"acpcheck: {inputs.failure}", file=sys.stderr)
        return int(inputs.exit_code)
    if code == pytest.ExitCode.OK:
        return EXIT_OK  # pytest ended early by itself, and well: -- --co, --markers, --fixtures, --help, --version
    print(f"acpcheck: the run did not complete (pytest exit {int(code)})", file=sys.stderr)
    return EXIT_ERROR if code == pytest.ExitCode.INTERRUPTED else EXIT_INTERNAL


def _gather(args: argparse.Namespace) -> int:
    from acpcheck.facts.model import GatherFailure
    from acpcheck.model.plan import load_plan, secret_reference_problems
    from acpcheck.model.result import new_run_id
    from acpcheck.report.outdir import OutDir
    from acpcheck.run.inputs import discover_ssh_hosts
    from acpcheck.sources import REGISTRY
    from acpcheck.sources.evidence import Evidence, ProgressLine

    plan = load_plan(args.plan)
    problems = secret_reference_problems(plan)
    if problems:
        raise InputError(problems)
    # A hosted control plane's workers are its management cluster's SSH hosts, as in a run; their
    # list is saved beside their facts, so that `run --facts` judges the same nodes.
    plan, ssh_hosts = discover_ssh_hosts(plan, [REGISTRY["nodes"]], None)
    sources = [REGISTRY["nodes"], *([REGISTRY["sshhosts"]] if ssh_hosts is not None else [])]
    # Locked like a run's --out; adds to what is there and deletes nothing.
    out = OutDir.claim(Path(args.out), new_run_id(), args.force, ours=("nodes", "sshhosts"), retire=False)
    try:
        out.adopt("nodes")
        if ssh_hosts is not None:
            out.adopt("sshhosts")
        evidence = Evidence(plan)
        evidence.gather(sources, save_to=Path(args.out), progress=ProgressLine())
    finally:
        out.release()
    results = evidence.raw("nodes")
    failures = [r for r in results.values() if isinstance(r, GatherFailure)]
    for failure in failures:
        print(visible(f"ERROR  {failure.node}: {failure.kind}: {failure.message}", True), file=sys.stderr)
    print(
        visible(
            (
                f"facts of {len(results) - len(failures)}/{len(results)} nodes saved in "
                f"{Path(args.out) / 'nodes'}/ (replay with `acpcheck run --facts {args.out}`)"
            ),
            True,
        )
    )
    return EXIT_ERROR if failures else EXIT_OK


def _diff(args: argparse.Namespace) -> int:
    import shutil

    from acpcheck.jsontext import dumps
    from acpcheck.report.diff import (
        compare,
        diff_document,
        diff_exit_code,
        diff_text,
        read_results,
        refuse_other_run,
    )

    old, new = read_results(args.old), read_results(args.new)
    refuse_other_run(new, old, visible(args.old, one_line=True))
    changes = compare(old, new)
    if args.format == "json":
        print(dumps(diff_document(old, new, changes), expand=2))
    else:
        print("\n".join(diff_text(old, new, changes, shutil.get_terminal_size().columns)))
    return diff_exit_code(changes)


def _validate(args: argparse.Namespace) -> int:
    from acpcheck.model.plan import load_plan

    if args.fleet:
        from acpcheck.model.fleet import load_fleet

        fleet = load_fleet(args.fleet)
        names = ", ".join(member.name for member in fleet.members)
        print(visible(f"{args.fleet}: valid fleet {fleet.name} ({len(fleet.members)} clusters: {names})", True))
        return EXIT_OK
    plan = load_plan(args.plan)
    print(visible(f"{args.plan}: valid plan for {plan.metadata.name} ({len(plan.spec.nodes)} nodes)", True))
    return EXIT_OK


def _list(args: argparse.Namespace) -> int:
    from acpcheck.catalog import load_catalog
    from acpcheck.model.profile import load_profile

    checks = list(load_catalog().values())
    if args.area:
        checks = [c for c in checks if c.area == args.area]
    if args.scope:
        checks = [c for c in checks if c.scope.value == args.scope]
    if args.profile:
        profile = load_profile(args.profile)
        checks = [c for c in checks if profile.selects(c)]
    if args.json:
        print(json.dumps([c.as_dict() for c in checks], indent=2))
        return EXIT_OK
    for c in checks:
        print(f"{c.id:<13} {c.severity!s:<8} {c.scope.value:<7} {c.title}")
    print(f"{len(checks)} checks")
    return EXIT_OK


def _explain(args: argparse.Namespace) -> int:
    from acpcheck.catalog import load_catalog

    catalog = load_catalog()
    meta = catalog.get(args.id.upper())
    if meta is None:
        import difflib

        close = difflib.get_close_matches(args.id.upper(), catalog, n=3)
        print(
            visible(f"acpcheck: no check {args.id!r}" + (f"; did you mean {', '.join(close)}?" if close else ""), True),
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    info = meta.as_dict()
    print(f"{meta.id}: {meta.title}")
    print(
        f"  severity  {info['severity']}\n  scope     {info['scope']}"
        + (f" ({', '.join(info['roles'])})" if info["roles"] else "")
    )
    print(f"  applies   {info['applies']}")
    print("\nWhy:\n" + textwrap.indent(meta.rationale, "  "))
    print("\nFix:\n" + textwrap.indent(textwrap.fill(meta.remediation, 90), "  "))
    print("\n" + _remediation_steps(meta.id))
    print("\nSources:\n" + "\n".join(f"  {ref}" for ref in meta.refs))
    print("\n" + _seed_lines(meta.refs))
    return EXIT_OK


def _seed_lines(refs: tuple[str, ...]) -> str:
    """The explain section on the seed pages among a rule's sources (acpcheck/matrix/seeds.yaml)."""
    from acpcheck.matrix.seeds import seeds_of

    found = seeds_of(refs)
    if not found:
        return "Seed:\n  none: no source of this rule is one of the seed pages (acpcheck/matrix/seeds.yaml)"
    return "Seed:\n" + "\n".join(f"  {seed.file} ({seed.title}): {seed.url}" for seed in found)


def _remediation_steps(check_id: str) -> str:
    """The explain section on `acpcheck remediate`: the steps that fix ``check_id``
    (registered by the check modules the catalogue imported), or that none does."""
    from acpcheck.remediation.steps import steps_for

    steps = steps_for(check_id)
    lines = ["Remediation steps (`acpcheck remediate`, a dry-run unless --apply):"]
    if not steps:
        lines.append("  none: acpcheck does not change anything for this check; fix it by hand as above")
    for step in steps:
        where = "the cluster" if step.target == "cluster" else "each node where the check fails"
        removes = "; deletes software or data: only with --allow-removals" if step.removes else ""
        lines.append(
            textwrap.fill(
                f"{step.id} ({where}{removes}): {step.does}", 90, initial_indent="  ", subsequent_indent="    "
            )
        )
    return "\n".join(lines)


def _completion(args: argparse.Namespace) -> int:
    from acpcheck.completion import commands_of, script, subcommands, words
    from acpcheck.remediation.cli import parser as remediation_parser

    commands = commands_of(_parser(), replacements=subcommands(remediation_parser()))
    print(script(args.shell, _parser(), commands, words()), end="")
    return EXIT_OK


def _schema(args: argparse.Namespace) -> int:
    from acpcheck.model.plan import plan_json_schema

    if args.kind == "fleet":
        from acpcheck.model.fleet import fleet_json_schema

        print(json.dumps(fleet_json_schema(), indent=2))
        return EXIT_OK
    print(json.dumps(plan_json_schema(), indent=2))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
