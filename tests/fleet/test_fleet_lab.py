"""acpcheck_lab.fleet: fleets of test API servers (the stand-in for kube-apiserver), one per cluster,
read with the official ``kubernetes`` client over TLS through the kubeconfigs the fleet writes."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import stat
import subprocess
import sys
import textwrap
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config

from acpcheck.model.fleet import load_fleet
from acpcheck_lab.fleet import (
    EAST_LIVE,
    K8S_OF_4_2,
    ClusterSpec,
    FleetError,
    FleetSpec,
    NodeSpec,
    TestFleet,
    scale_fleet,
    three_cluster_fleet,
)

StartFleet = Callable[..., TestFleet]  # tests/fleet/conftest.py's start_fleet


def api(fleet: TestFleet, name: str) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(fleet.kubeconfig(name)))


def serving_processes(directory: Path) -> list[int]:
    """Live fleet server processes (``python -m acpcheck_lab.fleet serve``) serving from ``directory``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
            state = next(line for line in (entry / "status").read_text().splitlines() if line.startswith("State:"))
        except (OSError, StopIteration):
            continue
        if "acpcheck_lab.fleet\0serve\0" in cmdline and str(directory) in cmdline and "zombie" not in state:
            found.append(int(entry.name))
    return found


def refuses(url: str) -> bool:
    parsed = urllib.parse.urlsplit(url)
    try:
        with socket.create_connection((parsed.hostname, parsed.port), timeout=3):
            return False
    except ConnectionRefusedError:
        return True


@pytest.mark.parametrize(
    ("name", "version", "nodes"),
    [
        ("global", K8S_OF_4_2, ["global-m-1", "global-m-2", "global-m-3"]),
        ("east", EAST_LIVE, ["east-w-1", "east-w-2"]),
        ("west", K8S_OF_4_2, ["west-w-1", "west-w-2"]),
    ],
)
def test_each_cluster_serves_its_own_version_and_nodes_over_tls(
    prod_fleet: TestFleet, name: str, version: str, nodes: list[str]
) -> None:
    with api(prod_fleet, name) as session:
        assert session.configuration.verify_ssl and session.configuration.host.startswith("https://")
        served = client.VersionApi(session).get_code()
        assert served.git_version.startswith(f"v{version}+"), served.git_version
        listed: list[Any] = client.CoreV1Api(session).list_node().items
    assert sorted(node.metadata.name for node in listed) == nodes
    assert {node.status.node_info.kubelet_version for node in listed} == {f"v{version}"}
    assert {cond.status for node in listed for cond in node.status.conditions if cond.type == "Ready"} == {"True"}


def test_every_cluster_has_its_own_ca(prod_fleet: TestFleet) -> None:
    """A client that trusts east's CA refuses west's server: each cluster is its own TLS world."""
    east = yaml.safe_load(prod_fleet.kubeconfig("east").read_text())
    west = yaml.safe_load(prod_fleet.kubeconfig("west").read_text())
    assert (
        east["clusters"][0]["cluster"]["certificate-authority-data"]
        != west["clusters"][0]["cluster"]["certificate-authority-data"]
    )
    context = ssl.create_default_context(cafile=str(prod_fleet.clusters["east"].server_dir.ca))
    parsed = urllib.parse.urlsplit(prod_fleet.url("west"))
    with socket.create_connection((parsed.hostname, parsed.port), timeout=5) as sock:
        with pytest.raises(ssl.SSLCertVerificationError):
            context.wrap_socket(sock, server_hostname=parsed.hostname)


def test_the_scenario_objects_are_served(prod_fleet: TestFleet) -> None:
    """west still stores a FlowSchema in the removed flowcontrol v1beta3 API; global's registry lists the
    workload clusters with their live versions; the ACP kinds are there on every cluster."""
    with api(prod_fleet, "west") as session:
        custom = client.CustomObjectsApi(session)
        schemas: Any = custom.list_cluster_custom_object("flowcontrol.apiserver.k8s.io", "v1beta3", "flowschemas")
        assert [item["metadata"]["name"] for item in schemas["items"]] == ["legacy-batch-jobs"]
    with api(prod_fleet, "global") as session:
        custom = client.CustomObjectsApi(session)
        registry: Any = custom.list_cluster_custom_object("platform.tkestack.io", "v1", "clusters")
        assert {c["metadata"]["name"]: c["status"]["version"] for c in registry["items"]} == {
            "global": K8S_OF_4_2,
            "east": EAST_LIVE,
            "west": K8S_OF_4_2,
        }
        shadow: Any = custom.get_namespaced_custom_object(
            "config.cpaas.io", "v1", "cpaas-system", "clusterversionshadows", "global"
        )
        assert {check["state"] for check in shadow["status"]["preflight"]["checks"]} == {"Passed"}
        backups: Any = custom.list_cluster_custom_object(
            "enhancement.cluster.alauda.io", "v1", "etcdbackupconfigurations"
        )
        assert [item["metadata"]["name"] for item in backups["items"]] == ["etcd-backup-default"]


