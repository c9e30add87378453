"""Hosted control planes: the management cluster's DataStores and the etcd behind them.

A hosted control plane keeps every Kubernetes object in an external etcd that a Kamaji
**DataStore** (``kamaji.clastix.io/v1alpha1``, cluster-scoped) configures: its endpoints and
the TLS certificates to reach them (Hosted Control Plane concepts page, "DataStore": "Etcd
cluster endpoints (multiple for high availability)", "TLS certificates for secure
communication", "CA certificates for verification"; "Supports only etcd driver in current
release"; "Requires TLS configuration for production use").

For a hosted-control-plane plan the run's kubeconfig is the management cluster's (checks/hcp.py
says why), and the ``datastores`` source (acpcheck/sources/datastore.py) reads **every**
DataStore there: one DataStore can serve several hosted control planes, so a broken one is a
defect of the management cluster whichever cluster it serves. The one the plan names
(``spec.managementCluster.dataStore``) is marked "planned" in findings. ACP-HCP-010 checks that
it exists; ACP-HCP-011..015 judge each DataStore (012..015 the etcd ones: other drivers are
ACP-HCP-011's FAIL).

ACP-HCP-014 connects to each endpoint with the DataStore's own CA, client certificate and key,
read from the Secrets it references into memory only (the source's docstring says how); an
endpoint with a cluster-internal name is reached through a management-cluster node over SSH
(spec.managementCluster.sshNodes), or left to a person (MANUAL) when the plan lists none.
"""

from __future__ import annotations

from acpcheck import Scope, Severity, check, fail, fail_if, manual, skip, warn
from acpcheck.checks.support import HCP_CONCEPTS, MANAGEMENT_CLUSTER
from acpcheck.constants import ACP_DOCS
from acpcheck.model.plan import ClusterPlan
from acpcheck.sources.datastore import QUALIFIED, Certificate, DataStore, DataStoreEvidence

#: ACP's certificate monitoring (alerts 30 and 10 days before a certificate expires).
CERT_MONITORING = f"{ACP_DOCS}/4.3/security/cert/certificate-monitoring.html"
#: Kamaji's DataStore type (the fields read here): endpoints are bare host:port, TLS material
#: is inline content or a Secret reference (name, namespace, keyPath).
KAMAJI_DATASTORE = "https://github.com/clastix/kamaji/blob/master/api/v1alpha1/datastore_types.go"
#: The only DataStore driver hosted control planes support (concepts page).
SUPPORTED_DRIVER = "etcd"
#: acpcheck's choice: a DataStore certificate (CA, client, etcd server) that expires within this
#: many days WARNs. It is the point at which ACP's certificate monitoring raises its Medium alert
#: (CERT_MONITORING); an expired one FAILs.
EXPIRY_WARN_DAYS = 30
LIVE_TAGS = frozenset({"live", "datastore"})


MANAGEMENT = MANAGEMENT_CLUSTER


def _live(datastores: DataStoreEvidence) -> DataStoreEvidence:
    if datastores.mode != "live":
        skip(f"not applicable: {datastores.reason or 'the management cluster was not read'}")
    return datastores


def _stores(datastores: DataStoreEvidence, etcd_only: bool = False) -> list[DataStore]:
    """The DataStores to judge; SKIP when there is none."""
    datastores = _live(datastores)
    if not datastores.served:
        skip(f"not applicable: the management cluster serves no {QUALIFIED} (ACP-HCP-004 reports the plugin)")
    stores = [s for s in datastores.datastores if not etcd_only or s.driver == SUPPORTED_DRIVER]
    if not stores:
        skip(
            "not applicable: the management cluster has no "
            + ("etcd DataStore (ACP-HCP-010 and -011 report it)" if etcd_only else "DataStore (ACP-HCP-010 reports it)")
        )
    return stores


def _name(store: DataStore, datastores: DataStoreEvidence) -> str:
    return f"DataStore {store.name}" + (" (planned for this cluster)" if store.name == datastores.planned else "")


