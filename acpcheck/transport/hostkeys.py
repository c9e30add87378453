"""acpcheck's own known_hosts file and the three host-key policies.

The file is in OpenSSH format (so ``ssh-keyscan`` output or lines copied from
``~/.ssh/known_hosts`` work, hashed names included) and entries are keyed like
OpenSSH: ``host`` for port 22, ``[host]:port`` otherwise. Default location:
``$XDG_CONFIG_HOME/acpcheck/known_hosts`` (``~/.config/acpcheck/known_hosts``);
pass another path to keep one file per environment or per run.

Policies (``spec.ssh.hostKeyPolicy``):

- ``strict``: the server's key must already be in the file, else refuse;
- ``accept-new``: trust on first use and pin the key into the file; a key that
  differs from the pinned one afterwards is refused, like OpenSSH's
  ``StrictHostKeyChecking=accept-new``;
- ``insecure``: accept any key and say so in a warning on every connection.

A host with a pinned key of another type (say ed25519 pinned, rsa offered) is
treated as changed: the transport asks for the pinned types first (see
``preferred_key_types``), so a server that still has its old key offers it.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import hmac
import logging
import os
import threading
from pathlib import Path

from paramiko import PKey
from paramiko.hostkeys import HostKeyEntry

from acpcheck.transport.errors import TransportError
from acpcheck.transport.settings import HostKeyPolicy

log = logging.getLogger("acpcheck.transport")


def default_known_hosts_path() -> Path:
    """``$XDG_CONFIG_HOME/acpcheck/known_hosts``, defaulting to ``~/.config/…``."""
    config = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
    return Path(config) / "acpcheck" / "known_hosts"


def host_key_name(host: str, port: int) -> str:
    """The known_hosts name of an endpoint, as OpenSSH writes it."""
    return host if port == 22 else f"[{host}]:{port}"


def fingerprint(key: PKey) -> str:
    """``ssh-ed25519 SHA256:…``, the form ``ssh-keygen -lf`` prints."""
    digest = base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")
    return f"{key.get_name()} SHA256:{digest}"


def _key_family(algorithm: str) -> str:
    """rsa-sha2-256/512 are signature algorithms of an ``ssh-rsa`` key."""
    return "ssh-rsa" if algorithm.startswith("rsa-sha2-") else algorithm


def preferred_key_types(offered: tuple[str, ...], pinned: set[str]) -> tuple[str, ...]:
    """``offered`` host-key algorithms reordered so the pinned key types come first."""
    first = [a for a in offered if _key_family(a) in pinned]
    return tuple(first + [a for a in offered if a not in first])


class _Index:
    """known_hosts lines by host name, keys not yet decoded: a lookup decodes only its own lines.

    Plain names map to their lines; hashed names (``|1|salt|hash``, what
    ``HashKnownHosts`` writes) are kept as (salt, digest, line) and matched with
    one HMAC each.
    """

    def __init__(self) -> None:
        self.plain: dict[str, list[str]] = {}
        self.hashed: list[tuple[bytes, bytes, str]] = []

    @classmethod
    def of(cls, text: str) -> _Index:
        index = cls()
        for line in text.splitlines():
            index.add(line)
        return index

    def add(self, line: str) -> None:
        line = line.strip()
        if not line or line.startswith(("#", "@")):  # comments; @cert-authority/@revoked markers are not supported
            return
        names = line.split(None, 1)[0]
        for name in names.split(","):
            if name.startswith("|1|"):
                try:
                    _, _, salt, digest = name.split("|")
                    self.hashed.append((base64.b64decode(salt), base64.b64decode(digest), line))
                except ValueError:  # damaged: a bad line must not hide the others
                    continue
            else:
                self.plain.setdefault(name, []).append(line)

    def lines_for(self, name: str) -> list[str]:
        lines = list(self.plain.get(name, ()))
        if self.hashed:
            encoded = name.encode()
            lines += [
                line
                for salt, digest, line in self.hashed
                if hmac.compare_digest(hmac.new(salt, encoded, hashlib.sha1).digest(), digest)
            ]
        return lines


def _stamp(status: os.stat_result) -> tuple[int, int, int, int]:
    return (status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns)


class KnownHosts:
    """One known_hosts file, safe to share between threads and processes.

    Every lookup looks at the file (another process may have pinned a key since),
    but re-reads it only when its inode, size or mtime changed; in between it
    uses an index of the lines by host name and decodes only the looked-up
    host's keys. (Re-parsing the whole file for every connection made a
    1,000-node run quadratic: 1,000 pinned hosts, read twice per connection.)
    Pins append one line under an exclusive ``flock`` and update the index.
    """

    def __init__(self, path: str | Path | None = None):
        self.path = Path(os.path.expanduser(str(path))) if path is not None else default_known_hosts_path()
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int, int] | None = None
        self._index = _Index()

    def __repr__(self) -> str:
        return f"KnownHosts({str(self.path)!r})"

    def _current(self) -> _Index:
        """The index of the file as it is now, re-read only if the file changed."""
        try:
            stamp = _stamp(os.stat(self.path))
        except FileNotFoundError:
            return _Index()
        except OSError as exc:
            raise TransportError("permission", f"known_hosts file {self.path} cannot be read: {exc.strerror}") from None
        with self._lock:
            if stamp != self._stamp:
                try:
                    text = self.path.read_text(encoding="utf-8", errors="replace")
                except FileNotFoundError:
                    return _Index()
                except OSError as exc:
                    raise TransportError(
                        "permission", f"known_hosts file {self.path} cannot be read: {exc.strerror}"
                    ) from None
                self._index, self._stamp = _Index.of(text), stamp
            return self._index

    def keys_for(self, name: str) -> dict[str, PKey]:
        """Pinned keys of ``name`` by key type (empty when the host is unknown; a later line wins)."""
        keys: dict[str, PKey] = {}
        for line in self._current().lines_for(name):
            try:
                entry = HostKeyEntry.from_line(line)
            except Exception:  # noqa: BLE001, S112 — a damaged line must not hide the others (paramiko raises several types)
                continue
            if entry is not None and entry.key is not None:
                keys[entry.key.get_name()] = entry.key
        return keys

    def verify(self, name: str, key: PKey, policy: HostKeyPolicy) -> None:
        """Accept ``key`` for ``name`` under ``policy``, pinning it if that is the policy; else raise host-key."""
        if policy == "insecure":
            log.warning("%s: host key %s NOT verified (hostKeyPolicy: insecure)", name, fingerprint(key))
            return
        known = self.keys_for(name)
        if known:
            self._check_same(name, key, known)
            return
        if policy == "strict":
            raise TransportError(
                "host-key",
                f"unknown host key for {name} ({fingerprint(key)}); hostKeyPolicy strict needs it in {self.path}: "
                f"verify the fingerprint, then add it (ssh-keyscan output is the right format)",
            )
        self._pin(name, key)

    def _check_same(self, name: str, key: PKey, known: dict[str, PKey]) -> None:
        pinned = known.get(key.get_name())
        if pinned is not None and pinned == key:
            return
        was = fingerprint(pinned) if pinned is not None else ", ".join(fingerprint(k) for k in known.values())
        raise TransportError(
            "host-key",
            f"host key for {name} has CHANGED: the server offered {fingerprint(key)}, {self.path} has {was}; "
            f"if the node was reinstalled, remove its line from that file (ssh-keygen -R '{name}' -f {self.path})",
        )

    def _pin(self, name: str, key: PKey) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.path, "a", encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                # Another thread or process may have pinned this host while we waited.
                known = self.keys_for(name)
                if known:
                    self._check_same(name, key, known)
                    return
                line = HostKeyEntry([name], key).to_line()
                assert line is not None
                before = _stamp(os.fstat(handle.fileno()))
                handle.write(line)
                handle.flush()
                os.fsync(handle.fileno())
                with self._lock:  # the index saw the file as it was: add our line rather than re-read it all
                    if self._stamp == before:
                        self._index.add(line)
                        self._stamp = _stamp(os.fstat(handle.fileno()))
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        log.info("%s: pinned new host key %s in %s (hostKeyPolicy: accept-new)", name, fingerprint(key), self.path)
