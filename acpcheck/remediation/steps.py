"""Steps: what acpcheck may change to fix one check, as data plus a small function.

A step belongs to the check it fixes and lives next to it in the check's module. It
names that check by its function, so a wrong link fails when the module is imported::

    @step(fixes=check_swap_disabled, name="swap-off", does="turns swap off now and comments swap out of /etc/fstab")
    def swap_off(node: NodeView) -> Changes:
        ...                       # read the node (files, commands), return the changes
        return Changes(actions=(WriteFile(...), RunCommand(...)))

The function only *proposes*: it reads the node through ``NodeView`` (files and
read-only commands, as root) and returns ``Changes`` (``changes``): the actions that
would bring the node to the documented state, notes about what it cannot do here and
why, or a refusal. The runner (``runner``) decides when a step is wanted (its check
FAILs or WARNs on the node, graded by ``acpcheck.grading.evaluate``), shows the
changes (dry-run), or performs them: each action journals what undoes it *before* it
changes anything (``actions``, ``journal``), and the owning check is graded again on
freshly gathered facts afterwards.

``is_satisfied`` needs no method of its own: a step that returns no actions changes
nothing, which is what makes a second ``--apply`` a no-op.

Cluster steps (``@cluster_step``, ``target = "cluster"``) are the same thing: their
function receives a view of the cluster (``objects.ClusterObjects``) instead of a node,
and returns actions of their own kinds (an object's before/after, its diff, its undo),
registered with ``actions.register_kind`` so that the journal and ``rollback`` handle
them without knowing what they are.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from acpcheck.model.check import CheckMeta, Scope

if TYPE_CHECKING:
    from acpcheck.remediation.changes import Changes
    from acpcheck.remediation.objects import ClusterObjects
    from acpcheck.remediation.view import NodeView


@dataclass(frozen=True)
class Step:
    """One remediation for one check: data, plus the function that proposes its changes."""

    check: str  # the owning check's id: graded before (is it wanted?) and after (fixed?)
    name: str  # short, unique per check: "swap-off"
    does: str  # one line, what it changes, for the dry-run and `acpcheck explain`
    function: Callable[[Any], Changes] = field(repr=False, compare=False)
    order: int = 50  # within a node, steps run lowest first (sshd reloads last)
    removes: bool = False  # deletes software or data: only with --allow-removals
    target: Literal["node", "cluster"] = "node"

    @property
    def id(self) -> str:
        return f"{self.check}/{self.name}"

    def changes(self, view: NodeView | ClusterObjects) -> Changes:
        """What the step would change now on what ``view`` shows."""
        return self.function(view)


#: Every step imported so far, by owning check id, in registration order.
STEPS: dict[str, list[Step]] = {}


def register(new: Step) -> Step:
    """Add ``new`` to the registry (re-importing a module registers nothing twice)."""
    steps = STEPS.setdefault(new.check, [])
    steps[:] = [s for s in steps if s.name != new.name] + [new]
    return new


def _fixed_check(fixes: Any, decorator: str, scope: Scope) -> CheckMeta:
    """The metadata of the check ``fixes`` (a function decorated with ``@check``), which
    a step of ``decorator``'s kind can grade: raised at import when it is not."""
    meta = getattr(fixes, "__acpcheck__", None)
    if not isinstance(meta, CheckMeta):
        raise TypeError(
            f"@{decorator}(fixes=…) takes the check function the step fixes (decorated with @check), not {fixes!r}"
        )
    evidence = "node" if scope is Scope.NODE else "cluster"
    if meta.scope is not scope or evidence not in meta.needs:
        raise ValueError(
            f"@{decorator}(fixes={meta.function.rpartition('.')[2]}): {meta.id} is a {meta.scope} check taking "
            f"{', '.join(sorted(meta.needs)) or 'nothing'}; a {decorator} fixes a {scope} check that takes `{evidence}`"
        )
    return meta


def step(
    *, fixes: Callable[..., Any], name: str, does: str, order: int = 50, removes: bool = False
) -> Callable[[Callable[[NodeView], Changes]], Step]:
    """Declare the function below as a node step that fixes the check ``fixes`` (its
    function): it receives a ``NodeView`` and returns ``Changes``."""
    meta = _fixed_check(fixes, "step", Scope.NODE)

    def decorate(function: Callable[[NodeView], Changes]) -> Step:
        return register(Step(check=meta.id, name=name, does=does, function=function, order=order, removes=removes))

    return decorate


def cluster_step(
    *, fixes: Callable[..., Any], name: str, does: str, order: int = 50
) -> Callable[[Callable[[ClusterObjects], Changes]], Step]:
    """Declare the function below as a cluster step that fixes the check ``fixes`` (its
    function): it receives a ``ClusterObjects`` view and returns ``Changes`` of
    ``ObjectChange`` actions (``remediation.objects``)."""
    meta = _fixed_check(fixes, "cluster_step", Scope.CLUSTER)

    def decorate(function: Callable[[ClusterObjects], Changes]) -> Step:
        return register(Step(check=meta.id, name=name, does=does, function=function, order=order, target="cluster"))

    return decorate


def steps_for(check_id: str) -> list[Step]:
    """The steps that fix ``check_id``, of the check modules imported so far
    (``acpcheck.catalog.load_catalog`` imports the first-party ones)."""
    return list(STEPS.get(check_id, ()))


def all_steps() -> list[Step]:
    """Every step of the check modules imported so far, by check id."""
    return [s for check_id in sorted(STEPS) for s in STEPS[check_id]]
