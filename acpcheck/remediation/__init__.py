"""Remediation: acpcheck performs the node provisioning steps itself, shows them first,
and can undo them.

The step API, for the modules that hold checks and the steps that fix them::

    from acpcheck.remediation import Changes, NodeView, changes_of, edit, ensure_localhost, step

    @step(fixes=check_localhost_resolves, name="hosts-localhost", does="puts `127.0.0.1 localhost` in /etc/hosts")
    def hosts_localhost(node: NodeView) -> Changes:
        return changes_of([edit(node, "/etc/hosts", ensure_localhost, "localhost resolves to 127.0.0.1")])

The modules, lowest first (each imports only those above it):

- ``records``  — the checks of a journal record's fields;
- ``commands`` — the named commands an undo may run (never shell text from a journal);
- ``nodefiles`` — a file's state on a node (``FileState``), read and written as root;
- ``changes``  — what a step returns: ``Changes``, made of ``WriteFile`` / ``RunCommand`` / ``MoveAside``;
- ``view``     — what a node step's function reads on a node (files, read-only commands);
- ``edits``, ``nodesteps`` — pure text edits, and building blocks of node steps;
- ``actions``  — how each kind of action is shown, performed, journaled and undone;
- ``objects``  — cluster steps' Kubernetes objects (``ObjectChange``, ``ClusterObjects``);
- ``steps``    — ``Step``, ``@step`` / ``@cluster_step`` (a step names the check it fixes) and the registry;
- ``journal``  — the append-only, fsync'd, hash-chained journal that makes every change
  undoable, verified whole before rollback acts on it;
- ``nodelock`` — the lock on a node that one apply or rollback holds while it changes it;
- ``refusals`` — where the docs say a change is unsupported;
- ``runner``   — dry-run, apply (verify with ``acpcheck.grading.evaluate``), rollback;
- ``output``, ``cli`` — text and remediation.json; ``acpcheck remediate|rollback``.

The steps themselves live next to the checks they fix, in ``checks/node_*.py``,
``checks/roles.py`` and ``checks/registry.py``.
"""

from acpcheck.remediation.changes import Action, AnyAction, Changes, MoveAside, RunCommand, WriteFile, changes_of
from acpcheck.remediation.commands import NamedCommand
from acpcheck.remediation.edits import (
    add_words,
    comment_out_swap,
    ensure_localhost,
    ini_value,
    kernel_parameters,
    set_assignment,
    set_ini_key,
    set_kernel_parameter,
    set_sshd_option,
    set_sysctl,
    swap_entries,
)
from acpcheck.remediation.nodefiles import FileState
from acpcheck.remediation.nodesteps import (
    edit,
    kernel_parameter,
    load_modules,
    reload_sshd,
    remove_packages,
    sshd_option,
    sysctl_values,
)
from acpcheck.remediation.objects import ClusterObjects, ObjectChange, Ref, redacted_secret
from acpcheck.remediation.steps import Step, cluster_step, step, steps_for
from acpcheck.remediation.view import NodeView

__all__ = [
    "Action",
    "AnyAction",
    "Changes",
    "ClusterObjects",
    "FileState",
    "MoveAside",
    "NamedCommand",
    "NodeView",
    "ObjectChange",
    "Ref",
    "RunCommand",
    "Step",
    "WriteFile",
    "add_words",
    "changes_of",
    "cluster_step",
    "comment_out_swap",
    "edit",
    "ensure_localhost",
    "ini_value",
    "kernel_parameter",
    "kernel_parameters",
    "load_modules",
    "redacted_secret",
    "reload_sshd",
    "remove_packages",
    "set_assignment",
    "set_ini_key",
    "set_kernel_parameter",
    "set_sshd_option",
    "set_sysctl",
    "sshd_option",
    "step",
    "steps_for",
    "swap_entries",
    "sysctl_values",
]
