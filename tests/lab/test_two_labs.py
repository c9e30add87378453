"""Several labs on one machine (issue 21, item 6): two labs up at once, each with its own
name prefix, state dir and subnets; ``down --state X`` takes down X's lab only, and the
other goes on working; after both, nothing of any lab is left.

The two labs run under the lab tests' machine lock (``lab_machine``), so no third lab
competes with them on this 2-core machine."""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_down import leftovers

from acpcheck.errors import InputError
from acpcheck_lab import LabInfo, Scenario, down, registry, status, up
from acpcheck_lab.cli import main
from acpcheck_lab.host import lab_links, lab_namespaces, lab_processes
from acpcheck_lab.layout import DEFAULT_SUBNETS, IFNAME_MAX, LabNames, LabSubnets
from acpcheck_lab.scenario import MAX_NODES_PER_NETWORK, NodeSpec

#: Two nodes: one on the direct network, one on the hidden one (so each lab has its own proxy too).
PAIR = Scenario(
    name="pair",
    nodes=[NodeSpec(name="cp1", role="control-plane"), NodeSpec(name="w1", role="worker", network="hidden")],
)
BENCHMARKING = ipaddress.ip_network("198.18.0.0/15")


# --- names, without a lab -------------------------------------------------------------


def test_every_interface_name_of_the_longest_lab_name_fits_linux_limit() -> None:
    names = LabNames.parse("zz")
    last_node = 2 * MAX_NODES_PER_NETWORK - 1  # veths are numbered across both networks
    interfaces = [names.bridge("direct"), names.bridge("hidden"), names.veth(last_node)]
    interfaces += [names.proxy_veth("direct"), names.proxy_veth("hidden"), f"{names.prefix}lbh"]
    assert max(len(name) for name in interfaces) == IFNAME_MAX == len("acplabzz-direct")


@pytest.mark.parametrize("bad", ["", "abc", "A", "a-", "1_", "ü"])
def test_a_lab_name_that_would_not_fit_or_would_blur_the_prefix_is_bad_input(bad: str) -> None:
    with pytest.raises(InputError, match=r"--name.*one or two lowercase letters or digits"):
        LabNames.parse(bad)


def test_no_lab_prefix_starts_another() -> None:
    prefixes = [LabNames(name).prefix for name in ("1", "12", "a", "ab")]
    assert not [(a, b) for a in prefixes for b in prefixes if a != b and b.startswith(a)]


def test_the_registry_keeps_labs_while_they_are_up_and_drops_stale_ones(tmp_path: Path) -> None:
    subnets = LabSubnets.default()
    me = os.getpid()
    # names no lab of the suite takes: is_up also looks for kernel objects with the lab's prefix
    building = registry.LabEntry("zy", tmp_path / "a", subnets, 2, me, registry.process_started(me) or 0)
    # an `up` that was killed before it built anything: its pid is gone (or reused: another start time)
    killed = registry.LabEntry("zz", tmp_path / "b", subnets, 2, me, (registry.process_started(me) or 0) + 1)
    for entry in (building, killed):
        registry.claim(entry, tmp_path)
    assert registry.entries(tmp_path) == [building, killed]
    assert registry.find(tmp_path / "b", tmp_path) == killed and registry.find_by_name("zy", tmp_path) == building
    assert registry.labs_up(tmp_path) == [building]
    registry.drop_stale(tmp_path)
    assert registry.entries(tmp_path) == [building]
    assert registry.free_name({"1", "3"}) == "2"
    registry.release("zy", tmp_path)
    assert registry.entries(tmp_path) == []


# --- two labs up at once ---------------------------------------------------------------


