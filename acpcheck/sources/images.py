"""Registry evidence: what every node sees of the image registry it will pull from.

``ImagesSource`` (``images``, order 25), from every node over its SSH session (the run's
pool; ``nodes_to_probe`` leaves out the nodes whose facts could not be gathered, with why):
the node program ``nodeprograms/registry_probe.py`` (``python3 -S``, the standard library
only; ``platform-python`` on RHEL 8) asks the registry's API, as the node's container runtime
would:

1. ``GET /v2/`` over TLS, trusting the node's own CAs, or the plan's ``registry.caFile``
   (its PEM text goes to the node on stdin); when verification fails, the certificate the
   registry served is fetched unverified and read here (subject, SANs, expiry);
2. the same request without credentials (its status and challenge scheme), and with the
   plan's credential: Basic, or a Bearer token from the challenge's realm (the
   distribution registry's token flow, what Harbor and the built-in registry use);
3. ``HEAD /v2/<repository>/manifests/<tag|digest>`` per image, with the OCI and Docker
   manifest (list) media types in ``Accept``: presence, not a pull.

Which registry: ``registry.type: private``: ``registry.address`` (purpose ``private``,
ACP-IMG-001…003); ``registry.type: platform`` with an external address: the domain on
443 and one image (purpose ``external``, ACP-REG-009). Otherwise nothing is probed
(mode ``none``, with why). It runs before and after install alike: a registry read is
the same either way.

The password (``credential.passwordFile``/``passwordEnv``) is read here and reaches each
node only on the program's standard input: never on a command line, in the environment,
in the evidence or in a message. Evidence keeps status codes, media types and digests.
"""

from __future__ import annotations

import base64
import json
import ssl
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from acpcheck.sources.base import EvidenceDocument, GatherContext, JsonEvidenceSource, nodes_to_probe
from acpcheck.sources.nodeside import NODES_AT_ONCE, node_program

if TYPE_CHECKING:
    from acpcheck.model.plan import ClusterPlan, Node

#: Seconds each request may take on the node (ours: a registry answers /v2/ in milliseconds).
REQUEST_TIMEOUT = 5.0
#: The image the docs' test pull uses ("Add External Address for Built-in Registry", step 5),
#: for ACP-REG-009 when the plan names none.
DOCS_TEST_IMAGE = "automation/qaimages:helloworld"
HTTPS_PORT = 443


class Certificate(BaseModel):
    """The certificate a registry served, read when its verification failed."""

    model_config = ConfigDict(extra="forbid")

    subject: str = ""
    issuer: str = ""
    sans: list[str] = Field(default_factory=list)
    not_after: str = ""
    expired: bool = False


class ImageAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    image: str
    status: int | None = None  # 200 present, 404 missing, 401/403 denied; None: no HTTP answer
    media_type: str = ""
    digest: str = ""
    detail: str = ""


class NodeProbe(BaseModel):
    """What one node saw of the registry."""

    model_config = ConfigDict(extra="forbid")

    error: str = ""  # the probe could not run (transport), or the node has no Python
    notool: bool = False
    tls: str = ""  # ok | expired | hostname | unknown-ca | not-yet-valid | refused | timeout | unreachable | …
    tls_detail: str = ""
    certificate: Certificate | None = None
    anonymous: int | None = None  # /v2/ status without credentials
    scheme: str = ""  # the challenge: basic | bearer | ""
    login: int | None = None  # /v2/ status with the credential
    token_status: int | None = None  # the token endpoint's status (bearer)
    login_detail: str = ""
    images: list[ImageAnswer] = Field(default_factory=list)


class ImagesEvidence(EvidenceDocument):
    """The ``images`` evidence. mode: probe | none (nothing to probe: ``reason``) | error."""

    schema_: str = Field(default="acpcheck/images/v1", alias="schema")
    purpose: str = ""  # private | external
    address: str = ""  # host[:port] probed
    trust: str = ""  # "registry.caFile (<path>)" or "the node's own trust store"
    credential: str = ""  # "user <name> (passwordFile)": never the password
    credential_error: str = ""  # the password could not be read
    images: list[str] = Field(default_factory=list)
    nodes: dict[str, NodeProbe] = Field(default_factory=dict)
    unreachable: dict[str, str] = Field(default_factory=dict)  # node -> why no probe ran
    seconds: float = 0.0


