"""Building blocks of node steps: the changes several steps share (edit a file,
load kernel modules now and at boot, set an sshd keyword and reload sshd safely, set
sysctls now and at boot, edit the kernel command line GRUB generates, remove
packages). The steps themselves live next to their checks, in ``checks/node_*.py``.

Everything here only proposes: it reads the node through a ``NodeView`` and returns
actions (``changes``); nothing changes until the runner performs them.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable

from acpcheck.remediation.changes import Action, Changes, RunCommand, WriteFile, changes_of
from acpcheck.remediation.commands import NamedCommand
from acpcheck.remediation.edits import (
    add_words,
    set_kernel_parameter,
    set_sshd_option,
    set_sysctl,
)
from acpcheck.remediation.view import NodeView


def edit(
    view: NodeView, path: str, change: Callable[[str], str], why: str, **options: object
) -> tuple[WriteFile | None, str | None]:
    """(the WriteFile that applies ``change`` to ``path``'s text, or None when the file
    already says it; a note when the path is not a regular file acpcheck may edit).
    An absent file is created (``change`` receives "")."""
    state = view.file(path)
    if state.kind in ("symlink", "other"):
        return None, f"{path} is a {state.kind}: acpcheck edits regular files only; change it by hand"
    text = state.text if state.kind == "file" else ""
    new = change(text)
    if state.kind == "file" and new == text:
        return None, None
    return WriteFile(path, state, new.encode(), why, **options), None  # type: ignore[arg-type]


# ---------------------------------------------------------------------------
# Kernel modules


def load_modules(view: NodeView, required: list[str], conf: str, needed_by: str) -> Changes:
    """``required`` listed in ``conf`` (modules-load.d: loaded at every boot) and the
    missing ones loaded now with modprobe (undo: ``modprobe -r`` of exactly those)."""
    missing = [module for module in required if module not in view.facts.modules]
    persist = edit(
        view,
        conf,
        lambda text: add_words(text, required, f"{needed_by} (node preprocessing); written by acpcheck remediate"),
        f"load {', '.join(required)} at boot",
    )
    parts: list[tuple[Action | None, str | None]] = [persist]
    deferred = False
    if missing:
        why_not = view.kernel_view("/proc/modules")
        if why_not is None:
            names = " ".join(shlex.quote(m) for m in missing)
            reverse = NamedCommand("modprobe-remove", modules=missing)
            parts.append((RunCommand(f"modprobe -a {names}", f"load {', '.join(missing)} now", reverse=reverse), None))
        else:
            deferred = True
            parts.append((None, f"modprobe is not run: {why_not}; {conf} loads them at the next boot"))
    return changes_of(parts, deferred=deferred)


# ---------------------------------------------------------------------------
# sshd

SSHD_CONFIG = "/etc/ssh/sshd_config"


def reload_sshd(view: NodeView) -> NamedCommand:
    """The command that makes sshd read its configuration again on this node."""
    if view.systemd:
        for unit in ("ssh.service", "sshd.service"):
            if view.unit_state(unit)[0] == "active":
                return NamedCommand("systemctl-reload", unit=unit)
    return NamedCommand("sshd-reload-listener")


def sshd_option(view: NodeView, keyword: str, value: str) -> Changes:
    """``keyword value`` in sshd_config where sshd reads it first, validated with the
    node's own sshd on the new file before it replaces the old one (``sshd -t`` and
    ``sshd -T`` must show the value), then a reload, then a brand-new login; if that
    login fails, the old file is back and sshd reloaded at once. The session that made
    the change is never closed by a reload."""
    sshd = view.has("sshd") or "/usr/sbin/sshd"
    shown = f"{keyword.lower()} {value.lower()}"
    validate = f'{shlex.quote(sshd)} -t -f "$1" && {shlex.quote(sshd)} -T -f "$1" | grep -qix {shlex.quote(shown)}'
    change = edit(
        view,
        SSHD_CONFIG,
        lambda text: set_sshd_option(text, keyword, value),
        f"{keyword} {value}",
        validate=validate,
        then=reload_sshd(view),
        login_check=True,
    )
    return changes_of([change])


# ---------------------------------------------------------------------------
# sysctls


def sysctl_values(view: NodeView, values: dict[str, str], conf: str, why: str) -> Changes:
    """Each ``key = value`` persisted in ``conf`` (sysctl.d: applied at every boot) and
    applied now with ``sysctl -w`` (undo: the value read just before, written back)."""

    def persist(text: str) -> str:
        for key, value in values.items():
            text = set_sysctl(text, key, value, f"{why}; written by acpcheck remediate")
        return text

    parts: list[tuple[Action | None, str | None]] = [edit(view, conf, persist, "apply them at every boot")]
    for key, value in values.items():
        if " ".join(view.output(f"sysctl -n {shlex.quote(key)}").split()) != value:
            read = f"sysctl -n {shlex.quote(key)}"
            parts.append(
                (
                    RunCommand(
                        f"sysctl -w {shlex.quote(f'{key}={value}')}",
                        f"{key} = {value} now",
                        capture=read,
                        reverse=NamedCommand("sysctl-restore", key=key),
                    ),
                    None,
                )
            )
    return changes_of(parts)


# ---------------------------------------------------------------------------
# GRUB

DEFAULT_GRUB = "/etc/default/grub"
GRUB_CONFIGS = ("/boot/grub/grub.cfg", "/boot/grub2/grub.cfg")


def regenerate_grub(view: NodeView) -> tuple[RunCommand | None, str | None]:
    """The command that regenerates GRUB's configuration from /etc/default/grub, with the
    generated file archived first (rollback restores it, byte for byte)."""
    configs = [path for path in GRUB_CONFIGS if view.file(path).kind == "file"]
    if view.has("update-grub") and "/boot/grub/grub.cfg" in configs:
        return RunCommand("update-grub", "regenerate /boot/grub/grub.cfg", touches=("/boot/grub/grub.cfg",)), None
    if view.has("grub2-mkconfig") and "/boot/grub2/grub.cfg" in configs:
        return RunCommand(
            "grub2-mkconfig -o /boot/grub2/grub.cfg",
            "regenerate /boot/grub2/grub.cfg",
            touches=("/boot/grub2/grub.cfg",),
        ), None
    return (
        None,
        (
            "no GRUB configuration to regenerate here (neither update-grub with /boot/grub/grub.cfg nor "
            "grub2-mkconfig with /boot/grub2/grub.cfg)"
        ),
    )


def kernel_parameter(view: NodeView, parameter: str, *, exclusive: bool = True) -> Changes:
    """``parameter`` on the kernel command line of the next boot: /etc/default/grub
    edited, GRUB's configuration regenerated (and, on BLS systems with grubby, every
    boot entry updated). Never reboots: the step reports "needs reboot"."""
    state = view.file(DEFAULT_GRUB)
    if state.kind != "file":
        return Changes(
            notes=(
                (
                    f"{DEFAULT_GRUB} does not exist here: add {parameter} to the boot loader's kernel command "
                    "line by hand, then reboot"
                ),
            )
        )
    change = edit(
        view,
        DEFAULT_GRUB,
        lambda text: set_kernel_parameter(text, parameter, exclusive=exclusive),
        f"{parameter} on the next boot's kernel command line",
    )
    regenerate, note = regenerate_grub(view)
    parts: list[tuple[Action | None, str | None]] = [change]
    if change[0] is not None or (regenerate is not None and _generated_without(view, regenerate, parameter)):
        parts.append((regenerate, note and f"{note}: regenerate it by hand, then reboot"))
    entries = view.glob("/boot/loader/entries/*.conf")
    if entries and view.has("grubby"):
        stale = [e for e in entries if parameter not in view.file(e).text.split()]
        if stale:
            touches = (*entries, "/boot/grub2/grubenv")
            parts.append(
                (
                    RunCommand(
                        f"grubby --update-kernel=ALL --args={shlex.quote(parameter)}",
                        "the same on every boot entry (BLS)",
                        touches=touches,
                    ),
                    None,
                )
            )
    # the next boot has it once GRUB's configuration is (or will be) regenerated
    return changes_of(parts, deferred=regenerate is not None)


def _generated_without(view: NodeView, regenerate: RunCommand, parameter: str) -> bool:
    return any(parameter not in view.file(path).text for path in regenerate.touches)


# ---------------------------------------------------------------------------
# Packages

DPKG_STATE = ("/var/lib/dpkg/status", "/var/lib/dpkg/status-old")
DPKG_TREES = ("/var/lib/dpkg/triggers", "/var/lib/dpkg/updates")
MAINTAINER_SCRIPTS = (
    "the packages' maintainer scripts ran (a service they stopped stays stopped; reinstall to run them again)"
)


def remove_packages(view: NodeView, packages: list[str], manager: str | None) -> Changes:
    """Remove exactly ``packages`` (``dpkg --purge`` / ``rpm -e``: never what depends on
    them; a package something else needs makes the command fail and nothing is removed),
    with every file they own and the package database archived on the node first."""
    if not packages:
        return Changes()
    names = " ".join(shlex.quote(p) for p in packages)
    if manager == "dpkg":
        owned = [
            line for line in view.lines(f"dpkg-query -L {names} 2>/dev/null") if line.startswith("/") and line != "/."
        ]
        info = view.glob(
            " ".join(f"/var/lib/dpkg/info/{shlex.quote(p)}.* /var/lib/dpkg/info/{shlex.quote(p)}:*" for p in packages)
        )
        touches = tuple(dict.fromkeys([*DPKG_STATE, *DPKG_TREES, *info, *owned]))
        command = RunCommand(
            f"dpkg --purge {names}",
            "remove the conflicting packages",
            touches=touches,
            recursive=DPKG_TREES,
            no_reverse=MAINTAINER_SCRIPTS,
        )
        return Changes(
            (command,),
            (
                (
                    f"undo restores the packages' {len(owned)} files and dpkg's database byte for byte; "
                    f"{MAINTAINER_SCRIPTS}"
                ),
            ),
        )
    if manager == "rpm":
        database = view.output("readlink -f \"$(rpm --eval '%{_dbpath}')\"") or "/var/lib/rpm"
        owned = [line for line in view.lines(f"rpm -ql {names}") if line.startswith("/")]
        touches = tuple(dict.fromkeys([database, *owned]))
        command = RunCommand(
            f"rpm -e {names}",
            "remove the conflicting packages",
            touches=touches,
            recursive=(database,),
            no_reverse=MAINTAINER_SCRIPTS,
        )
        return Changes(
            (command,),
            (
                (
                    f"undo restores the packages' {len(owned)} files and the rpm database byte for byte; "
                    f"{MAINTAINER_SCRIPTS}"
                ),
            ),
        )
    return Changes(notes=(f"no dpkg or rpm answered: remove {', '.join(packages)} by hand",))
