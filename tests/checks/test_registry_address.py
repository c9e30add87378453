"""The built-in registry's external address end to end (ACP-REG-005…008) and the public
registry's Cloud Credential (ACP-IMG-020, -021).

Live checks read the project's **test API server** (lab/acpcheck_lab/apiserver.py, a stand-in
for kube-apiserver, not Kubernetes) over TLS with the reader's token, as a run reads a cluster;
the certificates are real X.509 certificates made here with ``cryptography`` (valid, expired,
not yet valid, wrong SAN, wildcard, expiring soon, with another key). ACP-REG-007's judgement
is tabled over hand-made proof evidence here; the proof itself runs against a real haproxy in
tests/lab/test_registry_lb_on_lab.py. Canaries (a private key, a registry password) are
asserted absent from every artifact of a real ``acpcheck run``.

Everything listens on and connects to 127.0.0.1 only.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import EXAMPLES, ServeCluster, make_plan, merge
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from acpcheck.checks import registry as checks
from acpcheck.model.plan import ClusterPlan
from acpcheck.model.result import CheckResult
from acpcheck.sources.cluster import ClusterView, gather_cluster
from acpcheck.sources.lb import LbEvidence, PortProof, RegistryAddressProof, registry_address_proof
from acpcheck.sources.nodeside import ListenerState
from acpcheck.testing import run_check

DOMAIN = "registry.example.com"
GLOBAL: dict[str, Any] = yaml.safe_load((EXAMPLES / "global-cluster.yaml").read_text())
NOW = dt.datetime.now(dt.UTC)


# ---------------------------------------------------------------------------
# Real certificates


def make_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def make_certificate(
    sans: tuple[str, ...] = (DOMAIN,),
    days: float = 365,
    starts: float = -1,
    key: ec.EllipticCurvePrivateKey | None = None,
    cn: str = DOMAIN,
) -> tuple[bytes, bytes]:
    """A self-signed certificate (PEM) for ``sans`` valid from ``starts`` to ``days`` days from now, and its key."""
    import ipaddress

    key = key or make_key()
    names: list[x509.GeneralName] = []
    for san in sans:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(san)))
        except ValueError:
            names.append(x509.DNSName(san))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW + dt.timedelta(days=starts))
        .not_valid_after(NOW + dt.timedelta(days=days))
    )
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    cert = builder.sign(key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.PEM), pem_key(key)


def expired() -> tuple[bytes, bytes]:
    return make_certificate(days=-2, starts=-400)


def other_key() -> tuple[bytes, bytes]:
    cert, _ = make_certificate()
    return cert, pem_key(make_key())


CERTIFICATES: list[tuple[str, Callable[[], tuple[bytes, bytes]], str, tuple[str, ...]]] = [
    ("valid", make_certificate, "pass", ()),
    ("wildcard", lambda: make_certificate(sans=("*.example.com",)), "pass", ()),
    ("expired", expired, "fail", ("expired on", "days ago")),
    (
        "wrong SAN",
        lambda: make_certificate(sans=("other.example.com",)),
        "fail",
        ("is not valid for registry.example.com", "its SANs are other.example.com"),
    ),
    (
        "wildcard two labels deep",
        lambda: make_certificate(sans=("*.com",)),
        "fail",
        ("is not valid for registry.example.com", "RFC 6125"),
    ),
    ("CN only, no SANs", lambda: make_certificate(sans=()), "fail", ("its SANs are none",)),
    ("expiring soon", lambda: make_certificate(days=10), "warn", ("expires in", "replace it before it expires")),
    ("not yet valid", lambda: make_certificate(starts=3, days=300), "fail", ("not valid before",)),
    ("another key", other_key, "fail", ("private key is not the certificate's key",)),
]


def tls_secret(cert: bytes, key: bytes) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": {"name": "registry-address.tls", "namespace": "kube-system"},
        "data": {"tls.crt": base64.b64encode(cert).decode(), "tls.key": base64.b64encode(key).decode()},
    }


def global_plan(tmp_path: Path, cert: bytes, key: bytes, **edits: Any) -> ClusterPlan:
    (tmp_path / "registry.crt").write_bytes(cert)
    (tmp_path / "registry.key").write_bytes(key)
    external = {"domain": DOMAIN, "certFile": str(tmp_path / "registry.crt"), "keyFile": str(tmp_path / "registry.key")}
    return make_plan(merge({"spec": {"registry": {"externalAddress": external}}}, {"spec": edits}), base=GLOBAL)


def live_result(
    serve_cluster: ServeCluster, check: Callable[..., Any], plan: ClusterPlan, objects: list[dict[str, Any]]
) -> CheckResult:
    path = serve_cluster(objects)
    plan = plan.model_copy(update={"spec": plan.spec.model_copy(update={"kubeconfig": str(path)})})
    evidence = gather_cluster(plan, environ={})
    assert evidence.failure is None, evidence.failure
    return run_check(check, plan, cluster=ClusterView(evidence))


def assert_result(result: CheckResult, status: str, words: tuple[str, ...]) -> None:
    assert result.status == status, (result.status, result.message)
    assert all(word in result.message for word in words), result.message


# ---------------------------------------------------------------------------
# ACP-REG-005 (live) and ACP-REG-008 (the plan's files, before install)


@pytest.mark.parametrize(("case", "make", "status", "words"), CERTIFICATES, ids=[c[0] for c in CERTIFICATES])
def test_live_certificate(
    case: str,
    make: Callable[[], tuple[bytes, bytes]],
    status: str,
    words: tuple[str, ...],
    serve_cluster: ServeCluster,
    tmp_path: Path,
) -> None:
    cert, key = make()
    plan = global_plan(tmp_path, cert, key)
    result = live_result(serve_cluster, checks.check_registry_certificate, plan, [tls_secret(cert, key)])
    assert_result(result, status, words)
    if status != "pass":
        assert "Secret kube-system/registry-address.tls" in result.message
    key_text = key.decode()
    assert key_text not in json.dumps(result.evidence) and key_text.splitlines()[1] not in result.message


def test_live_certificate_skips_without_the_secret(serve_cluster: ServeCluster, tmp_path: Path) -> None:
    cert, key = make_certificate()
    result = live_result(serve_cluster, checks.check_registry_certificate, global_plan(tmp_path, cert, key), [])
    assert_result(result, "skip", ("ACP-REG-001 FAILs",))


@pytest.mark.parametrize(("case", "make", "status", "words"), CERTIFICATES, ids=[c[0] for c in CERTIFICATES])
def test_planned_certificate(
    case: str, make: Callable[[], tuple[bytes, bytes]], status: str, words: tuple[str, ...], tmp_path: Path
) -> None:
    cert, key = make()
    result = run_check(checks.check_planned_registry_certificate, global_plan(tmp_path, cert, key))
    assert_result(result, status, words)
    key_body = "".join(key.decode().splitlines()[1:-1])
    assert key_body[:32] not in result.message + json.dumps(result.evidence)


@pytest.mark.parametrize(("days", "warn_days", "status"), [(10, 5, "pass"), (45, 60, "warn"), (45, None, "pass")])
def test_the_warning_threshold_is_a_profile_parameter(
    days: int, warn_days: int | None, status: str, tmp_path: Path
) -> None:
    cert, key = make_certificate(days=days)
    params = {} if warn_days is None else {checks.WARNING_DAYS_PARAM: warn_days}
    result = run_check(checks.check_planned_registry_certificate, global_plan(tmp_path, cert, key), params=params)
    assert result.status == status, result.message
    if status == "warn":
        assert f"acpcheck warns {warn_days} days ahead" in result.message


def test_planned_certificate_file_missing_names_the_field(tmp_path: Path) -> None:
    cert, key = make_certificate()
    plan = global_plan(tmp_path, cert, key)
    (tmp_path / "registry.crt").unlink()
    result = run_check(checks.check_planned_registry_certificate, plan)
    assert_result(result, "fail", ("spec.registry.externalAddress.certFile at test-plan.yaml:", "No such file"))


def test_planned_certificate_is_left_to_the_live_check_with_a_kubeconfig(tmp_path: Path) -> None:
    cert, key = make_certificate()
    plan = global_plan(tmp_path, cert, key, kubeconfig=str(tmp_path / "kubeconfig"))
    assert_result(run_check(checks.check_planned_registry_certificate, plan), "skip", ("ACP-REG-005",))


# ---------------------------------------------------------------------------
# ACP-REG-006: the domain is not the platform access address


@pytest.mark.parametrize(
    ("edits", "status", "words"),
    [
        ({}, "pass", ()),
        (
            {"endpoint": {"address": "Registry.Example.com.", "selfBuiltVIP": {"enabled": False}}},
            "fail",
            ("is the platform access address", "spec.endpoint.address at test-plan.yaml:"),
        ),
        ({"endpoint": {"externalAccess": DOMAIN}}, "fail", ("spec.endpoint.externalAccess at",)),
        (
            {"cluster": {"annotations": {"cpaas.io/platform-url": f"https://{DOMAIN}:443"}}},
            "fail",
            ("spec.cluster.annotations.cpaas.io/platform-url at",),
        ),
        ({"endpoint": {"externalAccess": "acp.example.com"}}, "pass", ()),
    ],
    ids=["different", "endpoint", "external access", "platform-url", "another domain"],
)
def test_domain_differs_from_platform_address(
    edits: dict[str, Any], status: str, words: tuple[str, ...], tmp_path: Path
) -> None:
    cert, key = make_certificate()
    result = run_check(checks.check_registry_domain_not_platform_address, global_plan(tmp_path, cert, key, **edits))
    assert_result(result, status, words)
    if status == "fail":
        assert "the page requires the registry's domain to differ from it" in result.message


def test_registry_checks_skip_without_an_external_address() -> None:
    plan = make_plan(base=GLOBAL)
    for check in (checks.check_registry_domain_not_platform_address, checks.check_planned_registry_certificate):
        assert_result(run_check(check, plan), "skip", ("spec.registry.externalAddress",))


# ---------------------------------------------------------------------------
# ACP-REG-007's judgement over proof evidence (the proof runs on the lab's haproxy elsewhere)

CPS = ("global-m1", "global-m2", "global-m3")


def registry_proof(
    answered: dict[str, int] | None = None, error: str = "", by: str = "plan", **outcomes: int
) -> LbEvidence:
    states = {
        name: ListenerState(node=name, ident=name, state="ok", tool="python3", ports={"tcp/443": "ok"}, cleaned=True)
        for name in CPS
    }
    port = PortProof(
        name="https",
        port=443,
        source="https://docs.alauda.io/container_platform/4.3/install/prepare/prerequisites.html",
        expected=list(CPS),
        answered=answered if answered is not None else dict.fromkeys(CPS, 8),
        outcomes=outcomes,
        connections=48,
    )
    registry = RegistryAddressProof(
        domain=DOMAIN, address="" if error else "192.0.2.50", resolved_by=by, error=error, ports=[] if error else [port]
    )
    return LbEvidence(mode="proof", endpoint="192.0.2.10", listeners=states, registry=registry)


def busy_on_m2() -> LbEvidence:
    """global-m2's 443 was in use, so no listener there: the proof expected only m1 and m3."""
    evidence = registry_proof({"global-m1": 24, "global-m3": 24})
    evidence.listeners["global-m2"].ports["tcp/443"] = "busy nginx"
    assert evidence.registry is not None
    evidence.registry.ports[0].expected = ["global-m1", "global-m3"]
    return evidence