@check(
    id="ACP-HCP-010",
    title="the DataStore the plan names exists in the management cluster",
    severity=Severity.HIGH,
    scope=Scope.CLUSTER,
    applies=MANAGEMENT,
    tags=LIVE_TAGS,
    refs=[HCP_CONCEPTS],
    remediation=(
        "Create the DataStore (kamaji.clastix.io/v1alpha1) in the management cluster, or set "
        "spec.managementCluster.dataStore to the name of one that exists (kubectl get datastores)."
    ),
)
def check_planned_datastore_exists(plan: ClusterPlan, datastores: DataStoreEvidence) -> None:
    """The KamajiControlPlane of this cluster references the DataStore that keeps its data
    (concepts page, KamajiControlPlane: "DataStore reference"); the plan names it in
    spec.managementCluster.dataStore (ACP-HCP-003 FAILs a plan that names none). A name
    that is not a DataStore of the management cluster leaves the control plane without its
    storage: FAIL, listing the DataStores that do exist.
    """
    datastores = _live(datastores)
    planned = datastores.planned
    if planned is None:
        skip("not applicable: the plan names no DataStore (spec.managementCluster.dataStore; ACP-HCP-003 reports it)")
    where = f"the management cluster ({datastores.server})"
    if not datastores.served:
        fail(
            f"DataStore {planned} cannot exist: {where} serves no {QUALIFIED} (the Hosted Control Plane plugin is "
            "not installed; ACP-HCP-004)",
            planned=planned,
            at=plan.where("spec", "managementCluster", "dataStore"),
        )
    if datastores.find(planned) is None:
        names = sorted(store.name for store in datastores.datastores)
        fail(
            f"DataStore {planned} (spec.managementCluster.dataStore) does not exist in {where}: it has "
            + (f"{', '.join(names)}" if names else "no DataStore at all"),
            planned=planned,
            existing=names,
            at=plan.where("spec", "managementCluster", "dataStore"),
        )


@check(
    id="ACP-HCP-011",
    title="every DataStore of the management cluster uses the etcd driver",
    severity=Severity.HIGH,
    scope=Scope.CLUSTER,
    applies=MANAGEMENT,
    tags=LIVE_TAGS,
    refs=[HCP_CONCEPTS, KAMAJI_DATASTORE],
    remediation=(
        "Use a DataStore with spec.driver: etcd for hosted control planes (the driver cannot be changed on an "
        "existing DataStore: create an etcd one and point the KamajiControlPlane at it)."
    ),
)
def check_datastore_driver_etcd(datastores: DataStoreEvidence) -> None:
    """The concepts page says a DataStore "supports only etcd driver in current release".
    Kamaji itself also offers MySQL, PostgreSQL and NATS (through kine); ACP does not
    support them, so any other driver FAILs, naming the DataStore.
    """
    findings = [
        f"{_name(store, datastores)} uses driver {store.driver or '(none)'}: hosted control planes support only "
        f"{SUPPORTED_DRIVER} (source: {HCP_CONCEPTS})"
        for store in _stores(datastores)
        if store.driver != SUPPORTED_DRIVER
    ]
    fail_if(findings, source=HCP_CONCEPTS)


@check(
    id="ACP-HCP-012",
    title="every etcd DataStore lists several endpoints, each host:port",
    severity=Severity.MEDIUM,
    scope=Scope.CLUSTER,
    applies=MANAGEMENT,
    tags=LIVE_TAGS,
    refs=[HCP_CONCEPTS, KAMAJI_DATASTORE],
    remediation=(
        "List every member of the etcd cluster in spec.endpoints as host:port (e.g. "
        "etcd-0.etcd.kamaji-system.svc.cluster.local:2379), and run etcd with three or more members."
    ),
)
def check_datastore_endpoints(datastores: DataStoreEvidence) -> None:
    """The concepts page lists a DataStore's "Etcd cluster endpoints (multiple for high
    availability)" and its example gives three. One endpoint means the hosted control
    planes' data hangs on one etcd member: WARN (the cluster works, without high
    availability). Kamaji splits each endpoint into host and port (Go's
    net.SplitHostPort, no scheme): one that is not host:port stops Kamaji from
    connecting at all, a FAIL.
    """
    stores = _stores(datastores, etcd_only=True)
    malformed = [
        f"{_name(store, datastores)}: endpoint {probe.endpoint!r} is not host:port (Kamaji reads bare host:port, "
        "no scheme)"
        for store in stores
        for probe in store.probes
        if probe.outcome == "format"
    ]
    fail_if(malformed, source=KAMAJI_DATASTORE)
    single = [store for store in stores if len(store.endpoints) < 2]
    if single:
        warn(
            "\n".join(
                f"{_name(store, datastores)} lists one endpoint ({', '.join(store.endpoints) or 'none'}): no high "
                f"availability, the concepts page lists several (source: {HCP_CONCEPTS})"
                for store in single
            ),
            datastores=[store.name for store in single],
        )


