"""``acpcheck lab`` / ``python -m acpcheck_lab``: up, status, list, down (root only).

Exit codes: 0 done (status: every node reachable), 1 the lab failed or a node is
unreachable, 4 bad input (scenario file, options and usage errors, subnets that are
invalid, too small or already in use on this machine, a name or state dir another lab
has).
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import sys
from collections.abc import Sequence
from pathlib import Path

from acpcheck.cli import UsageParser
from acpcheck.errors import InputError, Problem
from acpcheck_lab import core, registry, socks5
from acpcheck_lab.host import LabError
from acpcheck_lab.info import LabInfo
from acpcheck_lab.layout import (
    DEFAULT_STATE_DIR,
    DEFAULT_SUBNETS,
    LABS_PREFIX,
    NARROWEST_PREFIX,
    SUBNETS_ENV,
    WIDEST_PREFIX,
    StatePaths,
)
from acpcheck_lab.scenario import healthy_scenario, load_scenario, scaled_scenario, shipped_scenarios

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 4


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_BAD_INPUT
    try:
        return int(args.handler(args))
    except InputError as error:
        print(f"acpcheck lab: bad input\n{error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except LabError as error:
        print(f"acpcheck lab: {error}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        state = getattr(args, "state", None) or DEFAULT_STATE_DIR
        print(f"acpcheck lab: interrupted (run `acpcheck lab down --state {state}` to clean up)", file=sys.stderr)
        return EXIT_FAILED
    except BrokenPipeError:  # `acpcheck lab up | head`: the lab is up, the reader left
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


DESCRIPTION = """\
A local lab for acpcheck: real sshd "nodes" in network namespaces of this machine, with
real defects, and a ready-to-use plan (root only).

Several labs can be up at once. Each has its own name (its kernel objects are named
acplabNAME-…), its own state dir and its own subnets inside 198.18.0.0/15: `up` picks a
free name (1, 2, …) and the next free pair of subnets unless told, and refuses a name,
state dir or subnets another lab has, naming that lab and its state dir. `down --state
DIR` takes down that lab only; `down --all` removes every lab on this machine (for a
crashed lab whose state dir is lost)."""

EXAMPLES = f"""\
examples:
  acpcheck lab up                                   # the demo scenario, state {DEFAULT_STATE_DIR}
  acpcheck lab up --scenario defects --state /tmp/lab-b   # a second lab beside it
  acpcheck lab up --nodes 200 --name b --subnets 198.18.8.0/22,198.19.8.0/24
  acpcheck lab list                                 # the labs up on this machine
  acpcheck lab status --state /tmp/lab-b
  acpcheck lab down --state /tmp/lab-b              # that lab only
  acpcheck lab down --all                           # every lab (also crashed ones)

