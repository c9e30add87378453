"""The built-in registry's external address and a workload cluster's ``cpaas.io/platform-url``,
verified on the live cluster and made by their steps.

"Add External Address for Built-in Registry" (global cluster, kube-system): a TLS Secret
``registry-address.tls`` from the domain's certificate files (ACP-REG-001), an Ingress
``registry-address`` with the documented paths and annotation (ACP-REG-002), and a
Service ``registry`` 443 -> 60080 (ACP-REG-003). The steps create only what is missing; an
object that exists but differs from the documented one is never overwritten: the step
says how it differs and leaves it, and the check keeps failing.

"Annotate platform-url": a workload cluster's ``Cluster`` object
(``clusters.cluster.x-k8s.io`` in ``cpaas-system``, on the global cluster) carries
``cpaas.io/platform-url`` (ACP-REG-004), the address its nodes reach global and its
registry by. It is read through the run's kubeconfig, so it needs the global cluster's.

The external address end to end: the certificate of ``registry-address.tls`` is valid
for the domain and not near expiry (ACP-REG-005 live; ACP-REG-008 on the plan's files before
install), the domain is not the platform access address (ACP-REG-006), and the domain's address
forwards HTTPS to every global control-plane node, proven with the load-balancer proof's
listeners (ACP-REG-007). With ``registry.type: public`` the ``public-registry-credential`` Cloud
Credential holds a registry login (ACP-IMG-020 live; ACP-IMG-021 MANUAL when global is not read).
No private key or credential value is ever read into the evidence or a message.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlparse

from pydantic import Field

from acpcheck import Scope, Severity, When, check, fail, fail_if, manual, skip, warn
from acpcheck.checks.lb import CERT_MONITORING, MEDIUM_ALERT_DAYS, covers, nobody_answered
from acpcheck.checks.network import field_at
from acpcheck.checks.support import Planned, PlannedInCluster, conclude, listed, some_lines
from acpcheck.constants import ACP_DOCS, PLATFORM_URL_ANNOTATION, PLATFORM_URL_PAGE
from acpcheck.model.plan import ClusterPlan
from acpcheck.remediation import Changes, ClusterObjects, ObjectChange, Ref, cluster_step, redacted_secret
from acpcheck.sources.base import TargetUnavailable
from acpcheck.sources.certificates import days_left, describe_certificate, key_matches
from acpcheck.sources.cluster import (
    CAPI_CLUSTERS,
    PUBLIC_REGISTRY_CREDENTIAL,
    REGISTRY_INGRESS,
    REGISTRY_SERVICE,
    REGISTRY_TLS_CERTIFICATE,
    REGISTRY_TLS_SECRET,
    ClusterView,
)
from acpcheck.sources.lb import LbEvidence

REGISTRY_ADDRESS_PAGES = [
    f"{ACP_DOCS}/{version}/configure/clusters/how-to/add_external_addr_for_global_registry.html"
    for version in ("4.0", "4.3")
]
UPSTREAM_TLS_SECRET = "https://kubernetes.io/docs/concepts/configuration/secret/#tls-secrets"

NAMESPACE = "kube-system"
SECRET, INGRESS, SERVICE = "registry-address.tls", "registry-address", "registry"
SERVICE_PORT, TARGET_PORT = 443, 60080
BACKEND_PROTOCOL = "nginx.ingress.kubernetes.io/backend-protocol"
#: The Ingress paths as the page publishes them (the "Add External Address" procedure, step 3).
DOC_PATHS = (
    "/v2/",
    "/v2/_catalog",
    "/v2/./tags/list",
    "/v2/./manifests/[A-Za-z0-9_+.-:]+",
    "/v2/./blobs/[A-Za-z0-9-:]+",
    "/v2/./blobs/uploads/[A-Za-z0-9-:]+",
    "/auth/token",
)


def _accepted(path: str) -> set[str]:
    """A published path and its other published spellings (``.+`` for ``.``, ``blobls``)."""
    variants = {path, path.replace("/v2/./", "/v2/.+/")}
    return variants | {v.replace("/blobs/", "/blobls/") for v in variants}


def _external(plan: ClusterPlan) -> Any:
    return plan.spec.registry.external_address


REGISTRY = PlannedInCluster(
    cluster_roles=frozenset({"global"}),
    wants=lambda plan: _external(plan) is not None,
    what="spec.registry.externalAddress",
)
PLATFORM = PlannedInCluster(
    cluster_roles=frozenset({"workload"}),
    wants=lambda plan: PLATFORM_URL_ANNOTATION in plan.spec.cluster.annotations,
    what=f"spec.cluster.annotations[{PLATFORM_URL_ANNOTATION}]",
)
TAGS = frozenset({"registry"})


def ingress_body(domain: str) -> dict[str, Any]:
    backend = {"service": {"name": SERVICE, "port": {"number": SERVICE_PORT}}}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": INGRESS,
            "namespace": NAMESPACE,
            "labels": {"service_name": "registry"},
            "annotations": {BACKEND_PROTOCOL: "HTTPS"},
        },
        "spec": {
            "rules": [
                {
                    "host": domain,
                    "http": {
                        "paths": [
                            {"backend": backend, "path": path, "pathType": "ImplementationSpecific"}
                            for path in DOC_PATHS
                        ]
                    },
                }
            ],
            "tls": [{"secretName": SECRET, "hosts": [domain]}],
        },
    }


def service_body() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": SERVICE,
            "namespace": NAMESPACE,
            "labels": {"name": "registry", "service_name": "registry"},
        },
        "spec": {
            "ports": [{"protocol": "TCP", "port": SERVICE_PORT, "targetPort": TARGET_PORT}],
            "selector": {"component": "registry"},
            "type": "ClusterIP",
        },
    }


# ---------------------------------------------------------------------------
# What is wrong with each object (shared by the checks and the steps' notes)


def secret_problems(secret: dict[str, Any]) -> list[str]:
    keys = secret.get("keys") or {}
    problems = []
    if secret.get("type") != "kubernetes.io/tls":
        problems.append(f"its type is {secret.get('type')!r}, not kubernetes.io/tls")
    problems += [f"it has no {key}" for key in ("tls.crt", "tls.key") if not (keys.get(key) or {}).get("bytes")]
    return problems


def ingress_problems(ingress: dict[str, Any], domain: str) -> list[str]:
    metadata, spec = ingress.get("metadata") or {}, ingress.get("spec") or {}
    problems = []
    if (metadata.get("annotations") or {}).get(BACKEND_PROTOCOL) != "HTTPS":
        problems.append(f"annotation {BACKEND_PROTOCOL} is not HTTPS")
    if (metadata.get("labels") or {}).get("service_name") != "registry":
        problems.append("label service_name is not registry")
    rules = [rule for rule in spec.get("rules") or [] if rule.get("host") == domain]
    if not rules:
        problems.append(f"no rule for host {domain}")
    else:
        paths = {
            p.get("path"): (p.get("backend") or {}).get("service") or {}
            for rule in rules
            for p in (rule.get("http") or {}).get("paths") or []
        }
        for path in DOC_PATHS:
            found = next((paths[p] for p in _accepted(path) if p in paths), None)
            if found is None:
                problems.append(f"no path {path}")
            elif found.get("name") != SERVICE or (found.get("port") or {}).get("number") != SERVICE_PORT:
                problems.append(f"path {path} does not go to Service {SERVICE} port {SERVICE_PORT}")
    if not any(t.get("secretName") == SECRET and domain in (t.get("hosts") or []) for t in spec.get("tls") or []):
        problems.append(f"its TLS does not use Secret {SECRET} for {domain}")
    return problems


def service_problems(service: dict[str, Any]) -> list[str]:
    spec = service.get("spec") or {}
    problems = []
    if (spec.get("type") or "ClusterIP") != "ClusterIP":
        problems.append(f"its type is {spec.get('type')}, not ClusterIP")
    if not any(p.get("port") == SERVICE_PORT and p.get("targetPort") == TARGET_PORT for p in spec.get("ports") or []):
        problems.append(f"no port {SERVICE_PORT} -> targetPort {TARGET_PORT}")
    if (spec.get("selector") or {}).get("component") != "registry":
        problems.append("its selector is not component: registry")
    return problems


def as_documented(found: dict[str, Any] | None, what: str, problems_of: Callable[[dict[str, Any]], list[str]]) -> None:
    """FAIL when the object ``what`` (e.g. "Service registry") is missing from kube-system or differs from the page."""
    if found is None:
        fail(f"{NAMESPACE} has no {what}")
    problems = problems_of(found)
    if problems:
        kind, _, name = what.partition(" ")
        fail(f"{kind} {NAMESPACE}/{name}: " + "; ".join(problems))


# ---------------------------------------------------------------------------
# Checks


@check(
    id="ACP-REG-001",
    title="the TLS Secret registry-address.tls for the built-in registry's external address exists in kube-system",
    severity=Severity.HIGH,
    scope=Scope.CLUSTER,
    applies=REGISTRY,
    tags=TAGS,
    refs=[*REGISTRY_ADDRESS_PAGES, UPSTREAM_TLS_SECRET],
    remediation=(
        "kubectl create secret tls registry-address.tls --cert=<cert> --key=<key> -n kube-system (acpcheck "
        "remediate does it from spec.registry.externalAddress)"
    ),
)
def check_registry_secret(plan: ClusterPlan, cluster: ClusterView) -> None:
    """The Ingress of the registry's external address serves the domain's certificate
    from this Secret; without it workload nodes cannot pull over HTTPS. The page also
    says to watch its expiry and replace it in time."""
    as_documented(cluster.get(REGISTRY_TLS_SECRET), f"Secret {SECRET}", secret_problems)


@check(
    id="ACP-REG-002",
    title="the Ingress registry-address routes the registry's external domain as documented",
    severity=Severity.HIGH,
    scope=Scope.CLUSTER,
    applies=REGISTRY,
    tags=TAGS,
    refs=[*REGISTRY_ADDRESS_PAGES],
    remediation=(
        "Create Ingress kube-system/registry-address as the page gives it (acpcheck remediate does it when it is "
        "missing)"
    ),
)
def check_registry_ingress(plan: ClusterPlan, cluster: ClusterView) -> None:
    """The Ingress sends the registry API paths (``/v2/…``, ``/auth/token``) of the
    external domain to Service ``registry`` port 443 over HTTPS (the backend-protocol
    annotation), with TLS from ``registry-address.tls``."""
    as_documented(
        cluster.get(REGISTRY_INGRESS),
        f"Ingress {INGRESS}",
        lambda found: ingress_problems(found, _external(plan).domain),
    )


@check(
    id="ACP-REG-003",
    title="the Service registry in kube-system maps port 443 to the registry's 60080",
    severity=Severity.HIGH,
    scope=Scope.CLUSTER,
    applies=REGISTRY,
    tags=TAGS,
    refs=[*REGISTRY_ADDRESS_PAGES],
    remediation=(
        "Create Service kube-system/registry (ClusterIP, 443 -> 60080, selector component: registry) as the page "
        "gives it"
    ),
)
def check_registry_service(plan: ClusterPlan, cluster: ClusterView) -> None:
    """The Ingress's backend: a ClusterIP Service ``registry`` whose port 443 reaches the
    registry pods (``component: registry``) on 60080."""
    as_documented(cluster.get(REGISTRY_SERVICE), f"Service {SERVICE}", service_problems)


@check(
    id="ACP-REG-004",
    title="the workload cluster's Cluster object carries the planned cpaas.io/platform-url",
    severity=Severity.MEDIUM,
    scope=Scope.CLUSTER,
    applies=PLATFORM,
    tags=frozenset({"registry", "connectivity"}),
    refs=[PLATFORM_URL_PAGE],
    remediation=(
        "kubectl annotate --overwrite -n cpaas-system clusters.cluster.x-k8s.io <name> "
        "cpaas.io/platform-url=https://<domain> (on the global cluster)"
    ),
)
def check_platform_url(plan: ClusterPlan, cluster: ClusterView) -> None:
    """A workload cluster that cannot reach global's access address uses this annotation:
    its nodes reach the platform, and pull from its registry, at that address. The
    ``Cluster`` object lives on the global cluster, so the run's kubeconfig must be the
    global cluster's."""
    if not cluster.served(CAPI_CLUSTERS):
        skip(
            "the cluster does not serve clusters.cluster.x-k8s.io: give the global cluster's kubeconfig "
            "(--kubeconfig) to check this"
        )
    found = next((c for c in cluster.items(CAPI_CLUSTERS) if c.get("name") == plan.metadata.name), None)
    if found is None:
        fail(f"cpaas-system has no Cluster {plan.metadata.name}")
    wanted = plan.spec.cluster.annotations[PLATFORM_URL_ANNOTATION]
    now = (found.get("annotations") or {}).get(PLATFORM_URL_ANNOTATION)
    if now != wanted:
        fail(f"Cluster {plan.metadata.name}: {PLATFORM_URL_ANNOTATION} is {now!r}, the plan says {wanted!r}")


