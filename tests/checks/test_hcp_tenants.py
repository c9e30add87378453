"""ACP-HCP-007, -008 and ACP-HCP-020..028 (checks/hcp.py): a hosted control plane's management
cluster and the tenant control planes it hosts, read for real by the ``tenants`` source
(acpcheck/sources/hcp_tenants.py).

The management cluster is the project's **test API server** (acpcheck_lab.apiserver, a stand-in
for kube-apiserver, not Kubernetes), read by a user that may only get and list
(``acpcheck_lab.hcptenants.MANAGEMENT_READER``); each tenant is a **second** test API server with
its own CA (``TenantServer``), whose address is the tenant control plane's endpoint and whose
admin kubeconfig (bearer token: a canary) sits in the management cluster's Secret. The objects
come from ``acpcheck_lab.hcptenants``, in the published Kamaji and Cluster API shapes.

Plans start from examples/hosted-control-plane.yaml: cluster tenant-a, ACP 4.3 (Kubernetes
1.31-1.34), its pods 10.13.0.0/16 and Services 10.14.0.0/16; the management cluster's 10.3.0.0/16
and 10.4.0.0/16 in the plan and in its kubeadm-config.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import yaml
from conftest import DELETE, EXAMPLES, make_plan, merge

from acpcheck import testing
from acpcheck.checks import hcp
from acpcheck.matrix.seeds import seeds, seeds_of
from acpcheck.model.plan import ClusterPlan
from acpcheck.model.profile import load_profile
from acpcheck.sources.hcp_tenants import (
    ManagementEvidence,
    ManagementSource,
    TenantsEvidence,
    TenantsSource,
    gather_management,
    gather_tenants,
    tenant_target_refusal,
)
from acpcheck_lab.apiserver import ServerDir, TestApiServer, init_server_dir, kubeconfig, shipped_crds
from acpcheck_lab.hcptenants import (
    MANAGEMENT_READER,
    NAMESPACE,
    NO_SECRETS_READER,
    TenantServer,
    acp_namespace,
    admin_kubeconfig_secret,
    capi_cluster,
    datastore,
    konnectivity_agent,
    kube_proxy_config,
    kubeadm_config,
    management_objects,
    node_with_pod_cidr,
    tenant_control_plane,
)

HCP: dict[str, Any] = yaml.safe_load((EXAMPLES / "hosted-control-plane.yaml").read_text())
NAME = "tenant-a"
#: The tenant's admin token: it must reach no artifact (report, evidence, log, terminal).
CANARY = "CANARY-tenant-admin-token-5e1f0c2b9d"
REGISTRY_CRD = "clusters.platform.tkestack.io"
#: The seed pages in the project's workspace (acpcheck/matrix/seeds.yaml maps them to their docs pages).
SEEDS_DIR = Path("/work/shared/seeds")
TENANT_CHECKS: list[Callable[..., Any]] = [
    hcp.check_tenant_kubernetes_supported,
    hcp.check_tenant_ready,
    hcp.check_tenant_endpoint,
    hcp.check_tenant_kubeconfig_secret,
    hcp.check_tenant_datastore_resolves,
    hcp.check_tenant_replicas,
    hcp.check_tenant_konnectivity_server,
    hcp.check_tenant_konnectivity_agent,
    hcp.check_planned_tenant_exists,
]
CHECKS: list[Callable[..., Any]] = [
    hcp.check_management_cluster_is_acp_workload,
    hcp.check_hosted_cidrs_clear_of_live_management,
    *TENANT_CHECKS,
]
EXPECTED = {hcp.TENANT_EXPECTED: True}


def id_of(check: Callable[..., Any]) -> str:
    return str(check.__acpcheck__.id)  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def management_dir(tmp_path_factory: pytest.TempPathFactory) -> ServerDir:
    """The management cluster's CA and users (the HCP reader, and one refused Secrets)."""
    return init_server_dir(
        tmp_path_factory.mktemp("management") / "dir", port=0, users=[MANAGEMENT_READER, NO_SECRETS_READER]
    )


class Live(NamedTuple):
    """What the two sources read of one management cluster."""

    management: ManagementEvidence
    tenants: TenantsEvidence


