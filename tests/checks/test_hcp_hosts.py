"""ACP-HCP-030..033 (checks/hcp_hosts.py): the SSH hosts of a hosted control plane's management
cluster, read for real from the project's test API server (a stand-in for kube-apiserver) over
TLS with the reader's token, and how they become node targets of a run.

What needs a machine (a host reached over SSH or not, the node checks on it, an immutable OS)
is proven on lab nodes in tests/lab/test_hcp_scenario.py: the ``hcp`` scenario has an SSHHost
where nothing answers (ACP-HCP-032 FAIL, ERROR on its node target), one with swap on (the node
check FAILs on it), one on an immutable OS (every node check SKIPs it); ``hcp-healthy`` passes.

Plans start from examples/hosted-control-plane.yaml (workers tenant-a-w1..3 at 203.0.113.81..83).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import EXAMPLES, ServeCluster, make_plan, merge

from acpcheck import testing
from acpcheck.checks import hcp_hosts
from acpcheck.facts.model import GatherFailure, NodeSet
from acpcheck.model.plan import ClusterPlan
from acpcheck.model.result import CheckResult
from acpcheck.run.inputs import prepare_run
from acpcheck.sources.sshhosts import (
    SshHostInventory,
    SshHostSource,
    SshHostView,
    immutable_host_reason,
    take_inventory,
    with_ssh_hosts,
)

HCP: dict[str, Any] = yaml.safe_load((EXAMPLES / "hosted-control-plane.yaml").read_text())
NS = "cpaas-system"
CANARY = "acpcheck-canary-sshhost-9f1c2e"
SSH_HOST_CRD = "sshhosts.infrastructure.cluster.x-k8s.io"


def secret(name: str, **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": NS},
        "data": {key: base64.b64encode(value.encode()).decode() for key, value in data.items()},
    }


def host(name: str, address: Any = "192.0.2.11", port: Any = 22, secret_name: str | None = None, **spec: Any) -> dict:
    body: dict[str, Any] = {"address": address, "port": port, "reusePolicy": "Reuse", **spec}
    if secret_name is not None:
        body["credentialSecretRef"] = {"name": secret_name}
    return {
        "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1",
        "kind": "SSHHost",
        "metadata": {"name": name, "namespace": NS},
        "spec": body,
    }


def healthy() -> list[dict[str, Any]]:
    return [
        secret("key-login", **{"ssh-privatekey": CANARY}),
        secret("password-login", username="root", password=CANARY),
        host("w1", "192.0.2.11", secret_name="key-login"),
        host("w2", "192.0.2.12", 2222, secret_name="password-login"),
    ]


Live = Callable[..., tuple[ClusterPlan, SshHostView]]


@pytest.fixture
def live(serve_cluster: ServeCluster) -> Live:
    """``live(objects, without=)``: an HCP plan whose kubeconfig names a test API server holding
    ``objects``, and the SSH host inventory read from it."""

    def start(objects: list[dict[str, Any]], without: tuple[str, ...] = ()) -> tuple[ClusterPlan, SshHostView]:
        path = serve_cluster(objects, without=without)
        plan = make_plan({"spec": {"kubeconfig": str(path)}}, base=HCP)
        inventory = take_inventory(plan)
        assert inventory.failure is None, inventory.failure
        with_ssh_hosts(plan, inventory)
        return plan, SshHostView(inventory)

    return start


def run(check: Callable[..., Any], plan: ClusterPlan, hosts: SshHostView, **more: Any) -> CheckResult:
    return testing.run_check(check, plan, ssh_hosts=hosts, target=f"cluster:{plan.metadata.name}", **more)


def status(result: CheckResult) -> str:
    return str(result.status)


# ---------------------------------------------------------------------------
# Healthy hosts; the evidence keeps key names, never a credential


def test_healthy_ssh_hosts_pass_and_no_credential_reaches_the_evidence(live: Live, tmp_path: Path) -> None:
    plan, hosts = live(healthy())
    assert [(h.name, h.address, h.port, h.secret_keys) for h in hosts.hosts] == [
        ("w1", "192.0.2.11", 22, ["ssh-privatekey"]),
        ("w2", "192.0.2.12", 2222, ["password", "username"]),
    ]
    for check in (hcp_hosts.check_ssh_host_addresses, hcp_hosts.check_ssh_host_credentials):
        assert status(run(check, plan, hosts)) == "pass", run(check, plan, hosts).message
    assert status(run(hcp_hosts.check_ssh_host_reuse_policy, plan, hosts)) == "pass"
    SshHostSource().save(hosts.inventory, tmp_path / "sshhosts")
    saved = (tmp_path / "sshhosts" / "sshhosts.json").read_text()
    assert CANARY not in saved and base64.b64encode(CANARY.encode()).decode() not in saved
    assert SshHostSource().load(tmp_path / "sshhosts", plan) == hosts.inventory


# ---------------------------------------------------------------------------
# ACP-HCP-030: address and port


def test_a_host_without_a_usable_address_or_port_fails_naming_it(live: Live) -> None:
    plan, hosts = live(
        [
            *healthy(),
            host("nowhere", "not an address!", secret_name="key-login"),
            host("badport", "192.0.2.13", 70000, secret_name="key-login"),
            host("named", "worker-4.example.com", secret_name="key-login"),
        ]
    )
    result = run(hcp_hosts.check_ssh_host_addresses, plan, hosts)
    assert status(result) == "fail"
    assert "SSHHost cpaas-system/nowhere: address 'not an address!' (spec.address)" in result.message
    assert "SSHHost cpaas-system/badport: port 70000 (spec.port) is not a TCP port" in result.message
    assert "named" not in result.message and "cpaas-system/w1" not in result.message


def test_no_ssh_host_warns_and_a_cluster_without_the_provider_skips(live: Live) -> None:
    plan, hosts = live([])
    assert status(run(hcp_hosts.check_ssh_host_addresses, plan, hosts)) == "warn"
    plan, hosts = live([], without=(SSH_HOST_CRD,))
    for check in (
        hcp_hosts.check_ssh_host_addresses,
        hcp_hosts.check_ssh_host_credentials,
        hcp_hosts.check_ssh_host_reuse_policy,
    ):
        result = run(check, plan, hosts)
        assert status(result) == "skip" and "ACP-HCP-004" in result.message


# ---------------------------------------------------------------------------
# ACP-HCP-031: the credential Secret


def test_a_missing_secret_one_without_a_login_and_no_reference_fail_each_host(live: Live) -> None:
    plan, hosts = live(
        [
            *healthy(),
            secret("only-user", username="root"),
            host("w3", "192.0.2.13", secret_name="gone-secret"),
            host("w4", "192.0.2.14", secret_name="only-user"),
            host("w5", "192.0.2.15"),
        ]
    )
    result = run(hcp_hosts.check_ssh_host_credentials, plan, hosts)
    assert status(result) == "fail"
    assert "SSHHost cpaas-system/w3: its credential Secret cpaas-system/gone-secret does not exist" in result.message
    assert "SSHHost cpaas-system/w4: its credential Secret cpaas-system/only-user holds no login" in result.message
    assert "SSHHost cpaas-system/w5 names no credential Secret" in result.message
    assert "/w1" not in result.message and "/w2" not in result.message and CANARY not in result.message


# ---------------------------------------------------------------------------
# ACP-HCP-033: the reuse policy


def test_a_host_without_a_reuse_policy_is_manual_and_names_the_stated_ones(live: Live) -> None:
    plan, hosts = live([*healthy(), host("w3", "192.0.2.13", secret_name="key-login", reusePolicy=None)])
    result = run(hcp_hosts.check_ssh_host_reuse_policy, plan, hosts)
    assert status(result) == "manual"
    assert result.message.startswith("SSHHost cpaas-system/w3 state(s) no reuse policy (spec.reusePolicy)")
    assert "SSHHost cpaas-system/w1: spec.reusePolicy Reuse" in result.message


# ---------------------------------------------------------------------------
# ACP-HCP-032 without a machine: what the node facts said (the lab test proves it on real sshd)


def test_reachability_reads_the_node_targets_facts(live: Live) -> None:
    plan, hosts = live([*healthy(), host("named", "worker-4.example.com", secret_name="key-login")])
    plan = with_ssh_hosts(plan, hosts.inventory)
    failure = GatherFailure("w2", "unreachable", "TCP connect to 192.0.2.12:2222: connection refused")
    nodes = NodeSet(members=(), failures={"w2": failure}, plan=plan)
    result = run(hcp_hosts.check_ssh_hosts_reachable, plan, hosts, nodes=nodes)
    assert status(result) == "fail"
    assert result.message.startswith(
        "SSHHost cpaas-system/w2 (192.0.2.12:2222, node:w2) was not reached over SSH: unreachable: TCP connect"
    )
    assert "cpaas-system/w1" not in result.message
    nodes = NodeSet(members=(), failures={}, plan=plan)
    result = run(hcp_hosts.check_ssh_hosts_reachable, plan, hosts, nodes=nodes)
    assert status(result) == "manual" and "SSHHost cpaas-system/named: not tried" in result.message


# ---------------------------------------------------------------------------
# The hosts as node targets


def test_hosts_become_worker_nodes_unless_the_plan_lists_their_address(live: Live) -> None:
    plan, hosts = live(
        [*healthy(), host("tenant-a-w1", "198.51.100.7", secret_name="key-login"), host("w9", "203.0.113.81")]
    )
    extended = with_ssh_hosts(plan, hosts.inventory)
    added = {node.name: node for node in extended.spec.nodes[len(plan.spec.nodes) :]}
    assert sorted(added) == ["cpaas-system-tenant-a-w1", "w1", "w2"]  # a name the plan has: namespaced
    assert added["w2"].ssh is not None and added["w2"].ssh.port == 2222 and added["w1"].ssh is None
    assert {node.role for node in added.values()} == {"worker"}
    assert {h.name: h.node for h in hosts.hosts}["w9"] == "tenant-a-w1"  # same address: the plan's own node
    assert extended.where("spec", "network", "clusterCIDR") == plan.where("spec", "network", "clusterCIDR")


def test_only_a_machine_s_own_address_and_a_key_login_make_a_host_a_node(live: Live) -> None:
    """The management cluster, not the plan, names these machines: acpcheck logs in to none at a
    loopback, unspecified, link-local or multicast address, never sends them the plan's password,
    and an address no node can have (an IPv6 zone) is said, not a crash."""
    objects = [
        *healthy(),
        host("lo", "127.0.0.1"),
        host("any", "0.0.0.0"),
        host("linklocal", "169.254.0.7"),
        host("zoned", "fe80::1%eth0"),
    ]
    plan, hosts = live(objects)
    extended = with_ssh_hosts(plan, hosts.inventory)
    added = [node.name for node in extended.spec.nodes[len(plan.spec.nodes) :]]
    assert sorted(added) == ["w1", "w2"]
    why = {h.name: h.not_a_node for h in hosts.hosts}
    assert (
        "no machine's own" in why["lo"] and "no machine's own" in why["any"] and "no machine's own" in why["linklocal"]
    )
    assert why["zoned"] is not None
    reach = run(
        hcp_hosts.check_ssh_hosts_reachable, extended, hosts, nodes=NodeSet(members=(), failures={}, plan=extended)
    )
    assert status(reach) == "manual" and "SSHHost cpaas-system/lo" in reach.message

    with_password = make_plan(
        {"spec": {"kubeconfig": plan.spec.kubeconfig, "ssh": {"auth": {"passwordEnv": "SSH_PASSWORD"}}}}, base=HCP
    )
    inventory = take_inventory(with_password)
    assert with_ssh_hosts(with_password, inventory).spec.nodes == with_password.spec.nodes
    assert all("password" in (h.not_a_node or "") for h in inventory.hosts if h.name in ("w1", "w2"))


def test_prepare_run_adds_the_hosts_before_collection(live: Live, tmp_path: Path) -> None:
    plan, _ = live(healthy())
    plan_file = tmp_path / "plan.yaml"
    key = tmp_path / "id_ed25519"
    key.write_text("not read: prepare_run only checks that the file exists\n")
    edits = {"spec": {"kubeconfig": plan.spec.kubeconfig, "ssh": {"auth": {"privateKeyFile": str(key)}}}}
    plan_file.write_text(yaml.safe_dump(merge(HCP, edits)))
    inputs = prepare_run(str(plan_file), profile="hcp", out=str(tmp_path / "out"))
    try:
        assert [n.name for n in inputs.plan.spec.nodes][-2:] == ["w1", "w2"]
        assert inputs.ssh_hosts is not None and CANARY not in json.dumps(inputs.ssh_hosts.as_dict())
    finally:
        inputs.out.release()
    nodes_only = prepare_run(str(plan_file), profile="hcp", select=["ACP-NODE-008"], out=str(tmp_path / "nodes"))
    try:
        assert [n.name for n in nodes_only.plan.spec.nodes][-2:] == ["w1", "w2"]  # node checks run on the hosts
    finally:
        nodes_only.out.release()
    plain = prepare_run(str(plan_file), profile="plan", out=str(tmp_path / "plain"))
    try:
        assert plain.ssh_hosts is None and len(plain.plan.spec.nodes) == 3  # no host check chosen: not read
    finally:
        plain.out.release()


def test_only_ssh_hosts_on_an_immutable_os_of_a_hosted_plan_are_left_out() -> None:
    plan = make_plan(base=HCP)
    reason = immutable_host_reason(plan, "w3", "opensuse-microos", "openSUSE MicroOS")
    assert reason is not None and reason.startswith("not applicable: SSH host w3 runs an immutable OS")
    assert immutable_host_reason(plan, "w3", "ubuntu", "Ubuntu 22.04.1 LTS") is None
    assert immutable_host_reason(plan, "w3", "fedora", "Fedora CoreOS 40") is not None
    on_premise = make_plan()
    assert immutable_host_reason(on_premise, "w3", "opensuse-microos", "openSUSE MicroOS") is None
    assert SshHostInventory.from_dict(SshHostInventory("cluster:x").as_dict()) == SshHostInventory("cluster:x")
