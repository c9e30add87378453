"""Node preprocessing, software: required tools, leftovers of other Kubernetes or
container installations, and /tmp (node preprocessing S1, S3-S6). The lists come
from ``acpcheck/matrix/os.yaml``, which the probe reads too.

S2 (lvm2 when TopoLVM or Rook local storage is planned) is not checked: the plan
does not say which storage will be used.

Node state that makes each check FAIL (for the lab):

- ACP-NODE-022: one of ip, ss, tar, swapoff, modprobe, sysctl, md5sum missing from PATH, or neither scp nor sftp.
- ACP-NODE-023: /etc/systemd/system/kubelet.service exists.
- ACP-NODE-024: /tmp mounted with noexec (e.g. a tmpfs with ``noexec``).
- ACP-NODE-025: a conflicting package installed (e.g. ``podman`` on RHEL, ``docker.io`` on Ubuntu,
  the ``microk8s`` snap) or a runtime/Kubernetes binary in /usr/local/bin (e.g. /usr/local/bin/runc).
- ACP-NODE-026: a leftover path of the plan's ACP version exists (e.g. /var/lib/docker, /var/log/pods;
  /var/lib/nerdctl from 4.2). A leftover path that is itself a mount point is a WARN.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

from acpcheck import NodeContext, Scope, Severity, check, fail, manual
from acpcheck.checks.support import (
    PREPROCESSING_PAGES,
    before_install,
    conclude,
    listed,
    preprocessed,
    require,
)
from acpcheck.constants import PREPROCESSING
from acpcheck.matrix.os import node_support, os_matrix
from acpcheck.remediation import Changes, MoveAside, NamedCommand, NodeView, WriteFile, remove_packages, step


def rules_source() -> str:
    return os_matrix().preprocessing.source


@check(
    id="ACP-NODE-022",
    title="the tools the installer runs on the node are installed",
    severity=Severity.HIGH,
    scope=Scope.NODE,
    applies=preprocessed(),
    refs=[PREPROCESSING],
    remediation=(
        "Install the missing tools with the distribution's package manager (iproute2/iproute, tar, util-linux, "
        "kmod, procps, coreutils, openssh-clients)."
    ),
)
def check_required_binaries(node: NodeContext) -> None:
    """The installer runs ip, ss, tar, swapoff, modprobe, sysctl and md5sum on every
    node and copies files with scp or sftp; node preprocessing requires them on PATH."""
    require(node, "binaries")
    pre = os_matrix().preprocessing
    binaries = node.facts.binaries
    findings, unknown = [], []
    for name in pre.required_binaries:
        if name not in binaries:
            unknown.append(f"{node.name}: the probe did not look for {name}")
        elif binaries[name] is None:
            findings.append(f"{node.name}: {name} is not on PATH; node preprocessing requires it")
    for group in pre.any_of_binaries:
        asked = [name for name in group if name in binaries]
        if any(binaries[name] for name in asked):
            continue
        if len(asked) == len(group):
            findings.append(f"{node.name}: none of {listed(group)} is on PATH; node preprocessing requires one of them")
        else:
            unknown.append(f"{node.name}: the probe did not look for {listed(n for n in group if n not in asked)}")
    conclude(findings, unknown=unknown, binaries=dict(binaries))


@check(
    id="ACP-NODE-023",
    title="no kubelet unit file is left in /etc/systemd/system",
    severity=Severity.HIGH,
    scope=Scope.NODE,
    applies=before_install(),
    refs=[PREPROCESSING],
    remediation=(
        "Remove the earlier Kubernetes installation (kubeadm reset, or uninstall its packages) and delete "
        "/etc/systemd/system/kubelet.service, then run `systemctl daemon-reload`."
    ),
)
def check_no_kubelet_unit(node: NodeContext) -> None:
    """A kubelet.service in /etc/systemd/system belongs to an earlier Kubernetes
    installation; it overrides the unit ACP installs and starts a kubelet with the
    wrong configuration. Node preprocessing requires it not to exist. Not run on
    upgrade plans, whose nodes carry ACP's own kubelet."""
    require(node, "existing_paths")
    unit = os_matrix().preprocessing.kubelet_unit
    if unit in node.facts.existing_paths:
        fail(f"{node.name}: {unit} exists; node preprocessing requires it absent", path=unit)