class World:
    """Management clusters and tenants started by one test, stopped after it."""

    def __init__(self, management_dir: ServerDir, tmp_path: Path):
        self.dir, self.tmp = management_dir, tmp_path
        self.servers: list[TestApiServer] = []
        self.tenants: list[TenantServer] = []

    def tenant(self, *objects: dict[str, Any], host: str = "127.0.0.1", token: str = CANARY) -> TenantServer:
        """A tenant API server (its own CA) holding ``objects`` (default: a ready Konnectivity agent on 2 nodes)."""
        tenant = TenantServer(self.tmp / f"tenant-{len(self.tenants)}", token, host=host).start()
        self.tenants.append(tenant)
        for obj in objects or (konnectivity_agent(2),):
            tenant.server.put(copy.deepcopy(obj))
        return tenant

    def management(
        self, objects: list[dict[str, Any]], *, user: str = "hcp-reader", global_registry: bool = False
    ) -> Path:
        """A management cluster holding ``objects``; the path of its reader's kubeconfig."""
        crds = [crd for crd in shipped_crds() if global_registry or crd["metadata"]["name"] != REGISTRY_CRD]
        server = TestApiServer(self.dir.tls(), self.dir.users(), port=0, crds=crds).start()
        self.servers.append(server)
        for obj in objects:
            server.put(copy.deepcopy(obj))
        token = next(u.token for u in self.dir.users() if u.name == user)
        path = self.tmp / f"management-{len(self.servers)}.kubeconfig"
        path.write_text(kubeconfig(server.url, self.dir.ca.read_bytes(), user, token=token))
        return path

    def plan(self, path: Path, edit: dict[str, Any] | None = None) -> ClusterPlan:
        return make_plan({"spec": {"kubeconfig": str(path)}}, base=merge(HCP, edit or {}))

    def gather(
        self, objects: list[dict[str, Any]], edit: dict[str, Any] | None = None, **management: Any
    ) -> tuple[ClusterPlan, Live]:
        """The plan, and both sources' evidence of a management cluster holding ``objects``."""
        plan = self.plan(self.management(objects, **management), edit)
        evidence = Live(gather_management(plan, environ={}), gather_tenants(plan, environ={}))
        assert evidence.management.mode == "live", evidence.management.reason
        assert evidence.tenants.mode == "live", evidence.tenants.reason
        return plan, evidence

    def healthy(self, **tcp: Any) -> list[dict[str, Any]]:
        """A healthy management cluster for tenant-a whose tenant answers (``tcp``: edits to its TenantControlPlane)."""
        tenant = self.tenant()
        objects = management_objects(NAME, tenant.endpoint, tenant.kubeconfig())
        if tcp:
            objects = [
                tenant_control_plane(NAME, endpoint=tcp.pop("endpoint", tenant.endpoint), **tcp)
                if obj["kind"] == "TenantControlPlane"
                else obj
                for obj in objects
            ]
        return objects

    def stop(self) -> None:
        for server in self.servers:
            server.stop()
        for tenant in self.tenants:
            tenant.stop()


@pytest.fixture
def world(management_dir: ServerDir, tmp_path: Path) -> Iterator[World]:
    started = World(management_dir, tmp_path)
    yield started
    started.stop()


def run(check: Callable[..., Any], plan: ClusterPlan, evidence: Live, **params: Any) -> tuple[str, str]:
    result = testing.run_check(
        check, plan, management=evidence.management, tenants=evidence.tenants, params=params or None
    )
    return str(result.status), result.message


def results(plan: ClusterPlan, evidence: Live) -> dict[str, tuple[str, str]]:
    return {id_of(check): run(check, plan, evidence, **EXPECTED) for check in CHECKS}


def replace(objects: list[dict[str, Any]], kind: str, new: dict[str, Any] | None) -> list[dict[str, Any]]:
    """``objects`` with the one of ``kind`` replaced by ``new`` (None: removed)."""
    return [new if obj["kind"] == kind else obj for obj in objects if obj["kind"] != kind or new is not None]


# ---------------------------------------------------------------------------
# Healthy


