"""Fleet rules (checks/fleet.py) on real fleets loaded from files and the global cluster's
evidence as a live run saves it (ClusterEvidence), graded as a run grades them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from acpcheck.checks.fleet import (
    check_fleet_third_party_in_range,
    check_fleet_upgrade_paths,
    check_fleet_workloads_in_target_range,
)
from acpcheck.model.fleet import Fleet, load_fleet
from acpcheck.model.result import CheckResult
from acpcheck.sources.cluster import PLATFORM_CLUSTERS, SCHEMA, ClusterEvidence, ClusterView
from acpcheck.testing import run_check

GLOBAL = {"name": "global", "role": "global", "kubeconfig": "kube/global.yaml"}


def fleet_in(
    directory: Path,
    *workloads: dict[str, Any],
    version: str = "4.3",
    upgrade_from: str | None = "4.2",
    discover: bool = True,
) -> Fleet:
    acp = {"version": version} | ({"upgradeFrom": upgrade_from} if upgrade_from else {})
    document = {
        "apiVersion": "acpcheck/v1",
        "kind": "Fleet",
        "metadata": {"name": "prod"},
        "spec": {"acp": acp, "discover": discover, "clusters": [GLOBAL, *workloads]},
    }
    path = directory / "fleet.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return load_fleet(path)


def global_view(listed: list[dict[str, Any]] | None, status: str = "ok", message: str = "") -> ClusterView:
    """The global cluster's evidence with its platform-clusters read (None: not served)."""
    read: dict[str, Any] = {"status": status}
    if listed is not None:
        read["items"] = [
            {
                "name": c["name"],
                "version": c.get("version"),
                "type": c.get("type"),
                "phase": "Running",
                "annotations": {},
            }
            for c in listed
        ]
    if message:
        read["message"] = message
    evidence = ClusterEvidence.from_dict(
        {
            "schema": SCHEMA,
            "target": "cluster:global",
            "server": "https://192.0.2.10:6443",
            "observedAt": "2026-12-07T21:00:00Z",
            "version": {"gitVersion": "v1.33.7"},
            "failure": None,
            "reads": {"platform-clusters": read},
        }
    )
    return ClusterView(evidence)


def judge(check: Any, fleet: Fleet, view: ClusterView) -> CheckResult:
    member = fleet.global_member
    assert member is not None
    return run_check(check, member.plan, fleet=fleet, cluster=view)


def workload(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "kubeconfig": f"kube/{name}.yaml", **fields}


# ---------------------------------------------------------------------------
# ACP-UPG-030: workload clusters inside the target's range before global is upgraded


def test_workloads_inside_the_43_range_pass(tmp_path: Path) -> None:
    fleet = fleet_in(tmp_path, workload("business-1"), workload("edge", type="imported"))
    view = global_view(
        [
            {"name": "global", "version": "1.33.7-4", "type": "Baremetal"},
            {"name": "business-1", "version": "1.31.14-2", "type": "Baremetal"},
            {"name": "business-2", "version": "v1.34.5", "type": "Baremetal"},  # listed, not in the file
            {"name": "edge", "version": "1.20.1", "type": "Imported"},  # judged by ACP-UPG-032
        ]
    )
    result = judge(check_fleet_workloads_in_target_range, fleet, view)
    assert (result.status, result.target, result.cluster) == ("pass", "fleet:prod", "global")


def test_a_workload_outside_the_43_range_fails_naming_each(tmp_path: Path) -> None:
    fleet = fleet_in(tmp_path, workload("business-1"), discover=False)
    view = global_view(
        [
            {"name": "global", "version": "1.33.7", "type": "Baremetal"},
            {"name": "business-1", "version": "1.30.14", "type": "Baremetal"},
            {"name": "old-dc", "version": "1.29.3", "type": "Baremetal"},  # listed only: still a workload cluster
            {"name": "fine", "version": "1.32.7", "type": "Baremetal"},
        ]
    )
    result = judge(check_fleet_workloads_in_target_range, fleet, view)
    assert result.status == "fail"
    assert "business-1 runs Kubernetes 1.30.14, needs >=1.31,<1.35" in result.message
    assert "old-dc runs Kubernetes 1.29.3" in result.message
    assert "fine" not in result.message.split("source:")[0]
    assert result.evidence["offenders"] == [
        "business-1 runs Kubernetes 1.30.14, needs >=1.31,<1.35",
        "old-dc runs Kubernetes 1.29.3, needs >=1.31,<1.35",
    ]