# ---------------------------------------------------------------------------
# The external address end to end: its certificate, its domain, its forwarding;
# and the public registry's Cloud Credential.


@dataclass(frozen=True)
class BeforeInstall(Planned):
    """``Planned``, and the run has no kubeconfig: the cluster is not up yet, so the plan's own
    files are judged (``instead`` names the check that judges the live cluster)."""

    instead: str = ""

    def not_applicable(self, plan: ClusterPlan) -> str | None:
        from acpcheck.transport.kube import kubeconfig_of

        reason = super().not_applicable(plan)
        if reason:
            return reason
        if kubeconfig_of(plan)[0] is not None:
            return f"not applicable: the run has a kubeconfig, so {self.instead} judges the live cluster"
        return None

    def describe(self) -> str:
        return ", ".join([super().describe(), "without a kubeconfig (before install)"])


GLOBAL = frozenset({"global"})
EXTERNAL_ADDRESS = "spec.registry.externalAddress"
REGISTRY_BEFORE_INSTALL = BeforeInstall(
    cluster_roles=GLOBAL, wants=lambda plan: _external(plan) is not None, what=EXTERNAL_ADDRESS, instead="ACP-REG-005"
)
REGISTRY_PLANNED = Planned(cluster_roles=GLOBAL, wants=lambda plan: _external(plan) is not None, what=EXTERNAL_ADDRESS)
#: The listener proof needs free ports on control-plane nodes ACP installs itself, as ACP-LB-001 does.
REGISTRY_PROOF = Planned(
    cluster_roles=GLOBAL,
    cluster_types=frozenset({"on-premise"}),
    upgrade=False,
    wants=lambda plan: _external(plan) is not None,
    what=EXTERNAL_ADDRESS,
)
#: RFC 6125 (https://www.rfc-editor.org/rfc/rfc6125#section-6.4.3): a wildcard only as the whole
#: left-most label, matching exactly one label; no fallback to the subject CN when SANs are absent
#: (Go's crypto/x509, which containerd and the registry clients use, has ignored the CN since Go 1.15).
RFC_6125 = "https://www.rfc-editor.org/rfc/rfc6125#section-6.4.3"
#: threshold chosen by acpcheck: 30 days, the point at which ACP's certificate monitoring raises its
#: Medium alert (checks/lb.py's MEDIUM_ALERT_DAYS, from the certificate-monitoring page).
EXPIRY_WARNING_DAYS = MEDIUM_ALERT_DAYS
#: Profile parameter (``params: {registryCertificateWarningDays: N}``) that moves the WARN threshold.
WARNING_DAYS_PARAM = "registryCertificateWarningDays"
CERTIFICATE_PARAMS: dict[str, Any] = {WARNING_DAYS_PARAM: Annotated[int, Field(strict=True, ge=1, le=3650)]}


