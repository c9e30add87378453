"""Lab scenarios: which nodes the lab builds and which real defects each one carries.

A scenario is a YAML file (shipped ones live in ``lab/acpcheck_lab/scenarios/``)::

    name: demo
    description: …
    plan: {cluster: {role: global}}      # optional, deep-merged into the generated plan's spec
    nodes:
      - name: cp2
        role: control-plane              # control-plane | worker
        network: direct                  # direct (the controller reaches it) | hidden (only via the SOCKS5 proxy)
        os: ubuntu-22.04                 # see OS_FLAVOURS
        sshUser: root                    # root | acplab (the non-root lab user)
        defects:                         # every key is a deviation from a healthy node
          swap: true
          missingModules: [ip_vs, ip_vs_rr, ip_vs_wrr, ip_vs_sh]

A node without ``defects`` is healthy: it passes every node check. Each defect is a
real state of what the facts probe reads on that node (a file, a mount, a listener, a
route, an nft table …); ``acpcheck_lab.node`` says how each one is made.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from acpcheck.errors import InputError, Problem
from acpcheck.model.plan import Spec
from acpcheck.model.validation import validate_document
from acpcheck.yamlsource import LocatedDocument, load_yaml
from acpcheck_lab.etcdmodel import ControlPlaneSpec, LiveClusterSpec
from acpcheck_lab.hcpmodel import HcpSpec
from acpcheck_lab.lbmodel import DropRule, LabLoadBalancer, LabVip
from acpcheck_lab.ocimodel import LabOciRegistry

SCENARIO_DIR = Path(__file__).with_name("scenarios")

#: The non-root user every node has (for the "passwordless sudo" rule and password auth).
LAB_USER = "acplab"
#: Host numbers 11.. of each lab network are node addresses (.1/.2 are the gateway and proxy).
FIRST_NODE_HOST = 11
#: A Linux bridge has at most 1,024 ports (BR_MAX_PORTS): the nodes, the proxy's leg and the host's.
MAX_NODES_PER_NETWORK = 1000


@dataclass(frozen=True)
class OsFlavour:
    """What a node pretends to run: its /etc/os-release, its default kernel release,
    and the distribution's own release files (path -> content)."""

    os_release: str
    kernel: str
    release_files: tuple[tuple[str, str], ...] = ()


def _os_release(**fields: str) -> str:
    return "".join(f'{key}="{value}"\n' for key, value in fields.items())


