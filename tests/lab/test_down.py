"""``down`` leaves nothing behind: after a normal lab, after an ``up`` that failed
half-way, and after an ``up`` that was killed half-way (then ``down`` must find
everything by name prefix and process marker alone)."""

from __future__ import annotations

import ipaddress
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from acpcheck.errors import InputError
from acpcheck_lab import LabError, LabInfo, Scenario, down, healthy_scenario, up
from acpcheck_lab.cli import main
from acpcheck_lab.core import lab_routes
from acpcheck_lab.host import (
    ETC_NETNS_DIR,
    lab_etc_netns_dirs,
    lab_links,
    lab_namespaces,
    lab_processes,
    run,
)
from acpcheck_lab.hostcheck import SubnetsInUse, host_uses
from acpcheck_lab.scenario import NodeSpec

SMALL = Scenario(
    name="small",
    nodes=[
        NodeSpec(name="a1", role="control-plane"),
        NodeSpec(name="h1", role="worker", network="hidden", defects={"listen": [6443]}),
    ],
)


def leftovers() -> list[str]:
    found = [f"namespace {name}" for name in lab_namespaces()]
    found += [f"link {name}" for name in lab_links()]
    found += [f"/etc/netns entry {path}" for path in lab_etc_netns_dirs()]
    found += [f"process {pid} ({why})" for pid, why in lab_processes().items()]
    found += [f"unreachable route {dst}" for dst in lab_routes()]
    tagged = run(["ip", "-4", "route", "show", "type", "unreachable"]).stdout
    found += [f"route {line}" for line in tagged.splitlines() if "metric 4242" in line and line not in found]
    return found


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_down_removes_everything(lab_machine: Path) -> None:
    info = up(SMALL, lab_machine)
    pids = [int((lab_machine / "nodes" / n.name / "sshd.pid").read_text()) for n in info.nodes]
    pids.append(int((lab_machine / "proxy" / "proxy.pid").read_text()))
    had_etc_netns = ETC_NETNS_DIR.exists()
    ETC_NETNS_DIR.joinpath(info.names.netns("a1")).mkdir(
        parents=True, exist_ok=True
    )  # as if someone used ip netns exec's /etc view
    assert leftovers()
    report = down(lab_machine)
    if not had_etc_netns:
        ETC_NETNS_DIR.rmdir()  # ours; empty now
    assert leftovers() == []
    assert report.processes >= len(pids) + 1  # sshds, proxy, listener, keeper
    assert not [pid for pid in pids if _running(pid)]
    assert sorted(p.name for p in lab_machine.iterdir()) == [".acpcheck-lab", "keys"]  # keys survive without --purge
    down(lab_machine)  # idempotent
    down(lab_machine, purge=True)
    assert not lab_machine.exists()


def test_failed_up_cleans_up_after_itself(lab_machine: Path) -> None:
    broken = Scenario(
        name="broken",
        nodes=[
            NodeSpec(name="ok1", role="control-plane"),
            NodeSpec(name="bad1", role="worker", defects={"sshdConfig": {"NoSuchKeyword": "x"}}),
        ],
    )
    with pytest.raises(LabError, match=r"(?s)node bad1 did not start.*Bad configuration option: NoSuchKeyword"):
        up(broken, lab_machine)
    assert leftovers() == []
    down(lab_machine, purge=True)


def test_down_after_a_killed_up(lab_machine: Path) -> None:
    # A bigger lab, so that `up` is still busy when it is killed.
    code = f"import sys; from acpcheck_lab import up, healthy_scenario; up(healthy_scenario(40), {str(lab_machine)!r})"
    proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    deadline = time.monotonic() + 20
    while not lab_namespaces() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert lab_namespaces(), "up was killed before it made anything; nothing to test"
    time.sleep(0.3)  # let whatever the keeper had started come up
    down(lab_machine, purge=True)
    assert leftovers() == []