def warning_days(params: dict[str, Any]) -> int:
    return int(params.get(WARNING_DAYS_PARAM, EXPIRY_WARNING_DAYS))


def certificate_findings(
    info: dict[str, Any],
    key_match: bool | None,
    domain: str,
    now: dt.datetime,
    where: str,
    warn_days: int = EXPIRY_WARNING_DAYS,
) -> tuple[list[str], list[str]]:
    """What is wrong with the certificate ``info`` (``acpcheck.sources.certificates.describe_certificate``)
    for ``domain`` at ``now``, and what is about to be (expiry within ``warn_days``)."""
    if info.get("error"):
        return [f"{where}: {info['error']}"], []
    findings, warnings = [], []
    sans = info.get("sans") or []
    if not covers(sans, domain):
        findings.append(
            f"{where}: the certificate ({info.get('subject')}) is not valid for {domain}: its SANs are {listed(sans)} "
            "(RFC 6125: a wildcard covers exactly one left-most label; the subject CN does not count)"
        )
    left = days_left(info, now)
    if left is not None and left <= 0:
        findings.append(f"{where}: the certificate expired on {info['notAfter']} ({-left:.1f} days ago)")
    elif left is not None and left <= warn_days:
        warnings.append(
            f"{where}: the certificate expires in {left:.1f} days ({info['notAfter']}); replace it before it expires "
            f"(acpcheck warns {warn_days} days ahead)"
        )
    if info.get("notBefore") and dt.datetime.fromisoformat(info["notBefore"]) > now:
        findings.append(f"{where}: the certificate is not valid before {info['notBefore']}")
    if key_match is False:
        findings.append(f"{where}: the private key is not the certificate's key (their public keys differ)")
    return findings, warnings


