"""ACP-UPG-010..019 (checks/upgrade.py) on evidence gathered for real: the ``cluster`` source
reads a test API server (the project's stand-in for kube-apiserver) over TLS with the
reader's token, each test seeding the objects it is about into a fresh server. Every check
has a PASS on the healthy cluster and its FAIL (and MANUAL/WARN where it has them); the
saved evidence replays to the same results."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import EXAMPLES, ServeCluster, make_plan, merge

from acpcheck import testing
from acpcheck.checks import upgrade as upg
from acpcheck.model.plan import ClusterPlan
from acpcheck.model.result import CheckResult
from acpcheck.sources.cluster import (
    REMOVED_API_READS,
    ClusterEvidence,
    ClusterSource,
    ClusterView,
    gather_cluster,
)
from acpcheck_lab.apiserver import ServerDir, TestApiServer, kubeconfig
from acpcheck_lab.fleet import CSR_REQUEST, cronjob, csr, daemonset, etcd_backup

CHECKS: list[Callable[..., Any]] = [
    upg.check_live_kubernetes_matches_plan,
    upg.check_live_kubernetes_in_target_range,
    upg.check_nodes_ready,
    upg.check_kubelet_skew,
    upg.check_live_docker_runtime,
    upg.check_live_network_plugin,
    upg.check_removed_apis,
    upg.check_pending_csrs,
    upg.check_custom_etcd_backups,
    upg.check_preflight,
]
#: A CSR's request (base64 PEM): what a summary must never keep.


def node(name: str, ready: str | None = "True", kubelet: str = "v1.33.7", runtime: str = "containerd://2.2.1") -> Any:
    status: dict[str, Any] = {
        "addresses": [{"type": "InternalIP", "address": "192.0.2.11"}],
        # Every field of NodeSystemInfo: the official client refuses a Node without one.
        "nodeInfo": {
            "kubeletVersion": kubelet,
            "containerRuntimeVersion": runtime,
            "osImage": "Ubuntu 22.04.4 LTS",
            "kubeProxyVersion": kubelet,
            "kernelVersion": "5.15.0-56-generic",
            "operatingSystem": "linux",
            "architecture": "amd64",
            "machineID": "0" * 32,
            "systemUUID": "0" * 32,
            "bootID": "0" * 32,
        },
    }
    if ready is not None:
        status["conditions"] = [
            {"type": "Ready", "status": ready, "reason": "KubeletReady" if ready == "True" else "KubeletNotReady"}
        ]
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name},
        "spec": {"providerID": f"acp://{name}"},
        "status": status,
    }


def cvsh(*states: tuple[str, str], preflight: bool = True) -> dict[str, Any]:
    status: dict[str, Any] = {
        "conditions": [{"type": "PreflightReady", "status": "True"}],
        "current": {"version": "4.2.5"},
    }
    if preflight:
        status["preflight"] = {
            "observedAt": "2026-11-30T08:00:00Z",
            "checks": [
                {
                    "name": name,
                    "policy": "Block",
                    "state": state,
                    "reason": "" if state == "Passed" else "Blocked",
                    "message": "",
                }
                for name, state in states
            ],
        }
    return {
        "apiVersion": "config.cpaas.io/v1",
        "kind": "ClusterVersionShadow",
        "metadata": {"name": "global", "namespace": "cpaas-system"},
        "spec": {"desiredUpdate": {"version": "4.3.0"}},
        "status": status,
    }


PASSED = [(name, "Passed") for name in ("VersionUpgradePath", "KubernetesVersionSupported", "DockerRuntimeUnsupported")]


def healthy() -> list[dict[str, Any]]:
    """A 4.2 cluster ready for 4.3: Ready nodes on containerd, Kube-OVN, only the default etcd backup,
    no pending CSR, a preflight that passed."""
    return [
        node("cp1"),
        node("w1"),
        daemonset("kube-ovn-cni", "registry.alauda.cn:60080/acp/kube-ovn:v4.3.3"),
        etcd_backup("etcd-backup-default"),
        cronjob("log-rotate", "cpaas-system"),
        csr("csr-approved", approved=True),
        cvsh(*PASSED),
    ]


def flowcontrol_crd(version: str = "v1beta3") -> dict[str, Any]:
    """A removed API version served as the real API server served it before its removal (a CRD here)."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "flowschemas.flowcontrol.apiserver.k8s.io"},
        "spec": {
            "group": "flowcontrol.apiserver.k8s.io",
            "names": {
                "kind": "FlowSchema",
                "plural": "flowschemas",
                "singular": "flowschema",
                "listKind": "FlowSchemaList",
            },
            "scope": "Cluster",
            "versions": [
                {
                    "name": version,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
                }
            ],
        },
    }


