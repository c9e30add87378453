"""SSH hosts of a hosted control plane's management cluster: the ``ssh_hosts`` evidence,
and how those hosts become node targets of the run.

The Hosted Control Plane concepts page (https://docs.alauda.io/hosted-control-plane/1.0/concepts.html)
says an SSHHost "represents a physical or virtual machine accessible via SSH" and defines its
"IP address and SSH port", its "authentication credentials" and its "reuse policy (whether to
clean and reuse after deletion)". The SSH Infrastructure Provider is Alauda's own and no CRD of
it is published, so the FIELD NAMES below are our reading (one place: ``SPEC_FIELDS``; correct
them here when the provider's schema is known):

- ``spec.address``: the host's IP address (or DNS name);
- ``spec.port``: its SSH port (default 22);
- ``spec.credentialSecretRef``: ``{name, namespace}`` of a Secret in the management cluster
  (namespace default: the SSHHost's) holding the login, as Kubernetes' own Secret types do:
  ``kubernetes.io/ssh-auth`` (``ssh-privatekey``) or ``kubernetes.io/basic-auth``
  (``username``, ``password``);
- ``spec.reusePolicy``: whether the provider cleans and reuses the host after its machine is deleted.

How a run uses them. For a hosted-control-plane plan whose run reads the management cluster
(its kubeconfig), ``prepare_run`` takes this inventory BEFORE the checks are collected, as a
fleet run discovers its members, and adds every SSH host that the plan does not list already
(by address) to the plan as a worker node (``with_ssh_hosts``): the node-preprocessing
catalogue then runs on it through the same SSH transport, facts probe and node checks as on
any plan node. The runner logs in to the hosts with the PLAN's ``spec.ssh`` settings (key
file, password variable or file, proxy, host key policy); the SSHHost's credential Secret is
only checked for existence and key NAMES: its values are never read into evidence, output
or disk (``_secret_keys`` keeps the key names and drops the rest at once).
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from acpcheck.sources.base import GatherContext, TargetUnavailable
from acpcheck.transport.kube import Read

if TYPE_CHECKING:
    from acpcheck.model.plan import ClusterPlan

EVIDENCE_FILE = "sshhosts.json"
SCHEMA = "acpcheck/sshhosts/v1"
#: Our reading of the SSHHost's fields (see the module docstring): what each is called in ``spec``.
SPEC_FIELDS = {
    "address": "address",
    "port": "port",
    "credentials": "credentialSecretRef",
    "reuse": "reusePolicy",
}
DEFAULT_SSH_PORT = 22
#: A login credential key: one of these must be in the SSHHost's Secret (Kubernetes' ssh-auth and
#: basic-auth Secret types, https://kubernetes.io/docs/concepts/configuration/secret/#secret-types).
LOGIN_KEYS = ("ssh-privatekey", "password")
#: The group, version and plural the SSH Infrastructure Provider serves SSHHost in (acpcheck/matrix/hcp_plugins.yaml).
SSH_HOSTS = Read(
    "ssh-hosts",
    "infrastructure.cluster.x-k8s.io",
    "v1beta1",
    "sshhosts",
    summarise=lambda obj: {
        "name": (obj.get("metadata") or {}).get("name"),
        "namespace": (obj.get("metadata") or {}).get("namespace"),
        "spec": {key: (obj.get("spec") or {}).get(name) for key, name in SPEC_FIELDS.items()},
    },
)


def _secret_keys(secret: dict[str, Any]) -> dict[str, Any]:
    """A Secret's type and key NAMES: its values are dropped here, before anything keeps the object."""
    return {"type": secret.get("type"), "keys": sorted((secret.get("data") or {}).keys())}


def _secret_read(namespace: str, name: str) -> Read:
    return Read(
        f"secret/{namespace}/{name}", "", "v1", "secrets", name=name, namespace=namespace, summarise=_secret_keys
    )


