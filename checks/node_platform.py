"""The node's platform: operating system and kernel against the ACP support matrix,
CPU model, CPU and memory, and disk space. Every number comes from
``acpcheck/matrix/os.yaml``; messages cite the page its row was read from.

Node state that makes each check FAIL (for the lab):

- ACP-NODE-027: an OS or version not in the plan's ACP matrix for the node's architecture
  (e.g. Ubuntu 24.04, Rocky 9, Ubuntu on aarch64), or a kernel whose x.y.z differs from the
  listed one (e.g. Ubuntu 22.04 with the HWE kernel 6.5.0-41-generic).
- ACP-NODE-028: an aarch64 node whose CPU model is not Kunpeng 920 (lscpu "Model name").
- ACP-NODE-029: (WARN only) Kylin V10, V10 SP1 or V10 SP2.
- ACP-NODE-030: a global-cluster control-plane node with fewer than 8 CPUs or less than
  16 GB memory (single-node global: 12 / 24 GB; aarch64: 1.5x those; below 2x is a WARN).
- ACP-NODE-031: too little space for /var/lib/etcd (10 GB, control plane), /var/lib/containerd
  (100 GB) or /cpaas (100 GB on global control-plane nodes, else 40 GB); paths sharing a mount
  need the sum (e.g. all on a 120 GB root filesystem). Below the recommended sizes is a WARN.
- ACP-NODE-032: a root filesystem under 50 GB, or 80 % or more used.
"""

from __future__ import annotations

from collections import defaultdict
from math import ceil

from acpcheck import NodeContext, Scope, Severity, check, fail, fail_if, manual, skip, warn
from acpcheck.checks.support import (
    PREPROCESSING_PAGES,
    conclude,
    gigabytes,
    listed,
    preprocessed,
    require,
)
from acpcheck.constants import DISK_CONFIGURATION, PREPROCESSING, PREREQUISITES
from acpcheck.facts.model import DiskSpace
from acpcheck.matrix.os import (
    DiskRule,
    NodeSupport,
    OsRow,
    cpu_model_matches,
    kernel_core,
    kylin_service_pack,
    node_release,
    node_support,
    os_matrix,
)

#: What lscpu prints when it does not know the model; as good as no answer.
UNKNOWN_CPU_MODELS = {"", "-", "unknown"}


def support_of(node: NodeContext) -> NodeSupport:
    return node_support(node.plan.spec.acp.version)


def rows_for(node: NodeContext, architecture: str) -> list[OsRow]:
    return [row for row in support_of(node).systems if row.architecture == architecture]


def os_description(node: NodeContext) -> str:
    """'Ubuntu 22.04.1 LTS (ubuntu 22.04)', for messages."""
    facts = node.facts
    ident = f"{facts.os_id} {facts.os_version_id or '?'}"
    return f"{facts.os_pretty_name} ({ident})" if facts.os_pretty_name else ident


def joined(items: list[str]) -> str:
    """['a', 'b', 'c'] -> 'a, b and c'."""
    return " and ".join([", ".join(items[:-1]), items[-1]]) if len(items) > 1 else "".join(items)


def gb(value: float) -> str:
    return f"{value:.1f} GB" if value % 1 else f"{value:.0f} GB"


# ---------------------------------------------------------------------------
# OS and kernel


