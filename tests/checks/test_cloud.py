"""ACP-CLOUD-001/002 (checks/cloud.py) and the SKIP of node checks on a public-cloud plan, on
evidence the ``cluster`` source reads over TLS from the project's test API server (a fresh
server per test, seeded with the Nodes it is about), and through a real ``acpcheck run``: an
EKS cluster is recognised from its nodes' providerID, its node checks are skipped with that
reason (no SSH is tried), and a cloud credential stored on the cluster reaches no output."""

from __future__ import annotations

import base64
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
from acpcheck.checks import cloud
from acpcheck.checks.node_kernel import check_transparent_hugepage_never
from acpcheck.model.plan import ClusterPlan
from acpcheck.model.result import CheckResult
from acpcheck.sources.cluster import NODES, ClusterEvidence, ClusterView, gather_cluster
from acpcheck_lab.apiserver import init_server_dir, serve_dir

#: The EKS plan of the examples (a registered cluster): with cloudProvider eks it is a public-cloud plan.
REGISTERED = yaml.safe_load((EXAMPLES / "registered-cluster.yaml").read_text())
#: A cloud account's secret as a Cloud Credential would hold it: it must reach no output.
CANARY = "acpcheck-CANARY-cloud-secret-9fK2pQ7v"


def node(name: str, provider_id: str | None) -> dict[str, Any]:
    spec = {"providerID": provider_id} if provider_id else {}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name},
        "spec": spec,
        "status": {"addresses": [{"type": "InternalIP", "address": "192.0.2.11"}]},
    }


def eks(name: str) -> dict[str, Any]:
    return node(name, f"aws:///us-east-1a/i-{name}")


def aks(name: str) -> dict[str, Any]:
    return node(name, f"azure:///subscriptions/0000/resourceGroups/mc_rg/providers/Microsoft.Compute/vm/{name}")


def gke(name: str) -> dict[str, Any]:
    return node(name, f"gce://project-1/europe-west1-b/{name}")


