"""Where the cluster's images come from, proven from every node before install.

"Creating an On-Premise Cluster", Image Registry: a cluster pulls from the platform's
built-in registry, a private registry ("uses your own image registry. For details on
pushing required images to your registry, contact technical support") or the public one.
For a private registry every node must reach its API over TLS, log in with the account,
and find the images there; the docs publish no list of required images, so the plan
names a sample (``spec.registry.images``). Every node asks the registry itself
(``acpcheck.sources.images``: ``GET /v2/`` and manifest ``HEAD`` requests from the node,
with its own trust or the plan's CA; nothing is pulled), one result per node.

What makes each check FAIL (the lab scenario ``private-registry``):

- ACP-IMG-001: the registry's certificate has expired, does not list the address the
  plan uses (SANs), or comes from a CA neither the node nor ``registry.caFile`` trusts;
  or the connection is refused or times out; or ``/v2/`` is not a registry API.
- ACP-IMG-002: ``/v2/`` gives 401 with the plan's credential (a wrong password), or the
  registry wants credentials and the plan gives none.
- ACP-IMG-003: an image the plan names has no manifest there (404), or is refused.
- ACP-REG-009: with the built-in registry's external address, the docs' test pull (step
  5, a small image's manifest through the domain) does not succeed from a node.
"""

from __future__ import annotations

from dataclasses import dataclass

from acpcheck import NodeContext, Scope, Severity, When, check, fail, manual, skip
from acpcheck.checks.support import conclude, listed
from acpcheck.constants import ACP_DOCS, ON_PREMISES
from acpcheck.model.plan import ClusterPlan
from acpcheck.sources.base import TargetUnavailable
from acpcheck.sources.images import DOCS_TEST_IMAGE, REQUEST_TIMEOUT, ImagesEvidence, NodeProbe

#: "Add External Address for Built-in Registry" (step 5 is the test pull).
REGISTRY_ADDRESS_PAGE = f"{ACP_DOCS}/4.3/configure/clusters/how-to/add_external_addr_for_global_registry.html"
TAGS = frozenset({"registry", "images"})


@dataclass(frozen=True)
class RegistryType(When):
    """Applies to plans whose ``spec.registry`` is of ``kind``: ``private`` (with an address), or
    ``external`` (the built-in registry, ``platform``, with an external address)."""

    kind: str = "private"

    def not_applicable(self, plan: ClusterPlan) -> str | None:
        reason = super().not_applicable(plan)
        if reason:
            return reason
        registry = plan.spec.registry
        if self.kind == "private" and registry.type != "private":
            return f"not applicable: registry.type is {registry.type}, not private"
        if self.kind == "external" and (registry.type != "platform" or registry.external_address is None):
            return (
                "not applicable: the plan gives no external address of the built-in registry "
                "(registry.type platform with registry.externalAddress)"
            )
        return None

    def describe(self) -> str:
        what = "registry.type private" if self.kind == "private" else "registry.type platform with externalAddress"
        return ", ".join([super().describe(), what])


PRIVATE = RegistryType(kind="private", upgrade=False)
EXTERNAL = RegistryType(kind="external")


def _probe(node: NodeContext, images: ImagesEvidence) -> NodeProbe:
    """This node's view of the registry; ERROR (never FAIL) when none was taken."""
    if images.mode != "probe":
        skip(images.reason or f"no registry probe ({images.mode})")
    if node.name in images.unreachable:
        raise TargetUnavailable(node.spec.target, "unreachable", images.unreachable[node.name])
    probe = images.nodes.get(node.name)
    if probe is None:
        raise TargetUnavailable(node.spec.target, "unreachable", "no probe ran on this node")
    if probe.notool:
        manual(
            f"{node.name} has no python3 to ask the registry with: run there "
            "`curl -sS -o /dev/null -w '%{http_code}' "
            f"{'--cacert <registry.caFile> ' if images.trust.startswith('registry.caFile') else ''}"
            f"https://{images.address}/v2/` (expect 401, then 200 with `-u <user>`, which prompts for the password)"
        )
    if probe.error:
        raise TargetUnavailable(node.spec.target, "probe", f"the registry probe did not run: {probe.error}")
    return probe


#: What a connection that got no TLS session says, by outcome.
_CONNECTION = {
    "refused": "the connection was refused (nothing listens there?)",
    "timeout": f"no answer within {REQUEST_TIMEOUT:g} s (a firewall, or a wrong address?)",
    "unresolved": "the name does not resolve on this node",
}