def ssh(info: LabInfo, node: str) -> str:
    """``hostname`` on a node with the lab's own ssh_config (the hidden node through its proxy)."""
    done = subprocess.run(
        ["ssh", "-F", str(info.paths.ssh_config), node, "hostname"],
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert done.returncode == 0, f"ssh {node} of lab {info.name!r}: {done.stderr}"
    return done.stdout.strip()


def acpcheck_run(info: LabInfo, out: Path) -> dict:
    """``acpcheck run --profile preinstall`` with the lab's plan and secrets; results.json."""
    done = subprocess.run(
        [sys.executable, "-m", "acpcheck", "run", "--plan", str(info.plan_file), "--profile", "preinstall"]
        + ["--out", str(out)],
        capture_output=True,
        text=True,
        env={**os.environ, **info.env()},
        timeout=180,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert done.returncode in (0, 1), done.stdout[-2000:] + done.stderr[-2000:]  # assessed: compliant or findings
    return json.loads((out / "results.json").read_text())


def objects_of(info: LabInfo) -> list[str]:
    prefix = info.names.prefix
    return lab_links(prefix) + lab_namespaces(prefix)


def test_two_labs_up_at_once_and_down_of_one_leaves_the_other_working(
    lab_machine: Path, second_state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = up(PAIR, lab_machine)
    try:
        second = up(PAIR, second_state)
    except BaseException:
        down(lab_machine, purge=True)
        raise
    try:
        # own name and prefix, own state dir, own subnets: inside 198.18.0.0/15 and apart
        assert first.name != second.name and first.paths.root != second.paths.root
        # the first lab on the default subnets, the second on the next free pair (layout.py)
        assert (str(first.lab_subnets), str(second.lab_subnets)) == (
            DEFAULT_SUBNETS,
            "198.18.4.0/22,198.19.1.0/24",
        )
        networks = [ipaddress.ip_network(cidr) for info in (first, second) for cidr in info.subnets.values()]
        assert all(network.subnet_of(BENCHMARKING) for network in networks)  # type: ignore[arg-type]
        assert not [(a, b) for a in networks for b in networks if a is not b and a.overlaps(b)]
        assert {n.ipv4 for n in first.nodes}.isdisjoint(n.ipv4 for n in second.nodes)
        first_objects, second_objects = objects_of(first), objects_of(second)
        assert first.names.bridge("direct") in first_objects and second.names.bridge("direct") in second_objects
        assert sorted(lab_links() + lab_namespaces()) == sorted(first_objects + second_objects)

        # both answer, each node by its own hostname, the hidden ones through their own lab's proxy
        for info in (first, second):
            assert [ssh(info, node) for node in ("cp1", "w1")] == ["cp1", "w1"]
            assert status(info.paths.root).healthy
        capsys.readouterr()
        assert main(["list"]) == 0
        listing = capsys.readouterr().out
        rows = [line.split() for line in listing.splitlines()[1:]]
        assert [row[:4] for row in rows] == [
            [info.name, str(info.paths.root), info.subnets["direct"], info.subnets["hidden"]]
            for info in (first, second)
        ]
        assert acpcheck_run(first, tmp_path / "first")["results"]

        # down of the first: its objects and processes are gone, the second's all there
        first_processes = set(lab_processes(prefix=first.names.prefix, state_dir=first.paths.root))
        second_processes = set(lab_processes(prefix=second.names.prefix, state_dir=second.paths.root))
        assert first_processes and second_processes and first_processes.isdisjoint(second_processes)
        assert main(["down", "--state", str(first.paths.root)]) == 0
        assert f"still up: lab {second.name!r} (state {second.paths.root})" in capsys.readouterr().out
        assert objects_of(first) == [] and not lab_processes(prefix=first.names.prefix, state_dir=first.paths.root)
        assert objects_of(second) == second_objects
        assert set(lab_processes(prefix=second.names.prefix, state_dir=second.paths.root)) == second_processes
        assert [lab.name for lab in registry.labs_up()] == [second.name]

        # ... and the second still works: ssh to both its nodes, a whole acpcheck run
        assert [ssh(second, node) for node in ("cp1", "w1")] == ["cp1", "w1"]
        assert status(second.paths.root).healthy
        results = acpcheck_run(second, tmp_path / "second")
        reached = {r["target"] for r in results["results"] if r["status"] != "error"}
        assert {"node:cp1", "node:w1"} <= reached, sorted(reached)
    finally:
        down(lab_machine, purge=True, quiet=True)
        down(second_state, purge=True)
    assert leftovers() == []  # no link, namespace, process, /etc/netns entry or route of any lab
    assert registry.labs_up() == []


def test_down_all_removes_every_lab(lab_machine: Path, second_state: Path) -> None:
    first = up(PAIR, lab_machine)
    try:
        up(PAIR, second_state)
    finally:
        (first.paths.info).unlink()  # as if its state dir were lost: --all still finds everything
        assert main(["down", "--all", "--purge", "--state", str(lab_machine)]) == 0
    assert leftovers() == [] and registry.entries() == []
    assert not second_state.exists()
