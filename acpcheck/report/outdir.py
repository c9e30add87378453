"""The report directory (``--out``) of one run: checked first, held exclusively, never lying.

``OutDir.claim(path, run_id)`` runs before any check:

- the directory must be usable: an existing directory we can write a file in, or
  one we can create; anything else (a name too long, no permission, a read-only or
  full file system) is bad input (exit 4) naming the path and the cause, at once, not
  after the checks (``usable``: also for ``--alluredir`` and ``remediate --out``);
- the run takes an exclusive lock on it (``.acpcheck.lock``, ``flock``): a second
  run on the same directory exits 4 naming the holder (pid, run id, start time),
  so two runs never mix their reports and each exit code is its own;
- a directory that holds files acpcheck did not write is refused unless ``force``
  (the files acpcheck wrote are listed in ``.acpcheck-manifest.json``);
- the previous run's reports are removed, so that a run that cannot finish writing
  never leaves them looking current.

``write(files)`` then writes the whole report set into a private staging directory
and moves each file into place (``rename``: a reader never sees half a file), and
records them in the manifest. A set that cannot be written whole (the file system
filled up during the run) leaves none of its files behind: ``ReportsNotWritten``
names the path and the cause. ``release()`` drops the lock.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import time
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from acpcheck.errors import InputError, Problem
from acpcheck.report.document import READABLE_SCHEMAS

LOCK = ".acpcheck.lock"
MANIFEST = ".acpcheck-manifest.json"
STAGING_PREFIX = ".acpcheck-staging-"
UNKNOWN_HOLDER = "unknown holder"
#: What a run writes (reports and the gathered evidence), by name.
REPORT_NAMES = ("results.json", "junit.xml", "summary.md", "report.html", "results.sarif", "codequality.json", "facts")
PROBE_PREFIX = ".acpcheck-probe-"


class ReportsNotWritten(OSError):
    """The report set could not be written (e.g. the file system is full); none of it was left in place."""

    def __init__(self, problem: Problem):
        super().__init__(str(problem))
        self.problem = problem


class OutDir:
    def __init__(self, path: Path, run_id: str, lock: IO[str], option: str = "--out"):
        self.path = path
        self.run_id = run_id
        self.option = option
        self._lock: IO[str] | None = lock
        self.written: list[str] = []

    @classmethod
    def claim(
        cls,
        path: str | Path,
        run_id: str,
        force: bool = False,
        option: str = "--out",
        keep: Iterable[Path] = (),
        ours: Iterable[str] = REPORT_NAMES,
        retire: bool = True,
    ) -> OutDir:
        """Check, create, lock and clear ``path`` for this run; InputError when it cannot be used.

        ``keep``: paths never removed (the evidence a run replays); ``retire``: remove
        the previous run's files (``acpcheck gather`` adds to a directory instead)."""
        directory = Path(path)
        usable(directory, option)
        try:
            lock = open(directory / LOCK, "a+", encoding="utf-8")  # noqa: SIM115 — held for the whole run
        except OSError as exc:
            raise _refuse(directory, option, f"cannot be written to ({exc.strerror or exc})") from None
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder("")
            for _ in range(20):  # the holder writes its name just after taking the lock: give it a moment
                lock.seek(0)
                holder = _holder(lock.read())
                if holder != UNKNOWN_HOLDER:
                    break
                time.sleep(0.01)
            lock.close()
            raise _refuse(
                directory,
                option,
                f"is in use by another acpcheck run ({holder}); wait for it to finish or choose another directory",
            ) from None
        claimed = cls(directory, run_id, lock, option)
        try:
            lock.seek(0)
            lock.truncate()
            lock.write(
                json.dumps(
                    {"pid": os.getpid(), "run": run_id, "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
                )
                + "\n"
            )
            lock.flush()
            claimed._clear(force, set(ours), [Path(k).resolve() for k in keep], option, retire)
        except OSError as exc:  # filled up or turned read-only since the probe
            claimed.release()
            raise _refuse(directory, option, f"cannot be written to ({exc.strerror or exc})") from None
        except BaseException:
            claimed.release()
            raise
        return claimed

    def _clear(self, force: bool, ours: set[str], keep: list[Path], option: str, retire: bool) -> None:
        manifest = _read_manifest(self.path)
        entries = {entry.name for entry in self.path.iterdir()} - {LOCK, MANIFEST}
        entries = {name for name in entries if not name.startswith((STAGING_PREFIX, PROBE_PREFIX))}
        if manifest is not None:
            owned = set(manifest.get("files", [])) & ours
        elif _looks_like_ours(self.path) or not retire:
            # Reports of an acpcheck from before the manifest; or a directory that is
            # only added to (`gather`), where acpcheck's own names are never removed.
            owned = entries & ours
        else:
            owned = set()
        foreign = sorted(entries - owned)
        if foreign and not force:
            shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
            raise _refuse(
                self.path,
                option,
                (
                    f"holds files acpcheck did not write ({shown}); choose an empty or new directory, or pass "
                    "--force to write beside them"
                ),
            )
        for name in sorted(owned) if retire else ():
            target = self.path / name
            if any(target.resolve() == k or target.resolve() in k.parents for k in keep):
                continue  # the evidence this run replays
            _remove(target)
        for stale in [*self.path.glob(STAGING_PREFIX + "*"), *self.path.glob(PROBE_PREFIX + "*")]:
            _remove(stale)
        self.written = [name for name in sorted(owned) if (self.path / name).exists()]
        self._write_manifest(self.written, "running")

    def adopt(self, name: str) -> None:
        """Record ``name`` (written directly, e.g. the gathered ``facts/``) as this run's."""
        if name not in self.written:
            self.written.append(name)
            self._write_manifest(self.written, "running")

    def write(self, files: dict[str, str], state: str = "complete") -> Path:
        """Write the report set: staged privately, then each file renamed into place.

        ReportsNotWritten (naming the directory and the cause) when any of it cannot be
        written; then none of this set's files is left in place, so that no part of a
        set (a results.json without the rest, say) speaks for the run. ``state`` goes
        into the manifest: ``complete``, or ``incomplete`` for the set of a run that
        did not finish."""
        staging = self.path / f"{STAGING_PREFIX}{self.run_id}-{os.getpid()}"
        placed: list[str] = []
        try:
            staging.mkdir()
            for name, text in files.items():
                (staging / name).write_text(text, encoding="utf-8")
            for name in files:
                os.replace(staging / name, self.path / name)
                placed.append(name)
            self._write_manifest(sorted({*self.written, *placed}), state)
        except OSError as exc:
            for name in placed:
                _remove(self.path / name)
            raise ReportsNotWritten(
                Problem(str(self.path), None, self.option, f"the reports cannot be written ({exc.strerror or exc})")
            ) from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        self.written = sorted({*self.written, *placed})
        return self.path

    def _write_manifest(self, names: list[str], state: str) -> None:
        temporary = self.path / f".{MANIFEST}.tmp"
        temporary.write_text(
            json.dumps({"run": self.run_id, "state": state, "files": sorted(set(names))}) + "\n", encoding="utf-8"
        )
        os.replace(temporary, self.path / MANIFEST)

    def release(self) -> None:
        if self._lock is not None:
            self._lock.close()  # closing drops the flock
            self._lock = None


def usable(directory: str | Path, option: str) -> None:
    """``directory`` exists as a directory a file can be written in, or is created;
    InputError (exit 4) naming it, the option and the cause otherwise: the name is too
    long, permission is denied, the file system is read-only or full.

    Called before anything runs or connects, for every directory a command will write
    (``run --out`` and ``--alluredir``, ``gather --out``, ``remediate --out``). It
    writes and removes a one-byte file rather than asking ``access()``, which says
    yes to root on a full file system and names no cause on a read-only one. A file
    system that fills up later is still possible: the writers report that too."""
    directory = Path(directory)
    try:
        if directory.exists() or directory.is_symlink():
            if not directory.is_dir():
                raise _refuse(directory, option, "is not a directory")
        else:
            directory.mkdir(parents=True)
    except InputError:
        raise
    except OSError as exc:
        raise _refuse(directory, option, f"cannot be created ({exc.strerror or exc})") from None
    probe = directory / f"{PROBE_PREFIX}{os.getpid()}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        try:
            os.write(fd, b"x")
            os.fsync(fd)  # a file system with delayed allocation reports "full" here, not at write()
        finally:
            os.close(fd)
    except OSError as exc:
        cause = "permission denied" if exc.errno in (errno.EACCES, errno.EPERM) else (exc.strerror or str(exc))
        raise _refuse(directory, option, f"cannot be written to ({cause})") from None
    finally:
        try:
            probe.unlink()
        except OSError:
            pass


def _refuse(directory: Path, option: str, message: str) -> InputError:
    return InputError([Problem(str(directory), None, option, message)])


def _holder(text: str) -> str:
    try:
        data: Any = json.loads(text)
        return f"pid {int(data['pid'])}, run {data['run']}, since {data['since']}"
    except (ValueError, TypeError, KeyError):
        return UNKNOWN_HOLDER


def _read_manifest(directory: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("files"), list) else None


def _looks_like_ours(directory: Path) -> bool:
    try:
        return json.loads((directory / "results.json").read_text(encoding="utf-8")).get("schema") in READABLE_SCHEMAS
    except (OSError, ValueError, AttributeError):
        return False


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
