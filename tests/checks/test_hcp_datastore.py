"""ACP-HCP-010..015 (checks/hcp_datastore.py): the management cluster's DataStores and REAL etcd.

The management cluster is the project's test API server (a stand-in for kube-apiserver) serving
Kamaji's published DataStore CRD; the etcd behind the DataStores is Debian's etcd, a cluster of
three members on 127.0.0.1 with client-certificate TLS (its own CA), started once for this
module. The DataStore objects and their Secrets come from acpcheck_lab.hcpdata (what the ``hcp``
lab scenario seeds too). The ``datastore`` source reads them through the API and connects to
each endpoint with the DataStore's own CA, client certificate and key.

Planted defects: one endpoint and no TLS; a client certificate from another CA (etcd refuses
it); driver PostgreSQL; a client certificate that expires in 10 days; one that has expired; a
CA that is not etcd's; a missing Secret; a stopped endpoint; a cluster-internal endpoint name.
Canaries ride in the client certificate's and key's Secret values (PEM allows text before the
BEGIN line) and must appear in no artifact and no file.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import EXAMPLES, ServeCluster, make_plan, merge

from acpcheck import testing
from acpcheck.checks import hcp_datastore as ds
from acpcheck.model.plan import ClusterPlan
from acpcheck.model.result import CheckResult
from acpcheck.sources.base import GatherContext
from acpcheck.sources.datastore import DataStoreEvidence, DataStoreSource, cluster_internal, split_endpoint
from acpcheck.transport.etcd import ClientCredentials, EtcdClient
from acpcheck_lab.apiserver import ServerDir, issue, kubeconfig
from acpcheck_lab.hcpdata import datastore_objects, namespace

pytestmark = pytest.mark.xdist_group("hcp-datastore-etcd")

# The real sshd on 127.0.0.1 of the transport tests (tests/transport/realsshd.py) plays a management-cluster node.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "transport"))
from realsshd import Lab, lab  # noqa: E402, F401  (the session fixture)

ETCD = shutil.which("etcd") or "/usr/bin/etcd"
HCP: dict[str, Any] = yaml.safe_load((EXAMPLES / "hosted-control-plane.yaml").read_text())
CHECKS: list[Callable[..., Any]] = [
    ds.check_planned_datastore_exists,
    ds.check_datastore_driver_etcd,
    ds.check_datastore_endpoints,
    ds.check_datastore_tls_configured,
    ds.check_datastore_endpoints_answer,
    ds.check_datastore_certificates_not_expiring,
]
CANARY_CERT = "acpcheck-canary-datastore-client-cert-5d1f0c"
CANARY_KEY = "acpcheck-canary-datastore-client-key-9e27ab"
CANARY_PASSWORD = "acpcheck-canary-datastore-sql-password-77c3"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _expired_client(ca: Any, ca_key: Any) -> tuple[bytes, bytes]:
    """A client certificate signed by the etcd CA that expired yesterday (issue() makes only valid ones)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kamaji-expired")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=30))
        .not_valid_after(now - dt.timedelta(days=1))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return pem, key_pem


@dataclass
class Etcd:
    """A running three-member etcd cluster on loopback and the certificates around it (PEM bytes)."""

    endpoints: list[str]
    ca: bytes
    ca_key: bytes
    client: tuple[bytes, bytes]  # signed by the etcd CA, 365 days
    rogue: tuple[bytes, bytes]  # signed by another CA: etcd refuses it
    expiring: tuple[bytes, bytes]  # signed by the etcd CA, 10 days
    expired: tuple[bytes, bytes]  # signed by the etcd CA, expired yesterday
    other_ca: bytes  # a CA that did not sign etcd's server certificates