def test_a_healthy_management_cluster_and_tenant_pass_every_rule(world: World, tmp_path: Path) -> None:
    plan, evidence = world.gather(world.healthy())
    assert results(plan, evidence) == {id_of(check): ("pass", "") for check in CHECKS}
    plane = evidence.tenants.planes[0]
    assert (plane.cluster, plane.status, plane.secret_keys) == (NAME, "Ready", ["admin.conf"])
    assert plane.tenant is not None and (plane.tenant.desired, plane.tenant.ready) == (2, 2)
    assert evidence.management.cidrs[0].where.startswith("ConfigMap kube-system/kubeadm-config")
    assert len(evidence.management.cidrs) == 1  # the Nodes are not listed when kubeadm-config gives the CIDRs
    # Saved and replayed: the same results, and no trace of the tenant's kubeconfig.
    TenantsSource().save(evidence.tenants, tmp_path / "facts" / "tenants")
    ManagementSource().save(evidence.management, tmp_path / "facts" / "hcp_management")
    saved = (tmp_path / "facts" / "tenants" / "tenants.json").read_text()
    assert CANARY not in saved and "certificate-authority-data" not in saved
    replayed = Live(
        ManagementSource().load(tmp_path / "facts" / "hcp_management", plan),
        TenantsSource().load(tmp_path / "facts" / "tenants", plan),
    )
    assert results(plan, replayed) == results(plan, evidence)


def test_without_any_tenant_control_plane_the_post_create_rules_skip(world: World) -> None:
    objects = [acp_namespace(), kubeadm_config("10.3.0.0/16", "10.4.0.0/16"), datastore()]
    plan, evidence = world.gather(objects)
    found = {id_of(check): run(check, plan, evidence) for check in TENANT_CHECKS}
    assert all(status == "skip" for status, _ in found.values()), found
    assert "hosts no TenantControlPlane yet" in found["ACP-HCP-021"][1]
    assert "hcpTenantExpected" in found["ACP-HCP-028"][1]
    # Post-create, the missing cluster is the finding.
    status, message = run(hcp.check_planned_tenant_exists, plan, evidence, **EXPECTED)
    assert status == "fail" and f"no TenantControlPlane for cluster {NAME}" in message


# ---------------------------------------------------------------------------
# ACP-HCP-007: an ACP workload cluster


def test_a_cluster_without_acps_namespace_fails_and_the_global_cluster_warns(world: World) -> None:
    objects = world.healthy()
    plan, evidence = world.gather(replace(objects, "Namespace", None))
    status, message = run(hcp.check_management_cluster_is_acp_workload, plan, evidence)
    assert status == "fail" and "has no namespace cpaas-system" in message
    plan, evidence = world.gather(objects, global_registry=True)
    status, message = run(hcp.check_management_cluster_is_acp_workload, plan, evidence)
    assert status == "warn" and "it is the global cluster" in message


# ---------------------------------------------------------------------------
# ACP-HCP-008: CIDRs read from the management cluster


def test_a_tenant_pod_cidr_overlapping_the_live_management_pod_cidr_fails_without_the_plan_giving_it(
    world: World,
) -> None:
    unset = {"spec": {"managementCluster": {"podCIDR": DELETE, "serviceCIDR": DELETE}}}
    objects = replace(world.healthy(), "ConfigMap", kubeadm_config("10.13.128.0/17", "10.4.0.0/16"))
    plan, evidence = world.gather(objects, unset)
    status, message = run(hcp.check_hosted_cidrs_clear_of_live_management, plan, evidence)
    assert status == "fail", message
    assert "overlaps the management cluster's pod CIDR 10.13.128.0/17" in message
    assert "read from ConfigMap kube-system/kubeadm-config" in message
    # With the live CIDRs clear, the same plan passes although it gives none.
    plan, evidence = world.gather(world.healthy(), unset)
    assert run(hcp.check_hosted_cidrs_clear_of_live_management, plan, evidence) == ("pass", "")


def test_a_plan_whose_management_cidrs_differ_from_the_cluster_warns(world: World) -> None:
    objects = replace(world.healthy(), "ConfigMap", kubeadm_config("10.5.0.0/16", "10.4.0.0/16"))
    plan, evidence = world.gather(objects)
    status, message = run(hcp.check_hosted_cidrs_clear_of_live_management, plan, evidence)
    assert status == "warn"
    assert "spec.managementCluster.podCIDR is 10.3.0.0/16 but the management cluster's is 10.5.0.0/16" in message


