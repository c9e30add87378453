"""Hosted control planes: the SSH hosts of the management cluster (ACP-HCP-030..039).

The Hosted Control Plane concepts page (seed 003) says a hosted cluster gets its worker
nodes from **SSH hosts**: SSHHost objects of the SSH Infrastructure Provider, each "a
physical or virtual machine accessible via SSH" with an "IP address and SSH port",
"authentication credentials" and a "reuse policy (whether to clean and reuse after
deletion)". For a hosted-control-plane plan the run's kubeconfig is the management
cluster's (checks/hcp.py says why), and these rules read its SSHHost objects
(``acpcheck.sources.sshhosts``, which also says which SSHHost field names are our reading:
the provider publishes no CRD).

Every SSH host the plan does not list already becomes a **worker node target** of the run
before the checks are collected (as a fleet's discovered members become clusters): the
node-preprocessing catalogue (every scope:node check) runs on ``node:<SSHHost name>``
through the same SSH transport, facts probe and checks as on a plan node, logging in with
the plan's ``spec.ssh`` settings (never with the SSHHost's Secret, whose values acpcheck
does not read). A host that cannot be reached is ERROR on its node target, and the other
hosts are judged all the same; a host on an immutable OS is SKIPped by every node check,
with the reason (node preprocessing does not apply to Immutable Infrastructure).
"""

from __future__ import annotations

from acpcheck import NodeSet, Scope, Severity, check, fail_if, manual, skip, warn
from acpcheck.checks.support import HCP_CONCEPTS, MANAGEMENT_CLUSTER
from acpcheck.model.plan import ClusterPlan
from acpcheck.sources.sshhosts import LOGIN_KEYS, SPEC_FIELDS, SSH_HOSTS, SshHost, SshHostView

#: A hosted-control-plane plan whose run reads the management cluster (its kubeconfig).
MANAGEMENT = MANAGEMENT_CLUSTER
LIVE_TAGS = frozenset({"live"})
#: Kubernetes' Secret types, whose keys a login Secret follows (ssh-auth: ssh-privatekey; basic-auth: password).
SECRET_TYPES = "https://kubernetes.io/docs/concepts/configuration/secret/#secret-types"


def _hosts(ssh_hosts: SshHostView) -> list[SshHost]:
    """The SSH hosts; SKIP when the cluster does not serve SSHHost (ACP-HCP-004 FAILs for that plugin)."""
    if not ssh_hosts.served:
        skip(
            f"not applicable: the management cluster serves no {SSH_HOSTS.qualified}/{SSH_HOSTS.version}: the SSH "
            "Infrastructure Provider cluster plugin is not installed (ACP-HCP-004 reports it), so there are no SSH "
            "hosts to check"
        )
    return ssh_hosts.hosts


def _field(key: str) -> str:
    return f"spec.{SPEC_FIELDS[key]}"


@check(
    id="ACP-HCP-030",
    title="every SSH host of the management cluster has an address and an SSH port",
    severity=Severity.HIGH,
    scope=Scope.CLUSTER,
    applies=MANAGEMENT,
    tags=LIVE_TAGS,
    refs=[HCP_CONCEPTS],
    remediation=(
        "Give every SSHHost the machine's IP address and its SSH port (1-65535); create SSH hosts for the hosted "
        "clusters' workers."
    ),
)
def check_ssh_host_addresses(plan: ClusterPlan, ssh_hosts: SshHostView) -> None:
    """An SSHHost defines the machine's "IP address and SSH port" (concepts page): without
    them the SSH Infrastructure Provider cannot reach the machine to make it a worker.
    Each host's address must be an IP address or a DNS name, its port a TCP port (default
    22). No SSH host at all WARNs: the hosted clusters get their workers from SSH hosts,
    but hosts may be added later (our choice: a warning, not a failure).
    """
    hosts = _hosts(ssh_hosts)
    if not hosts:
        warn(
            f"The management cluster lists no SSH hosts ({SSH_HOSTS.qualified}): a hosted cluster's workers are "
            f"provisioned on SSH hosts, so none can be added yet (source: {HCP_CONCEPTS})",
            source=HCP_CONCEPTS,
        )
    findings = []
    for host in hosts:
        address, port = host.address, host.port
        if not isinstance(address, str) or not address.strip():
            findings.append(f"{host.label} has no address ({_field('address')})")
        elif host.ip() is None and not _dns_name(address):
            findings.append(
                f"{host.label}: address {address!r} ({_field('address')}) is neither an IP address nor a name"
            )
        if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
            findings.append(f"{host.label}: port {port!r} ({_field('port')}) is not a TCP port (1-65535)")
    fail_if(
        [f"{finding} (source: {HCP_CONCEPTS})" for finding in findings],
        hosts=[f"{h.namespace}/{h.name}" for h in hosts],
        source=HCP_CONCEPTS,
    )


def _dns_name(text: str) -> bool:
    labels = text.rstrip(".").split(".")
    return all(
        0 < len(label) <= 63 and label.replace("-", "").isalnum() and not label.startswith("-") for label in labels
    )


