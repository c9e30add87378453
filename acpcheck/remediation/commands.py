"""The commands an undo may run: a fixed set, by name, with checked parameters.

A step's reverse (``RunCommand.reverse``) and a file change's reload (``WriteFile.then``,
``then_undo``) are commands that ``rollback`` runs as root, perhaps days after the step
planned them, from what the journal says. So the journal never holds them as shell
text: it holds a name from ``COMMANDS`` and its parameters, each checked, and rollback
makes the shell text again from them (every parameter quoted). An edited journal can
at most ask for another of these commands with other valid parameters, never for a
shell string of its own::

    RunCommand(
        "systemctl disable --now firewalld.service",
        reverse=NamedCommand("systemctl-enable-now", unit="firewalld.service"),
    )

A ``NamedCommand`` *is* its shell text (a ``str``: shown, run and compared as before)
and also knows its name and parameters, which is all the journal keeps of it. A step
that gives a plain string as a reverse is refused at ``--apply`` before it changes
anything. ``register_command`` adds a command (test steps, check packs).

A command longer than a line is a node script (``register_script``): a file of
``acpcheck/sources/nodeprograms`` (package data, checked with ``sh -n`` and shellcheck
by tests/checks/test_nodeprograms.py), run as ``sh -c '<its text>' <name>``. People see
its short name (``shown``: ``reload-sshd``); remediation.json keeps the full text.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from acpcheck.remediation import records


@dataclass(frozen=True)
class CommandShape:
    """One named command: how to check each parameter, and how to write it as shell."""

    params: dict[str, Callable[[Any], str | None]]
    render: Callable[..., str]
    #: What people read for it, when its shell text is too long to read (a node script's name).
    shown: str | None = None


COMMANDS: dict[str, CommandShape] = {}


def register_command(name: str, render: Callable[..., str], **params: Callable[[Any], str | None]) -> None:
    """Add ``name``: ``render(**params)`` gives its shell text, each parameter checked first."""
    COMMANDS[name] = CommandShape(params, render)


def register_script(name: str, file: str, shown: str) -> None:
    """Add ``name``: the node script ``acpcheck/sources/nodeprograms/<file>`` (no
    parameters), shown to people as ``shown``."""
    from acpcheck.sources.nodeside import node_program

    COMMANDS[name] = CommandShape({}, lambda: f"sh -c {shlex.quote(node_program(file))} {shlex.quote(shown)}", shown)


def shown(command: str) -> str:
    """``command`` as people read it: a node script by its name, any other command as it is."""
    return getattr(command, "shown", command)


def command_problem(name: Any, params: Any) -> tuple[str, str] | None:
    """(field, what is wrong) when ``name`` with ``params`` is not a command rollback may run."""
    if not isinstance(name, str) or name not in COMMANDS:
        return "name", f"is not a command acpcheck knows ({', '.join(sorted(COMMANDS))})"
    if not isinstance(params, dict):
        return "params", "is not a JSON object"
    shape = COMMANDS[name]
    if set(params) != set(shape.params):
        return "params", f"are not those of {name} ({', '.join(sorted(shape.params)) or 'none'})"
    for key, check in shape.params.items():
        problem = check(params[key])
        if problem:
            return f"params.{key}", problem
    return None


class NamedCommand(str):
    """The shell text of a registered command, that also knows its name and parameters."""

    name: str
    params: dict[str, Any]
    shown: str

    def __new__(cls, name: str, /, **params: Any) -> NamedCommand:
        problem = command_problem(name, params)
        if problem:
            raise ValueError(f"command {name!r}: {problem[0]} {problem[1]}")
        shape = COMMANDS[name]
        made = super().__new__(cls, shape.render(**params))
        made.name, made.params = name, dict(params)
        made.shown = shape.shown or str(made)
        return made

    def __reduce__(self) -> Any:  # copies and pickles keep the name (str's own would lose it)
        return (_remake, (self.name, self.params))

    def as_record(self) -> dict[str, Any]:
        return {"name": self.name, "params": dict(self.params)}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> NamedCommand:
        """The command a (verified) journal record names."""
        return cls(record["name"], **record["params"])


def _remake(name: str, params: dict[str, Any]) -> NamedCommand:
    return NamedCommand(name, **params)


def record_problems(value: Any) -> list[tuple[str, str]]:
    """What is wrong with a journaled command (``{"name": …, "params": {…}}``), for the journal's verification."""
    found = records.problems(
        value, {"name": records.text, "params": lambda v: None if isinstance(v, dict) else "is not a JSON object"}
    )
    if found:
        return found
    problem = command_problem(value["name"], value["params"])
    return [problem] if problem else []