def test_a_second_up_is_refused_what_another_lab_has_naming_that_lab_and_its_state_dir(lab_machine: Path) -> None:
    first = up(SMALL, lab_machine, name="t1")
    second = lab_machine.with_name(lab_machine.name + "-second")
    objects = sorted(lab_links() + lab_namespaces())
    try:
        in_the_way = f"lab 't1' (state {lab_machine})"
        with pytest.raises(InputError, match=re.escape(f"{in_the_way} is up in this state dir; give another --state")):
            up(healthy_scenario(1), lab_machine)
        with pytest.raises(InputError, match=re.escape(f"{in_the_way} has this name; choose another --name")):
            up(healthy_scenario(1), second, name="t1")
        with pytest.raises(
            SubnetsInUse,
            match=re.escape(
                f"the direct subnet {first.subnets['direct']} of {in_the_way} overlaps the lab's direct subnet "
                f"{first.subnets['direct']}"
            ),
        ):
            up(healthy_scenario(1), second, subnets=f"{first.subnets['direct']},198.19.99.0/24")
        assert main(["up", "--state", str(second), "--name", "t1"]) == 4
        assert main(["up", "--state", str(second), "--name", "way-too-long"]) == 4
        # refused before anything was built: the first lab's objects only, and no second state dir
        assert sorted(lab_links() + lab_namespaces()) == objects and not second.exists()
    finally:
        down(lab_machine, purge=True)
    assert leftovers() == []


def test_chosen_subnets_are_used_and_recorded_and_down_finds_them_without_lab_json(lab_machine: Path) -> None:
    subnets = "198.18.77.0/26,198.19.77.0/28"
    info = up(SMALL, lab_machine, subnets=subnets)
    try:
        assert info.subnets == {"direct": "198.18.77.0/26", "hidden": "198.19.77.0/28"}
        assert [(n.name, n.ipv4) for n in info.nodes] == [("a1", "198.18.77.11"), ("h1", "198.19.77.11")]
        assert info.proxy is not None and info.proxy.host == "198.18.77.2"
        assert LabInfo.load(lab_machine).subnets == info.subnets  # lab.json: what status and the fixtures read
        assert "address: 198.18.77.10" in info.plan_file.read_text()  # the plan's endpoint
        assert "198.18.77.1/26" in run(["ip", "-4", "-o", "addr", "show", "dev", info.names.bridge("direct")]).stdout
        assert lab_routes() == ["198.19.77.0/28"]
        assert "HostName 198.19.77.11" in (lab_machine / "ssh_config").read_text()
    finally:
        (lab_machine / "lab.json").unlink()  # as after a killed `up`: down must not need it
        down(lab_machine, purge=True)
    assert leftovers() == []


def _state_listing(state: Path) -> list[str]:
    return sorted(str(path.relative_to(state)) for path in state.rglob("*")) if state.exists() else ["(none)"]


def test_up_refuses_bad_or_busy_subnets_before_building_anything(lab_machine: Path) -> None:
    before = _state_listing(lab_machine)
    with pytest.raises(InputError, match="prefix must be between"):
        up(SMALL, lab_machine, subnets="198.18.0.0/29,198.19.0.0/24")
    with pytest.raises(InputError, match="has addresses for 4 nodes"):
        up(healthy_scenario(5), lab_machine, subnets="198.18.0.0/28,198.19.0.0/28")
    assert main(["up", "--state", str(lab_machine), "--subnets", "nonsense"]) == 4
    # this machine's own interface network, as `ip` reports it, is in use by definition
    own = [
        use.network
        for use in host_uses()
        if use.what.startswith("address ")
        and not use.network.is_loopback
        and 16 <= use.network.prefixlen <= 28
        and not use.network.overlaps(ipaddress.ip_network("198.19.0.0/24"))
    ]
    if own:
        with pytest.raises(
            SubnetsInUse, match=rf"address \S+ on \S+ \(from `ip addr`\) overlaps the lab's direct subnet {own[0]}"
        ):
            up(SMALL, lab_machine, subnets=f"{own[0]},198.19.0.0/24")
        assert main(["up", "--state", str(lab_machine), "--subnets", f"{own[0]},198.19.0.0/24"]) == 4
    assert leftovers() == [] and _state_listing(lab_machine) == before  # nothing was built, nothing written