@pytest.mark.parametrize(
    ("evidence", "status", "words"),
    [
        (registry_proof(), "pass", ()),
        (
            registry_proof({"global-m1": 24, "global-m3": 24}),
            "fail",
            ("registry.example.com (192.0.2.50, the plan)", "reached global-m1, global-m3, never global-m2"),
        ),
        (registry_proof({}, refused=48), "fail", ("192.0.2.50:443 refused every connection",)),
        (registry_proof({}, timeout=10), "fail", ("192.0.2.50:443 did not answer",)),
        (
            registry_proof({}, error="registry.example.com does not resolve on the runner"),
            "manual",
            ("does not resolve", "spec.registry.externalAddress.address"),
        ),
        (
            busy_on_m2(),
            "manual",
            ("global-m2: port 443 was not listened on there (busy nginx)",),
        ),
        (
            LbEvidence(mode="live", reason="post-install (spec.kubeconfig)"),
            "manual",
            ("ingress holds port 443", "global-m1, global-m2, global-m3"),
        ),
    ],
    ids=["every node", "one node left out", "refused", "down", "unresolved", "port busy", "after install"],
)
def test_registry_domain_forwards(evidence: LbEvidence, status: str, words: tuple[str, ...], tmp_path: Path) -> None:
    cert, key = make_certificate()
    plan = global_plan(tmp_path, cert, key, endpoint={"selfBuiltVIP": {"enabled": False}})
    result = run_check(checks.check_registry_domain_forwards, plan, lb=evidence)
    assert_result(result, status, words)