@check(
    id="ACP-HCP-031",
    title="every SSH host's credential Secret exists and holds a login",
    severity=Severity.HIGH,
    scope=Scope.CLUSTER,
    applies=MANAGEMENT,
    tags=LIVE_TAGS,
    refs=[HCP_CONCEPTS, SECRET_TYPES],
    remediation=(
        "Point each SSHHost's credential reference at a Secret in the management cluster that holds the login: "
        "ssh-privatekey (a kubernetes.io/ssh-auth Secret) or username and password (kubernetes.io/basic-auth)."
    ),
)
def check_ssh_host_credentials(plan: ClusterPlan, ssh_hosts: SshHostView) -> None:
    """An SSHHost defines the "authentication credentials" the provider logs in with
    (concepts page): a reference to a Secret. The Secret must exist and hold a login, in
    the keys of Kubernetes' own Secret types: ``ssh-privatekey`` (kubernetes.io/ssh-auth)
    or ``password`` (kubernetes.io/basic-auth). Only the key NAMES are read: the values
    never reach evidence, a message or the disk. A Secret acpcheck may not read is ERROR.
    """
    findings = []
    unreadable = []
    for host in _hosts(ssh_hosts):
        ref = host.secret_ref
        if ref is None:
            findings.append(f"{host.label} names no credential Secret ({_field('credentials')}.name)")
            continue
        secret = f"Secret {ref[0]}/{ref[1]}"
        if host.secret_status == "absent":
            findings.append(f"{host.label}: its credential {secret} does not exist")
        elif host.secret_status != "ok":
            unreadable.append(f"{host.label}: {secret}: {host.secret_status}: {host.secret_message}")
        elif not set(LOGIN_KEYS) & set(host.secret_keys):
            keys = ", ".join(host.secret_keys) or "no keys"
            findings.append(
                f"{host.label}: its credential {secret} holds no login ({' or '.join(LOGIN_KEYS)}; it has {keys})"
            )
    if findings:
        fail_if([f"{finding} (source: {HCP_CONCEPTS})" for finding in findings], source=HCP_CONCEPTS)
    if unreadable:
        from acpcheck.sources import TargetUnavailable

        raise TargetUnavailable(ssh_hosts.target, "secret", "; ".join(unreadable))


@check(
    id="ACP-HCP-032",
    title="every SSH host answers over SSH from the runner",
    severity=Severity.HIGH,
    scope=Scope.CLUSTER,
    applies=MANAGEMENT,
    tags=LIVE_TAGS,
    refs=[HCP_CONCEPTS],
    remediation=(
        "Make each SSH host reachable on its address and port with the plan's spec.ssh login (the machine up, sshd "
        "listening, no firewall in the way), or remove the SSHHost that stands for a machine that is gone."
    ),
)
def check_ssh_hosts_reachable(plan: ClusterPlan, ssh_hosts: SshHostView, nodes: NodeSet) -> None:
    """An SSHHost is "a machine accessible via SSH" (concepts page): a host that does not
    answer cannot become a worker. acpcheck logs in to every host with the plan's
    ``spec.ssh`` settings, as a node target of the run (its facts probe is the node checks'
    one); this rule reads how that went. A host that was not reached FAILs here, naming
    the host, its address and the reason, and every node check on it is ERROR; the other
    hosts are judged all the same. A host that is no node target (its address is no IP
    address) is left to a person (MANUAL). Hosts on an immutable OS are reached too and
    SKIPped by every node check, with the reason (``immutable_host_reason``).
    """
    hosts = _hosts(ssh_hosts)
    if not hosts:
        skip("not applicable: the management cluster lists no SSH hosts (ACP-HCP-030)")
    findings, unknown = [], []
    targets = {member.name for member in nodes.members} | set(nodes.failures)
    for host in hosts:
        if host.node is None:
            unknown.append(f"{host.label}: not tried: {host.not_a_node}")
            continue
        if host.node not in targets:
            unknown.append(f"{host.label}: not tried: it is no node target of this run (listed after the run began?)")
            continue
        failure = nodes.failures.get(host.node)
        if failure is not None:
            findings.append(
                f"{host.label} ({host.address}:{host.port}, node:{host.node}) was not reached over SSH: "
                f"{failure.kind}: {failure.message}"
            )
    fail_if([f"{finding} (source: {HCP_CONCEPTS})" for finding in findings], source=HCP_CONCEPTS)
    if unknown:
        manual("; ".join(unknown) + ": check by hand that these hosts answer over SSH")


@check(
    id="ACP-HCP-033",
    title="every SSH host states its reuse policy",
    severity=Severity.LOW,
    scope=Scope.CLUSTER,
    applies=MANAGEMENT,
    tags=LIVE_TAGS,
    refs=[HCP_CONCEPTS],
    remediation=(
        "Set each SSHHost's reuse policy: whether the SSH Infrastructure Provider cleans and reuses the machine after "
        "its worker is deleted. Know which hosts get wiped before deleting a hosted cluster's workers."
    ),
)
def check_ssh_host_reuse_policy(plan: ClusterPlan, ssh_hosts: SshHostView) -> None:
    """The concepts page says an SSHHost defines its "reuse policy (whether to clean and
    reuse after deletion)": deleting a worker then cleans the machine for another one. The
    docs give no values, so any stated policy passes, and the PASS lists every host's
    policy; a host that states none is left to a person (MANUAL): what happens to it after
    deletion is not known.
    """
    hosts = _hosts(ssh_hosts)
    if not hosts:
        skip("not applicable: the management cluster lists no SSH hosts (ACP-HCP-030)")
    missing = [host for host in hosts if not isinstance(host.reuse_policy, str) or not host.reuse_policy]
    if missing:
        stated = [host for host in hosts if host not in missing]
        manual(
            f"{', '.join(host.label for host in missing)} state(s) no reuse policy ({_field('reuse')}): check with "
            "the SSH Infrastructure Provider whether these machines are cleaned and reused after deletion (source: "
            f"{HCP_CONCEPTS})" + (f". Stated: {_policies(stated)}" if stated else "")
        )


def _policies(hosts: list[SshHost]) -> str:
    return "; ".join(f"{host.label}: {_field('reuse')} {host.reuse_policy}" for host in hosts)