#: Kernels are the validated ones from the ACP OS/kernel matrix (acp-facts.md §2.2);
#: ``debian-12`` is a deliberately unsupported OS.
OS_FLAVOURS: dict[str, OsFlavour] = {
    "ubuntu-22.04": OsFlavour(
        _os_release(
            PRETTY_NAME="Ubuntu 22.04.1 LTS",
            NAME="Ubuntu",
            VERSION_ID="22.04",
            VERSION="22.04.1 LTS (Jammy Jellyfish)",
            VERSION_CODENAME="jammy",
            ID="ubuntu",
            ID_LIKE="debian",
            UBUNTU_CODENAME="jammy",
        ),
        "5.15.0-56-generic",
    ),
    "ubuntu-20.04": OsFlavour(
        _os_release(
            NAME="Ubuntu",
            VERSION="20.04.5 LTS (Focal Fossa)",
            ID="ubuntu",
            ID_LIKE="debian",
            PRETTY_NAME="Ubuntu 20.04.5 LTS",
            VERSION_ID="20.04",
            VERSION_CODENAME="focal",
            UBUNTU_CODENAME="focal",
        ),
        "5.4.0-135-generic",
    ),
    "rhel-8.6": OsFlavour(
        _os_release(
            NAME="Red Hat Enterprise Linux",
            VERSION="8.6 (Ootpa)",
            ID="rhel",
            ID_LIKE="fedora",
            VERSION_ID="8.6",
            PLATFORM_ID="platform:el8",
            PRETTY_NAME="Red Hat Enterprise Linux 8.6 (Ootpa)",
        ),
        "4.18.0-372.9.1.el8.x86_64",
    ),
    "kylin-v10-sp3": OsFlavour(
        _os_release(
            NAME="Kylin Linux Advanced Server",
            VERSION="V10 (Lance)",
            ID="kylin",
            VERSION_ID="V10",
            PRETTY_NAME="Kylin Linux Advanced Server V10 (Lance)",
            ANSI_COLOR="0;31",
        ),
        "4.19.90-52.22.v2207.ky10.x86_64",
        (("/etc/.productinfo", "Kylin Linux Advanced Server\nrelease V10 (SP3) /(Lance)-x86_64-Build20/20220706\n"),),
    ),
    # SP2 carries the NodePort kernel bug ACP warns about (acp-facts.md §2.4).
    "kylin-v10-sp2": OsFlavour(
        _os_release(
            NAME="Kylin Linux Advanced Server",
            VERSION="V10 (Sword)",
            ID="kylin",
            VERSION_ID="V10",
            PRETTY_NAME="Kylin Linux Advanced Server V10 (Sword)",
            ANSI_COLOR="0;31",
        ),
        "4.19.90-24.4.v2101.ky10.x86_64",
        (("/etc/.productinfo", "Kylin Linux Advanced Server\nrelease V10 (SP2) /(Sword)-x86_64-Build09/20210524\n"),),
    ),
    "centos-7.9": OsFlavour(
        _os_release(
            NAME="CentOS Linux",
            VERSION="7 (Core)",
            ID="centos",
            ID_LIKE="rhel fedora",
            VERSION_ID="7",
            PRETTY_NAME="CentOS Linux 7 (Core)",
            CPE_NAME="cpe:/o:centos:centos:7",
        ),
        "3.10.0-1160.el7.x86_64",
        (("/etc/centos-release", "CentOS Linux release 7.9.2009 (Core)\n"),),
    ),
    "debian-12": OsFlavour(
        _os_release(
            PRETTY_NAME="Debian GNU/Linux 12 (bookworm)",
            NAME="Debian GNU/Linux",
            VERSION_ID="12",
            VERSION="12 (bookworm)",
            VERSION_CODENAME="bookworm",
            ID="debian",
        ),
        "6.1.0-18-amd64",
    ),
}

_NAME = r"^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$"
_WORD = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
#: A network link name short enough (14) that its veth peer, the name plus "p", fits IFNAMSIZ.
_LINK = r"^[a-z][a-z0-9]{0,13}$"
#: Top-level directories that are mounted into a node, not part of its root file system.
NOT_A_NODE_FILE = ("proc", "sys", "dev", "run")


class ResolvConf(Spec):
    """/etc/resolv.conf contents; ``nameservers: null`` means "the network's gateway"."""

    nameservers: list[str] | None = Field(default=None, description="[] for a file without any nameserver line")
    search: list[str] | int = Field(default_factory=list, description="search domains, or a count of generated ones")

    @field_validator("nameservers")
    @classmethod
    def _addresses(cls, value: list[str] | None) -> list[str] | None:
        for item in value or []:
            ipaddress.ip_address(item)  # ValueError names the bad item
        return value

    @field_validator("search")
    @classmethod
    def _domains(cls, value: list[str] | int) -> list[str] | int:
        if isinstance(value, int) and not 0 <= value <= 1000:
            raise ValueError("a search-domain count must be between 0 and 1000")
        return value

    def search_domains(self) -> list[str]:
        if isinstance(self.search, int):
            return [f"d{index:02d}.example.com" for index in range(1, self.search + 1)]
        return list(self.search)


