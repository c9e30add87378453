"""The cluster plan: the ACP "Create Cluster" form as YAML (see docs/interfaces.md).

The schema checks form, not policy: a CIDR that does not parse, an unknown field or
a literal password is bad input (exit 4, before anything connects); two CIDRs that
overlap or a VRID of 300 are findings of the checks (FAIL, exit 1), because those
carry a rule, a source and a remediation that the user should see.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from netaddr import IPAddress, IPNetwork
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PrivateAttr,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from acpcheck.addressing import is_domain, is_ip, parse_cidr, parse_ip
from acpcheck.errors import InputError, Problem
from acpcheck.model.validation import (
    FORMAT_EXAMPLES,
    SECRET_KEYS,
    find_literal_secrets,
    validate_document,
)
from acpcheck.yamlsource import FieldPath, LocatedDocument, dotted, load_yaml

# ---------------------------------------------------------------------------
# Field types. Each parses with netaddr and serialises back to text.


def _to_cidrs(value: Any) -> tuple[IPNetwork, ...]:
    items = value if isinstance(value, (list, tuple)) else [value]
    if not 1 <= len(items) <= 2:
        raise ValueError("give one CIDR, or for dual-stack a list with one CIDR per family")
    networks = tuple(parse_cidr(item) for item in items)
    if len({n.version for n in networks}) != len(networks):
        raise ValueError("a dual-stack list needs one IPv4 and one IPv6 CIDR, not two of one family")
    return networks


def _to_ips(value: Any) -> tuple[IPAddress, ...]:
    items = value if isinstance(value, (list, tuple)) else [value]
    if not 1 <= len(items) <= 2:
        raise ValueError("give one IP address, or for dual-stack a list with one per family")
    return tuple(parse_ip(item) for item in items)


def _to_ip_of(version: int) -> Any:
    def convert(value: Any) -> IPAddress:
        ip = parse_ip(value)
        if ip.version != version:
            raise ValueError(f"{value!r} is not an IPv{version} address")
        return ip

    return convert


def _address_or_domain(value: Any) -> str:
    if not isinstance(value, str) or not (is_ip(value) or is_domain(value)):
        raise ValueError(f"{value!r} is neither an IP address nor a domain name")
    return value


def _show_all(values: tuple[Any, ...]) -> str | list[str]:
    return str(values[0]) if len(values) == 1 else [str(v) for v in values]


_CIDR_SCHEMA = {
    "anyOf": [
        {"type": "string", "description": "CIDR, e.g. 10.3.0.0/16"},
        {
            "type": "array",
            "items": {"type": "string"},
            "minItems": 1,
            "maxItems": 2,
            "description": "dual-stack: one CIDR per family",
        },
    ]
}
CIDRs = Annotated[
    tuple[IPNetwork, ...],
    BeforeValidator(_to_cidrs),
    PlainSerializer(_show_all),
    WithJsonSchema(_CIDR_SCHEMA),
]
IPs = Annotated[
    tuple[IPAddress, ...],
    BeforeValidator(_to_ips),
    PlainSerializer(_show_all),
    WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "maxItems": 2}]}),
]
IPv4 = Annotated[
    IPAddress, BeforeValidator(_to_ip_of(4)), PlainSerializer(str), WithJsonSchema({"type": "string", "format": "ipv4"})
]
IPv6 = Annotated[
    IPAddress, BeforeValidator(_to_ip_of(6)), PlainSerializer(str), WithJsonSchema({"type": "string", "format": "ipv6"})
]
IPText = Annotated[str, BeforeValidator(lambda v: str(parse_ip(v))), WithJsonSchema({"type": "string"})]
AddressOrDomain = Annotated[str, BeforeValidator(_address_or_domain)]
EnvName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="name of an environment variable")]
VERSION_PATTERN = r"^v?\d+\.\d+(\.\d+)?([-+][0-9A-Za-z.-]+)?$"
ACP_VERSION_PATTERN = r"^\d+\.\d+(\.\d+)?$"
FORMAT_EXAMPLES[VERSION_PATTERN] = "1.34.5"
FORMAT_EXAMPLES[ACP_VERSION_PATTERN] = "4.3 or 4.3.1"
FORMAT_EXAMPLES[r"^[A-Za-z_][A-Za-z0-9_]*$"] = "SSH_PASSWORD (the name of an environment variable)"
#: A Kubernetes object name (DNS-1123 subdomain), e.g. of a DataStore.
OBJECT_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
FORMAT_EXAMPLES[OBJECT_NAME_PATTERN] = "default-datastore (lower-case letters, digits, '-' and '.')"


# Titles of the JSON Schema, written for people: a field's (or a section's) name in words,
# with these words and phrases in their usual form ("API version", not pydantic's "Apiversion").
TITLE_WORDS = {
    "acp": "ACP",
    "api": "API",
    "args": "arguments",
    "auth": "authentication",
    "cert": "certificate",
    "cidr": "CIDR",
    "env": "environment variable",
    "etcd": "etcd",
    "http": "HTTP",
    "id": "ID",
    "ip": "IP",
    "ips": "IPs",
    "ipv4": "IPv4",
    "ipv6": "IPv6",
    "nic": "NIC",
    "seconds": "(seconds)",
    "ssh": "SSH",
    "url": "URL",
    "vip": "VIP",
    "vlan": "VLAN",
    "vrid": "VRID",
}
TITLE_PHRASES = {"kube_ovn": "Kube-OVN", "self_built": "self-built"}
#: Names written in lower case even at the start of a title.
LOWER_CASE_NAMES = {"etcd"}


def schema_title(name: str) -> str:
    """A title for people from a field's name (``api_version``: "API version") or a section's
    class name (``SelfBuiltVip``: "Self-built VIP"); the first word is capitalised unless
    it is a name written in lower case ("etcd encryption")."""
    snake = re.sub(
        r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z]{2})", "_", name
    ).lower()  # nodeIPCount: node_ip_count
    for phrase, written in TITLE_PHRASES.items():
        snake = re.sub(rf"(?<![a-z]){phrase}(?![a-z])", written, snake)
    words = snake.split("_")
    titled = [TITLE_WORDS.get(word, word) for word in words]
    if words[0] not in LOWER_CASE_NAMES:
        titled[0] = titled[0][:1].upper() + titled[0][1:]
    return " ".join(titled)


class Spec(BaseModel):
    """Base of every plan section: camelCase keys, unknown keys are errors, and values of
    the type the JSON Schema says (strict: ``port: "22"`` or ``enabled: "true"`` is
    refused by the loader as by an editor, not converted)."""

    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
        arbitrary_types_allowed=True,
        strict=True,
        field_title_generator=lambda name, _field: schema_title(name),
        model_title_generator=lambda model: schema_title(model.__name__),
    )


# ---------------------------------------------------------------------------
# Sections, in the order of the ACP "Create Cluster" form.


class Metadata(Spec):
    """Who the plan is about."""

    name: str = Field(
        min_length=1, max_length=253, description="the cluster's name (the live cluster's target is cluster:<name>)"
    )


class Acp(Spec):
    """The ACP version the plan targets (the form's platform version)."""

    version: str = Field(pattern=ACP_VERSION_PATTERN, description="target ACP version, e.g. 4.3 or 4.3.1")
    upgrade_from: str | None = Field(
        default=None,
        pattern=ACP_VERSION_PATTERN,
        description="set when the plan describes an existing cluster to be upgraded from this ACP version",
    )


ClusterRole = Literal["global", "workload"]
ClusterType = Literal["on-premise", "hosted-control-plane", "imported", "registered", "immutable"]
#: Cluster types whose Kubernetes is installed and managed by ACP itself.
PLATFORM_MANAGED: frozenset[str] = frozenset({"on-premise", "hosted-control-plane", "immutable"})
#: Cluster types that ACP connects to but did not build ("third-party").
THIRD_PARTY: frozenset[str] = frozenset({"imported", "registered"})
#: The public clouds whose managed Kubernetes ACP takes on (EKS, AKS, GKE: "Connected Clusters", Public Cloud
#: Kubernetes); their nodes belong to the cloud provider, never to ACP's SSH.
CloudProvider = Literal["eks", "aks", "gke"]


class Cluster(Spec):
    """The cluster itself: its role, how ACP builds it, its Kubernetes and runtime (the form's Basic Info)."""

    role: ClusterRole = Field(
        default="workload", description="global: the cluster that runs ACP itself; workload: a cluster ACP manages"
    )
    type: ClusterType = Field(
        default="on-premise",
        description=(
            "how the cluster comes to ACP: built on-premise (or immutable, or with a hosted control plane) or "
            "imported/registered"
        ),
    )
    cloud_provider: CloudProvider | None = Field(
        default=None,
        description=(
            "the public cloud whose managed Kubernetes this is (eks, aks or gke; usually with type imported or "
            "registered): its nodes are the provider's, so the checks run on nodes over SSH are skipped; null: none"
        ),
    )
    kubernetes_version: str = Field(
        pattern=VERSION_PATTERN,
        description="the Kubernetes version, e.g. 1.34.5; for an upgrade plan, what the cluster runs today",
    )
    container_runtime: Literal["containerd", "docker"] = Field(
        default="containerd", description="the container runtime of the nodes"
    )
    container_runtime_version: str | None = Field(
        default=None,
        pattern=VERSION_PATTERN,
        description=(
            "the runtime's version, e.g. 1.7.27-4 (hosted control plane: as its SSH machine template specifies it); "
            "null: not stated"
        ),
    )
    ip_family: Literal["ipv4", "ipv6", "dual-stack"] = Field(
        default="ipv4", description="the address families of the cluster network"
    )
    node_name: Literal["ip", "hostname"] = Field(
        default="ip", description="what names the Kubernetes nodes: their IP address or their hostname"
    )
    annotations: dict[str, str] = Field(
        default_factory=dict, description="cluster annotations, e.g. cpaas.io/platform-url"
    )
    feature_gates: list[str] = Field(
        default_factory=list, description="platform feature gates enabled for this cluster, e.g. cri-docker"
    )


class SelfBuiltVip(Spec):
    """A VIP that ACP's keepalived serves on the control-plane nodes, instead of an external load balancer."""

    enabled: bool = Field(
        default=False, description="true: ACP serves endpoint.address itself (keepalived on the control-plane nodes)"
    )
    vrid: int | None = Field(default=None, description="keepalived virtual router id (ACP requires 1-255)")


class Endpoint(Spec):
    """How clients reach the cluster's API server (the form's Access Address)."""

    address: str | None = Field(default=None, description="VIP or domain (the form's 'IP Address / Domain')")
    self_built_vip: SelfBuiltVip = Field(default_factory=SelfBuiltVip, alias="selfBuiltVIP")
    external_access: AddressOrDomain | None = Field(
        default=None, description="IP or domain, when the global cluster and this cluster are on different networks"
    )

    @field_validator("address")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        return None if value is None else _address_or_domain(value)


class KubeOvn(Spec):
    """Kube-OVN's settings (network plugin kube-ovn)."""

    transmit_mode: Literal["overlay", "underlay"] = Field(
        default="overlay", description="overlay (Geneve tunnels) or underlay (the physical network's VLAN)"
    )
    join_cidr: CIDRs | None = Field(
        default=None, alias="joinCIDR", description="the join subnet between nodes and pods; null: Kube-OVN's default"
    )
    gateway: IPs | None = Field(
        default=None, description="underlay: the physical network's gateway (one per family for dual-stack)"
    )
    vlan_id: int = Field(default=0, ge=0, le=4094, alias="vlanID", description="underlay: the VLAN id (0: untagged)")
    reserved_ips: list[IPText] = Field(
        default_factory=list, alias="reservedIPs", description="underlay: addresses Kube-OVN must not give to pods"
    )


class Network(Spec):
    """The cluster network (the form's Network section)."""

    plugin: Literal["kube-ovn", "calico", "flannel", "custom"] = Field(
        default="kube-ovn", description="the network plugin (CNI)"
    )
    cluster_cidr: CIDRs = Field(alias="clusterCIDR", description="the pods' addresses (the form's default subnet)")
    service_cidr: CIDRs = Field(alias="serviceCIDR", description="the Services' ClusterIPs")
    kube_ovn: KubeOvn = Field(default_factory=KubeOvn)
    node_ip_count: int | None = Field(default=None, gt=0, alias="nodeIPCount", description="Flannel: pod IPs per node")
    nic: str | None = Field(
        default=None,
        description="the network interface the cluster network uses on every node (a node may name its own)",
    )


class ManagementCluster(Spec):
    """Hosted control plane: the management cluster that runs this cluster's control plane."""

    pod_cidr: CIDRs | None = Field(default=None, alias="podCIDR", description="the management cluster's pod CIDR")
    service_cidr: CIDRs | None = Field(
        default=None, alias="serviceCIDR", description="the management cluster's Service CIDR"
    )
    data_store: str | None = Field(
        default=None,
        max_length=253,
        pattern=OBJECT_NAME_PATTERN,
        description=(
            "the DataStore (kamaji.clastix.io, external etcd) in the management cluster that keeps this cluster's "
            "control-plane data: the name the KamajiControlPlane's DataStore reference gives"
        ),
    )
    # ACP-HCP-014: where DataStore endpoints only the management cluster resolves are reached.
    ssh_nodes: list[IPText] = Field(
        default_factory=list,
        alias="sshNodes",
        description=(
            "addresses of management-cluster nodes acpcheck may log in to over SSH (spec.ssh's port, user and key) "
            "to reach the DataStore endpoints that only the management cluster resolves or routes (Service names, "
            "pod and Service addresses); empty: those endpoints are left to a person (MANUAL)"
        ),
    )


class Kubelet(Spec):
    """The kubelet's settings on every node."""

    extra_args: dict[str, str | int] = Field(
        default_factory=dict, description="extra kubelet flags by name, e.g. {max-pods: 200}"
    )


class ApiServer(Spec):
    """The API server's settings."""

    public_alternative_names: list[str] = Field(
        default_factory=list, description="extra names and addresses in the API server's certificate (SANs)"
    )


class RegistryExternalAddress(Spec):
    """An external address for the built-in registry (the global cluster's "Add External Address
    for Built-in Registry"): a TLS Secret, an Ingress and a Service in kube-system."""

    domain: str = Field(
        min_length=1,
        max_length=253,
        pattern=r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$",
        description=(
            "the registry's domain name, reachable from the workload nodes and different from the platform "
            "access address"
        ),
    )
    cert_file: str = Field(
        min_length=1,
        description=(
            "PEM certificate (chain) for the domain, for Secret registry-address.tls; relative to the plan file"
        ),
    )
    key_file: str = Field(
        min_length=1,
        description=(
            "PEM private key of the certificate; relative to the plan file (read when a step creates the Secret, "
            "never copied into reports or journals)"
        ),
    )
    # ACP-REG-007: the address the domain points to.
    address: IPText | None = Field(
        default=None,
        description=(
            "the IP address the domain points to (the page's prerequisite), where acpcheck proves that port 443 "
            "forwards to every global control-plane node (ACP-REG-007); null: the runner resolves the domain"
        ),
    )


# --- private registry: the credential, CA and images ACP-IMG-001…003 use (checks/images.py) ---

#: An image reference as the registry API takes it: [host[:port]/]repository[:tag][@sha256:digest]
#: (the distribution reference grammar, simplified: lower-case path components).
_IMAGE_REFERENCE = (
    r"^(?:(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+|localhost|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?/|[A-Za-z0-9.-]+:[0-9]{1,5}/)?"
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9._-]{0,127})?(?:@sha256:[0-9a-f]{64})?$"
)


