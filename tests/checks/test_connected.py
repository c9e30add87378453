"""ACP-CONN-010..016 (checks/connected.py) on evidence the ``connected`` and ``cluster`` sources
gather over TLS from the project's test API server (a stand-in for kube-apiserver, not a real
one) playing the imported/registered cluster and the global cluster, on loopback. The paths from
the global cluster's control-plane nodes (SSH) are proven on lab nodes in
tests/lab/test_connected_on_lab.py; here ACP-CONN-011/016 are graded on evidence documents.

A canary in the cluster (a Secret), a canary user in the kubeconfig and the reader's real token
must reach no artifact of a real ``acpcheck run``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import EXAMPLES, make_plan, merge

from acpcheck import testing
from acpcheck.checks import connected as checks
from acpcheck.model.plan import ClusterPlan
from acpcheck.model.result import CheckResult
from acpcheck.sources.api_tls import TlsProbe
from acpcheck.sources.base import GatherContext
from acpcheck.sources.cluster import ClusterView, gather_cluster
from acpcheck.sources.connected import (
    ApiTarget,
    ConnectedEvidence,
    ConnectedSource,
    ControlPlaneTarget,
    FromGlobalNode,
    PortResult,
)
from acpcheck_lab.connected import ServedCluster, canary_secret, control_plane_node, platform_cluster, serve_cluster

IMPORTED = yaml.safe_load((EXAMPLES / "imported-cluster.yaml").read_text())
REGISTERED = yaml.safe_load((EXAMPLES / "registered-cluster.yaml").read_text())
CANARY = "acpcheck-CANARY-connected-7Qw3zX9r"
KUBECONFIG_CANARY = "acpcheck-CANARY-kubeconfig-token-4Lm8"

Serve = Callable[..., ServedCluster]


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    """``serve(objects, version=, crds=True)``: a test API server on loopback, stopped after the test."""
    started: list[ServedCluster] = []

    def start(objects: list[dict[str, Any]], version: str = "1.32.9", **options: Any) -> ServedCluster:
        root = tmp_path / f"server-{len(started)}"
        root.mkdir()
        served = serve_cluster(root, objects, version=version, **options)
        started.append(served)
        return served

    yield start
    for served in started:
        served.stop()


def plan_for(served: ServedCluster, base: dict[str, Any] = IMPORTED, **spec: Any) -> ClusterPlan:
    return make_plan(merge({"spec": {"kubeconfig": str(served.kubeconfig)}}, {"spec": spec}), base=base)


def gather(plan: ClusterPlan) -> ConnectedEvidence:
    context = GatherContext(plan=plan)
    try:
        evidence = ConnectedSource().gather(context)
    finally:
        context.close()
    assert isinstance(evidence, ConnectedEvidence)
    return evidence


def run(function: Callable[..., Any], plan: ClusterPlan, **evidence: Any) -> CheckResult:
    return testing.run_check(function, plan, **evidence)


# ---------------------------------------------------------------------------
# ACP-CONN-010: the API answers from the runner


def test_the_api_answers_from_the_runner(serve: Serve) -> None:
    cluster = serve([])
    plan = plan_for(cluster)
    evidence = gather(plan)
    assert evidence.from_runner is not None and not evidence.from_runner.error and evidence.from_runner.fingerprint
    assert evidence.runner_version.startswith("v1.32.9")  # the test API server adds +acpcheck-test-apiserver
    assert run(checks.check_api_answers_from_runner, plan, connected=evidence).status == "pass"


def test_an_api_that_does_not_answer_fails(serve: Serve) -> None:
    cluster = serve([])
    plan = plan_for(cluster)
    cluster.stop()
    result = run(checks.check_api_answers_from_runner, plan, connected=gather(plan))
    assert result.status == "fail"
    assert f"the cluster's API {cluster.server.url} does not answer from this runner: unreachable: " in result.message
    assert "refused the connection" in result.message


def test_before_install_the_connected_checks_skip() -> None:
    plan = make_plan(base=IMPORTED)
    evidence = gather(plan)
    assert evidence.mode == "off"
    result = run(checks.check_api_answers_from_runner, plan, connected=evidence)
    assert result.status == "skip" and "no kubeconfig" in result.message


# ---------------------------------------------------------------------------
# ACP-CONN-012: the live version against the onboarding range (ACP-VER-003's rule)


@pytest.mark.parametrize(
    ("version", "status", "said"),
    [
        ("1.32.9", "pass", ""),
        (
            "1.36.0",
            "fail",
            "the cluster's API server reports Kubernetes v1.36.0+acpcheck-test-apiserver (/version): Kubernetes "
            "v1.36.0+acpcheck-test-apiserver is outside the range ACP 4.3 accepts for third-party clusters",
        ),
        ("1.18.3", "fail", "is outside the range ACP 4.3 accepts"),
        ("1.29.4", "warn", "inside the range ACP 4.3 accepts for third-party clusters"),
    ],
)
def test_the_live_version_is_judged_by_the_onboarding_range(serve: Serve, version: str, status: str, said: str) -> None:
    cluster = serve([], version=version)
    plan = plan_for(cluster, cluster={"kubernetesVersion": version})
    evidence = gather_cluster(plan, environ={})
    result = run(checks.check_live_kubernetes_accepted, plan, cluster=ClusterView(evidence))
    assert result.status == status, result.message
    assert said in result.message
    assert "planned" not in result.evidence and "at" not in result.evidence


def test_a_plan_that_types_another_version_than_the_cluster_runs_warns(serve: Serve) -> None:
    cluster = serve([], version="1.33.2")
    plan = plan_for(cluster, cluster={"kubernetesVersion": "1.32.9"})
    result = run(checks.check_live_kubernetes_accepted, plan, cluster=ClusterView(gather_cluster(plan, environ={})))
    assert result.status == "warn"
    assert "the plan says Kubernetes 1.32.9" in result.message and "the cluster reports v1.33.2+" in result.message


# ---------------------------------------------------------------------------
# ACP-CONN-013: global's record of the cluster


@pytest.mark.parametrize(
    ("objects", "status", "said"),
    [
        ([platform_cluster("ops-west")], "pass", ""),
        ([], "fail", "has no clusters.platform.tkestack.io 'ops-west': the cluster is not imported"),
        ([platform_cluster("ops-west", phase="Failed")], "fail", "records 'ops-west' in phase Failed (not Running)"),
    ],
)
def test_global_records_the_cluster_running(
    serve: Serve, objects: list[dict[str, Any]], status: str, said: str
) -> None:
    cluster, global_ = serve([]), serve(objects)
    plan = plan_for(cluster, globalCluster={"kubeconfig": str(global_.kubeconfig)})
    result = run(checks.check_global_records_cluster, plan, connected=gather(plan))
    assert result.status == status, result.message
    assert said in result.message


def test_a_registered_cluster_waiting_for_its_tunnel_fails(serve: Serve) -> None:
    """The planted defect "tunnel agent missing": the agent never connected, so global's record never left
    Initializing. The global side finds it (ACP-CONN-013); the agent itself is MANUAL (ACP-CONN-015)."""
    cluster = serve([])
    global_ = serve([platform_cluster("eks-analytics", phase="Initializing", cluster_type="Registered")])
    plan = plan_for(
        cluster,
        base=REGISTERED,
        cluster={"kubernetesVersion": "1.32.9"},
        globalCluster={"kubeconfig": str(global_.kubeconfig), "reach": "tunnel"},
    )
    evidence = gather(plan)
    result = run(checks.check_global_records_cluster, plan, connected=evidence)
    assert result.status == "fail"
    assert "records 'eks-analytics' in phase Initializing (not Running)" in result.message
    assert "registration command and reverse tunnel" in result.message
    tunnel = run(checks.check_tunnel_components, plan, connected=evidence)
    assert tunnel.status == "manual" and "Tunnel Server (global) and the Tunnel Agent" in tunnel.message
    register = run(checks.check_register_components, plan, connected=evidence)
    assert register.status == "manual" and "kubectl get deployments,daemonsets,pods -A -o wide" in register.message


def test_a_global_kubeconfig_that_is_no_acp_global_fails(serve: Serve) -> None:
    cluster = serve([])
    plain = serve([], without=("clusters.platform.tkestack.io",))  # a Kubernetes cluster that is no ACP global
    plan = plan_for(cluster, globalCluster={"kubeconfig": str(plain.kubeconfig)})
    result = run(checks.check_global_records_cluster, plan, connected=gather(plan))
    assert result.status == "fail" and "is not an ACP global cluster's" in result.message


def test_without_a_global_kubeconfig_the_record_check_skips(serve: Serve) -> None:
    plan = plan_for(serve([]))
    result = run(checks.check_global_records_cluster, plan, connected=gather(plan))
    assert result.status == "skip" and "spec.globalCluster.kubeconfig" in result.message


# ---------------------------------------------------------------------------
# ACP-CONN-014/015: MANUAL where the docs name no object


def test_the_register_and_tunnel_checks_apply_only_where_the_plan_says(serve: Serve) -> None:
    plan = plan_for(serve([]))  # imported, reached directly
    evidence = gather(plan)
    assert run(checks.check_register_components, plan, connected=evidence).status == "skip"
    assert run(checks.check_tunnel_components, plan, connected=evidence).status == "skip"


# ---------------------------------------------------------------------------
# ACP-CONN-011 and ACP-CONN-016 graded on evidence (the lab proves the paths)


def evidence_with(api: PortResult, ports: list[PortResult], error: str = "") -> ConnectedEvidence:
    return ConnectedEvidence(
        mode="live",
        reach="direct",
        api=ApiTarget(server="https://192.0.2.10:6443", host="192.0.2.10", port=6443),
        from_runner=TlsProbe(host="192.0.2.10"),
        runner_version="v1.32.9",
        control_plane=[ControlPlaneTarget(name="cp1", address="192.0.2.10")],
        control_plane_source="live Nodes",
        from_global={"g1": FromGlobalNode(address="192.0.2.1", error=error, results=[api, *ports])},
    )


def ports(outcomes: dict[int, str]) -> list[PortResult]:
    return [PortResult(to="cp1", host="192.0.2.10", port=port, outcome=outcome) for port, outcome in outcomes.items()]


API_OK = PortResult(to="api", host="192.0.2.10", port=6443, outcome="connected")
API_TIMEOUT = PortResult(to="api", host="192.0.2.10", port=6443, outcome="timeout")
ALL_OK = {6443: "connected", 11780: "connected", 11781: "connected"}


def global_plan(**global_cluster: Any) -> ClusterPlan:
    nodes = [{"name": "g1", "role": "control-plane", "ipv4": "192.0.2.1"}]
    return make_plan(
        {"spec": {"kubeconfig": "kubeconfig", "globalCluster": {"controlPlane": nodes, **global_cluster}}},
        base=IMPORTED,
    )


def test_global_reaching_the_api_passes_and_not_reaching_it_fails() -> None:
    plan = global_plan()
    assert run(checks.check_global_reaches_api, plan, connected=evidence_with(API_OK, ports(ALL_OK))).status == "pass"
    result = run(checks.check_global_reaches_api, plan, connected=evidence_with(API_TIMEOUT, ports(ALL_OK)))
    assert result.status == "fail"
    assert result.message.startswith(
        "the imported cluster's API 192.0.2.10:6443 answers from this runner (TLS, /version v1.32.9) but is not "
        "reachable from global control-plane node g1 (192.0.2.1): timeout"
    )


def test_global_reaching_every_control_plane_port_passes_and_a_closed_one_fails() -> None:
    plan = global_plan()
    good = evidence_with(API_OK, ports(ALL_OK))
    assert run(checks.check_global_reaches_control_plane_ports, plan, connected=good).status == "pass"
    bad = evidence_with(API_OK, ports({**ALL_OK, 11781: "refused"}))
    result = run(checks.check_global_reaches_control_plane_ports, plan, connected=bad)
    assert result.status == "fail" and result.message == "g1 cannot reach cp1 192.0.2.10:11781 refused"


def test_a_global_node_without_tools_is_manual_and_one_without_ssh_is_error() -> None:
    plan = global_plan()
    notool = PortResult(to="api", host="192.0.2.10", port=6443, outcome="notool", detail="no python3")
    assert run(checks.check_global_reaches_api, plan, connected=evidence_with(notool, [])).status == "manual"
    lost = evidence_with(API_OK, [], error="unreachable: 192.0.2.1:22: timed out")
    assert run(checks.check_global_reaches_api, plan, connected=lost).status == "error"


def test_a_tunnel_only_plan_skips_the_direct_paths() -> None:
    plan = global_plan(reach="tunnel")
    evidence = evidence_with(API_TIMEOUT, ports({6443: "timeout"}))
    evidence.reach = "tunnel"
    for function in (checks.check_global_reaches_api, checks.check_global_reaches_control_plane_ports):
        result = run(function, plan, connected=evidence)
        assert result.status == "skip" and "only through the tunnel" in result.message


def test_a_registered_cluster_is_not_held_to_direct_reach() -> None:
    plan = make_plan(
        {
            "spec": {
                "kubeconfig": "kubeconfig",
                "globalCluster": {"controlPlane": [{"name": "g1", "role": "control-plane", "ipv4": "192.0.2.1"}]},
            }
        },
        base=REGISTERED,
    )
    result = run(checks.check_global_reaches_api, plan, connected=evidence_with(API_TIMEOUT, []))
    assert result.status == "skip" and "cluster type registered" in result.message


# ---------------------------------------------------------------------------
# The control-plane nodes to reach come from the live Nodes when the plan lists none


def test_the_control_plane_nodes_are_read_from_the_cluster(serve: Serve) -> None:
    from acpcheck.sources.connected import _control_plane

    cluster = serve([control_plane_node("cp1", "192.0.2.21"), control_plane_node("cp2", "192.0.2.22")])
    context = GatherContext(plan=plan_for(cluster))
    targets, source, error = _control_plane(context)
    assert (source, error) == ("live Nodes", "")
    assert [(t.name, t.address) for t in targets] == [("cp1", "192.0.2.21"), ("cp2", "192.0.2.22")]


# ---------------------------------------------------------------------------
# A real run: the registered example stays valid, and no credential reaches any artifact


def test_the_examples_still_load_and_run() -> None:
    for example in ("registered-cluster.yaml", "imported-cluster.yaml", "imported-cluster-tunnel.yaml"):
        completed = subprocess.run(
            [sys.executable, "-m", "acpcheck", "validate", "--plan", str(EXAMPLES / example)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert completed.returncode == 0, completed.stdout + completed.stderr


def test_no_credential_reaches_any_artifact(serve: Serve, tmp_path: Path) -> None:
    cluster = serve([canary_secret(CANARY)], extra_user_token=KUBECONFIG_CANARY)
    global_ = serve([canary_secret(CANARY), platform_cluster("ops-west", phase="Failed")])
    plan_file, out = tmp_path / "plan.yaml", tmp_path / "out"
    document = merge(
        IMPORTED,
        {"spec": {"kubeconfig": str(cluster.kubeconfig), "globalCluster": {"kubeconfig": str(global_.kubeconfig)}}},
    )
    plan_file.write_text(yaml.safe_dump(document))
    env = {key: value for key, value in os.environ.items() if not key.startswith("ACPCHECK_")}
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "acpcheck",
            "run",
            "--plan",
            str(plan_file),
            "--out",
            str(out),
            "--check",
            "ACP-CONN-01*",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    results = json.loads((out / "results.json").read_text())
    statuses = {r["check"]: r["status"] for r in results["results"]}
    assert statuses["ACP-CONN-010"] == "pass" and statuses["ACP-CONN-013"] == "fail", statuses
    texts = [completed.stdout, completed.stderr]
    texts += [path.read_text(errors="replace") for path in out.rglob("*") if path.is_file()]
    assert len(texts) > 5
    for secret in (CANARY, KUBECONFIG_CANARY, cluster.token, global_.token):
        assert all(secret not in text for text in texts), secret


# ---------------------------------------------------------------------------
# ACP-CONN-017: global reaches the cluster's load balancer on 6443, 11780, 11781 (after install)


def on_premise_plan() -> ClusterPlan:
    return make_plan(
        {
            "spec": {
                "kubeconfig": "kubeconfig",
                "globalCluster": {"controlPlane": [{"name": "g1", "role": "control-plane", "ipv4": "192.0.2.1"}]},
            }
        }
    )


def endpoint_results(outcomes: dict[int, str]) -> list[PortResult]:
    endpoint = on_premise_plan().spec.endpoint.address
    assert endpoint
    return [PortResult(to="endpoint", host=endpoint, port=port, outcome=outcome) for port, outcome in outcomes.items()]


def test_global_reaching_the_endpoint_on_every_port_passes_and_a_closed_one_fails() -> None:
    plan = on_premise_plan()
    good = evidence_with(API_OK, [*ports(ALL_OK), *endpoint_results(ALL_OK)])
    assert run(checks.check_global_reaches_endpoint_ports, plan, connected=good).status == "pass"
    bad = evidence_with(API_OK, [*ports(ALL_OK), *endpoint_results({**ALL_OK, 11780: "timeout"})])
    result = run(checks.check_global_reaches_endpoint_ports, plan, connected=bad)
    assert result.status == "fail"
    assert result.message == f"g1 cannot reach the endpoint {plan.spec.endpoint.address} on 11780 timeout"
    # The per-node check is not confused by the endpoint's results.
    assert run(checks.check_global_reaches_control_plane_ports, plan, connected=bad).status == "pass"


def test_the_endpoint_check_skips_for_an_imported_cluster() -> None:
    result = run(checks.check_global_reaches_endpoint_ports, global_plan(), connected=evidence_with(API_OK, []))
    assert result.status == "skip" and "cluster type imported" in result.message


# ---------------------------------------------------------------------------
# Public cloud (ACP-CLOUD-002): a global cluster without any cloud credential is never a PASS


def test_a_missing_cloud_credential_is_never_passed(serve: Serve) -> None:
    """The planted defect "cloud credential missing": the docs give no object a Cloud Credential or a provider
    plugin is recognised by, so ACP-CLOUD-002 stays MANUAL (with the commands) whatever global holds."""
    from acpcheck.checks import cloud

    global_ = serve([platform_cluster("eks-analytics")])  # no credential of any shape
    plan = make_plan(
        {"spec": {"cluster": {"cloudProvider": "eks"}, "globalCluster": {"kubeconfig": str(global_.kubeconfig)}}},
        base=REGISTERED,
    )
    result = run(cloud.check_cloud_provider_plugin_and_credential, plan)
    assert result.status == "manual"
    assert "Cloud Credential" in result.message and "kubectl get moduleinfo" in result.message


def test_a_worker_in_the_global_control_plane_is_bad_input() -> None:
    from acpcheck.errors import InputError

    with pytest.raises(InputError) as raised:
        make_plan(
            {"spec": {"globalCluster": {"controlPlane": [{"name": "g1", "role": "worker", "ipv4": "192.0.2.1"}]}}}
        )
    assert "test-plan.yaml" in str(raised.value) and "role must be control-plane" in str(raised.value)


def test_a_registered_cluster_run_finds_each_planted_defect(serve: Serve, tmp_path: Path) -> None:
    """The registered example, connected through the tunnel, as a real ``acpcheck run``: the cluster runs
    Kubernetes 1.36 (outside ACP 4.3's onboarding range) and its Tunnel Agent never connected (global's
    record stays Initializing). Each defect is a FAIL; the components the docs do not name are MANUAL."""
    cluster = serve([canary_secret(CANARY)], version="1.36.0", extra_user_token=KUBECONFIG_CANARY)
    global_ = serve([platform_cluster("eks-analytics", phase="Initializing", cluster_type="Registered")])
    plan_file, out = tmp_path / "plan.yaml", tmp_path / "out"
    document = merge(
        REGISTERED,
        {
            "spec": {
                "cluster": {"kubernetesVersion": "1.36.0"},
                "kubeconfig": str(cluster.kubeconfig),
                "globalCluster": {"kubeconfig": str(global_.kubeconfig), "reach": "tunnel"},
            }
        },
    )
    plan_file.write_text(yaml.safe_dump(document))
    env = {key: value for key, value in os.environ.items() if not key.startswith("ACPCHECK_")}
    completed = subprocess.run(
        [sys.executable, "-m", "acpcheck", "run", "--plan", str(plan_file), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    results = json.loads((out / "results.json").read_text())
    seen = {r["check"]: (r["status"], r["message"]) for r in results["results"] if r["check"].startswith("ACP-CONN-01")}
    for check, (status, message) in sorted(seen.items()):
        print(f"finding {check} {status}: {message}")  # shown with -s: the texts for the closing note
    assert seen["ACP-CONN-010"][0] == "pass"
    assert seen["ACP-CONN-012"][0] == "fail" and "is outside the range ACP 4.3 accepts" in seen["ACP-CONN-012"][1]
    assert seen["ACP-CONN-013"][0] == "fail" and "phase Initializing" in seen["ACP-CONN-013"][1]
    assert seen["ACP-CONN-014"][0] == "manual" and seen["ACP-CONN-015"][0] == "manual"
    assert all(seen[check][0] == "skip" for check in ("ACP-CONN-011", "ACP-CONN-016", "ACP-CONN-017"))
    assert completed.returncode == 1, completed.stdout + completed.stderr
    texts = [
        completed.stdout,
        completed.stderr,
        *(p.read_text(errors="replace") for p in out.rglob("*") if p.is_file()),
    ]
    for secret in (CANARY, KUBECONFIG_CANARY, cluster.token, global_.token):
        assert all(secret not in text for text in texts), secret


def test_the_evidence_saves_and_replays_exactly(serve: Serve, tmp_path: Path) -> None:
    cluster, global_ = serve([]), serve([platform_cluster("ops-west")])
    plan = plan_for(cluster, globalCluster={"kubeconfig": str(global_.kubeconfig)})
    evidence = gather(plan)
    source = ConnectedSource()
    source.save(evidence, tmp_path / "connected")
    replayed = source.load(tmp_path / "connected", plan)
    assert replayed == evidence
    assert run(checks.check_global_records_cluster, plan, connected=replayed).status == "pass"
    saved = (tmp_path / "connected" / "connected.json").read_text()
    assert cluster.token not in saved and global_.token not in saved
