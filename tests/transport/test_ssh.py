"""SSH transport against a real OpenSSH sshd (and microsocks) on 127.0.0.1."""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from realsshd import FAST, LOCALHOST, Lab, SocksProxy, free_port

from acpcheck.transport import (
    KnownHosts,
    SshPool,
    SshSession,
    SshSettings,
    Timeouts,
    TransportError,
    connect,
    resolve_ssh,
)
from acpcheck.transport.ssh import NOFILE_TARGET


def settings_of(lab: Lab, nodes: list[dict[str, Any]] | None = None, **ssh: Any) -> SshSettings:
    plan = lab.plan(nodes, **ssh)
    return resolve_ssh(plan, plan.spec.nodes[0])


def open_session(lab: Lab, known_hosts: KnownHosts, timeouts: Timeouts = FAST, **ssh: Any) -> SshSession:
    return connect(settings_of(lab, **ssh), timeouts=timeouts, known_hosts=known_hosts)


def failure(lab: Lab, known_hosts: KnownHosts, kind: str, timeouts: Timeouts = FAST, **ssh: Any) -> TransportError:
    with pytest.raises(TransportError) as caught:
        open_session(lab, known_hosts, timeouts, **ssh).close()
    assert caught.value.kind == kind, caught.value
    return caught.value