def _tls_finding(node: NodeContext, images: ImagesEvidence, probe: NodeProbe) -> str:
    why = _CONNECTION.get(probe.tls, probe.tls_detail or probe.tls)
    if probe.tls in ("unreachable", "error", "tls", "protocol") and probe.tls_detail:
        why = f"{probe.tls}: {probe.tls_detail}"
    line = f"{node.name} cannot use the registry API at https://{images.address}/v2/: {why}"
    cert = probe.certificate
    if cert is not None:
        line += (
            f" [the certificate it served: subject {cert.subject}, issuer {cert.issuer}, SANs "
            f"{listed(cert.sans)}, valid until {cert.not_after}{' (expired)' if cert.expired else ''}]"
        )
    return line


def _connected(node: NodeContext, images: ImagesEvidence, probe: NodeProbe, check_id: str = "ACP-IMG-001") -> None:
    """SKIP what cannot be told without a TLS session: that is ACP-IMG-001's finding (one cause, one result)."""
    if probe.tls != "ok":
        skip(f"not verified: {node.name} has no TLS session with {images.address} (see {check_id})")


@check(
    id="ACP-IMG-001",
    title="this node reaches the private registry's API (/v2/) over TLS, trusting its certificate",
    severity=Severity.HIGH,
    scope=Scope.NODE,
    applies=PRIVATE,
    refs=[ON_PREMISES],
    remediation=(
        "Give the registry a certificate that is current, lists the address the plan uses (host or IP) in its "
        "SANs and is signed by a CA the nodes trust (add the CA to each node's trust store, or name it in "
        "registry.caFile); open the registry's port from every node."
    ),
    tags=TAGS,
)
def check_registry_tls(node: NodeContext, images: ImagesEvidence) -> None:
    """A private registry serves every image of the install, so every node must reach its
    API over TLS with a certificate it trusts: the node's own trust store, or the CA the plan
    names (``registry.caFile``, sent to the node for this probe only). The node asks
    ``GET https://<address>/v2/`` (5 s per request, ours); a certificate that has expired,
    is not valid for the address (SANs) or is signed by an unknown CA FAILs, naming which,
    as does a connection refused or timed out, and a ``/v2/`` that is not a registry API
    (neither 200 nor 401)."""
    probe = _probe(node, images)
    if probe.tls != "ok":
        fail(_tls_finding(node, images, probe), address=images.address, tls=probe.tls, trust=images.trust)
    if probe.anonymous not in (200, 401):
        fail(
            f"{node.name}: https://{images.address}/v2/ answered {probe.anonymous}, not a registry API (200 or 401)",
            address=images.address,
            status=probe.anonymous,
        )


@check(
    id="ACP-IMG-002",
    title="the plan's registry credential logs in from this node: /v2/ gives 401 without it and 200 with it",
    severity=Severity.HIGH,
    scope=Scope.NODE,
    applies=PRIVATE,
    refs=[ON_PREMISES],
    remediation=(
        "Fix the account in registry.credential (user name, and the password in its passwordFile or passwordEnv), "
        "or give one when the registry asks for credentials."
    ),
    tags=TAGS,
)
def check_registry_login(node: NodeContext, images: ImagesEvidence) -> None:
    """The nodes pull with the account the plan gives. Without credentials ``/v2/`` must
    answer 401 (the registry asks), with them 200: the Basic scheme, or a Bearer token from
    the challenge's realm (Harbor, the distribution registry's token flow). The password
    is read on the machine that runs acpcheck and reaches the node on the probe's standard
    input only; no message says it. A registry that lets anyone in (200 without
    credentials) cannot tell a right password from a wrong one: MANUAL."""
    probe = _probe(node, images)
    _connected(node, images, probe)
    if images.credential_error:
        raise TargetUnavailable(node.spec.target, "credential", images.credential_error)
    if not images.credential:
        if probe.anonymous == 401:
            fail(
                f"{node.name}: the registry {images.address} asks for credentials (/v2/ gives 401 without) and the "
                "plan gives none (registry.credential)",
                address=images.address,
                anonymous=401,
            )
        skip("the plan gives no credential (registry.credential) and the registry lets anyone in")
    if probe.anonymous == 200:
        manual(
            f"{node.name}: the registry {images.address} answers /v2/ with 200 without credentials: whether "
            f"{images.credential} is right cannot be told from /v2/; verify a login by hand (docker/nerdctl login)"
        )
    if probe.login == 200:
        return
    if probe.login == 401 or probe.token_status == 401:
        where = " (its token endpoint)" if probe.scheme == "bearer" else ""
        fail(
            f"{node.name}: the registry {images.address} refuses the plan's credential, {images.credential}: "
            f"/v2/{where} gives 401 with it (a wrong user name or password)",
            address=images.address,
            anonymous=probe.anonymous,
            login=401,
        )
    fail(
        f"{node.name}: logging in to {images.address} with {images.credential} gave "
        f"{probe.login if probe.login is not None else probe.login_detail or 'no answer'}, not 200",
        address=images.address,
        anonymous=probe.anonymous,
        login=probe.login,
    )


