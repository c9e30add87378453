"""``acpcheck lab`` / ``python -m acpcheck_lab``: up, status, down (root only).

Exit codes: 0 done (status: every node reachable), 1 the lab failed or a node is
unreachable, 4 bad input (scenario file, options and usage errors, subnets that are
invalid, too small or already in use on this machine).
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
from acpcheck.errors import InputError
from acpcheck_lab import core, socks5
from acpcheck_lab.host import LabError
from acpcheck_lab.info import LabInfo
from acpcheck_lab.layout import (
    DEFAULT_STATE_DIR,
    DEFAULT_SUBNETS,
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
        print("acpcheck lab: interrupted (run `acpcheck lab down` to clean up)", file=sys.stderr)
        return EXIT_FAILED
    except BrokenPipeError:  # `acpcheck lab up | head`: the lab is up, the reader left
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


def _parser() -> argparse.ArgumentParser:
    # A usage error is bad input, 4, as for every acpcheck command (argparse's own 2 means "incomplete").
    parser = UsageParser(
        prog="acpcheck lab", description="Local lab: sshd nodes with real defects in network namespaces (root only)."
    )
    commands = parser.add_subparsers(metavar="COMMAND", parser_class=UsageParser)
    state_help = f"state directory (default: {DEFAULT_STATE_DIR})"

    up = commands.add_parser("up", help="build the lab and write its plan")
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
    up.add_argument("--state", default=str(DEFAULT_STATE_DIR), help=state_help)
    up.add_argument(
        "--subnets",
        metavar="DIRECT,HIDDEN",
        help=(
            f"the lab's two IPv4 subnets, /{WIDEST_PREFIX} to /{NARROWEST_PREFIX} (default: ${SUBNETS_ENV}, else "
            f"{DEFAULT_SUBNETS})"
        ),
    )
    up.add_argument("--json", action="store_true", help="print the lab's description as JSON")
    up.set_defaults(handler=_up)

    status = commands.add_parser("status", help="nodes, addresses and whether each answers SSH")
    status.add_argument("--state", default=str(DEFAULT_STATE_DIR), help=state_help)
    status.add_argument("--json", action="store_true")
    status.set_defaults(handler=_status)

    down = commands.add_parser("down", help="remove everything the lab made (also after a failed up)")
    down.add_argument("--state", default=str(DEFAULT_STATE_DIR), help=state_help)
    down.add_argument("--purge", action="store_true", help="also delete the keys (the whole state dir)")
    down.set_defaults(handler=_down)

    scenarios = commands.add_parser("scenarios", help="list the shipped scenarios")
    scenarios.set_defaults(handler=_scenarios)

    connect = commands.add_parser(
        "proxy-connect", help="stdio to HOST PORT through the lab's proxy (an ssh ProxyCommand)"
    )
    connect.add_argument("--state", default=str(DEFAULT_STATE_DIR), help=state_help)
    connect.add_argument("host")
    connect.add_argument("port", type=int)
    connect.set_defaults(handler=_proxy_connect)
    return parser


def _up(args: argparse.Namespace) -> int:
    if args.nodes is not None and args.scenario is not None:
        scenario = scaled_scenario(load_scenario(args.scenario), args.nodes)
    elif args.nodes is not None:
        scenario = healthy_scenario(args.nodes)
    else:
        scenario = load_scenario(args.scenario or "demo")
    info = core.up(scenario, args.state, subnets=args.subnets)
    if args.json:
        print(json.dumps(info.public_dict(), indent=2))
        return EXIT_OK
    paths = info.paths
    print(f"lab {info.scenario!r} is up: {len(info.nodes)} nodes in {info.started_seconds:.2f} s (state {paths.root})")
    print(f"subnets: direct {info.subnets['direct']}, hidden {info.subnets['hidden']}")
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
    result = core.status(args.state)
    if args.json:
        print(
            json.dumps(
                {
                    "healthy": result.healthy,
                    "proxyRunning": result.proxy_running,
                    "nodes": [vars(row) for row in result.nodes],
                },
                indent=2,
            )
        )
        return EXIT_OK if result.healthy else EXIT_FAILED
    info = result.info
    print(f"lab {info.scenario!r} (state {info.state_dir})")
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


def _down(args: argparse.Namespace) -> int:
    report = core.down(args.state, purge=args.purge)
    print(
        (
            f"lab down: stopped {report.processes} processes, removed {len(report.namespaces)} namespaces and "
            f"{len(report.links)} links"
        )
        + ("" if args.purge else f" (keys kept in {StatePaths(Path(args.state).resolve()).keys}; --purge removes them)")
    )
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
    info = LabInfo.load(args.state)
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
