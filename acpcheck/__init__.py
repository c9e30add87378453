"""acpcheck: checks for Alauda Container Platform clusters, as a pytest plugin.

The public API for writing checks::

    from acpcheck import NodeContext, Scope, Severity, When, check, fail, fail_if, manual, skip, warn

    @check(id="ACP-NODE-008", title="swap is off", severity=Severity.HIGH, scope=Scope.NODE,
           refs=["https://docs.alauda.io/…"], remediation="Turn swap off and remove it from /etc/fstab.")
    def check_swap_disabled(node: NodeContext) -> None:
        '''Why the rule exists (shown by acpcheck explain).'''
        if node.facts.swaps:
            fail(f"{node.name}: swap is on: {', '.join(node.facts.swaps)}")

Steps that fix a check are written with ``acpcheck.remediation``; checks are tested
with ``acpcheck.testing``.

The names are imported on first use (PEP 562): the pytest plugin and the CLI import
this package on every start, and must not pay for what they do not use.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from acpcheck.facts.model import NodeContext, NodeSet
    from acpcheck.model.check import Scope, Severity, When, check, fail, fail_if, manual, skip, warn
    from acpcheck.sources.base import TargetUnavailable

__version__ = "0.1.0"

#: Each public name -> the module that defines it.
_HOMES = {
    "check": "acpcheck.model.check",
    "When": "acpcheck.model.check",
    "Severity": "acpcheck.model.check",
    "Scope": "acpcheck.model.check",
    "fail": "acpcheck.model.check",
    "fail_if": "acpcheck.model.check",
    "warn": "acpcheck.model.check",
    "manual": "acpcheck.model.check",
    "skip": "acpcheck.model.check",
    "NodeContext": "acpcheck.facts.model",
    "NodeSet": "acpcheck.facts.model",
    "TargetUnavailable": "acpcheck.sources.base",
}

__all__ = [
    "NodeContext",
    "NodeSet",
    "Scope",
    "Severity",
    "TargetUnavailable",
    "When",
    "__version__",
    "check",
    "fail",
    "fail_if",
    "manual",
    "skip",
    "warn",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(home), name)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