def test_the_fleet_file_loads_and_names_every_cluster(prod_fleet: TestFleet) -> None:
    fleet = load_fleet(str(prod_fleet.fleet_file))
    assert fleet.name == "prod" and fleet.target == "4.3"
    assert [(m.name, m.role, m.plan.declared) for m in fleet.members] == [
        ("global", "global", False),
        ("east", "workload", True),
        ("west", "workload", False),
    ]
    east = fleet.member("east")
    assert east is not None
    # east's plan claims what it does not run (ACP-UPG-010's case); its kubeconfig is the fleet's.
    assert east.plan.spec.cluster.kubernetes_version == K8S_OF_4_2 != EAST_LIVE
    assert Path(str(east.plan.spec.kubeconfig)).resolve() == prod_fleet.kubeconfig("east").resolve()


def test_credentials_only_in_private_files(prod_fleet: TestFleet) -> None:
    """Every kubeconfig and every server-side key or user file is 0600; the fleet file and plans name
    kubeconfigs by path and hold no credential."""
    directory = prod_fleet.directory
    private = [
        *directory.glob("kube/*.yaml"),
        *directory.glob("servers/*/*.key"),
        *directory.glob("servers/*/config.yaml"),
    ]
    private += list(directory.glob("servers/*/*.kubeconfig"))
    assert len(list(directory.glob("kube/*.yaml"))) == 3
    for path in private:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    tokens = [
        user["token"]
        for path in directory.glob("servers/*/config.yaml")
        for user in yaml.safe_load(path.read_text())["users"]
    ]
    assert len(tokens) == 3
    public = [prod_fleet.fleet_file, *directory.glob("plans/*.yaml"), *directory.glob("servers/*.json")]
    for path in public:
        text = path.read_text()
        assert not any(token in text for token in tokens), path
        assert "BEGIN" not in text and "client-key-data" not in text, path


def test_client_certificate_kubeconfigs(start_fleet: StartFleet) -> None:
    fleet = start_fleet(
        FleetSpec("certs", (ClusterSpec("one", role="global", nodes=(NodeSpec("n1"),)),)), auth="client-certificate"
    )
    document = yaml.safe_load(fleet.kubeconfig("one").read_text())
    user = document["users"][0]["user"]
    assert "client-certificate-data" in user and "token" not in user
    with api(fleet, "one") as session:
        listed: list[Any] = client.CoreV1Api(session).list_node().items
        assert [node.metadata.name for node in listed] == ["n1"]


def test_a_stopped_cluster_refuses_connections_and_the_others_serve(start_fleet: StartFleet) -> None:
    fleet = start_fleet(three_cluster_fleet())
    fleet.stop_cluster("west")
    assert refuses(fleet.url("west"))
    with api(fleet, "global") as session:
        assert client.VersionApi(session).get_code().git_version.startswith(f"v{K8S_OF_4_2}+")


def test_the_api_down_variant_refuses_from_the_start(prod_fleet_west_down: TestFleet) -> None:
    assert refuses(prod_fleet_west_down.url("west"))
    assert not refuses(prod_fleet_west_down.url("east"))
    assert "west" in prod_fleet_west_down.fleet_file.read_text()  # named in the fleet: ERROR for it, not omitted


def test_another_host_address(start_fleet: StartFleet) -> None:
    """Bound on the address given (the remote-workers helper's namespaces reach another one), its
    certificate valid for it."""
    fleet = start_fleet(FleetSpec("elsewhere", (ClusterSpec("one", role="global"),)), host="127.0.0.2")
    assert urllib.parse.urlsplit(fleet.url("one")).hostname == "127.0.0.2"
    with api(fleet, "one") as session:
        assert client.VersionApi(session).get_code().git_version.startswith("v")


def test_stop_leaves_no_process(tmp_path: Path) -> None:
    fleet = TestFleet(scale_fleet(4, nodes_per_cluster=2, objects_per_cluster=50), tmp_path, processes=2)
    with fleet:
        assert len(serving_processes(tmp_path)) == 2 == len(fleet.pids)
        urls = [fleet.url(name) for name in fleet.clusters]
    assert serving_processes(tmp_path) == []
    assert all(refuses(url) for url in urls)


def test_a_fleet_that_fails_to_start_says_why_and_leaves_no_process(tmp_path: Path) -> None:
    bad = {"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "g"}}
    spec = FleetSpec("bad", (ClusterSpec("good", role="global"), ClusterSpec("broken", objects=(bad,))))
    with pytest.raises(FleetError, match=r"error seeding broken: .*serves no example.com/v1 Gadget"):
        TestFleet(spec, tmp_path, processes=2).start()
    assert serving_processes(tmp_path) == []


def test_servers_end_when_their_owner_is_killed(tmp_path: Path) -> None:
    """A test process killed mid-run (SIGKILL: no finally, no atexit) leaves no server behind: each
    server process sees its standard input close and exits."""
    owner = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys, time
                from acpcheck_lab.fleet import TestFleet, scale_fleet
                TestFleet(scale_fleet(2, nodes_per_cluster=1, objects_per_cluster=10), {str(tmp_path)!r}).start()
                print("up", flush=True)
                time.sleep(60)
                """
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert owner.stdout is not None and owner.stdout.readline().strip() == "up"
        assert serving_processes(tmp_path)
        os.kill(owner.pid, signal.SIGKILL)
        owner.wait(10)
        deadline = time.monotonic() + 10
        while serving_processes(tmp_path) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert serving_processes(tmp_path) == []
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()