def test_unknown_workload_version_is_manual_never_pass(tmp_path: Path) -> None:
    fleet = fleet_in(tmp_path, workload("business-1"), workload("business-3"))
    view = global_view(
        [{"name": "business-1", "version": "1.33.7", "type": "Baremetal"}, {"name": "business-3", "type": "Baremetal"}]
    )
    result = judge(check_fleet_workloads_in_target_range, fleet, view)
    assert result.status == "manual"
    assert "Kubernetes version of business-3 is not known" in result.message
    assert "kubectl get clusters.platform.tkestack.io business-3" in result.message


def test_global_without_the_cluster_registry_is_manual(tmp_path: Path) -> None:
    fleet = fleet_in(tmp_path, workload("business-1"))
    result = judge(check_fleet_workloads_in_target_range, fleet, global_view(None, status="not-served"))
    assert result.status == "manual"
    assert "does not serve clusters.platform.tkestack.io" in result.message and "business-1" in result.message


def test_an_unreadable_registry_is_an_error(tmp_path: Path) -> None:
    fleet = fleet_in(tmp_path, workload("business-1"))
    view = global_view(None, status="forbidden", message="list clusters.platform.tkestack.io: forbidden")
    result = judge(check_fleet_workloads_in_target_range, fleet, view)
    assert result.status == "error" and "forbidden" in result.message


def test_fail_outranks_unknown_and_names_both(tmp_path: Path) -> None:
    fleet = fleet_in(tmp_path, workload("business-1"), workload("business-3"))
    view = global_view([{"name": "business-1", "version": "1.28.2", "type": "Baremetal"}])
    result = judge(check_fleet_workloads_in_target_range, fleet, view)
    assert result.status == "fail"
    assert "business-1 runs Kubernetes 1.28.2" in result.message and "not known: business-3" in result.message


def test_up_to_42_each_workload_needs_its_source_releases_version(tmp_path: Path) -> None:
    # ACP 4.1: from 4.0 every cluster on 1.31, from 3.18 on 1.30 (acp-facts §4.4)
    fleet = fleet_in(
        tmp_path,
        workload("on-40"),
        workload("on-318", upgradeFrom="3.18"),
        workload("behind"),
        version="4.1",
        upgrade_from="4.0",
    )
    view = global_view(
        [
            {"name": "on-40", "version": "1.31.14", "type": "Baremetal"},
            {"name": "on-318", "version": "1.30.9", "type": "Baremetal"},
            {"name": "behind", "version": "1.30.9", "type": "Baremetal"},
        ]
    )
    result = judge(check_fleet_workloads_in_target_range, fleet, view)
    assert result.status == "fail"
    assert result.evidence["offenders"] == ["behind runs Kubernetes 1.30.9, needs ==1.31.*"]


def test_up_to_42_an_unknown_current_acp_version_is_manual(tmp_path: Path) -> None:
    fleet = fleet_in(tmp_path, workload("business-1"), version="4.2", upgrade_from=None)
    view = global_view([{"name": "business-1", "version": "1.32.7", "type": "Baremetal"}])
    result = judge(check_fleet_workloads_in_target_range, fleet, view)
    assert result.status == "manual"
    assert "business-1: its current ACP version is not known" in result.message


def test_a_fleet_without_workloads_is_skipped(tmp_path: Path) -> None:
    fleet = fleet_in(tmp_path)
    result = judge(check_fleet_workloads_in_target_range, fleet, global_view([{"name": "global", "version": "1.33.7"}]))
    assert result.status == "skip" and "no workload clusters" in result.message


# ---------------------------------------------------------------------------
# ACP-UPG-031: the upgrade path of every cluster