def flowschema(name: str, managed: bool) -> dict[str, Any]:
    annotations = {"apf.kubernetes.io/autoupdate-spec": "true"} if managed else {}
    return {
        "apiVersion": "flowcontrol.apiserver.k8s.io/v1beta3",
        "kind": "FlowSchema",
        "metadata": {"name": name, "annotations": annotations},
        "spec": {"priorityLevelConfiguration": {"name": "workload-low"}},
    }


# ---------------------------------------------------------------------------
# Fixtures: one server directory (CA, users) per module, one server per cluster state


Live = Callable[..., tuple[ClusterPlan, ClusterEvidence]]


@pytest.fixture
def live(serve_cluster: ServeCluster) -> Live:
    """``live(objects, version=, crds=, plan=, without=)``: a test API server with ``objects`` (and
    ``crds`` besides the shipped ones, but for those named in ``without``), read by the ``cluster``
    source through a kubeconfig for the reader; (the plan, the evidence)."""

    def start(
        objects: list[dict[str, Any]],
        version: str = "1.33.7",
        crds: list[dict[str, Any]] | None = None,
        plan: dict[str, Any] | None = None,
        without: tuple[str, ...] = (),
    ) -> tuple[ClusterPlan, ClusterEvidence]:
        path = serve_cluster(objects, version=version, crds=crds, without=without)
        edits = {
            "spec": {
                "kubeconfig": str(path),
                "acp": {"version": "4.3", "upgradeFrom": "4.2"},
                "cluster": {"kubernetesVersion": "1.33.7"},
            }
        }
        the_plan = make_plan(merge(edits, plan or {}))
        evidence = gather_cluster(the_plan, environ={})
        assert evidence.failure is None, evidence.failure
        return the_plan, evidence

    return start


def run(check: Callable[..., Any], plan: ClusterPlan, evidence: ClusterEvidence) -> CheckResult:
    return testing.run_check(check, plan, cluster=ClusterView(evidence))


def results(plan: ClusterPlan, evidence: ClusterEvidence) -> dict[str, tuple[str, str]]:
    return {check.__acpcheck__.id: (str(r.status), r.message) for check in CHECKS for r in [run(check, plan, evidence)]}  # type: ignore[attr-defined]


def only(edit: Callable[[list[dict[str, Any]]], None]) -> list[dict[str, Any]]:
    objects = healthy()
    edit(objects)
    return objects


def replacing(kind: str, *new: dict[str, Any]) -> list[dict[str, Any]]:
    return [obj for obj in healthy() if obj["kind"] != kind] + list(new)


# ---------------------------------------------------------------------------
# The healthy cluster passes every check; its evidence is small and replays the same


def test_a_healthy_cluster_passes_every_live_upgrade_check(live: Live, tmp_path: Path) -> None:
    plan, evidence = live(healthy())
    found = results(plan, evidence)
    assert {check: status for check, (status, _) in found.items()} == {check: "pass" for check in found}, found
    # The evidence keeps summaries: no CSR request, no pod template, never a whole object.
    ClusterSource().save(evidence, tmp_path / "facts")
    saved = (tmp_path / "facts" / "cluster.json").read_text()
    assert CSR_REQUEST not in saved and "jobTemplate" not in saved and "managedFields" not in saved
    reads = json.loads(saved)["reads"]
    assert reads["nodes"]["items"][0] | {"addresses": None} == reads["nodes"]["items"][0] | {
        "addresses": None,
        "ready": "True",
        "readyReason": "KubeletReady",
        "kubeletVersion": "v1.33.7",
        "containerRuntimeVersion": "containerd://2.2.1",
        "providerID": "acp://cp1",
    }
    assert reads["daemonsets"]["items"] == [
        {"name": "kube-ovn-cni", "namespace": "kube-system", "images": ["registry.alauda.cn:60080/acp/kube-ovn:v4.3.3"]}
    ]
    assert reads["cluster-version-shadow"]["object"]["preflight"]["checks"][0] == {
        "name": "VersionUpgradePath",
        "policy": "Block",
        "state": "Passed",
        "reason": "",
        "message": "",
    }
    # A removed API version the server does not serve is recorded as such, for every row.
    assert {reads[key]["status"] for key in REMOVED_API_READS} == {"not-served"}


