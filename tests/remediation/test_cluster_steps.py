"""Cluster steps (ACP-ROLE-*, ACP-REG-*) against the test API server on loopback: dry-run,
apply, verify, second apply, rollback, refusals, and no TLS key in any output or journal.

Objects are checked as documented (Cluster Node Planning; Add External Address for
Built-in Registry; annotate platform-url) and schema-valid (kubernetes-validate). No root,
no lab: the API server is acpcheck's test stand-in, started in-process."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from acpcheck import Scope, Severity, check, fail
from acpcheck.checks.registry import DOC_PATHS
from acpcheck.remediation import steps as step_module
from acpcheck.remediation.changes import Changes
from acpcheck.remediation.journal import Journal
from acpcheck.remediation.objects import ObjectChange, created_shape, get_path, project
from acpcheck.remediation.output import document, render_rollback, render_run
from acpcheck.remediation.refusals import cluster_step_refusal
from acpcheck.remediation.runner import (
    KubeAccess,
    Options,
    RunReport,
    remediate,
    rollback,
)
from acpcheck.remediation.steps import cluster_step
from acpcheck.testing import load_plan_text
from acpcheck_lab.apiserver import (
    ServerDir,
    TestApiServer,
    init_server_dir,
    issue,
    serve_dir,
)

ROOT = Path(__file__).resolve().parents[2]
DOMAIN = "registry.example.com"
SELECT = ("ACP-ROLE-*", "ACP-REG-*")
NODE_INFO = (
    "{architecture: amd64, bootID: b, containerRuntimeVersion: containerd://1.7.27, kernelVersion: 5.15.0, "
    "kubeProxyVersion: v1.34.5, "
    "kubeletVersion: v1.34.5, machineID: m, operatingSystem: linux, osImage: Ubuntu 22.04.4 LTS, systemUUID: u}"
)
SEED = """
apiVersion: v1
kind: Namespace
metadata: {name: kube-system}
---
apiVersion: v1
kind: Namespace
metadata: {name: cpaas-system}
---
apiVersion: v1
kind: Node
metadata: {name: 192.0.2.11, labels: {node-role.kubernetes.io/control-plane: "", kubernetes.io/os: linux}}
status: {addresses: [{type: InternalIP, address: 192.0.2.11}], nodeInfo: NODE_INFO}
---
apiVersion: v1
kind: Node
metadata: {name: 192.0.2.21, labels: {kubernetes.io/os: linux}}
spec: {taints: [{key: example.com/gpu, value: "true", effect: NoExecute}]}
status: {addresses: [{type: InternalIP, address: 192.0.2.21}], nodeInfo: NODE_INFO}
---
apiVersion: v1
kind: Node
metadata: {name: 192.0.2.22, labels: {node-role.kubernetes.io/log: ""}}
status: {addresses: [{type: InternalIP, address: 192.0.2.22}], nodeInfo: NODE_INFO}
---
# a Cluster API Cluster: the test API server ships Cluster API's published CRD (lab/acpcheck_lab/crds/)
apiVersion: cluster.x-k8s.io/v1beta1
kind: Cluster
metadata: {name: prod-east, namespace: cpaas-system, annotations: {cpaas.io/display-name: prod}}
spec: {}
""".replace("NODE_INFO", NODE_INFO)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[TestApiServer, ServerDir]]:
    seed = tmp_path / "seed.yaml"
    seed.write_text(SEED)
    server_dir = init_server_dir(tmp_path / "api", port=0)
    served = serve_dir(server_dir.root, listen="127.0.0.1:0", seeds=[seed])
    yield served, server_dir
    served.stop()


def certificate(tmp_path: Path) -> tuple[Path, Path, bytes]:
    cert_pem, key_pem, _, _ = issue(DOMAIN, hosts=[DOMAIN])
    cert, key = tmp_path / "registry.crt", tmp_path / "registry.key"
    cert.write_bytes(cert_pem)
    key.write_bytes(key_pem)
    return cert, key, key_pem


def global_plan(server_dir: ServerDir, tmp_path: Path, **changes: Any) -> Any:
    document = yaml.safe_load((ROOT / "examples" / "global-cluster.yaml").read_text())
    cert, key, _ = certificate(tmp_path)
    spec = document["spec"]
    spec["kubeconfig"] = str(server_dir.kubeconfig("admin"))
    spec["registry"] = {
        "type": "platform",
        "externalAddress": {"domain": DOMAIN, "certFile": str(cert), "keyFile": str(key)},
    }
    spec["nodeRoles"] = [
        {"node": "192.0.2.21", "role": "infra"},
        {"node": "192.0.2.22", "role": "log", "taint": "dedicated"},
    ]
    for key_name, value in changes.items():
        spec["cluster"][key_name] = value
    return load_plan_text(yaml.safe_dump(document), str(tmp_path / "plan.yaml"))


def run(plan: Any, tmp_path: Path, apply: bool, run_id: str, selectors: tuple[str, ...] = SELECT) -> RunReport:
    options = Options(
        apply=apply, selectors=selectors, run_id=run_id, journal_dir=tmp_path / run_id / "journal" if apply else None
    )
    access = KubeAccess(plan)
    try:
        return remediate(plan, options, None, cluster_access=access)  # type: ignore[arg-type]
    finally:
        access.close()


def snapshot(plan: Any) -> dict[str, Any]:
    """Every object the steps may touch, as the API serves it (without resourceVersion)."""
    access = KubeAccess(plan)
    kube = access.kube()
    try:
        core, net = kube.client.CoreV1Api(kube.api), kube.client.NetworkingV1Api(kube.api)

        def raw(call, *args):
            return json.loads(call(*args, _preload_content=False).data)["items"]

        found = {
            "nodes": raw(core.list_node),
            "secrets": raw(core.list_namespaced_secret, "kube-system"),
            "services": raw(core.list_namespaced_service, "kube-system"),
            "ingresses": raw(net.list_namespaced_ingress, "kube-system"),
        }
    finally:
        access.close()
    for items in found.values():
        for item in items:
            item["metadata"].pop("resourceVersion", None)
            item["metadata"].pop("managedFields", None)
    return found


def secrets_in(key_pem: bytes) -> list[str]:
    lines = [line for line in key_pem.decode().splitlines() if len(line) > 20 and "PRIVATE KEY" not in line]
    return [base64.b64encode(key_pem).decode(), *lines]


def cluster_report(report: RunReport) -> Any:
    (node,) = [n for n in report.nodes if n.node.startswith("cluster:")]
    return node


def test_dry_run_apply_second_apply_and_rollback(server: tuple[TestApiServer, ServerDir], tmp_path: Path) -> None:
    _, server_dir = server
    plan = global_plan(server_dir, tmp_path)
    key_pem = (tmp_path / "registry.key").read_bytes()
    before = snapshot(plan)

    dry = run(plan, tmp_path, apply=False, run_id="dry")
    steps = {item.step.id: item for item in cluster_report(dry).steps}
    assert set(steps) == {
        "ACP-ROLE-001/role-label",
        "ACP-ROLE-002/role-taint",
        "ACP-REG-001/registry-tls-secret",
        "ACP-REG-002/registry-ingress",
        "ACP-REG-003/registry-service",
    }
    assert all(item.before.status == "fail" and item.outcome == "planned" for item in steps.values())
    assert dry.exit_code() == 1 and snapshot(plan) == before  # a dry-run changes nothing
    text = render_run(dry)
    assert (
        "kubectl patch nodes 192.0.2.21 --type merge" in text
        and "create Secret kube-system/registry-address.tls" in text
    )
    assert "node-role.kubernetes.io/log=dedicated" not in text  # shown as YAML fields, not kubectl taint syntax
    planned = [a for item in steps.values() for a in item.changes.actions if isinstance(a, ObjectChange)]
    # The log node already has its label: only the infra node is labelled; both get a taint.
    assert [a.ref.name for a in steps["ACP-ROLE-001/role-label"].changes.actions] == ["192.0.2.21"]

    applied = run(plan, tmp_path, apply=True, run_id="apply1")
    outcomes = {item.step.id: item.outcome for item in cluster_report(applied).steps}
    assert set(outcomes.values()) == {"fixed"}, render_run(applied)
    assert applied.exit_code() == 0
    after = snapshot(plan)
    by_name = {kind: {o["metadata"]["name"]: o for o in items} for kind, items in after.items()}
    # Exactly what the dry-run showed, now in the cluster.
    for action in planned:
        obj = by_name[action.ref.resource][action.ref.name]
        if action.op == "create":
            like = created_shape(action.body)
            assert project(obj, like) == project(action.body, like)
        else:
            assert all(get_path(obj, path) == new for path, (_, new) in action.fields.items())
    infra, log = by_name["nodes"]["192.0.2.21"], by_name["nodes"]["192.0.2.22"]
    assert infra["metadata"]["labels"]["node-role.kubernetes.io/infra"] == ""
    assert infra["spec"]["taints"] == [
        {"key": "example.com/gpu", "value": "true", "effect": "NoExecute"},
        {"key": "node-role.kubernetes.io/infra", "value": "reserved", "effect": "NoSchedule"},
    ]
    assert {"key": "node-role.kubernetes.io/log", "value": "dedicated", "effect": "NoSchedule"} in log["spec"]["taints"]
    ingress = by_name["ingresses"]["registry-address"]
    assert ingress["metadata"]["annotations"] == {"nginx.ingress.kubernetes.io/backend-protocol": "HTTPS"}
    assert [p["path"] for p in ingress["spec"]["rules"][0]["http"]["paths"]] == list(DOC_PATHS)
    assert ingress["spec"]["tls"] == [{"secretName": "registry-address.tls", "hosts": [DOMAIN]}]
    service = by_name["services"]["registry"]
    assert service["spec"]["ports"][0]["port"] == 443 and service["spec"]["ports"][0]["targetPort"] == 60080
    assert service["spec"]["selector"] == {"component": "registry"} and service["spec"]["type"] == "ClusterIP"
    secret = by_name["secrets"]["registry-address.tls"]
    assert secret["type"] == "kubernetes.io/tls" and base64.b64decode(secret["data"]["tls.key"]) == key_pem
    for kind, api_version, kind_name in (
        ("nodes", "v1", "Node"),
        ("secrets", "v1", "Secret"),
        ("services", "v1", "Service"),
        ("ingresses", "networking.k8s.io/v1", "Ingress"),
    ):
        for obj in after[kind]:
            kubernetes_validate.validate({"apiVersion": api_version, "kind": kind_name, **obj}, "1.34", strict=True)

    # No TLS key anywhere but in the Secret: not in the output, the report, or the journal.
    journal_text = "".join(p.read_text() for p in (tmp_path / "apply1" / "journal").iterdir() if p.is_file())
    evidence = json.dumps(KubeAccess(plan).gather().as_dict())  # what a run saves as cluster/cluster.json
    assert '"tls.key": {"bytes": ' in evidence
    outputs = [
        render_run(dry),
        render_run(applied),
        json.dumps(document(dry, 1)),
        json.dumps(document(applied, 0)),
        journal_text,
        evidence,
    ]
    for secret_text in secrets_in(key_pem):
        assert not any(secret_text in output for output in outputs)

    again = run(plan, tmp_path, apply=True, run_id="apply2")
    assert not list(again.steps()) and again.exit_code() == 0  # a second apply is a no-op
    assert snapshot(plan) == after

    journal = Journal.open(tmp_path / "apply1" / "journal")
    access = KubeAccess(plan)
    try:
        undone = rollback(plan, journal, None, cluster_access=access)  # type: ignore[arg-type]
    finally:
        access.close()
    assert undone.exit_code() == 0, render_rollback(undone, plan.metadata.name)
    assert snapshot(plan) == before  # created objects deleted, patched fields restored exactly
    text = render_rollback(undone, plan.metadata.name)
    assert "Secret kube-system/registry-address.tls: deleted" in text and "Node 192.0.2.21: restored" in text


def test_an_object_that_differs_is_never_overwritten(server: tuple[TestApiServer, ServerDir], tmp_path: Path) -> None:
    served, server_dir = server
    served.put(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "registry", "namespace": "kube-system"},
            "spec": {"ports": [{"port": 443, "targetPort": 5000}], "selector": {"component": "registry"}},
        }
    )
    plan = global_plan(server_dir, tmp_path)
    before = snapshot(plan)["services"]
    report = run(plan, tmp_path, apply=True, run_id="differs", selectors=("ACP-REG-003",))
    (item,) = cluster_report(report).steps
    assert item.outcome == "still failing" and not item.changes.actions and report.exit_code() == 1
    assert (
        "exists and differs from the documented one (no port 443 -> targetPort 60080); not overwritten"
        in item.changes.notes[0]
    )
    assert "not overwritten" in render_run(report)
    assert snapshot(plan)["services"] == before


def test_platform_url_annotation_and_its_undo(server: tuple[TestApiServer, ServerDir], tmp_path: Path) -> None:
    _, server_dir = server
    document_ = yaml.safe_load((ROOT / "examples" / "workload-kube-ovn.yaml").read_text())
    document_["spec"]["kubeconfig"] = str(server_dir.kubeconfig("admin"))
    document_["spec"]["cluster"]["annotations"] = {"cpaas.io/platform-url": "https://global-ext.example.com"}
    plan = load_plan_text(yaml.safe_dump(document_), str(tmp_path / "plan.yaml"))
    report = run(plan, tmp_path, apply=True, run_id="purl")
    (item,) = cluster_report(report).steps
    assert item.step.id == "ACP-REG-004/platform-url" and item.outcome == "fixed"
    access = KubeAccess(plan)
    kube = access.kube()

    def get():
        return kube.client.CustomObjectsApi(kube.api).get_namespaced_custom_object(
            "cluster.x-k8s.io", "v1beta1", "cpaas-system", "clusters", "prod-east"
        )

    try:
        assert get()["metadata"]["annotations"] == {
            "cpaas.io/display-name": "prod",
            "cpaas.io/platform-url": "https://global-ext.example.com",
        }
        assert rollback(plan, Journal.open(tmp_path / "purl" / "journal"), None, cluster_access=access).exit_code() == 0  # type: ignore[arg-type]
        assert get()["metadata"]["annotations"] == {"cpaas.io/display-name": "prod"}
    finally:
        access.close()


@pytest.mark.parametrize(
    ("cluster_type", "node_change", "why"),
    [
        ("imported", None, "a third-party cluster"),
        ("registered", None, "a third-party cluster"),
        ("immutable", None, "an immutable-OS cluster"),
        ("on-premise", {"metadata": {"labels": {"eks.amazonaws.com/nodegroup": "ng-1"}}}, "an EKS cluster"),
        ("on-premise", {"status": {"nodeInfo": {"osImage": "openSUSE MicroOS"}}}, "immutable OS"),
    ],
)
def test_node_roles_are_refused_where_the_docs_say_unsupported(
    server: tuple[TestApiServer, ServerDir],
    tmp_path: Path,
    cluster_type: str,
    node_change: dict[str, Any] | None,
    why: str,
) -> None:
    served, server_dir = server
    if node_change:
        node = copy.deepcopy(yaml.safe_load(SEED.split("---")[4]))
        node["metadata"]["name"] = "192.0.2.23"  # one more Node, that tells an EKS or immutable-OS cluster
        for key, value in node_change.items():
            for inner, item in value.items():
                node.setdefault(key, {}).setdefault(inner, {}).update(item)
        served.put(node)
    document_ = yaml.safe_load((ROOT / "examples" / "workload-kube-ovn.yaml").read_text())
    document_["spec"]["kubeconfig"] = str(server_dir.kubeconfig("admin"))
    document_["spec"]["cluster"]["type"] = cluster_type
    document_["spec"]["nodeRoles"] = [{"node": "192.0.2.21", "role": "infra"}]
    plan = load_plan_text(yaml.safe_dump(document_), str(tmp_path / "plan.yaml"))
    before = snapshot(plan)
    report = run(plan, tmp_path, apply=True, run_id=f"refused-{cluster_type}")
    items = cluster_report(report).steps
    assert {item.step.id for item in items} == {"ACP-ROLE-001/role-label", "ACP-ROLE-002/role-taint"}
    assert all(
        item.outcome == "refused" and why in item.changes.refused and "acp-node-planning.html" in item.changes.refused
        for item in items
    )
    assert "Nothing was changed." in render_run(report) and report.exit_code() == 1
    if cluster_type == "immutable":  # the node steps are refused too, node by node
        assert all(
            "immutable-OS cluster" in (n.refused or "") for n in report.nodes if not n.node.startswith("cluster:")
        )
    assert snapshot(plan) == before


@check(
    id="ACP-ENC-951",
    title="test: an etcd encryption change is wanted",
    severity=Severity.HIGH,
    scope=Scope.CLUSTER,
    refs=["https://docs.alauda.io/container_platform/4.3/configure/clusters/etcd-encryption.html"],
    remediation="test",
)
def check_encryption_change(cluster: Any) -> None:
    """Always fails (test)."""
    fail("test")


@pytest.fixture
def encryption_step() -> Iterator[None]:
    @cluster_step(fixes=check_encryption_change, name="change", does="test: would change etcd encryption")
    def change(cluster: Any) -> Changes:
        raise AssertionError("a refused step is never asked for its changes")

    yield
    step_module.STEPS.pop("ACP-ENC-951", None)


def test_etcd_encryption_changes_are_refused_on_the_global_cluster(
    server: tuple[TestApiServer, ServerDir], tmp_path: Path, encryption_step: None
) -> None:
    _, server_dir = server
    plan = global_plan(server_dir, tmp_path)
    report = run(plan, tmp_path, apply=True, run_id="enc", selectors=("ACP-ENC-951",))
    (item,) = cluster_report(report).steps
    assert (
        item.outcome == "refused"
        and "global cluster" in item.changes.refused
        and "etcd-encryption.html" in item.changes.refused
    )
    assert cluster_step_refusal(global_plan(server_dir, tmp_path, role="workload"), "ACP-ENC-951") is None
