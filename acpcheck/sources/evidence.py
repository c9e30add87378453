"""The evidence of one run: every needed source gathered once, or replayed.

Layout of an evidence directory (the run's ``<out>/facts/``, ``acpcheck gather
--out DIR``, and what ``--facts DIR`` replays)::

    DIR/nodes/<node>.json      node facts (acpcheck/facts/v1)
    DIR/<source>/…             each further source in a directory of its own

On the controller the plugin gathers (in the background while pytest collects,
or before xdist starts its workers) and saves; workers and ``--facts`` runs
replay, so every node is contacted once per run whatever ``-n`` is, and a
replayed run grades exactly the same evidence.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from acpcheck.sources import SourceEntry, source_providing
from acpcheck.sources.base import EvidenceSource, GatherContext

if TYPE_CHECKING:
    from acpcheck.model.plan import ClusterPlan


class Evidence:
    """What one run's checks read, by source name."""

    def __init__(self, plan: ClusterPlan):
        self.plan = plan
        self._data: dict[str, Any] = {}
        self._sources: dict[str, EvidenceSource] = {}
        self._context: GatherContext | None = None
        self._lock = threading.Lock()

    def _source(self, entry: SourceEntry) -> EvidenceSource:
        if entry.name not in self._sources:
            self._sources[entry.name] = entry.create()
        return self._sources[entry.name]

    def has(self, name: str) -> bool:
        return name in self._data

    def gather(
        self, entries: list[SourceEntry], save_to: Path | None = None, progress: ProgressLine | None = None
    ) -> None:
        """Gather each source not yet present, in order, through one connection pool;
        save each under ``save_to/<name>``. The pool is closed at the end, also on Ctrl-C."""
        with self._lock:
            pending = sorted((self._source(e) for e in entries if e.name not in self._data), key=lambda s: s.order)
            if not pending:
                return
            self._context = context = GatherContext(self.plan, gathered=self._data, progress=progress)
            try:
                for index, source in enumerate(pending):
                    context.later = [later.name for later in pending[index + 1 :]]
                    try:
                        data = source.gather(context)
                    except Exception as error:  # noqa: BLE001 — a bug costs this source's checks an ERROR each, not the run
                        data = source.unavailable(
                            self.plan, f"gathering {source.name} failed: {type(error).__name__}: {error}"
                        )
                    self._data[source.name] = data
                    if save_to is not None:
                        source.save(data, save_to / source.name)
            finally:
                context.close()

    def replay(self, entries: list[SourceEntry], directory: Path) -> None:
        """Load each source from ``directory`` (InputError when a file is damaged)."""
        for entry in entries:
            source = self._source(entry)
            self._data[source.name] = source.load(directory / source.name, self.plan)

    def close(self) -> None:
        """Drop the connections of a gather still under way (Ctrl-C): its threads fail fast."""
        context = self._context
        if context is not None:
            context.close()

    def provide(self, parameter: str, param: Any = None) -> Any:
        """The value of check parameter ``parameter`` (TargetUnavailable for a missing target)."""
        entry = source_providing(parameter)
        if entry is None:
            raise KeyError(f"no evidence source provides {parameter!r}")
        return self._source(entry).provide(parameter, self._data[entry.name], self.plan, param)

    def raw(self, name: str) -> Any:
        """One source's evidence as gathered (e.g. ``{node: NodeFacts | GatherFailure}`` for "nodes")."""
        return self._data[name]


#: How a progress line names a source and what it counts (default: the source's name, nodes).
_PROGRESS_WORDS = {
    "nodes": ("facts", "nodes"),
    "cluster": ("cluster objects", "clusters"),
    "sshhosts": ("SSH hosts", "clusters"),  # hosted control planes: the management cluster's SSHHosts
}


class ProgressLine:
    """``gathering facts: 37/100 nodes, 2 failed`` on stderr; one line per failure."""

    def __init__(self, stream: TextIO | None = None):
        self.failed = 0
        self.stream = stream or sys.stderr
        self.is_tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def __call__(self, source: str, done: int, total: int, target: str, ok: bool) -> None:
        if not ok:
            self.failed += 1
        end = "\n" if done == total or not self.is_tty else ""
        failed = f", {self.failed} failed" if self.failed else ""
        what, unit = _PROGRESS_WORDS.get(source, (source, "nodes"))
        if self.is_tty or not ok or done == total:
            line = (
                ("\r" if self.is_tty else "")
                + f"gathering {what}: {done}/{total} {unit}{failed}"
                + (f" ({target} failed)" if not ok else "")
            )
            print(line, end=end, file=self.stream, flush=True)
        if done == total:
            self.failed = 0
