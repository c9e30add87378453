"""Hosted control planes judged from the plan: ACP-HCP-001…003 (acpcheck.checks.hcp),
ACP-VER-006 leaving HCP plans alone, and the ``hcp`` profile running them.

Rows start from examples/hosted-control-plane.yaml (ACP 4.3, Calico, containerd
1.7.27-4, DataStore default-datastore, management cluster CIDRs given) plus small edits;
every plan goes through the real loader. The end-to-end tests run the acpcheck command.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import yaml
from conftest import DELETE, EXAMPLES, make_plan, merge, run_check

from acpcheck.catalog import load_catalog
from acpcheck.checks.hcp import (
    check_hosted_container_runtime,
    check_hosted_data_store_named,
    check_hosted_network_plugin_calico,
)
from acpcheck.checks.versions import check_new_cluster_network_plugin_not_in_maintenance
from acpcheck.errors import InputError
from acpcheck.model.check import Scope
from acpcheck.model.plan import ClusterPlan
from acpcheck.model.profile import load_profile

HCP_EXAMPLE = EXAMPLES / "hosted-control-plane.yaml"
HCP: dict[str, Any] = yaml.safe_load(HCP_EXAMPLE.read_text())
CONCEPTS = "https://docs.alauda.io/hosted-control-plane/1.0/concepts.html"


def hcp_plan(*edits: dict[str, Any]) -> ClusterPlan:
    data = HCP
    for edit in edits:
        data = merge(data, edit)
    return make_plan(base=data)


def cluster(**fields: Any) -> dict[str, Any]:
    return {"spec": {"cluster": fields}}


def plugin(name: str) -> dict[str, Any]:
    return {"spec": {"network": {"plugin": name}}}


def management(**fields: Any) -> dict[str, Any]:
    return {"spec": {"managementCluster": fields}}


#: The workload example: an on-premise Kube-OVN cluster, where no HCP rule applies.
ON_PREMISE = {"spec": {"cluster": {"type": "on-premise"}, "managementCluster": DELETE}}


class Row(NamedTuple):
    check: Any
    status: str
    edits: tuple[dict[str, Any], ...]
    mentions: tuple[str, ...]
    at: str | None  # the field the finding's `at` evidence points to (its line in the test plan)


def row(check: Any, status: str, *edits: dict[str, Any], mentions: tuple[str, ...] = (), at: str = "", id: str) -> Any:
    return pytest.param(Row(check, status, edits, mentions, at or None), id=f"{check.__acpcheck__.id}-{id}")


ROWS = [
    # ACP-HCP-001: Calico only
    row(check_hosted_network_plugin_calico, "pass", id="calico"),
    row(
        check_hosted_network_plugin_calico,
        "fail",
        plugin("kube-ovn"),
        mentions=("kube-ovn", "support only calico", CONCEPTS),
        at="plugin",
        id="kube-ovn",
    ),
    row(check_hosted_network_plugin_calico, "fail", plugin("custom"), mentions=("custom",), at="plugin", id="custom"),
    row(check_hosted_network_plugin_calico, "skip", ON_PREMISE, mentions=("cluster type on-premise",), id="on-prem"),
    # ACP-HCP-002: containerd 1.7.27-4, as the SSHMachineTemplate specifies it
    row(check_hosted_container_runtime, "pass", id="containerd-1.7.27-4"),
    row(check_hosted_container_runtime, "pass", cluster(containerRuntimeVersion="v1.7.27-4"), id="v-prefix"),
    row(
        check_hosted_container_runtime,
        "fail",
        cluster(containerRuntimeVersion="2.0.5"),
        mentions=("containerd 2.0.5", "containerd 1.7.27-4 only", CONCEPTS),
        at="containerRuntimeVersion",
        id="other-version",
    ),
    row(
        check_hosted_container_runtime,
        "fail",
        cluster(containerRuntimeVersion="1.7.27"),
        mentions=("containerd 1.7.27 is not supported",),
        at="containerRuntimeVersion",
        id="build-missing",
    ),
    row(
        check_hosted_container_runtime,
        "fail",
        cluster(containerRuntime="docker", containerRuntimeVersion=DELETE),
        mentions=("Container runtime docker", "containerd 1.7.27-4"),
        at="containerRuntime",
        id="docker",
    ),
    row(
        check_hosted_container_runtime,
        "manual",
        cluster(containerRuntimeVersion=DELETE),
        mentions=("spec.cluster.containerRuntimeVersion is not set", "SSHMachineTemplate", "containerd 1.7.27-4"),
        id="version-not-stated",
    ),
    row(check_hosted_container_runtime, "skip", ON_PREMISE, mentions=("cluster type on-premise",), id="on-prem"),
    # ACP-HCP-003: the DataStore named
    row(check_hosted_data_store_named, "pass", id="named"),
    row(
        check_hosted_data_store_named,
        "fail",
        management(dataStore=DELETE),
        mentions=("spec.managementCluster.dataStore is not set", "DataStore", "KamajiControlPlane", CONCEPTS),
        at="managementCluster",
        id="none-named",
    ),
    row(
        check_hosted_data_store_named,
        "fail",
        {"spec": {"managementCluster": DELETE}},
        mentions=("spec.managementCluster.dataStore is not set",),
        id="no-management-section",
    ),
    row(check_hosted_data_store_named, "skip", ON_PREMISE, mentions=("cluster type on-premise",), id="on-prem"),
    # ACP-VER-006 must not advise Kube-OVN (or anything) to a hosted control plane on Calico
    row(
        check_new_cluster_network_plugin_not_in_maintenance,
        "skip",
        mentions=("cluster type hosted-control-plane",),
        id="hcp-calico",
    ),
]


@pytest.mark.parametrize("case", ROWS)
def test_hcp_rule(case: Row) -> None:
    plan = hcp_plan(*case.edits)
    result = run_check(case.check, plan)
    assert result.status == case.status, result.message
    for text in case.mentions:
        assert text in result.message, f"{text!r} not in {result.message!r}"
    if case.at is not None:
        line = plan.where(*_path_of(plan, case.at)).rsplit(":", 1)[-1]
        assert result.evidence["at"] == f"test-plan.yaml:{line}", result.evidence


def _path_of(plan: ClusterPlan, key: str) -> tuple[str, ...]:
    sections = {"plugin": "network", "containerRuntime": "cluster", "containerRuntimeVersion": "cluster"}
    return ("spec", sections[key], key) if key in sections else ("spec", key)


def test_ver_006_no_longer_advises_kube_ovn_to_a_hosted_control_plane() -> None:
    """The defect: a hosted cluster on Calico was told to prefer Kube-OVN; on Kube-OVN it got
    fewer warnings than the correct plan. Now the correct plan gets no such advice, and the
    Kube-OVN one fails ACP-HCP-001."""
    calico, kube_ovn = hcp_plan(), hcp_plan(plugin("kube-ovn"))
    for plan in (calico, kube_ovn):
        advice = run_check(check_new_cluster_network_plugin_not_in_maintenance, plan)
        assert advice.status == "skip" and "kube-ovn" not in advice.message.lower()
    assert run_check(check_hosted_network_plugin_calico, calico).status == "pass"
    assert run_check(check_hosted_network_plugin_calico, kube_ovn).status == "fail"
    # An on-premise cluster on Calico still gets the maintenance-mode advice.
    on_premise = make_plan({"spec": {"network": {"plugin": "calico"}}})
    assert run_check(check_new_cluster_network_plugin_not_in_maintenance, on_premise).status == "warn"


@pytest.mark.parametrize(
    ("edit", "field", "expected"),
    [
        (cluster(containerRuntimeVersion="latest"), "spec.cluster.containerRuntimeVersion", "wrong format"),
        (management(dataStore="Default_DataStore"), "spec.managementCluster.dataStore", "default-datastore"),
        (management(dataStore=""), "spec.managementCluster.dataStore", "wrong format"),
    ],
    ids=["runtime-version", "datastore-not-a-kubernetes-name", "datastore-empty"],
)
def test_malformed_hcp_fields_are_bad_input_naming_the_field(edit: dict[str, Any], field: str, expected: str) -> None:
    with pytest.raises(InputError) as raised:
        hcp_plan(edit)
    problems = [str(problem) for problem in raised.value.problems]
    assert any(field in problem and expected in problem for problem in problems), problems


def test_hcp_profile_selects_the_hcp_rules() -> None:
    catalog = load_catalog()
    profile = load_profile("hcp")
    hcp_area = sorted(check_id for check_id, meta in catalog.items() if meta.area == "HCP")
    # 001..003 judge the plan; 004..008 read the management cluster (tests/checks/test_hcp_management.py,
    # test_hcp_tenants.py); 010..015 its DataStores and their etcd (test_hcp_datastore.py); 020..028 its
    # tenant control planes (test_hcp_tenants.py); 030..033 its SSH hosts (test_hcp_hosts.py).
    assert {f"ACP-HCP-{n:03d}" for n in (*range(1, 9), *range(10, 16), *range(20, 29), *range(30, 34))} <= set(hcp_area)
    selected = {check_id for check_id, meta in catalog.items() if profile.selects(meta)}
    # The HCP rules of other areas (kept under their ids) come in with the plan checks.
    assert {*hcp_area, "ACP-VER-007", "ACP-NET-005"} <= selected
    assert all(
        meta.scope is (Scope.PLAN if check_id <= "ACP-HCP-003" else Scope.CLUSTER) and CONCEPTS in meta.refs
        for check_id, meta in catalog.items()
        if meta.area == "HCP" and not "ACP-HCP-009" < check_id < "ACP-HCP-020"  # the DataStore rules cite theirs
    )


# ---------------------------------------------------------------------------
# End to end: the acpcheck command on the example and on a defective copy of it


def acpcheck(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "acpcheck", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def results(out: Path) -> dict[str, dict[str, Any]]:
    document = json.loads((out / "results.json").read_text())
    return {result["check"]: result for result in document["results"]}


def statuses(out: Path) -> dict[str, str]:
    return {check_id: result["status"] for check_id, result in results(out).items()}


def test_area_hcp_runs_and_passes_on_the_example(tmp_path: Path) -> None:
    result = acpcheck("run", "--plan", str(HCP_EXAMPLE), "--check", "area:HCP", "--out", "out", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert statuses(tmp_path / "out") == {"ACP-HCP-001": "pass", "ACP-HCP-002": "pass", "ACP-HCP-003": "pass"}


def test_defective_hcp_plan_fails_each_planted_defect(tmp_path: Path) -> None:
    defective = merge(
        HCP,
        {
            "spec": {
                "cluster": {"containerRuntimeVersion": "2.0.5"},
                "network": {"plugin": "kube-ovn"},
                "managementCluster": {"podCIDR": "10.13.0.0/16", "dataStore": DELETE},
            }
        },
    )
    (tmp_path / "plan.yaml").write_text(yaml.safe_dump(defective))
    result = acpcheck("run", "--plan", "plan.yaml", "--profile", "plan", "--out", "out", cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    seen = results(tmp_path / "out")
    failing = {check_id: result["message"] for check_id, result in seen.items() if result["status"] == "fail"}
    assert set(failing) == {"ACP-HCP-001", "ACP-HCP-002", "ACP-HCP-003", "ACP-NET-005"}, failing
    assert "kube-ovn" in failing["ACP-HCP-001"] and "containerd 2.0.5" in failing["ACP-HCP-002"]
    assert "spec.managementCluster.dataStore" in failing["ACP-HCP-003"]
    assert "management cluster pod CIDR 10.13.0.0/16" in failing["ACP-NET-005"]
    assert seen["ACP-VER-006"]["status"] == "skip"
