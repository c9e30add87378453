"""Root-namespace operations of the lab: commands with timeouts, namespaces, links,
and finding and stopping the lab's processes. Nothing here knows about scenarios."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from acpcheck_lab.layout import LABS_PREFIX, MARKER_ENV

NETNS_DIR = Path("/run/netns")
ETC_NETNS_DIR = Path("/etc/netns")
KEEPER = Path(__file__).with_name("keeper.py")


class LabError(Exception):
    """The lab could not do what was asked; the message says why, for a person."""


def run(
    cmd: Sequence[str], *, timeout: float = 30, stdin: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run a command (never through a shell); LabError with its stderr if it fails."""
    try:
        result = subprocess.run(list(cmd), input=stdin, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError:
        raise LabError(f"{cmd[0]}: command not found (run scripts/setup-system.sh)") from None
    except subprocess.TimeoutExpired:
        raise LabError(f"{' '.join(cmd[:3])}: no answer within {timeout:.0f} s") from None
    if check and result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()[-5:]
        raise LabError(f"{' '.join(cmd[:3])} failed (exit {result.returncode}): {' / '.join(detail)}")
    return result


def ip_batch(lines: Iterable[str], *, force: bool = False, timeout: float = 120) -> None:
    """Many ``ip`` commands in one process (``ip -batch``): fast for hundreds of nodes.
    With ``force`` every line is tried and failures are ignored (for cleanup)."""
    text = "".join(line + "\n" for line in lines)
    if text:
        run(["ip", *(["-force"] if force else []), "-batch", "-"], stdin=text, timeout=timeout, check=not force)


def namespace_on_bridge(netns: str, veth: str, bridge: str) -> list[str]:
    """The ``ip -batch`` lines for a new namespace whose ``eth0`` is plugged into ``bridge``
    (through ``veth``, its peer on this side): how every node, LB and registry joins its network."""
    return [
        f"netns add {netns}",
        f"link add {veth} type veth peer name eth0 netns {netns}",
        f"link set {veth} master {bridge} up",
    ]


def require_root(action: str) -> None:
    if os.geteuid() != 0:
        raise LabError(f"lab {action} needs root: it creates network namespaces, bridges and mounts")


# ``prefix``: one lab's (``LabNames.prefix``), or LABS_PREFIX, the default, for every lab's.


def lab_namespaces(prefix: str = LABS_PREFIX) -> list[str]:
    try:
        return sorted(name for name in os.listdir(NETNS_DIR) if name.startswith(prefix))
    except FileNotFoundError:
        return []


def lab_links(prefix: str = LABS_PREFIX) -> list[str]:
    """Lab interfaces in the root namespace (bridges, root ends of veths)."""
    return sorted(name for name in os.listdir("/sys/class/net") if name.startswith(prefix))


def lab_etc_netns_dirs(prefix: str = LABS_PREFIX) -> list[Path]:
    try:
        return sorted(path for path in ETC_NETNS_DIR.iterdir() if path.name.startswith(prefix))
    except FileNotFoundError:
        return []


def disable_ipv6(interfaces: Iterable[str]) -> None:
    """No IPv6 (not even link-local) on the lab's root-namespace interfaces: the root
    namespace must have no way onto the hidden network."""
    for name in interfaces:
        try:
            Path(f"/proc/sys/net/ipv6/conf/{name}/disable_ipv6").write_text("1\n")
        except FileNotFoundError:
            pass  # IPv6 disabled on this machine altogether


def _namespace_ids(names: Iterable[str]) -> set[tuple[int, int]]:
    ids = set()
    for name in names:
        try:
            st = os.stat(NETNS_DIR / name)
            ids.add((st.st_dev, st.st_ino))
        except OSError:
            pass
    return ids


def _alive(pid: int) -> bool:
    """Running (a zombie counts as gone: it holds no namespace and no port)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def has_marker(pid: int, prefix: str | None = LABS_PREFIX, state_dir: Path | None = None) -> bool:
    """Whether ``pid`` is a process of the lab with ``prefix`` and ``state_dir`` (None:
    of any lab): it carries MARKER_ENV (with that state dir) in its environment (the
    keeper, proxy, listeners, haproxy, etcd…), or it lives in a node's mount namespace,
    whose mounts' sources start with the prefix (sshd and its sessions: sshd overwrites
    its environment block with its process title). A ``prefix`` of None: the marker only."""
    marker = MARKER_ENV.encode() + b"=" + (str(state_dir).encode() if state_dir is not None else b"")
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
        if any(item == marker or (state_dir is None and item.startswith(marker)) for item in environ.split(b"\0")):
            return True
        # a mount made by a node's init.sh, as /proc/PID/mountinfo shows it: " - tmpfs acplab1-disk …"
        if prefix is None:
            return False
        return re.search(r" - \S+ " + re.escape(prefix), Path(f"/proc/{pid}/mountinfo").read_text()) is not None
    except OSError:
        return False


def lab_processes(
    pid_files: Iterable[Path] = (), prefix: str | None = LABS_PREFIX, state_dir: Path | None = None
) -> dict[int, str]:
    """Every live process of one lab (``prefix`` and ``state_dir``; by default of every
    lab), with why it counts: it is inside one of the lab's network namespaces, or
    carries the lab's marker (this also finds processes whose namespace was already
    deleted). A pid file's pid counts only if the process still carries the marker, so
    a reused pid is never touched. A ``prefix`` of None (a lab whose name is unknown):
    the marker only."""
    ns_ids = _namespace_ids(lab_namespaces(prefix)) if prefix is not None else set()
    found: dict[int, str] = {}
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        pid = int(entry)
        try:
            st = os.stat(f"/proc/{pid}/ns/net")
        except OSError:
            continue
        if (st.st_dev, st.st_ino) in ns_ids:
            found[pid] = "in a lab namespace"
        elif has_marker(pid, prefix, state_dir):
            found[pid] = "started by the lab"
    for pid_file in pid_files:
        try:
            pid = int(pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
        if pid not in found and _alive(pid) and has_marker(pid, prefix, state_dir):
            found[pid] = f"from {pid_file.name}"
    return {pid: why for pid, why in found.items() if _alive(pid)}


def is_keeper(pid: int) -> bool:
    try:
        return str(KEEPER).encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def wait_gone(pids: Iterable[int], timeout: float) -> set[int]:
    """Wait until the processes have ended; return those that have not."""
    pending = set(pids)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        pending = {pid for pid in pending if _alive(pid)}
        if pending:
            time.sleep(0.02)
    return pending


def terminate(pids: Iterable[int], grace: float = 3.0) -> list[int]:
    """SIGTERM, then SIGKILL after ``grace`` seconds; return pids still alive after that."""
    pending = set(pids)
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 2.0)):
        for pid in pending:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        pending = wait_gone(pending, wait)
        if not pending:
            break
    return sorted(pending)


class Keeper:
    """Starts the lab's processes through ``keeper.py`` (their parent and
    reaper, see there). The keeper itself is detached with ``setsid -f``: it outlives
    ``up``; our pipes to it stay open until ``close``."""

    REPLY_TIMEOUT = 10.0

    def __init__(self, pid_file: Path, env: dict[str, str]):
        proc = subprocess.Popen(
            # -I and a file path: the keeper needs the standard library only (fast start)
            ["setsid", "-f", sys.executable, "-I", str(KEEPER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            bufsize=0,
            close_fds=True,
        )
        proc.wait(timeout=10)  # setsid -f returns once it has forked; the pipes now lead to the keeper
        assert proc.stdin and proc.stdout
        self._to, self._from = proc.stdin, proc.stdout
        self._buffer = b""
        pid_file.write_text(f"{self._read_reply('the keeper did not start')}\n")

    def launch(self, requests: Sequence[tuple[str, Sequence[str], Path, dict[str, str]]]) -> list[int]:
        """Start each ``(netns, argv, log, env)`` inside its namespace; return the pids.
        All requests are written before any reply is read, so hundreds start quickly."""
        lines = []
        for netns, argv, log, env in requests:
            lines.append(
                json.dumps({"argv": ["ip", "netns", "exec", netns, *argv], "log": str(log), "env": dict(env)}) + "\n"
            )
        data = "".join(lines).encode()
        while data:  # the keeper answers only after reading; its replies are tiny, so no deadlock
            written = self._to.write(data)
            data = data[written or 0 :]
        return [self._read_reply(f"could not start a process in {netns}") for netns, *_ in requests]

    def _read_reply(self, failure: str) -> int:
        """One reply line; the pipe is read unbuffered by us, so select() never misses
        a line that was already read ahead."""
        deadline = time.monotonic() + self.REPLY_TIMEOUT
        while b"\n" not in self._buffer:
            ready, _, _ = select.select([self._from], [], [], max(0.0, deadline - time.monotonic()))
            chunk = os.read(self._from.fileno(), 4096) if ready else b""
            if not chunk:
                raise LabError(f"{failure}: {'the keeper exited' if ready else 'no answer from the keeper'}")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        reply = line.decode(errors="replace").strip()
        if not reply.isdigit():
            raise LabError(f"{failure}: {reply}")
        return int(reply)

    def close(self) -> None:
        self._to.close()
        self._from.close()


def pid_alive(pid_file: Path, verify: bool = True) -> bool | None:
    """True/False for a pid file's process; None when there is no pid file yet. With
    ``verify`` the process must also be a lab process (the pid may have been reused);
    ``up`` skips that for pid files it has just seen written."""
    try:
        pid = int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return _alive(pid) and (not verify or has_marker(pid))


def listening(pid_file: Path, port: int) -> bool:
    """Whether the network namespace of the pid file's process has a TCP listener on
    ``port`` (read from /proc/PID/net/tcp: no packet is sent, so a connection attempt
    cannot stall on a neighbour that is not up yet)."""
    try:
        pid = int(pid_file.read_text().split()[0])
        table = Path(f"/proc/{pid}/net/tcp").read_text()
    except (OSError, ValueError, IndexError):
        return False
    for line in table.splitlines()[1:]:
        fields = line.split()
        if len(fields) > 3 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # 0A = LISTEN
            return True
    return False