@check(
    id="ACP-NODE-027",
    title="the OS release and kernel are in the ACP support matrix",
    severity=Severity.HIGH,
    scope=Scope.NODE,
    applies=preprocessed(),
    refs=PREPROCESSING_PAGES,
    remediation=(
        "Install an OS release listed for the target ACP version and architecture, with its official "
        "distribution kernel "
        "of the listed x.y.z (Ubuntu: the GA kernel, not HWE); otherwise contact Alauda support."
    ),
)
def check_os_kernel_supported(node: NodeContext) -> None:
    """ACP validates each release on a short list of OS releases and kernels ("Supported
    OS and Kernel Versions"). The OS's x.y must match a listed version (a further
    patch number may vary) and the kernel's x.y.z the listed kernel's (the build after
    the first "-" may differ); only the distribution's official kernel is supported,
    which is why Ubuntu HWE kernels (a newer x.y.z) fail. On ARM only Kylin V10 SP3 is
    listed. Anything else is "contact support", i.e. not supported.

    /etc/os-release does not always carry the x.y the matrix needs: CentOS 7 says "7",
    Kylin "V10" for every service pack. Then the kernel is still compared (a wrong
    kernel fails whatever the minor release), and a matching one is MANUAL."""
    facts = node.facts
    acp = node.plan.spec.acp.version
    unknown = [
        label
        for label, value in (
            ("OS ID", facts.os_id),
            ("architecture", facts.architecture),
            ("kernel release", facts.kernel_release),
        )
        if not value
    ]
    if unknown:
        manual(
            f"{node.name}: {listed(unknown)} could not be read; compare /etc/os-release, `uname -m` and "
            f"`uname -r` with the ACP {acp} matrix by hand"
        )
    assert facts.os_id and facts.architecture and facts.kernel_release  # for the type checker
    source = support_of(node).source
    candidates = [row for row in rows_for(node, facts.architecture) if row.os == facts.os_id]
    if not candidates:
        supported = listed(row.name for row in rows_for(node, facts.architecture)) or "nothing"
        fail(
            f"{node.name}: {os_description(node)} on {facts.architecture} is not supported on ACP {acp}; "
            f"supported on {facts.architecture}: {supported} (source: {source})",
            seen=os_description(node),
            source=source,
        )
    release = node_release(facts.os_id, facts.os_version_id, facts.os_pretty_name)
    if release.version is not None:
        matching = [row for row in candidates if release.version in row.versions]
        if not matching:
            fail(
                f"{node.name}: {os_description(node)} is not a supported release on ACP {acp}; supported "
                f"{facts.os_id} releases on {facts.architecture}: "
                f"{listed(v for row in candidates for v in row.versions)} (source: {source})",
                seen=release.version,
                source=source,
            )
        candidates = matching
    kernel = kernel_core(facts.kernel_release)
    allowed = sorted({core for row in candidates for core in row.kernel_cores})
    if kernel not in allowed:
        hwe = " (an Ubuntu HWE kernel? only the GA kernel is supported)" if facts.os_id == "ubuntu" else ""
        fail(
            f"{node.name}: kernel {facts.kernel_release} is not supported with {os_description(node)} on "
            f"ACP {acp}: its x.y.z must be "
            f"{listed(allowed)} (validated: {listed(k for row in candidates for k in row.kernels)}){hwe} "
            f"(source: {source})",
            seen=facts.kernel_release,
            allowed=allowed,
            source=source,
        )
    if release.version is None:
        manual(
            f"{node.name}: kernel {facts.kernel_release} matches, but the {facts.os_id} release cannot be "
            "told from /etc/os-release "
            f"({release.unknown_because}); confirm it is one of "
            f"{listed(v for row in candidates for v in row.versions)} "
            f"(see {release.look_in}) (source: {source})"
        )


@check(
    id="ACP-NODE-028",
    title="an ARM node runs on a supported CPU model (Kunpeng 920)",
    severity=Severity.HIGH,
    scope=Scope.NODE,
    applies=preprocessed(),
    refs=PREPROCESSING_PAGES,
    remediation="Use Kunpeng 920 servers for ARM nodes; for other ARM CPUs contact Alauda support.",
)
def check_arm_cpu_model(node: NodeContext) -> None:
    """On ARM64 ACP supports only Huawei Kunpeng 920 processors (with Kylin V10 SP3);
    other ARM models are "contact support". lscpu names the part "Kunpeng-920" (the
    core is also known as TSV110); the names compared are in os.yaml. x86_64 nodes
    have no CPU-model rule and are skipped."""
    facts = node.facts
    if facts.architecture is None:
        manual(
            f"{node.name}: the architecture could not be read; if this is an ARM node, check that its CPU "
            "is a Kunpeng 920"
        )
    required = sorted({model for row in rows_for(node, facts.architecture) for model in row.cpu_models})
    if not required:
        skip(f"{node.name}: no CPU-model rule for {facts.architecture} nodes")
    model = (facts.cpu_model or "").strip()
    if model.lower() in UNKNOWN_CPU_MODELS:
        manual(
            f"{node.name}: the CPU model could not be read (lscpu: {facts.cpu_model!r}); check that it is "
            f"{listed(required)} by hand"
        )
    if not any(cpu_model_matches(model, name) for name in required):
        source = support_of(node).source
        fail(
            f"{node.name}: {facts.architecture} CPU {model!r} is not supported; ACP "
            f"{node.plan.spec.acp.version} supports {listed(required)} "
            f"on {facts.architecture} (source: {source})",
            seen=model,
            allowed=required,
            source=source,
        )