def assert_secret_free(error: TransportError, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in str(error) and secret not in repr(error) and secret not in error.message


# --- authentication ----------------------------------------------------------


@pytest.mark.parametrize("key", ["ed25519", "rsa", "ecdsa"])
def test_key_auth_and_one_session_for_many_commands(lab: Lab, known_hosts: KnownHosts, key: str) -> None:
    with open_session(lab, known_hosts, auth={"privateKeyFile": str(lab.keys[key])}) as session:
        exit_status, stdout, stderr = session.run("printf out; printf err >&2; exit 7")
        assert (exit_status, stdout, stderr) == (7, "out", "err")
        assert session.run("cat", stdin="fed through stdin\n").stdout == "fed through stdin\n"
        assert session.run("id -un").stdout.strip() == "root"
        assert session.is_active
    assert not session.is_active


@pytest.mark.parametrize("key", ["ed25519_pass", "rsa_pem_pass"])
def test_key_with_passphrase(lab: Lab, known_hosts: KnownHosts, monkeypatch: pytest.MonkeyPatch, key: str) -> None:
    monkeypatch.setenv("ACPT_PASSPHRASE", lab.passphrase)
    auth = {"privateKeyFile": str(lab.keys[key]), "passphraseEnv": "ACPT_PASSPHRASE"}
    with open_session(lab, known_hosts, auth=auth) as session:
        assert session.run("id -u").stdout.strip() == "0"


def test_wrong_passphrase_is_auth_and_secret_free(
    lab: Lab, known_hosts: KnownHosts, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = "not-the-passphrase-" + lab.passphrase[:4]
    monkeypatch.setenv("ACPT_PASSPHRASE", wrong)
    error = failure(
        lab,
        known_hosts,
        "auth",
        auth={"privateKeyFile": str(lab.keys["ed25519_pass"]), "passphraseEnv": "ACPT_PASSPHRASE"},
    )
    assert "could not be decrypted" in error.message and "$ACPT_PASSPHRASE" in error.message
    assert_secret_free(error, wrong, lab.passphrase)


def test_encrypted_key_without_passphrase(lab: Lab, known_hosts: KnownHosts) -> None:
    error = failure(lab, known_hosts, "auth", auth={"privateKeyFile": str(lab.keys["ed25519_pass"])})
    assert "is encrypted" in error.message and "passphraseEnv" in error.message


def test_passphrase_variable_unset(lab: Lab, known_hosts: KnownHosts, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ACPT_PASSPHRASE", raising=False)
    error = failure(
        lab,
        known_hosts,
        "auth",
        auth={"privateKeyFile": str(lab.keys["ed25519_pass"]), "passphraseEnv": "ACPT_PASSPHRASE"},
    )
    assert error.message == "passphrase of the private key: environment variable ACPT_PASSPHRASE is not set"


def test_password_auth_from_env_and_file(
    lab: Lab, known_hosts: KnownHosts, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ACPT_PASSWORD", lab.plain.password)
    with open_session(lab, known_hosts, user=lab.plain.name, auth={"passwordEnv": "ACPT_PASSWORD"}) as session:
        assert session.run("id -un").stdout.strip() == lab.plain.name
    password_file = tmp_path / "password"
    password_file.write_text(lab.plain.password + "\n")
    with open_session(lab, known_hosts, user=lab.plain.name, auth={"passwordFile": str(password_file)}) as session:
        assert session.run("id -un").stdout.strip() == lab.plain.name


def test_wrong_password_fails_fast_as_auth(lab: Lab, known_hosts: KnownHosts, monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = "wrong-" + lab.plain.password
    monkeypatch.setenv("ACPT_PASSWORD", wrong)
    error = failure(lab, known_hosts, "auth", user=lab.plain.name, auth={"passwordEnv": "ACPT_PASSWORD"})
    assert error.message == f"{lab.plain.name}@127.0.0.1:{lab.sshd.port}: password was refused"
    assert_secret_free(error, wrong, lab.plain.password)


def test_unauthorised_key_is_auth(lab: Lab, known_hosts: KnownHosts) -> None:
    error = failure(lab, known_hosts, "auth", auth={"privateKeyFile": str(lab.keys["stranger"])})
    assert f"key {lab.keys['stranger']} (ssh-ed25519 SHA256:" in error.message and "was refused" in error.message


def test_refused_key_falls_back_to_password(lab: Lab, known_hosts: KnownHosts, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACPT_PASSWORD", lab.plain.password)
    auth = {"privateKeyFile": str(lab.keys["stranger"]), "passwordEnv": "ACPT_PASSWORD"}
    with open_session(lab, known_hosts, user=lab.plain.name, auth=auth) as session:
        assert session.run("true").exit_status == 0


def test_no_credentials_is_auth_without_connecting(lab: Lab, known_hosts: KnownHosts) -> None:
    error = failure(lab, known_hosts, "auth", auth={})
    assert "no credentials" in error.message


@pytest.mark.parametrize(
    ("make_path", "words"), [(lambda d: d / "missing_key", "does not exist"), (lambda d: d, "is a directory")]
)
def test_unusable_key_file_is_permission(
    lab: Lab, known_hosts: KnownHosts, tmp_path: Path, make_path: Any, words: str
) -> None:
    error = failure(lab, known_hosts, "permission", auth={"privateKeyFile": str(make_path(tmp_path))})
    assert words in error.message


# --- reaching the node ----------------------------------------------------------


def test_closed_port_is_unreachable(lab: Lab, known_hosts: KnownHosts) -> None:
    port = free_port()
    error = failure(lab, known_hosts, "unreachable", port=port)
    assert error.message == f"127.0.0.1:{port} refused the connection (no sshd listening on that port?)"


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP server that accepts and then says nothing: what a hung sshd looks like."""
    server = socket.create_server((LOCALHOST, 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for connection in held:
        connection.close()
    server.close()


def test_silent_server_times_out_instead_of_hanging(lab: Lab, known_hosts: KnownHosts, silent_server: int) -> None:
    started = time.monotonic()
    error = failure(
        lab, known_hosts, "timeout", timeouts=Timeouts(connect=2, handshake=1, auth=2, command=5), port=silent_server
    )
    assert "no SSH banner within 1 s" in error.message
    assert time.monotonic() - started < 10  # the hard bound; normally about 1 s


def test_command_timeout_leaves_the_session_usable(lab: Lab, known_hosts: KnownHosts) -> None:
    with open_session(lab, known_hosts) as session:
        started = time.monotonic()
        with pytest.raises(TransportError) as caught:
            session.run("sleep 30", timeout=1)
        assert caught.value.kind == "timeout" and "within 1 s" in caught.value.message
        assert time.monotonic() - started < 10
        assert session.run("echo still here").stdout == "still here\n"


# --- root through sudo -n --------------------------------------------------------


def test_run_as_root_through_sudo(lab: Lab, known_hosts: KnownHosts) -> None:
    with open_session(lab, known_hosts, user=lab.sudoer.name) as session:
        assert session.run("id -u").stdout.strip() != "0"
        assert session.run_as_root("id -u; echo 'quoted $HOME'").stdout.split("\n")[:2] == ["0", "quoted $HOME"]
    with open_session(lab, known_hosts, user=lab.plain.name) as session:
        result = session.run_as_root("id -u")  # no passwordless sudo: a result, never a prompt or an exception
        assert result.exit_status != 0 and "password is required" in result.stderr


# --- SOCKS5 proxy ------------------------------------------------------------------


def proxy_block(proxy: SocksProxy, password_env: str = "ACPT_PROXY_PASSWORD", **extra: Any) -> dict[str, Any]:
    return {"url": proxy.url, "username": proxy.username, "passwordEnv": password_env, **extra}


def test_through_proxy(lab: Lab, proxy: SocksProxy, known_hosts: KnownHosts, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACPT_PROXY_PASSWORD", proxy.password)
    with open_session(lab, known_hosts, proxy=proxy_block(proxy)) as session:
        # sshd sees the connection coming from the proxy, not from us: proof it went through.
        assert session.run("echo $SSH_CLIENT").stdout.split()[0] == LOCALHOST


def test_per_node_proxy(lab: Lab, proxy: SocksProxy, known_hosts: KnownHosts, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACPT_PROXY_PASSWORD", proxy.password)
    node = {"name": "n1", "role": "control-plane", "ipv4": LOCALHOST, "ssh": {"proxy": proxy_block(proxy)}}
    settings = settings_of(lab, [node])
    assert settings.proxy is not None and settings.proxy.port == proxy.port
    with connect(settings, timeouts=FAST, known_hosts=known_hosts) as session:
        assert session.run("true").ok


def test_proxy_wrong_password_is_proxy_auth(
    lab: Lab, proxy: SocksProxy, known_hosts: KnownHosts, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = "wrong-" + proxy.password
    monkeypatch.setenv("ACPT_PROXY_PASSWORD", wrong)
    error = failure(lab, known_hosts, "proxy-auth", proxy=proxy_block(proxy))
    assert error.message == f"SOCKS5 proxy 127.0.0.1:{proxy.port} rejected the username and password"
    assert_secret_free(error, wrong, proxy.password)


def test_proxy_without_credentials_is_proxy_auth(lab: Lab, proxy: SocksProxy, known_hosts: KnownHosts) -> None:
    error = failure(lab, known_hosts, "proxy-auth", proxy={"url": proxy.url})
    assert "requires a username and password" in error.message


def test_proxy_down_is_proxy(lab: Lab, known_hosts: KnownHosts, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACPT_PROXY_PASSWORD", "irrelevant")
    port = free_port()
    error = failure(
        lab,
        known_hosts,
        "proxy",
        proxy={"url": f"socks5://127.0.0.1:{port}", "username": "u", "passwordEnv": "ACPT_PROXY_PASSWORD"},
    )
    assert error.message == f"SOCKS5 proxy 127.0.0.1:{port} refused the connection (is the proxy running?)"


def test_silent_proxy_times_out(
    lab: Lab, known_hosts: KnownHosts, silent_server: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACPT_PROXY_PASSWORD", "irrelevant")
    started = time.monotonic()
    proxy = {"url": f"socks5://127.0.0.1:{silent_server}", "username": "u", "passwordEnv": "ACPT_PROXY_PASSWORD"}
    error = failure(
        lab, known_hosts, "timeout", timeouts=Timeouts(connect=1, handshake=2, auth=2, command=5), proxy=proxy
    )
    assert (
        error.message == f"no answer within 1 s while connecting to 127.0.0.1:{lab.sshd.port} through SOCKS5 proxy "
        f"127.0.0.1:{silent_server}"
    )
    assert time.monotonic() - started < 10


def test_proxy_cannot_reach_node_is_proxy(
    lab: Lab, proxy: SocksProxy, known_hosts: KnownHosts, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACPT_PROXY_PASSWORD", proxy.password)
    port = free_port()
    error = failure(lab, known_hosts, "proxy", port=port, proxy=proxy_block(proxy))
    assert error.message.startswith(f"SOCKS5 proxy 127.0.0.1:{proxy.port} could not connect to 127.0.0.1:{port}: ")


# --- reuse -------------------------------------------------------------------------


def test_pool_reuses_one_connection_per_node(lab: Lab, known_hosts: KnownHosts) -> None:
    with SshPool(lab.plan(), timeouts=FAST, known_hosts=known_hosts) as pool:
        first = pool.session("n1")
        assert pool.session("n1") is first
        first.close()  # a dead connection is replaced
        second = pool.session("n1")
        assert second is not first and second.run("true").ok
    assert not second.is_active


def test_pool_close_is_idempotent_and_safe_in_a_signal_handler(lab: Lab, known_hosts: KnownHosts) -> None:
    pool = SshPool(lab.plan(), timeouts=FAST, known_hosts=known_hosts)
    session = pool.session("n1")
    previous = signal.signal(signal.SIGUSR1, lambda *_: pool.close())
    try:
        with pool._lock:  # the signal arrives while this thread is inside the pool
            signal.raise_signal(signal.SIGUSR1)
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert not session.is_active
    pool.close()
    pool.close()
    fresh = pool.session("n1")  # still usable after close
    assert fresh is not session and fresh.run("true").ok
    pool.close()


def test_pool_raises_the_open_file_limit(lab: Lab, tmp_path: Path) -> None:
    """In a child whose soft limit is 1,024: creating a pool raises it to the hard limit, once."""
    script = tmp_path / "child.py"
    script.write_text(
        "import json, resource, sys\n"
        "from acpcheck.model.plan import ClusterPlan\n"
        "from acpcheck.transport import SshPool, raise_open_file_limit\n"
        "plan = ClusterPlan.model_validate(json.loads(sys.argv[1]))\n"
        "SshPool(plan)\n"
        "print(*resource.getrlimit(resource.RLIMIT_NOFILE), raise_open_file_limit())\n"
    )
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard <= 1024:
        pytest.skip(f"the hard open-file limit is {hard}")

    def low_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))

    plan = lab.plan().model_dump(mode="json", by_alias=True, exclude_none=True)
    done = subprocess.run(
        [sys.executable, str(script), json.dumps(plan)],
        capture_output=True,
        text=True,
        preexec_fn=low_limit,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    soft, reported_hard, second = done.stdout.split()
    assert int(soft) == min(int(reported_hard), NOFILE_TARGET) > 1024 and second == "None"


def test_commands_work_with_descriptors_above_1024(lab: Lab, known_hosts: KnownHosts) -> None:
    """select() cannot watch a descriptor above 1,024; a big run has them."""
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < 1200:
        pytest.skip("needs a soft open-file limit above 1,200")
    filler = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        with open_session(lab, known_hosts) as session:
            assert session._transport.sock.fileno() > 1024
            assert session.run("echo high").stdout == "high\n"
    finally:
        for fd in filler:
            os.close(fd)


def test_pool_close_cuts_a_command_in_progress(lab: Lab, known_hosts: KnownHosts) -> None:
    pool = SshPool(lab.plan(), timeouts=FAST, known_hosts=known_hosts)
    session = pool.session("n1")
    outcome: list[BaseException | object] = []

    def run() -> None:
        try:
            outcome.append(session.run("sleep 10"))
        except BaseException as exc:  # noqa: BLE001
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    time.sleep(0.3)
    started = time.monotonic()
    pool.close()
    thread.join(5)
    assert time.monotonic() - started < 3 and not thread.is_alive()
    assert isinstance(outcome[0], TransportError) and outcome[0].kind == "unreachable", outcome


# --- channels and file descriptors -------------------------------------------


def test_no_channel_ever_gets_an_os_pipe_so_closing_one_cannot_touch_another_connection(
    lab: Lab, known_hosts: KnownHosts, monkeypatch: pytest.MonkeyPatch
) -> None:
    """paramiko's ``Channel.fileno()`` puts an OS pipe behind a channel; closing the
    channel closes that pipe while paramiko's transport thread may still write its
    wake-up byte into it (and a reader read one out), by then often another
    connection's socket under the same fd number. On a 1,000-node lab that killed
    connections mid-probe ("Socket exception: Bad file descriptor", "Broken pipe").
    Every way a channel is read and closed here — a command, its output, a timeout,
    a background command stopped and one abandoned from another thread — works
    without one."""
    import paramiko

    def no_pipe(channel: paramiko.Channel) -> int:
        raise AssertionError("Channel.fileno() called: an OS pipe behind a channel")

    monkeypatch.setattr(paramiko.Channel, "fileno", no_pipe)
    with open_session(lab, known_hosts) as session, open_session(lab, known_hosts) as other:
        result = session.run("printf out; printf err >&2; head -c 300000 /dev/zero | tr '\\0' x; exit 3")
        assert (result.exit_status, result.stdout[:3], result.stderr, len(result.stdout)) == (3, "out", "err", 300003)
        with pytest.raises(TransportError) as caught:
            session.run("sleep 5", timeout=0.5)
        assert caught.value.kind == "timeout"
        stopped = session.start("echo ready; exec sleep 60", deadline=30)
        stopped.wait_output(lambda text: "ready" in text, 5)
        stopped.stop(timeout=5)
        for _ in range(10):  # abandoned from another thread while its reader thread reads a stream of output
            noisy = session.start("while :; do echo acpcheck; sleep 0.01; done", deadline=3)
            noisy.wait_output(lambda text: len(text) > 100, 5)
            threading.Thread(target=noisy._abandon).start()
            assert other.run("echo still here").stdout == "still here\n"
        assert session.is_active and other.is_active
