"""Where a fleet member's evidence is gathered, and how it reaches the controller.

A single-plan run gathers on the controller, once, and hands xdist workers the saved
directory (``acpcheck.plugin.session``). A fleet run does not: each member's evidence
is gathered by the process that runs that member's checks (all of them share one
``xdist_group``, so ``--dist loadgroup`` gives a member to one worker), the first
time one of its checks needs it. A worker placed next to a data centre
(``--tx ssh=HOST//python=…``) thus reaches the clusters there, and no process
contacts a cluster whose checks it does not run.

- Serial run (no xdist): saved straight into ``<out>/facts/<cluster>/<source>/…``.
- xdist worker: saved into the worker's own temporary directory (on its own host),
  and sent back at the worker's end as plain data in ``workeroutput`` (xdist's channel
  from worker to controller), which the controller writes into
  ``<out>/facts/<cluster>/…`` and reads for the reports (where the live evidence came from).

``--facts DIR`` replays a fleet from ``DIR/<cluster>/<source>/…`` (a fleet run's ``facts/``).
"""

from __future__ import annotations

import shutil
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from acpcheck.errors import InputError, Problem
from acpcheck.sources import REGISTRY

if TYPE_CHECKING:
    from acpcheck.run.settings import Settings

#: the key of ``workeroutput`` that carries the evidence a worker gathered
WORKER_EVIDENCE = "acp_evidence"
#: no single evidence file a worker sends may be larger (a fleet member's cluster.json
#: is kilobytes to a few megabytes; anything bigger is refused, not written)
MAX_FILE_BYTES = 64 * 1024 * 1024


def worker_evidence(settings: Settings) -> dict[str, dict[str, str]]:
    """What this worker gathered, as ``{cluster: {"<source>/<file>": text}}`` (then its
    scratch directory is removed): every file a source saved, as text, and each empty
    directory as ``"<path>/": ""``."""
    scratch = settings.scratch
    if scratch is None:
        return {}
    sent: dict[str, dict[str, str]] = {}
    try:
        for cluster_dir in sorted(p for p in scratch.iterdir() if p.is_dir()):
            files = sent.setdefault(cluster_dir.name, {})
            for path in sorted(cluster_dir.rglob("*")):
                relative = path.relative_to(cluster_dir).as_posix()
                if path.is_file():
                    files[relative] = path.read_text(encoding="utf-8")
                elif path.is_dir() and not any(path.iterdir()):
                    files[relative + "/"] = ""  # an empty directory (a source with nothing to save) is evidence too
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        settings.scratch = None
    return sent


def receive_evidence(settings: Settings, sent: Any, worker: str) -> None:
    """Controller side: write what a worker sent under ``<out>/facts/<cluster>/`` and load
    it into that member's evidence here (the reports say where the live evidence came
    from). Only members of this run, only paths inside their directory, only text:
    a worker's answer steers nothing else on this machine."""
    if not sent:
        return
    if not isinstance(sent, dict):
        raise InputError([Problem(worker, None, WORKER_EVIDENCE, "the worker sent evidence that is not a mapping")])
    assert settings.inputs is not None
    settings.inputs.out.adopt(settings.evidence_dir.name)
    for cluster, files in sent.items():
        run = settings.clusters.get(cluster) if isinstance(cluster, str) else None
        if run is None or not isinstance(files, dict):
            raise InputError(
                [Problem(worker, None, WORKER_EVIDENCE, f"evidence for a cluster this run does not have: {cluster!r}")]
            )
        directory = settings.evidence_dir / cluster
        for relative, text in files.items():
            target = _inside(directory, relative)
            if target is None or not isinstance(text, str) or len(text) > MAX_FILE_BYTES:
                raise InputError(
                    [Problem(worker, None, WORKER_EVIDENCE, f"{cluster}: refused evidence file {relative!r}")]
                )
            if relative.endswith("/"):
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        sources = [REGISTRY[name] for name in {PurePosixPath(r).parts[0] for r in files} if name in REGISTRY]
        run.evidence.replay(sources, directory)


def _inside(directory: Path, relative: Any) -> Path | None:
    """``directory/relative`` when ``relative`` is a plain relative path that stays inside, else None."""
    if not isinstance(relative, str):
        return None
    parts = PurePosixPath(relative).parts
    if not parts or PurePosixPath(relative).is_absolute() or any(part in ("", ".", "..") for part in parts):
        return None
    return directory.joinpath(*parts)