def test_kube_proxy_and_node_blocks_give_what_they_can_and_the_rest_is_manual(world: World) -> None:
    objects = replace(world.healthy(), "ConfigMap", kube_proxy_config("10.13.0.0/16"))
    plan, evidence = world.gather(objects)
    status, message = run(hcp.check_hosted_cidrs_clear_of_live_management, plan, evidence)
    assert status == "fail" and "ConfigMap kube-system/kube-proxy" in message
    objects = [
        *replace(world.healthy(), "ConfigMap", None),
        node_with_pod_cidr("m1", "10.3.1.0/24"),
        node_with_pod_cidr("m2", "10.3.2.0/24"),
    ]
    plan, evidence = world.gather(objects)
    status, message = run(hcp.check_hosted_cidrs_clear_of_live_management, plan, evidence)
    assert status == "manual" and "pod (only per-node blocks are known) and service CIDR" in message
    assert "kubeadm-config" in message  # the command to look with


# ---------------------------------------------------------------------------
# ACP-HCP-020..027: the planted defects, one per rule (and what the others say of it)

DEFECTS = {
    "ACP-HCP-020": ({"version": "v1.29.4"}, "declares Kubernetes v1.29.4: ACP 4.3 supports workload clusters on"),
    "ACP-HCP-021": ({"status": "NotReady"}, f"TenantControlPlane {NAMESPACE}/{NAME} (cluster {NAME}) is NotReady"),
    "ACP-HCP-023": ({"secret": None}, "names no admin kubeconfig Secret (status.kubeconfig.admin.secretName)"),
    "ACP-HCP-024": ({"datastore": "etcd-gone"}, "references DataStore etcd-gone, which does not exist"),
    "ACP-HCP-025": ({"replicas": 3, "ready": 1}, "declares 3 control-plane replicas, 1 ready"),
    "ACP-HCP-026": ({"konnectivity": False}, "has no Konnectivity addon (spec.addons.konnectivity is not set)"),
}


@pytest.mark.parametrize("rule", sorted(DEFECTS))
def test_each_planted_tenant_defect_fails_its_rule(world: World, rule: str) -> None:
    edit, text = DEFECTS[rule]
    plan, evidence = world.gather(world.healthy(**edit))
    found = results(plan, evidence)
    assert found[rule][0] == "fail" and text in found[rule][1], found[rule]
    assert NAME in found[rule][1]


def test_a_sleeping_tenant_control_plane_warns(world: World) -> None:
    """Scaled to zero on purpose (Kamaji's Sleeping): the owner's choice, said, not failed."""
    plan, evidence = world.gather(world.healthy(status="Sleeping", replicas=0, ready=0))
    status, message = run(hcp.check_tenant_ready, plan, evidence)
    assert status == "warn" and f"{NAMESPACE}/{NAME} (cluster {NAME}) is Sleeping" in message
    assert run(hcp.check_tenant_konnectivity_server, plan, evidence)[0] == "pass"


def test_a_datastore_that_is_not_ready_fails_and_one_without_readiness_is_not_judged(world: World) -> None:
    objects = world.healthy()
    plan, evidence = world.gather(replace(objects, "DataStore", datastore(ready=False)))
    status, message = run(hcp.check_tenant_datastore_resolves, plan, evidence)
    assert status == "fail" and "references DataStore default-datastore, which is not ready" in message
    plan, evidence = world.gather(replace(objects, "DataStore", datastore(ready=None)))
    assert run(hcp.check_tenant_datastore_resolves, plan, evidence) == ("pass", "")


def test_an_endpoint_whose_certificate_does_not_name_it_fails(world: World) -> None:
    """The tenant serves on 127.0.0.2 with a certificate for 127.0.0.1 and localhost."""
    tenant = world.tenant(host="127.0.0.2")
    plan, evidence = world.gather(management_objects(NAME, tenant.endpoint, tenant.kubeconfig()))
    status, message = run(hcp.check_tenant_endpoint, plan, evidence)
    assert status == "fail", message
    assert f"the certificate served at {tenant.endpoint}" in message and "does not name 127.0.0.2" in message
    assert "127.0.0.1" in message  # the SANs it does have