def split_reference(image: str, address: str) -> tuple[str, str] | None:
    """(repository, tag or digest) of an image reference on ``address``; None when it names another registry."""
    rest = image
    if "/" in image:
        first, remainder = image.split("/", 1)
        if first == address:
            rest = remainder
        elif "." in first or ":" in first or first == "localhost" or first.startswith("["):
            return None
    if "@" in rest:
        repository, digest = rest.split("@", 1)
        return repository.rsplit(":", 1)[0] if ":" in repository.rsplit("/", 1)[-1] else repository, digest
    last = rest.rsplit("/", 1)[-1]
    if ":" in last:
        repository, tag = rest.rsplit(":", 1)
        return repository, tag
    return rest, "latest"


def registry_command() -> str:
    """The sh command line of the probe: the first Python the node has, else ``acpcheck-notool``."""
    import shlex

    return "\n".join(
        [
            f"PY={shlex.quote(node_program('registry_probe.py'))}",
            "for P in python3 platform-python /usr/libexec/platform-python; do",
            '  case $P in /*) [ -x "$P" ] || continue ;; *) command -v "$P" >/dev/null 2>&1 || continue ;; esac',
            '  exec "$P" -S -c "$PY"',
            "done",
            "echo acpcheck-notool",
            "exit 3",
        ]
    )


def read_certificate(der_b64: str) -> Certificate | None:
    if not der_b64:
        return None
    import datetime as dt

    from cryptography import x509

    try:
        cert = x509.load_der_x509_certificate(base64.b64decode(der_b64))
    except ValueError:
        return None
    try:
        sans = [str(name.value) for name in cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value]
    except x509.ExtensionNotFound:
        sans = []
    not_after = cert.not_valid_after_utc
    return Certificate(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        sans=sans,
        not_after=not_after.isoformat(),
        expired=not_after < dt.datetime.now(dt.UTC),
    )


def tls_problem(code: int | None, detail: str, trust: str, ca_pem: str | None) -> tuple[str, str]:
    """(kind, sentence) of a failed verification the node reported, in acpcheck.tlserrors' words."""
    from acpcheck.tlserrors import describe_tls_error

    error = ssl.SSLCertVerificationError(1, f"[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: {detail}")
    error.verify_code = code if code is not None else 0
    error.verify_message = detail
    problem = describe_tls_error(error, trusted=trust, ca_pem=ca_pem)
    return problem.kind, problem.message


def parse_probe(stdout: str, trust: str, ca_pem: str | None) -> NodeProbe:
    """The node program's lines, judged."""
    result = NodeProbe()
    if "acpcheck-notool" in stdout.split():
        return NodeProbe(notool=True, error="no python3 or platform-python on the node")
    done = False
    for line in stdout.splitlines():
        if not line.startswith("acpcheck-reg "):
            continue
        try:
            step: dict[str, Any] = json.loads(line.split(" ", 1)[1])
        except ValueError:
            continue
        kind = step.get("step")
        if kind == "tls":
            outcome = str(step.get("outcome", ""))
            detail = str(step.get("detail", ""))[:300]
            if outcome == "verify":
                result.tls, result.tls_detail = tls_problem(step.get("code"), detail, trust, ca_pem)
                result.certificate = read_certificate(str(step.get("certificate", "")))
            else:
                result.tls, result.tls_detail = outcome, detail
        elif kind == "anonymous":
            result.anonymous, result.scheme = step.get("status"), str(step.get("scheme", ""))
        elif kind == "login":
            result.login, result.token_status = step.get("status"), step.get("tokenStatus")
            result.login_detail = str(step.get("detail", ""))[:300]
        elif kind == "image":
            result.images.append(
                ImageAnswer(
                    image=str(step.get("image", "")),
                    status=step.get("status"),
                    media_type=str(step.get("mediaType", "")),
                    digest=str(step.get("digest", "")),
                    detail=str(step.get("detail", ""))[:300],
                )
            )
        elif kind == "done":
            done = True
    if not done and not result.error:
        result.error = "the probe ended before it was done"
    return result


