"""Node preprocessing, OS and kernel: boot parameters, kernel modules, security
modules, host firewall and swap (node preprocessing K1-K7).

Node state that makes each check FAIL (for the lab):

- ACP-NODE-001: /proc/cmdline without ``transparent_hugepage=never`` (or with another value last).
- ACP-NODE-002: CentOS 7 (os-release ID=centos, VERSION_ID=7) booted without ``cgroup.memory=nokmem``.
- ACP-NODE-003: one of ip_vs, ip_vs_rr, ip_vs_wrr, ip_vs_sh missing from /proc/modules.
- ACP-NODE-004: kernel < 4.19.0 (RHEL: < 4.18.0) without nf_conntrack_ipv4 loaded
  (or without nf_conntrack_ipv6 when the plan is IPv6 or dual-stack).
- ACP-NODE-005: Kube-OVN plan, and geneve or openvswitch missing from /proc/modules.
- ACP-NODE-006: SELinux enforcing, or /sys/module/apparmor/parameters/enabled = Y
  (SELinux permissive is a WARN).
- ACP-NODE-007: the firewalld, ufw, nftables or iptables service active.
- ACP-NODE-008: any active swap in /proc/swaps.
"""

from __future__ import annotations

import shlex

from acpcheck import NodeContext, Scope, Severity, check, fail, fail_if, manual, skip, warn
from acpcheck.checks.support import listed, plan_page, preprocessed, require
from acpcheck.constants import PREPROCESSING
from acpcheck.matrix.os import kernel_tuple
from acpcheck.remediation import (
    Changes,
    NamedCommand,
    NodeView,
    RunCommand,
    WriteFile,
    changes_of,
    comment_out_swap,
    edit,
    kernel_parameter,
    load_modules,
    set_assignment,
    step,
)

IP_VS_MODULES = ["ip_vs", "ip_vs_rr", "ip_vs_wrr", "ip_vs_sh"]
KUBE_OVN_MODULES = ["geneve", "openvswitch"]

#: Below these kernels nf_conntrack_ipv4/_ipv6 are separate modules (merged into
#: nf_conntrack upstream in 4.19; RHEL backported the merge into its 4.18 kernels).
CONNTRACK_SPLIT_BELOW = (4, 19, 0)
CONNTRACK_SPLIT_BELOW_RHEL = (4, 18, 0)

# ---------------------------------------------------------------------------
# Shared helpers


def boot_parameters(cmdline: str) -> dict[str, list[str]]:
    """Every ``key=value`` of a kernel command line, each key's values in the order given."""
    parameters: dict[str, list[str]] = {}
    for token in cmdline.split():
        key, _, value = token.partition("=")
        parameters.setdefault(key, []).append(value)
    return parameters


def cmdline_of(node: NodeContext) -> str:
    """The running kernel's command line; MANUAL when it could not be read."""
    cmdline = node.facts.kernel_cmdline
    if cmdline is None:
        manual(f"{node.name}: /proc/cmdline could not be read; check the kernel command line by hand")
    return cmdline


def require_modules(node: NodeContext, required: list[str], needed_by: str) -> None:
    """FAIL naming the ``required`` kernel modules that are not loaded."""
    require(node, "modules")
    missing = [module for module in required if module not in node.facts.modules]
    if missing:
        fail(
            f"{node.name}: kernel module(s) {listed(missing)} not loaded; {needed_by} needs {listed(required)} "
            f"(source: {plan_page(node.plan)})",
            missing=missing,
            required=required,
        )


def kernel_of(node: NodeContext) -> tuple[int, int, int]:
    """The kernel's (x, y, z); MANUAL when uname -r could not be read."""
    version = kernel_tuple(node.facts.kernel_release)
    if version is None:
        manual(
            f"{node.name}: the kernel release ({node.facts.kernel_release or 'nothing'}) could not be read "
            "as x.y.z; check `uname -r` by hand"
        )
    return version


def dotted(version: tuple[int, ...]) -> str:
    return ".".join(map(str, version))


# ---------------------------------------------------------------------------
# K1, K2: boot parameters


