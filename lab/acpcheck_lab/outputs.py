"""Files ``up`` writes for the lab's users: the acpcheck plan, an OpenSSH client config
and known_hosts. Secrets go only into ``lab.env`` (mode 0600, ``info.write_env``); the
plan names the environment variables that hold them."""

from __future__ import annotations

import copy
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from acpcheck_lab.layout import (
    PROXY_PASSWORD_ENV,
    PROXY_USER_ENV,
    StatePaths,
)

if TYPE_CHECKING:
    from acpcheck_lab.info import LabInfo
    from acpcheck_lab.scenario import Scenario

#: The cluster the lab's nodes are planned for (the endpoint is a spare address of the
#: lab's direct subnet, filled in per lab); a scenario's ``plan:`` merges over it.
BASE_SPEC: dict[str, Any] = {
    "acp": {"version": "4.3"},
    "cluster": {
        "role": "workload",
        "type": "on-premise",
        "kubernetesVersion": "1.34.5",
        "containerRuntime": "containerd",
        "ipFamily": "ipv4",
        "nodeName": "ip",
    },
    "endpoint": {"address": None, "selfBuiltVIP": {"enabled": False}},
    "network": {
        "plugin": "kube-ovn",
        "clusterCIDR": "10.3.0.0/16",
        "serviceCIDR": "10.4.0.0/16",
        "kubeOvn": {"transmitMode": "overlay", "joinCIDR": "100.64.0.0/16"},
        "nic": "eth0",
    },
    "registry": {"type": "platform"},
    # the lab's haproxy sees a new backend within 200 ms (lab/acpcheck_lab/lb.py): no need to wait 10 s
    "loadBalancer": {"proofSeconds": 1},
}


#: The installer's default kubelet max-pods (ACP-NET-011), and the pod CIDR of a lab too
#: large for the base one's /16 (10.0.0.0-10.3.255.255: clear of the service CIDR).
PODS_PER_NODE = 110
LARGE_CLUSTER_CIDR = "10.0.0.0/14"


def merge(base: Any, edits: Any) -> Any:
    """Deep-merge mappings; anything else in ``edits`` replaces."""
    if isinstance(base, dict) and isinstance(edits, dict):
        result = dict(base)
        for key, value in edits.items():
            result[key] = merge(base.get(key), value)
        return result
    return copy.deepcopy(edits)


def plan_document(scenario: Scenario, info: LabInfo) -> dict[str, Any]:
    proxy = info.proxy
    nodes = []
    for node in info.nodes:
        entry: dict[str, Any] = {"name": node.name, "role": node.role, "ipv4": node.ipv4}
        override: dict[str, Any] = {}
        if node.ssh_user != "root":
            override["user"] = node.ssh_user
        if node.network == "hidden" and proxy is not None:
            override["proxy"] = {
                "url": f"socks5://{proxy.host}:{proxy.port}",
                "usernameEnv": PROXY_USER_ENV,
                "passwordEnv": PROXY_PASSWORD_ENV,
            }
        if override:
            entry["ssh"] = override
        nodes.append(entry)
    base = merge(BASE_SPEC, {"endpoint": {"address": str(info.lab_subnets.endpoint_address)}})
    if len(info.nodes) * PODS_PER_NODE > 2**16:
        # a healthy lab stays healthy at 1,000 nodes: ACP-NET-011 wants room for 110 pods a node
        base["network"] = {**base["network"], "clusterCIDR": LARGE_CLUSTER_CIDR}
    spec = merge(base, scenario.plan)
    # The lab knows every node's host key, so the plan can be strict about them.
    spec["ssh"] = {
        "port": 22,
        "user": "root",
        "auth": {"privateKeyFile": str(info.client_key)},
        "hostKeyPolicy": "strict",
        "knownHostsFile": str(info.paths.known_hosts),
    }
    spec["nodes"] = nodes
    return {
        "apiVersion": "acpcheck/v1",
        "kind": "ClusterPlan",
        "metadata": {"name": f"lab-{scenario.name}"},
        "spec": spec,
    }


def write_plan(paths: StatePaths, scenario: Scenario, info: LabInfo) -> None:
    header = (
        f"# acpcheck plan for the lab scenario {scenario.name!r}, written by `acpcheck lab up`.\n"
        f"# Secrets are referenced by environment variable; load them first:\n"
        f"#   set -a; . {paths.env}; set +a\n"
        f"# Known host keys of the lab nodes: {paths.known_hosts}\n"
    )
    body = yaml.safe_dump(plan_document(scenario, info), sort_keys=False, default_flow_style=None, width=120)
    paths.plan.write_text(header + body)


def write_ssh_files(paths: StatePaths, info: LabInfo, host_keys: dict[str, str]) -> None:
    """known_hosts, and an ssh_config for `ssh -F <state>/ssh_config <node>` (hidden
    nodes go through the proxy with `acpcheck_lab proxy-connect`)."""
    paths.known_hosts.write_text("".join(f"{node.ipv4} {host_keys[node.name]}\n" for node in info.nodes))
    blocks = []
    for node in info.nodes:
        lines = [
            f"Host {node.name}",
            f"  HostName {node.ipv4}",
            f"  User {node.ssh_user}",
            f"  IdentityFile {info.client_key}",
            "  IdentitiesOnly yes",
            f"  UserKnownHostsFile {paths.known_hosts}",
            "  StrictHostKeyChecking yes",
        ]
        if node.network == "hidden":
            lines.append(
                f"  ProxyCommand {shlex.quote(sys.executable)} -m acpcheck_lab proxy-connect --state "
                f"{shlex.quote(str(paths.root))} %h %p"
            )
        blocks.append("\n".join(lines))
    paths.ssh_config.write_text("# written by `acpcheck lab up`\n" + "\n\n".join(blocks) + "\n")


def host_key_line(public_key_file: Path) -> str:
    """``ssh-ed25519 AAAA…`` without the comment."""
    return " ".join(public_key_file.read_text().split()[:2])