def test_an_endpoint_missing_silent_or_without_a_load_balancer_address_fails(world: World) -> None:
    plan, evidence = world.gather(world.healthy(endpoint=None))
    status, message = run(hcp.check_tenant_endpoint, plan, evidence)
    assert status == "fail" and "has no control-plane endpoint" in message
    stopped = world.tenant()
    stopped.stop()
    plan, evidence = world.gather(world.healthy(endpoint=stopped.endpoint, load_balancer=None))
    status, message = run(hcp.check_tenant_endpoint, plan, evidence)
    assert status == "fail" and "does not answer TLS" in message and "has no address" in message
    plan, evidence = world.gather(world.healthy(service_type="NodePort"))
    status, message = run(hcp.check_tenant_endpoint, plan, evidence)
    assert status == "fail" and "exposed as a NodePort Service" in message


def test_a_secret_that_is_gone_or_lacks_admin_conf_fails_and_a_refused_read_is_an_error(world: World) -> None:
    objects = world.healthy()
    plan, evidence = world.gather(replace(objects, "Secret", None))
    status, message = run(hcp.check_tenant_kubeconfig_secret, plan, evidence)
    assert status == "fail" and f"admin kubeconfig Secret {NAME}-admin-kubeconfig does not exist" in message
    wrong_key = admin_kubeconfig_secret(f"{NAME}-admin-kubeconfig", NAMESPACE, "x", key="kubeconfig")
    plan, evidence = world.gather(replace(objects, "Secret", wrong_key))
    status, message = run(hcp.check_tenant_kubeconfig_secret, plan, evidence)
    assert status == "fail" and "has no admin.conf key (keys: kubeconfig)" in message
    plan, evidence = world.gather(objects, user="hcp-no-secrets")
    status, message = run(hcp.check_tenant_kubeconfig_secret, plan, evidence)
    assert status == "error" and "forbidden" in message
    assert run(hcp.check_tenant_konnectivity_agent, plan, evidence)[0] == "error"


def test_a_konnectivity_server_kamaji_has_not_enabled_fails(world: World) -> None:
    plan, evidence = world.gather(world.healthy(konnectivity_enabled=False))
    status, message = run(hcp.check_tenant_konnectivity_server, plan, evidence)
    assert status == "fail" and "status.addons.konnectivity.enabled is False" in message


@pytest.mark.parametrize(
    ("agent", "text"),
    [
        (konnectivity_agent(3, ready=1), "has 1 of 3 pods ready"),
        (konnectivity_agent(0), "is scheduled on no node"),
        (konnectivity_agent(2, name="other-agent"), "has no DaemonSet kube-system/konnectivity-agent"),
    ],
    ids=["not-ready", "no-node", "absent"],
)
def test_a_konnectivity_agent_not_ready_in_the_tenant_fails(world: World, agent: dict[str, Any], text: str) -> None:
    tenant = world.tenant(agent)
    plan, evidence = world.gather(management_objects(NAME, tenant.endpoint, tenant.kubeconfig()))
    status, message = run(hcp.check_tenant_konnectivity_agent, plan, evidence)
    assert status == "fail" and text in message, message
    assert f"the tenant ({tenant.server.url})" in message or "has no DaemonSet" in message
    assert CANARY not in message


def test_a_tenant_kubeconfig_that_names_a_program_is_refused_never_run(world: World, tmp_path: Path) -> None:
    """A kubeconfig in a Secret is the cluster's data: an exec plugin in it would run a program here."""
    marker = tmp_path / "ran"
    tenant = world.tenant()
    hostile = yaml.safe_load(tenant.kubeconfig())
    hostile["users"][0]["user"] = {
        "exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "touch", "args": [str(marker)]}
    }
    assert "exec" in (tenant_target_refusal(hostile) or "")
    for unsafe, said in (
        ({"server": "http://192.0.2.200:6443"}, "not https"),
        ({"insecure-skip-tls-verify": True}, "skips TLS"),
    ):
        clear = yaml.safe_load(tenant.kubeconfig())
        clear["clusters"][0]["cluster"].update(unsafe)
        assert said in (tenant_target_refusal(clear) or "")
    assert tenant_target_refusal(yaml.safe_load(tenant.kubeconfig())) is None
    objects = replace(
        management_objects(NAME, tenant.endpoint, tenant.kubeconfig()),
        "Secret",
        admin_kubeconfig_secret(f"{NAME}-admin-kubeconfig", NAMESPACE, yaml.safe_dump(hostile)),
    )
    plan, evidence = world.gather(objects)
    status, message = run(hcp.check_tenant_konnectivity_agent, plan, evidence)
    assert status == "error" and "uses exec" in message
    assert not marker.exists()


