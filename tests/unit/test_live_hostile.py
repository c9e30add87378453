"""Live sources against servers and files that misbehave on purpose (issue 22, item 4).

The test API server's hostile answers (acpcheck_lab.apiserver ``Hostile``: drip, silent,
huge, malformed, reset) against the Kubernetes client of the ``cluster`` source and the
etcd client; exec credential plugins that never end, flood or leave children behind;
kubeconfigs and the files they name that are FIFOs, devices or missing. Each test asserts
what the user gets (which failure, naming what) and that the gather ends; none asserts
a duration. A deadline of 1 s (``ACPCHECK_REQUEST_TIMEOUT``) keeps them short. No root
needed except where a test says so."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from acpcheck.sources.base import TargetUnavailable
from acpcheck.sources.cluster import (
    ETCD_ENCRYPTION_CONFIG,
    NODES,
    ClusterSource,
    ClusterView,
    gather_cluster,
)
from acpcheck.testing import load_plan_text
from acpcheck.transport import etcd as etcd_module
from acpcheck.transport import kube as kube_module
from acpcheck.transport.deadline import REQUEST_TIMEOUT, Deadline, request_timeout
from acpcheck.transport.etcd import ClientCredentials, EtcdClient, EtcdError
from acpcheck.transport.kube import kubeconfig_problems
from acpcheck_lab.apiserver import Hostile, ServerDir, TestApiServer, init_server_dir, serve_dir

ROOT = Path(__file__).resolve().parents[2]
PLAN = load_plan_text((ROOT / "examples" / "workload-kube-ovn.yaml").read_text())
SEED = """apiVersion: v1
kind: Node
metadata: {name: cp1, labels: {node-role.kubernetes.io/control-plane: ""}}
---
apiVersion: cluster.alauda.io/v1alpha1
kind: EtcdEncryptionConfig
metadata: {name: default}
spec: {resources: [secrets, configmaps], rotationInterval: 168h0m0s, type: aesgcm}
"""
#: Seconds between two bytes of a drip: each read of the client gets a byte long before its
#: 30 s read timeout, so only the deadline on the whole exchange can end the request.
DRIP = 0.2


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestApiServer, ServerDir]]:
    root = tmp_path_factory.mktemp("hostile-api")
    (root / "seed.yaml").write_text(SEED)
    server_dir = init_server_dir(root / "dir", port=0)
    server = serve_dir(server_dir.root, listen="127.0.0.1:0", seeds=[root / "seed.yaml"])
    yield server, server_dir
    server.stop()


@pytest.fixture
def api(served: tuple[TestApiServer, ServerDir]) -> Iterator[tuple[TestApiServer, ServerDir]]:
    """The module's server, well-behaved again after each test."""
    yield served
    served[0].hostile = None


def gather(kubeconfig: Path | str, deadline: str = "1"):  # noqa: ANN201
    return gather_cluster(PLAN, environ={"ACPCHECK_KUBECONFIG": str(kubeconfig), "ACPCHECK_REQUEST_TIMEOUT": deadline})


def with_user(server_dir: ServerDir, target: Path, user: dict) -> Path:  # type: ignore[type-arg]
    document = yaml.safe_load(server_dir.kubeconfig("acpcheck-reader").read_text())
    document["users"][0]["user"] = user
    target.write_text(yaml.safe_dump(document))
    return target


def token_of(server_dir: ServerDir) -> str:
    return next(str(u.token) for u in server_dir.users() if u.name == "acpcheck-reader")


# -- the Kubernetes API ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["drip", "silent"])
def test_a_server_that_drips_or_stalls_is_cut_off_at_the_deadline_of_the_request(
    api: tuple[TestApiServer, ServerDir], mode: str
) -> None:
    server, server_dir = api
    server.hostile = Hostile(mode, "/", DRIP)
    evidence = gather(server_dir.kubeconfig("acpcheck-reader"))
    assert evidence.failure == (
        "timeout",
        f"get /version: {server.url} gave no complete answer within 1 s "
        "(the deadline of one request; ACPCHECK_REQUEST_TIMEOUT sets it)",
    )
    with pytest.raises(TargetUnavailable) as error:  # every cluster check: ERROR for the cluster, naming what timed out
        ClusterSource().provide("cluster", evidence, PLAN, None)
    assert (
        error.value.target == f"cluster:{PLAN.metadata.name}"
        and error.value.kind == "timeout"
        and "get /version" in error.value.message
    )