def _judged(findings: list[str], warnings: list[str], info: dict[str, Any], domain: str) -> None:
    shown = {k: info.get(k) for k in ("subject", "sans", "notBefore", "notAfter", "fingerprint")}
    fail_if(findings, domain=domain, certificate=shown)
    if warnings:
        warn("\n".join(warnings), domain=domain, certificate=shown)


@check(
    id="ACP-REG-005",
    title="the certificate in registry-address.tls is valid for the registry's domain and not near expiry",
    severity=Severity.HIGH,
    scope=Scope.CLUSTER,
    applies=REGISTRY,
    tags=TAGS,
    refs=[*REGISTRY_ADDRESS_PAGES, CERT_MONITORING, RFC_6125],
    params=CERTIFICATE_PARAMS,
    remediation=(
        "Replace Secret kube-system/registry-address.tls with a certificate (and its key) whose SANs hold the "
        "registry's domain, before the old one expires: kubectl create secret tls registry-address.tls --cert=<cert> "
        "--key=<key> -n kube-system --dry-run=client -o yaml | kubectl apply -f -"
    ),
)
def check_registry_certificate(plan: ClusterPlan, params: dict[str, Any], cluster: ClusterView) -> None:
    """The page asks for "a valid SSL certificate for the domain name" and to "monitor the
    expiration date of the registry-address.tls secret ... Replace the certificate before it
    expires". Workload nodes pull through the domain over HTTPS, so a certificate without the
    domain among its SANs (RFC 6125 matching), an expired one, one not valid yet, or one whose
    key is not the Secret's tls.key FAILs; one that expires within 30 days WARNs (threshold
    chosen by acpcheck: 30 days, where ACP's certificate monitoring raises its Medium alert;
    a profile moves it with ``params: {registryCertificateWarningDays: N}``).
    Judged at the time the cluster was read. Only the certificate's public fields are read into
    the evidence; the key is compared with it in memory and never kept."""
    found = cluster.get(REGISTRY_TLS_CERTIFICATE)
    if found is None or found.get("certificate") is None:
        skip(f"{NAMESPACE} has no Secret {SECRET} with a tls.crt: ACP-REG-001 FAILs for that")
    domain = _external(plan).domain
    info = found["certificate"]
    findings, warnings = certificate_findings(
        info, found.get("keyMatches"), domain, cluster.observed_at, f"Secret {NAMESPACE}/{SECRET}", warning_days(params)
    )
    _judged(findings, warnings, info, domain)


