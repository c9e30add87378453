"""The ``acpcheck`` command: a thin front over pytest and the catalogue.

    acpcheck run --plan PLAN [--profile NAME|FILE] [--out DIR] [--waivers FILE] [--check SEL]
    acpcheck validate --plan PLAN
    acpcheck list [--area A] [--scope S] [--profile P] [--json]
    acpcheck explain ID
    acpcheck schema

Input is validated before pytest starts, so bad input exits 4 with every problem
listed and nothing run. Exit codes of ``run``: 0 compliant (warnings allowed),
1 a FAIL (or an expired waiver), 2 no FAIL but an ERROR, 4 bad input,
5 nothing selected, 3 an internal error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
from pathlib import Path
from typing import Sequence

from acpcheck import __version__
from acpcheck.errors import InputError
from acpcheck.model.check import AREAS
from acpcheck.model.result import EXIT_BAD_INPUT, EXIT_ERROR, EXIT_INTERNAL, EXIT_NOTHING_SELECTED


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["lab"]:  # the lab has its own parser (and --help)
        from acpcheck.lab import main as lab_main

        return int(lab_main(arguments[1:]))
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
    except KeyboardInterrupt:
        print("acpcheck: interrupted", file=sys.stderr)
        return EXIT_ERROR


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="acpcheck", description="Checks an Alauda Container Platform cluster plan, its nodes and its clusters.")
    parser.add_argument("--version", action="version", version=f"acpcheck {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = commands.add_parser("run", help="assess a plan (and its nodes and cluster, by profile)")
    run.add_argument("--plan", required=True, help="cluster plan YAML")
    run.add_argument("--profile", default="preinstall", help="built-in profile name or profile file (default: preinstall)")
    run.add_argument("--out", help="report directory (default: reports/out/<run-id>)")
    run.add_argument("--waivers", help="waivers YAML")
    run.add_argument("--facts", metavar="DIR", help="replay evidence saved by a run (<out>/facts) or by `acpcheck gather` instead of connecting")
    run.add_argument("--check", action="append", default=[], metavar="SEL", help="only these checks: ACP-NET-*, area:VER, scope:plan (repeatable)")
    run.add_argument("-n", "--workers", help="parallel workers (pytest-xdist), e.g. 4 or auto")
    run.add_argument("--alluredir", help="also write Allure results here")
    run.add_argument("-v", "--verbose", action="store_true", help="one line per check")
    run.add_argument("pytest_args", nargs="*", help="extra pytest arguments, after --")
    run.set_defaults(handler=_run)

    gather = commands.add_parser("gather", help="collect every node's facts into an evidence directory (for --facts, offline review, bug reports)")
    gather.add_argument("--plan", required=True)
    gather.add_argument("--out", required=True, help="evidence directory: node facts go to DIR/nodes/<node>.json")
    gather.set_defaults(handler=_gather)

    commands.add_parser("lab", help="the local lab: sshd nodes in network namespaces (root only); see `acpcheck lab --help`")

    validate = commands.add_parser("validate", help="validate a plan file only")
    validate.add_argument("--plan", required=True)
    validate.set_defaults(handler=_validate)

    listing = commands.add_parser("list", help="list checks")
    listing.add_argument("--area", type=str.upper, choices=AREAS, help="one of " + ", ".join(AREAS))
    listing.add_argument("--scope", choices=["plan", "node", "cluster"])
    listing.add_argument("--profile", help="only checks this profile selects")
    listing.add_argument("--json", action="store_true", help="machine-readable")
    listing.set_defaults(handler=_list)

    explain = commands.add_parser("explain", help="everything about one check")
    explain.add_argument("id")
    explain.set_defaults(handler=_explain)

    schema = commands.add_parser("schema", help="print the plan's JSON Schema")
    schema.set_defaults(handler=_schema)
    return parser


def _run(args: argparse.Namespace) -> int:
    import pytest

    from acpcheck.model.plan import load_plan
    from acpcheck.model.profile import load_profile
    from acpcheck.model.waivers import load_waivers
    from acpcheck.model.result import new_run_id

    # Validate everything first: nothing runs on bad input.
    problems = []
    plan = None
    for loader, value in ((load_plan, args.plan), (load_profile, args.profile), (load_waivers, args.waivers)):
        try:
            result = loader(value)
            plan = result if loader is load_plan else plan
        except InputError as error:
            problems.extend(error.problems)
    if problems:
        raise InputError(problems)
    assert plan is not None

    run_id = new_run_id()
    out_dir = Path(args.out or Path("reports/out") / run_id)
    spec = plan.spec
    print(
        f"acpcheck {__version__}: {plan.metadata.name} (ACP {spec.acp.version}, {spec.cluster.role} {spec.cluster.type}, "
        f"Kubernetes {spec.cluster.kubernetes_version}, {len(spec.nodes)} nodes), profile {args.profile}",
        flush=True,
    )
    argv = [
        # Only the plugins a run needs: whatever else is installed next to acpcheck
        # cannot slow the run down or change it (see the environment below).
        "-p",
        "acpcheck.plugin",
        "--pyargs",
        "acpcheck.checks",
        "-c",
        str(Path(__file__).with_name("run.ini")),  # our settings, never the caller's pytest.ini
        "--rootdir",
        str(Path(__file__).resolve().parent.parent),
        "-p",
        "no:cacheprovider",
        # Per-item log and warning capture costs ~7 % of a large node run and buys
        # nothing here: checks report through their results, and acpcheck's own
        # warnings (e.g. an insecure host-key policy) should reach the terminal.
        "-p",
        "no:logging",
        "-p",
        "no:warnings",
        "--no-header",
        "-q" if not args.verbose else "-v",
        # Findings are printed once, by acpcheck's own summary; pytest's failure
        # sections would repeat them (pass `-- --tb=short` to see tracebacks).
        "--tb=no",
        "-rN",
        # option=value form: pytest would take a bare path value for a test path
        # when it looks for its rootdir and ini file.
        f"--acp-plan={args.plan}",
        f"--acp-profile={args.profile}",
        f"--acp-out={out_dir}",
        f"--acp-run-id={run_id}",
    ]
    if args.waivers:
        argv.append(f"--acp-waivers={args.waivers}")
    if args.facts:
        argv.append(f"--acp-facts={args.facts}")
    if args.check:
        argv.append(f"--acp-select={','.join(args.check)}")
    if args.workers:
        argv += ["-p", "xdist.plugin", "-n", args.workers, "--dist", "loadgroup"]
    if args.alluredir:
        argv += ["-p", "allure_pytest.plugin", "--alluredir", args.alluredir]
    argv += args.pytest_args
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # inherited by xdist workers too
    code = pytest.main(argv)
    if code == pytest.ExitCode.USAGE_ERROR:
        return EXIT_BAD_INPUT
    if code == pytest.ExitCode.NO_TESTS_COLLECTED:
        return EXIT_NOTHING_SELECTED
    results = out_dir / "results.json"
    if code in (pytest.ExitCode.INTERNAL_ERROR, pytest.ExitCode.INTERRUPTED) or not results.exists():
        print(f"acpcheck: the run did not complete (pytest exit {int(code)})", file=sys.stderr)
        return EXIT_INTERNAL if code != pytest.ExitCode.INTERRUPTED else EXIT_ERROR
    return int(json.loads(results.read_text())["run"]["exitCode"])


def _gather(args: argparse.Namespace) -> int:
    from acpcheck.facts.model import GatherFailure
    from acpcheck.model.plan import load_plan
    from acpcheck.sources import REGISTRY
    from acpcheck.sources.evidence import Evidence, ProgressLine

    plan = load_plan(args.plan)
    evidence = Evidence(plan)
    evidence.gather([REGISTRY["nodes"]], save_to=Path(args.out), progress=ProgressLine())
    results = evidence.raw("nodes")
    failures = [r for r in results.values() if isinstance(r, GatherFailure)]
    for failure in failures:
        print(f"ERROR  {failure.node}: {failure.kind}: {failure.message}", file=sys.stderr)
    print(f"facts of {len(results) - len(failures)}/{len(results)} nodes saved in {Path(args.out) / 'nodes'}/ (replay with `acpcheck run --facts {args.out}`)")
    return EXIT_ERROR if failures else 0


def _validate(args: argparse.Namespace) -> int:
    from acpcheck.model.plan import load_plan

    plan = load_plan(args.plan)
    print(f"{args.plan}: valid plan for {plan.metadata.name} ({len(plan.spec.nodes)} nodes)")
    return 0


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
        return 0
    for c in checks:
        print(f"{c.id:<13} {str(c.severity):<8} {c.scope.value:<7} {c.title}")
    print(f"{len(checks)} checks")
    return 0


def _explain(args: argparse.Namespace) -> int:
    from acpcheck.catalog import load_catalog

    catalog = load_catalog()
    meta = catalog.get(args.id.upper())
    if meta is None:
        import difflib

        close = difflib.get_close_matches(args.id.upper(), catalog, n=3)
        print(f"acpcheck: no check {args.id!r}" + (f"; did you mean {', '.join(close)}?" if close else ""), file=sys.stderr)
        return EXIT_BAD_INPUT
    info = meta.as_dict()
    print(f"{meta.id}: {meta.title}")
    print(f"  severity  {info['severity']}\n  scope     {info['scope']}" + (f" ({', '.join(info['roles'])})" if info["roles"] else ""))
    print(f"  applies   {info['applies']}")
    print("\nWhy:\n" + textwrap.indent(meta.rationale, "  "))
    print("\nFix:\n" + textwrap.indent(textwrap.fill(meta.remediation, 90), "  "))
    print("\nSources:\n" + "\n".join(f"  {ref}" for ref in meta.refs))
    return 0


def _schema(args: argparse.Namespace) -> int:
    from acpcheck.model.plan import plan_json_schema

    print(json.dumps(plan_json_schema(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