@dataclass
class SshHost:
    """One SSHHost as acpcheck reads it (no credential values)."""

    name: str
    namespace: str
    address: Any = None
    port: Any = None
    reuse_policy: Any = None
    #: the credential reference as given (``{name, namespace}``) or None
    credentials: Any = None
    #: the referenced Secret: ok (with ``secret_keys``), absent, or a read failure's kind and message
    secret_status: str | None = None
    secret_type: str | None = None
    secret_keys: list[str] = field(default_factory=list)
    secret_message: str = ""
    #: the node target that stands for the host in this run (None: it could not be one, ``not_a_node`` says why)
    node: str | None = None
    not_a_node: str | None = None

    @property
    def label(self) -> str:
        return f"SSHHost {self.namespace}/{self.name}"

    @property
    def secret_ref(self) -> tuple[str, str] | None:
        ref = self.credentials
        if not isinstance(ref, dict) or not isinstance(ref.get("name"), str) or not ref["name"]:
            return None
        namespace = ref.get("namespace") if isinstance(ref.get("namespace"), str) and ref.get("namespace") else None
        return namespace or self.namespace, ref["name"]

    def ip(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
        try:
            return ipaddress.ip_address(str(self.address).strip("[]")) if isinstance(self.address, str) else None
        except ValueError:
            return None


@dataclass
class SshHostInventory:
    """What the management cluster says about its SSH hosts. ``failure``: nothing could be read
    (kind, message); ``served`` False: the cluster does not serve SSHHost (the plugin is missing)."""

    target: str
    served: bool = True
    failure: tuple[str, str] | None = None
    hosts: list[SshHost] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "target": self.target,
            "served": self.served,
            "failure": list(self.failure) if self.failure else None,
            "hosts": [asdict(host) for host in self.hosts],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SshHostInventory:
        if data.get("schema") != SCHEMA:
            raise ValueError(f"not {SCHEMA} evidence")
        failure = data.get("failure")
        return cls(
            data["target"],
            bool(data.get("served", True)),
            (failure[0], failure[1]) if failure else None,
            [SshHost(**host) for host in data.get("hosts") or []],
        )


def take_inventory(plan: ClusterPlan) -> SshHostInventory:
    """The SSH hosts of the management cluster the run's kubeconfig names, with the key names
    of their credential Secrets (two reads through ``gather_cluster``; never raises)."""
    from acpcheck.sources.cluster import gather_cluster

    target = f"cluster:{plan.metadata.name}"
    listed = gather_cluster(plan, reads=(SSH_HOSTS,))
    if listed.failure is not None:
        return SshHostInventory(target, failure=listed.failure)
    result = listed.reads[SSH_HOSTS.key]
    if result.status == "not-served":
        return SshHostInventory(target, served=False)
    if result.status != "ok":
        return SshHostInventory(target, failure=(result.status, result.message))
    hosts = []
    for item in result.items or []:
        spec = item.get("spec") or {}
        hosts.append(
            SshHost(
                name=str(item.get("name")),
                namespace=str(item.get("namespace") or "default"),
                address=spec.get("address"),
                port=spec.get("port", DEFAULT_SSH_PORT) if spec.get("port") is not None else DEFAULT_SSH_PORT,
                reuse_policy=spec.get("reuse"),
                credentials=spec.get("credentials"),
            )
        )
    references = {ref for host in hosts if (ref := host.secret_ref) is not None}
    if references:
        reads = tuple(_secret_read(namespace, name) for namespace, name in sorted(references))
        secrets = gather_cluster(plan, reads=reads)
        for host in hosts:
            ref = host.secret_ref
            if ref is None:
                continue
            if secrets.failure is not None:
                host.secret_status, host.secret_message = secrets.failure
                continue
            found = secrets.reads.get(_secret_read(*ref).key)
            if found is None:
                host.secret_status, host.secret_message = "error", "not read"
                continue
            host.secret_status, host.secret_message = found.status, found.message
            if found.status == "ok" and found.object is not None:
                host.secret_type = found.object.get("type")
                host.secret_keys = list(found.object.get("keys") or [])
    return SshHostInventory(target, hosts=hosts)


def with_ssh_hosts(plan: ClusterPlan, inventory: SshHostInventory) -> ClusterPlan:
    """``plan`` with every SSH host it does not list yet (by address) added as a worker node,
    named after its SSHHost (``<namespace>-<name>`` when a plan node has that name already).
    Sets each host's ``node`` (its node target's name) or ``not_a_node`` (why it has none)."""
    from pydantic import ValidationError

    from acpcheck.model.plan import Node, SshOverride

    by_address = {str(address): node.name for node in plan.spec.nodes for address in node.addresses}
    by_address.update({node.ssh_host: node.name for node in plan.spec.nodes if node.ssh_host})
    taken = {node.name for node in plan.spec.nodes}
    # The management cluster names these machines, not the plan: acpcheck sends them only a key
    # login, never the plan's password (anyone who may write SSHHosts could otherwise collect it).
    auth = plan.spec.ssh.auth
    password_login = bool(auth.password_env or auth.password_file)
    added: list[Node] = []
    for host in inventory.hosts:
        ip = host.ip()
        if ip is None:
            host.not_a_node = f"its address {host.address!r} is no IP address (a node target needs one)"
            continue
        if not isinstance(host.port, int) or not 1 <= host.port <= 65535:
            host.not_a_node = f"its port {host.port!r} is no TCP port"
            continue
        if str(ip) in by_address:
            host.node = by_address[str(ip)]
            continue
        if ip.is_loopback or ip.is_unspecified or ip.is_link_local or ip.is_multicast:
            host.not_a_node = f"its address {ip} is no machine's own (loopback, unspecified, link-local or multicast)"
            continue
        if password_login:
            host.not_a_node = (
                "the plan's SSH login is a password, which acpcheck sends only to the nodes the plan lists: list "
                "this host in spec.nodes, or log in with a key (spec.ssh.auth.privateKeyFile), to have it judged"
            )
            continue
        name = host.name if host.name not in taken else f"{host.namespace}-{host.name}"
        address = {"ipv4": str(ip)} if ip.version == 4 else {"ipv6": str(ip)}
        ssh = SshOverride(port=host.port) if host.port != plan.spec.ssh.port else None
        try:
            node = Node.model_validate({"name": name, "role": "worker", **address, "ssh": ssh})
        except ValidationError as error:
            problem = error.errors()[0]
            host.not_a_node = f"it makes no node target ({'.'.join(map(str, problem['loc']))}: {problem['msg']})"
            continue
        if node.name in taken:
            host.not_a_node = f"its node name {node.name} is taken by another node"
            continue
        taken.add(node.name)
        added.append(node)
        by_address[str(ip)] = name
        host.node = name
    if not added:
        return plan
    spec = plan.spec.model_copy(update={"nodes": [*plan.spec.nodes, *added]})
    return plan.model_copy(update={"spec": spec})


def discovers_hosts(plan: ClusterPlan) -> bool:
    """Whether a run of ``plan`` reads SSH hosts: a hosted-control-plane plan with a kubeconfig."""
    from acpcheck.transport.kube import kubeconfig_of

    return plan.spec.cluster.type == "hosted-control-plane" and kubeconfig_of(plan)[0] is not None


@dataclass(frozen=True)
class SshHostView:
    """What a check receives as ``ssh_hosts``: the inventory of the run's management cluster."""

    inventory: SshHostInventory

    @property
    def target(self) -> str:
        return self.inventory.target

    @property
    def served(self) -> bool:
        return self.inventory.served

    @property
    def hosts(self) -> list[SshHost]:
        return self.inventory.hosts


class SshHostSource:
    """The ``ssh_hosts`` evidence. ``prepare_run`` takes it before collection (the hosts are
    node targets); gathering it again here is one list and one get per Secret, saved for ``--facts``."""

    name: ClassVar[str] = "sshhosts"
    order: ClassVar[int] = -1

    def __init__(self) -> None:
        self.taken: SshHostInventory | None = None

    def gather(self, context: GatherContext) -> SshHostInventory:
        inventory = take_inventory(context.plan)
        with_ssh_hosts(context.plan, inventory)  # the node names, as prepare_run gave them
        if context.progress is not None:
            context.progress(self.name, 1, 1, inventory.target, inventory.failure is None)
        return inventory

    def unavailable(self, plan: ClusterPlan, message: str) -> SshHostInventory:
        return SshHostInventory(f"cluster:{plan.metadata.name}", failure=("error", message))

    def save(self, evidence: SshHostInventory, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / EVIDENCE_FILE).write_text(json.dumps(evidence.as_dict(), indent=1) + "\n")

    def load(self, directory: Path, plan: ClusterPlan) -> SshHostInventory:
        from acpcheck.errors import InputError, Problem

        path = directory / EVIDENCE_FILE
        if not path.exists():
            return SshHostInventory(
                f"cluster:{plan.metadata.name}", failure=("missing", f"no SSH hosts in {directory}")
            )
        try:
            return SshHostInventory.from_dict(json.loads(path.read_text()))
        except (ValueError, KeyError, TypeError, IndexError) as error:
            raise InputError(
                [Problem(str(path), None, "", f"damaged SSH host evidence: {type(error).__name__}: {error}")]
            ) from None

    def provide(self, parameter: str, evidence: SshHostInventory, plan: ClusterPlan, param: Any) -> SshHostView:
        if evidence.failure is not None:
            raise TargetUnavailable(evidence.target, *evidence.failure)
        return SshHostView(evidence)


def immutable_host_reason(plan: ClusterPlan, name: str, os_id: str | None, os_pretty_name: str | None) -> str | None:
    """Why node preprocessing does not judge node ``name`` of a hosted-control-plane plan (its
    workers are SSH hosts): it runs an immutable OS (``acpcheck.matrix.os``: the OS ids and names
    whose nodes are image-provisioned), and node preprocessing "does not apply to Immutable
    Infrastructure". None for any other node or plan."""
    from acpcheck.constants import PREPROCESSING
    from acpcheck.matrix.os import IMMUTABLE_OS_IDS, IMMUTABLE_OS_NAMES

    if plan.spec.cluster.type != "hosted-control-plane":
        return None
    if os_id not in IMMUTABLE_OS_IDS and not any(word in (os_pretty_name or "") for word in IMMUTABLE_OS_NAMES):
        return None
    return (
        f"not applicable: SSH host {name} runs an immutable OS ({os_pretty_name or os_id}): node preprocessing does "
        f"not apply to Immutable Infrastructure, whose nodes are image-provisioned (source: {PREPROCESSING})"
    )