@pytest.fixture(scope="module")
def etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Etcd]:
    if not os.access(ETCD, os.X_OK):
        pytest.skip(f"{ETCD} is not installed (Debian's etcd-server)")
    root = tmp_path_factory.mktemp("etcd")
    ca_pem, ca_key_pem, ca, ca_key = issue("datastore-etcd-ca", is_ca=True, days=3650)
    server_pem, server_key, _, _ = issue("etcd", ca=(ca, ca_key), hosts=["localhost", "127.0.0.1"])
    client = issue("kamaji-root-client", ca=(ca, ca_key), client=True)
    expiring = issue("kamaji-expiring-client", ca=(ca, ca_key), client=True, days=10)
    other_ca_pem, _, other_ca, other_key = issue("not-the-etcd-ca", is_ca=True)
    rogue = issue("kamaji-root-client", ca=(other_ca, other_key), client=True)
    # etcd's OWN files (its server side): the DataStore's client material never goes to disk
    for name, data in (("ca.crt", ca_pem), ("server.crt", server_pem), ("server.key", server_key)):
        (root / name).write_bytes(data)
    clients, peers = [_free_port() for _ in range(3)], [_free_port() for _ in range(3)]
    initial = ",".join(f"m{i}=http://127.0.0.1:{peers[i]}" for i in range(3))
    processes = []
    for i in range(3):
        url = f"https://127.0.0.1:{clients[i]}"
        command = [
            ETCD,
            f"--name=m{i}",
            f"--data-dir={root / f'm{i}'}",
            f"--listen-client-urls={url}",
            f"--advertise-client-urls={url}",
            f"--listen-peer-urls=http://127.0.0.1:{peers[i]}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{peers[i]}",
            f"--initial-cluster={initial}",
            "--initial-cluster-state=new",
            f"--cert-file={root / 'server.crt'}",
            f"--key-file={root / 'server.key'}",
            f"--trusted-ca-file={root / 'ca.crt'}",
            "--client-cert-auth",
            "--log-level=error",
        ]
        log = (root / f"m{i}.log").open("wb")
        processes.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
    credentials = ClientCredentials(ca_pem.decode(), client[0].decode(), client[1].decode())
    deadline = time.monotonic() + 30
    try:
        for port in clients:
            while True:
                try:
                    with EtcdClient(("127.0.0.1", port), "127.0.0.1", credentials, timeout=2, deadline=4) as probe:
                        probe.status()
                    break
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
        yield Etcd(
            endpoints=[f"127.0.0.1:{clients[0]}", f"localhost:{clients[1]}", f"127.0.0.1:{clients[2]}"],
            ca=ca_pem,
            ca_key=ca_key_pem,
            client=client[:2],
            rogue=rogue[:2],
            expiring=expiring[:2],
            expired=_expired_client(ca, ca_key),
            other_ca=other_ca_pem,
        )
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()


def with_canaries(pem: tuple[bytes, bytes]) -> tuple[bytes, bytes]:
    """The certificate and key with a canary line before their BEGIN lines (PEM allows text there)."""
    return f"{CANARY_CERT}\n".encode() + pem[0], f"{CANARY_KEY}\n".encode() + pem[1]


def store(name: str, etcd: Etcd, endpoints: list[str] | None = None, **options: Any) -> list[dict[str, Any]]:
    """A DataStore ``name`` on the module's etcd (its CA, the good client) unless ``options`` say otherwise."""
    cert, key = with_canaries(options.pop("client", etcd.client))
    return datastore_objects(
        name,
        etcd.endpoints if endpoints is None else endpoints,
        ca_pem=options.pop("ca", etcd.ca),
        client_cert_pem=cert,
        client_key_pem=key,
        ca_key_pem=etcd.ca_key,
        **options,
    )


def healthy(etcd: Etcd) -> list[dict[str, Any]]:
    return [namespace(), *store("default-datastore", etcd)]


def defective(etcd: Etcd) -> list[dict[str, Any]]:
    """The healthy DataStore and one DataStore per planted defect."""
    return [
        *healthy(etcd),
        # Kamaji's current CRD refuses this etcd DataStore through a CEL rule (tlsConfig required) that the
        # test API server does not evaluate; an older Kamaji's did not (crds/SOURCES.md).
        *store("single-no-tls", etcd, [etcd.endpoints[0]], tls=False),
        *store("rogue-client", etcd, client=etcd.rogue),
        *store(
            "sql", etcd, ["postgres.example:5432"], driver="PostgreSQL", tls=False, basic_auth=("kine", CANARY_PASSWORD)
        ),
        *store("expiring-client", etcd, client=etcd.expiring),
    ]


Live = Callable[..., tuple[ClusterPlan, DataStoreEvidence]]


@pytest.fixture
def live(serve_cluster: ServeCluster) -> Live:
    """``live(objects, planned=, without=, plan=)``: a management cluster holding ``objects``, gathered
    by the datastore source through an HCP plan whose kubeconfig names it."""

    def start(
        objects: list[dict[str, Any]],
        planned: str | None = "default-datastore",
        without: tuple[str, ...] = (),
        plan: dict[str, Any] | None = None,
    ) -> tuple[ClusterPlan, DataStoreEvidence]:
        path = serve_cluster(objects, without=without)
        edits = merge({"spec": {"kubeconfig": str(path), "managementCluster": {"dataStore": planned}}}, plan or {})
        the_plan = make_plan(edits, base=HCP)
        context = GatherContext(the_plan)
        try:
            evidence = DataStoreSource().gather(context)
        finally:
            context.close()
        assert evidence.mode == "live", evidence.reason
        return the_plan, evidence

    return start