class RegistryCredential(Spec):
    """The account nodes pull with: a user name and its password BY REFERENCE (a file or an
    environment variable on the machine that runs acpcheck; never the password itself). The
    password reaches each node on the standard input of the probe, never on a command line."""

    username: str = Field(min_length=1, max_length=255, pattern=r"^[^\s:]+$", description="the registry user name")
    password_file: str | None = Field(
        default=None, description="a file that holds the password (relative to the plan file, or absolute)"
    )
    password_env: EnvName | None = Field(default=None, description="the environment variable that holds the password")

    @model_validator(mode="after")
    def _one_reference(self) -> RegistryCredential:
        if bool(self.password_file) == bool(self.password_env):
            raise ValueError("give the password by reference: passwordFile or passwordEnv (exactly one)")
        return self


class Registry(Spec):
    """Where the cluster pulls its images from."""

    type: Literal["platform", "private", "public"] = Field(
        default="platform", description="the platform's own registry, a private one, or the public one"
    )
    address: str | None = Field(
        default=None,
        pattern=r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?)(:[0-9]{1,5})?$",
        description="a private registry's address (host[:port], as image references name it; no scheme, no path)",
    )
    external_address: RegistryExternalAddress | None = Field(
        default=None,
        description=(
            "global cluster: the built-in registry's external address to set up (ACP-REG-001…003); null: not wanted"
        ),
    )
    # --- private registry (checks/images.py, ACP-IMG-001…003; ACP-REG-009 reads ca_file, credential, images) ---
    ca_file: str | None = Field(
        default=None,
        description=(
            "PEM CA certificate(s) that signed the registry's certificate, relative to the plan file; null: each "
            "node's own trust store"
        ),
    )
    credential: RegistryCredential | None = Field(
        default=None, description="the account the nodes pull with (password by reference only); null: anonymous"
    )
    images: list[str] = Field(
        default_factory=list,
        max_length=1000,
        description=(
            "images the install needs, relative to the registry address ([address/]repository[:tag][@digest]); "
            'checked present by manifest requests. The ACP docs publish no list of required images ("contact '
            "technical support\"): name a sample, e.g. from your ACP release's image list"
        ),
    )

    @field_validator("images")
    @classmethod
    def _image_references(cls, value: list[str]) -> list[str]:
        for item in value:
            if len(item) > 512 or not re.match(_IMAGE_REFERENCE, item):
                raise ValueError(
                    f"{item[:80]!r} is not an image reference ([host[:port]/]repository[:tag][@sha256:<64 hex>], "
                    "lower-case repository path)"
                )
        return value

    @model_validator(mode="after")
    def _private_needs_address(self) -> Registry:
        if self.type == "private" and not self.address and (self.credential or self.images or self.ca_file):
            raise ValueError("a private registry needs its address (host[:port]) for credential, caFile and images")
        return self