def test_saved_evidence_replays_to_the_same_results(live: Live, tmp_path: Path) -> None:
    plan, evidence = live(
        only(
            lambda objs: objs.extend(
                [node("w2", ready="False"), csr("csr-pending", approved=False), etcd_backup("etcd-backup-nightly")]
            )
        ),
        version="1.31.4",
        crds=[flowcontrol_crd()],
    )
    source = ClusterSource()
    source.save(evidence, tmp_path / "facts")
    replayed = source.load(tmp_path / "facts", plan)
    first, again = results(plan, evidence), results(plan, replayed)
    assert first == again
    assert first["ACP-UPG-012"][0] == "fail" and first["ACP-UPG-017"][0] == "warn" and first["ACP-UPG-018"][0] == "fail"


def test_evidence_of_an_older_acpcheck_loads_and_is_never_a_pass(live: Live, tmp_path: Path) -> None:
    """cluster.json written before these reads existed: it still loads; the checks that need a read it
    lacks are ERROR (the read is missing), those reading node fields it lacks are MANUAL."""
    plan, evidence = live(healthy())
    old = evidence.as_dict()
    old["reads"] = {"nodes": old["reads"]["nodes"]}
    for item in old["reads"]["nodes"]["items"]:
        for key in ("ready", "readyReason", "kubeletVersion", "containerRuntimeVersion", "providerID"):
            del item[key]
    (tmp_path / "cluster.json").write_text(json.dumps(old))
    replayed = ClusterSource().load(tmp_path, plan)
    found = results(plan, replayed)
    assert found["ACP-UPG-012"][0] == found["ACP-UPG-013"][0] == found["ACP-UPG-014"][0] == "manual"
    for check in ("ACP-UPG-015", "ACP-UPG-016", "ACP-UPG-017", "ACP-UPG-018", "ACP-UPG-019"):
        assert found[check][0] == "error" and "older acpcheck" in found[check][1], found[check]
    assert found["ACP-UPG-010"][0] == found["ACP-UPG-011"][0] == "pass"  # /version was kept


# ---------------------------------------------------------------------------
# Each check's findings


def test_live_version_differs_from_the_declared_one(live: Live) -> None:
    plan, evidence = live(healthy(), version="1.32.9")
    result = run(upg.check_live_kubernetes_matches_plan, plan, evidence)
    assert result.status == "fail"
    assert "runs Kubernetes v1.32.9+acpcheck-test-apiserver; the plan declares 1.33.7" in result.message
    # A plan that gives only the minor is compared on the minor.
    plan, evidence = live(healthy(), version="1.33.2", plan={"spec": {"cluster": {"kubernetesVersion": "1.33"}}})
    assert run(upg.check_live_kubernetes_matches_plan, plan, evidence).status == "pass"


def test_live_version_outside_the_target_range(live: Live) -> None:
    plan, evidence = live(healthy(), version="1.30.14")
    result = run(upg.check_live_kubernetes_in_target_range, plan, evidence)
    assert (
        result.status == "fail" and ">=1.31,<1.35 (required of every cluster upgrading from ACP 4.2)" in result.message
    )
    # Without a current ACP version: the compatible list.
    plan, evidence = live(healthy(), version="1.30.14", plan={"spec": {"acp": {"upgradeFrom": None}}})
    result = run(upg.check_live_kubernetes_in_target_range, plan, evidence)
    assert result.status == "fail" and "1.34, 1.33, 1.32, 1.31 (the compatible list)" in result.message


def test_a_node_not_ready_fails_and_one_without_the_condition_is_manual(live: Live) -> None:
    plan, evidence = live(only(lambda objs: objs.append(node("w2", ready="False"))))
    result = run(upg.check_nodes_ready, plan, evidence)
    assert result.status == "fail" and result.message == "w2: Ready=False (KubeletNotReady)"
    plan, evidence = live(only(lambda objs: objs.append(node("w3", ready=None))))
    result = run(upg.check_nodes_ready, plan, evidence)
    assert result.status == "manual" and "w3" in result.message