def test_a_tenant_admin_conf_with_a_client_certificate_is_used_in_memory_and_its_key_shows_nowhere(
    world: World, tmp_path: Path
) -> None:
    """kubeadm's admin.conf (what Kamaji keeps) authenticates by client certificate: the key goes through a
    memfd into the client, and neither its base64 nor a line of its PEM reaches the evidence."""
    tenant = TenantServer(tmp_path / "cert-tenant", host="127.0.0.1").start()
    world.tenants.append(tenant)
    tenant.server.put(konnectivity_agent(2, ready=1))
    plan, evidence = world.gather(management_objects(NAME, tenant.endpoint, tenant.kubeconfig()))
    status, message = run(hcp.check_tenant_konnectivity_agent, plan, evidence)
    assert status == "fail" and "has 1 of 2 pods ready" in message  # the tenant's API was read with the certificate
    TenantsSource().save(evidence.tenants, tmp_path / "facts")
    saved = (tmp_path / "facts" / "tenants.json").read_text()
    key = tenant.client_key()
    pem = base64.b64decode(key).decode().splitlines()
    assert key not in saved and not any(line in saved for line in pem if len(line) > 20)
    assert key not in message and not list((tmp_path / "facts").glob("*.kubeconfig"))


def test_an_agent_in_deployment_mode_is_left_to_a_person(world: World) -> None:
    plan, evidence = world.gather(world.healthy(agent_mode="Deployment"))
    status, message = run(hcp.check_tenant_konnectivity_agent, plan, evidence)
    assert status == "error" and "runs as a Deployment" in message


def test_only_the_broken_one_of_two_tenant_control_planes_is_named(world: World) -> None:
    objects = world.healthy()
    other = world.tenant()
    objects += [
        capi_cluster("tenant-b", control_plane="tenant-b"),
        tenant_control_plane("tenant-b", endpoint=other.endpoint, status="Provisioning"),
        admin_kubeconfig_secret("tenant-b-admin-kubeconfig", NAMESPACE, other.kubeconfig()),
    ]
    plan, evidence = world.gather(objects)
    status, message = run(hcp.check_tenant_ready, plan, evidence)
    assert status == "fail" and "tenant-b" in message and f"{NAMESPACE}/{NAME} " not in message
    assert run(hcp.check_tenant_konnectivity_agent, plan, evidence) == ("pass", "")


# ---------------------------------------------------------------------------
# Profiles, explain, and the command end to end (the canary)


def test_the_profiles_split_pre_and_post_create_and_hcp_keeps_both() -> None:
    from acpcheck.catalog import load_catalog

    catalog = load_catalog()
    hcp_ids = {i for i in catalog if i.startswith("ACP-HCP-")}
    selected = {
        name: {i for i in hcp_ids if load_profile(name).selects(catalog[i])}
        for name in ("hcp", "hcp-precreate", "hcp-postcreate")
    }
    post = {i for i in hcp_ids if hcp.POSTCREATE in catalog[i].tags}
    assert post == {f"ACP-HCP-0{n}" for n in range(20, 29)}
    assert selected["hcp"] == hcp_ids
    assert selected["hcp-precreate"] == hcp_ids - post
    assert selected["hcp-postcreate"] == post
    assert load_profile("hcp-postcreate").params[hcp.TENANT_EXPECTED] is True


def test_explain_shows_the_seed_page_of_each_hcp_rule() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "acpcheck", "explain", "ACP-HCP-024"], capture_output=True, text=True, check=True
    )
    assert "Seed:\n  003_548e964e9eec5514.txt (Concepts): " in done.stdout
    assert "https://docs.alauda.io/hosted-control-plane/1.0/concepts.html" in done.stdout
    # Every HCP rule here cites the concepts page (seed 003); ACP-HCP-007 the architecture page too (seed 002).
    named = {id_of(check): [seed.file[:3] for seed in seeds_of(check.__acpcheck__.refs)] for check in CHECKS}  # type: ignore[attr-defined]
    assert named == {id_of(check): ["003"] for check in CHECKS} | {"ACP-HCP-007": ["003", "002"]}
    # A rule whose sources are no seed page says so.
    done = subprocess.run(
        [sys.executable, "-m", "acpcheck", "explain", "ACP-NODE-001"], capture_output=True, text=True, check=True
    )
    assert "Seed:\n  none: no source of this rule is one of the seed pages" in done.stdout


