"""Remote pytest-xdist workers on lab nodes (issue 18, item 4): two lab nodes act as worker
hosts, reached by execnet over the lab's SSH (``acpcheck_lab.workers``), and a pytest run
spreads over them with ``--dist loadgroup``: each group runs on one node, in that node's
network namespace, and its results come back to the runner through execnet only (what a
worker writes stays on its node). Then a three-cluster fleet on test API servers, run with
``-n 2`` and with the two lab nodes as workers: the same results.json, every cluster read
from one node, its evidence back in the controller's report directory.

The lab runs under the lab tests' machine lock (``lab_machine``); the worker environment
lives in /var/tmp, which the nodes see (they have their own /tmp)."""

from __future__ import annotations

import json
import os
import shutil
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from acpcheck_lab import LabError, LabInfo, NodeInfo, Scenario, down, up
from acpcheck_lab.apiserver import init_server_dir, serve_dir
from acpcheck_lab.scenario import NodeSpec
from acpcheck_lab.workers import (
    NODE_PRIVATE_DIRS,
    check_worker_hosts,
    controller_address,
    hidden_from_nodes,
    worker_python,
    worker_specs,
)

#: Two worker hosts, as if one stood in each data centre.
WORKER_NODES = ("dc1", "dc2")
SCENARIO = Scenario(
    name="workers",
    description="two worker hosts for remote pytest-xdist workers",
    nodes=[NodeSpec(name="dc1", role="control-plane"), NodeSpec(name="dc2", role="worker")],
)
#: A directory of this machine that the nodes see too.
SHARED_TMP = Path("/var/tmp")
GREETING = "hello from the runner's machine"

#: The suite the workers run: every test says where it ran and what it could reach. Two
#: xdist groups ("sites"), two tests each: --dist loadgroup gives each group one worker.
SUITE = """
import json
import os
import socket
from pathlib import Path

import pytest

SERVERS = json.loads(Path(__file__).with_name("servers.json").read_text())


def answer(address):
    try:
        with socket.create_connection(tuple(address), timeout=5) as connection:
            return connection.recv(100).decode()
    except OSError as error:
        return type(error).__name__


@pytest.mark.parametrize("site", [pytest.param(site, marks=pytest.mark.xdist_group(site)) for site in ("east", "west")])
@pytest.mark.parametrize("probe", ["first", "second"])
def test_where(site, probe, record_property):
    record_property("worker", os.environ.get("PYTEST_XDIST_WORKER", "none"))
    record_property("netns", os.readlink("/proc/self/ns/net"))
    record_property("hostname", socket.gethostname())
    record_property("lab_address", answer(SERVERS["lab"]))
    record_property("loopback", answer(SERVERS["loopback"]))
    Path(__file__).with_name(f"written-by-{site}-{probe}").write_text("a worker's file")
"""


