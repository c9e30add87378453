"""Kube-OVN Underlay on the nodes: the bridged NIC exists, carries nothing else, and has
a name the platform's traffic monitoring recognises (Create Cluster form, Container
Network and Node Settings; Underlay physical prerequisites).

The NIC is the plan's: a node's ``nic``, else ``spec.network.nic`` (for Underlay the node
NIC takes precedence over the cluster NIC). A plan that names none is ACP-NET-004's
finding; these checks then SKIP the node.

Node state that makes each check FAIL (for the lab):

- ACP-NODE-039: the NIC is not among the node's links (``ip -o link show``).
- ACP-NODE-040: the NIC holds the node's plan address or the address the SSH session
  arrived on, or the default route leaves through it.
- ACP-NODE-041 (WARN): the NIC, or the NIC holding the node's address, is named other
  than ``eth*``, ``en*``, ``wl*`` or ``ww*``.
"""

from __future__ import annotations

from acpcheck import NodeContext, Scope, Severity, check, fail_if, manual, skip, warn
from acpcheck.checks.support import preprocessed, require
from acpcheck.constants import ACP_DOCS, ON_PREMISES

UNDERLAY = f"{ACP_DOCS}/4.3/configure/networking/how_to/kube_ovn/kubeovn_underlay_py.html"
#: NIC name prefixes whose traffic the platform's monitoring collects by default (Node Settings).
MONITORED_NIC_PREFIXES = ("eth", "en", "wl", "ww")

UNDERLAY_NODES = preprocessed(plugins=frozenset({"kube-ovn"}), transmit_modes=frozenset({"underlay"}))


def underlay_nic(node: NodeContext) -> str:
    """The NIC Kube-OVN bridges on this node (node NIC > cluster NIC); SKIP when the plan names none."""
    network = node.plan.spec.network
    assert network is not None, "UNDERLAY_NODES applies only to plans with a network (Kube-OVN Underlay)"
    nic = node.spec.nic or network.nic
    if not nic:
        skip(f"{node.name}: the plan names no Underlay NIC (ACP-NET-004)")
    return str(nic)


def known_interfaces(node: NodeContext) -> tuple[str, ...]:
    require(node, "interfaces")
    if node.facts.interfaces is None:
        manual(f"{node.name}: the network links were not gathered (facts from an older acpcheck?); gather again")
    return node.facts.interfaces


@check(
    id="ACP-NODE-039",
    title="the Kube-OVN Underlay NIC exists on the node",
    severity=Severity.HIGH,
    scope=Scope.NODE,
    applies=UNDERLAY_NODES,
    refs=[ON_PREMISES, UNDERLAY],
    remediation="Name each node's real Underlay NIC in the plan (spec.nodes[].nic or spec.network.nic), or add it.",
)
def check_underlay_nic_exists(node: NodeContext) -> None:
    """Underlay needs the NIC for bridge networking named in the form; Kube-OVN bridges
    that NIC on every node, so a node without it gets no pod network."""
    nic = underlay_nic(node)
    interfaces = known_interfaces(node)
    fail_if(
        [f"{node.name}: no network link named {nic} (links: {', '.join(interfaces) or 'none'})"]
        if nic not in interfaces
        else []
    )


@check(
    id="ACP-NODE-040",
    title="the Kube-OVN Underlay NIC carries no other traffic (not the node's or SSH address)",
    severity=Severity.HIGH,
    scope=Scope.NODE,
    applies=UNDERLAY_NODES,
    refs=[ON_PREMISES, UNDERLAY],
    remediation=(
        "Give Underlay a NIC of its own: keep the node's address, the SSH address and the default route on "
        "another NIC, and name the dedicated one in the plan."
    ),
)
def check_underlay_nic_dedicated(node: NodeContext) -> None:
    """The NIC used for bridge networking must be used by Underlay alone and carry no
    other traffic such as SSH; the Underlay prerequisites give it no IP address and no
    default route (those stay on the node's other NIC)."""
    nic = underlay_nic(node)
    require(node, "addresses", "routes")
    ssh_address = node.facts.ssh_server_address
    own = {str(ip) for ip in node.spec.addresses}
    findings = []
    for address in node.facts.addresses:
        if address.interface != nic:
            continue
        if address.address == ssh_address:
            findings.append(f"{node.name}: {nic} holds {address.address}, the address the SSH session came in on")
        elif address.address in own:
            findings.append(f"{node.name}: {nic} holds {address.address}, the node's address in the plan")
    for route in node.facts.routes:
        words = route.split()
        if (
            words[:1] == ["default"]
            and "dev" in words
            and words[words.index("dev") + 1 : words.index("dev") + 2] == [nic]
        ):
            findings.append(f"{node.name}: the default route leaves through {nic} ({route})")
    fail_if(findings)


@check(
    id="ACP-NODE-041",
    title="the node's cluster NICs have names the platform's traffic monitoring recognises",
    severity=Severity.LOW,
    scope=Scope.NODE,
    applies=UNDERLAY_NODES,
    refs=[ON_PREMISES],
    remediation=(
        "Use NIC names starting eth, en, wl or ww, or after onboarding follow 'Collect Network Data from "
        "Custom-Named Network Interfaces' so the platform monitors the others."
    ),
)
def check_monitored_nic_names(node: NodeContext) -> None:
    """The platform's NIC traffic monitoring recognises interfaces named like eth*, en*,
    wl* and ww* by default; traffic on the Underlay NIC or on the NIC holding the node's
    address under another name is not shown until the monitoring is reconfigured."""
    nic = underlay_nic(node)
    require(node, "addresses")
    own = {str(ip) for ip in node.spec.addresses}
    used = {nic: "the Underlay NIC"}
    for address in node.facts.addresses:
        if address.address in own:
            used.setdefault(address.interface, f"holds {address.address}")
    odd = [f"{name} ({why})" for name, why in used.items() if not name.startswith(MONITORED_NIC_PREFIXES)]
    if odd:
        warn(f"{node.name}: traffic monitoring does not recognise {', '.join(odd)}: names must start eth, en, wl or ww")