def run(check: Callable[..., Any], plan: ClusterPlan, evidence: DataStoreEvidence) -> CheckResult:
    return testing.run_check(check, plan, datastores=evidence)


def results(plan: ClusterPlan, evidence: DataStoreEvidence) -> dict[str, tuple[str, str]]:
    return {
        check.__acpcheck__.id: (str(r.status), r.message)  # type: ignore[attr-defined]
        for check in CHECKS
        for r in [run(check, plan, evidence)]
    }


# ---------------------------------------------------------------------------
# A healthy DataStore: three endpoints of a three-member etcd, TLS with its own CA


def test_a_healthy_datastore_passes_every_rule_and_its_evidence_holds_no_secret(
    live: Live, etcd: Etcd, tmp_path: Path
) -> None:
    plan, evidence = live(healthy(etcd))
    assert results(plan, evidence) == {f"ACP-HCP-01{n}": ("pass", "") for n in range(6)}
    (found,) = evidence.datastores
    assert [probe.outcome for probe in found.probes] == ["ok", "ok", "ok"]
    assert {probe.route for probe in found.probes} == {"direct from the runner"}
    assert all(probe.etcd_version and probe.server_certificate for probe in found.probes)
    assert found.client_certificate is not None and found.client_certificate.subject == "CN=kamaji-root-client"
    assert found.tls["client key"] == "Secret kamaji-system/default-datastore-root-client-certs key tls.key"
    DataStoreSource().save(evidence, tmp_path / "facts")
    saved = (tmp_path / "facts" / "datastore.json").read_text()
    for secret in (CANARY_CERT, CANARY_KEY, *_key_lines(etcd.client[1]), *_key_lines(etcd.ca_key)):
        assert secret not in saved
    replayed = DataStoreSource().load(tmp_path / "facts", plan)
    assert results(plan, replayed) == results(plan, evidence)


def _key_lines(pem: bytes) -> list[str]:
    """The base64 lines of a PEM key (what would show if any of it leaked)."""
    return [line for line in pem.decode().splitlines() if line and not line.startswith("-----")]


# ---------------------------------------------------------------------------
# Every planted defect, found on its own DataStore


def test_each_planted_defect_is_found_on_its_own_datastore(live: Live, etcd: Etcd) -> None:
    plan, evidence = live(defective(etcd))
    found = results(plan, evidence)
    assert found["ACP-HCP-010"] == ("pass", "")
    status, message = found["ACP-HCP-011"]
    assert status == "fail" and message == (
        f"DataStore sql uses driver PostgreSQL: hosted control planes support only etcd (source: {ds.HCP_CONCEPTS})"
    )
    status, message = found["ACP-HCP-012"]
    assert status == "warn" and message.startswith(
        f"DataStore single-no-tls lists one endpoint ({etcd.endpoints[0]}): no high availability"
    )
    assert "sql" not in message  # not etcd: ACP-HCP-011's
    status, message = found["ACP-HCP-013"]
    assert status == "fail" and message.startswith(
        "DataStore single-no-tls has no spec.tlsConfig: etcd is reached without TLS"
    )
    status, message = found["ACP-HCP-014"]
    assert status == "fail"
    lines = message.splitlines()
    assert len(lines) == 3 and all(line.startswith("DataStore rogue-client: endpoint ") for line in lines), message
    assert all("refused the client certificate" in line for line in lines), message
    status, message = found["ACP-HCP-015"]
    prefix = "DataStore expiring-client: the client certificate (CN=kamaji-expiring-client) expires in "
    assert status == "warn" and message.startswith(prefix), message
    assert 9.9 <= float(message.removeprefix(prefix).split()[0]) <= 10.0  # issued for 10 days a moment ago
    assert "default-datastore" not in message