class Defects(Spec):
    """Deviations from a healthy node. Every field's default is the healthy state."""

    # OS, kernel, hardware
    kernel: str | None = Field(
        default=None,
        pattern=r"^\S+$",
        description="kernel release (/proc/sys/kernel/osrelease); default: the OS flavour's",
    )
    cpus: int = Field(default=16, ge=1, le=1024, description="processors listed in /proc/cpuinfo")
    memory_gib: int = Field(default=32, ge=1, le=4096, alias="memoryGiB", description="MemTotal in /proc/meminfo")
    disk_gib: int = Field(
        default=512,
        ge=1,
        le=65536,
        alias="diskGiB",
        description="size of the node's root file system, as df reports it",
    )
    swap: bool = Field(default=False, description="/proc/swaps lists an active swap file")
    transparent_hugepage_never: bool = Field(default=True, description="/proc/cmdline has transparent_hugepage=never")
    missing_modules: list[str] = Field(default_factory=list, description="modules left out of /proc/modules")
    extra_modules: list[str] = Field(
        default_factory=list, description="modules loaded besides the healthy set, e.g. nf_conntrack_ipv4"
    )
    cmdline_extra: list[str] = Field(
        default_factory=list, description="more kernel parameters on /proc/cmdline, e.g. cgroup.memory=nokmem"
    )
    selinux: Literal["enforcing", "permissive"] | None = Field(
        default=None, description="/sys/fs/selinux/enforce is 1 or 0, /etc/selinux/config says so"
    )
    apparmor: bool = Field(default=False, description="/sys/module/apparmor/parameters/enabled is Y")
    # firewall
    ufw: bool = Field(default=False, description="/etc/ufw/ufw.conf has ENABLED=yes")
    nftables_drop: list[int] = Field(
        default_factory=list, description="a real nft table in the node's namespace drops these TCP ports"
    )
    # users and sshd
    sshd_config: dict[str, str] = Field(
        default_factory=dict, description="keywords set in the node's /etc/ssh/sshd_config, e.g. UseDNS: 'yes'"
    )
    default_tasks_max: str = Field(
        default="infinity", pattern=r"^\S+$", description="DefaultTasksMax in /etc/systemd/system.conf"
    )
    sudo: Literal["nopasswd", "password", "none"] = Field(default="nopasswd", description="the lab user's sudoers rule")
    # network
    hostname: str | None = Field(
        default=None, min_length=1, max_length=64, pattern=r"^\S+$", description="UTS hostname; default: the node name"
    )
    etc_hosts_localhost: bool = Field(default=True, description="/etc/hosts maps localhost")
    resolv_conf: Literal["missing"] | ResolvConf = Field(default_factory=ResolvConf)
    default_route: bool = Field(default=True, description="a default route via the network's gateway")
    listen: list[int] = Field(default_factory=list, description="TCP ports a real process listens on")
    runtime_bridge: str | None = Field(
        default=None, description="address/prefix on a docker0 bridge, e.g. 172.17.0.1/16"
    )
    sysctls: dict[str, str] = Field(default_factory=dict, description="net.* sysctls set in the node's namespace")
    primary_link: str = Field(
        default="eth0", pattern=_LINK, description="name of the NIC that holds the node's address (and SSH)"
    )
    extra_links: list[str] = Field(
        default_factory=list, description="more NICs, without an address (e.g. a Kube-OVN Underlay NIC, eth1)"
    )
    # software and files
    packages: list[str] = Field(default_factory=list, description="dpkg packages listed as installed")
    usr_local_bin: list[str] = Field(default_factory=list, description="stray files in /usr/local/bin")
    files: list[str] = Field(
        default_factory=list, description="files that exist (an empty file; a systemd unit for *.service)"
    )
    directories: list[str] = Field(default_factory=list, description="directories that exist")
    tmp_noexec: bool = Field(default=False, description="/tmp is mounted noexec")
    missing_binaries: list[str] = Field(default_factory=list, description="commands removed from the node's /usr")
    # time
    timezone: str = Field(
        default="Etc/UTC",
        pattern=r"^[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*$",
        description="/etc/timezone and /etc/localtime",
    )
    clock_skew_seconds: int = Field(
        default=0, ge=-(10**7), le=10**7, description="offset of the clock seen in SSH sessions (libfaketime)"
    )
    # load balancer and connectivity scenarios (lab/acpcheck_lab/lb.py)
    drop_from: list[DropRule] = Field(
        default_factory=list,
        description="nftables rules dropping traffic from other nodes, e.g. [{from: w1, ports: [6443]}]",
    )

    @field_validator("cmdline_extra")
    @classmethod
    def _kernel_parameters(cls, value: list[str]) -> list[str]:
        for item in value:
            if not re.match(r"^[A-Za-z0-9][A-Za-z0-9._+=,:-]*$", item):
                raise ValueError(f"{item!r} is not a kernel parameter (name or name=value)")
        return value

    @field_validator("missing_modules", "extra_modules", "packages", "usr_local_bin", "missing_binaries")
    @classmethod
    def _words(cls, value: list[str]) -> list[str]:
        for item in value:
            if not _WORD.match(item):
                raise ValueError(f"{item!r} is not a plain name")
        return value

    @field_validator("extra_links")
    @classmethod
    def _links(cls, value: list[str]) -> list[str]:
        for item in value:
            if not re.match(_LINK, item):
                raise ValueError(f"{item!r} is not a link name (a lower-case letter, then up to 13 letters or digits)")
        return value

    @field_validator("listen", "nftables_drop")
    @classmethod
    def _ports(cls, value: list[int]) -> list[int]:
        for port in value:
            if not 1 <= port <= 65535:
                raise ValueError(f"{port} is not a TCP port")
            if port == 22:
                raise ValueError("port 22 is the node's own sshd; pick another port")
        return value

    @field_validator("sshd_config")
    @classmethod
    def _sshd_keywords(cls, value: dict[str, str]) -> dict[str, str]:
        for key, item in value.items():
            if not re.match(r"^[A-Za-z]+$", key) or "\n" in str(item):
                raise ValueError(f"{key!r}: an sshd_config keyword and a one-line value are needed")
        return {key: str(item) for key, item in value.items()}

    @field_validator("runtime_bridge")
    @classmethod
    def _interface_address(cls, value: str | None) -> str | None:
        if value is not None:
            if "/" not in value:
                raise ValueError("give an address with its prefix, e.g. 172.17.0.1/16")
            ipaddress.ip_interface(value)
        return value

    @field_validator("sysctls")
    @classmethod
    def _net_sysctls(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not re.match(r"^net\.[A-Za-z0-9_.-]+$", key):
                raise ValueError(f"{key!r}: only net.* sysctls are per network namespace")
        return {key: str(item) for key, item in value.items()}

    @field_validator("files", "directories")
    @classmethod
    def _leftover_paths(cls, value: list[str]) -> list[str]:
        for path in value:
            parts = path.rstrip("/").split("/")
            if (
                not path.startswith("/")
                or ".." in parts
                or "" in parts[1:]
                or len(parts) < 2
                or parts[1] in NOT_A_NODE_FILE
            ):
                raise ValueError(f"{path!r}: give an absolute path outside /proc, /sys, /dev and /run")
        return [path.rstrip("/") for path in value]


class NodeSpec(Spec):
    name: str = Field(pattern=_NAME, description="lower-case letters, digits and '-', at most 32 characters")
    role: Literal["control-plane", "worker"]
    network: Literal["direct", "hidden"] = "direct"
    os: str = "ubuntu-22.04"
    ssh_user: Literal["root", "acplab"] = "root"
    defects: Defects = Field(default_factory=Defects)
    control_plane: ControlPlaneSpec | None = Field(
        default=None, description="kube-apiserver manifest, encryption config, etcd (lab/acpcheck_lab/etcd.py)"
    )

    @field_validator("os")
    @classmethod
    def _known_os(cls, value: str) -> str:
        if value not in OS_FLAVOURS:
            raise ValueError(f"unknown OS flavour {value!r} (known: {', '.join(OS_FLAVOURS)})")
        return value

    @property
    def hostname(self) -> str:
        return self.defects.hostname or self.name

    @property
    def flavour(self) -> OsFlavour:
        return OS_FLAVOURS[self.os]

    @property
    def kernel(self) -> str:
        return self.defects.kernel or self.flavour.kernel


class Scenario(Spec):
    name: str = Field(pattern=_NAME)
    description: str = ""
    plan: dict[str, Any] = Field(default_factory=dict, description="deep-merged into the generated plan's spec")
    nodes: list[NodeSpec] = Field(min_length=1)
    load_balancer: LabLoadBalancer | None = Field(
        default=None, description="an haproxy on the endpoint address (lab/acpcheck_lab/lb.py)"
    )
    vip: LabVip | None = Field(
        default=None, description="a keepalived that already holds the endpoint address as its VIP"
    )
    live_cluster: LiveClusterSpec | None = Field(
        default=None, description="the test API server and etcd's data (lab/acpcheck_lab/etcd.py)"
    )
    # --- private OCI registry (lab/acpcheck_lab/ociregistry.py) ---
    oci_registry: LabOciRegistry | None = Field(
        default=None, description="docker-registry instances with TLS and htpasswd auth, seeded with small images"
    )
    hcp: HcpSpec | None = Field(
        default=None,
        description="a hosted control plane's management cluster on the test API server (lab/acpcheck_lab/hcplab.py)",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        names = [node.name for node in self.nodes]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"node names must be unique: {', '.join(duplicates)}")
        if "proxy" in names:
            raise ValueError("'proxy' is the proxy's namespace; choose another node name")
        for network in ("direct", "hidden"):
            count = sum(node.network == network for node in self.nodes)
            if count > MAX_NODES_PER_NETWORK:
                raise ValueError(
                    f"{count} nodes on the {network} network; the lab has addresses for {MAX_NODES_PER_NETWORK}"
                )
        return self

    @property
    def needs_proxy(self) -> bool:
        return any(node.network == "hidden" for node in self.nodes)


def shipped_scenarios() -> list[str]:
    return sorted(path.stem for path in SCENARIO_DIR.glob("*.yaml"))


def load_scenario(ref: str | Path) -> Scenario:
    """A scenario by file path or by the name of a shipped one (``demo``, ``defects``). A bare name
    is a shipped scenario unless a file of that name is here: a directory named so (a run's output
    directory, say) does not hide it."""
    path = Path(ref)
    if not path.is_file() and SCENARIO_DIR.joinpath(f"{ref}.yaml").exists():
        path = SCENARIO_DIR / f"{ref}.yaml"
    if not path.exists():
        known = ", ".join(shipped_scenarios())
        raise InputError([Problem(str(ref), None, "", f"no such scenario file or shipped scenario (shipped: {known})")])
    return scenario_from_document(load_yaml(path))


def scenario_from_document(doc: LocatedDocument) -> Scenario:
    scenario, problems = validate_document(Scenario, doc)
    if problems:
        raise InputError(problems)
    assert scenario is not None
    return scenario


def healthy_scenario(count: int, control_planes: int = 3) -> Scenario:
    """``count`` healthy nodes on the direct network, for benchmarks: the first
    ``control_planes`` are control-plane nodes (``cp1``…), the rest workers (``w1``…),
    behind a real load balancer (haproxy on the plan's endpoint, every required port
    to every control-plane node), so that the whole ``preinstall`` profile passes."""
    _check_count(count)
    cps = min(control_planes, count)
    nodes = [NodeSpec(name=f"cp{i}", role="control-plane") for i in range(1, cps + 1)]
    nodes += [NodeSpec(name=f"w{i}", role="worker") for i in range(1, count - cps + 1)]
    return Scenario(
        name=f"bench-{count}", description=f"{count} healthy nodes", nodes=nodes, load_balancer=LabLoadBalancer()
    )


def scaled_scenario(scenario: Scenario, count: int) -> Scenario:
    """``scenario`` with healthy workers added (``w<n>``, numbered on from its own)
    until it has ``count`` nodes: its defects, at the size of a real cluster."""
    _check_count(count)
    if count < len(scenario.nodes):
        raise InputError(
            [
                Problem(
                    "--nodes",
                    None,
                    "",
                    f"scenario {scenario.name!r} has {len(scenario.nodes)} nodes already; give at least that many",
                )
            ]
        )
    taken = {node.name for node in scenario.nodes}
    added: list[NodeSpec] = []
    number = 1
    while len(scenario.nodes) + len(added) < count:
        name = f"w{number}"
        number += 1
        if name not in taken:
            added.append(NodeSpec(name=name, role="worker"))
    return scenario.model_copy(update={"name": f"{scenario.name}-{count}", "nodes": [*scenario.nodes, *added]})


def _check_count(count: int) -> None:
    if not 1 <= count <= MAX_NODES_PER_NETWORK:
        raise InputError([Problem("--nodes", None, "", f"give 1 to {MAX_NODES_PER_NETWORK} nodes")])


# -- hosted control planes (lab/acpcheck_lab/hcplab.py) ---------------------------------------
#: An immutable OS, for an SSH host that node preprocessing does not judge (openSUSE MicroOS,
#: the immutable OS the docs name; acpcheck.remediation.refusals.IMMUTABLE_OS_IDS).
OS_FLAVOURS["opensuse-microos"] = OsFlavour(
    _os_release(
        NAME="openSUSE MicroOS",
        ID="opensuse-microos",
        ID_LIKE="suse opensuse opensuse-tumbleweed microos",
        VERSION_ID="20251201",
        PRETTY_NAME="openSUSE MicroOS",
    ),
    "6.12.1-1-default",
)