@check(
    id="ACP-NODE-001",
    title="transparent huge pages are disabled on the kernel command line",
    severity=Severity.HIGH,
    scope=Scope.NODE,
    applies=preprocessed(),
    refs=[PREPROCESSING],
    remediation=(
        "Add transparent_hugepage=never to GRUB_CMDLINE_LINUX in /etc/default/grub, regenerate the GRUB configuration "
        "(grub2-mkconfig or update-grub) and reboot."
    ),
)
def check_transparent_hugepage_never(node: NodeContext) -> None:
    """Node preprocessing requires transparent_hugepage=never in the GRUB boot
    configuration on every node. The docs give no reason; transparent huge pages are
    commonly turned off for latency-sensitive stores such as etcd, whose compaction
    stalls they cause. The running kernel's /proc/cmdline is what counts, so a GRUB
    change that is waiting for a reboot still fails. The kernel uses the last value
    when the parameter is given twice."""
    values = boot_parameters(cmdline_of(node)).get("transparent_hugepage")
    if not values:
        fail(
            f"{node.name}: the kernel command line has no transparent_hugepage parameter; node "
            "preprocessing requires transparent_hugepage=never"
        )
    if values[-1] != "never":
        fail(
            f"{node.name}: the kernel command line sets transparent_hugepage={values[-1]}; node "
            "preprocessing requires transparent_hugepage=never",
            seen=values[-1],
        )


@check(
    id="ACP-NODE-002",
    title="CentOS 7 boots with cgroup.memory=nokmem",
    severity=Severity.HIGH,
    scope=Scope.NODE,
    applies=preprocessed(),
    refs=[PREPROCESSING],
    remediation="On CentOS 7, add cgroup.memory=nokmem to GRUB_CMDLINE_LINUX in /etc/default/grub, run grub2-mkconfig "
    "and reboot.",
)
def check_centos7_nokmem(node: NodeContext) -> None:
    """On CentOS 7 node preprocessing requires cgroup.memory=nokmem in the GRUB boot
    configuration: the 3.10 kernel's kernel-memory accounting leaks memory cgroups,
    which ends in "no space left on device" when pods are created
    (kubernetes/kubernetes#61937). Other distributions are skipped, as the docs only
    ask it of CentOS 7.
    ``cgroup.memory`` takes a comma-separated list and may be given more than once."""
    os_id, version = node.facts.os_id, node.facts.os_version_id
    if os_id is None:
        manual(
            f"{node.name}: /etc/os-release could not be read, so it is unknown whether this is CentOS 7 "
            "(which needs cgroup.memory=nokmem)"
        )
    if os_id != "centos" or not (version or "").startswith("7"):
        skip(f"{node.name} runs {os_id} {version or ''}".rstrip() + ": only CentOS 7 needs cgroup.memory=nokmem")
    options = [
        option for value in boot_parameters(cmdline_of(node)).get("cgroup.memory", []) for option in value.split(",")
    ]
    if "nokmem" not in options:
        seen = ",".join(options) if options else "no cgroup.memory parameter"
        fail(
            f"{node.name}: CentOS {version} kernel command line has {seen}; node preprocessing requires "
            "cgroup.memory=nokmem on CentOS 7",
            seen=seen,
        )


# ---------------------------------------------------------------------------
# K3, K4, K5: kernel modules


@check(
    id="ACP-NODE-003",
    title="IPVS kernel modules are loaded",
    severity=Severity.HIGH,
    scope=Scope.NODE,
    applies=preprocessed(),
    refs=[PREPROCESSING],
    remediation=(
        "Load the modules (modprobe ip_vs ip_vs_rr ip_vs_wrr ip_vs_sh) and list them in /etc/modules-load.d/ipvs.conf "
        "so they load at boot."
    ),
)
def check_ipvs_modules(node: NodeContext) -> None:
    """kube-proxy runs in IPVS mode on ACP, which needs ip_vs and its round-robin,
    weighted round-robin and source-hashing schedulers (ip_vs_rr, ip_vs_wrr,
    ip_vs_sh) on every node."""
    require_modules(node, IP_VS_MODULES, "kube-proxy in IPVS mode")


