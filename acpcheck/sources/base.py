"""The evidence-source protocol: something gathered once per run, saved, replayable.

A check body is a pure function of its evidence: it never connects anywhere.
Everything it reads comes from a *source*: node facts (one probe per node), and
later load-balancer observations, cluster objects, etcd reads. A source

- says which check parameters it fills (``provides``, in the registry in
  ``acpcheck.sources`` so that deciding what a run needs imports nothing heavy:
  a plan-only run never loads paramiko or the kubernetes client);
- gathers once per run on the controller, in ``order`` (node facts first, so a
  source that opens ports on nodes knows which nodes answer), through the run's
  one connection pool (``GatherContext``);
- records a failure per target instead of raising (one unreachable node is
  ERROR for that node's checks only);
- saves what it gathered under the run's evidence directory and loads it back
  exactly, so ``--facts DIR`` replays a run offline and xdist workers replay what
  the controller gathered;
- hands each check parameter its value (``provide``), raising
  ``TargetUnavailable`` for a target whose evidence is missing (ERROR, never FAIL).

Most sources keep one JSON document per run (a pydantic model with ``mode`` and
``reason``): they derive from ``JsonEvidenceSource``, whose ``gather`` is a template
(the live gate, timing, the nodes left out with why) around the source's ``collect``,
and whose ``save``/``load``/``provide`` need nothing more than the model.

Modelled on pytest-xdist's scheduler ``Protocol`` (a small typed interface the
controller drives) and testinfra's backend registry (names mapped to lazily
imported implementations).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict, ValidationError

from acpcheck.errors import InputError, Problem
from acpcheck.transport.kube import KUBECONFIG_ENV

if TYPE_CHECKING:
    from acpcheck.model.plan import ClusterPlan, Node
    from acpcheck.transport.ssh import SshPool, Timeouts

#: Set to 1 to say the cluster exists (what ``acpcheck run --live`` sets).
LIVE_ENV = "ACPCHECK_LIVE"


class TargetUnavailable(Exception):
    """The evidence about one target could not be gathered: its checks are ERROR.

    ``kind`` says why in one word (unreachable, auth, proxy, timeout, …), and
    ``message`` in a sentence without any secret.
    """

    def __init__(self, target: str, kind: str, message: str):
        super().__init__(f"{target}: {kind}: {message}")
        self.target = target
        self.kind = kind
        self.message = message


#: ``progress(source, done, total, what, ok)`` after each target of a source.
Progress = Callable[[str, int, int, str, bool], None]


@dataclass
class GatherContext:
    """What a source may use while it gathers: the plan, what earlier sources
    gathered, and the run's one connection pool (opened on first use, closed by
    the run when gathering ends, also on Ctrl-C)."""

    plan: ClusterPlan
    gathered: dict[str, Any] = field(default_factory=dict)
    progress: Progress | None = None
    #: the sources this run still gathers after the current one: when none is left,
    #: a source closes each connection as soon as it is done with it (an idle
    #: paramiko transport keeps a thread waking ten times a second, which at 1,000
    #: nodes costs the runner more CPU than the probes themselves)
    later: list[str] = field(default_factory=list)
    _pool: SshPool | None = field(default=None, repr=False)

    @property
    def timeouts(self) -> Timeouts:
        from acpcheck.transport.ssh import Timeouts

        ssh = self.plan.spec.ssh
        connect = ssh.connect_timeout_seconds
        return Timeouts(connect=connect, handshake=connect, auth=connect, command=ssh.command_timeout_seconds)

    @property
    def pool(self) -> SshPool:
        """SSH sessions to the plan's nodes, one per node for the whole run."""
        if self._pool is None:
            from acpcheck.transport.hostkeys import KnownHosts
            from acpcheck.transport.ssh import SshPool

            self._pool = SshPool(self.plan, self.timeouts, KnownHosts(self.plan.spec.ssh.known_hosts_file))
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()


class EvidenceSource(Protocol):
    """One kind of evidence. Implementations are registered in ``acpcheck.sources``."""

    #: The registry name; also the subdirectory of the evidence directory it saves to.
    name: ClassVar[str]
    #: Gathering order, lowest first: node facts 0; sources that open ports on nodes after them.
    order: ClassVar[int]

    def gather(self, context: GatherContext) -> Any:
        """Gather every target's evidence; a target that fails is recorded, never raised."""

    def unavailable(self, plan: ClusterPlan, message: str) -> Any:
        """Evidence in which every target failed with ``message`` (a bug in ``gather``
        must cost this source's checks an ERROR each, not the whole run)."""

    def save(self, evidence: Any, directory: Path) -> None:
        """Write ``evidence`` under ``directory`` (created) so that ``load`` gives it back exactly."""

    def load(self, directory: Path, plan: ClusterPlan) -> Any:
        """Read what ``save`` wrote; ``InputError`` naming the file when it is damaged,
        a per-target failure when a target is simply missing."""

    def provide(self, parameter: str, evidence: Any, plan: ClusterPlan, param: Any) -> Any:
        """The value of check parameter ``parameter`` (``param``: the item's
        parametrisation, e.g. the plan node); ``TargetUnavailable`` when missing."""


# ---------------------------------------------------------------------------
# Sources that keep one JSON document per run