@check(
    id="ACP-REG-008",
    title="before install: the plan's certificate for the registry's domain is valid for it and not near expiry",
    severity=Severity.HIGH,
    scope=Scope.PLAN,
    applies=REGISTRY_BEFORE_INSTALL,
    tags=TAGS,
    refs=[*REGISTRY_ADDRESS_PAGES, CERT_MONITORING, RFC_6125],
    params=CERTIFICATE_PARAMS,
    remediation=(
        "Get a certificate for the registry's domain (its SANs must hold the domain) that is not about to expire, "
        "with its own key, and name both in spec.registry.externalAddress (certFile, keyFile)"
    ),
)
def check_planned_registry_certificate(plan: ClusterPlan, params: dict[str, Any]) -> None:
    """Before the global cluster is up (no kubeconfig), the same judgement as ACP-REG-005 on the
    files the plan names for Secret registry-address.tls: the certificate holds the domain among
    its SANs, has not expired, is valid already, and WARNs within 30 days of expiry (threshold
    chosen by acpcheck: 30 days, ACP's certificate monitoring's Medium alert; profile parameter
    ``registryCertificateWarningDays``); the key file must
    be the certificate's key. The key is read into memory only to compare public keys; nothing of
    it is reported."""
    external = _external(plan)
    path = ("spec", "registry", "externalAddress")
    problems = []
    try:
        cert = plan.relative_file(external.cert_file).read_bytes()
    except OSError as error:
        fail(f"{field_at(plan, *path, 'certFile')}: cannot read {error.filename}: {error.strerror}")
    try:
        key: bytes | None = plan.relative_file(external.key_file).read_bytes()
    except OSError as error:
        key = None
        problems.append(f"{field_at(plan, *path, 'keyFile')}: cannot read {error.filename}: {error.strerror}")
    info = describe_certificate(cert)
    match = key_matches(cert, key) if key else None
    del key
    where = f"{external.cert_file} ({field_at(plan, *path, 'certFile')})"
    findings, warnings = certificate_findings(
        info, match, external.domain, dt.datetime.now(dt.UTC), where, warning_days(params)
    )
    _judged([*findings, *problems], warnings, info, external.domain)


def _host(value: str | None) -> str | None:
    """A host as compared: lower case, without a trailing dot; the host of a URL."""
    if not value:
        return None
    host = urlparse(value).hostname if "://" in value else value
    return (host or "").lower().rstrip(".") or None


@check(
    id="ACP-REG-006",
    title="the registry's external domain differs from the platform access address",
    severity=Severity.HIGH,
    scope=Scope.PLAN,
    applies=REGISTRY_PLANNED,
    tags=TAGS,
    refs=[*REGISTRY_ADDRESS_PAGES],
    remediation=(
        "Give the registry its own domain name (spec.registry.externalAddress.domain), not the platform access "
        "address; it may point at the same IP"
    ),
)
def check_registry_domain_not_platform_address(plan: ClusterPlan) -> None:
    """The page's warning: "The domain name must be different from the platform access address"
    (the registry's Ingress routes by host name, and the platform's own routes hold the platform
    address). The plan has no separate platform access address field (as ACP-NET-008 says), so
    the domain is compared with every address the plan gives for the platform: spec.endpoint.address,
    spec.endpoint.externalAccess and the host of cpaas.io/platform-url, case-insensitively and
    without a trailing dot. The same IP behind both names is allowed: the page asks only for a
    different name."""
    domain = _external(plan).domain
    endpoint = plan.spec.endpoint
    candidates = [
        (("spec", "endpoint", "address"), endpoint.address),
        (("spec", "endpoint", "externalAccess"), endpoint.external_access),
        (
            ("spec", "cluster", "annotations", PLATFORM_URL_ANNOTATION),
            plan.spec.cluster.annotations.get(PLATFORM_URL_ANNOTATION),
        ),
    ]
    same = [field_at(plan, *path) for path, value in candidates if _host(value) == _host(domain)]
    if same:
        fail(
            f"spec.registry.externalAddress.domain {domain} "
            f"({plan.where('spec', 'registry', 'externalAddress', 'domain')}) is the platform access address "
            f"({listed(same)}): the page requires the registry's domain to differ from it"
        )


