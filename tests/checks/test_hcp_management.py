"""ACP-HCP-004..006 (checks/hcp.py): the management cluster of a hosted control plane, read for
real. The ``cluster`` source reads the project's test API server over TLS with the reader's
token (for an HCP plan the run's kubeconfig is the management cluster's); each test seeds the
cluster state it is about into a fresh server. The server serves the shipped CRDs of
lab/acpcheck_lab/crds/ (the three cluster plugins' CRDs and MetalLB's IPAddressPool) but for
those a test leaves out, as on a cluster without that plugin.

Plans start from examples/hosted-control-plane.yaml: management cluster 10.3.0.0/16 (pods) and
10.4.0.0/16 (Services), this cluster 10.13.0.0/16 and 10.14.0.0/16.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import DELETE, EXAMPLES, ServeCluster, make_plan, merge

from acpcheck import testing
from acpcheck.checks import hcp
from acpcheck.matrix.hcp_plugins import hcp_plugins
from acpcheck.model.plan import ClusterPlan
from acpcheck.model.result import CheckResult
from acpcheck.sources.cluster import ClusterEvidence, ClusterSource, ClusterView, gather_cluster
from acpcheck_lab.apiserver import ServerDir, TestApiServer, kubeconfig, shipped_crds

HCP: dict[str, Any] = yaml.safe_load((EXAMPLES / "hosted-control-plane.yaml").read_text())
CHECKS: list[Callable[..., Any]] = [
    hcp.check_management_cluster_plugins,
    hcp.check_management_cluster_load_balancer,
    hcp.check_management_cluster_pools_clear_of_cidrs,
]
POOL_CRD = "ipaddresspools.metallb.io"


def pool(name: str, *addresses: str, available: int | None = None) -> dict[str, Any]:
    """A MetalLB IPAddressPool; ``available``: the free-address count MetalLB 0.14+ keeps in status."""
    obj: dict[str, Any] = {
        "apiVersion": "metallb.io/v1beta1",
        "kind": "IPAddressPool",
        "metadata": {"name": name, "namespace": "metallb-system"},
        "spec": {"addresses": list(addresses)},
    }
    if available is not None:
        obj["status"] = {"assignedIPv4": 21 - available, "availableIPv4": available}
    return obj


def namespace(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def healthy() -> list[dict[str, Any]]:
    """Every plugin's CRDs (shipped), MetalLB with one pool of 21 free addresses on the nodes' network."""
    return [namespace("metallb-system"), pool("hcp-apiservers", "192.0.2.200-192.0.2.220", available=21)]


Live = Callable[..., tuple[ClusterPlan, ClusterEvidence]]


@pytest.fixture
def live(serve_cluster: ServeCluster) -> Live:
    """``live(objects, without=, plan=)``: a test API server holding ``objects`` and serving the shipped
    CRDs but those named in ``without``, gathered through an HCP plan whose kubeconfig names it."""

    def start(
        objects: list[dict[str, Any]], without: tuple[str, ...] = (), plan: dict[str, Any] | None = None
    ) -> tuple[ClusterPlan, ClusterEvidence]:
        path = serve_cluster(objects, without=without)
        the_plan = make_plan({"spec": {"kubeconfig": str(path)}}, base=merge(HCP, plan or {}))
        evidence = gather_cluster(the_plan, environ={})
        assert evidence.failure is None, evidence.failure
        return the_plan, evidence

    return start


def run(check: Callable[..., Any], plan: ClusterPlan, evidence: ClusterEvidence) -> CheckResult:
    return testing.run_check(check, plan, cluster=ClusterView(evidence))


def results(plan: ClusterPlan, evidence: ClusterEvidence) -> dict[str, tuple[str, str]]:
    return {check.__acpcheck__.id: (str(r.status), r.message) for check in CHECKS for r in [run(check, plan, evidence)]}  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------
# A healthy management cluster


def test_a_healthy_management_cluster_passes_and_its_evidence_stays_small(live: Live, tmp_path: Path) -> None:
    plan, evidence = live(healthy())
    assert results(plan, evidence) == {
        "ACP-HCP-004": ("pass", ""),
        "ACP-HCP-005": ("pass", ""),
        "ACP-HCP-006": ("pass", ""),
    }
    ClusterSource().save(evidence, tmp_path / "facts")
    reads = json.loads((tmp_path / "facts" / "cluster.json").read_text())["reads"]
    # A CRD is kept as its name and served versions, never its schema.
    assert {"name": POOL_CRD, "servedVersions": ["v1beta1"]} in reads["crds"]["items"]
    assert "openAPIV3Schema" not in json.dumps(reads["crds"])
    assert reads["metallb-pools"]["items"] == [
        {
            "name": "hcp-apiservers",
            "namespace": "metallb-system",
            "addresses": ["192.0.2.200-192.0.2.220"],
            "autoAssign": True,  # the CRD's default, as the API server applied it
            "available": {"availableIPv4": 21},
        }
    ]
    # The saved evidence replays to the same results.
    replayed = ClusterSource().load(tmp_path / "facts", plan)
    assert results(plan, replayed) == results(plan, evidence)


# ---------------------------------------------------------------------------
# ACP-HCP-004: the cluster plugins, by the CRDs they serve


@pytest.mark.parametrize("row", hcp_plugins(), ids=lambda row: row.plugin)
def test_a_missing_plugin_fails_naming_it_and_its_crd(live: Live, row: Any) -> None:
    plan, evidence = live(healthy(), without=(row.crds[-1],))
    status, message = results(plan, evidence)["ACP-HCP-004"]
    assert status == "fail"
    assert f"cluster plugin {row.plugin} is not installed" in message and row.crds[-1] in message
    others = [other.plugin for other in hcp_plugins() if other.plugin != row.plugin]
    assert not any(other in message for other in others), message
    assert row.source in message


def test_a_crd_that_serves_no_version_does_not_count(live: Live) -> None:
    """A CRD left behind with every version unserved (a plugin half uninstalled) is no plugin."""
    name = hcp_plugins()[0].crds[0]
    unserved = copy.deepcopy(next(crd for crd in shipped_crds() if crd["metadata"]["name"] == name))
    unserved["spec"]["versions"][0]["served"] = False
    plan, evidence = live([*healthy(), unserved], without=(name,))
    status, message = results(plan, evidence)["ACP-HCP-004"]
    assert status == "fail" and hcp_plugins()[0].plugin in message and name in message


# ---------------------------------------------------------------------------
# ACP-HCP-005: LoadBalancer Services (MetalLB and its pools)


def test_without_metallb_load_balancer_services_fail_and_the_overlap_rule_has_nothing_to_compare(live: Live) -> None:
    plan, evidence = live([], without=(POOL_CRD,))
    found = results(plan, evidence)
    assert found["ACP-HCP-005"][0] == "fail" and "MetalLB is not installed" in found["ACP-HCP-005"][1]
    assert POOL_CRD in found["ACP-HCP-005"][1]
    assert found["ACP-HCP-006"][0] == "skip" and "ACP-HCP-005" in found["ACP-HCP-006"][1]


def test_metallb_without_any_pool_fails(live: Live) -> None:
    plan, evidence = live([namespace("metallb-system")])
    found = results(plan, evidence)
    assert found["ACP-HCP-005"][0] == "fail" and "has no IPAddressPool" in found["ACP-HCP-005"][1]
    assert found["ACP-HCP-006"][0] == "skip"


def test_pools_that_all_report_no_free_address_warn(live: Live) -> None:
    plan, evidence = live(
        [
            namespace("metallb-system"),
            pool("a", "192.0.2.200/30", available=0),
            pool("b", "192.0.2.210/32", available=0),
        ]
    )
    status, message = results(plan, evidence)["ACP-HCP-005"]
    assert status == "warn" and "metallb-system/a" in message and "metallb-system/b" in message


def test_a_pool_with_free_addresses_or_without_counts_is_no_warning(live: Live) -> None:
    """Exhaustion is said only when every pool counts its free addresses: one pool that does not
    (a MetalLB before 0.14) may have some, and one with free addresses is enough."""
    plan, evidence = live(
        [namespace("metallb-system"), pool("full", "192.0.2.200/30", available=0), pool("uncounted", "192.0.2.210/32")]
    )
    assert results(plan, evidence)["ACP-HCP-005"] == ("pass", "")
    plan, evidence = live(
        [
            namespace("metallb-system"),
            pool("full", "192.0.2.200/30", available=0),
            pool("free", "192.0.2.8/29", available=6),
        ]
    )
    assert results(plan, evidence)["ACP-HCP-005"] == ("pass", "")


# ---------------------------------------------------------------------------
# ACP-HCP-006: the pools against the pod and Service CIDRs


def test_a_pool_overlapping_the_tenant_pod_cidr_fails_naming_both(live: Live) -> None:
    plan, evidence = live([*healthy(), pool("tenant-clash", "10.13.200.0/24", available=256)])
    status, message = results(plan, evidence)["ACP-HCP-006"]
    assert status == "fail"
    assert "MetalLB pool metallb-system/tenant-clash 10.13.200.0/24 overlaps this cluster's pod CIDR" in message
    assert "10.13.0.0/16 (spec.network.clusterCIDR, " in message and "hcp-apiservers" not in message


def test_a_pool_range_inside_the_management_service_cidr_fails(live: Live) -> None:
    plan, evidence = live([*healthy(), pool("svc-clash", "10.4.0.10-10.4.0.20", available=11)])
    status, message = results(plan, evidence)["ACP-HCP-006"]
    assert status == "fail"
    assert (
        "MetalLB pool metallb-system/svc-clash 10.4.0.10-10.4.0.20 overlaps management cluster Service CIDR" in message
    )


def test_a_pool_address_that_is_not_an_address_fails(live: Live) -> None:
    plan, evidence = live([*healthy(), pool("typo", "192.0.2.300/32")])
    status, message = results(plan, evidence)["ACP-HCP-006"]
    assert status == "fail" and "'192.0.2.300/32' is neither a CIDR nor a first-last range" in message


def test_without_the_management_cluster_cidrs_the_comparison_is_manual(live: Live) -> None:
    unset = {"spec": {"managementCluster": {"podCIDR": DELETE, "serviceCIDR": DELETE}}}
    plan, evidence = live(healthy(), plan=unset)
    status, message = results(plan, evidence)["ACP-HCP-006"]
    assert status == "manual" and "spec.managementCluster.podCIDR and spec.managementCluster.serviceCIDR" in message
    # An overlap with this cluster's own CIDRs is still found without them.
    plan, evidence = live([*healthy(), pool("tenant-clash", "10.14.0.0/24")], plan=unset)
    assert results(plan, evidence)["ACP-HCP-006"][0] == "fail"


# ---------------------------------------------------------------------------
# Which plans: hosted control planes with a kubeconfig


def test_the_management_rules_apply_only_to_hosted_control_planes_with_a_kubeconfig() -> None:
    without_kubeconfig = make_plan(base=HCP)
    not_hosted = make_plan({"spec": {"kubeconfig": "a-kubeconfig"}})
    for check in CHECKS:
        meta = check.__acpcheck__  # type: ignore[attr-defined]
        assert "no kubeconfig" in (meta.applies.not_applicable(without_kubeconfig) or "")
        assert meta.applies.not_applicable(not_hosted)
        assert meta.area == "HCP" and str(meta.scope) == "cluster"


def test_a_reader_refused_the_crds_gets_an_error_never_a_pass(
    live: Live, server_dir: ServerDir, tmp_path: Path
) -> None:
    """A kubeconfig whose user may not list CRDs (403) cannot show the plugins: ERROR, with the refusal."""
    plan, _ = live(healthy())
    token = next(user.token for user in server_dir.users() if user.name == "no-eec-reader")
    server = TestApiServer(server_dir.tls(), server_dir.users(), port=0).start()
    try:
        path = tmp_path / "refused.kubeconfig"
        path.write_text(kubeconfig(server.url, server_dir.ca.read_bytes(), "no-eec-reader", token=token))
        refused = make_plan({"spec": {"kubeconfig": str(path)}}, base=HCP)
        evidence = gather_cluster(refused, environ={})
    finally:
        server.stop()
    result = run(hcp.check_management_cluster_plugins, refused, evidence)
    assert str(result.status) == "error" and "forbidden" in result.message


# ---------------------------------------------------------------------------
# End to end: `acpcheck run --profile hcp --check area:HCP` with the management cluster's kubeconfig


def acpcheck_run(plan: dict[str, Any], tmp_path: Path) -> tuple[int, dict[str, tuple[str, str]]]:
    """The hcp profile narrowed to area:HCP (its node checks would log in to the workers: not these)."""
    key = tmp_path / "id_ed25519"  # the plan names a key; the run opens no SSH session
    key.write_text("unused\n")
    key.chmod(0o600)
    plan = merge(plan, {"spec": {"ssh": {"auth": {"privateKeyFile": str(key)}}}})
    (tmp_path / "plan.yaml").write_text(yaml.safe_dump(plan))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "acpcheck",
            "run",
            "--plan",
            "plan.yaml",
            "--profile",
            "hcp",
            "--check",
            "area:HCP",
            "--out",
            "out",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith("ACPCHECK_")},
    )
    assert done.returncode in (0, 1), done.stdout + done.stderr
    document = json.loads((tmp_path / "out" / "results.json").read_text())
    return done.returncode, {r["check"]: (r["status"], r["message"]) for r in document["results"]}


def test_the_command_finds_each_planted_defect_and_passes_a_healthy_management_cluster(
    server_dir: ServerDir, tmp_path: Path
) -> None:
    token = next(user.token for user in server_dir.users() if user.name == "acpcheck-reader")
    states = {
        "healthy": ((), healthy()),
        "defective": (("sshhosts.infrastructure.cluster.x-k8s.io",), [*healthy(), pool("clash", "10.13.9.0/24")]),
    }
    found = {}
    for state, (without, objects) in states.items():
        crds = [crd for crd in shipped_crds() if crd["metadata"]["name"] not in without]
        with TestApiServer(server_dir.tls(), server_dir.users(), port=0, crds=crds) as server:
            for obj in objects:
                server.put(copy.deepcopy(obj))
            (tmp_path / state).mkdir()
            kube = tmp_path / state / "management.kubeconfig"
            kube.write_text(kubeconfig(server.url, server_dir.ca.read_bytes(), "acpcheck-reader", token=token))
            found[state] = acpcheck_run(merge(HCP, {"spec": {"kubeconfig": str(kube)}}), tmp_path / state)
    code, healthy_results = found["healthy"]
    assert code == 0 and {check: status for check, (status, _) in healthy_results.items() if check < "ACP-HCP-030"} == {
        f"ACP-HCP-00{n}": "pass" for n in range(1, 7)
    }  # 030 and up: the SSH hosts (this cluster has none; tests/checks/test_hcp_hosts.py)
    code, defective = found["defective"]
    assert code == 1
    assert {check for check, (status, _) in defective.items() if status == "fail"} == {"ACP-HCP-004", "ACP-HCP-006"}
    assert "SSH Infrastructure Provider" in defective["ACP-HCP-004"][1]
    assert "metallb-system/clash 10.13.9.0/24 overlaps this cluster's pod CIDR" in defective["ACP-HCP-006"][1]
    assert token not in (tmp_path / "defective" / "out" / "results.json").read_text()
