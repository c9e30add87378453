"""The node matrix as data (``os.yaml``): supported OS and kernels per ACP release,
machine sizes, and the node-preprocessing lists, validated when loaded.

Matching follows the docs' rule: the OS ``x.y`` must equal a listed version (a
further patch number may vary) and the kernel's ``x.y.z`` must equal a listed
kernel's (the build after the first ``-`` may differ). ``probe_queries()`` is what
the node probe must ask about, so the probe and the checks share one list.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from acpcheck.matrix import acp_minor, load_data_file

OS_MATRIX_FILE = Path(__file__).with_name("os.yaml")


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, frozen=True)


class OsRow(_Data):
    """One supported operating system on one architecture."""

    os: str
    name: str
    versions: list[str]
    architecture: Literal["x86_64", "aarch64"]
    kernels: list[str] = Field(min_length=1)
    cpu_models: list[str] = Field(default_factory=list)
    source: str

    @property
    def kernel_cores(self) -> frozenset[str]:
        """The x.y.z part of every listed kernel."""
        return frozenset(core for core in map(kernel_core, self.kernels) if core)


class NodeSupport(_Data):
    """What one ACP minor release supports on user-provided nodes."""

    source: str
    systems: list[OsRow]
    leftover_paths: list[str]
    leftover_paths_source: str


class KylinNodePortBug(_Data):
    fixed_in: int
    source: str


class Sizing(_Data):
    cpus: int
    memory_gb: float = Field(alias="memoryGB")


class Hardware(_Data):
    source: str
    global_control_plane: Sizing
    single_node_global: Sizing
    arm_minimum_factor: float
    arm_recommended_factor: float


class DiskRule(_Data):
    """Space one path needs; empty role lists mean every role."""

    path: str
    roles: list[str] = Field(default_factory=list)
    cluster_roles: list[str] = Field(default_factory=list)
    minimum_gb: float = Field(alias="minimumGB")
    recommended_gb: float = Field(alias="recommendedGB")

    def applies_to(self, role: str, cluster_role: str) -> bool:
        return (not self.roles or role in self.roles) and (not self.cluster_roles or cluster_role in self.cluster_roles)


class RootDisk(_Data):
    minimum_gb: float = Field(alias="minimumGB")
    recommended_gb: float = Field(alias="recommendedGB")
    max_used_percent: float


class Disks(_Data):
    source: str
    paths: list[DiskRule]
    root: RootDisk


class Preprocessing(_Data):
    source: str
    required_binaries: list[str]
    any_of_binaries: list[list[str]]
    kubelet_unit: str
    packages: dict[str, list[str]]
    snaps: dict[str, list[str]]
    stray_binaries: list[str]


class OsMatrix(_Data):
    versions: dict[str, NodeSupport]
    cpu_model_aliases: dict[str, list[str]]
    kylin_node_port_bug: KylinNodePortBug
    hardware: Hardware
    disks: Disks
    preprocessing: Preprocessing


@lru_cache(maxsize=1)
def os_matrix() -> OsMatrix:
    """The shipped node matrix (loaded once per process)."""
    return load_data_file(OS_MATRIX_FILE, OsMatrix, "node matrix")


def node_support(acp_version: str) -> NodeSupport:
    """The matrix entry for an ACP version such as '4.3' or '4.3.1'."""
    return os_matrix().versions[acp_minor(acp_version)]


# ---------------------------------------------------------------------------
# Reading versions the way the matrix compares them


def kernel_core(release: str | None) -> str | None:
    """'5.15.0-56-generic' -> '5.15.0'; None when there is no x.y.z to read."""
    match = re.match(r"^(\d+\.\d+\.\d+)", (release or "").strip())
    return match.group(1) if match else None


def kernel_tuple(release: str | None) -> tuple[int, int, int] | None:
    """'4.18.0-553.el8' -> (4, 18, 0), for ordering kernels."""
    core = kernel_core(release)
    if core is None:
        return None
    major, minor, patch = (int(part) for part in core.split("."))
    return major, minor, patch


#: Where each distribution states its full release when /etc/os-release does not.
RELEASE_FILES = {
    "centos": "/etc/centos-release",
    "rhel": "/etc/redhat-release",
    "ubuntu": "/etc/lsb-release",
    "kylin": "/etc/.productinfo",
}

_SERVICE_PACK = re.compile(r"\bSP\s*(\d+)\b", re.IGNORECASE)


def kylin_service_pack(*texts: str | None) -> int | None:
    """The Kylin service pack named in any of ``texts`` ('V10 SP3' -> 3), else None.

    /etc/os-release on Kylin says VERSION_ID="V10" for every service pack; the probe
    may add the pack from /etc/.productinfo. Without it the pack is unknown (V10 GA
    has no "SP" at all, so absence cannot be read as "no service pack").
    """
    for text in texts:
        match = _SERVICE_PACK.search(text or "")
        if match:
            return int(match.group(1))
    return None


@dataclass(frozen=True)
class NodeRelease:
    """A node's OS as the matrix compares it: ID and version, or why the version is unknown."""

    os: str
    version: str | None
    unknown_because: str = ""
    look_in: str = ""  # the file that does say, when the version is unknown