def test_a_drip_in_the_middle_of_the_reads_names_the_request(api: tuple[TestApiServer, ServerDir]) -> None:
    server, server_dir = api
    server.hostile = Hostile("drip", "/api/v1/nodes", DRIP)
    evidence = gather(server_dir.kubeconfig("acpcheck-reader"))
    assert evidence.failure is not None and evidence.failure[0] == "timeout"
    assert evidence.failure[1].startswith("list nodes: ") and "within 1 s" in evidence.failure[1]
    server.hostile = None  # and the server (and client) are fine for the next run
    assert gather(server_dir.kubeconfig("acpcheck-reader")).failure is None


def test_an_endless_answer_is_cut_at_the_size_limit_and_the_other_reads_complete(
    api: tuple[TestApiServer, ServerDir], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, server_dir = api
    monkeypatch.setattr(kube_module, "MAX_RESPONSE_BYTES", 1 << 20)  # 1 MiB: reached long before any deadline
    server.hostile = Hostile("huge", "/api/v1/nodes")
    evidence = gather(server_dir.kubeconfig("acpcheck-reader"), deadline="60")
    assert evidence.failure is None
    view = ClusterView(evidence)
    with pytest.raises(TargetUnavailable) as error:
        view.items(NODES)
    assert (
        error.value.kind == "error"
        and error.value.message
        == f"list nodes: the answer of {server.url} is more than the 1,048,576 bytes acpcheck reads"
    )
    assert view.get(ETCD_ENCRYPTION_CONFIG)["spec"]["type"] == "aesgcm"  # the rest completes


def test_an_answer_that_is_not_json_fails_that_read_only(api: tuple[TestApiServer, ServerDir]) -> None:
    server, server_dir = api
    server.hostile = Hostile("malformed", "/api/v1/nodes")
    evidence = gather(server_dir.kubeconfig("acpcheck-reader"))
    assert evidence.failure is None
    assert (
        evidence.reads["nodes"].status == "error"
        and evidence.reads["nodes"].message == f"list nodes: the answer of {server.url} is not valid JSON"
    )
    assert evidence.reads["etcdencryptionconfig"].status == "ok"
    server.hostile = Hostile("malformed", "/")
    assert gather(server_dir.kubeconfig("acpcheck-reader")).failure == (
        "error",
        f"get /version: the answer of {server.url} is not valid JSON",
    )


def test_a_reset_in_the_middle_of_the_answer(api: tuple[TestApiServer, ServerDir]) -> None:
    server, server_dir = api
    server.hostile = Hostile("reset", "/api/v1/nodes")
    failure = gather(server_dir.kubeconfig("acpcheck-reader")).failure
    assert failure is not None and failure[0] == "unreachable"
    assert failure[1].startswith(f"list nodes: the connection to {server.url} ended before the answer was complete")


# -- exec credential plugins ----------------------------------------------------------------------


def running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie waiting for a reaper is not)."""
    try:
        return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False


def ends(pid: int) -> bool:
    """Whether ``pid`` is gone or going: SIGKILL takes effect when the process next runs,
    a moment after it was sent (a minute is far more than enough)."""
    for _ in range(600):
        if not running(pid):
            return True
        threading.Event().wait(0.1)
    return False


def exec_user(plugin: Path) -> dict:  # type: ignore[type-arg]
    return {
        "exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": str(plugin), "interactiveMode": "Never"}
    }


def test_an_exec_plugin_that_never_ends_is_stopped_with_everything_it_started(
    api: tuple[TestApiServer, ServerDir], tmp_path: Path
) -> None:
    plugin, pids = tmp_path / "plugin", tmp_path / "pids"
    plugin.write_text(f"#!/bin/sh\necho $$ > {pids}\nsleep 3600 &\necho $! >> {pids}\nsleep 3600\n")
    plugin.chmod(0o755)
    evidence = gather(with_user(api[1], tmp_path / "exec.kubeconfig", exec_user(plugin)))
    assert evidence.failure == (
        "timeout",
        f"the exec credential plugin {str(plugin)!r} of kubeconfig user 'acpcheck-reader' did not finish within 1 s "
        "(the deadline; ACPCHECK_REQUEST_TIMEOUT sets it); it and everything it started were stopped",
    )
    started = [int(pid) for pid in pids.read_text().split()]
    assert len(started) == 2 and all(ends(pid) for pid in started)  # the shell and its background sleep: no orphan


def test_an_exec_plugin_that_leaves_a_child_holding_its_output(
    api: tuple[TestApiServer, ServerDir], tmp_path: Path
) -> None:
    """The credential counts as soon as the plugin exits; the child it left (still holding
    stdout, which kept the client's read waiting) is killed with its process group."""
    plugin, pids = tmp_path / "plugin", tmp_path / "pids"
    credential = json.dumps(
        {
            "apiVersion": "client.authentication.k8s.io/v1",
            "kind": "ExecCredential",
            "status": {"token": token_of(api[1])},
        }
    )
    plugin.write_text(f"#!/bin/sh\nsleep 3600 &\necho $! > {pids}\nprintf '%s' '{credential}'\n")
    plugin.chmod(0o755)
    evidence = gather(with_user(api[1], tmp_path / "exec.kubeconfig", exec_user(plugin)), deadline="60")
    assert evidence.failure is None and evidence.auth == "exec"
    assert ends(int(pids.read_text()))


def test_an_exec_plugin_that_floods_its_output(api: tuple[TestApiServer, ServerDir], tmp_path: Path) -> None:
    plugin = tmp_path / "plugin"
    plugin.write_text("#!/bin/sh\nexec cat /dev/zero\n")
    plugin.chmod(0o755)
    failure = gather(with_user(api[1], tmp_path / "exec.kubeconfig", exec_user(plugin)), deadline="60").failure
    assert failure is not None and failure[0] == "auth" and "printed more than 1,048,576 bytes" in failure[1]


# -- files: the hardened loader ----------------------------------------------------------------------


def test_a_kubeconfig_that_is_a_device_is_refused_at_once() -> None:
    """``--kubeconfig /dev/zero`` grew to 23 GB: now it is refused before any read."""
    assert gather("/dev/zero").failure == (
        "config",
        "kubeconfig /dev/zero: not a regular file (it is a device); acpcheck reads regular files only",
    )
    problems = kubeconfig_problems(PLAN, {"ACPCHECK_KUBECONFIG": "/dev/zero"})
    assert [str(p) for p in problems] == [
        "/dev/zero: not a regular file (it is a device); acpcheck reads regular files only (the kubeconfig "
        "given by --kubeconfig or ACPCHECK_KUBECONFIG)"
    ]


def test_files_a_kubeconfig_names_are_read_by_the_loader_and_named_with_their_field(
    api: tuple[TestApiServer, ServerDir], tmp_path: Path
) -> None:
    fifo = tmp_path / "token.fifo"
    os.mkfifo(fifo)
    kubeconfig = with_user(api[1], tmp_path / "fifo.kubeconfig", {"tokenFile": str(fifo)})
    line = next(number for number, text in enumerate(kubeconfig.read_text().splitlines(), 1) if "tokenFile" in text)
    expected = (
        f"{kubeconfig}:{line}: users[0].user.tokenFile: token file {fifo}: not a regular file (it is a FIFO); "
        "acpcheck reads regular files only"
    )
    assert [str(p) for p in kubeconfig_problems(PLAN, {"ACPCHECK_KUBECONFIG": str(kubeconfig)})] == [expected]
    assert gather(kubeconfig).failure == (
        "config",
        f"kubeconfig {expected}",
    )  # a gather without the check first: ERROR, at once
    device = with_user(
        api[1], tmp_path / "device.kubeconfig", {"client-certificate": "/dev/zero", "client-key": str(fifo)}
    )
    [problem] = kubeconfig_problems(PLAN, {"ACPCHECK_KUBECONFIG": str(device)})
    assert (
        problem.field == "users[0].user.client-certificate"
        and "client certificate file /dev/zero: not a regular file (it is a device)" in problem.message
    )
    document = yaml.safe_load(device.read_text())
    document["clusters"][0]["cluster"] = {
        "server": document["clusters"][0]["cluster"]["server"],
        "certificate-authority": str(fifo),
    }
    document["users"][0]["user"] = {"token": "x" * 20}
    (tmp_path / "ca.kubeconfig").write_text(yaml.safe_dump(document))
    [problem] = kubeconfig_problems(PLAN, {"ACPCHECK_KUBECONFIG": str(tmp_path / "ca.kubeconfig")})
    assert (
        problem.field == "clusters[0].cluster.certificate-authority"
        and "not a regular file (it is a FIFO)" in problem.message
    )


def test_a_missing_file_is_named_by_its_field_not_its_path(
    api: tuple[TestApiServer, ServerDir], tmp_path: Path
) -> None:
    """Someone who typed the token itself into tokenFile must not see it printed back."""
    kubeconfig = with_user(api[1], tmp_path / "typo.kubeconfig", {"tokenFile": "sk_live_51Hx0fakeTOKENvalue"})
    [problem] = kubeconfig_problems(PLAN, {"ACPCHECK_KUBECONFIG": str(kubeconfig)})
    assert (
        problem.field == "users[0].user.tokenFile"
        and "sk_live" not in str(problem)
        and "does not exist" in problem.message
    )


def test_files_named_by_a_kubeconfig_are_used_from_what_the_loader_read(
    api: tuple[TestApiServer, ServerDir], tmp_path: Path
) -> None:
    """CA, client certificate and key given as files (not ``-data``) still authenticate."""
    document = yaml.safe_load(api[1].kubeconfig("admin").read_text())
    cluster, user = document["clusters"][0]["cluster"], document["users"][0]["user"]
    for key, name in (
        ("certificate-authority-data", "ca.crt"),
        ("client-certificate-data", "admin.crt"),
        ("client-key-data", "admin.key"),
    ):
        entry = cluster if key.startswith("certificate") else user
        (tmp_path / name).write_bytes(base64.b64decode(entry.pop(key)))
        entry[key.removesuffix("-data")] = name  # relative to the kubeconfig
    (tmp_path / "files.kubeconfig").write_text(yaml.safe_dump(document))
    evidence = gather(tmp_path / "files.kubeconfig", deadline="60")
    assert evidence.failure is None and evidence.auth == "client-certificate"


def test_a_bad_deadline_setting_is_named() -> None:
    assert request_timeout({}) == REQUEST_TIMEOUT
    assert request_timeout({"ACPCHECK_REQUEST_TIMEOUT": "2.5"}) == 2.5
    for bad in ("0", "-1", "nan", "inf", "soon", "1e9"):
        with pytest.raises(ValueError, match="give a number of seconds above 0"):
            request_timeout({"ACPCHECK_REQUEST_TIMEOUT": bad})
    [problem] = kubeconfig_problems(PLAN, {"ACPCHECK_REQUEST_TIMEOUT": "soon"})
    assert str(problem) == "ACPCHECK_REQUEST_TIMEOUT: give a number of seconds above 0, at most 86,400"


# -- the deadline itself ----------------------------------------------------------------------------


def test_the_deadline_wakes_a_read_that_would_wait_for_ever() -> None:
    ours, peer = socket.socketpair()
    with ours, peer, Deadline(0.2) as deadline:
        deadline.watch(ours)
        assert ours.recv(1) == b""  # woken by the shutdown, not by data
        assert deadline.expired


def test_the_deadline_leaves_a_reused_descriptor_alone() -> None:
    """A descriptor closed during the exchange and reused by another socket is not shut down."""
    first, first_peer = socket.socketpair()
    number = first.fileno()
    with Deadline(0.2) as deadline:
        deadline.watch(first)
        first_peer.close()
        first.close()  # the exchange's connection is gone; its number is free
        second, second_peer = socket.socketpair()
        if second.fileno() == number:
            reused = second
        else:  # make the number refer to the new socket
            os.dup2(second.fileno(), number)
            reused = socket.socket(fileno=number)
        while not deadline.expired:
            threading.Event().wait(0.05)
    with second, second_peer, reused:
        second_peer.sendall(b"x")
        assert reused.recv(1) == b"x"  # still connected both ways: the deadline did not shut it down
        reused.sendall(b"y")
        assert second_peer.recv(1) == b"y"


# -- etcd ---------------------------------------------------------------------------------------------


def etcd_client(api: tuple[TestApiServer, ServerDir]) -> EtcdClient:
    """The etcd client against the hostile server (it speaks TLS with a client certificate, like etcd)."""
    server, server_dir = api
    user = yaml.safe_load(server_dir.kubeconfig("admin").read_text())["users"][0]["user"]
    credentials = ClientCredentials(
        server_dir.ca.read_text(),
        base64.b64decode(user["client-certificate-data"]).decode(),
        base64.b64decode(user["client-key-data"]).decode(),
    )
    return EtcdClient(
        ("127.0.0.1", server.port), "127.0.0.1", credentials, label="cp1: https://127.0.0.1:2379", deadline=1.0
    )


@pytest.mark.parametrize("mode", ["drip", "silent"])
def test_an_etcd_that_drips_or_stalls_is_cut_off_at_the_deadline_of_the_read(
    api: tuple[TestApiServer, ServerDir], mode: str
) -> None:
    api[0].hostile = Hostile(mode, "/v3/", DRIP)
    with etcd_client(api) as client, pytest.raises(EtcdError) as error:
        client.status()
    assert error.value.kind == "timeout"
    assert error.value.message == (
        "cp1: https://127.0.0.1:2379: etcd gave no complete answer to /v3/maintenance/status within 1 s "
        "(the deadline of one read; ACPCHECK_REQUEST_TIMEOUT sets it)"
    )


def test_etcd_answers_too_large_not_json_or_cut_off(
    api: tuple[TestApiServer, ServerDir], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(etcd_module, "MAX_ANSWER_BYTES", 1 << 20)
    outcomes = {}
    for mode in ("huge", "malformed", "reset"):
        api[0].hostile = Hostile(mode, "/v3/")
        with etcd_client(api) as client, pytest.raises(EtcdError) as error:
            client.status()
        outcomes[mode] = (error.value.kind, error.value.message.split(": ", 2)[-1])
    assert outcomes == {
        "huge": ("error", "etcd's answer to /v3/maintenance/status is more than the 1,048,576 bytes acpcheck reads"),
        "malformed": ("error", "etcd's answer to /v3/maintenance/status is not JSON (is this etcd's client port?)"),
        "reset": ("unreachable", outcomes["reset"][1]),
    }
    assert outcomes["reset"][1].startswith("the connection to etcd ended")


# -- files on the nodes -------------------------------------------------------------------------------


@pytest.mark.skipif(os.geteuid() != 0, reason="reads as root through the local transport")
def test_a_node_file_that_is_not_regular_or_too_large_is_that_nodes_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from acpcheck.sources.encryption import _read_file
    from acpcheck.transport.errors import TransportError
    from acpcheck.transport.local import LocalTransport

    fifo = tmp_path / "config.fifo"
    os.mkfifo(fifo)
    big = tmp_path / "big.yaml"
    big.write_bytes(b"x" * 2000)
    (tmp_path / "ok.yaml").write_text("kind: EncryptionConfiguration\n")
    monkeypatch.setenv("ACPCHECK_MAX_INPUT_BYTES", "1000")
    transport = LocalTransport()
    for path, what in (
        (fifo, "is not a regular file"),
        (Path("/dev/zero"), "is not a regular file"),
        (big, "is larger than 1,000 bytes"),
    ):
        with pytest.raises(TransportError) as error:
            _read_file(transport, str(path))
        assert error.value.kind == "probe" and f"{path} {what}" in error.value.message
    assert _read_file(transport, str(tmp_path / "ok.yaml"), stat=True)[1] == "kind: EncryptionConfiguration\n"
    assert _read_file(transport, str(tmp_path / "absent.yaml")) == (None, None)


# -- a whole run ----------------------------------------------------------------------------------------


def test_acpcheck_run_with_kubeconfig_dev_zero_ends_at_once_naming_it(tmp_path: Path) -> None:
    """The issue's command (one ENC check: no node is contacted). The kubeconfig is refused as
    bad input before anything runs, and /dev/zero is never read. The memory cap turns a read
    without end into a failure of this test, not a machine out of memory."""
    command = [
        sys.executable,
        "-m",
        "acpcheck",
        "run",
        "--plan",
        str(ROOT / "examples" / "workload-kube-ovn.yaml"),
        "--profile",
        "upgrade",
        "--check",
        "ACP-ENC-001",
        "--kubeconfig",
        "/dev/zero",
        "--out",
        str(tmp_path / "out"),
    ]
    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / "id_ed25519").write_text("")  # the plan's key file (not used: no node is contacted)
    env = {**os.environ, "HOME": str(tmp_path)}
    done = subprocess.run(
        ["prlimit", "--as=4000000000", *command], capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env
    )
    assert done.returncode == 4, done.stdout + done.stderr
    assert "/dev/zero: not a regular file (it is a device); acpcheck reads regular files only" in done.stderr
    assert not (tmp_path / "out" / "results.json").exists()


@pytest.mark.parametrize("value", ["soon", "0", "-3", "1e9"])
def test_a_bad_request_timeout_option_is_bad_input_before_anything_runs(tmp_path: Path, value: str) -> None:
    command = [
        sys.executable,
        "-m",
        "acpcheck",
        "run",
        "--plan",
        str(ROOT / "examples" / "workload-kube-ovn.yaml"),
        "--profile",
        "upgrade",
        "--check",
        "ACP-ENC-001",
        "--request-timeout",
        value,
        "--out",
        str(tmp_path / "out"),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 4, done.stdout + done.stderr
    assert "--request-timeout: give a number of seconds above 0, at most 86,400" in done.stderr
    assert "soon" not in done.stderr  # what was typed is not echoed