def test_a_planned_datastore_that_does_not_exist_fails_and_one_that_cannot_exist_too(live: Live, etcd: Etcd) -> None:
    plan, evidence = live(healthy(etcd), planned="tenant-a-datastore")
    status, message = run(ds.check_planned_datastore_exists, plan, evidence).status, ""
    result = run(ds.check_planned_datastore_exists, plan, evidence)
    status, message = str(result.status), result.message
    assert status == "fail" and message.startswith(
        "DataStore tenant-a-datastore (spec.managementCluster.dataStore) does not exist in the management cluster ("
    )
    assert message.endswith(": it has default-datastore")
    plan, evidence = live([], without=("datastores.kamaji.clastix.io",))
    assert evidence.served is False
    found = results(plan, evidence)
    assert found["ACP-HCP-010"][0] == "fail" and "serves no datastores.kamaji.clastix.io" in found["ACP-HCP-010"][1]
    assert {found[f"ACP-HCP-01{n}"][0] for n in range(1, 6)} == {"skip"}
    plan, evidence = live(healthy(etcd), planned=None)
    assert str(run(ds.check_planned_datastore_exists, plan, evidence).status) == "skip"


def test_what_a_real_etcd_says_to_wrong_certificates_and_a_stopped_member(live: Live, etcd: Etcd) -> None:
    stopped = f"127.0.0.1:{_free_port()}"
    objects = [
        namespace(),
        *store("expired-client", etcd, [etcd.endpoints[0]], client=etcd.expired),
        *store("other-ca", etcd, [etcd.endpoints[1]], ca=etcd.other_ca),
        *store("member-down", etcd, [etcd.endpoints[2], stopped]),
    ]
    plan, evidence = live(objects, planned="member-down")
    result = run(ds.check_datastore_endpoints_answer, plan, evidence)
    lines = result.message.splitlines()
    assert str(result.status) == "fail" and len(lines) == 3, result.message
    assert lines[0].startswith(f"DataStore expired-client: endpoint {etcd.endpoints[0]}: etcd refused the client ")
    assert lines[1].startswith(f"DataStore member-down (planned for this cluster): endpoint {stopped}: ") and lines[
        1
    ].endswith("refused the connection (is its etcd member running?)"), lines[1]
    assert lines[2].startswith(
        f"DataStore other-ca: endpoint {etcd.endpoints[1]}: the TLS handshake failed: the CA does not verify etcd's "
        "certificate for localhost ("
    ), lines[2]
    result = run(ds.check_datastore_certificates_not_expiring, plan, evidence)
    assert str(result.status) == "fail" and result.message.startswith(
        "DataStore expired-client: the client certificate (CN=kamaji-expired) expired on "
    ), result.message


def test_tls_material_that_cannot_be_read_fails_and_an_internal_endpoint_is_left_to_a_person(
    live: Live, etcd: Etcd
) -> None:
    missing = store("no-secret", etcd)
    missing = [obj for obj in missing if obj["metadata"]["name"] != "no-secret-root-client-certs"]
    plan, evidence = live([namespace(), *missing])
    result = run(ds.check_datastore_endpoints_answer, plan, evidence)
    assert str(result.status) == "fail" and result.message == (
        "DataStore no-secret: the client certificate's Secret kamaji-system/no-secret-root-client-certs does not exist"
    )
    internal = store(
        "in-cluster",
        etcd,
        [
            "etcd-0.etcd.kamaji-system.svc.cluster.local:2379",
            "10.4.0.20:2379",
            "etcd..invalid:2379",
        ],  # no DNS query: an empty label
    )
    plan, evidence = live([namespace(), *internal], planned="in-cluster")
    result = run(ds.check_datastore_endpoints_answer, plan, evidence)
    assert str(result.status) == "manual", result.message
    assert "etcd-0.etcd.kamaji-system.svc.cluster.local:2379 not probed: " in result.message
    assert "10.4.0.20 is inside the management cluster's Service CIDR 10.4.0.0/16" in result.message
    assert (
        "etcd..invalid:2379 not probed: etcd..invalid does not resolve from the runner (not a valid host name)"
        in result.message
    )
    assert str(run(ds.check_datastore_certificates_not_expiring, plan, evidence).status) == "pass"