@check(
    id="ACP-NODE-029",
    title="Kylin V10 is at SP3 (earlier service packs can break NodePort access)",
    severity=Severity.LOW,
    scope=Scope.NODE,
    applies=preprocessed(),
    refs=[PREPROCESSING],
    remediation="Upgrade Kylin V10 to SP3.",
)
def check_kylin_nodeport_bug(node: NodeContext) -> None:
    """The docs warn that Kylin V10, V10 SP1 and V10 SP2 have kernel bugs that can
    break NodePort access, and advise SP3. This is a WARN: the support matrix
    (ACP-NODE-027) is what decides whether the release is supported. Other
    distributions are skipped."""
    facts = node.facts
    if facts.os_id is None:
        manual(f"{node.name}: /etc/os-release could not be read; if this is Kylin V10, check that it is SP3")
    if facts.os_id != "kylin":
        skip(f"{node.name} runs {facts.os_id}, not Kylin")
    bug = os_matrix().kylin_node_port_bug
    pack = kylin_service_pack(facts.os_version_id, facts.os_pretty_name)
    if pack is None:
        manual(
            f"{node.name}: the Kylin service pack cannot be told from /etc/os-release "
            f"({os_description(node)}); check /etc/.productinfo says SP{bug.fixed_in} or later"
        )
    if pack < bug.fixed_in:
        warn(
            f"{node.name}: Kylin V10 SP{pack} has kernel bugs that can break NodePort access; upgrade to "
            f"SP{bug.fixed_in} (source: {bug.source})",
            service_pack=pack,
        )


# ---------------------------------------------------------------------------
# CPU and memory


@check(
    id="ACP-NODE-030",
    title="global control-plane nodes have the minimum CPUs and memory",
    severity=Severity.HIGH,
    scope=Scope.NODE,
    roles={"control-plane"},
    applies=preprocessed(cluster_roles=frozenset({"global"})),
    refs=[PREREQUISITES],
    remediation="Give each global control-plane node at least the listed CPUs and memory (more for extensions and "
    "managed clusters).",
)
def check_global_control_plane_size(node: NodeContext) -> None:
    """The global cluster's Core install needs at least 8 CPUs and 16 GB memory per
    control-plane node, 12 CPUs and 24 GB for a single-node (test/PoC) install. ARM
    nodes need 2x the x86 figures and never less than 1.5x: below 1.5x FAILs, below 2x
    WARNs. These minimums cover the Core only; extensions and the number of managed
    clusters (the sizing tiers of "Evaluating the global cluster") need more, which
    the plan does not describe.

    CPUs are logical CPUs (vCPUs) as the node counts them. GB is read as 10^9 bytes,
    so a machine with 16 GiB passes although the kernel keeps some of it out of
    MemTotal (our reading of the unit). Workload clusters have no documented
    per-node minimum and are not checked."""
    facts, hardware = node.facts, os_matrix().hardware
    if facts.cpu_count is None or facts.memory_kib is None or facts.architecture is None:
        manual(f"{node.name}: CPU count, memory or architecture could not be read; check `nproc` and MemTotal by hand")
    single = len(node.plan.spec.nodes) == 1
    base = hardware.single_node_global if single else hardware.global_control_plane
    layout = "a single-node global cluster" if single else "a global control-plane node"
    arm = facts.architecture == "aarch64"
    minimum_factor = hardware.arm_minimum_factor if arm else 1
    memory = gigabytes(facts.memory_kib)
    min_cpus, min_memory = ceil(base.cpus * minimum_factor), base.memory_gb * minimum_factor
    arm_note = f" ({minimum_factor:g}x the x86 {base.cpus} CPUs / {gb(base.memory_gb)}, on ARM)" if arm else ""
    evidence = {"cpus": facts.cpu_count, "memory_gb": round(memory, 1), "source": hardware.source}
    findings = []
    if facts.cpu_count < min_cpus:
        findings.append(
            f"{node.name}: {facts.cpu_count} CPUs; {layout} needs at least {min_cpus}{arm_note} (source: "
            f"{hardware.source})"
        )
    if memory < min_memory:
        findings.append(
            f"{node.name}: {gb(memory)} memory; {layout} needs at least {gb(min_memory)}{arm_note} (source: "
            f"{hardware.source})"
        )
    fail_if(findings, **evidence)
    if arm:
        factor = hardware.arm_recommended_factor
        rec_cpus, rec_memory = ceil(base.cpus * factor), base.memory_gb * factor
        if facts.cpu_count < rec_cpus or memory < rec_memory:
            warn(
                f"{node.name}: {facts.cpu_count} CPUs / {gb(memory)} memory on ARM; {factor:g}x the x86 minimum, "
                f"{rec_cpus} CPUs / {gb(rec_memory)}, is recommended for {layout} (source: {hardware.source})",
                **evidence,
            )


# ---------------------------------------------------------------------------
# Disks


def disk_of(node: NodeContext, path: str) -> DiskSpace | None:
    return next((disk for disk in node.facts.disks if disk.path == path), None)