def test_every_cluster_on_a_documented_source_passes(tmp_path: Path) -> None:
    fleet = fleet_in(tmp_path, workload("business-1"), workload("legacy", upgradeFrom="4.0"))
    assert judge(check_fleet_upgrade_paths, fleet, global_view([])).status == "pass"


def test_a_cluster_on_an_undocumented_source_fails_with_the_way_through(tmp_path: Path) -> None:
    fleet = fleet_in(tmp_path, workload("business-1"), workload("legacy", upgradeFrom="3.18"))
    result = judge(check_fleet_upgrade_paths, fleet, global_view([]))
    assert result.status == "fail"
    assert "legacy is on ACP 3.18, which is not a documented source; upgrade it through ACP 4.0 or 4.1 first" in (
        result.message
    )
    assert "business-1" not in result.message
    assert result.evidence["allowed"] == ["4.0", "4.1", "4.2"]


def test_a_cluster_newer_than_the_target_fails(tmp_path: Path) -> None:
    fleet = fleet_in(tmp_path, workload("ahead", upgradeFrom="4.3.1"), version="4.3.0")
    result = judge(check_fleet_upgrade_paths, fleet, global_view([]))
    assert result.status == "fail" and "ahead is on ACP 4.3.1, newer than the target" in result.message


def test_a_cluster_already_on_the_target_has_nothing_to_do(tmp_path: Path) -> None:
    fleet = fleet_in(tmp_path, workload("done", upgradeFrom="4.3"))
    assert judge(check_fleet_upgrade_paths, fleet, global_view([])).status == "pass"


def test_an_undocumented_patch_upgrade_warns(tmp_path: Path) -> None:
    fleet = fleet_in(tmp_path, workload("business-1"), version="4.3.1", upgrade_from="4.3.0")
    result = judge(check_fleet_upgrade_paths, fleet, global_view([]))
    assert result.status == "warn" and "global (4.3.0 -> 4.3.1)" in result.message


def test_an_unknown_current_version_is_manual(tmp_path: Path) -> None:
    fleet = fleet_in(tmp_path, workload("business-1", upgradeFrom="4.2"), upgrade_from=None)
    result = judge(check_fleet_upgrade_paths, fleet, global_view([]))
    assert result.status == "manual"
    assert "current ACP version of global is not known" in result.message
    assert "business-1" not in result.message.split("is not known")[0]


# ---------------------------------------------------------------------------
# ACP-UPG-032: third-party clusters in the target's onboarding range


def test_third_party_inside_the_43_range_pass(tmp_path: Path) -> None:
    fleet = fleet_in(tmp_path, workload("edge", type="imported"), workload("reg", type="registered"))
    view = global_view(
        [
            {"name": "edge", "version": "1.19.0", "type": "Imported"},
            {"name": "reg", "version": "v1.34.2-eks-1", "type": "Imported"},
        ]
    )
    assert judge(check_fleet_third_party_in_range, fleet, view).status == "pass"


def test_third_party_outside_the_43_range_fails_naming_each(tmp_path: Path) -> None:
    fleet = fleet_in(tmp_path, workload("edge", type="imported"))
    view = global_view(
        [
            {"name": "edge", "version": "1.35.0", "type": "Imported"},
            {"name": "found", "version": "1.18.20", "type": "Imported"},  # listed by global only
            {"name": "built", "version": "1.18.20", "type": "Baremetal"},  # not third-party
        ]
    )
    result = judge(check_fleet_third_party_in_range, fleet, view)
    assert result.status == "fail"
    assert result.evidence["outside"] == ["edge runs Kubernetes 1.35.0", "found runs Kubernetes 1.18.20"]
    assert ">=1.19.0,<1.35.0" in result.message


def test_third_party_without_a_published_range_is_manual_saying_so(tmp_path: Path) -> None:
    fleet = fleet_in(tmp_path, workload("edge", type="imported"), version="4.2", upgrade_from="4.1")
    result = judge(check_fleet_third_party_in_range, fleet, global_view([{"name": "edge", "version": "1.30.1"}]))
    assert result.status == "manual"
    assert "ACP 4.2 docs publish no accepted Kubernetes range for third-party clusters; check edge" in result.message


