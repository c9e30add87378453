"""Connected clusters on the lab: the lab's nodes g1 and g2 (scenario ``connected``) are the global
cluster's control plane, reached over SSH; the imported cluster and the global cluster's API are
the project's test API server (a stand-in for kube-apiserver) on this machine.

- reachable: the imported cluster's API listens on the lab's controller address (port 6443, where
  its Node says its control-plane node is), with plain listeners on 11780 and 11781 (the platform
  ALB's ports): every ACP-CONN check passes from the runner and from g1 and g2;
- a closed 11781: ACP-CONN-016 names exactly that port, from each global node;
- unreachable from global, reachable from the runner: the API listens on loopback only, which no
  lab node can reach (each has its own): ACP-CONN-010 passes, ACP-CONN-011 FAILs saying exactly
  that, ACP-CONN-016 FAILs for 6443, 11780 and 11781.

Only the lab's addresses and loopback are contacted; no credential reaches the results."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_lb_on_lab import assert_only_lab_addresses, leftovers, run_acpcheck

from acpcheck_lab import LabInfo, down, up
from acpcheck_lab.connected import (
    SCENARIO,
    PortListeners,
    ServedCluster,
    canary_secret,
    connected_plan,
    control_plane_node,
    platform_cluster,
    serve_cluster,
)
from acpcheck_lab.workers import controller_address

NAME = "lab-imported"
CANARY = "acpcheck-CANARY-lab-connected-2Hd6"
SELECT = ("ACP-CONN-01*",)


@pytest.fixture(scope="module")
def lab(lab_machine: Path) -> Iterator[LabInfo]:
    info = up(SCENARIO, lab_machine)
    try:
        yield info
    finally:
        down(lab_machine, purge=True)


def statuses(document: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {r["check"]: (r["status"], r["message"]) for r in document["results"]}


def run_case(
    lab: LabInfo, tmp_path: Path, host: str, port: int, alb_ports: list[int]
) -> tuple[dict[str, tuple[str, str]], dict[str, Any], list[ServedCluster]]:
    """Serve the imported cluster on ``host:port`` (its control-plane node cp1 at ``host``), listeners on
    ``alb_ports`` of ``host``, global's API on loopback; run the ACP-CONN checks as a process."""
    node_address = host
    cluster = serve_cluster(
        tmp_path / "cluster",
        [control_plane_node("cp1", node_address), canary_secret(CANARY)],
        host=host,
        port=port,
        version="1.32.9",
        extra_user_token=CANARY,
    )
    global_ = serve_cluster(tmp_path / "global", [platform_cluster(NAME), canary_secret(CANARY)])
    served = [cluster, global_]
    try:
        with PortListeners(host, alb_ports):
            lab_plan = yaml.safe_load(lab.plan_file.read_text())
            plan = connected_plan(
                lab_plan, name=NAME, kubeconfig_file=cluster.kubeconfig, global_kubeconfig=global_.kubeconfig
            )
            document = run_acpcheck(lab, tmp_path / "run", *SELECT, plan=plan)
    finally:
        for server in served:
            server.stop()
    assert leftovers(lab) == []
    assert_only_lab_addresses(lab, document)
    out = tmp_path / "run" / "out"
    for path in out.rglob("*"):
        if path.is_file():
            text = path.read_text(errors="replace")
            assert CANARY not in text and cluster.token not in text and global_.token not in text, path
    for check, (status, message) in sorted(statuses(document).items()):
        print(f"finding {check} {status}: {message}")  # shown with -s: the texts for the closing note
    return statuses(document), document, served


@pytest.mark.parametrize("closed", [None, 11781])
def test_global_reaches_the_imported_cluster(lab: LabInfo, tmp_path: Path, closed: int | None) -> None:
    host = controller_address(lab)
    alb = [port for port in (11780, 11781) if port != closed]
    seen, _, _ = run_case(lab, tmp_path, host, 6443, alb)
    for check in ("ACP-CONN-010", "ACP-CONN-011", "ACP-CONN-012", "ACP-CONN-013"):
        assert seen[check][0] == "pass", (check, seen[check])
    status, message = seen["ACP-CONN-016"]
    if closed is None:
        assert status == "pass", message
    else:
        assert status == "fail"
        assert message == (f"g1 cannot reach cp1 {host}:11781 refused; g2 cannot reach cp1 {host}:11781 refused"), (
            message
        )


def test_an_imported_cluster_unreachable_from_global_but_reachable_from_the_runner(
    lab: LabInfo, tmp_path: Path
) -> None:
    seen, _, served = run_case(lab, tmp_path, "127.0.0.1", 0, [])
    port = served[0].server.port
    assert seen["ACP-CONN-010"][0] == "pass", seen["ACP-CONN-010"]
    status, message = seen["ACP-CONN-011"]
    assert status == "fail", message
    assert message.startswith(f"the imported cluster's API 127.0.0.1:{port} answers from this runner (TLS, /version v")
    assert "but is not reachable from global control-plane node g1 (" in message and "g2 (" in message
    assert "refused" in message
    status, message = seen["ACP-CONN-016"]
    assert status == "fail" and "g1 cannot reach cp1 127.0.0.1:6443 refused, cp1 127.0.0.1:11780 refused" in message