@check(
    id="ACP-NODE-031",
    title="etcd, containerd and /cpaas have the documented disk space",
    severity=Severity.HIGH,
    scope=Scope.NODE,
    applies=preprocessed(),
    refs=[DISK_CONFIGURATION],
    remediation=(
        "Give /var/lib/etcd (control plane), /var/lib/containerd and /cpaas dedicated disks or LVM volumes "
        "of at least the "
        "minimum size (recommended: 20, 150 and 200 GB)."
    ),
)
def check_data_disk_space(node: NodeContext) -> None:
    """The disk configuration page sizes the partitions of /var/lib/etcd (control
    plane: 10 GB minimum, 20 recommended), /var/lib/containerd (100, 150) and /cpaas
    (100 on global control-plane nodes, 40 elsewhere; 200 recommended), and advises
    dedicated disks. A dedicated mount (mounted at the path itself) is judged by its
    size. Paths without one land on a shared filesystem (often /) and share its free
    space: that filesystem needs the sum of their sizes free (our reading; the docs
    size partitions and say nothing of sharing). Below the minimum FAILs, below the
    recommended size WARNs. GB is 10^9 bytes."""
    require(node, "disks")
    disks = os_matrix().disks
    cluster_role = node.plan.spec.cluster.role
    rules: dict[str, DiskRule] = {}
    for rule in disks.paths:  # the first rule that applies to a path wins
        if rule.applies_to(node.role, cluster_role):
            rules.setdefault(rule.path, rule)
    by_mount: dict[str, list[tuple[str, DiskSpace]]] = defaultdict(list)
    unknown = []
    for path in rules:
        disk = disk_of(node, path)
        if disk is None:
            unknown.append(f"{node.name}: the space available to {path} could not be read")
        else:
            by_mount[disk.mount].append((path, disk))
    findings, warnings = [], []
    for mount, entries in sorted(by_mount.items()):
        paths = [path for path, _ in entries]
        minimum = sum(rules[path].minimum_gb for path in paths)
        recommended = sum(rules[path].recommended_gb for path in paths)
        disk = entries[0][1]
        if paths == [mount]:
            room, what = gigabytes(disk.size_kib), f"{mount} is a {gb(gigabytes(disk.size_kib))} mount"
        else:
            room = gigabytes(disk.available_kib)
            shared = f"share the {mount} filesystem" if len(paths) > 1 else f"is on the {mount} filesystem"
            what = f"{joined(paths)} {shared}, {gb(room)} free"
        parts = " + ".join(f"{gb(rules[path].minimum_gb)} {path}" for path in paths) if len(paths) > 1 else ""
        if room < minimum:
            findings.append(
                f"{node.name}: {what}; at least {gb(minimum)}{f' ({parts})' if parts else ''} is required "
                f"(source: {disks.source})"
            )
        elif room < recommended:
            warnings.append(f"{node.name}: {what}; {gb(recommended)} is recommended (source: {disks.source})")
    conclude(
        findings,
        warnings=warnings,
        unknown=unknown,
        disks=[f"{d.path} on {d.mount}" for _, e in by_mount.items() for _, d in e],
    )


@check(
    id="ACP-NODE-032",
    title="the root filesystem is at least 50 GB and less than 80 % used",
    severity=Severity.MEDIUM,
    scope=Scope.NODE,
    applies=preprocessed(),
    refs=[DISK_CONFIGURATION],
    remediation="Grow the root filesystem to at least 50 GB (100 GB recommended) and free space until it is less than "
    "80 % used.",
)
def check_root_filesystem(node: NodeContext) -> None:
    """The disk configuration page asks for a root filesystem of at least 50 GB (100
    recommended) kept below 80 % use, because above that the kubelet starts evicting
    pods. Use is measured as the kubelet does, 1 - available / size, so blocks
    reserved for root count as used. Below 100 GB is a WARN. GB is 10^9 bytes."""
    require(node, "disks")
    root, source = os_matrix().disks.root, os_matrix().disks.source
    disk = disk_of(node, "/")
    if disk is None or disk.size_kib <= 0:
        manual(f"{node.name}: the size of the root filesystem could not be read; check `df -h /` by hand")
    size = gigabytes(disk.size_kib)
    used = 100 * (1 - disk.available_kib / disk.size_kib)
    findings = []
    if size < root.minimum_gb:
        findings.append(
            f"{node.name}: the root filesystem is {gb(size)}; at least {gb(root.minimum_gb)} is required "
            f"(source: {source})"
        )
    if used >= root.max_used_percent:
        findings.append(
            f"{node.name}: the root filesystem is {used:.0f} % used; keep it below "
            f"{root.max_used_percent:g} % (source: {source})"
        )
    fail_if(findings, size_gb=round(size, 1), used_percent=round(used, 1))
    if size < root.recommended_gb:
        warn(
            f"{node.name}: the root filesystem is {gb(size)}; {gb(root.recommended_gb)} is recommended "
            f"(source: {source})",
            size_gb=round(size, 1),
        )