class ImagesSource(JsonEvidenceSource):
    name: ClassVar[str] = "images"
    order: ClassVar[int] = 25
    model = ImagesEvidence
    what = "registry evidence"

    def gather(self, context: GatherContext) -> Any:
        """No live gate: reading a registry is the same before and after install."""
        started = time.monotonic()
        evidence = self.collect(context, None)
        evidence.seconds = round(time.monotonic() - started, 3)
        return evidence

    def collect(self, context: GatherContext, reason: str | None) -> ImagesEvidence:
        from acpcheck.transport.errors import TransportError
        from acpcheck.transport.settings import SecretRef

        plan = context.plan
        registry = plan.spec.registry
        if registry.type == "private" and registry.address:
            purpose, address, images = "private", registry.address.split("://")[-1].rstrip("/"), list(registry.images)
        elif registry.type == "platform" and registry.external_address is not None:
            purpose, address = "external", registry.external_address.domain
            images = list(registry.images[:1]) or [DOCS_TEST_IMAGE]
        else:
            return ImagesEvidence(
                mode="none",
                reason="the plan names no registry to probe (registry.type private with an address, or platform "
                "with an externalAddress)",
            )
        if not plan.spec.nodes:
            return ImagesEvidence(mode="none", reason="the plan lists no nodes")
        ca_pem = None
        trust = "the node's own trust store"
        if registry.ca_file:
            path = plan.relative_file(registry.ca_file)
            try:
                ca_pem = path.read_text(encoding="utf-8")
            except (OSError, UnicodeError) as error:
                return ImagesEvidence(mode="error", reason=f"registry.caFile {path}: {type(error).__name__}")
            if "-----BEGIN CERTIFICATE-----" not in ca_pem:
                return ImagesEvidence(mode="error", reason=f"registry.caFile {path}: no PEM certificate in it")
            trust = f"registry.caFile ({registry.ca_file})"
        username = password = None
        credential = credential_error = ""
        if registry.credential is not None:
            cred = registry.credential
            ref = (
                SecretRef("registry password", file=plan.relative_file(cred.password_file))
                if cred.password_file
                else SecretRef("registry password", env=cred.password_env)
            )
            credential = f"user {cred.username} ({'passwordFile' if cred.password_file else 'passwordEnv'})"
            try:
                username, password = cred.username, ref.read()
            except TransportError as error:
                credential_error = error.message
                username = password = None
        wanted = []
        for image in images:
            split = split_reference(image, address)
            if split is not None:
                wanted.append({"name": image, "repository": split[0], "reference": split[1]})
        evidence = ImagesEvidence(
            mode="probe",
            purpose=purpose,
            address=address,
            trust=trust,
            credential=credential,
            credential_error=credential_error,
            images=images,
        )
        reachable, failed = nodes_to_probe(context, plan.spec.nodes)
        evidence.unreachable.update(failed)
        request = json.dumps(
            {
                "address": address,
                "ca": ca_pem,
                "username": username,
                "password": password,
                "images": wanted,
                "timeout": REQUEST_TIMEOUT,
            }
        )
        budget = 15 + REQUEST_TIMEOUT * (3 + 2 * len(wanted))
        command = registry_command()

        def probe(node: Node) -> tuple[str, NodeProbe]:
            try:
                run = context.pool.session(node).run(command, timeout=budget, stdin=request)
            except TransportError as error:
                return node.name, NodeProbe(error=f"{error.kind}: {error.message}")
            except Exception as error:  # noqa: BLE001 - one node's surprise is that node's ERROR
                return node.name, NodeProbe(error=f"probe: {type(error).__name__}")
            return node.name, parse_probe(run.stdout, trust, ca_pem)

        with ThreadPoolExecutor(max_workers=max(1, min(NODES_AT_ONCE, len(reachable)))) as executor:
            for done, (name, result) in enumerate(executor.map(probe, reachable), 1):
                evidence.nodes[name] = result
                if context.progress is not None:
                    context.progress("images", done, len(reachable), name, not result.error)
        for image in (i for i in images if split_reference(i, address) is None):
            for result in evidence.nodes.values():
                result.images.append(ImageAnswer(image=image, detail=f"names another registry than {address}"))
        return evidence

    def idle_fields(self, plan: ClusterPlan) -> dict[str, Any]:
        return {}