class NodeRoleAssignment(Spec):
    """A node made an infra, log or custom role node: label node-role.kubernetes.io/<role> and taint
    node-role.kubernetes.io/<role>=<taint>:NoSchedule (Cluster Node Planning)."""

    node: str = Field(min_length=1, max_length=253, description="the Kubernetes Node's name")
    role: str = Field(
        min_length=1,
        max_length=63,
        pattern=r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$",
        description="infra, log, or a custom role name (not control-plane, master or worker)",
    )
    taint: str | None = Field(
        default="reserved",
        max_length=63,
        pattern=r"^([A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?)?$",
        description="the taint's value (the docs use reserved); null: no taint is wanted, only the label",
    )

    @field_validator("role")
    @classmethod
    def _not_builtin(cls, value: str) -> str:
        if value in ("control-plane", "master", "worker"):
            raise ValueError(f"{value} is a built-in role, not an infra/log/custom role")
        return value


class LoadBalancer(Spec):
    """The load balancer in front of the cluster's endpoint, as the LB proof needs it (ACP-LB-*)."""

    ports: dict[str, Annotated[int, Field(ge=1, le=65535)] | None] = Field(
        default_factory=dict,
        description=(
            "required LB ports overridden by name (names in acpcheck/matrix/ports.yaml), e.g. {https: 8443} for a "
            "customised 443; null drops a port"
        ),
    )
    http_enabled: bool = Field(
        default=False,
        description="global: the platform's HTTP port is enabled (off by default), so the LB forwards it too",
    )
    disaster_recovery: bool = Field(
        default=False, description="global: disaster recovery is planned, so the LB also forwards etcd's 2379"
    )
    proof_seconds: float = Field(
        default=10,
        gt=0,
        le=300,
        description=(
            "how long the LB proof waits for a backend to answer through the LB after its listener started: above the "
            "LB's health-check interval x rise (the proof ends as soon as every backend has answered)"
        ),
    )

    @field_validator("ports")
    @classmethod
    def _known_names(cls, value: dict[str, int | None]) -> dict[str, int | None]:
        from acpcheck.matrix.ports import lb_port_names

        known = lb_port_names()
        unknown = [name for name in value if name not in known]
        if unknown:
            raise ValueError(f"unknown LB port name(s) {', '.join(map(repr, unknown))} (known: {', '.join(known)})")
        return value