@check(
    id="ACP-NODE-004",
    title="connection-tracking modules are loaded on kernels older than 4.19",
    severity=Severity.HIGH,
    scope=Scope.NODE,
    applies=preprocessed(),
    refs=[PREPROCESSING],
    remediation=(
        "Load nf_conntrack_ipv4 (and nf_conntrack_ipv6 for IPv6 or dual-stack clusters) with modprobe and list them in "
        "/etc/modules-load.d/ so they load at boot."
    ),
)
def check_conntrack_modules(node: NodeContext) -> None:
    """On kernels older than 4.19.0 (RHEL: 4.18.0) connection tracking for each address
    family is a separate module, nf_conntrack_ipv4 and nf_conntrack_ipv6, which
    node preprocessing requires (IPv6 only when the cluster uses IPv6). Newer kernels
    merged them into nf_conntrack, so the check is skipped there."""
    kernel = kernel_of(node)
    threshold = CONNTRACK_SPLIT_BELOW_RHEL if node.facts.os_id == "rhel" else CONNTRACK_SPLIT_BELOW
    if kernel >= threshold:
        skip(
            f"{node.name}: kernel {dotted(kernel)} is {dotted(threshold)} or newer; nf_conntrack_ipv4/_ipv6 "
            "are part of nf_conntrack there"
        )
    ip_family = node.plan.spec.cluster.ip_family
    required = ["nf_conntrack_ipv4"] + (["nf_conntrack_ipv6"] if ip_family in ("ipv6", "dual-stack") else [])
    require_modules(
        node, required, f"kernel {dotted(kernel)} (older than {dotted(threshold)}), cluster IP family {ip_family},"
    )


@check(
    id="ACP-NODE-005",
    title="Kube-OVN kernel modules geneve and openvswitch are loaded",
    severity=Severity.HIGH,
    scope=Scope.NODE,
    applies=preprocessed(plugins=frozenset({"kube-ovn"})),
    refs=[PREPROCESSING],
    remediation="Load the modules (modprobe geneve openvswitch) and list them in /etc/modules-load.d/kube-ovn.conf so "
    "they load at boot.",
)
def check_kube_ovn_modules(node: NodeContext) -> None:
    """Kube-OVN builds its overlay with Open vSwitch and Geneve tunnels, so node
    preprocessing requires the geneve and openvswitch modules when Kube-OVN is the
    network plugin."""
    require_modules(node, KUBE_OVN_MODULES, "Kube-OVN")


# ---------------------------------------------------------------------------
# K6, K7: security modules, firewall, swap


@check(
    id="ACP-NODE-006",
    title="SELinux and AppArmor are disabled",
    severity=Severity.HIGH,
    scope=Scope.NODE,
    applies=preprocessed(),
    refs=[PREPROCESSING],
    remediation=(
        "SELinux: set SELINUX=disabled in /etc/selinux/config and reboot. AppArmor: systemctl disable --now "
        "apparmor and "
        "add apparmor=0 to the kernel command line, then reboot."
    ),
)
def check_security_modules_disabled(node: NodeContext) -> None:
    """Node preprocessing requires SELinux and AppArmor to be disabled: their policies
    deny the container runtime, the CNI and host-path volumes in ways that surface as
    unexplained permission errors. The docs say "disable" without discussing
    permissive mode; permissive enforces nothing but is not "disabled", so it is a
    WARN rather than a FAIL (our reading). SELinux absent from the node (None) and an
    AppArmor module that is not loaded count as disabled."""
    facts = node.facts
    findings = []
    if facts.selinux == "enforcing":
        findings.append(f"{node.name}: SELinux is enforcing; node preprocessing requires it disabled")
    if facts.apparmor_enabled:
        findings.append(
            f"{node.name}: AppArmor is enabled (/sys/module/apparmor/parameters/enabled = Y); node "
            "preprocessing requires it disabled"
        )
    fail_if(findings, selinux=facts.selinux, apparmor_enabled=facts.apparmor_enabled)
    if facts.selinux == "permissive":
        warn(
            f"{node.name}: SELinux is permissive; node preprocessing asks for it to be disabled", selinux=facts.selinux
        )


@check(
    id="ACP-NODE-007",
    title="no host firewall service is active",
    severity=Severity.HIGH,
    scope=Scope.NODE,
    applies=preprocessed(),
    refs=[PREPROCESSING],
    remediation="Stop and disable the firewall service: systemctl disable --now firewalld (or ufw disable, or "
    "systemctl disable --now nftables / iptables).",
)
def check_firewall_disabled(node: NodeContext) -> None:
    """Node preprocessing requires the host firewall to be off: kube-proxy and the CNI
    program their own netfilter rules, and a firewall service that reloads its rule
    set drops them, or blocks the ports the cluster uses between nodes. What counts
    as active is the probe's reading (acpcheck.facts.parse): the firewalld unit
    running, ufw enabled, or an nftables/iptables rule set that filters."""
    require(node, "firewall_services")
    active = sorted(name for name, state in node.facts.firewall_services.items() if state == "active")
    fail_if(
        [
            f"{node.name}: firewall service {name} is active; node preprocessing requires the firewall disabled"
            for name in active
        ],
        services=dict(node.facts.firewall_services),
    )


