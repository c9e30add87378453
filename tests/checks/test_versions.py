"""Tables for acpcheck.checks.versions: each row is a plan, the status it must get, and
what a FAIL/WARN message must mention (the planned value and the allowed ones).

Rows are built from the base example (ACP 4.3, on-premise Kube-OVN workload cluster on
Kubernetes 1.34.5) plus small edits, so every row states only what it is about.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from conftest import BASE, DELETE, EXAMPLES, make_plan, merge, run_check

from acpcheck.checks import versions
from acpcheck.matrix import release
from acpcheck.model.check import Severity
from acpcheck.model.plan import load_plan

CHECKS: dict[str, Callable[..., Any]] = {
    fn.__acpcheck__.id: fn
    for name, fn in vars(versions).items()
    if name.startswith("check_") and hasattr(fn, "__acpcheck__")
}


# -- plan edits ---------------------------------------------------------------


def acp(version: str, upgrade_from: str | None = None) -> dict[str, Any]:
    return {"spec": {"acp": {"version": version, "upgradeFrom": upgrade_from}}}


def cluster(**fields: Any) -> dict[str, Any]:
    return {"spec": {"cluster": fields}}


def plugin(name: str) -> dict[str, Any]:
    return {"spec": {"network": {"plugin": name}}}


def k8s(version: str) -> dict[str, Any]:
    return cluster(kubernetesVersion=version)


def docker(*gates: str) -> dict[str, Any]:
    return cluster(containerRuntime="docker", featureGates=list(gates))


IMPORTED = cluster(type="imported")
REGISTERED = cluster(type="registered")
#: Imported and registered clusters may leave the network section out.
NO_NETWORK = {"spec": {"network": DELETE}}
NO_NETWORK_REASON = "the plan has no network section (imported/registered clusters may omit it)"


class Row(NamedTuple):
    check_id: str
    edits: list[dict[str, Any]]
    status: str
    mentions: tuple[str, ...] = ()
    fail_on: Severity = Severity.MEDIUM
    matrix_changes: dict[str, Any] | None = None  # fields of the target's matrix row to replace


def row(check_id: str, status: str, *edits: dict[str, Any], mentions: tuple[str, ...] = (), **options: Any) -> Any:
    return pytest.param(Row(check_id, list(edits), status, mentions, **options), id=f"{check_id}-{status}")


ROWS = [
    # ACP-VER-001: new platform-managed cluster on a Kubernetes minor the target offers
    row("ACP-VER-001", "pass"),
    row("ACP-VER-001", "pass", acp("4.0"), k8s("1.28.15")),
    row("ACP-VER-001", "pass", acp("4.1"), k8s("v1.32.7")),
    row("ACP-VER-001", "pass", cluster(type="hosted-control-plane")),
    row(
        "ACP-VER-001",
        "fail",
        k8s("1.33.7"),
        mentions=("1.33.7", "ACP 4.3", "1.34", "4.3/overview/kubernetes-support-matrix"),
    ),
    row(
        "ACP-VER-001",
        "fail",
        acp("4.1"),
        k8s("1.31.14"),
        mentions=("1.31.14", "1.32", "4.1/overview/kubernetes-support-matrix"),
    ),
    row("ACP-VER-001", "fail", cluster(type="immutable", kubernetesVersion="1.35.0"), mentions=("1.35.0", "1.34")),
    row("ACP-VER-001", "skip", acp("4.3", "4.2"), k8s("1.33.7")),
    row("ACP-VER-001", "skip", IMPORTED, k8s("1.30.2")),
    # ACP-VER-002: existing platform-managed workload cluster inside the target's compatible list
    row("ACP-VER-002", "pass", acp("4.3", "4.2"), k8s("1.33.7")),
    row("ACP-VER-002", "pass", acp("4.3", "4.1"), k8s("1.31.14")),
    # 1.29 is compatible with 4.1; the stricter 4.0 -> 4.1 prerequisite is ACP-UPG-002's finding
    row("ACP-VER-002", "pass", acp("4.1", "4.0"), k8s("1.29.10")),
    row(
        "ACP-VER-002",
        "fail",
        acp("4.3", "4.2"),
        k8s("1.30.14"),
        mentions=("1.30.14", "1.34, 1.33, 1.32, 1.31", "ACP 4.3"),
    ),
    row("ACP-VER-002", "fail", acp("4.2", "4.1"), k8s("1.29.10"), mentions=("1.29.10", "1.33, 1.32, 1.31, 1.30")),
    row("ACP-VER-002", "skip", k8s("1.30.14")),
    row("ACP-VER-002", "skip", acp("4.3", "4.2"), cluster(role="global", kubernetesVersion="1.30.14")),
    row("ACP-VER-002", "skip", acp("4.3", "4.2"), IMPORTED, k8s("1.30.14")),
    # ACP-VER-003: third-party cluster inside the accepted range (or the compatible list where none is published)
    row("ACP-VER-003", "pass", IMPORTED, k8s("1.34.1")),
    row("ACP-VER-003", "pass", cluster(type="registered", kubernetesVersion="v1.31.6-eks-1")),
    row("ACP-VER-003", "pass", acp("4.2"), IMPORTED, k8s("1.30.5")),
    row("ACP-VER-003", "pass", acp("4.3", "4.2"), IMPORTED, k8s("1.32.0")),
    row("ACP-VER-003", "pass", IMPORTED, k8s("1.34.1"), NO_NETWORK),
    row(
        "ACP-VER-003",
        "fail",
        REGISTERED,
        k8s("1.18.20"),
        NO_NETWORK,
        mentions=("1.18.20", "registered workload cluster"),
    ),
    row(
        "ACP-VER-003",
        "warn",
        IMPORTED,
        k8s("1.28.3"),
        mentions=("1.28.3", ">=1.19.0,<1.35.0", "1.34, 1.33, 1.32, 1.31"),
    ),
    row(
        "ACP-VER-003",
        "fail",
        IMPORTED,
        k8s("1.35.0"),
        mentions=("1.35.0", ">=1.19.0,<1.35.0", "imported workload cluster"),
    ),
    row(
        "ACP-VER-003",
        "fail",
        cluster(type="registered", kubernetesVersion="1.18.20"),
        mentions=("1.18.20", ">=1.19.0,<1.35.0"),
    ),
    row(
        "ACP-VER-003",
        "fail",
        acp("4.2"),
        IMPORTED,
        k8s("1.29.1"),
        mentions=("1.29.1", "1.33, 1.32, 1.31, 1.30", "no separate range"),
    ),
    row("ACP-VER-003", "fail", acp("4.3", "4.2"), IMPORTED, k8s("1.35.2"), mentions=("1.35.2", ">=1.19.0,<1.35.0")),
    row("ACP-VER-003", "skip", k8s("1.35.0")),
    # ACP-VER-004: Docker for a new cluster (offered? gate enabled?)
    row("ACP-VER-004", "pass", acp("4.0"), k8s("1.31.5"), docker("cri-docker")),
    row("ACP-VER-004", "warn", acp("4.1"), k8s("1.32.7"), docker("cri-docker"), mentions=("no longer ships Docker",)),
    row("ACP-VER-004", "fail", docker(), mentions=("ACP 4.3", "docker", "containerd")),
    row("ACP-VER-004", "fail", acp("4.2"), k8s("1.33.6"), docker("cri-docker"), mentions=("ACP 4.2", "containerd")),
    row(
        "ACP-VER-004",
        "fail",
        acp("4.0"),
        k8s("1.30.8"),
        docker(),
        mentions=("1.30.8", "cri-docker", "1.24", "lists none"),
    ),
    row(
        "ACP-VER-004",
        "fail",
        acp("4.1"),
        k8s("1.32.7"),
        docker("some-other-gate"),
        mentions=("cri-docker", "some-other-gate"),
    ),
    row("ACP-VER-004", "skip"),
    row("ACP-VER-004", "skip", acp("4.1", "4.0"), k8s("1.31.5"), docker("cri-docker")),
    row("ACP-VER-004", "skip", IMPORTED, docker()),
    # ACP-VER-005: network plugin of a new cluster not removed
    row("ACP-VER-005", "pass"),
    row("ACP-VER-005", "pass", acp("4.1"), k8s("1.32.7"), plugin("flannel")),
    row("ACP-VER-005", "pass", plugin("calico")),
    row("ACP-VER-005", "fail", plugin("flannel"), mentions=("flannel", "ACP 4.3", "kube-ovn, calico, custom")),
    row(
        "ACP-VER-005",
        "fail",
        acp("4.2"),
        k8s("1.33.6"),
        plugin("flannel"),
        mentions=("flannel", "4.2/overview/release_notes"),
    ),
    row("ACP-VER-005", "skip", acp("4.3", "4.2"), plugin("flannel")),
    row("ACP-VER-005", "skip", IMPORTED, plugin("flannel")),
    row("ACP-VER-005", "skip", IMPORTED, NO_NETWORK, mentions=("cluster type imported", NO_NETWORK_REASON)),
    # ACP-VER-006: network plugin of a new cluster not in maintenance (LOW: WARN unless fail_on is low)
    row("ACP-VER-006", "pass"),
    row("ACP-VER-006", "pass", acp("4.1"), k8s("1.32.7"), plugin("calico")),
    row("ACP-VER-006", "warn", plugin("calico"), mentions=("calico", "maintenance", "kube-ovn, custom")),
    row("ACP-VER-006", "fail", plugin("calico"), mentions=("calico", "kube-ovn, custom"), fail_on=Severity.LOW),
    row("ACP-VER-006", "skip", acp("4.3", "4.2"), plugin("calico")),
    row("ACP-VER-006", "skip", REGISTERED, NO_NETWORK, mentions=(NO_NETWORK_REASON,)),
    # ACP-VER-007: hosted control planes offered by the target
    row("ACP-VER-007", "warn", cluster(type="hosted-control-plane"), mentions=("Technology Preview",)),
    row(
        "ACP-VER-007",
        "pass",
        cluster(type="hosted-control-plane"),
        matrix_changes={"hosted_control_plane": "available"},
    ),
    row(
        "ACP-VER-007",
        "fail",
        acp("4.2"),
        cluster(type="hosted-control-plane", kubernetesVersion="1.33.6"),
        mentions=("ACP 4.2", "hosted-control-plane", "hosted control planes: 4.3"),
    ),
    row("ACP-VER-007", "skip"),
    # ACP-UPG-001: upgrade path listed by the target's pre-upgrade page
    row("ACP-UPG-001", "pass", acp("4.3", "4.2")),
    row("ACP-UPG-001", "pass", acp("4.3.2", "4.0.11"), k8s("1.31.14")),
    row("ACP-UPG-001", "pass", acp("4.1", "3.18"), k8s("1.30.8")),
    row("ACP-UPG-001", "pass", acp("4.0.11", "4.0.9"), k8s("1.31.14")),
    row("ACP-UPG-001", "warn", acp("4.3.1", "4.3.0"), mentions=("4.3.0", "4.0, 4.1, 4.2")),
    row("ACP-UPG-001", "fail", acp("4.3", "3.18"), mentions=("3.18", "4.0, 4.1, 4.2", "4.3/upgrade/pre-upgrade")),
    row(
        "ACP-UPG-001", "fail", acp("4.1", "3.16"), k8s("1.28.9"), mentions=("3.16", "3.18, 4.0, 4.1", "through ACP 4.0")
    ),
    row("ACP-UPG-001", "fail", acp("4.2", "4.3"), mentions=("4.3", "not older", "4.0, 4.1")),
    row("ACP-UPG-001", "fail", acp("4.3", "4.3"), mentions=("not older",)),
    row("ACP-UPG-001", "skip"),
    # ACP-UPG-002: Kubernetes prerequisite of the path
    row("ACP-UPG-002", "pass", acp("4.3", "4.2"), k8s("1.33.7-4")),
    row("ACP-UPG-002", "pass", acp("4.1", "4.0"), k8s("1.31.14")),
    row("ACP-UPG-002", "pass", acp("4.2", "4.1"), cluster(role="global", kubernetesVersion="1.32.7")),
    row("ACP-UPG-002", "pass", acp("4.1", "4.0"), IMPORTED, k8s("1.31.2")),
    row(
        "ACP-UPG-002",
        "fail",
        acp("4.1", "4.0"),
        k8s("1.30.8"),
        mentions=("1.30.8", "==1.31.*", "4.1/upgrade/pre-upgrade"),
    ),
    row("ACP-UPG-002", "fail", acp("4.2", "4.1"), k8s("1.31.14"), mentions=("1.31.14", ">=1.32")),
    row("ACP-UPG-002", "fail", acp("4.3", "4.2"), k8s("1.30.14"), mentions=("1.30.14", ">=1.31,<1.35")),
    row(
        "ACP-UPG-002",
        "fail",
        acp("4.1", "4.0"),
        IMPORTED,
        k8s("1.29.4"),
        mentions=("1.29.4", "==1.31.*", "no separate rule"),
    ),
    row("ACP-UPG-002", "skip", acp("4.3", "4.2"), IMPORTED, k8s("1.28.3")),
    row("ACP-UPG-002", "skip", acp("4.3", "3.18"), k8s("1.30.8")),
    row("ACP-UPG-002", "skip", k8s("1.30.8")),
    # ACP-UPG-003: Docker-runtime cluster and the target's upgrade
    row("ACP-UPG-003", "pass", acp("4.0", "3.18"), k8s("1.30.8"), docker("cri-docker")),
    row(
        "ACP-UPG-003",
        "warn",
        acp("4.1", "4.0"),
        k8s("1.31.14"),
        docker("cri-docker"),
        mentions=("no longer ships Docker",),
    ),
    row(
        "ACP-UPG-003",
        "warn",
        acp("4.2", "4.1"),
        k8s("1.32.7"),
        docker("cri-docker"),
        mentions=("ACP 4.2", "no longer offers"),
    ),
    row(
        "ACP-UPG-003",
        "fail",
        acp("4.3", "4.2"),
        k8s("1.33.7"),
        docker("cri-docker"),
        mentions=("ACP 4.3", "docker", "containerd", "upgrade_global_cluster"),
    ),
    row("ACP-UPG-003", "skip", acp("4.3", "4.2"), k8s("1.33.7")),
    row("ACP-UPG-003", "skip", docker()),
    # ACP-UPG-004: network plugin not removed in the target
    row("ACP-UPG-004", "pass", acp("4.3", "4.2")),
    row("ACP-UPG-004", "pass", acp("4.1", "4.0"), k8s("1.31.14"), plugin("flannel")),
    row("ACP-UPG-004", "pass", acp("4.3", "4.2"), k8s("1.33.7"), plugin("calico")),
    row(
        "ACP-UPG-004",
        "fail",
        acp("4.2", "4.1"),
        k8s("1.32.7"),
        plugin("flannel"),
        mentions=("flannel", "ACP 4.2", "kube-ovn, custom", "ACP 4.1"),
    ),
    row("ACP-UPG-004", "skip", plugin("flannel")),
    row("ACP-UPG-004", "skip", acp("4.3", "4.2"), IMPORTED, plugin("flannel")),
    row("ACP-UPG-004", "skip", acp("4.3", "4.2"), IMPORTED, k8s("1.33.7"), NO_NETWORK, mentions=(NO_NETWORK_REASON,)),
]


def _run(case: Row, monkeypatch: pytest.MonkeyPatch) -> Any:
    data = BASE
    for part in case.edits:  # one by one onto the base plan, so that a DELETE removes a key of it
        data = merge(data, part)
    plan = make_plan(base=data)
    if case.matrix_changes:
        # Data a future ACP release might carry; the check must follow the matrix, not code.
        changed = release(plan.spec.acp.version).model_copy(update=case.matrix_changes)
        monkeypatch.setattr(versions, "release", lambda version: changed)
    return run_check(CHECKS[case.check_id], plan, fail_on=case.fail_on)


@pytest.mark.parametrize("case", ROWS)
def test_check_table(case: Row, monkeypatch: pytest.MonkeyPatch) -> None:
    verdict = _run(case, monkeypatch)
    assert verdict.status == case.status, verdict.message
    for text in case.mentions:
        assert text in verdict.message
    if verdict.status == "fail":
        # Every FAIL cites the docs page it comes from and names what was planned.
        assert "source: https://docs.alauda.io/" in verdict.message
        assert verdict.evidence.get("planned") is not None and verdict.evidence.get("allowed") is not None


def test_every_check_has_a_passing_and_a_failing_row() -> None:
    covered = {(case.check_id, case.status) for (case,) in (param.values for param in ROWS)}
    missing = [
        f"{check_id}: {status}"
        for check_id in CHECKS
        for status in ("pass", "fail")
        if (check_id, status) not in covered
    ]
    assert not missing, f"rows missing for {missing}"


def test_check_ids_are_numbered_in_order() -> None:
    for area in ("VER", "UPG"):
        numbers = [int(check_id.rsplit("-", 1)[1]) for check_id in CHECKS if f"-{area}-" in check_id]
        assert numbers == list(range(1, len(numbers) + 1))


def test_refs_are_the_matrix_pages() -> None:
    for check_id, fn in CHECKS.items():
        refs = fn.__acpcheck__.refs
        assert refs and all(ref.startswith("https://docs.alauda.io/") for ref in refs), check_id
        assert len(set(refs)) == len(refs), check_id


VERSION_EXAMPLES = ["imported-cluster.yaml", "registered-cluster.yaml", "upgrade-4.2-to-4.3.yaml"]


@pytest.mark.parametrize("name", VERSION_EXAMPLES)
def test_version_examples_have_no_failures(name: str) -> None:
    plan = load_plan(EXAMPLES / name)
    verdicts = {check_id: run_check(fn, plan) for check_id, fn in CHECKS.items()}
    bad = {check_id: v.message for check_id, v in verdicts.items() if v.status in ("fail", "error")}
    assert not bad
    # Each example is checked by the rules it exists to show.
    shown = {
        "imported-cluster.yaml": ["ACP-VER-003"],
        "registered-cluster.yaml": ["ACP-VER-003"],
        "upgrade-4.2-to-4.3.yaml": ["ACP-VER-002", "ACP-UPG-001", "ACP-UPG-002", "ACP-UPG-004"],
    }
    assert all(verdicts[check_id].status == "pass" for check_id in shown[name])


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda path: Path(path).name)
def test_no_check_errors_on_any_example(path: Path) -> None:
    plan = load_plan(path)
    errors = {check_id: v.message for check_id, fn in CHECKS.items() if (v := run_check(fn, plan)).status == "error"}
    assert not errors