class SshAuth(Spec):
    """Secrets only by reference: a file path or the name of an environment variable."""

    private_key_file: str | None = Field(default=None, description="the private key file (e.g. ~/.ssh/id_ed25519)")
    passphrase_env: EnvName | None = Field(
        default=None, description="the environment variable that holds the private key's passphrase"
    )
    password_env: EnvName | None = Field(
        default=None, description="the environment variable that holds the SSH password"
    )
    password_file: str | None = Field(default=None, description="a file that holds the SSH password")

    @model_validator(mode="after")
    def _one_method(self) -> SshAuth:
        if self.password_env and self.password_file:
            raise ValueError("give passwordEnv or passwordFile, not both")
        if self.passphrase_env and not self.private_key_file:
            raise ValueError("passphraseEnv needs privateKeyFile")
        return self


class Proxy(Spec):
    """The SOCKS5 proxy that reaches the nodes (the only kind ACP supports)."""

    url: str = Field(description="socks5://host:port (no credentials in the URL)")
    username: str | None = Field(default=None, description="the proxy user name, when it is no secret")
    username_env: EnvName | None = Field(
        default=None, description="the environment variable that holds the proxy user name"
    )
    password_env: EnvName | None = Field(
        default=None, description="the environment variable that holds the proxy password"
    )
    password_file: str | None = Field(default=None, description="a file that holds the proxy password")

    @field_validator("url")
    @classmethod
    def _socks5(cls, value: str) -> str:
        match = re.match(r"^socks5h?://(?P<host>\[[0-9A-Fa-f:.]+\]|[^:/@\[\]]+):(?P<port>\d{1,5})/?$", value)
        if "@" in value:
            # Never echo the URL: it holds a password.
            raise ValueError("credentials in the proxy URL are refused; use usernameEnv/passwordEnv")
        if not match or not 1 <= int(match["port"]) <= 65535:
            raise ValueError(f"{value!r} is not a SOCKS5 URL (ACP only supports SOCKS5 proxies: socks5://host:port)")
        return value