@check(
    id="ACP-REG-007",
    title="the registry's external domain forwards HTTPS to every global control-plane node",
    severity=Severity.HIGH,
    scope=Scope.NODE,
    applies=REGISTRY_PROOF,
    tags=frozenset({"registry", "lb"}),
    refs=[*REGISTRY_ADDRESS_PAGES],
    remediation=(
        "Make the domain's IP forward TCP 443 (the platform's HTTPS port) to 443 on every global control-plane node "
        "(add the nodes named to the LB's backends), or point the domain at the global VIP that does"
    ),
)
def check_registry_domain_forwards(plan: ClusterPlan, lb: LbEvidence) -> None:
    """The page's warning: "Ensure the domain's IP address can forward traffic to all control
    plane nodes of the global cluster". acpcheck proves it with the load-balancer proof (ACP-LB-001,
    -002: a listener on every control-plane node answers on the platform's HTTPS port with its name
    and the run's nonce) by connecting to the domain's address as well as to the endpoint, at the
    same time. The address is spec.registry.externalAddress.address (the page's "IP address that the
    domain name points to"), else the domain itself when it is an IP, else what the runner's resolver
    gives for the domain (its first address). After install the cluster's ingress holds the port on
    every node, so no listener can answer there: MANUAL with what to look at."""
    domain = _external(plan).domain
    names = listed(node.name for node in plan.control_plane)
    if lb.mode == "live":
        manual(
            f"{lb.reason}; the cluster's ingress holds port 443 on the control-plane nodes, so acpcheck cannot prove "
            f"where connections to {domain} go: check that the LB behind {domain}'s IP lists every global "
            f"control-plane node ({names}) as a backend of 443 and marks them up, or run acpcheck before install"
        )
    if lb.mode == "vip":
        manual(
            "the endpoint is a self-built VIP, where acpcheck runs no listener proof: check that "
            f"{domain}'s IP forwards 443 to every global control-plane node ({names})"
        )
    if lb.mode != "proof":
        skip(lb.reason or f"no load-balancer proof ({lb.mode})")
    registry = lb.registry
    if registry is None:
        raise TargetUnavailable("node:*", "missing", "the lb evidence holds no registry proof (an older acpcheck?)")
    if registry.error:
        manual(
            f"{registry.error}: give the IP the domain points to as spec.registry.externalAddress.address, "
            "and run again"
        )
    findings, unproven = [], []
    at = f"{domain} ({registry.address}, {'the plan' if registry.resolved_by == 'plan' else registry.resolved_by})"
    for proof in registry.ports:
        where = f"{registry.address}:{proof.port}"
        if proof.skipped:
            unproven.append(f"{at} port {proof.port}: not probed: {proof.skipped} (see ACP-LB-002)")
            continue
        if not proof.answered:
            findings.append(f"{at}: {nobody_answered(proof, where)}")
            continue
        never = [lb.node_of(ident) for ident in proof.expected if ident not in proof.answered]
        if never:
            reached = listed(sorted(lb.node_of(ident) for ident in proof.answered))
            findings.append(f"{at}: connections to {where} reached {reached}, never {listed(never)}")
        if proof.outcomes.keys() & {"foreign", "stale"}:
            findings.append(f"{at}: something that is not a control-plane node answered through {where}")
    for state in lb.listeners.values():
        for proof in registry.ports:
            if state.state == "ok" and state.port_state("tcp", proof.port) != "ok":
                unproven.append(
                    f"{state.node}: port {proof.port} was not listened on there "
                    f"({state.port_state('tcp', proof.port) or 'no listener'}); it must be free before install"
                )
            elif state.state != "ok":
                unproven.append(f"{state.node}: no listener ({state.state}: {state.detail})")
    conclude(
        findings,
        unknown=some_lines(sorted(set(unproven)), "nodes not proven"),
        domain=domain,
        address=registry.address,
        resolved_by=registry.resolved_by,
        answered={str(p.port): {lb.node_of(i): n for i, n in p.answered.items()} for p in registry.ports},
    )


# ---------------------------------------------------------------------------
# registry.type public: the public-registry-credential Cloud Credential

UPDATE_PUBLIC_CREDENTIALS_PAGES = [
    f"{ACP_DOCS}/{version}/configure/clusters/how-to/update_public_repository_credentials.html"
    for version in ("4.0", "4.3")
]
PUBLIC_CREDENTIAL = "public-registry-credential"
PUBLIC_STEPS = (
    "the docs' steps (Updating Public Repository Credentials): 1. log in to the Customer Portal and download your "
    "organization's authentication file (User Information > Enterprise Management); 2. in the Administrator console "
    "open Clusters > Cloud Credential; 3. on public-registry-credential choose Update; 4. under Upload Public "
    "Repository Address upload the authentication file; 5. click Update"
)
PUBLIC_TYPE = frozenset({"public"})