class _Greeter(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.sendall(GREETING.encode())


@pytest.fixture
def greeter() -> Iterator[Callable[[str], list]]:
    """Start TCP servers on this machine that greet whoever connects; stopped afterwards."""
    servers: list[socketserver.ThreadingTCPServer] = []

    def start(host: str) -> list:
        server = socketserver.ThreadingTCPServer((host, 0), _Greeter)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return [host, server.server_address[1]]

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def shared_dir() -> Iterator[Path]:
    """A fresh directory that this machine and the lab's nodes both see."""
    path = Path(tempfile.mkdtemp(prefix="acpcheck-remote-workers-", dir=SHARED_TMP))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def node_python(shared_dir: Path) -> Path:
    """The interpreter the workers run on the nodes, built before the lab is up."""
    return worker_python(shared_dir / "python")


@pytest.fixture(scope="module")
def workers_lab(lab_machine: Path, node_python: Path) -> Iterator[LabInfo]:
    info = up(SCENARIO, lab_machine)
    try:
        check_worker_hosts(info, node_python, WORKER_NODES)
        yield info
    finally:
        down(lab_machine, purge=True)


def _netns_of(node: NodeInfo) -> str:
    """``net:[inode]`` of a node's network namespace, as /proc/self/ns/net reads inside it."""
    return f"net:[{os.stat(Path('/run/netns') / node.netns).st_ino}]"


def _properties(junit: Path) -> dict[str, dict[str, str]]:
    """{test name: {property: value}} of a JUnit XML file."""
    cases = ET.parse(junit).getroot().iter("testcase")
    return {
        case.get("name", ""): {p.get("name", ""): p.get("value", "") for p in case.iter("property")} for case in cases
    }


# --- without a lab ---------------------------------------------------------------------


@pytest.mark.parametrize("private", NODE_PRIVATE_DIRS)
def test_a_worker_environment_in_a_node_private_directory_is_refused_naming_it(private: Path) -> None:
    with pytest.raises(
        LabError, match=rf"the worker directory is not visible on the lab's nodes: {private}/x is under"
    ):
        worker_python(private / "x")


def test_a_path_on_another_file_system_is_hidden_from_the_nodes() -> None:
    if Path("/dev/shm").stat().st_dev == Path("/").stat().st_dev:
        pytest.skip("/dev/shm is not a mount of its own here")
    assert hidden_from_nodes("/dev/shm/x") == (
        "/dev/shm/x is on the file system mounted at /dev/shm; a lab node sees only this machine's root file system"
    )
    assert hidden_from_nodes(SHARED_TMP / "x") is None


def test_an_interpreter_of_another_python_version_is_refused(shared_dir: Path) -> None:
    other = shared_dir / "python3.99"
    other.write_text("#!/bin/sh\necho 3.99.0\n")  # answers the version probe as another Python would
    other.chmod(0o755)
    with pytest.raises(LabError, match=rf"{other} is Python 3.99.0, this environment is Python 3\.\d+: its compiled"):
        worker_python(shared_dir / "other", interpreter=str(other))


def test_worker_specs_name_the_lab_ssh_config_and_refuse_an_unknown_node(tmp_path: Path) -> None:
    def node(name: str, network: str) -> NodeInfo:
        return NodeInfo(name, "worker", network, "198.18.0.11", name, f"acplab1-{name}", "root", [])

    info = LabInfo(tmp_path, "x", [node("a", "direct"), node("h", "hidden")], None, tmp_path / "key", "acplab", "")
    config = tmp_path / "ssh_config"
    assert worker_specs(info, "/v/bin/python3") == [f"ssh=a//python=/v/bin/python3//ssh_config={config}"]
    assert worker_specs(info, "/p", ["h"], chdir="/w") == [f"ssh=h//python=/p//ssh_config={config}//chdir=/w"]
    with pytest.raises(LabError, match="no lab node zz in .* \\(nodes: a, h\\)"):
        worker_specs(info, "/p", ["a", "zz"])


# --- on the lab -----------------------------------------------------------------------


def test_a_node_sees_this_machines_files_but_not_its_private_directories(
    workers_lab: LabInfo, shared_dir: Path
) -> None:
    visible = shared_dir / "visible"
    visible.write_text("shared\n")
    hidden = [
        Path(tempfile.mkstemp(prefix="acpcheck-remote-workers-", dir=private)[1]) for private in NODE_PRIVATE_DIRS
    ]
    try:
        script = "; ".join(f"cat {path} 2>/dev/null || echo missing" for path in [visible, *hidden])
        answer = subprocess.run(
            ["ssh", "-F", str(workers_lab.paths.ssh_config), "-o", "BatchMode=yes", "dc1", script],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
    finally:
        for path in hidden:
            path.unlink()
    assert answer.stdout.splitlines() == ["shared"] + ["missing"] * len(NODE_PRIVATE_DIRS)


def test_a_node_without_the_worker_python_is_named_with_its_answer(workers_lab: LabInfo, shared_dir: Path) -> None:
    missing = shared_dir / "no-such-env" / "bin" / "python3"
    with pytest.raises(
        LabError, match=rf"lab node dc2 cannot run a worker with {missing}: .*No such file or directory"
    ):
        check_worker_hosts(workers_lab, missing, ["dc2"])


def test_two_lab_nodes_run_a_suite_as_remote_xdist_workers(
    workers_lab: LabInfo, node_python: Path, shared_dir: Path, greeter: Callable[[str], list]
) -> None:
    root = shared_dir / "suite"
    root.mkdir()
    (root / "pytest.ini").write_text("[pytest]\n")
    (root / "test_where.py").write_text(SUITE)
    address = controller_address(workers_lab)
    servers = {"lab": greeter(address), "loopback": greeter("127.0.0.1")}
    (root / "servers.json").write_text(json.dumps(servers))
    junit = shared_dir / "junit.xml"
    # The worker's working directory is the suite's, the same path on the nodes; xdist
    # copies pytest into it, which on a node stays on the node.
    specs = worker_specs(workers_lab, node_python, WORKER_NODES, chdir=str(root))
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--disable-plugin-autoload"]
    command += ["-p", "xdist.plugin", "--dist", "loadgroup", f"--junitxml={junit}", "-rA"]
    for spec in specs:
        command += ["--tx", spec]
    started = time.monotonic()
    run = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=300, check=False)
    wall = time.monotonic() - started
    print(" ".join(command), f"\n{run.stdout[-3000:]}{run.stderr[-2000:]}\nwall {wall:.1f} s")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]

    cases = _properties(junit)
    assert sorted(cases) == sorted(
        f"test_where[{probe}-{site}]@{site}" for site in ("east", "west") for probe in ("first", "second")
    )
    nodes = {node.name: node for node in workers_lab.nodes}
    by_worker: dict[str, set[tuple[str, str]]] = {}
    for name, found in cases.items():
        # every test ran on a lab node, in that node's own network namespace ...
        assert found["hostname"] in WORKER_NODES, (name, found)
        assert found["netns"] == _netns_of(nodes[found["hostname"]]), (name, found)
        # ... reached this machine at its lab address, and found its own loopback there
        assert found["lab_address"] == GREETING, (name, found)
        assert found["loopback"] == "ConnectionRefusedError", (name, found)
        by_worker.setdefault(found["worker"], set()).add((found["hostname"], found["netns"]))
    # two workers, one node each, two different namespaces, neither the runner's
    assert sorted(by_worker) == ["gw0", "gw1"]
    places = [next(iter(where)) for where in by_worker.values() if len(where) == 1]
    assert len(places) == 2 and {host for host, _ in places} == set(WORKER_NODES)
    assert os.readlink("/proc/self/ns/net") not in {netns for _, netns in places}
    # one group, one worker (--dist loadgroup)
    for site in ("east", "west"):
        assert len({cases[f"test_where[{p}-{site}]@{site}"]["worker"] for p in ("first", "second")}) == 1
    # what the workers wrote stayed on their nodes: the results came back through execnet
    assert not list(root.glob("written-by-*"))