# ---------------------------------------------------------------------------
# Parameters

_UNIT = re.compile(r"[A-Za-z0-9@._:\\-]{1,256}")
_MODULE = re.compile(r"[A-Za-z0-9_-]{1,64}")
_SYSCTL = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./-]{0,255}")


def unit_name(value: Any) -> str | None:
    return None if isinstance(value, str) and _UNIT.fullmatch(value) else "is not a systemd unit name"


def module_name(value: Any) -> str | None:
    return None if isinstance(value, str) and _MODULE.fullmatch(value) else "is not a kernel module name"


def sysctl_key(value: Any) -> str | None:
    return None if isinstance(value, str) and _SYSCTL.fullmatch(value) else "is not a sysctl key"


def one_of(*allowed: str) -> Callable[[Any], str | None]:
    return lambda value: None if value in allowed else f"is not one of {', '.join(allowed)}"


def _modprobe_remove(modules: list[str]) -> str:
    names = " ".join(shlex.quote(m) for m in modules)
    pattern = shlex.quote("^(" + "|".join(modules) + ") ")
    # safe to repeat; fails if one stays loaded
    return f"modprobe -r -a {names} 2>/dev/null; ! grep -qE {pattern} /proc/modules"


def _non_empty_modules(value: Any) -> str | None:
    return records.list_of(module_name)(value) or (None if value else "is empty")


q = shlex.quote

register_command("systemctl-start", lambda unit: f"systemctl start {q(unit)}", unit=unit_name)
register_command("systemctl-enable-now", lambda unit: f"systemctl enable --now {q(unit)}", unit=unit_name)
register_command("systemctl-reload", lambda unit: f"systemctl reload {q(unit)}", unit=unit_name)
register_command("systemctl-daemon-reload", lambda: "systemctl daemon-reload")
register_command("systemctl-daemon-reexec", lambda: "systemctl daemon-reexec")
#: Reload the sshd that serves this very session (a node without an sshd unit).
register_script("sshd-reload-listener", "reload_sshd.sh", "reload-sshd")
register_command("setenforce", lambda mode: f"setenforce {mode}", mode=one_of("0", "1"))
register_command("selinux-enforce-file", lambda mode: f"echo {mode} > /sys/fs/selinux/enforce", mode=one_of("0", "1"))
register_command("ufw-enable", lambda: "ufw --force enable")
#: The rule set saved by ``nft list ruleset`` comes on stdin.
register_command("nft-restore", lambda: "{ echo 'flush ruleset'; cat; } | nft -f -")
#: The rules saved by ``iptables-save`` come on stdin.
register_command("iptables-restore", lambda: "iptables-restore")
register_command(
    "swapon",
    lambda device: f"awk '{{print $1}}' /proc/swaps | grep -qxF {q(device)} || swapon {q(device)}",
    device=records.absolute,
)  # safe to repeat
register_command("modprobe-remove", _modprobe_remove, modules=_non_empty_modules)
#: The value read before the change comes on stdin.
register_command("sysctl-restore", lambda key: f'sysctl -w {q(key)}="$(cat)"', key=sysctl_key)
