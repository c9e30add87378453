"""The ``hcp`` and ``hcp-healthy`` lab scenarios end to end: a hosted control plane's
management cluster on the test API server (a stand-in for kube-apiserver) with real etcd
(client TLS) on a lab node, SSH hosts that are lab nodes (real sshd), MetalLB pools, the
cluster plugins' CRDs and tenant control planes. ``acpcheck run --profile hcp`` on the
generated plan (a hosted-control-plane plan that lists no nodes) must find each planted
defect on the object it is planted on, find the SSH hosts as node targets and run the node
checks on them, and pass the healthy management cluster; no canary (an SSH host's credential,
a tenant's admin kubeconfig token) may reach any output.

One lab per scenario, each up for the test that uses it (the lab lock serialises them)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from acpcheck_lab import LabInfo, down, up
from acpcheck_lab import etcd as lab_etcd

# (tests/conftest.py puts every test of lab_machine in the one xdist group of the lab's lock)
pytestmark = pytest.mark.skipif(
    not os.path.exists(lab_etcd.ETCD_BIN),
    reason="etcd is missing (apt-get install etcd-server, or scripts/setup-system.sh)",
)


def acpcheck_run(lab: LabInfo, out: Path, *args: str, plan: Path | None = None) -> dict[str, Any]:
    command = ["run", "--plan", str(plan or lab.plan_file), "--profile", "hcp", "--out", str(out), *args]
    done = subprocess.run(
        [sys.executable, "-m", "acpcheck", *command],
        capture_output=True,
        text=True,
        env={**os.environ, **lab.env()},
        timeout=180,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert (out / "results.json").exists(), done.stdout + done.stderr
    document = json.loads((out / "results.json").read_text())
    document["exit"], document["terminal"] = done.returncode, done.stdout + done.stderr
    return document


def by_target(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["check"], r["target"]): r for r in document["results"]}


def canaries_of(lab: LabInfo) -> list[str]:
    """The canary strings the lab put in the management cluster's Secrets (read before ``down`` removes them)."""
    canaries = list(json.loads((lab.state_dir / "hcp" / "canaries.json").read_text()).values())
    assert len(canaries) == 3 and all(c.startswith("acplab-canary-") for c in canaries)
    return canaries


def canaries_absent(canaries: list[str], out: Path, terminal: str) -> None:
    for path in out.rglob("*"):
        if path.is_file():
            text = path.read_text(errors="replace")
            for canary in canaries:
                assert canary not in text, path
    for canary in canaries:
        assert canary not in terminal