# --- a fleet run on remote workers ----------------------------------------------------

#: Three clusters on test API servers (stand-ins for kube-apiserver): name, role, Kubernetes version, container
#: runtime (west still runs Docker, which ACP 4.3 no longer supports: a FAIL, so the runs differ in verdicts too).
FLEET_CLUSTERS = (
    ("global", "global", "1.34.5", "containerd://1.7.27"),
    ("east", "workload", "1.34.5", "containerd://1.7.27"),
    ("west", "workload", "1.33.4", "docker://24.0.7"),
)
#: Each cluster's objects: one control-plane node (every NodeSystemInfo field: the official
#: client refuses a Node without one) and Kube-OVN's DaemonSet.
CLUSTER_SEED = """apiVersion: v1
kind: Node
metadata: {{name: {cluster}-cp1, labels: {{node-role.kubernetes.io/control-plane: ""}}}}
status:
  addresses: [{{type: InternalIP, address: 192.0.2.11}}]
  conditions: [{{type: Ready, status: "True", reason: KubeletReady}}]
  nodeInfo: {{kubeletVersion: v{version}, kubeProxyVersion: v{version}, containerRuntimeVersion: "{runtime}",
    osImage: Ubuntu 22.04.4 LTS, kernelVersion: 5.15.0-56-generic, operatingSystem: linux, architecture: amd64,
    machineID: "{zeros}", systemUUID: "{zeros}", bootID: "{zeros}"}}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {{name: kube-ovn-cni, namespace: kube-system}}
spec:
  selector: {{matchLabels: {{app: kube-ovn-cni}}}}
  template: {{spec: {{containers: [{{name: cni-server, image: "registry.example/acp/kube-ovn:v1.14.2"}}]}}}}
"""


@pytest.fixture
def fleet_for_workers(workers_lab: LabInfo, shared_dir: Path) -> Iterator[tuple[Path, dict[str, list[str]]]]:
    """A fleet of three clusters on test API servers that listen where the lab's nodes reach
    them (and this machine too); yields the fleet file, and per cluster the client address of
    every request its server answered (appended as they come)."""
    address = controller_address(workers_lab)
    clients: dict[str, list[str]] = {name: [] for name, *_ in FLEET_CLUSTERS}
    servers, entries = [], []
    try:
        for name, role, version, runtime in FLEET_CLUSTERS:
            server_dir = init_server_dir(shared_dir / "fleet" / name, host=address, port=0)
            config = yaml.safe_load(server_dir.config.read_text())
            server_dir.config.write_text(yaml.safe_dump({**config, "kubernetesVersion": version}))
            seed = server_dir.root / "seed.yaml"
            seed.write_text(CLUSTER_SEED.format(cluster=name, version=version, runtime=runtime, zeros="0" * 32))

            def record(line: str, seen: list[str] = clients[name]) -> None:
                first = line.split(": ", 1)[-1].split(" ", 1)[0]  # "<server name>: <client address> <request> …"
                if first.count(".") == 3:  # the lines about requests, not the ones about users
                    seen.append(first)

            servers.append(serve_dir(server_dir.root, listen=f"{address}:0", seeds=[seed], log=record))
            kubeconfig = server_dir.kubeconfig("acpcheck-reader").relative_to(shared_dir / "fleet")
            entries.append(f"    - {{name: {name}, role: {role}, type: on-premise, kubeconfig: {kubeconfig}}}")
        fleet = shared_dir / "fleet" / "fleet.yaml"
        fleet.write_text(
            "apiVersion: acpcheck/v1\nkind: Fleet\nmetadata: {name: prod}\nspec:\n"
            "  acp: {version: '4.3', upgradeFrom: '4.2'}\n  discover: false\n  clusters:\n" + "\n".join(entries) + "\n"
        )
        yield fleet, clients
    finally:
        for server in servers:
            server.stop()