@pytest.mark.parametrize(
    ("kubelet", "why"),
    [("v1.29.15", "is 4 minors older than the API server (at most 3)"), ("v1.34.1", "is newer than the API server")],
)
def test_kubelet_outside_the_skew_policy(live: Live, kubelet: str, why: str) -> None:
    plan, evidence = live(only(lambda objs: objs.append(node("old", kubelet=kubelet))))
    result = run(upg.check_kubelet_skew, plan, evidence)
    assert result.status == "fail" and f"old: kubelet {kubelet} {why}" in result.message


def test_kubelet_three_minors_older_passes(live: Live) -> None:
    plan, evidence = live(only(lambda objs: objs.append(node("w2", kubelet="v1.30.14"))))
    result = run(upg.check_kubelet_skew, plan, evidence)
    assert result.status == "pass", result.message


def test_docker_runtime_blocks_4_3_and_warns_for_4_2(live: Live) -> None:
    objects = only(lambda objs: objs.append(node("w2", runtime="docker://24.0.7")))
    plan, evidence = live(objects)
    result = run(upg.check_live_docker_runtime, plan, evidence)
    assert result.status == "fail" and "w2 (docker://24.0.7)" in result.message
    plan, evidence = live(objects, plan={"spec": {"acp": {"version": "4.2", "upgradeFrom": "4.1"}}})
    assert run(upg.check_live_docker_runtime, plan, evidence).status == "warn"


def test_a_flannel_daemonset_fails_and_no_known_plugin_is_manual(live: Live) -> None:
    plan, evidence = live(
        replacing("DaemonSet", daemonset("kube-flannel-ds", "docker.io/flannel/flannel:v0.25.1", "kube-flannel"))
    )
    result = run(upg.check_live_network_plugin, plan, evidence)
    assert (
        result.status == "fail" and "network plugin flannel (DaemonSets kube-flannel/kube-flannel-ds)" in result.message
    )
    plan, evidence = live(replacing("DaemonSet", daemonset("weave-net", "weaveworks/weave-kube:2.8.1")))
    assert run(upg.check_live_network_plugin, plan, evidence).status == "manual"


def test_a_removed_api_still_served_with_an_object_fails(live: Live) -> None:
    plan, evidence = live(
        [*healthy(), flowschema("exempt-ci", managed=False), flowschema("system-leader-election", managed=True)],
        version="1.31.4",
        crds=[flowcontrol_crd()],
    )
    result = run(upg.check_removed_apis, plan, evidence)
    assert result.status == "fail"
    assert (
        "FlowSchema flowcontrol.apiserver.k8s.io/v1beta3 (removed in Kubernetes 1.32; use "
        "flowcontrol.apiserver.k8s.io/v1): still served, with objects such as exempt-ci" in result.message
    )


def test_a_removed_api_served_with_only_the_api_servers_own_objects_passes(live: Live) -> None:
    plan, evidence = live(
        [*healthy(), flowschema("system-leader-election", managed=True)], version="1.31.4", crds=[flowcontrol_crd()]
    )
    assert run(upg.check_removed_apis, plan, evidence).status == "pass"
    key = "removed-api/flowcontrol.apiserver.k8s.io/v1beta3/flowschemas"
    assert evidence.reads[key].items == [
        {"name": "system-leader-election", "namespace": None, "apiServerManaged": True}
    ]


def test_a_pending_csr_warns(live: Live) -> None:
    plan, evidence = live([*healthy(), csr("csr-8x2kq", approved=False)])
    result = run(upg.check_pending_csrs, plan, evidence)
    assert result.status == "warn" and "csr-8x2kq (kubernetes.io/kubelet-serving, created " in result.message


def test_a_custom_etcd_backup_task_fails(live: Live) -> None:
    plan, evidence = live(
        [*healthy(), etcd_backup("etcd-backup-nightly"), cronjob("etcd-backup-hourly", "kube-system")]
    )
    result = run(upg.check_custom_etcd_backups, plan, evidence)
    assert result.status == "fail"
    assert "EtcdBackupConfiguration etcd-backup-nightly, CronJob kube-system/etcd-backup-hourly" in result.message


def test_a_failed_preflight_check_fails_naming_it(live: Live) -> None:
    plan, evidence = live(
        replacing("ClusterVersionShadow", cvsh(*PASSED, ("CustomEtcdBackupCronJobsAbsent", "Failed")))
    )
    result = run(upg.check_preflight, plan, evidence)
    assert result.status == "fail" and "CustomEtcdBackupCronJobsAbsent: Failed (Blocked)" in result.message


