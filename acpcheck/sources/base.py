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

Modelled on pytest-xdist's scheduler ``Protocol`` (a small typed interface the
controller drives) and testinfra's backend registry (names mapped to lazily
imported implementations).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

if TYPE_CHECKING:
    from acpcheck.model.plan import ClusterPlan
    from acpcheck.transport.ssh import SshPool, Timeouts


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