HostKeyPolicy = Literal["strict", "accept-new", "insecure"]


class Ssh(Spec):
    """How acpcheck reaches every node over SSH; a node may override any of it under its own ssh."""

    port: int = Field(default=22, ge=1, le=65535, description="the nodes' SSH port")
    user: str = Field(default="root", min_length=1, description="the SSH user: root, or a user with passwordless sudo")
    auth: SshAuth = Field(default_factory=SshAuth)
    proxy: Proxy | None = None
    host_key_policy: HostKeyPolicy = Field(
        default="accept-new",
        description="strict: known keys only; accept-new: pin on first use, refuse a changed key; insecure: any key",
    )
    known_hosts_file: str | None = Field(
        default=None,
        description=(
            "where acpcheck keeps (strict) or pins (accept-new) host keys; default ~/.config/acpcheck/known_hosts"
        ),
    )
    connect_timeout_seconds: float = Field(
        default=10, gt=0, le=600, description="TCP connect, SSH handshake and authentication, each"
    )
    command_timeout_seconds: float = Field(default=60, gt=0, le=3600, description="the facts probe on one node")


class SshOverride(Spec):
    """Per-node SSH settings; anything left out comes from ``spec.ssh``."""

    port: int | None = Field(default=None, ge=1, le=65535, description="this node's SSH port")
    user: str | None = Field(default=None, min_length=1, description="this node's SSH user")
    auth: SshAuth | None = None
    proxy: Proxy | None = None
    host_key_policy: HostKeyPolicy | None = Field(
        default=None, description="this node's host key policy (see spec.ssh.hostKeyPolicy)"
    )


NodeRole = Literal["control-plane", "worker"]


class Node(Spec):
    """One machine of the cluster (the form's node list)."""

    name: str = Field(
        min_length=1, max_length=253, description="the node's name, unique in the plan (its target is node:<name>)"
    )
    role: NodeRole = Field(description="control-plane or worker")
    ipv4: IPv4 | None = Field(default=None, description="the node's IPv4 address (at least one of ipv4, ipv6)")
    ipv6: IPv6 | None = Field(default=None, description="the node's IPv6 address")
    application_deployable: bool = Field(default=False, description="a control-plane node that also runs applications")
    ssh_host: AddressOrDomain | None = Field(
        default=None, description="connect here instead of the node's address (IP or domain)"
    )
    nic: str | None = Field(
        default=None, description="this node's network interface, when it differs from spec.network.nic"
    )
    ssh: SshOverride | None = None

    @model_validator(mode="after")
    def _has_address(self) -> Node:
        if self.ipv4 is None and self.ipv6 is None:
            raise ValueError("a node needs ipv4 or ipv6")
        return self

    @property
    def addresses(self) -> tuple[IPAddress, ...]:
        return tuple(ip for ip in (self.ipv4, self.ipv6) if ip is not None)

    @property
    def target(self) -> str:
        return f"node:{self.name}"