@check(
    id="ACP-IMG-003",
    title="every image the plan names is in the private registry, as this node sees it (manifest requests)",
    severity=Severity.HIGH,
    scope=Scope.NODE,
    applies=PRIVATE,
    refs=[ON_PREMISES],
    remediation=(
        "Push the missing images to the registry (the docs: 'for details on pushing required images to your "
        "registry, contact technical support'), or correct their names in registry.images."
    ),
    tags=TAGS,
)
def check_registry_images(node: NodeContext, images: ImagesEvidence) -> None:
    """The install pulls its images from the private registry, so they must be there before
    it starts. The docs publish no list of required images (they refer to technical
    support), so the plan names them, or a sample (``registry.images``). Each is asked for
    with ``HEAD /v2/<repository>/manifests/<tag>`` and the OCI and Docker manifest and
    index media types in ``Accept``, with the plan's credential: 200 is present, 404 is
    missing (FAIL, naming the image), 401/403 is refused (FAIL). Nothing is pulled."""
    if not images.images:
        skip(
            "the plan names no images (registry.images); the ACP docs publish no list of required images, so "
            "name the ones your release needs"
        )
    probe = _probe(node, images)
    _connected(node, images, probe)
    if probe.anonymous == 401 and probe.login != 200:
        skip(f"not verified: {node.name} is not logged in to {images.address} (see ACP-IMG-002)")
    missing = [answer.image for answer in probe.images if answer.status == 404]
    refused = [f"{answer.image} ({answer.status})" for answer in probe.images if answer.status in (401, 403)]
    other = [
        f"{answer.image} ({answer.status if answer.status is not None else answer.detail})"
        for answer in probe.images
        if answer.status not in (200, 404, 401, 403) and not answer.detail.startswith("names another registry")
    ]
    elsewhere = [answer.image for answer in probe.images if answer.detail.startswith("names another registry")]
    findings = []
    if missing:
        findings.append(f"{node.name}: not in {images.address} (manifest 404): {listed(missing)}")
    if refused:
        findings.append(
            f"{node.name}: {images.address} refuses the manifest of {listed(refused)}"
            + (f" with {images.credential}" if images.credential else " without credentials")
        )
    if other:
        findings.append(f"{node.name}: no answer for the manifest of {listed(other)}")
    unknown = [f"not checked, another registry than {images.address}: {listed(elsewhere)}"] if elsewhere else []
    present = sum(answer.status == 200 for answer in probe.images)
    conclude(findings, unknown=unknown, address=images.address, present=present, missing=missing)


@check(
    id="ACP-REG-009",
    title="a test pull of a small image's manifest through the built-in registry's external address succeeds",
    severity=Severity.MEDIUM,
    scope=Scope.NODE,
    applies=EXTERNAL,
    refs=[REGISTRY_ADDRESS_PAGE],
    remediation=(
        "Fix what the message names: the domain's certificate (current, for the domain, from a CA the nodes "
        "trust), the forwarding from the domain's address to the global control-plane nodes on 443, or the image "
        "named in registry.images (the docs test with automation/qaimages:helloworld)."
    ),
    tags=TAGS,
)
def check_external_address_test_pull(node: NodeContext, images: ImagesEvidence) -> None:
    """ "Add External Address for Built-in Registry", step 5: "test the configuration by
    pulling an image from the registry using the domain name" (``crictl pull
    <registry-domain-name>/automation/qaimages:helloworld``). Each node of the plan asks for
    the manifest of the first image in ``registry.images`` (else the docs' example image)
    through ``https://<domain>/v2/``, trusting its own CAs or ``registry.caFile``: what a
    pull does first, without downloading layers. The domain must resolve on the node."""
    image = images.images[0] if images.images else DOCS_TEST_IMAGE
    probe = _probe(node, images)
    if probe.tls != "ok":
        fail(_tls_finding(node, images, probe), domain=images.address, tls=probe.tls)
    answer = next((a for a in probe.images if a.image == image), None)
    if answer is None or answer.status == 200:
        if answer is None:
            raise TargetUnavailable(node.spec.target, "probe", f"no answer about {image} was recorded")
        return
    if answer.status == 404:
        fail(f"{node.name}: {image} is not in the registry behind {images.address} (manifest 404)", image=image)
    if answer.status in (401, 403):
        fail(
            f"{node.name}: the registry behind {images.address} refuses the manifest of {image} ({answer.status})"
            + (f" with {images.credential}" if images.credential else " without credentials (registry.credential)"),
            image=image,
        )
    fail(
        f"{node.name}: the test pull of {image} through {images.address} gave "
        f"{answer.status if answer.status is not None else answer.detail}",
        image=image,
    )
