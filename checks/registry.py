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
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from acpcheck import Scope, Severity, check, fail, skip
from acpcheck.checks.support import PlannedInCluster
from acpcheck.constants import ACP_DOCS, PLATFORM_URL_ANNOTATION, PLATFORM_URL_PAGE
from acpcheck.model.plan import ClusterPlan
from acpcheck.remediation import Changes, ClusterObjects, ObjectChange, Ref, cluster_step, redacted_secret
from acpcheck.sources.cluster import (
    CAPI_CLUSTERS,
    REGISTRY_INGRESS,
    REGISTRY_SERVICE,
    REGISTRY_TLS_SECRET,
    ClusterView,
)

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


def plan_file(plan: ClusterPlan, name: str) -> Path:
    path = Path(name).expanduser()
    return path if path.is_absolute() or plan.file == "<plan>" else Path(plan.file).resolve().parent / path


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
    cert_path, key_path = plan_file(cluster.plan, external.cert_file), plan_file(cluster.plan, external.key_file)
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
