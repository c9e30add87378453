"""The Kube-OVN Underlay node checks (checks/node_underlay.py) proven on real lab nodes.

The ``underlay`` scenario (acpcheck/lab/scenarios/underlay.yaml) plans eth1 as the
Underlay NIC and builds one node without eth1, one whose SSH address is on eth1 and
one whose address sits on a NIC named mgmt0: each check FAILs (or WARNs) on exactly
its node and PASSes on the others. A healthy lab, planned as the lab plans by default
(Kube-OVN Overlay), gives the checks no FAIL. The Proof rows here count as the lab
proofs of test_node_checks_on_lab's catalogue test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_node_checks_on_lab import Proof, acpcheck_run, assert_proof, proofs, statuses

from acpcheck_lab import LabInfo, down, up
from acpcheck_lab.scenario import healthy_scenario

UNDERLAY_CHECKS = ("ACP-NODE-039", "ACP-NODE-040", "ACP-NODE-041")
NODES = ("ul-ok", "ul-no-nic", "ul-ssh", "ul-odd")


def only_this_node_is_bad(check: str, bad: str, status: str) -> Proof:
    (proof,) = proofs({check: ((bad,), tuple(node for node in NODES if node != bad))}, status)
    return proof


UNDERLAY_PROOFS = [
    only_this_node_is_bad("ACP-NODE-039", "ul-no-nic", "fail"),
    only_this_node_is_bad("ACP-NODE-040", "ul-ssh", "fail"),
    only_this_node_is_bad("ACP-NODE-041", "ul-odd", "warn"),
]
#: The words each check's message must hold on its node (the values it saw).
WORDS = {
    "ACP-NODE-039": "no network link named eth1",
    "ACP-NODE-040": "the address the SSH session came in on",
    "ACP-NODE-041": "mgmt0 (holds",
}


def check_args() -> list[str]:
    return [arg for check in UNDERLAY_CHECKS for arg in ("--check", check)]


def run_on(scenario: Any, lab_machine: Path, out: Path) -> tuple[LabInfo, dict[str, Any]]:
    """Bring ``scenario`` up, run the Underlay checks on its plan, tear it down (one lab at a time)."""
    info: LabInfo = up(scenario, lab_machine)
    try:
        return info, acpcheck_run(info, info.plan_file, out, *check_args())
    finally:
        down(lab_machine, purge=True)


@pytest.fixture(scope="module")
def underlay_run(lab_machine: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return run_on("underlay", lab_machine, tmp_path_factory.mktemp("underlay") / "out")[1]


@pytest.mark.parametrize("proof", UNDERLAY_PROOFS, ids=str)
def test_underlay_check_finds_its_node_and_passes_the_others(
    underlay_run: dict[str, Any], proof: Proof, capsys: pytest.CaptureFixture[str]
) -> None:
    assert_proof(underlay_run, proof)
    bad = next(target for target, status in proof.expect if status != "pass")
    message = next(r["message"] for r in underlay_run["results"] if r["check"] == proof.check and bad in r["target"])
    assert WORDS[proof.check] in message, message
    with capsys.disabled():
        print(f"\n{proof.check} on node:{bad}: {message}")


def test_underlay_run_has_no_errors(underlay_run: dict[str, Any]) -> None:
    assert underlay_run["summary"]["error"] == 0, [r for r in underlay_run["results"] if r["status"] == "error"]
    assert set(statuses(underlay_run)) == {(check, node) for check in UNDERLAY_CHECKS for node in NODES}


def test_a_healthy_lab_gives_the_underlay_checks_no_failure(lab_machine: Path, tmp_path: Path) -> None:
    _, document = run_on(healthy_scenario(2, control_planes=1), lab_machine, tmp_path / "out")
    got = statuses(document)
    assert {check for check, _ in got} == set(UNDERLAY_CHECKS)  # the lab plans Overlay: they SKIP
    assert not {key: status for key, status in got.items() if status in ("fail", "error")}, got