def test_secrets_acpcheck_may_not_read_are_left_to_a_person_not_failed(
    serve_cluster: ServeCluster, server_dir: ServerDir, etcd: Etcd, tmp_path: Path
) -> None:
    reader = serve_cluster(healthy(etcd))
    url = yaml.safe_load(reader.read_text())["clusters"][0]["cluster"]["server"]
    token = next(user.token for user in server_dir.users() if user.name == "datastore-only-reader")
    path = tmp_path / "datastore-only.kubeconfig"
    path.write_text(kubeconfig(url, server_dir.ca.read_bytes(), "datastore-only-reader", token=token))
    plan = make_plan({"spec": {"kubeconfig": str(path)}}, base=HCP)
    evidence = DataStoreSource().gather(GatherContext(plan))
    result = run(ds.check_datastore_endpoints_answer, plan, evidence)
    assert str(result.status) == "manual", result.message
    assert result.message.startswith(
        "DataStore default-datastore (planned for this cluster): not probed: acpcheck could not read the CA "
        "certificate's Secret kamaji-system/default-datastore-etcd-certs: "
    )
    assert "forbidden" in result.message.lower()


def test_a_cluster_internal_endpoint_is_reached_through_a_management_cluster_node_over_ssh(
    live: Live,
    etcd: Etcd,
    lab: Lab,  # noqa: F811 (the realsshd fixture)
    tmp_path: Path,
) -> None:
    """The plan's management-cluster Service CIDR is 127.0.0.0/8 here, so the etcd members' loopback addresses
    are cluster-internal: the runner does not connect to them itself but through the "node" (the loopback
    sshd) of spec.managementCluster.sshNodes, over an SSH direct-tcpip forward, with the same certificates."""
    ssh = {
        "port": lab.sshd.port,
        "user": "root",
        "auth": {"privateKeyFile": str(lab.keys["ed25519"])},
        "hostKeyPolicy": "accept-new",
        "knownHostsFile": str(tmp_path / "known_hosts"),
    }
    through = {"spec": {"ssh": ssh, "managementCluster": {"serviceCIDR": "127.0.0.0/8", "sshNodes": ["127.0.0.1"]}}}
    plan, evidence = live(
        [namespace(), *store("default-datastore", etcd, [etcd.endpoints[0], etcd.endpoints[2]])], plan=through
    )
    assert [(probe.outcome, probe.route) for probe in evidence.datastores[0].probes] == [
        (
            "ok",
            "through management-cluster node 127.0.0.1 over SSH (127.0.0.1 is inside the management cluster's "
            "Service CIDR 127.0.0.0/8)",
        )
    ] * 2
    assert str(run(ds.check_datastore_endpoints_answer, plan, evidence).status) == "pass"
    plan, evidence = live(
        [namespace(), *store("rogue-client", etcd, [etcd.endpoints[0]], client=etcd.rogue)],
        planned="rogue-client",
        plan=through,
    )
    result = run(ds.check_datastore_endpoints_answer, plan, evidence)
    assert str(result.status) == "fail" and "refused the client certificate" in result.message, result.message
    stopped = f"127.0.0.1:{_free_port()}"
    plan, evidence = live([namespace(), *store("default-datastore", etcd, [stopped])], plan=through)
    result = run(ds.check_datastore_endpoints_answer, plan, evidence)
    assert str(result.status) == "fail" and result.message.startswith(
        f"DataStore default-datastore (planned for this cluster): endpoint {stopped}: management-cluster node "
        f"127.0.0.1 could not connect to {stopped} ("
    ), result.message


def test_endpoint_forms_and_where_they_are_reached_from() -> None:
    assert split_endpoint("etcd-0.etcd:2379") == ("etcd-0.etcd", 2379)
    assert split_endpoint("[fd00::1]:2379") == ("fd00::1", 2379)
    assert split_endpoint("https://etcd:2379") is None and split_endpoint("etcd") is None
    plan = make_plan({}, base=HCP)
    assert cluster_internal("etcd", plan) and cluster_internal("etcd.kamaji-system.svc", plan)
    assert cluster_internal("10.3.1.1", plan) and not cluster_internal("192.0.2.10", plan)
    assert not cluster_internal("etcd.example.com", plan) and not cluster_internal("localhost", plan)
    # a loopback endpoint is a management node's own etcd: through a listed node, else the runner is one
    assert not cluster_internal("127.0.0.1", plan)
    with_nodes = make_plan({"spec": {"managementCluster": {"sshNodes": ["192.0.2.30"]}}}, base=HCP)
    assert cluster_internal("127.0.0.1", with_nodes) and cluster_internal("localhost", with_nodes)