@dataclass(frozen=True)
class RegistryType(When):
    """Applies to plans whose spec.registry.type is one of ``types``; ``live`` True: with a
    kubeconfig of the global cluster only; False: otherwise (no kubeconfig, or not global)."""

    types: frozenset[str] = frozenset()
    live: bool | None = None

    def not_applicable(self, plan: ClusterPlan) -> str | None:
        from acpcheck.transport.kube import kubeconfig_of

        reason = super().not_applicable(plan)
        if reason:
            return reason
        if self.types and plan.spec.registry.type not in self.types:
            return f"not applicable: spec.registry.type is {plan.spec.registry.type}"
        reachable = plan.spec.cluster.role == "global" and kubeconfig_of(plan)[0] is not None
        if self.live is True and not reachable:
            return "not applicable: no kubeconfig of the global cluster (ACP-IMG-021 says what to do by hand)"
        if self.live is False and reachable:
            return "not applicable: the global cluster is read (ACP-IMG-020 checks the credential there)"
        return None

    def describe(self) -> str:
        parts = [super().describe(), f"spec.registry.type {'/'.join(sorted(self.types))}"]
        if self.live is not None:
            parts.append(f"{'with' if self.live else 'without'} the global cluster's kubeconfig")
        return ", ".join(parts)


@check(
    id="ACP-IMG-020",
    title="registry.type public: the public-registry-credential Cloud Credential on global holds a registry auth entry",
    severity=Severity.HIGH,
    scope=Scope.CLUSTER,
    applies=RegistryType(types=PUBLIC_TYPE, live=True),
    tags=frozenset({"registry", "images"}),
    refs=UPDATE_PUBLIC_CREDENTIALS_PAGES,
    remediation="Update the public-registry-credential Cloud Credential with your organization's authentication "
    "file: " + PUBLIC_STEPS,
)
def check_public_registry_credential(plan: ClusterPlan, cluster: ClusterView) -> None:
    """With the Public Repository as the image registry, "you need to update the built-in
    public-registry-credential Cloud Credentials", or the platform cannot pull from it. The docs
    name the Cloud Credential but give no API kind or group for it (checks/cloud.py says the
    same), so it is recognised by what they do say, its name: the Secret public-registry-credential
    in cpaas-system (where ACP keeps it, of type CloudCredential, as an ACP user's published notes
    record; no docs page says so). It must hold a registry auth entry: a value in the shape
    container clients write registry logins in (docker config.json ``auths``: a base64 ``auth`` of
    user:password, a username and a password, or an identity token). A value in a shape acpcheck
    does not know is MANUAL. Only the shape of each value is read into the evidence, never a value."""
    found = cluster.get(PUBLIC_REGISTRY_CREDENTIAL)
    if found is None:
        fail(
            f"cpaas-system has no Cloud Credential {PUBLIC_CREDENTIAL} (looked for as Secret "
            f"cpaas-system/{PUBLIC_CREDENTIAL}): with registry.type public the platform has no login for the "
            "public registry"
        )
    keys: dict[str, Any] = found.get("keys") or {}
    status = f" (cpaas.io/status: {found['status']})" if found.get("status") else ""
    shapes = {key: value.get("shape") for key, value in keys.items()}
    evidence = {"type": found.get("type"), "status": found.get("status"), "shapes": shapes}
    if not keys or all(shape == "empty" for shape in shapes.values()):
        fail(
            f"Cloud Credential {PUBLIC_CREDENTIAL} holds no data{status}: it was never updated with the "
            "authentication file",
            **evidence,
        )
    auth_shaped = {key: value for key, value in keys.items() if value.get("shape") in ("docker-config", "dockercfg")}
    if any(value.get("usable") for value in auth_shaped.values()):
        return
    if auth_shaped:
        fail(
            f"Cloud Credential {PUBLIC_CREDENTIAL}: {listed(sorted(auth_shaped))} holds registry auth entries, but "
            f"none with a login (an auth of user:password, a username and password, or an identity token){status}",
            **evidence,
        )
    manual(
        f"Cloud Credential {PUBLIC_CREDENTIAL} holds {listed(sorted(keys))} in no registry auth shape acpcheck knows "
        f"({listed(sorted(set(map(str, shapes.values()))))}): check in Clusters > Cloud Credential that it was "
        "updated with the authentication file"
    )


@check(
    id="ACP-IMG-021",
    title="registry.type public: update the public-registry-credential Cloud Credential (by hand, global not read)",
    severity=Severity.HIGH,
    scope=Scope.PLAN,
    applies=RegistryType(types=PUBLIC_TYPE, live=False),
    tags=frozenset({"registry", "images"}),
    refs=UPDATE_PUBLIC_CREDENTIALS_PAGES,
    remediation=PUBLIC_STEPS,
)
def check_public_registry_credential_by_hand(plan: ClusterPlan) -> None:
    """The public-registry-credential Cloud Credential lives on the global cluster. When the run
    does not read it (no kubeconfig yet: before install; or the plan is a workload cluster's), a
    person must make sure it is updated: MANUAL with the docs' steps."""
    why = (
        "the global cluster is not read in this run (no kubeconfig: before install)"
        if plan.spec.cluster.role == "global"
        else "this is a workload cluster's plan; the credential lives on the global cluster"
    )
    manual(f"{why}: with registry.type public, update Cloud Credential {PUBLIC_CREDENTIAL} on global: {PUBLIC_STEPS}")


# ---------------------------------------------------------------------------
# Steps