exit codes:
  0  done (status: every node answers SSH)
  1  the lab failed, or (status) a node or the proxy does not answer
  4  bad input: scenario, options, subnets invalid, too small or in use here,
     a name or state dir another lab has"""


def _parser() -> argparse.ArgumentParser:
    # A usage error is bad input, 4, as for every acpcheck command (argparse's own 2 means "incomplete").
    parser = UsageParser(
        prog="acpcheck lab",
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(metavar="COMMAND", parser_class=UsageParser)

    def lab_options(command: argparse.ArgumentParser) -> None:
        """--state or --name: which lab a command is about."""
        which = command.add_mutually_exclusive_group()
        which.add_argument("--state", metavar="DIR", help=f"the lab's state directory (default: {DEFAULT_STATE_DIR})")
        which.add_argument("--name", metavar="NAME", help="the lab's name (acpcheck lab list shows them)")

    up = commands.add_parser(
        "up",
        help="build a lab and write its plan",
        description=(
            "Build a lab and write its plan into the state dir. Other labs may be up: this one gets the first free "
            "name and the next free subnets unless --name or --subnets say otherwise."
        ),
    )
    up.add_argument(
        "--scenario",
        default=None,
        help=f"scenario file or shipped name ({', '.join(shipped_scenarios())}); default: demo",
    )
    up.add_argument(
        "--nodes",
        type=int,
        metavar="N",
        help=(
            "N healthy nodes behind a load balancer (benchmarks); with --scenario: the scenario with healthy "
            "workers added up to N nodes"
        ),
    )
    up.add_argument(
        "--state",
        metavar="DIR",
        help=f"state directory, one lab each (default: {DEFAULT_STATE_DIR}, with --name {DEFAULT_STATE_DIR}-NAME)",
    )
    up.add_argument(
        "--name",
        metavar="NAME",
        help=(
            f"one or two lowercase letters or digits; the lab's kernel objects are named {LABS_PREFIX}NAME-… "
            "(default: the first free number, 1, 2, …)"
        ),
    )
    up.add_argument(
        "--subnets",
        metavar="DIRECT,HIDDEN",
        help=(
            f"the lab's two IPv4 subnets, /{WIDEST_PREFIX} to /{NARROWEST_PREFIX} (default: ${SUBNETS_ENV}, else "
            f"the first pair like {DEFAULT_SUBNETS} inside 198.18.0.0/15 that no lab and nothing here uses)"
        ),
    )
    up.add_argument("--json", action="store_true", help="print the lab's description as JSON")
    up.set_defaults(handler=_up)

    status = commands.add_parser("status", help="a lab's nodes, addresses and whether each answers SSH")
    lab_options(status)
    status.add_argument("--json", action="store_true")
    status.set_defaults(handler=_status)

    listing = commands.add_parser("list", help="the labs up on this machine: name, state dir, subnets, nodes")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=_list)

    down = commands.add_parser(
        "down",
        help="remove a lab (also after a failed up); --all: every lab",
        description=(
            "Remove the lab of --state (or --name): its processes, namespaces, links, route and the state dir's "
            "contents. Other labs are left alone. --all removes every lab on this machine, found by the prefix "
            f"{LABS_PREFIX} all labs share (for a crashed lab whose state dir or record is lost)."
        ),
    )
    lab_options(down)
    down.add_argument("--all", action="store_true", dest="all_labs", help="every lab on this machine")
    down.add_argument("--purge", action="store_true", help="also delete the keys (the whole state dir)")
    down.set_defaults(handler=_down)

    scenarios = commands.add_parser("scenarios", help="list the shipped scenarios")
    scenarios.set_defaults(handler=_scenarios)

    connect = commands.add_parser(
        "proxy-connect", help="stdio to HOST PORT through a lab's proxy (an ssh ProxyCommand)"
    )
    lab_options(connect)
    connect.add_argument("host")
    connect.add_argument("port", type=int)
    connect.set_defaults(handler=_proxy_connect)
    return parser


def _state_dir(args: argparse.Namespace) -> Path:
    """The state dir a command is about: --state, else that of the lab called --name
    (for up: a new one, DEFAULT_STATE_DIR-NAME), else DEFAULT_STATE_DIR."""
    if args.state:
        return Path(args.state)
    if args.name is None:
        return DEFAULT_STATE_DIR
    if args.handler is _up:
        return DEFAULT_STATE_DIR.with_name(f"{DEFAULT_STATE_DIR.name}-{args.name}")
    entry = registry.find_by_name(args.name)
    if entry is None:
        raise InputError([Problem("--name", None, "", f"no lab called {args.name!r} is up here (acpcheck lab list)")])
    return entry.state_dir


def _up(args: argparse.Namespace) -> int:
    if args.nodes is not None and args.scenario is not None:
        scenario = scaled_scenario(load_scenario(args.scenario), args.nodes)
    elif args.nodes is not None:
        scenario = healthy_scenario(args.nodes)
    else:
        scenario = load_scenario(args.scenario or "demo")
    info = core.up(scenario, _state_dir(args), name=args.name, subnets=args.subnets)
    if args.json:
        print(json.dumps(info.public_dict(), indent=2))
        return EXIT_OK
    paths = info.paths
    print(
        f"lab {info.name!r} ({info.scenario}) is up: {len(info.nodes)} nodes in {info.started_seconds:.2f} s "
        f"(state {paths.root})"
    )
    print(
        f"subnets: direct {info.subnets['direct']}, hidden {info.subnets['hidden']}; "
        f"interfaces and namespaces: {info.names.prefix}…"
    )
    _table(
        ["NODE", "ROLE", "NETWORK", "ADDRESS", "HOSTNAME", "SSH USER", "DEFECTS"],
        [
            [n.name, n.role, n.network, n.ipv4, n.hostname, n.ssh_user, ",".join(n.defects) or "-"]
            for n in info.nodes[:50]
        ],
    )
    if len(info.nodes) > 50:
        print(f"  … and {len(info.nodes) - 50} more (acpcheck lab status)")
    if info.proxy:
        print(f"proxy: {info.proxy.url} (user and password in {paths.env})")
    print(f"plan:  {paths.plan}")
    print("use it:")
    print(f"  set -a; . {paths.env}; set +a        # the plan's secrets, as environment variables")
    print(f"  acpcheck run --plan {paths.plan}")
    print(f"  ssh -F {paths.ssh_config} {info.nodes[0].name}")
    print(f"  acpcheck lab down --state {paths.root}")
    return EXIT_OK


def _status(args: argparse.Namespace) -> int:
    result = core.status(_state_dir(args))
    if args.json:
        print(
            json.dumps(
                {
                    "name": result.info.name,
                    "stateDir": str(result.info.state_dir),
                    "healthy": result.healthy,
                    "proxyRunning": result.proxy_running,
                    "nodes": [vars(row) for row in result.nodes],
                },
                indent=2,
            )
        )
        return EXIT_OK if result.healthy else EXIT_FAILED
    info = result.info
    print(f"lab {info.name!r} ({info.scenario}, state {info.state_dir}, subnets {info.lab_subnets})")
    _table(
        ["NODE", "ROLE", "ADDRESS", "HOSTNAME", "SSHD", "SSH", "ROUTE"],
        [
            [
                r.name,
                r.role,
                r.ipv4,
                r.hostname,
                "running" if r.sshd_running else "STOPPED",
                "ok" if r.reachable else f"UNREACHABLE ({r.detail})",
                r.route,
            ]
            for r in result.nodes
        ],
    )
    if info.proxy:
        print(f"proxy: {info.proxy.url} {'running' if result.proxy_running else 'STOPPED'}")
    print(f"enter a node: nsenter --target $(cat {StatePaths(info.state_dir).nodes}/NODE/sshd.pid) --all")
    return EXIT_OK if result.healthy else EXIT_FAILED


def _list(args: argparse.Namespace) -> int:
    labs = registry.labs_up()
    if args.json:
        print(json.dumps([lab.as_dict() for lab in labs], indent=2))
        return EXIT_OK
    if not labs:
        print("no lab is up on this machine")
        return EXIT_OK
    _table(
        ["NAME", "STATE DIR", "DIRECT", "HIDDEN", "NODES", "PREFIX"],
        [
            [
                lab.name,
                str(lab.state_dir),
                str(lab.subnets.direct),
                str(lab.subnets.hidden),
                str(lab.nodes),
                lab.names.prefix,
            ]
            for lab in labs
        ],
    )
    return EXIT_OK


def _down(args: argparse.Namespace) -> int:
    state = _state_dir(args)
    entry = registry.find(state.resolve())
    others = [lab for lab in registry.labs_up() if lab.state_dir != state.resolve()]
    report = core.down(state, purge=args.purge, all_labs=args.all_labs)
    which = "every lab" if args.all_labs else f"lab {entry.name!r}" if entry else "lab"
    print(
        (
            f"{which} down: stopped {report.processes} processes, removed {len(report.namespaces)} namespaces and "
            f"{len(report.links)} links"
        )
        + ("" if args.purge else f" (keys kept in {StatePaths(state.resolve()).keys}; --purge removes them)")
    )
    if others and not args.all_labs:
        print(f"still up: {', '.join(str(lab) for lab in others)}")
        if entry is None:
            print(f"(no lab was recorded with state dir {state}; `acpcheck lab down --all` removes every lab)")
    return EXIT_OK


def _scenarios(args: argparse.Namespace) -> int:
    for name in shipped_scenarios():
        scenario = load_scenario(name)
        print(
            f"{name:10} {len(scenario.nodes):3} nodes  "
            f"{scenario.description.strip().splitlines()[0] if scenario.description else ''}"
        )
    print(
        f"{'--nodes N':10}   N nodes  healthy nodes behind a load balancer, for benchmarks (with --scenario: "
        "that scenario grown to N nodes)"
    )
    return EXIT_OK


def _proxy_connect(args: argparse.Namespace) -> int:
    info = LabInfo.load(_state_dir(args))
    if info.proxy is None:
        raise LabError("this lab has no proxy")
    sock = socks5.connect(
        (info.proxy.host, info.proxy.port), (args.host, args.port), info.proxy.username, info.proxy.password
    )
    selector = selectors.DefaultSelector()
    selector.register(sys.stdin.fileno(), selectors.EVENT_READ, "in")
    selector.register(sock, selectors.EVENT_READ, "sock")
    with sock:
        while True:
            for key, _ in selector.select():
                if key.data == "in":
                    data = os.read(sys.stdin.fileno(), 65536)
                    if not data:
                        return EXIT_OK
                    sock.sendall(data)
                else:
                    data = sock.recv(65536)
                    if not data:
                        return EXIT_OK
                    os.write(sys.stdout.fileno(), data)


def _table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    for row in [header, *rows]:
        print("  " + "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