@pytest.mark.skipif(not SEEDS_DIR.is_dir(), reason=f"the seed pages are not here ({SEEDS_DIR})")
def test_the_seed_map_names_real_seed_files_by_their_first_line() -> None:
    for seed in seeds():
        text = (SEEDS_DIR / seed.file).read_text()
        assert text.lstrip().splitlines()[0].lstrip("# ").strip() == seed.title, seed.file


def acpcheck_run(plan_file: Path, profile: str, out: Path, *more: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "acpcheck", "run", "--plan", str(plan_file), "--profile", profile, "--out", str(out)]
        + list(more),
        capture_output=True,
        text=True,
        cwd=out.parent,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith("ACPCHECK_")},
    )


def test_the_command_finds_each_planted_defect_and_no_artifact_holds_the_tenant_kubeconfig(
    world: World, tmp_path: Path
) -> None:
    """`acpcheck run --profile hcp-postcreate`: tenant-a healthy; tenant-b not Ready, its endpoint's
    certificate not naming it, its DataStore gone and a replica short; tenant-c's Konnectivity agent
    not ready."""
    good, bad_cert = world.tenant(), world.tenant(host="127.0.0.2")
    lagging = world.tenant(konnectivity_agent(2, ready=1))
    objects = [
        *management_objects(NAME, good.endpoint, good.kubeconfig()),
        capi_cluster("tenant-b"),
        tenant_control_plane(
            "tenant-b", endpoint=bad_cert.endpoint, status="NotReady", replicas=2, ready=1, datastore="etcd-gone"
        ),
        admin_kubeconfig_secret("tenant-b-admin-kubeconfig", NAMESPACE, bad_cert.kubeconfig()),
        capi_cluster("tenant-c"),
        tenant_control_plane("tenant-c", endpoint=lagging.endpoint),
        admin_kubeconfig_secret("tenant-c-admin-kubeconfig", NAMESPACE, lagging.kubeconfig()),
    ]
    key = tmp_path / "id_ed25519"  # the plan names a key; the run opens no SSH session
    key.write_text("unused\n")
    key.chmod(0o600)
    plan_file = tmp_path / "plan.yaml"
    edit = {"spec": {"kubeconfig": str(world.management(objects)), "ssh": {"auth": {"privateKeyFile": str(key)}}}}
    plan_file.write_text(yaml.safe_dump(merge(HCP, edit)))
    done = acpcheck_run(plan_file, "hcp-postcreate", tmp_path / "out")
    assert done.returncode == 1, done.stdout + done.stderr
    document = json.loads((tmp_path / "out" / "results.json").read_text())
    found = {r["check"]: (r["status"], r["message"]) for r in document["results"]}
    assert {check for check, (status, _) in found.items() if status == "fail"} == {
        "ACP-HCP-021",
        "ACP-HCP-022",
        "ACP-HCP-024",
        "ACP-HCP-025",
        "ACP-HCP-027",
    }, found
    for rule in ("ACP-HCP-021", "ACP-HCP-022", "ACP-HCP-024", "ACP-HCP-025"):
        assert "tenant-b" in found[rule][1] and "tenant-c" not in found[rule][1], found[rule]
        assert f"{NAMESPACE}/{NAME} " not in found[rule][1], found[rule]
    agent = found["ACP-HCP-027"][1]
    assert "tenant-c" in agent and "has 1 of 2 pods ready" in agent
    # tenant-b's API refuses the host name its kubeconfig names: not judged, and said so.
    assert "not checked: TenantControlPlane cpaas-system/tenant-b" in agent
    assert found["ACP-HCP-028"][0] == "pass"
    # The canary (the tenants' admin token) is nowhere: not in any file the run wrote, not on the terminal.
    assert CANARY not in done.stdout + done.stderr
    for path in (tmp_path / "out").rglob("*"):
        if path.is_file():
            text = path.read_bytes()
            assert CANARY.encode() not in text, path
            assert b"certificate-authority-data" not in text, path
    # Pre-create, the same management cluster: ACP-HCP-007/008 only; no tenant is contacted (no tenants evidence).
    done = acpcheck_run(plan_file, "hcp-precreate", tmp_path / "pre", "--check", "ACP-HCP-00[78]")
    assert done.returncode == 0, done.stdout + done.stderr
    document = json.loads((tmp_path / "pre" / "results.json").read_text())
    statuses = {r["check"]: r["status"] for r in document["results"]}
    assert statuses == {"ACP-HCP-007": "pass", "ACP-HCP-008": "pass"}
    saved = {path.parent.name for path in (tmp_path / "pre").rglob("*.json")}
    assert "hcp_management" in saved and "tenants" not in saved, saved