def test_the_domains_address_comes_from_the_plan_the_domain_or_the_resolver(tmp_path: Path) -> None:
    cert, key = make_certificate()
    external = {"domain": DOMAIN, "certFile": "c", "keyFile": "k"}
    by_plan = make_plan({"spec": {"registry": {"externalAddress": {**external, "address": "192.0.2.50"}}}}, GLOBAL)
    literal = make_plan({"spec": {"registry": {"externalAddress": {**external, "domain": "192.0.2.51"}}}}, GLOBAL)
    resolved = make_plan({"spec": {"registry": {"externalAddress": {**external, "domain": "localhost"}}}}, GLOBAL)
    workload = make_plan({"spec": {"registry": {"externalAddress": external}}})
    assert (registry_address_proof(by_plan).address, registry_address_proof(by_plan).resolved_by) == (  # type: ignore[union-attr]
        "192.0.2.50",
        "plan",
    )
    assert registry_address_proof(literal).resolved_by == "literal"  # type: ignore[union-attr]
    found = registry_address_proof(resolved)
    assert found is not None and found.resolved_by == "dns" and found.address in ("127.0.0.1", "::1")
    assert registry_address_proof(workload) is None


# ---------------------------------------------------------------------------
# ACP-IMG-020, -021: registry.type public