@pytest.mark.parametrize(
    ("objects", "without", "said"),
    [
        ([cvsh(preflight=False)], (), "has no preflight results"),
        ([], (), "has no ClusterVersionShadow global in cpaas-system"),
        ([], ("clusterversionshadows.config.cpaas.io",), "does not serve ClusterVersionShadow"),
    ],
)
def test_missing_preflight_results_are_manual(
    live: Live, objects: list[Any], without: tuple[str, ...], said: str
) -> None:
    plan, evidence = live(replacing("ClusterVersionShadow", *objects), without=without)
    result = run(upg.check_preflight, plan, evidence)
    assert result.status == "manual" and said in result.message
    # A workload cluster's results are read on the global cluster, under its name.
    assert "upgrade.sh --cluster=prod-east --preflight" in result.message and "get cvsh prod-east" in result.message


# ---------------------------------------------------------------------------
# The same through `acpcheck run` and its `--facts` replay


def acpcheck_run(plan: Path, out: Path, *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "acpcheck", "run", "--plan", str(plan), "--profile", "upgrade"]
        + ["--check", "ACP-UPG-01*", "--out", str(out), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "NODE_SSH_PASSWORD": "not-used-by-cluster-checks"},
        timeout=180,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr  # 1: a FAIL
    return json.loads((out / "results.json").read_text())


def test_a_run_reads_the_cluster_and_its_replay_agrees(live: Live, tmp_path: Path) -> None:
    plan, _ = live(
        [*healthy(), node("w2", ready="False"), flowschema("exempt-ci", managed=False)],
        version="1.31.4",
        crds=[flowcontrol_crd()],
    )
    document = yaml.safe_load((EXAMPLES / "workload-kube-ovn.yaml").read_text())
    document["spec"]["acp"]["upgradeFrom"] = "4.2"
    document["spec"]["cluster"]["kubernetesVersion"] = "1.33.7"
    document["spec"]["kubeconfig"] = plan.spec.kubeconfig
    document["spec"]["ssh"]["auth"] = {"passwordEnv": "NODE_SSH_PASSWORD"}
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text(yaml.safe_dump(document))

    def verdicts(results: dict[str, Any]) -> dict[str, tuple[str, str, str]]:
        return {r["check"]: (r["target"], r["status"], r["message"]) for r in results["results"]}

    first = verdicts(acpcheck_run(plan_file, tmp_path / "live"))
    assert {check: status for check, (_, status, _) in first.items()} == {
        "ACP-UPG-010": "fail",  # v1.31.4 runs, 1.33.7 declared
        "ACP-UPG-011": "pass",
        "ACP-UPG-012": "fail",  # w2 NotReady
        "ACP-UPG-013": "fail",  # kubelets v1.33.7 are newer than the API server
        "ACP-UPG-014": "pass",
        "ACP-UPG-015": "pass",
        "ACP-UPG-016": "fail",  # FlowSchema v1beta3 still served, with exempt-ci
        "ACP-UPG-017": "pass",
        "ACP-UPG-018": "pass",
        "ACP-UPG-019": "pass",
    }
    assert {target for target, _, _ in first.values()} == {"cluster:prod-east"}
    replayed = verdicts(acpcheck_run(plan_file, tmp_path / "replay", "--facts", str(tmp_path / "live" / "facts")))
    assert replayed == first


def test_removed_api_versions_the_server_does_not_list_cost_no_request(server_dir: ServerDir) -> None:
    """One /apis answer tells which group versions are served: a run does not ask about each of the
    thirty-odd removed ones (each a round trip to every cluster of a fleet)."""
    lines: list[str] = []
    token = next(user.token for user in server_dir.users() if user.name == "acpcheck-reader")
    with TestApiServer(server_dir.tls(), server_dir.users(), port=0, log=lines.append) as server:
        path = server_dir.root / "timing.kubeconfig"
        path.write_text(kubeconfig(server.url, server_dir.ca.read_bytes(), "acpcheck-reader", token=token))
        evidence = gather_cluster(make_plan({"spec": {"kubeconfig": str(path)}}), environ={})
    assert (
        evidence.failure is None and evidence.reads["removed-api/extensions/v1beta1/ingresses"].status == "not-served"
    )
    asked = [line for line in lines if '"GET /apis' in line]
    removed = [f"/apis/{read.group_version}" for read in REMOVED_API_READS.values()]
    assert not [line for line in asked if any(f"{gv} " in line or f"{gv}/" in line for gv in removed)], asked
    assert sum('"GET /apis/ HTTP' in line for line in asked) == 1