def live_reason(plan: ClusterPlan) -> str | None:
    """Why acpcheck treats the cluster as existing (post-install mode), or None before install."""
    if plan.spec.kubeconfig:
        return "the plan gives a kubeconfig (spec.kubeconfig): the cluster exists"
    if os.environ.get(KUBECONFIG_ENV):
        return f"{KUBECONFIG_ENV} gives a kubeconfig: the cluster exists"
    if os.environ.get(LIVE_ENV) == "1":
        return f"{LIVE_ENV}=1 (acpcheck run --live): the cluster exists"
    return None


#: Why a source that needs the live cluster gathered nothing.
NOT_LIVE = "the cluster does not exist yet (set spec.kubeconfig or ACPCHECK_KUBECONFIG, or ACPCHECK_LIVE=1)"


def nodes_to_probe(context: GatherContext, plan_nodes: list[Node]) -> tuple[list[Node], dict[str, str]]:
    """The nodes to start programs on, and why each other one is left out: with node
    facts (the usual case), those whose facts were gathered; without (a run whose checks
    need no facts), every node, and a session that fails says so."""
    from acpcheck.facts.model import NodeFacts

    facts = context.gathered.get("nodes")  # None when the selected checks needed no node facts
    if facts is None:
        return list(plan_nodes), {}
    ok, failed = [], {}
    for node in plan_nodes:
        found = facts.get(node.name)
        if isinstance(found, NodeFacts):
            ok.append(node)
        else:
            failed[node.name] = (
                f"{found.kind}: {found.message}" if found is not None else "no facts were gathered for this node"
            )
    return ok, failed


class EvidenceDocument(BaseModel):
    """One source's evidence of one run: what was done (``mode``; ``error`` when gathering
    failed) and why (``reason``), then the source's own fields."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    mode: str
    reason: str = ""


class JsonEvidenceSource:
    """A source whose evidence is one ``EvidenceDocument`` per run, saved as
    ``<name>.json`` in its directory; an ``error`` document when gathering failed, and
    ERROR (never a finding) for every check that reads an ``error`` document.

    ``gather`` is a template; a source fills in ``collect`` (and, when its document
    says more than mode and reason, ``idle_fields``):

    1. the live gate: a ``phase = "install"`` source (ports still free) gathers only
       before the cluster exists, a ``phase = "live"`` source only once it does
       (``live_reason``); otherwise the document says why nothing was gathered
       (mode ``live`` or ``off``);
    2. ``collect(context, reason)``, which records a failure per target in its
       document instead of raising (``nodes_to_probe`` gives the nodes whose facts were
       gathered, and why each other one is left out);
    3. timing: the document's ``seconds``, when it has that field.
    """

    #: the document's model, and what it is, for messages
    model: ClassVar[type[EvidenceDocument]]
    what: ClassVar[str]
    #: the registry name (also the directory and ``<name>.json``) and when it gathers
    name: ClassVar[str]
    phase: ClassVar[str] = "install"
    #: names the source had before, whose ``<old>/<old>.json`` a saved evidence directory may hold
    former_names: ClassVar[tuple[str, ...]] = ()

    def gather(self, context: GatherContext) -> Any:
        plan = context.plan
        started = time.monotonic()
        reason = live_reason(plan)
        if (reason is not None) != (self.phase == "live"):
            if reason is not None:
                return self.model(mode="live", reason=reason, **self.idle_fields(plan))
            return self.model(mode="off", reason=NOT_LIVE, **self.idle_fields(plan))
        evidence = self.collect(context, reason)
        if "seconds" in type(evidence).model_fields:
            evidence.seconds = round(time.monotonic() - started, 3)
        return evidence

    def collect(self, context: GatherContext, reason: str | None) -> Any:
        """This source's own gathering (``reason``: why the cluster exists, or None)."""
        raise NotImplementedError

    def idle_fields(self, plan: ClusterPlan) -> dict[str, Any]:
        """Fields of the document written when the live gate stops the source."""
        return {}

    def unavailable(self, plan: ClusterPlan, message: str) -> Any:
        return self.model(mode="error", reason=message)

    def save(self, evidence: BaseModel, directory: Path) -> None:
        path = directory / f"{self.name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            json.dumps(evidence.model_dump(mode="json", by_alias=True), indent=1, sort_keys=False) + "\n",
            encoding="utf-8",
        )

    def saved_file(self, directory: Path) -> Path:
        """The file ``save`` wrote into ``directory`` (``<evidence>/<name>``); in an evidence
        directory saved before a rename, the file under the former name."""
        candidates = [directory / f"{self.name}.json"]
        candidates += [directory.parent / old / f"{old}.json" for old in self.former_names]
        return next((path for path in candidates if path.exists()), candidates[0])

    def load(self, directory: Path, plan: ClusterPlan) -> Any:
        from acpcheck.yamlsource import load_json

        path = self.saved_file(directory)
        if not path.exists():
            return self.unavailable(plan, f"no {self.what} was saved with these facts")
        document = load_json(path)
        try:
            return self.model.model_validate(document.data)
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise InputError(
                [Problem(str(path), None, where, f"not {self.model.__name__} evidence: {first['msg']}")]
            ) from None

    def provide(self, parameter: str, evidence: Any, plan: ClusterPlan, param: Any) -> Any:
        if evidence.mode == "error":
            raise TargetUnavailable(self.target(plan), "probe", evidence.reason)
        return evidence

    def target(self, plan: ClusterPlan) -> str:
        return "node:*"