@check(
    id="ACP-HCP-013",
    title="every etcd DataStore has a TLS configuration with a CA and a client certificate",
    severity=Severity.HIGH,
    scope=Scope.CLUSTER,
    applies=MANAGEMENT,
    tags=LIVE_TAGS,
    refs=[HCP_CONCEPTS, KAMAJI_DATASTORE],
    remediation=(
        "Set spec.tlsConfig: certificateAuthority.certificate (the etcd CA) and clientCertificate.certificate and "
        ".privateKey, each a secretReference (name, namespace, keyPath) to a Secret holding the PEM."
    ),
)
def check_datastore_tls_configured(datastores: DataStoreEvidence) -> None:
    """The concepts page says a DataStore "requires TLS configuration for production use":
    the CA that verifies etcd and the client certificate the control planes' data is read
    and written with. An etcd DataStore without spec.tlsConfig, or without the CA
    certificate, the client certificate or its key, FAILs. (Kamaji's current CRD refuses
    such an etcd DataStore at creation through a CEL rule, added in 2025; a DataStore
    created by an older Kamaji, or before the rule, can still lack it.)
    """
    findings = []
    for store in _stores(datastores, etcd_only=True):
        if not store.tls_config:
            findings.append(
                f"{_name(store, datastores)} has no spec.tlsConfig: etcd is reached without TLS, which the concepts "
                f"page requires for production (source: {HCP_CONCEPTS})"
            )
            continue
        missing = [label for label in ("CA certificate", "client certificate", "client key") if label not in store.tls]
        if missing:
            findings.append(f"{_name(store, datastores)}: spec.tlsConfig names no {', no '.join(missing)}")
    fail_if(findings, source=HCP_CONCEPTS)


@check(
    id="ACP-HCP-014",
    title="every endpoint of an etcd DataStore answers over TLS with the DataStore's own certificates",
    severity=Severity.HIGH,
    scope=Scope.CLUSTER,
    applies=MANAGEMENT,
    tags=LIVE_TAGS,
    refs=[HCP_CONCEPTS, KAMAJI_DATASTORE],
    remediation=(
        "Make the DataStore's Secrets hold the CA that signed etcd's server certificates (with each endpoint's host "
        "name among their SANs) and a client certificate that etcd's --trusted-ca-file accepts, with its key; "
        "check that each endpoint's etcd member is up."
    ),
)
def check_datastore_endpoints_answer(datastores: DataStoreEvidence) -> None:
    """What the DataStore says must work: each endpoint's etcd answers
    (``/v3/maintenance/status``) over TLS, its certificate verified by the DataStore's CA
    for that host name, and etcd accepts the DataStore's client certificate, which is what
    the hosted control planes' data is written with. acpcheck connects with exactly those
    certificates, read from the Secrets the DataStore references into memory only.

    FAIL: the TLS material cannot be read (a Secret or key missing, not PEM, a key that is
    not the certificate's), a CA that does not verify the server, a client certificate etcd
    refuses, an endpoint that does not answer (through a management node, or on the runner's
    loopback; one at another address that does not answer the runner is MANUAL: the runner need
    not be on the management cluster's network). An endpoint with a cluster-internal name
    (a Service name, a one-label name, an address in the management cluster's pod or
    Service CIDR) is reached through a management-cluster node over SSH when the plan lists
    one in spec.managementCluster.sshNodes, and judged the same way; without one, and for a
    name the runner cannot resolve, it is MANUAL, naming it (unless another finding FAILs);
    so is a DataStore whose Secrets the kubeconfig's user may not read (acpcheck's
    permission, not the DataStore's defect).
    """
    findings, unprobed = [], []
    judged = 0
    for store in _stores(datastores, etcd_only=True):
        if not store.tls_config:
            continue  # ACP-HCP-013
        judged += 1
        name = _name(store, datastores)
        if store.credentials_problem:
            findings.append(f"{name}: {store.credentials_problem}")
            continue
        if store.credentials_unread:
            unprobed.append(f"{name}: not probed: {store.credentials_unread}")
            continue
        if not any(probe.outcome != "format" for probe in store.probes):  # nothing to connect to: no PASS
            unprobed.append(f"{name}: not probed: it lists no endpoint in host:port form (ACP-HCP-012)")
            continue
        for probe in store.probes:
            if probe.outcome == "ok" or probe.outcome == "format":  # format: ACP-HCP-012
                continue
            if probe.outcome == "not-probed":
                unprobed.append(f"{name}: {probe.endpoint} {probe.route}")
                continue
            findings.append(f"{name}: endpoint {probe.endpoint}: {probe.message}")
    if not judged:
        skip("not applicable: no etcd DataStore has a TLS configuration (ACP-HCP-013 reports it)")
    fail_if(findings, source=HCP_CONCEPTS)
    if unprobed:
        manual(
            "\n".join(unprobed)
            + "\nCheck from a management-cluster node that these endpoints answer over TLS with the DataStore's "
            "certificates (etcdctl --endpoints … --cacert --cert --key endpoint status)"
        )