def test_third_party_unknown_version_is_manual(tmp_path: Path) -> None:
    fleet = fleet_in(tmp_path, workload("edge", type="imported"))
    result = judge(check_fleet_third_party_in_range, fleet, global_view([]))
    assert result.status == "manual" and "Kubernetes version of edge is not known" in result.message


def test_no_third_party_clusters_is_skipped(tmp_path: Path) -> None:
    fleet = fleet_in(tmp_path, workload("business-1"))
    view = global_view([{"name": "business-1", "version": "1.33.7", "type": "Baremetal"}])
    result = judge(check_fleet_third_party_in_range, fleet, view)
    assert result.status == "skip"


@pytest.mark.parametrize(
    "check", [check_fleet_workloads_in_target_range, check_fleet_upgrade_paths, check_fleet_third_party_in_range]
)
def test_fleet_rules_are_plan_free_fleet_checks_citing_https_pages(check: Any) -> None:
    meta = check.__acpcheck__
    assert meta.plan_free and str(meta.scope) == "fleet" and meta.area == "UPG"
    assert meta.needs == {"plan", "fleet", "cluster"}
    assert meta.refs and all(ref.startswith("https://docs.alauda.io/") for ref in meta.refs)


# ---------------------------------------------------------------------------
# The whole way: the global cluster's registry served by the test API server (the project's
# stand-in for kube-apiserver, which serves the platform.tkestack.io Cluster CRD), read by
# the cluster source, judged by the fleet rules.

REGISTRY_SEED = """\
apiVersion: platform.tkestack.io/v1
kind: Cluster
metadata: {name: global}
spec: {type: Baremetal, version: 1.33.7}
status: {version: 1.33.7-4, phase: Running}
---
apiVersion: platform.tkestack.io/v1
kind: Cluster
metadata: {name: business-1, annotations: {cpaas.io/display-name: Business one}}
spec: {type: Baremetal, version: 1.32.7}
status: {version: 1.30.14, phase: Running}
---
apiVersion: platform.tkestack.io/v1
kind: Cluster
metadata: {name: aks-1}
spec: {type: Imported, version: 1.35.1}
"""


def test_fleet_rules_on_the_registry_read_from_a_test_api_server(tmp_path: Path) -> None:
    from acpcheck.sources.cluster import gather_cluster
    from acpcheck_lab.apiserver import init_server_dir, serve_dir

    seed = tmp_path / "seed.yaml"
    seed.write_text(REGISTRY_SEED)
    server_dir = init_server_dir(tmp_path / "api", port=0)
    server = serve_dir(server_dir.root, listen="127.0.0.1:0", seeds=[seed])
    try:
        kube = tmp_path / "kube"
        kube.mkdir()
        (kube / "global.yaml").write_bytes(server_dir.kubeconfig("admin").read_bytes())
        fleet = fleet_in(tmp_path, workload("business-1"))
        member = fleet.global_member
        assert member is not None
        evidence = gather_cluster(member.plan, environ={})
    finally:
        server.stop()
    assert evidence.failure is None, evidence.failure
    view = ClusterView(evidence)
    assert view.items(PLATFORM_CLUSTERS)[1] == {
        "name": "business-1",
        "version": "1.30.14",  # status.version: what the cluster runs, not spec.version
        "type": "Baremetal",
        "phase": "Running",
        "annotations": {"cpaas.io/display-name": "Business one"},
    }
    in_range = judge(check_fleet_workloads_in_target_range, fleet, view)
    assert in_range.status == "fail" and in_range.evidence["offenders"] == [
        "business-1 runs Kubernetes 1.30.14, needs >=1.31,<1.35"
    ]
    third_party = judge(check_fleet_third_party_in_range, fleet, view)  # aks-1: listed only, spec.version
    assert third_party.status == "fail" and third_party.evidence["outside"] == ["aks-1 runs Kubernetes 1.35.1"]