@check(
    id="ACP-NODE-024",
    title="/tmp is not mounted noexec",
    severity=Severity.HIGH,
    scope=Scope.NODE,
    applies=preprocessed(),
    refs=[PREPROCESSING],
    remediation="Remove noexec from the /tmp mount options (in /etc/fstab or the tmp.mount unit) and remount /tmp.",
)
def check_tmp_executable(node: NodeContext) -> None:
    """Node preprocessing requires /tmp not to be mounted noexec. The docs give no
    reason; installers commonly unpack helpers to /tmp and run them there. When /tmp
    is no mount of its own, the mount that holds it (usually /) counts."""
    require(node, "mounts")
    mount = node.facts.mount_of("/tmp")
    if mount is None:
        manual(
            f"{node.name}: the mount table could not be read; check that /tmp is not noexec by hand (`findmnt -T /tmp`)"
        )
    if "noexec" in mount.options:
        where = "/tmp" if mount.target == "/tmp" else f"/tmp (on the {mount.target} mount)"
        fail(
            (
                f"{node.name}: {where} is mounted noexec ({mount.fstype}, {','.join(mount.options)}); node "
                "preprocessing requires /tmp to allow execution"
            ),
            options=list(mount.options),
        )


@check(
    id="ACP-NODE-025",
    title="no conflicting container or Kubernetes package or binary is installed",
    severity=Severity.HIGH,
    scope=Scope.NODE,
    applies=before_install(),
    refs=[PREPROCESSING],
    remediation=(
        "Back up any data, then remove the listed packages (yum remove / apt-get purge / snap remove --purge) and "
        "delete the listed files from /usr/local/bin."
    ),
)
def check_no_conflicting_software(node: NodeContext) -> None:
    """Another container runtime or Kubernetes distribution on the node competes with
    ACP's for the same sockets, ports, cgroups and binaries on PATH. Node
    preprocessing lists the packages to remove per distribution (the appendix
    "Remove Conflicting Packages") and asks to look for stray docker, nerdctl,
    containerd, runc, podman and Kubernetes binaries in /usr/local/bin; the file-name
    patterns for those are ours (os.yaml). Not run on upgrade plans."""
    require(node, "installed_packages", "snaps", "usr_local_bin")
    facts, pre = node.facts, os_matrix().preprocessing
    findings, unknown = [], []
    os_id = facts.os_id or ""
    if os_id in pre.packages:
        conflicting, list_of = set(pre.packages[os_id]), f"the {os_id} list"
    else:  # unsupported or unknown distribution: any distribution's list is a conflict
        conflicting, list_of = {name for names in pre.packages.values() for name in names}, "every distribution's list"
    if facts.package_manager is None:
        unknown.append(f"{node.name}: no package manager (dpkg or rpm) answered, so installed packages are unknown")
    for package in sorted(facts.installed_packages & conflicting):
        findings.append(f"{node.name}: conflicting package {package} is installed ({facts.package_manager}; {list_of})")
    for snap in sorted(facts.snaps & set(pre.snaps.get(os_id, []))):
        findings.append(f"{node.name}: conflicting snap {snap} is installed")
    for name in sorted(facts.usr_local_bin):
        if any(fnmatchcase(name, pattern) for pattern in pre.stray_binaries):
            findings.append(f"{node.name}: /usr/local/bin/{name} is a stray container-runtime or Kubernetes binary")
    source = f"source: {rules_source()}"
    conclude([f"{line} ({source})" for line in findings], unknown=unknown)