def _differs(what: str, problems: list[str]) -> str:
    return (
        f"{what} exists and differs from the documented one ({'; '.join(problems)}); not overwritten: fix or "
        "delete it by hand"
    )


@cluster_step(
    fixes=check_registry_secret,
    name="registry-tls-secret",
    does="creates Secret kube-system/registry-address.tls from spec.registry.externalAddress's certificate files",
)
def registry_secret_step(cluster: ClusterObjects) -> Changes:
    external = _external(cluster.plan)
    current = cluster.get("secrets", SECRET, NAMESPACE)
    cert_path, key_path = cluster.plan.relative_file(external.cert_file), cluster.plan.relative_file(external.key_file)
    if current is not None:
        keys = {
            k: {
                "bytes": len(base64.b64decode(v or "")),
                "sha256": hashlib.sha256(base64.b64decode(v or "")).hexdigest(),
            }
            for k, v in (current.get("data") or {}).items()
        }
        problems = secret_problems({"type": current.get("type"), "keys": keys})
        try:
            if (keys.get("tls.crt") or {}).get("sha256") != hashlib.sha256(cert_path.read_bytes()).hexdigest():
                problems.append(f"its tls.crt is not {cert_path}")
        except OSError:
            pass
        return Changes(notes=(_differs(f"Secret {NAMESPACE}/{SECRET}", problems),) if problems else ())
    try:
        cert, key = cert_path.read_bytes(), key_path.read_bytes()
    except OSError as error:
        return Changes(
            notes=(
                (
                    f"cannot read the certificate files of spec.registry.externalAddress: {error.strerror}: "
                    f"{error.filename}"
                ),
            )
        )
    body = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": {"name": SECRET, "namespace": NAMESPACE},
        "data": {"tls.crt": base64.b64encode(cert).decode(), "tls.key": base64.b64encode(key).decode()},
    }
    shown = redacted_secret(body, {"tls.crt": str(cert_path), "tls.key": str(key_path)})
    return Changes(
        actions=(
            ObjectChange(
                Ref("secrets", SECRET, NAMESPACE),
                "create",
                f"the certificate of {external.domain}",
                body=body,
                shown=shown,
            ),
        )
    )


@cluster_step(
    fixes=check_registry_ingress,
    name="registry-ingress",
    does="creates Ingress kube-system/registry-address with the documented paths, annotation and TLS",
)
def registry_ingress_step(cluster: ClusterObjects) -> Changes:
    domain = _external(cluster.plan).domain
    current = cluster.get("ingresses", INGRESS, NAMESPACE)
    if current is not None:
        problems = ingress_problems(current, domain)
        return Changes(notes=(_differs(f"Ingress {NAMESPACE}/{INGRESS}", problems),) if problems else ())
    return Changes(
        actions=(
            ObjectChange(
                Ref("ingresses", INGRESS, NAMESPACE),
                "create",
                f"route {domain} to the registry",
                body=ingress_body(domain),
            ),
        )
    )


@cluster_step(
    fixes=check_registry_service,
    name="registry-service",
    does="creates Service kube-system/registry (ClusterIP, 443 -> 60080, selector component: registry)",
)
def registry_service_step(cluster: ClusterObjects) -> Changes:
    current = cluster.get("services", SERVICE, NAMESPACE)
    if current is not None:
        problems = service_problems(current)
        return Changes(notes=(_differs(f"Service {NAMESPACE}/{SERVICE}", problems),) if problems else ())
    return Changes(
        actions=(
            ObjectChange(Ref("services", SERVICE, NAMESPACE), "create", "the Ingress's backend", body=service_body()),
        )
    )


@cluster_step(
    fixes=check_platform_url,
    name="platform-url",
    does="annotates the workload cluster's Cluster object cpaas.io/platform-url (kubectl annotate --overwrite)",
)
def platform_url_step(cluster: ClusterObjects) -> Changes:
    plan = cluster.plan
    current = cluster.get("clusters.cluster.x-k8s.io", plan.metadata.name, "cpaas-system")
    if current is None:
        return Changes(
            notes=(
                (
                    f"no Cluster cpaas-system/{plan.metadata.name} through this kubeconfig (it must be the "
                    "global cluster's); nothing to annotate"
                ),
            )
        )
    wanted = plan.spec.cluster.annotations[PLATFORM_URL_ANNOTATION]
    now = ((current.get("metadata") or {}).get("annotations") or {}).get(PLATFORM_URL_ANNOTATION)
    if now == wanted:
        return Changes()
    notes = (
        (
            (
                f"replaces its {PLATFORM_URL_ANNOTATION} {now!r} with the plan's {wanted!r} (the page's command "
                "uses --overwrite)"
            ),
        )
        if now is not None
        else ()
    )
    change = ObjectChange(
        Ref("clusters.cluster.x-k8s.io", plan.metadata.name, "cpaas-system"),
        "patch",
        "how its nodes reach global",
        fields={("metadata", "annotations", PLATFORM_URL_ANNOTATION): (now, wanted)},
    )
    return Changes(actions=(change,), notes=notes)
