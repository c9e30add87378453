"""ACP-ENC-*: every rule with a passing and a failing case on hand-made evidence, graded as a
run grades it (acpcheck.testing.run_check); and when the checks do not apply (global
cluster, no kubeconfig, plan says no encryption). The same rules on real parts — the
test API server, lab nodes over SSH and a real etcd — are in tests/lab/test_encryption_lab.py."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from nodes.conftest import merge, node_context

from acpcheck import testing
from acpcheck.catalog import load_catalog
from acpcheck.checks import encryption as enc
from acpcheck.model.result import CheckResult
from acpcheck.sources.cluster import ClusterEvidence, ClusterView, ReadResult
from acpcheck.sources.encryption import ConfigSummary, EncryptionEvidence, EncryptionView, NodeEncryption
from acpcheck.sources.encryption_scan import CATEGORIES, ResourceScan, ScanResult

EXAMPLE = yaml.safe_load((Path(__file__).resolve().parents[2] / "examples" / "workload-kube-ovn.yaml").read_text())


def make_plan(edits: dict[str, Any]) -> Any:
    """The example plan with ``edits`` merged in, through the real loader."""
    return testing.load_plan_text(yaml.safe_dump(merge(EXAMPLE, edits)))


LIVE_PLAN = make_plan({"spec": {"kubeconfig": "/nonexistent/kubeconfig", "etcdEncryption": {"expected": True}}})
NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
ADDRESSES = {"cp1": "192.0.2.11", "cp2": "192.0.2.12", "cp3": "192.0.2.13"}


def eec(**edits: Any) -> dict[str, Any]:
    """A healthy EtcdEncryptionConfig default (revision 3 everywhere), with dotted-path edits."""
    obj: dict[str, Any] = {
        "apiVersion": "cluster.alauda.io/v1alpha1",
        "kind": "EtcdEncryptionConfig",
        "metadata": {"name": "default"},
        "spec": {"resources": ["secrets", "configmaps"], "rotationInterval": "168h0m0s", "type": "aesgcm"},
        "status": {
            "revision": 3,
            "deployStatus": {ip: {"revision": 3, "state": "Success", "message": ""} for ip in ADDRESSES.values()},
            "migration": {
                "revision": 3,
                "state": "Success",
                "message": "",
                "resources": ["secrets", "configmaps"],
                "completeTimestamp": "2026-05-30T00:00:00Z",
            },
        },
    }
    for path, value in edits.items():
        node = obj
        *parents, last = path.split("__")
        for part in parents:
            node = node[part.replace("_", ".") if part[0].isdigit() else part]
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
    return obj


def cluster(
    obj: dict[str, Any] | None = None, status: str = "ok", nodes: list[str] | None = None, **read: Any
) -> ClusterView:
    names = list(ADDRESSES) if nodes is None else nodes
    node_items = [
        {"name": n, "controlPlane": True, "addresses": [{"type": "InternalIP", "address": ADDRESSES[n]}]} for n in names
    ]
    result = ReadResult(status, object=obj, **read) if obj is not None or status != "ok" else ReadResult("absent")
    return ClusterView(
        ClusterEvidence(
            "cluster:prod-east",
            observed_at=NOW.isoformat().replace("+00:00", "Z"),
            reads={"nodes": ReadResult("ok", items=node_items), "etcdencryptionconfig": result},
        )
    )


def config(**fields: Any) -> ConfigSummary:
    base = {
        "path": "/etc/kubernetes/encryption-provider.conf",
        "exists": True,
        "mode": "0600",
        "owner": "root",
        "group": "root",
        "size": 400,
        "fingerprint": "aaaa",
        "rules": [
            {
                "resources": ["secrets", "configmaps"],
                "providers": [{"type": "aesgcm", "keys": ["key-3", "key-2"]}, {"type": "identity", "keys": []}],
            }
        ],
    }
    return ConfigSummary(**{**base, **fields})


def encryption(**per_node: Any) -> EncryptionView:
    """cp1..cp3 healthy unless given: a ConfigSummary, a NodeEncryption, or a (kind, message) failure."""
    nodes: dict[str, Any] = {}
    for name in ADDRESSES:
        value = per_node.get(name, config())
        if isinstance(value, ConfigSummary):
            value = NodeEncryption(
                name,
                manifest_found=True,
                flags={"encryption-provider-config": value.path, "etcd-servers": "https://127.0.0.1:2379"},
                config=value,
            )
        nodes[name] = value
    return EncryptionView(EncryptionEvidence("cluster:prod-east", nodes))


def scan(**counts: dict[str, int]) -> ScanResult:
    resources = []
    for resource in ("secrets", "configmaps"):
        found = {category: 0 for category in CATEGORIES} | {"encrypted": 40} | counts.get(resource, {})
        namespaces = (
            {"team-a": {k: v for k, v in found.items() if k != "encrypted" and v}}
            if any(v for k, v in found.items() if k != "encrypted")
            else {}
        )
        resources.append(
            ResourceScan(
                resource,
                f"/registry/{resource}/",
                "aesgcm:key-3",
                sum(found.values()),
                sum(found.values()),
                found,
                namespaces,
                {k: ["team-a/x"] for k in found if k != "encrypted" and found[k]},
            )
        )
    return ScanResult("cp1", "https://127.0.0.1:2379", 42, "all", 100000, resources)


def run(function: Callable[..., Any], plan: Any = LIVE_PLAN, **evidence: Any) -> CheckResult:
    return testing.run_check(function, plan, **evidence)


Case = tuple[str, Callable[[], CheckResult], str, str]
CASES: list[Case] = [
    ("ACP-ENC-001", lambda: run(enc.check_config_exists, cluster=cluster(eec())), "pass", ""),
    (
        "ACP-ENC-001",
        lambda: run(enc.check_config_exists, cluster=cluster(status="not-served")),
        "fail",
        "plugin is not installed",
    ),
    (
        "ACP-ENC-001",
        lambda: run(enc.check_config_exists, cluster=cluster(None)),
        "fail",
        "EtcdEncryptionConfig default is not",
    ),
    (
        "ACP-ENC-001",
        lambda: run(
            enc.check_config_exists, make_plan({"spec": {"kubeconfig": "k"}}), cluster=cluster(status="not-served")
        ),
        "skip",
        "neither the plan",
    ),
    (
        "ACP-ENC-001",
        lambda: testing.run_check(
            enc.check_config_exists,
            make_plan({"spec": {"kubeconfig": "k"}}),
            params={"requireEtcdEncryption": True},
            cluster=cluster(status="not-served"),
        ),
        "fail",
        "the profile (requireEtcdEncryption)",
    ),
    ("ACP-ENC-002", lambda: run(enc.check_type_aesgcm, cluster=cluster(eec())), "pass", ""),
    (
        "ACP-ENC-002",
        lambda: run(enc.check_type_aesgcm, cluster=cluster(eec(spec__type="aescbc"))),
        "fail",
        "spec.type is 'aescbc'",
    ),
    (
        "ACP-ENC-002",
        lambda: run(enc.check_type_aesgcm, cluster=cluster(status="not-served", message="not served")),
        "error",
        "not-served",
    ),
    ("ACP-ENC-003", lambda: run(enc.check_resources, cluster=cluster(eec())), "pass", ""),
    (
        "ACP-ENC-003",
        lambda: run(enc.check_resources, cluster=cluster(eec(spec__resources=["secrets"]))),
        "fail",
        "leaves out configmaps",
    ),
    ("ACP-ENC-004", lambda: run(enc.check_revisions, cluster=cluster(eec())), "pass", ""),
    (
        "ACP-ENC-004",
        lambda: run(enc.check_revisions, cluster=cluster(eec(status__revision=4))),
        "fail",
        "status.revision is 4",
    ),
    ("ACP-ENC-004", lambda: run(enc.check_revisions, cluster=cluster(eec(status=None))), "fail", "no status"),
    ("ACP-ENC-005", lambda: run(enc.check_nodes_deployed, cluster=cluster(eec())), "pass", ""),
    (
        "ACP-ENC-005",
        lambda: run(
            enc.check_nodes_deployed,
            cluster=cluster(
                eec(
                    status__deployStatus={
                        "192.0.2.11": {"revision": 3, "state": "Success", "message": ""},
                        "192.0.2.12": {"revision": 2, "state": "UpdateFailed", "message": "disk full"},
                    }
                )
            ),
        ),
        "fail",
        "cp2 (192.0.2.12) is UpdateFailed: disk full\ncp3 (192.0.2.13) is not in status.deployStatus",
    ),
    (
        "ACP-ENC-005",
        lambda: run(enc.check_nodes_deployed, cluster=cluster(eec(), nodes=[])),
        "pass",
        "",
    ),  # falls back to the plan's nodes
    ("ACP-ENC-006", lambda: run(enc.check_migration, cluster=cluster(eec())), "pass", ""),
    (
        "ACP-ENC-006",
        lambda: run(
            enc.check_migration,
            cluster=cluster(eec(status__migration__state="Failed", status__migration__message="etcd timeout")),
        ),
        "fail",
        "migration of revision 3 is Failed: etcd timeout",
    ),
    ("ACP-ENC-007", lambda: run(enc.check_rotation, cluster=cluster(eec())), "pass", ""),
    (
        "ACP-ENC-007",
        lambda: run(
            enc.check_rotation, cluster=cluster(eec(status__migration__completeTimestamp="2026-05-20T00:00:00Z"))
        ),
        "fail",
        "overdue by 5.0 days",
    ),
    (
        "ACP-ENC-007",
        lambda: testing.run_check(
            enc.check_rotation,
            LIVE_PLAN,
            params={"etcdKeyRotationGraceHours": 24 * 10},
            cluster=cluster(eec(status__migration__completeTimestamp="2026-05-20T00:00:00Z")),
        ),
        "pass",
        "",
    ),
    (
        "ACP-ENC-007",
        lambda: run(enc.check_rotation, cluster=cluster(eec(spec__rotationInterval="7d"))),
        "fail",
        "not a duration",
    ),
    (
        "ACP-ENC-008",
        lambda: run(enc.check_manifest_flag, node=node_context("cp1"), encryption=encryption()),
        "pass",
        "",
    ),
    (
        "ACP-ENC-008",
        lambda: run(
            enc.check_manifest_flag,
            node=node_context("cp1"),
            encryption=encryption(cp1=NodeEncryption("cp1", manifest_found=True)),
        ),
        "fail",
        "without --encryption-provider-config",
    ),
    (
        "ACP-ENC-008",
        lambda: run(
            enc.check_manifest_flag,
            node=node_context("cp1"),
            encryption=encryption(
                cp1=NodeEncryption(
                    "cp1", manifest_problem="/etc/kubernetes/manifests/kube-apiserver.yaml does not exist"
                )
            ),
        ),
        "fail",
        "does not exist",
    ),
    (
        "ACP-ENC-008",
        lambda: run(
            enc.check_manifest_flag,
            node=node_context("cp1"),
            encryption=encryption(cp1=("unreachable", "cp1: connection refused")),
        ),
        "error",
        "connection refused",
    ),
    ("ACP-ENC-009", lambda: run(enc.check_config_file, node=node_context("cp1"), encryption=encryption()), "pass", ""),
    (
        "ACP-ENC-009",
        lambda: run(enc.check_config_file, node=node_context("cp1"), encryption=encryption(cp1=config(mode="0400"))),
        "pass",
        "",
    ),
    (
        "ACP-ENC-009",
        lambda: run(
            enc.check_config_file,
            node=node_context("cp1"),
            encryption=encryption(cp1=config(mode="0644", owner="acplab")),
        ),
        "fail",
        "has mode 0644",
    ),
    (
        "ACP-ENC-009",
        lambda: run(enc.check_config_file, node=node_context("cp1"), encryption=encryption(cp1=config(exists=False))),
        "fail",
        "does not exist",
    ),
    (
        "ACP-ENC-010",
        lambda: run(enc.check_config_content, node=node_context("cp1"), encryption=encryption()),
        "pass",
        "",
    ),
    (
        "ACP-ENC-010",
        lambda: run(
            enc.check_config_content,
            node=node_context("cp1"),
            encryption=encryption(
                cp1=config(
                    rules=[
                        {
                            "resources": ["secrets"],
                            "providers": [{"type": "identity", "keys": []}, {"type": "aesgcm", "keys": ["key-3"]}],
                        }
                    ]
                )
            ),
        ),
        "fail",
        "identity is the first provider",
    ),
    (
        "ACP-ENC-010",
        lambda: run(
            enc.check_config_content,
            node=node_context("cp1"),
            encryption=encryption(cp1=config(parse_error="not valid YAML at line 4: x")),
        ),
        "fail",
        "not valid YAML at line 4",
    ),
    (
        "ACP-ENC-010",
        lambda: run(
            enc.check_config_content,
            node=node_context("cp1"),
            encryption=encryption(
                cp1=config(
                    rules=[{"resources": ["secrets", "configmaps"], "providers": [{"type": "aescbc", "keys": ["k"]}]}]
                )
            ),
        ),
        "fail",
        "the first provider is aescbc",
    ),
    ("ACP-ENC-011", lambda: run(enc.check_key_count, node=node_context("cp1"), encryption=encryption()), "pass", ""),
    (
        "ACP-ENC-011",
        lambda: run(
            enc.check_key_count,
            node=node_context("cp1"),
            encryption=encryption(
                cp1=config(
                    rules=[
                        {
                            "resources": ["secrets"],
                            "providers": [{"type": "aesgcm", "keys": [f"k{i}" for i in range(9)]}],
                        }
                    ]
                )
            ),
        ),
        "warn",
        "9 keys retained",
    ),
    ("ACP-ENC-012", lambda: run(enc.check_same_config, encryption=encryption()), "pass", ""),
    (
        "ACP-ENC-012",
        lambda: run(enc.check_same_config, encryption=encryption(cp3=config(fingerprint="bbbb"))),
        "fail",
        "cp3: /etc/kubernetes/encryption-provider.conf fingerprint bbbb",
    ),
    ("ACP-ENC-013", lambda: run(enc.check_etcd_values, etcd=scan()), "pass", ""),
    (
        "ACP-ENC-013",
        lambda: run(enc.check_etcd_values, etcd=scan(secrets={"plaintext": 3, "identity": 1})),
        "fail",
        "per namespace: team-a: 3 plaintext, 1 identity",
    ),
    (
        "ACP-ENC-013",
        lambda: run(enc.check_etcd_values, etcd=scan(configmaps={"unknown-key": 1, "undecryptable": 2})),
        "fail",
        "1 unknown-key, 2 undecryptable",
    ),
    (
        "ACP-ENC-013",
        lambda: run(enc.check_etcd_values, etcd=scan(secrets={"stale-key": 2})),
        "warn",
        "2 of 42 under an older key",
    ),
]


@pytest.mark.parametrize(
    ("check_id", "outcome", "status", "words"), CASES, ids=[f"{c[0]}-{c[2]}-{i}" for i, c in enumerate(CASES)]
)
def test_rule(check_id: str, outcome: Callable[[], CheckResult], status: str, words: str) -> None:
    result = outcome()
    assert (result.check, result.status) == (check_id, status), result.message
    assert words in result.message


def test_every_encryption_check_has_a_passing_and_a_failing_case() -> None:
    ids = {check_id for check_id in load_catalog() if check_id.startswith("ACP-ENC-")}
    assert ids == {f"ACP-ENC-{n:03d}" for n in range(1, len(ids) + 1)}
    seen = {(check_id, status) for check_id, _, status, _ in CASES}
    assert not [i for i in ids if (i, "pass") not in seen], "no passing case"
    assert not [i for i in ids if not {(i, "fail"), (i, "warn")} & seen], "no failing case"


def test_targets() -> None:
    assert run(enc.check_config_exists, cluster=cluster(eec())).target == "cluster:prod-east"
    assert run(enc.check_config_file, node=node_context("cp2"), encryption=encryption()).target == "node:cp2"
    assert run(enc.check_same_config, encryption=encryption()).target == "node:*"


@pytest.mark.parametrize(
    ("edits", "reason"),
    [
        ({"spec": {"cluster": {"role": "global"}}}, "does not support the global cluster in ACP 4.1–4.3"),
        ({"spec": {"etcdEncryption": {"expected": False}}}, "the plan says this cluster does not encrypt etcd"),
        ({"spec": {"kubeconfig": None}}, "no kubeconfig"),
        ({"spec": {"acp": {"version": "4.0"}}}, "ACP 4.0"),
    ],
)
def test_where_the_checks_do_not_apply(edits: dict[str, Any], reason: str) -> None:
    plan = make_plan({"spec": {"kubeconfig": "k", **edits["spec"]}})
    result = run(enc.check_config_exists, plan, cluster=cluster(eec()))
    assert result.status == "skip" and reason in result.message, result.message
    if "kubeconfig" not in edits["spec"]:  # node checks need no kubeconfig, but the other reasons hold for them too
        assert run(enc.check_etcd_values, plan, etcd=scan()).status == "skip"


def test_go_durations() -> None:
    assert enc.go_duration("168h0m0s") == dt.timedelta(days=7)
    assert enc.go_duration("1h30m") == dt.timedelta(minutes=90)
    with pytest.raises(ValueError):
        enc.go_duration("7 days")