def node_release(os_id: str, version_id: str | None, pretty_name: str | None) -> NodeRelease:
    """The node's OS version in the matrix's terms ('22.04', '7.9', 'V10 SP3')."""
    text = (version_id or "").strip()
    if os_id == "kylin":
        pack = kylin_service_pack(text, pretty_name)
        if pack is None:
            return NodeRelease(os_id, None, f"VERSION_ID {text or ''!r} names no service pack", RELEASE_FILES["kylin"])
        return NodeRelease(os_id, f"{text.split()[0] if text else 'V10'} SP{pack}")
    match = re.match(r"^(\d+)\.(\d+)", text)
    if match:
        return NodeRelease(os_id, f"{match.group(1)}.{match.group(2)}")
    # CentOS 7's os-release says VERSION_ID="7": the minor release is in /etc/centos-release.
    return NodeRelease(
        os_id,
        None,
        f"VERSION_ID {text!r} has no minor release",
        RELEASE_FILES.get(os_id, "the distribution's release file"),
    )


def _normalised(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def cpu_model_matches(cpu_model: str, required: str) -> bool:
    """Whether lscpu's model name is ``required`` or one of its aliases."""
    names = [required, *os_matrix().cpu_model_aliases.get(required, [])]
    seen = _normalised(cpu_model)
    return any(_normalised(name) in seen for name in names)


def probe_queries() -> dict[str, list[str]]:
    """What the node probe must ask every node about, so these checks can read the answers.

    ``packages`` and ``snaps``: installed or not; ``binaries``: path on PATH;
    ``paths``: exists or not; ``disks``: size and free space of the mount holding each.
    """
    matrix = os_matrix()
    pre = matrix.preprocessing
    leftover = {path for support in matrix.versions.values() for path in support.leftover_paths}
    return {
        "packages": sorted({name for names in pre.packages.values() for name in names}),
        "snaps": sorted({name for names in pre.snaps.values() for name in names}),
        "binaries": sorted({*pre.required_binaries, *(name for group in pre.any_of_binaries for name in group)}),
        "paths": sorted(leftover | {pre.kubelet_unit}),
        "disks": sorted({"/", *(rule.path for rule in matrix.disks.paths)}),
    }


# -- immutable operating systems (node preprocessing does not apply to them) ------------------

#: os-release IDs of the immutable operating systems the docs name (openSUSE MicroOS,
#: the one the platform supports, and its SUSE build; Flatcar): their nodes are
#: image-provisioned and the platform manages their OS. Read by remediation's refusals and by
#: the hosted control planes' SSH hosts (acpcheck.sources.sshhosts).
IMMUTABLE_OS_IDS = frozenset({"opensuse-microos", "sl-micro", "suse-microos", "flatcar"})
#: Fedora CoreOS says ID=fedora; its name tells it apart.
IMMUTABLE_OS_NAMES = ("CoreOS",)