def _acpcheck_run(fleet: Path, out: Path, *workers: str) -> tuple[int, dict, float]:
    """``acpcheck run --fleet`` with the given worker options: exit code, results.json, wall seconds."""
    command = [sys.executable, "-m", "acpcheck", "run", "--fleet", str(fleet), "--out", str(out), *workers]
    started = time.monotonic()
    # From the checkout's root, where "acpcheck" is also a directory: an argument that names an
    # existing path is rewritten by xdist for remote workers (and refused outside an rsync root).
    checkout = Path(__file__).resolve().parents[2]
    run = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False, cwd=checkout)
    wall = time.monotonic() - started
    print(" ".join(command), f"\n{run.stdout[-1500:]}{run.stderr[-1500:]}\nwall {wall:.1f} s")
    assert (out / "results.json").is_file(), run.stdout[-3000:] + run.stderr[-3000:]
    return run.returncode, json.loads((out / "results.json").read_text()), wall


def _comparable(results: dict) -> dict:
    """results.json without what differs between two runs of the same fleet: the run's id and
    times, when evidence was read, each check's duration, and the order results arrived in."""
    run = {key: value for key, value in results["run"].items() if key not in ("id", "started", "finished")}
    clusters = [
        {**cluster, "liveEvidence": {k: v for k, v in (cluster["liveEvidence"] or {}).items() if k != "readAt"}}
        for cluster in run["fleet"]["clusters"]
    ]
    run["fleet"] = {**run["fleet"], "clusters": clusters}
    found = [{key: value for key, value in result.items() if key != "duration"} for result in results["results"]]
    found.sort(key=lambda result: (result["cluster"], result["check"], result["target"]))
    return {**results, "run": run, "results": found}


#: `acpcheck run` hands a remote worker the paths of its own install (--confcutdir, --config-file,
#: --rootdir: docs/fleet.md, acpcheck at the same path on every worker host). A checkout in a
#: directory every lab node has its own copy of cannot be at the same path on the nodes.
CHECKOUT_HIDDEN = hidden_from_nodes(Path(__file__).resolve().parents[2])


@pytest.mark.skipif(
    CHECKOUT_HIDDEN is not None,
    reason=f"acpcheck must be at the same path on the worker hosts, and lab nodes cannot see it: {CHECKOUT_HIDDEN}",
)
def test_a_fleet_on_two_remote_lab_workers_gives_the_results_of_local_workers(
    workers_lab: LabInfo, node_python: Path, shared_dir: Path, fleet_for_workers: tuple[Path, dict[str, list[str]]]
) -> None:
    fleet, clients = fleet_for_workers
    local_code, local, local_wall = _acpcheck_run(fleet, shared_dir / "local", "-n", "2")
    contacted = {name for name, seen in clients.items() if seen}
    assert contacted and {address for seen in clients.values() for address in seen} == {controller_address(workers_lab)}
    for seen in clients.values():
        seen.clear()

    specs = worker_specs(workers_lab, node_python, WORKER_NODES)
    remote_code, remote, remote_wall = _acpcheck_run(
        fleet, shared_dir / "remote", *[option for spec in specs for option in ("--tx", spec)]
    )
    assert remote_code == local_code
    assert _comparable(remote) == _comparable(local)
    # every cluster was read from one lab node (the worker its group ran on), none from here
    node_addresses = {workers_lab.node(name).ipv4 for name in WORKER_NODES}
    assert {name for name, seen in clients.items() if seen} == contacted
    for name in contacted:
        assert len(set(clients[name])) == 1 and set(clients[name]) <= node_addresses, (name, clients[name])
    # and its evidence came back to the controller's report directory
    facts = {
        path.relative_to(shared_dir / "local").as_posix() for path in (shared_dir / "local" / "facts").rglob("*.json")
    }
    assert facts == {
        path.relative_to(shared_dir / "remote").as_posix() for path in (shared_dir / "remote" / "facts").rglob("*.json")
    }
    assert {path.split("/")[1] for path in facts} == contacted
    print(f"-n 2: {local_wall:.1f} s; two remote lab workers: {remote_wall:.1f} s; clusters read: {sorted(contacted)}")
