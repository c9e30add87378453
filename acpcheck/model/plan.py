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
        {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 2, "description": "dual-stack: one CIDR per family"},
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
IPv4 = Annotated[IPAddress, BeforeValidator(_to_ip_of(4)), PlainSerializer(str), WithJsonSchema({"type": "string", "format": "ipv4"})]
IPv6 = Annotated[IPAddress, BeforeValidator(_to_ip_of(6)), PlainSerializer(str), WithJsonSchema({"type": "string", "format": "ipv6"})]
IPText = Annotated[str, BeforeValidator(lambda v: str(parse_ip(v))), WithJsonSchema({"type": "string"})]
AddressOrDomain = Annotated[str, BeforeValidator(_address_or_domain)]
EnvName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="name of an environment variable")]
VERSION_PATTERN = r"^v?\d+\.\d+(\.\d+)?([-+][0-9A-Za-z.-]+)?$"
ACP_VERSION_PATTERN = r"^\d+\.\d+(\.\d+)?$"
FORMAT_EXAMPLES[VERSION_PATTERN] = "1.34.5"
FORMAT_EXAMPLES[ACP_VERSION_PATTERN] = "4.3 or 4.3.1"
FORMAT_EXAMPLES[r"^[A-Za-z_][A-Za-z0-9_]*$"] = "SSH_PASSWORD (the name of an environment variable)"


class Spec(BaseModel):
    """Base of every plan section: camelCase keys, unknown keys are errors."""

    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
        arbitrary_types_allowed=True,
    )


# ---------------------------------------------------------------------------
# Sections, in the order of the ACP "Create Cluster" form.


class Metadata(Spec):
    name: str = Field(min_length=1, max_length=253)


class Acp(Spec):
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


class Cluster(Spec):
    role: ClusterRole = "workload"
    type: ClusterType = "on-premise"
    kubernetes_version: str = Field(pattern=VERSION_PATTERN, description="e.g. 1.34.5")
    container_runtime: Literal["containerd", "docker"] = "containerd"
    ip_family: Literal["ipv4", "ipv6", "dual-stack"] = "ipv4"
    node_name: Literal["ip", "hostname"] = "ip"
    annotations: dict[str, str] = Field(default_factory=dict)
    feature_gates: list[str] = Field(default_factory=list, description="platform feature gates enabled for this cluster, e.g. cri-docker")


class SelfBuiltVip(Spec):
    enabled: bool = False
    vrid: int | None = Field(default=None, description="keepalived virtual router id (ACP requires 1-255)")


class Endpoint(Spec):
    address: str | None = Field(default=None, description="VIP or domain (the form's 'IP Address / Domain')")
    self_built_vip: SelfBuiltVip = Field(default_factory=SelfBuiltVip, alias="selfBuiltVIP")
    external_access: AddressOrDomain | None = None

    @field_validator("address")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        return None if value is None else _address_or_domain(value)


class KubeOvn(Spec):
    transmit_mode: Literal["overlay", "underlay"] = "overlay"
    join_cidr: CIDRs | None = Field(default=None, alias="joinCIDR")
    gateway: IPs | None = None
    vlan_id: int = Field(default=0, ge=0, le=4094, alias="vlanID")
    reserved_ips: list[IPText] = Field(default_factory=list, alias="reservedIPs")


class Network(Spec):
    plugin: Literal["kube-ovn", "calico", "flannel", "custom"] = "kube-ovn"
    cluster_cidr: CIDRs = Field(alias="clusterCIDR")
    service_cidr: CIDRs = Field(alias="serviceCIDR")
    kube_ovn: KubeOvn = Field(default_factory=KubeOvn)
    node_ip_count: int | None = Field(default=None, gt=0, alias="nodeIPCount", description="Flannel: pod IPs per node")
    nic: str | None = None


class ManagementCluster(Spec):
    pod_cidr: CIDRs | None = Field(default=None, alias="podCIDR")
    service_cidr: CIDRs | None = Field(default=None, alias="serviceCIDR")


class Kubelet(Spec):
    extra_args: dict[str, str | int] = Field(default_factory=dict)


class ApiServer(Spec):
    public_alternative_names: list[str] = Field(default_factory=list)


class Registry(Spec):
    type: Literal["platform", "private", "public"] = "platform"
    address: str | None = None


class SshAuth(Spec):
    """Secrets only by reference: a file path or the name of an environment variable."""

    private_key_file: str | None = None
    passphrase_env: EnvName | None = None
    password_env: EnvName | None = None
    password_file: str | None = None

    @model_validator(mode="after")
    def _one_method(self) -> SshAuth:
        if self.password_env and self.password_file:
            raise ValueError("give passwordEnv or passwordFile, not both")
        if self.passphrase_env and not self.private_key_file:
            raise ValueError("passphraseEnv needs privateKeyFile")
        return self


class Proxy(Spec):
    url: str = Field(description="socks5://host:port (no credentials in the URL)")
    username: str | None = None
    username_env: EnvName | None = None
    password_env: EnvName | None = None
    password_file: str | None = None

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
    port: int = Field(default=22, ge=1, le=65535)
    user: str = Field(default="root", min_length=1)
    auth: SshAuth = Field(default_factory=SshAuth)
    proxy: Proxy | None = None
    host_key_policy: HostKeyPolicy = "accept-new"
    known_hosts_file: str | None = Field(
        default=None, description="where acpcheck keeps (strict) or pins (accept-new) host keys; default ~/.config/acpcheck/known_hosts"
    )
    connect_timeout_seconds: float = Field(default=10, gt=0, le=600, description="TCP connect, SSH handshake and authentication, each")
    command_timeout_seconds: float = Field(default=60, gt=0, le=3600, description="the facts probe on one node")