@dataclass(frozen=True)
class _NetworkLeftOut:
    """Stands in for a missing spec.network of a cluster ACP builds, to be reported as such."""

    cluster_type: str


class EtcdEncryption(Spec):
    """What the plan says about etcd encryption at rest (the etcd Encryption Manager plugin)."""

    expected: bool | None = Field(
        default=None,
        description=(
            "true: the cluster must encrypt etcd with the etcd Encryption Manager (its EtcdEncryptionConfig 'default' "
            "must exist); false: it does not, and the encryption checks are skipped; null: checked when installed"
        ),
    )
    sample: int | None = Field(
        default=None,
        ge=1,
        description=(
            "how many etcd objects the encryption scan reads (an even sample); null: every object when there are at "
            "most 100000, else an even sample of 100000 (environment: ACPCHECK_ETCD_SAMPLE)"
        ),
    )


class ClusterSpec(Spec):
    """What the cluster is to be: the form's sections, its nodes and how acpcheck reaches them."""

    # For editors: the network section is required (and a mapping) unless spec.cluster.type is imported or registered.
    model_config = ConfigDict(
        json_schema_extra={
            "if": {
                # [*…]: a fresh list, which mypy takes as list[JsonValue] (sorted's list[str] is not one)
                "properties": {
                    "cluster": {"properties": {"type": {"enum": [*sorted(THIRD_PARTY)]}}, "required": ["type"]}
                },
                "required": ["cluster"],
            },
            "else": {"required": ["network"], "properties": {"network": {"type": "object"}}},
        }
    )

    acp: Acp
    cluster: Cluster
    endpoint: Endpoint = Field(default_factory=Endpoint)
    network: Network | None = Field(
        default=None,
        description=(
            "the cluster network (the form's Network section). Required when ACP builds the cluster "
            "(spec.cluster.type on-premise, hosted-control-plane or immutable). Optional when spec.cluster.type is "
            "imported or registered: ACP does not manage that network, so leave it out when unknown; the checks that "
            "need it are then skipped"
        ),
    )
    management_cluster: ManagementCluster = Field(default_factory=ManagementCluster)
    kubelet: Kubelet = Field(default_factory=Kubelet)
    api_server: ApiServer = Field(default_factory=ApiServer)
    registry: Registry = Field(default_factory=Registry)
    load_balancer: LoadBalancer = Field(default_factory=LoadBalancer)
    ssh: Ssh = Field(default_factory=Ssh)
    nodes: list[Node] = Field(default_factory=list, description="the cluster's nodes")
    kubeconfig: str | None = Field(
        default=None, description="kubeconfig file for live-cluster checks (environment: ACPCHECK_KUBECONFIG)"
    )
    kubeconfig_context: str | None = Field(
        default=None,
        min_length=1,
        description="the kubeconfig context to use; null: its current-context (environment: ACPCHECK_KUBECONTEXT)",
    )
    etcd_encryption: EtcdEncryption = Field(default_factory=EtcdEncryption)
    node_roles: list[NodeRoleAssignment] = Field(
        default_factory=list,
        description=(
            "infra, log and custom role nodes: each Node's role label and NoSchedule taint (ACP-ROLE-001, -002)"
        ),
    )
    # -- connected clusters: the global cluster, as the connected checks reach it
    global_cluster: GlobalCluster | None = Field(
        default=None,
        description=(
            "the global cluster that manages this one: its kubeconfig, its control-plane nodes (reached over SSH "
            "with spec.ssh) and whether it reaches this cluster's API directly or only through the tunnel "
            "(ACP-CONN-010 and up); null: the global-side checks are skipped"
        ),
    )

    @model_validator(mode="before")
    @classmethod
    def _mark_missing_network(cls, data: Any) -> Any:
        # Decided on the input, so that the problem is reported together with any other
        # (even when spec.cluster itself is invalid in some other field).
        if not isinstance(data, dict) or data.get("network") is not None:
            return data
        cluster = data.get("cluster")
        if isinstance(cluster, Cluster):
            cluster_type: Any = cluster.type
        elif isinstance(cluster, dict):
            cluster_type = cluster.get("type", Cluster.model_fields["type"].default)
        else:
            return data  # spec.cluster is missing or not a mapping: reported there
        if isinstance(cluster_type, str) and cluster_type in PLATFORM_MANAGED:  # not an invalid type: reported there
            return {**data, "network": _NetworkLeftOut(cluster_type)}
        return data

    @field_validator("network", mode="before")
    @classmethod
    def _network_unless_third_party(cls, value: Any) -> Any:
        if isinstance(value, _NetworkLeftOut):
            raise ValueError(
                f"required for cluster type {value.cluster_type}: ACP builds this cluster's network, so the plan must "
                "describe it (only imported and registered clusters may omit it)"
            )
        return value