@check(
    id="ACP-NODE-008",
    title="swap is disabled",
    severity=Severity.HIGH,
    scope=Scope.NODE,
    applies=preprocessed(),
    refs=[PREPROCESSING],
    remediation="Run `swapoff -a` and remove or comment out the swap entries in /etc/fstab (and any systemd swap "
    "units).",
)
def check_swap_disabled(node: NodeContext) -> None:
    """The kubelet refuses to start with swap on by default, and swapped-out etcd or
    API server memory turns into timeouts; node preprocessing requires swap off."""
    require(node, "swaps")
    fail_if(
        [
            f"{node.name}: swap is active on {device}; node preprocessing requires swap disabled"
            for device in node.facts.swaps
        ],
        swaps=list(node.facts.swaps),
    )


# ---------------------------------------------------------------------------
# Remediation steps (`acpcheck remediate`): what acpcheck may change to fix the checks
# above, read from the node's current files (see acpcheck/remediation/steps.py).


@step(
    fixes=check_transparent_hugepage_never,
    name="grub-thp",
    does="puts transparent_hugepage=never on the kernel command line of the next boot (GRUB); no reboot",
)
def grub_transparent_hugepage(node: NodeView) -> Changes:
    return kernel_parameter(node, "transparent_hugepage=never")


@step(
    fixes=check_centos7_nokmem,
    name="grub-nokmem",
    does="puts cgroup.memory=nokmem on the kernel command line of the next boot (GRUB); no reboot",
)
def grub_nokmem(node: NodeView) -> Changes:
    return kernel_parameter(node, "cgroup.memory=nokmem", exclusive=False)


@step(
    fixes=check_ipvs_modules,
    name="ipvs-modules",
    does="loads the IPVS modules now and lists them in /etc/modules-load.d/ipvs.conf",
)
def ipvs_modules(node: NodeView) -> Changes:
    return load_modules(node, IP_VS_MODULES, "/etc/modules-load.d/ipvs.conf", "kube-proxy in IPVS mode")


@step(
    fixes=check_conntrack_modules,
    name="conntrack-modules",
    does="loads nf_conntrack_ipv4 (and _ipv6) now and lists them in /etc/modules-load.d/conntrack.conf",
)
def conntrack_modules(node: NodeView) -> Changes:
    wanted = ["nf_conntrack_ipv4"] + (
        ["nf_conntrack_ipv6"] if node.plan.spec.cluster.ip_family in ("ipv6", "dual-stack") else []
    )
    return load_modules(
        node, wanted, "/etc/modules-load.d/conntrack.conf", "connection tracking on kernels before 4.19"
    )


@step(
    fixes=check_kube_ovn_modules,
    name="kube-ovn-modules",
    does="loads geneve and openvswitch now and lists them in /etc/modules-load.d/kube-ovn.conf",
)
def kube_ovn_modules(node: NodeView) -> Changes:
    return load_modules(node, KUBE_OVN_MODULES, "/etc/modules-load.d/kube-ovn.conf", "Kube-OVN")


SELINUX_ENFORCE = "/sys/fs/selinux/enforce"