class SshOverride(Spec):
    """Per-node SSH settings; anything left out comes from ``spec.ssh``."""

    port: int | None = Field(default=None, ge=1, le=65535)
    user: str | None = Field(default=None, min_length=1)
    auth: SshAuth | None = None
    proxy: Proxy | None = None
    host_key_policy: HostKeyPolicy | None = None


NodeRole = Literal["control-plane", "worker"]


class Node(Spec):
    name: str = Field(min_length=1, max_length=253)
    role: NodeRole
    ipv4: IPv4 | None = None
    ipv6: IPv6 | None = None
    application_deployable: bool = False
    ssh_host: AddressOrDomain | None = None
    nic: str | None = None
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


class ClusterSpec(Spec):
    # For editors: the network section is required (and a mapping) unless spec.cluster.type is imported or registered.
    model_config = ConfigDict(
        json_schema_extra={
            "if": {
                "properties": {"cluster": {"properties": {"type": {"enum": sorted(THIRD_PARTY)}}, "required": ["type"]}},
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
            "the cluster network (the form's Network section). Required when ACP builds the cluster (spec.cluster.type "
            "on-premise, hosted-control-plane or immutable). Optional when spec.cluster.type is imported or registered: "
            "ACP does not manage that network, so leave it out when unknown; the checks that need it are then skipped"
        ),
    )
    management_cluster: ManagementCluster = Field(default_factory=ManagementCluster)
    kubelet: Kubelet = Field(default_factory=Kubelet)
    api_server: ApiServer = Field(default_factory=ApiServer)
    registry: Registry = Field(default_factory=Registry)
    ssh: Ssh = Field(default_factory=Ssh)
    nodes: list[Node] = Field(default_factory=list)
    kubeconfig: str | None = None

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
    """A whole plan file. ``source`` keeps file and line numbers for messages."""

    api_version: Literal["acpcheck/v1"]
    kind: Literal["ClusterPlan"]
    metadata: Metadata
    spec: ClusterSpec

    _source: LocatedDocument | None = PrivateAttr(default=None)

    # -- conveniences the checks share ---------------------------------------

    @property
    def file(self) -> str:
        return self._source.file if self._source else "<plan>"

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

def plan_from_document(doc: LocatedDocument, known_acp_versions: frozenset[str] | None = None) -> ClusterPlan:
    """Validate a loaded document into a ClusterPlan, or raise InputError with every problem."""
    if not isinstance(doc.data, dict):
        raise InputError([doc.problem((), "a plan must be a YAML mapping with apiVersion, kind, metadata and spec")])
    problems, hidden = find_literal_secrets(doc)
    plan, schema_problems = validate_document(ClusterPlan, doc, hidden=hidden)
    problems.extend(schema_problems)
    spec = doc.data.get("spec")
    acp = spec.get("acp") if isinstance(spec, dict) else None
    version = acp.get("version") if isinstance(acp, dict) else None
    if known_acp_versions is not None and isinstance(version, str) and re.match(ACP_VERSION_PATTERN, version):
        minor = ".".join(version.split(".")[:2])
        if minor not in known_acp_versions:
            known = ", ".join(sorted(known_acp_versions))
            problems.append(doc.problem(("spec", "acp", "version"), f"ACP {minor} is not in acpcheck's version matrix (known: {known})"))
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


def plan_json_schema() -> dict[str, Any]:
    """JSON Schema of the plan file, for editors (``acpcheck schema``)."""
    schema = ClusterPlan.model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "acpcheck ClusterPlan"
    return schema


__all__ = ["SECRET_KEYS", "ClusterPlan", "Node", "load_plan", "plan_from_document", "plan_json_schema", "dotted", "secret_reference_problems"]
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
        auth_at: FieldPath = ("spec", "nodes", index, "ssh", "auth") if override is not None and override.auth is not None else ("spec", "ssh", "auth")
        auth = override.auth if override is not None and override.auth is not None else plan.spec.ssh.auth
        proxy_at: FieldPath = ("spec", "nodes", index, "ssh", "proxy") if override is not None and "proxy" in override.model_fields_set else ("spec", "ssh", "proxy")
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
    return [plan._source.problem(path, message) if plan._source else Problem(plan.file, None, dotted(path), message) for path, message in seen.items()]


def _unresolved_env(name: str) -> str | None:
    value = os.environ.get(name)
    if value:
        return None
    state = "is empty" if value == "" else "is not set"
    if CONVENTIONAL_ENV_NAME.match(name):
        return f"environment variable {name} {state}; set it before a run that connects to nodes"
    return f"the environment variable named here {state}; its name is not shown because it does not look like one (a password typed in place of the name?)"


def _unresolved_file(reference: str) -> str | None:
    path = Path(reference).expanduser()
    if not path.exists():
        return "no such file (the path is not shown, in case a secret was typed in its place)"
    if not path.is_file() or not os.access(path, os.R_OK):
        return "not a readable regular file"
    return None