class ClusterPlan(Spec):
    """A cluster plan for acpcheck: the ACP Create Cluster form as YAML (docs/interfaces.md)."""

    # ``_source`` keeps the file and the line of every field, for messages.
    api_version: Literal["acpcheck/v1"] = Field(description="the plan format: acpcheck/v1")
    kind: Literal["ClusterPlan"] = Field(description="always ClusterPlan")
    metadata: Metadata
    spec: ClusterSpec

    _source: LocatedDocument | None = PrivateAttr(default=None)
    #: False for the plan a fleet file makes for a cluster it names without a plan file
    #: (``acpcheck.model.fleet``): only its name, ACP versions, role, type and kubeconfig
    #: are real, and only checks declared ``plan_free`` run on it (grading.not_applicable).
    _declared: bool = PrivateAttr(default=True)

    # -- conveniences the checks share ---------------------------------------

    @property
    def declared(self) -> bool:
        """Whether this plan was written by a person (a plan file), not made from a fleet entry."""
        return self._declared

    @property
    def file(self) -> str:
        return self._source.file if self._source else "<plan>"

    def relative_file(self, name: str) -> Path:
        """A file the plan names (``~`` expanded): absolute, or relative to the plan file's directory."""
        path = Path(name).expanduser()
        return path if path.is_absolute() or self.file == "<plan>" else Path(self.file).resolve().parent / path

    def where(self, *path: str | int) -> str:
        """``plan.yaml:17`` for a field path such as ("spec", "network", "clusterCIDR")."""
        line = self._source.line_of(path) if self._source else None
        return f"{self.file}:{line}" if line else self.file

    def nodes_with_role(self, role: str) -> list[Node]:
        return [n for n in self.spec.nodes if n.role == role]

    @property
    def control_plane(self) -> list[Node]:
        return self.nodes_with_role("control-plane")

    @property
    def is_upgrade(self) -> bool:
        return self.spec.acp.upgrade_from is not None


# ---------------------------------------------------------------------------
# Loading: YAML with lines -> secret scan -> pydantic -> located messages.


def unknown_acp_version(doc: LocatedDocument, known_acp_versions: frozenset[str] | None) -> Problem | None:
    """The problem with the document's ``spec.acp.version`` (a plan's or a fleet's target) when
    its minor is not in acpcheck's version matrix; None when it is, or is not a version at all
    (the schema reports that)."""
    spec = doc.data.get("spec") if isinstance(doc.data, dict) else None
    acp = spec.get("acp") if isinstance(spec, dict) else None
    version = acp.get("version") if isinstance(acp, dict) else None
    if known_acp_versions is None or not isinstance(version, str) or not re.match(ACP_VERSION_PATTERN, version):
        return None
    minor = ".".join(version.split(".")[:2])
    if minor in known_acp_versions:
        return None
    known = ", ".join(sorted(known_acp_versions))
    return doc.problem(("spec", "acp", "version"), f"ACP {minor} is not in acpcheck's version matrix (known: {known})")


def plan_from_document(doc: LocatedDocument, known_acp_versions: frozenset[str] | None = None) -> ClusterPlan:
    """Validate a loaded document into a ClusterPlan, or raise InputError with every problem."""
    if not isinstance(doc.data, dict):
        raise InputError([doc.problem((), "a plan must be a YAML mapping with apiVersion, kind, metadata and spec")])
    problems, hidden = find_literal_secrets(doc)
    plan, schema_problems = validate_document(ClusterPlan, doc, hidden=hidden)
    problems.extend(schema_problems)
    unknown = unknown_acp_version(doc, known_acp_versions)
    if unknown is not None:
        problems.append(unknown)
    if problems:
        problems.sort(key=lambda p: p.line or 0)
        raise InputError(problems)
    assert plan is not None
    plan._source = doc
    return plan


def load_plan(path: str | Path) -> ClusterPlan:
    """Load and validate a plan file (InputError lists every problem)."""
    from acpcheck.matrix import known_acp_versions

    return plan_from_document(load_yaml(path), known_acp_versions())


#: What a conventional environment variable name looks like. A name that does not
#: (``Hunter2!x``) may be a password typed where the name belongs: it is never shown.
CONVENTIONAL_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")


def secret_reference_problems(plan: ClusterPlan) -> list[Problem]:
    """Every secret reference the run would need to contact the plan's nodes that
    cannot be resolved: an unset or empty environment variable, a file that does
    not exist or cannot be read. One problem per field (not per node), at its line.

    Called before anything connects, and only by runs that connect. The reference
    itself is shown only when it cannot be the secret: a conventional variable name
    (upper case, digits, underscores); never a path that does not exist.
    """
    seen: dict[FieldPath, str] = {}
    for index, node in enumerate(plan.spec.nodes):
        override = node.ssh
        auth_at: FieldPath = (
            ("spec", "nodes", index, "ssh", "auth")
            if override is not None and override.auth is not None
            else ("spec", "ssh", "auth")
        )
        auth = override.auth if override is not None and override.auth is not None else plan.spec.ssh.auth
        proxy_at: FieldPath = (
            ("spec", "nodes", index, "ssh", "proxy")
            if override is not None and "proxy" in override.model_fields_set
            else ("spec", "ssh", "proxy")
        )
        proxy = override.proxy if override is not None and "proxy" in override.model_fields_set else plan.spec.ssh.proxy
        references: list[tuple[FieldPath, str, str | None]] = [
            ((*auth_at, "passwordEnv"), "env", auth.password_env),
            ((*auth_at, "passphraseEnv"), "env", auth.passphrase_env),
            ((*auth_at, "passwordFile"), "file", auth.password_file),
            ((*auth_at, "privateKeyFile"), "file", auth.private_key_file),
        ]
        if proxy is not None:
            references += [
                ((*proxy_at, "usernameEnv"), "env", proxy.username_env),
                ((*proxy_at, "passwordEnv"), "env", proxy.password_env),
                ((*proxy_at, "passwordFile"), "file", proxy.password_file),
            ]
        for path, kind, reference in references:
            if reference is None or path in seen:
                continue
            message = _unresolved_env(reference) if kind == "env" else _unresolved_file(reference)
            if message:
                seen[path] = message
    return [
        plan._source.problem(path, message) if plan._source else Problem(plan.file, None, dotted(path), message)
        for path, message in seen.items()
    ]