def _expiry(label: str, certificate: Certificate) -> tuple[str, str] | None:
    """('fail'|'warn', finding) for a certificate that has expired or expires within EXPIRY_WARN_DAYS."""
    if certificate.days_left <= 0:
        return "fail", f"{label} ({certificate.subject}) expired on {certificate.not_after}"
    if certificate.days_left <= EXPIRY_WARN_DAYS:
        return (
            "warn",
            f"{label} ({certificate.subject}) expires in {certificate.days_left:.1f} days ({certificate.not_after})",
        )
    return None


@check(
    id="ACP-HCP-015",
    title=f"the certificates of every etcd DataStore are more than {EXPIRY_WARN_DAYS} days from expiry",
    severity=Severity.HIGH,
    scope=Scope.CLUSTER,
    applies=MANAGEMENT,
    tags=LIVE_TAGS,
    refs=[CERT_MONITORING, HCP_CONCEPTS],
    remediation=(
        "Renew the etcd CA, the DataStore's client certificate or the etcd server certificates before they expire, "
        "and update the DataStore's Secrets."
    ),
)
def check_datastore_certificates_not_expiring(datastores: DataStoreEvidence) -> None:
    """When a DataStore's CA, its client certificate or an etcd member's server certificate
    expires, the hosted control planes can no longer reach their data. An expired one FAILs.
    One that expires within EXPIRY_WARN_DAYS (30) days WARNs: a threshold chosen by
    acpcheck, the point at which ACP's certificate monitoring raises its Medium alert.
    Certificates are judged as of the moment they were read (a replay agrees).
    """
    found: list[tuple[str, str]] = []
    known = 0
    for store in _stores(datastores, etcd_only=True):
        name = _name(store, datastores)
        labelled = [(f"{name}: the CA certificate", cert) for cert in store.ca_certificates]
        if store.client_certificate is not None:
            labelled.append((f"{name}: the client certificate", store.client_certificate))
        labelled += [
            (f"{name}: etcd's server certificate at {probe.endpoint}", probe.server_certificate)
            for probe in store.probes
            if probe.server_certificate is not None
        ]
        known += len(labelled)
        found += [judged for label, cert in labelled if (judged := _expiry(label, cert)) is not None]
    if not known:
        skip("not applicable: no DataStore certificate could be read (ACP-HCP-013 and -014 say why)")
    fail_if([text for level, text in found if level == "fail"], threshold_days=EXPIRY_WARN_DAYS)
    if found:
        warn("\n".join(text for _, text in found), threshold_days=EXPIRY_WARN_DAYS)