def test_the_hcp_scenario_finds_each_planted_defect_on_its_object(lab_machine: Path, tmp_path: Path) -> None:
    lab = up("hcp", lab_machine)
    try:
        plan = yaml.safe_load(lab.plan_file.read_text())
        assert plan["spec"]["cluster"]["type"] == "hosted-control-plane" and plan["spec"]["nodes"] == []
        document = acpcheck_run(lab, tmp_path / "out")
        parallel = acpcheck_run(lab, tmp_path / "parallel", "-n", "2")
        canaries = canaries_of(lab)
        kept_plan = tmp_path / "plan.yaml"
        kept_plan.write_text(lab.plan_file.read_text())
    finally:
        down(lab_machine, purge=True)
    # xdist workers collect the same SSH-host node targets; --facts replays them with the lab gone
    replayed = acpcheck_run(lab, tmp_path / "replayed", "--facts", str(tmp_path / "out" / "facts"), plan=kept_plan)
    assert (tmp_path / "out" / "facts" / "sshhosts" / "sshhosts.json").exists()
    statuses = {key: r["status"] for key, r in by_target(document).items()}
    assert {key: r["status"] for key, r in by_target(parallel).items()} == statuses
    assert {key: r["status"] for key, r in by_target(replayed).items()} == statuses
    results = by_target(document)
    cluster = f"cluster:{plan['metadata']['name']}"
    assert document["exit"] == 1, document["terminal"]

    # the management cluster (ACP-HCP-004..006)
    plugins = results[("ACP-HCP-004", cluster)]
    assert plugins["status"] == "fail" and "cluster plugin Kubeadm Provider is not installed" in plugins["message"]
    assert "Hosted Control Plane" not in plugins["message"] and "SSH Infrastructure" not in plugins["message"]
    assert results[("ACP-HCP-005", cluster)]["status"] == "pass"
    pools = results[("ACP-HCP-006", cluster)]
    assert pools["status"] == "fail" and "metallb-system/tenant-overlap" in pools["message"]
    assert "tenant-lb" not in pools["message"]

    # the DataStores (ACP-HCP-010..015) on the lab's real etcd, reached through the management node
    assert results[("ACP-HCP-010", cluster)]["status"] == "pass"  # default-datastore, the plan's, exists
    single = results[("ACP-HCP-012", cluster)]
    assert single["status"] == "warn" and single["message"].startswith("DataStore single-plain lists one endpoint")
    plain = results[("ACP-HCP-013", cluster)]
    assert plain["status"] == "fail" and plain["message"].startswith("DataStore single-plain has no spec.tlsConfig")
    assert "default-datastore" not in plain["message"] and "rogue-client" not in plain["message"]
    rogue = results[("ACP-HCP-014", cluster)]
    assert rogue["status"] == "fail" and "etcd refused the client certificate" in rogue["message"]
    assert {line.split(":")[0] for line in rogue["message"].splitlines()} == {"DataStore rogue-client"}

    # the tenant control planes (ACP-HCP-020..027): tenant-b is not Ready; tenant-a, Ready, has its own
    # test API server (its endpoint, with the Konnectivity agent) and passes every one of them
    not_ready = results[("ACP-HCP-021", cluster)]
    assert (
        not_ready["status"] == "fail" and "cpaas-system/tenant-b (cluster tenant-b) is NotReady" in not_ready["message"]
    )
    assert "tenant-a" not in not_ready["message"]
    for check in ("ACP-HCP-022", "ACP-HCP-023"):  # a tenant that never came up has no endpoint, no kubeconfig
        assert results[(check, cluster)]["status"] == "fail" and "tenant-a" not in results[(check, cluster)]["message"]
    for check in ("ACP-HCP-020", "ACP-HCP-024", "ACP-HCP-025", "ACP-HCP-026"):
        assert results[(check, cluster)]["status"] == "pass", check

    # the SSH hosts (ACP-HCP-030..033): each finding names its SSHHost, and only it
    assert results[("ACP-HCP-030", cluster)]["status"] == "pass"
    credentials = results[("ACP-HCP-031", cluster)]
    assert credentials["status"] == "fail" and "SSHHost cpaas-system/h4" in credentials["message"]
    assert "holds no login" in credentials["message"] and "cpaas-system/h1" not in credentials["message"]
    reach = results[("ACP-HCP-032", cluster)]
    assert reach["status"] == "fail" and "SSHHost cpaas-system/gone" in reach["message"]
    assert "not reached over SSH" in reach["message"]
    for host in ("h1", "h2", "h3", "h4"):
        assert f"SSHHost cpaas-system/{host} " not in reach["message"]
    reuse = results[("ACP-HCP-033", cluster)]
    assert reuse["status"] == "manual" and "SSHHost cpaas-system/h1 state(s) no reuse policy" in reuse["message"]

    # the SSH hosts are the run's node targets: the node checks ran on them
    swap = results[("ACP-NODE-008", "node:h2")]
    assert swap["status"] == "fail"
    assert results[("ACP-NODE-008", "node:h1")]["status"] == "pass"
    node_results: dict[str, list[dict[str, Any]]] = {
        target: [] for target in ("node:h1", "node:h2", "node:h3", "node:h4", "node:gone")
    }
    for (_, target), result in results.items():
        if target in node_results:
            node_results[target].append(result)
    assert all(node_results.values()), {t: len(r) for t, r in node_results.items()}
    assert {r["status"] for r in node_results["node:gone"]} == {"error"}  # unreachable: ERROR for that host only
    gone = {r["message"] for r in node_results["node:gone"]}
    assert len(gone) == 1 and next(iter(gone)).startswith("could not check: "), gone
    assert "not reached over SSH: " + next(iter(gone)).removeprefix("could not check: ") in reach["message"]
    assert {r["status"] for r in node_results["node:h3"]} == {"skip"}  # immutable OS: not judged
    assert all("SSH host h3 runs an immutable OS" in r["message"] for r in node_results["node:h3"])
    for target in ("node:h1", "node:h4"):
        assert not [r for r in node_results[target] if r["status"] in ("fail", "error")], target
    assert "mgmt" not in {t.split(":", 1)[1] for (_, t) in results if t.startswith("node:")}

    for run in (document, parallel, replayed):
        canaries_absent(canaries, tmp_path, run["terminal"])


def test_the_healthy_management_cluster_passes(lab_machine: Path, tmp_path: Path) -> None:
    lab = up("hcp-healthy", lab_machine)
    try:
        document = acpcheck_run(lab, tmp_path / "out")
        canaries = canaries_of(lab)
        # `acpcheck gather` finds the SSH hosts as a run does, and saves their list for --facts
        gathered = subprocess.run(
            [sys.executable, "-m", "acpcheck", "gather", "--plan", str(lab.plan_file), "--out", str(tmp_path / "g")],
            capture_output=True,
            text=True,
            env={**os.environ, **lab.env()},
            timeout=180,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    finally:
        down(lab_machine, purge=True)
    assert gathered.returncode == 0, gathered.stdout + gathered.stderr
    assert sorted(p.name for p in (tmp_path / "g" / "nodes").iterdir()) == ["h1.json", "h2.json", "h3.json"]
    assert (tmp_path / "g" / "sshhosts" / "sshhosts.json").exists()
    bad = [r for r in document["results"] if r["status"] in ("fail", "error")]
    assert not bad, "\n".join(f"{r['check']} {r['target']} {r['status']}: {r['message']}" for r in bad)
    assert document["exit"] == 0, document["terminal"]
    results = by_target(document)
    hcp = [f"ACP-HCP-{n:03d}" for n in (*range(4, 9), *range(10, 16), *range(20, 28), *range(30, 33))]
    for check in hcp:  # the management cluster, its DataStore's etcd, tenant-a through its own API, the hosts
        assert results[(check, "cluster:lab-hcp-healthy")]["status"] == "pass", check
    assert results[("ACP-HCP-033", "cluster:lab-hcp-healthy")]["status"] == "pass"
    assert results[("ACP-NODE-008", "node:h1")]["status"] == "pass"
    assert results[("ACP-NODE-008", "node:h3")]["status"] == "skip"
    canaries_absent(canaries, tmp_path / "out", document["terminal"])