@step(
    fixes=check_security_modules_disabled,
    name="selinux-off",
    does=(
        "switches SELinux to permissive now and sets SELINUX=disabled in /etc/selinux/config (disabled from the "
        "next boot)"
    ),
)
def selinux_off(node: NodeView) -> Changes:
    parts: list[tuple[RunCommand | WriteFile | None, str | None]] = []
    deferred = False
    if node.facts.selinux == "enforcing":
        why_not = node.kernel_view(SELINUX_ENFORCE) or (
            None if node.writable(SELINUX_ENFORCE) else f"{SELINUX_ENFORCE} is read-only here"
        )
        if why_not is None:
            now, back = (
                ("setenforce 0", NamedCommand("setenforce", mode="1"))
                if node.has("setenforce")
                else (f"echo 0 > {SELINUX_ENFORCE}", NamedCommand("selinux-enforce-file", mode="1"))
            )
            parts.append((RunCommand(now, "permissive now", reverse=back), None))
        else:
            parts.append((None, f"SELinux stays enforcing until the next boot: {why_not}"))
    if node.file("/etc/selinux/config").kind != "absent":
        change, note = edit(
            node,
            "/etc/selinux/config",
            lambda text: set_assignment(text, "SELINUX", "disabled"),
            "disabled from the next boot",
        )
        parts.append((change, note))
        deferred = change is not None or node.facts.selinux in ("enforcing", "permissive")
    notes = []
    if node.facts.apparmor_enabled:
        notes.append(
            "AppArmor is enabled and is not changed by acpcheck (node preprocessing: `systemctl disable "
            "--now apparmor`, "
            "apparmor=0 on the kernel command line, reboot)"
        )
    return changes_of(parts, deferred=deferred, notes=notes)


@step(
    fixes=check_firewall_disabled,
    name="firewall-off",
    does=(
        "stops and disables the active firewall (firewalld, ufw, nftables rules, iptables rules), saving what undoes it"
    ),
)
def firewall_off(node: NodeView) -> Changes:
    active = {name for name, state in node.facts.firewall_services.items() if state == "active"}
    actions: list[RunCommand | WriteFile] = []
    notes: list[str] = []

    def stop_unit(unit: str) -> None:
        running, enabled = node.unit_state(unit)
        if running == "active" or enabled == "enabled":
            reverse = NamedCommand("systemctl-enable-now" if enabled == "enabled" else "systemctl-start", unit=unit)
            actions.append(
                RunCommand(f"systemctl disable --now {unit}", f"stop {unit} and keep it off at boot", reverse=reverse)
            )

    if "firewalld" in active:
        stop_unit("firewalld.service")
    if "ufw" in active:
        if node.has("ufw"):
            actions.append(
                RunCommand(
                    "ufw disable",
                    "stop ufw and keep it off at boot",
                    reverse=NamedCommand("ufw-enable"),
                    touches=("/etc/ufw/ufw.conf",),
                )
            )
        else:
            change, note = edit(
                node,
                "/etc/ufw/ufw.conf",
                lambda text: set_assignment(text, "ENABLED", "no"),
                "ufw off at boot (no ufw command here)",
            )
            actions += [change] if change else []
            notes += [note] if note else []
    if "nftables" in active:
        if node.systemd:
            stop_unit("nftables.service")
        actions.append(
            RunCommand(
                "nft flush ruleset",
                "drop every nftables rule",
                capture="nft list ruleset",
                reverse=NamedCommand("nft-restore"),
            )
        )
    if "iptables" in active:
        if node.systemd:
            stop_unit("iptables.service")
        flush = (
            "iptables -P INPUT ACCEPT && iptables -P FORWARD ACCEPT && iptables -P OUTPUT ACCEPT && iptables -F "
            "&& iptables -X"
        )
        actions.append(
            RunCommand(
                flush,
                "accept everything, drop every iptables rule",
                capture="iptables-save",
                reverse=NamedCommand("iptables-restore"),
            )
        )
    return Changes(tuple(actions), tuple(notes))


@step(
    fixes=check_swap_disabled,
    name="swap-off",
    does="turns swap off now and comments the swap entries out of /etc/fstab",
)
def swap_off(node: NodeView) -> Changes:
    parts: list[tuple[RunCommand | WriteFile | None, str | None]] = [
        edit(node, "/etc/fstab", comment_out_swap, "no swap at boot")
    ]
    deferred = False
    why_not = node.kernel_view("/proc/swaps")
    for device in node.facts.swaps:
        if why_not is None:
            quoted = shlex.quote(device)
            reverse = NamedCommand("swapon", device=device)
            parts.append(
                (RunCommand(f"swapoff {quoted}", f"swap off on {device} now", reverse=reverse, timeout=1800), None)
            )
        if device.startswith("/dev/zram"):
            parts.append(
                (
                    None,
                    f"{device} is zram swap, set up at boot by zram-generator or a zram service: disable "
                    "that too (not changed by acpcheck)",
                )
            )
    if why_not is not None and node.facts.swaps:
        deferred = True
        parts.append(
            (None, f"swapoff is not run: {why_not}; without fstab entries there is no swap after the next boot")
        )
    return changes_of(parts, deferred=deferred)