def test_the_hcp_profile_runs_pre_and_post_create_rules_and_passes_a_healthy_management_cluster(
    world: World, tmp_path: Path
) -> None:
    """`acpcheck run --profile hcp`, narrowed to checks/hcp.py's rules (its node checks would log in to the
    workers): a healthy
    management cluster with MetalLB and one healthy tenant passes every HCP rule of this module and of
    checks/hcp.py's others; ACP-HCP-028 is SKIPped (only hcp-postcreate expects the cluster)."""
    tenant = world.tenant()
    pool = {
        "apiVersion": "metallb.io/v1beta1",
        "kind": "IPAddressPool",
        "metadata": {"name": "hcp-apiservers", "namespace": "metallb-system"},
        "spec": {"addresses": ["192.0.2.200-192.0.2.220"]},
    }
    objects = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "metallb-system"}},
        pool,
        *management_objects(NAME, tenant.endpoint, tenant.kubeconfig()),
    ]
    key = tmp_path / "id_ed25519"  # the plan names a key; the run opens no SSH session
    key.write_text("unused\n")
    key.chmod(0o600)
    plan_file = tmp_path / "plan.yaml"
    edit = {"spec": {"kubeconfig": str(world.management(objects)), "ssh": {"auth": {"privateKeyFile": str(key)}}}}
    plan_file.write_text(yaml.safe_dump(merge(HCP, edit)))
    # checks/hcp.py's rules only: the DataStore and SSH host rules (ACP-HCP-010..019, 030..039) have their own tests.
    done = acpcheck_run(plan_file, "hcp", tmp_path / "out", "--check", "ACP-HCP-00[1-8]", "--check", "ACP-HCP-02?")
    assert done.returncode == 0, done.stdout + done.stderr
    document = json.loads((tmp_path / "out" / "results.json").read_text())
    statuses = {r["check"]: r["status"] for r in document["results"]}
    mine = {f"ACP-HCP-{n:03d}" for n in (*range(1, 9), *range(20, 28))}
    assert {check: statuses[check] for check in mine} == dict.fromkeys(mine, "pass")
    assert statuses["ACP-HCP-028"] == "skip"
    assert CANARY not in done.stdout + done.stderr


def test_a_damaged_tenant_control_plane_reads_as_fields_missing_never_a_crash() -> None:
    """Fields of the wrong type (a controller bug, a hand edit the schema let through) read as absent."""
    from acpcheck.sources.hcp_tenants import datastore_summary, plane_summary

    plane = plane_summary(
        {
            "metadata": {"name": "odd", "namespace": NAMESPACE},
            "spec": {"kubernetes": {"version": 133}, "controlPlane": ["not", "a", "mapping"], "dataStore": 7},
            "status": {
                "kubernetesResources": {"version": {"status": True}, "deployment": "x", "service": {"loadBalancer": 1}},
                "controlPlaneEndpoint": ["192.0.2.1:6443"],
                "addons": {"konnectivity": {"enabled": "yes"}},
            },
        }
    )
    assert (plane.version, plane.status, plane.endpoint, plane.datastore_spec) == (None, None, None, None)
    assert (plane.replicas_declared, plane.konnectivity_enabled, plane.load_balancer) == (None, None, [])
    assert datastore_summary({"metadata": {"name": "d"}, "status": {"conditions": "Ready"}}).ready is None