def credential_secret() -> dict[str, Any]:
    """An AWS account key as a Secret on the cluster (the shape a stored cloud credential might have)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "aws-account", "namespace": "cpaas-system"},
        "type": "Opaque",
        "stringData": {"accessKeyId": "AKIAEXAMPLE", "secretAccessKey": CANARY},
    }


# ---------------------------------------------------------------------------
# A fresh test API server per test, read by the cluster source with the reader's token


Live = Callable[..., tuple[ClusterPlan, ClusterEvidence]]


@pytest.fixture
def live(serve_cluster: ServeCluster) -> Live:
    """``live(objects, plan=edits, base=plan document)``: (the plan with a kubeconfig for the server, the evidence)."""

    def start(
        objects: list[dict[str, Any]], plan: dict[str, Any] | None = None, base: dict[str, Any] | None = None
    ) -> tuple[ClusterPlan, ClusterEvidence]:
        path = serve_cluster(objects)
        the_plan = make_plan(merge({"spec": {"kubeconfig": str(path)}}, plan or {}), base=base)
        evidence = gather_cluster(the_plan, environ={})
        assert evidence.failure is None, evidence.failure
        return the_plan, evidence

    return start


def run(plan: ClusterPlan, evidence: ClusterEvidence) -> CheckResult:
    return testing.run_check(cloud.check_cloud_provider_matches_plan, plan, cluster=ClusterView(evidence))


def eks_plan(**cluster: Any) -> dict[str, Any]:
    return {"spec": {"cluster": {"cloudProvider": "eks", **cluster}}}


# ---------------------------------------------------------------------------
# ACP-CLOUD-001: the cloud the nodes report against the plan


def test_an_eks_cluster_is_recognised_from_its_nodes_and_agrees_with_its_plan(live: Live) -> None:
    plan, evidence = live([eks("ip-10-0-1-5"), eks("ip-10-0-2-7")], plan=eks_plan(), base=REGISTERED)
    result = run(plan, evidence)
    assert result.status == "pass", result.message
    # The providerIDs it was judged on are in the evidence, as the nodes reported them.
    assert [n["providerID"] for n in ClusterView(evidence).items(NODES)] == [
        "aws:///us-east-1a/i-ip-10-0-1-5",
        "aws:///us-east-1a/i-ip-10-0-2-7",
    ]


@pytest.mark.parametrize(
    ("nodes", "edits", "status", "said"),
    [
        # An on-premise plan (the default type) for a cluster whose nodes are EKS's.
        ([eks("n1")], {}, "fail", "the plan says cluster type on-premise, but the nodes run on Amazon EKS (1 nodes)"),
        ([aks("n1"), aks("n2")], {"spec": {"cluster": {"type": "immutable"}}}, "fail", "Azure AKS (2 nodes)"),
        # The plan names another cloud, or a cloud the nodes do not show.
        ([gke("n1")], eks_plan(type="imported"), "fail", "the plan says cloudProvider eks (Amazon EKS), the nodes say"),
        ([node("n1", "acp://n1")], eks_plan(type="imported"), "fail", "the nodes say no public cloud"),
        ([eks("n1"), gke("n2")], eks_plan(type="imported"), "fail", "the nodes report more than one cloud"),
        # An imported cluster on AKS whose plan does not say so: its node checks would not be skipped.
        (
            [aks("n1")],
            {"spec": {"cluster": {"type": "imported"}}},
            "warn",
            "does not say spec.cluster.cloudProvider: aks",
        ),
        ([eks("n1"), node("n2", None)], eks_plan(type="imported"), "warn", "1 nodes have no eks providerID"),
        # An on-premise cluster on its own machines: no cloud on either side.
        ([node("n1", "acp://n1"), node("n2", None)], {}, "pass", ""),
        ([gke("n1")], {"spec": {"cluster": {"type": "registered", "cloudProvider": "gke"}}}, "pass", ""),
    ],
)
def test_the_cloud_of_the_nodes_against_the_plan(
    live: Live, nodes: list[dict[str, Any]], edits: dict[str, Any], status: str, said: str
) -> None:
    plan, evidence = live(nodes, plan=edits)
    result = run(plan, evidence)
    assert (result.status, said in result.message) == (status, True), result.message


def test_a_cluster_without_nodes_is_skipped_not_passed(live: Live) -> None:
    plan, evidence = live([], plan=eks_plan(), base=REGISTERED)
    result = run(plan, evidence)
    assert result.status == "skip" and "no Node objects" in result.message


def test_provider_ids_name_their_cloud_by_scheme_only() -> None:
    assert [cloud.cloud_of(p) for p in ("aws:///a/i-1", "azure:///s/x", "gce://p/z/n", "aws", "kind://x", None)] == [
        "eks",
        "aks",
        "gke",
        None,
        None,
        None,
    ]


# ---------------------------------------------------------------------------
# Node checks on a public-cloud plan (acpcheck.grading.not_applicable)


def test_node_checks_skip_on_a_public_cloud_plan_and_run_otherwise() -> None:
    on_eks = make_plan(eks_plan(type="imported"))
    skipped = testing.run_check(check_transparent_hugepage_never, on_eks, node=None)
    assert skipped.status == "skip"
    assert skipped.message == (
        "not applicable: a public-cloud cluster (EKS): its nodes are managed by the cloud provider, not reached by "
        "ACP over SSH"
    )
    # The same plan without the cloud: the check is applicable (it runs, and reading no node is an error).
    assert testing.run_check(check_transparent_hugepage_never, make_plan(), node=None).status == "error"


# ---------------------------------------------------------------------------
# ACP-CLOUD-002: the provider plugin and the Cloud Credential on global (MANUAL: the docs give no API object)


def test_the_provider_plugin_and_credential_are_a_manual_check_with_the_command() -> None:
    result = testing.run_check(cloud.check_cloud_provider_plugin_and_credential, make_plan(eks_plan(type="imported")))
    assert result.status == "manual"
    assert "kubectl get moduleinfo" in result.message and "Clusters > Cloud Credential" in result.message
    assert "Amazon EKS" in result.message and "no API object" in result.message
    # No cloud in the plan: nothing to check; the global cluster's own plan: not applicable.
    assert testing.run_check(cloud.check_cloud_provider_plugin_and_credential, make_plan()).status == "skip"
    on_global = make_plan({"spec": {"cluster": {"role": "global", "cloudProvider": "eks"}}})
    assert testing.run_check(cloud.check_cloud_provider_plugin_and_credential, on_global).status == "skip"


# ---------------------------------------------------------------------------
# A real run: the EKS plan with a node listed, against a cluster holding a cloud credential


def test_a_real_run_on_an_eks_cluster_skips_its_nodes_and_prints_no_credential(tmp_path: Path) -> None:
    server_dir = init_server_dir(tmp_path / "api", port=0)
    seed = tmp_path / "seed.yaml"
    seed.write_text(yaml.safe_dump_all([eks("ip-10-0-1-5"), credential_secret()]))
    server = serve_dir(server_dir.root, listen="127.0.0.1:0", seeds=[seed])
    secrets = server.store.find("", "v1", "secrets")
    assert secrets is not None
    stored = server.store.get(secrets, "cpaas-system", "aws-account")
    assert CANARY in json.dumps(stored) or CANARY.encode() in base64.b64decode(stored["data"]["secretAccessKey"])
    try:
        document = merge(
            REGISTERED,
            {
                "spec": {
                    "cluster": {"cloudProvider": "eks"},
                    "kubeconfig": str(server_dir.kubeconfig("acpcheck-reader")),
                    # A node a node check would SSH into (192.0.2.0/24: nothing answers there).
                    "ssh": {"user": "ec2-user", "auth": {"passwordEnv": "NODE_SSH_PASSWORD"}},
                    "nodes": [{"name": "ip-10-0-1-5", "role": "worker", "ipv4": "192.0.2.15"}],
                }
            },
        )
        plan = tmp_path / "eks.yaml"
        plan.write_text(yaml.safe_dump(document))
        profile = tmp_path / "cloud.yaml"
        profile.write_text(yaml.safe_dump({"name": "cloud", "include": ["area:CLOUD", "scope:node"]}))
        out = tmp_path / "out"
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "acpcheck",
                "run",
                "--plan",
                str(plan),
                "--profile",
                str(profile),
                "--out",
                str(out),
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "NODE_SSH_PASSWORD": "not-used"},
            stdin=subprocess.DEVNULL,
            timeout=300,
            check=False,
        )
    finally:
        server.stop()
    assert result.returncode in (0, 1), result.stdout + result.stderr
    results = json.loads((out / "results.json").read_text())["results"]
    by_check: dict[str, set[str]] = {}
    for entry in results:
        by_check.setdefault(entry["check"], set()).add(entry["status"])
    assert by_check.pop("ACP-CLOUD-001") == {"pass"}
    assert by_check.pop("ACP-CLOUD-002") == {"manual"}
    assert by_check and set().union(*by_check.values()) == {"skip"}, by_check  # every node check, no SSH tried
    reasons = {entry["message"] for entry in results if entry["check"].startswith("ACP-NODE-")}
    assert reasons == {
        "not applicable: a public-cloud cluster (EKS): its nodes are managed by the cloud provider, not reached by "
        "ACP over SSH"
    }
    outputs = {"stdout": result.stdout, "stderr": result.stderr}
    outputs |= {str(path): path.read_text(errors="replace") for path in out.rglob("*") if path.is_file()}
    assert {"results.json", "junit.xml", "summary.md", "report.html", "results.sarif"} <= {
        Path(name).name for name in outputs
    }
    assert [name for name, text in outputs.items() if CANARY in text] == []