def test_a_malformed_endpoint_fails(live: Live, etcd: Etcd) -> None:
    plan, evidence = live([namespace(), *store("default-datastore", etcd, [*etcd.endpoints, "https://etcd:2379"])])
    result = run(ds.check_datastore_endpoints, plan, evidence)
    assert str(result.status) == "fail" and result.message == (
        "DataStore default-datastore (planned for this cluster): endpoint 'https://etcd:2379' is not host:port "
        "(Kamaji reads bare host:port, no scheme)"
    )
    # with no endpoint to connect to, the TLS check cannot pass: it says what it could not probe
    plan, evidence = live([namespace(), *store("default-datastore", etcd, ["https://etcd:2379"])])
    result = run(ds.check_datastore_endpoints_answer, plan, evidence)
    assert str(result.status) == "manual" and "lists no endpoint in host:port form" in result.message


def test_no_answer_from_the_runner_at_a_remote_address_is_unknown_not_a_defect(
    live: Live, etcd: Etcd, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The runner need not be on the management cluster's network: an endpoint that does not
    answer it (here a probe that says so; nothing at that address is contacted) is MANUAL."""
    import acpcheck.sources.datastore as source

    unreachable = ("unreachable", "198.51.100.7:2379 did not answer (timeout)", None, None)
    monkeypatch.setattr(source, "probe", lambda *args, **kwargs: unreachable)
    plan, evidence = live([namespace(), *store("default-datastore", etcd, ["198.51.100.7:2379", "198.51.100.8:2379"])])
    result = run(ds.check_datastore_endpoints_answer, plan, evidence)
    assert str(result.status) == "manual" and "may not be on the management cluster's network" in result.message


# ---------------------------------------------------------------------------
# End to end: `acpcheck run` on the management cluster, every report, and no secret anywhere


def test_the_command_reports_each_defect_and_no_key_material_reaches_any_artifact_or_file(
    serve_cluster: ServeCluster, etcd: Etcd, tmp_path: Path
) -> None:
    kube = serve_cluster(defective(etcd))
    key = tmp_path / "id_ed25519"  # the plan names a key; the run opens no SSH session
    key.write_text("unused\n")
    key.chmod(0o600)
    plan = merge(HCP, {"spec": {"kubeconfig": str(kube), "ssh": {"auth": {"privateKeyFile": str(key)}}}})
    (tmp_path / "plan.yaml").write_text(yaml.safe_dump(plan))
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    before = {path for path in Path("/tmp").glob("*")} if Path("/tmp").is_dir() else set()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "acpcheck",
            "run",
            "--plan",
            "plan.yaml",
            "--profile",
            "hcp",
            "--check",
            "ACP-HCP-01*",
            "--out",
            "out",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=180,
        stdin=subprocess.DEVNULL,
        check=False,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("ACPCHECK_")}, "TMPDIR": str(scratch)},
    )
    assert done.returncode == 1, done.stdout + done.stderr
    document = json.loads((tmp_path / "out" / "results.json").read_text())
    statuses = {r["check"]: r["status"] for r in document["results"]}
    assert statuses == {
        "ACP-HCP-010": "pass",
        "ACP-HCP-011": "fail",
        "ACP-HCP-012": "warn",
        "ACP-HCP-013": "fail",
        "ACP-HCP-014": "fail",
        "ACP-HCP-015": "warn",
    }
    secrets = [
        CANARY_CERT,
        CANARY_KEY,
        CANARY_PASSWORD,
        *_key_lines(etcd.client[1]),
        *_key_lines(etcd.rogue[1]),
        *_key_lines(etcd.expiring[1]),
        *_key_lines(etcd.ca_key),
    ]
    texts = {"stdout": done.stdout, "stderr": done.stderr}
    files = [path for path in [*(tmp_path / "out").rglob("*"), *scratch.rglob("*")] if path.is_file()]
    assert {path.name for path in files} >= {"results.json", "report.html", "junit.xml", "results.sarif", "summary.md"}
    texts.update({str(path): path.read_bytes().decode(errors="replace") for path in files})
    after = {path for path in Path("/tmp").glob("*")} if Path("/tmp").is_dir() else set()
    for path in after - before:  # anything the run left in /tmp besides its TMPDIR (other tests may write too)
        if path.is_file():
            texts[str(path)] = path.read_bytes().decode(errors="replace")
    leaks = [(where, secret[:12]) for where, text in texts.items() for secret in secrets if secret in text]
    assert not leaks
    assert "rogue-client" in texts[str(tmp_path / "out" / "results.json")]
    if os.environ.get("ACPCHECK_TEST_SHOW"):  # to quote the findings
        print(json.dumps({r["check"]: r["message"] for r in document["results"]}, indent=1))