@check(
    id="ACP-NODE-026",
    title="no data of an earlier container runtime or Kubernetes is left on the node",
    severity=Severity.HIGH,
    scope=Scope.NODE,
    applies=before_install(),
    refs=PREPROCESSING_PAGES,
    remediation="Back up anything needed, then delete the listed paths (rm -rf) before installing.",
)
def check_no_leftover_paths(node: NodeContext) -> None:
    """Old images, pod logs, kubelet certificates or runtime state make the new
    components start from foreign data; node preprocessing lists the paths to delete:
    /var/lib/docker, /var/lib/containerd, /var/log/pods and /var/lib/kubelet/pki, and
    from ACP 4.2 also /var/lib/nerdctl and /opt/nerdctl/. A listed path that is itself
    a mount point is a dedicated disk (as the disk configuration page recommends for
    /var/lib/containerd) and cannot be deleted, only emptied: that is a WARN, since
    the facts do not say whether it is empty. Not run on upgrade plans."""
    require(node, "existing_paths")
    support = node_support(node.plan.spec.acp.version)
    mount_points = {mount.target.rstrip("/") or "/" for mount in node.facts.mounts}
    present = [
        path
        for path in support.leftover_paths
        if path.rstrip("/") in {p.rstrip("/") for p in node.facts.existing_paths}
    ]
    findings = [
        f"{node.name}: {path} exists; node preprocessing on ACP {node.plan.spec.acp.version} requires it deleted"
        for path in present
        if path not in mount_points
    ]
    warnings = [
        f"{node.name}: {path} is a mount point; make sure it is empty (node preprocessing requires the path deleted)"
        for path in present
        if path in mount_points
    ]
    conclude(
        [f"{line} (source: {support.leftover_paths_source})" for line in findings],
        warnings=warnings,
        present=present,
        source=support.leftover_paths_source,
    )


# ---------------------------------------------------------------------------
# Remediation steps (`acpcheck remediate --allow-removals`; see
# acpcheck/remediation/steps.py). They delete software and data, so they run only when
# asked for explicitly, and keep a backup on the node that `acpcheck rollback` restores.


@step(
    fixes=check_no_kubelet_unit,
    name="kubelet-unit",
    does="removes /etc/systemd/system/kubelet.service (its content kept in the journal)",
    removes=True,
)
def remove_kubelet_unit(node: NodeView) -> Changes:
    unit = os_matrix().preprocessing.kubelet_unit
    state = node.file(unit)
    if state.kind != "file":
        return Changes(notes=(f"{unit} is {state.kind}: nothing acpcheck removes",) if state.exists else ())
    reload = NamedCommand("systemctl-daemon-reload") if node.systemd else None
    return Changes((WriteFile(unit, state, None, "a leftover of an earlier Kubernetes", then=reload),))


@step(
    fixes=check_no_conflicting_software,
    name="conflicting-software",
    does="removes the conflicting packages and moves the stray /usr/local/bin binaries aside",
    removes=True,
)
def remove_conflicting_software(node: NodeView) -> Changes:
    facts, pre = node.facts, os_matrix().preprocessing
    os_id = facts.os_id or ""
    conflicting = set(pre.packages.get(os_id, [name for names in pre.packages.values() for name in names]))
    packages = remove_packages(node, sorted(facts.installed_packages & conflicting), facts.package_manager)
    strays = tuple(
        MoveAside(f"/usr/local/bin/{name}", "a stray container-runtime or Kubernetes binary")
        for name in sorted(facts.usr_local_bin)
        if any(fnmatchcase(name, pattern) for pattern in pre.stray_binaries)
    )
    snaps = sorted(facts.snaps & set(pre.snaps.get(os_id, [])))
    notes = [
        f"snap {name}: remove it by hand (`snap remove --purge {name}`); acpcheck cannot restore a snap"
        for name in snaps
    ]
    return Changes(packages.actions + strays, (*packages.notes, *notes))


@step(
    fixes=check_no_leftover_paths,
    name="leftover-paths",
    does="moves the listed leftover paths aside into the node's acpcheck backup directory",
    removes=True,
)
def remove_leftover_paths(node: NodeView) -> Changes:
    support = node_support(node.plan.spec.acp.version)
    mount_points = {mount.target.rstrip("/") or "/" for mount in node.facts.mounts}
    existing = {path.rstrip("/") for path in node.facts.existing_paths}
    present = [path.rstrip("/") for path in support.leftover_paths if path.rstrip("/") in existing]
    moves = tuple(
        MoveAside(path, f"left by an earlier installation (source: {support.leftover_paths_source})")
        for path in present
        if path not in mount_points
    )
    notes = tuple(
        f"{path} is a mount point: empty it by hand (acpcheck never removes a mount point)"
        for path in present
        if path in mount_points
    )
    return Changes(moves, notes)