def credential(data: dict[str, bytes] | None, status: str | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": "public-registry-credential", "namespace": "cpaas-system"}
    if status:
        metadata["annotations"] = {"cpaas.io/status": status}
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": "Secret", "type": "CloudCredential", "metadata": metadata}
    if data is not None:
        obj["data"] = {key: base64.b64encode(value).decode() for key, value in data.items()}
    return obj


def docker_config(secret: str, **entry: Any) -> bytes:
    login = base64.b64encode(f"acme:{secret}".encode()).decode()
    return json.dumps({"auths": {"registry.alauda.cn:60070": entry or {"auth": login}}}).encode()


PUBLIC = {"registry": {"type": "public"}}


@pytest.mark.parametrize(
    ("objects", "status", "words"),
    [
        ([credential({"config.json": docker_config("Canary-pw-1")})], "pass", ()),
        ([credential({"auth": docker_config("", username="acme", password="Canary-pw-2")})], "pass", ()),
        ([], "fail", ("cpaas-system has no Cloud Credential public-registry-credential",)),
        ([credential(None, status="pending")], "fail", ("holds no data (cpaas.io/status: pending)", "never updated")),
        (
            [credential({"config.json": json.dumps({"auths": {}}).encode()})],
            "fail",
            ("config.json holds registry auth entries, but none with a login",),
        ),
        (
            [credential({"config.json": docker_config("", email="acme@example.com")})],
            "fail",
            ("none with a login",),
        ),
        ([credential({"licence": b"-----BEGIN SOMETHING-----"})], "manual", ("no registry auth shape", "text")),
    ],
    ids=["auth", "username and password", "missing", "pending", "no entries", "entry without login", "unknown"],
)
def test_public_registry_credential(
    objects: list[dict[str, Any]], status: str, words: tuple[str, ...], serve_cluster: ServeCluster
) -> None:
    plan = make_plan({"spec": PUBLIC}, base=GLOBAL)
    result = live_result(serve_cluster, checks.check_public_registry_credential, plan, objects)
    assert_result(result, status, words)
    assert "Canary-pw" not in result.message + json.dumps(result.evidence)


def test_public_registry_credential_by_hand_before_install(tmp_path: Path) -> None:
    result = run_check(checks.check_public_registry_credential_by_hand, make_plan({"spec": PUBLIC}, base=GLOBAL))
    assert_result(result, "manual", ("before install", "Customer Portal", "Clusters > Cloud Credential", "Update"))
    workload = run_check(checks.check_public_registry_credential_by_hand, make_plan({"spec": PUBLIC}))
    assert_result(workload, "manual", ("workload cluster's plan",))
    with_kubeconfig = make_plan({"spec": {**PUBLIC, "kubeconfig": str(tmp_path / "k")}}, base=GLOBAL)
    assert_result(run_check(checks.check_public_registry_credential_by_hand, with_kubeconfig), "skip", ("ACP-IMG-020",))
    assert_result(run_check(checks.check_public_registry_credential, make_plan(base=GLOBAL)), "skip", ("platform",))


# ---------------------------------------------------------------------------
# A real run: every planted defect found, and no canary anywhere


def test_a_run_finds_each_defect_and_leaks_no_secret(serve_cluster: ServeCluster, tmp_path: Path) -> None:
    """``acpcheck run`` as a process against the test API server: an expired certificate whose key
    is a canary, the domain equal to the platform address, a credential whose only login holds a
    canary password but no usable entry... every finding, and neither canary in any file or line."""
    password = f"Canary-{secrets.token_hex(8)}-Pw"
    cert, key = expired()
    login = base64.b64encode(f"acme:{password}".encode()).decode()
    bad_credential = credential(
        {"config.json": json.dumps({"auths": {"registry.alauda.cn": {"auht": login, "password": password}}}).encode()}
    )
    kubeconfig = serve_cluster([tls_secret(cert, key), bad_credential])
    (tmp_path / "registry.crt").write_bytes(cert)
    (tmp_path / "registry.key").write_bytes(key)
    document = merge(
        GLOBAL,
        {
            "spec": {
                "kubeconfig": str(kubeconfig),
                "ssh": {"auth": {"privateKeyFile": None, "passwordEnv": "NODE_SSH_PASSWORD"}},  # never used
                "endpoint": {"address": DOMAIN, "selfBuiltVIP": {"enabled": False}},
                "registry": {
                    "type": "public",
                    "externalAddress": {"domain": DOMAIN, "certFile": "registry.crt", "keyFile": "registry.key"},
                },
            }
        },
    )
    plan = tmp_path / "global.yaml"
    plan.write_text(yaml.safe_dump(document))
    out = tmp_path / "out"
    profile = tmp_path / "registry.yaml"
    profile.write_text(
        yaml.safe_dump({"name": "registry", "include": ["ACP-REG-005", "ACP-REG-006", "ACP-REG-008", "area:IMG"]})
    )
    result = subprocess.run(
        [sys.executable, "-m", "acpcheck", "run", "--plan", str(plan), "--profile", str(profile), "--out", str(out)],
        capture_output=True,
        text=True,
        env={**os.environ, "NODE_SSH_PASSWORD": "not-used"},
        stdin=subprocess.DEVNULL,
        timeout=300,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    results = {r["check"]: r for r in json.loads((out / "results.json").read_text())["results"]}
    assert results["ACP-REG-005"]["status"] == "fail" and "expired on" in results["ACP-REG-005"]["message"]
    assert (
        results["ACP-REG-006"]["status"] == "fail"
        and "is the platform access address" in (results["ACP-REG-006"]["message"])
    )
    assert results["ACP-IMG-020"]["status"] == "fail" and "none with a login" in results["ACP-IMG-020"]["message"]
    assert results["ACP-REG-008"]["status"] == "skip" and results["ACP-IMG-021"]["status"] == "skip"
    key_body = "".join(key.decode().splitlines()[1:-1])
    canaries = [password, login, key_body, key_body[:40], base64.b64encode(key).decode()[:40]]
    outputs = {"stdout": result.stdout, "stderr": result.stderr}
    outputs |= {str(path): path.read_text(errors="replace") for path in out.rglob("*") if path.is_file()}
    assert {"results.json", "junit.xml", "summary.md", "report.html", "cluster.json"} <= {
        Path(name).name for name in outputs
    }
    leaked = [(name, canary[:12]) for name, text in outputs.items() for canary in canaries if canary in text]
    assert leaked == []