def _unresolved_env(name: str) -> str | None:
    value = os.environ.get(name)
    if value:
        return None
    state = "is empty" if value == "" else "is not set"
    if CONVENTIONAL_ENV_NAME.match(name):
        return f"environment variable {name} {state}; set it before a run that connects to nodes"
    return (
        f"the environment variable named here {state}; its name is not shown because it does not look like one "
        "(a password typed in place of the name?)"
    )


def _unresolved_file(reference: str) -> str | None:
    path = Path(reference).expanduser()
    if not path.exists():
        return "no such file (the path is not shown, in case a secret was typed in its place)"
    if not path.is_file() or not os.access(path, os.R_OK):
        return "not a readable regular file"
    return None


def plan_json_schema() -> dict[str, Any]:
    """JSON Schema of the plan file, for editors (``acpcheck schema``).

    Every field has a title and a description, both from the model: a field's own
    ``description``, or for a section (a model) the section's docstring; titles are
    written for people from the names (``schema_title``: pydantic's field title
    generator, and here for a field that is only a ``$ref``, which pydantic leaves
    without one). ``$id`` names the plan format as results.schema.json names its own."""
    schema = ClusterPlan.model_json_schema(by_alias=True, mode="validation")
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": "urn:acpcheck:plan:v1", **schema}
    schema["title"] = "acpcheck ClusterPlan"
    definitions = schema.get("$defs", {})
    for body in (schema, *definitions.values()):
        for name, prop in body.get("properties", {}).items():
            prop.setdefault("title", schema_title(name))
            if "description" not in prop:
                refs = [prop, *prop.get("anyOf", []), prop.get("items") or {}]
                target = next((str(r["$ref"]).rsplit("/", 1)[-1] for r in refs if "$ref" in r), None)
                if target in definitions and definitions[target].get("description"):
                    prop["description"] = definitions[target]["description"]
    return schema


__all__ = [
    "SECRET_KEYS",
    "ClusterPlan",
    "Node",
    "dotted",
    "load_plan",
    "plan_from_document",
    "plan_json_schema",
    "schema_title",
    "secret_reference_problems",
]


# ---------------------------------------------------------------------------
# Connected clusters: the global cluster a workload cluster is connected to.
# Appended block; ClusterSpec.global_cluster refers to GlobalCluster, resolved below.

GlobalReach = Literal["direct", "tunnel"]


class GlobalCluster(Spec):
    """The global cluster that manages this one, as the connected-cluster checks reach it."""

    kubeconfig: str | None = Field(
        default=None,
        description=(
            "the global cluster's kubeconfig (relative paths: to the plan file); its objects say whether global "
            "records this cluster as running (ACP-CONN-013)"
        ),
    )
    kubeconfig_context: str | None = Field(
        default=None, min_length=1, description="the context of that kubeconfig; null: its current-context"
    )
    reach: GlobalReach = Field(
        default="direct",
        description=(
            "direct: global reaches this cluster's API and control-plane nodes itself (an imported cluster; the "
            "on-premises page: global must reach 6443, 11780 and 11781 on every control-plane node); tunnel: it "
            "cannot, and reaches it only through the Tunnel Server (global) and Tunnel Agent (this cluster)"
        ),
    )
    control_plane: list[Node] = Field(
        default_factory=list,
        description=(
            "the global cluster's control-plane nodes (name, role: control-plane, ipv4/ipv6, sshHost, ssh), reached "
            "over SSH with spec.ssh: acpcheck connects from them to this cluster, the path ACP uses"
        ),
    )

    @field_validator("control_plane", mode="before")
    @classmethod
    def _control_plane_role(cls, value: Any) -> Any:
        # Every entry is a control-plane node: its role may be left out.
        if isinstance(value, list):
            return [{"role": "control-plane", **item} if isinstance(item, dict) else item for item in value]
        return value

    @model_validator(mode="after")
    def _control_plane_only(self) -> GlobalCluster:
        if any(node.role != "control-plane" for node in self.control_plane):
            raise ValueError("controlPlane lists the global cluster's control-plane nodes: role must be control-plane")
        names = [node.name for node in self.control_plane]
        if len(set(names)) != len(names):
            raise ValueError("the global control-plane nodes' names must be unique")
        return self


ClusterSpec.model_rebuild()
ClusterPlan.model_rebuild()
