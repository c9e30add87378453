"""The registry checks (checks/images.py) as tables over hand-made evidence, a pass and a
failing row for every check and the cases the lab cannot make (a registry that lets anyone
in, a Bearer token refused, a node without Python); the plan fields' bad input (file:line:
field, no secret echoed); how image references split; and how the node program's lines are
read. The real registry, from real nodes, is tests/lab/test_images_on_lab.py."""

from __future__ import annotations

import base64
import http.server
import json
import secrets
import ssl
import subprocess
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from nodes.conftest import node_context, plan_with

from acpcheck.checks import images as checks
from acpcheck.errors import InputError
from acpcheck.matrix import known_acp_versions
from acpcheck.model.plan import plan_from_document
from acpcheck.sources.images import (
    DOCS_TEST_IMAGE,
    ImageAnswer,
    ImagesEvidence,
    NodeProbe,
    parse_probe,
    registry_command,
    split_reference,
)
from acpcheck.testing import run_check
from acpcheck.yamlsource import parse_yaml

PRIVATE = plan_with(
    {
        "spec": {
            "registry": {
                "type": "private",
                "address": "registry.example.com:5000",
                "credential": {"username": "puller", "passwordEnv": "REGISTRY_PASSWORD"},
                "images": ["acp/pause:3.10", "acp/etcd:v3.5.21"],
            }
        }
    }
)
EXTERNAL = plan_with(
    {
        "spec": {
            "registry": {
                "type": "platform",
                "externalAddress": {"domain": "registry.example.com", "certFile": "tls.crt", "keyFile": "tls.key"},
            }
        }
    }
)
CANARY = "canary-Reg1stry-pw"


def evidence(probe: NodeProbe | None = None, **fields: Any) -> ImagesEvidence:
    base: dict[str, Any] = {
        "mode": "probe",
        "purpose": "private",
        "address": "registry.example.com:5000",
        "trust": "the node's own trust store",
        "credential": "user puller (passwordEnv)",
        "images": ["acp/pause:3.10", "acp/etcd:v3.5.21"],
    }
    base.update(fields)
    document = ImagesEvidence(**base)
    if probe is not None:
        document.nodes["cp1"] = probe
    return document


def healthy(**changes: Any) -> NodeProbe:
    probe = NodeProbe(
        tls="ok",
        anonymous=401,
        scheme="basic",
        login=200,
        images=[ImageAnswer(image="acp/pause:3.10", status=200), ImageAnswer(image="acp/etcd:v3.5.21", status=200)],
    )
    return probe.model_copy(update=changes)


def run(check: Any, given: ImagesEvidence, plan: Any = PRIVATE) -> Any:
    return run_check(check, plan, node=node_context("cp1", plan), images=given)


CASES = [
    # (check, evidence, status, words)
    (checks.check_registry_tls, evidence(healthy()), "pass", []),
    (
        checks.check_registry_tls,
        evidence(healthy(tls="refused", anonymous=None)),
        "fail",
        ["cp1 cannot use", "connection was refused"],
    ),
    (checks.check_registry_tls, evidence(healthy(tls="timeout", anonymous=None)), "fail", ["no answer within 5 s"]),
    (checks.check_registry_tls, evidence(healthy(anonymous=404)), "fail", ["answered 404, not a registry API"]),
    (checks.check_registry_tls, evidence(unreachable={"cp1": "auth: refused"}), "error", ["auth: refused"]),
    (checks.check_registry_tls, evidence(NodeProbe(error="timeout: no answer")), "error", ["did not run"]),
    (checks.check_registry_tls, evidence(NodeProbe(notool=True)), "manual", ["no python3", "curl"]),
    (checks.check_registry_login, evidence(healthy()), "pass", []),
    (checks.check_registry_login, evidence(healthy(login=401)), "fail", ["gives 401 with it", "user puller"]),
    (
        checks.check_registry_login,
        evidence(healthy(scheme="bearer", login=None, token_status=401)),
        "fail",
        ["its token endpoint", "401"],
    ),
    (checks.check_registry_login, evidence(healthy(login=500)), "fail", ["gave 500"]),
    (checks.check_registry_login, evidence(healthy(anonymous=200)), "manual", ["without credentials"]),
    (
        checks.check_registry_login,
        evidence(healthy(login=None), credential=""),
        "fail",
        ["asks for credentials", "plan gives none"],
    ),
    (checks.check_registry_login, evidence(healthy(anonymous=200, login=None), credential=""), "skip", []),
    (
        checks.check_registry_login,
        evidence(healthy(login=None), credential_error="registry password: environment variable X is not set"),
        "error",
        ["is not set"],
    ),
    (checks.check_registry_login, evidence(healthy(tls="expired")), "skip", ["ACP-IMG-001"]),
    (checks.check_registry_images, evidence(healthy()), "pass", []),
    (
        checks.check_registry_images,
        evidence(
            healthy(
                images=[
                    ImageAnswer(image="acp/pause:3.10", status=200),
                    ImageAnswer(image="acp/etcd:v3.5.21", status=404),
                ]
            )
        ),
        "fail",
        ["cp1: not in registry.example.com:5000 (manifest 404): acp/etcd:v3.5.21"],
    ),
    (
        checks.check_registry_images,
        evidence(healthy(images=[ImageAnswer(image="acp/pause:3.10", status=403)])),
        "fail",
        ["refuses the manifest of acp/pause:3.10 (403)"],
    ),
    (
        checks.check_registry_images,
        evidence(
            healthy(
                images=[
                    ImageAnswer(image="acp/pause:3.10", status=200),
                    ImageAnswer(image="quay.io/x/y:1", detail="names another registry than registry.example.com:5000"),
                ]
            )
        ),
        "manual",
        ["quay.io/x/y:1"],
    ),
    (checks.check_registry_images, evidence(healthy(login=401)), "skip", ["ACP-IMG-002"]),
    (checks.check_registry_images, evidence(healthy(), images=[]), "skip", ["publish no list"]),
]


@pytest.mark.parametrize(("check", "given", "status", "words"), CASES)
def test_private_registry_checks(check: Any, given: ImagesEvidence, status: str, words: list[str]) -> None:
    result = run(check, given)
    assert (result.status, result.target) == (status, "node:cp1"), result.message
    assert all(word in result.message for word in words), result.message


def external(probe: NodeProbe) -> ImagesEvidence:
    return evidence(probe, purpose="external", address="registry.example.com", images=[DOCS_TEST_IMAGE], credential="")


@pytest.mark.parametrize(
    ("probe", "status", "words"),
    [
        (NodeProbe(tls="ok", anonymous=200, images=[ImageAnswer(image=DOCS_TEST_IMAGE, status=200)]), "pass", []),
        (NodeProbe(tls="ok", anonymous=200, images=[ImageAnswer(image=DOCS_TEST_IMAGE, status=404)]), "fail", ["404"]),
        (
            NodeProbe(tls="ok", anonymous=401, images=[ImageAnswer(image=DOCS_TEST_IMAGE, status=401)]),
            "fail",
            ["refuses", "without credentials"],
        ),
        (NodeProbe(tls="hostname", tls_detail="hostname mismatch: x"), "fail", ["hostname mismatch"]),
    ],
)
def test_external_address_test_pull(probe: NodeProbe, status: str, words: list[str]) -> None:
    result = run(checks.check_external_address_test_pull, external(probe), EXTERNAL)
    assert result.status == status, result.message
    assert all(word in result.message for word in words), result.message


def test_applicability() -> None:
    assert checks.PRIVATE.not_applicable(PRIVATE) is None
    assert "not private" in (checks.PRIVATE.not_applicable(EXTERNAL) or "")
    assert checks.EXTERNAL.not_applicable(EXTERNAL) is None
    assert "externalAddress" in (checks.EXTERNAL.not_applicable(PRIVATE) or "")


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("acp/pause:3.10", ("acp/pause", "3.10")),
        ("acp/pause", ("acp/pause", "latest")),
        ("registry.example.com:5000/acp/pause:3.10", ("acp/pause", "3.10")),
        ("acp/pause@sha256:" + "a" * 64, ("acp/pause", "sha256:" + "a" * 64)),
        ("acp/pause:3.10@sha256:" + "b" * 64, ("acp/pause", "sha256:" + "b" * 64)),
        ("quay.io/acp/pause:3.10", None),
        ("localhost/acp/pause", None),
    ],
)
def test_split_reference(image: str, expected: tuple[str, str] | None) -> None:
    assert split_reference(image, "registry.example.com:5000") == expected


def line(**fields: Any) -> str:
    return "acpcheck-reg " + json.dumps(fields)


def test_parse_probe_reads_each_step() -> None:
    out = "\n".join(
        [
            "noise",
            line(step="tls", outcome="ok"),
            line(step="anonymous", status=401, scheme="basic"),
            line(step="login", status=200, tokenStatus=None),
            line(step="image", image="acp/pause:3.10", status=200, mediaType="application/x", digest="sha256:1"),
            line(step="done"),
        ]
    )
    probe = parse_probe(out, "the node's own trust store", None)
    assert (probe.tls, probe.anonymous, probe.scheme, probe.login, probe.error) == ("ok", 401, "basic", 200, "")
    assert probe.images[0].digest == "sha256:1"


@pytest.mark.parametrize(
    ("code", "kind"), [(10, "expired"), (62, "hostname"), (64, "hostname"), (20, "unknown-ca"), (9, "not-yet-valid")]
)
def test_parse_probe_names_the_certificate_problem(code: int, kind: str) -> None:
    out = line(step="tls", outcome="verify", detail="certificate verify failed", code=code) + "\n" + line(step="done")
    assert parse_probe(out, "registry.caFile (ca.pem)", None).tls == kind


def test_parse_probe_without_python_or_end() -> None:
    assert parse_probe("acpcheck-notool\n", "", None).notool
    assert parse_probe(line(step="tls", outcome="ok"), "", None).error == "the probe ended before it was done"


def test_the_probe_command_carries_no_secret() -> None:
    command = registry_command()
    assert "password" not in command.split("PY=", 1)[0]
    assert "acpcheck-notool" in command


def load(registry: dict[str, Any]) -> Any:
    data = yaml.safe_load(yaml.safe_dump(plan_with().model_dump(mode="json", by_alias=True, exclude_none=True)))
    data["spec"]["registry"] = registry
    return plan_from_document(parse_yaml(yaml.safe_dump(data), "bad-plan.yaml"), known_acp_versions())


@pytest.mark.parametrize(
    ("registry", "field", "words"),
    [
        (
            {"type": "private", "address": "r:5000", "credential": {"username": "u", "password": CANARY}},
            "spec.registry.credential.password",
            "literal secrets are refused",
        ),
        (
            {"type": "private", "address": "r:5000", "credential": {"username": "u"}},
            "spec.registry.credential",
            "passwordFile or passwordEnv",
        ),
        (
            {
                "type": "private",
                "address": "r:5000",
                "credential": {"username": "u", "passwordFile": "pw", "passwordEnv": "PW"},
            },
            "spec.registry.credential",
            "exactly one",
        ),
        ({"type": "private", "address": "r:5000", "images": ["Not An Image"]}, "spec.registry.images", "not an image"),
        ({"type": "private", "images": ["acp/pause:3.10"]}, "spec.registry", "needs its address"),
        ({"type": "private", "address": "r:5000", "caFile": 5}, "spec.registry.caFile", ""),
        ({"type": "private", "address": "https://r:5000/v2"}, "spec.registry.address", "wrong format"),
    ],
)
def test_bad_registry_fields_name_file_line_and_field(registry: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(InputError) as raised:
        load(registry)
    problems = [p for p in raised.value.problems if p.field == field]
    assert problems, [str(p) for p in raised.value.problems]
    assert problems[0].file == "bad-plan.yaml" and problems[0].line, str(problems[0])
    assert words in problems[0].message
    assert CANARY not in str(raised.value)


def test_good_registry_fields_load() -> None:
    plan = load(
        {
            "type": "private",
            "address": "registry.example.com:5000",
            "caFile": "ca.pem",
            "credential": {"username": "puller", "passwordFile": "registry-password"},
            "images": ["acp/pause:3.10", "registry.example.com:5000/acp/etcd@sha256:" + "c" * 64],
        }
    )
    registry = plan.spec.registry
    assert registry.ca_file == "ca.pem" and registry.credential is not None
    assert registry.credential.password_file == "registry-password" and len(registry.images) == 2


# -- the node program itself, against a Bearer-token registry on loopback (Harbor's and the
#    built-in registry's flow; the lab's docker-registry speaks Basic) ----------------------


class TokenRegistry(http.server.BaseHTTPRequestHandler):
    """/v2/ challenges with Bearer; /token gives a token for the right Basic credentials."""

    password = "right-" + secrets.token_hex(4)
    present = {"/v2/acp/pause/manifests/3.10"}

    def log_message(self, *args: Any) -> None:
        pass

    def _answer(self, status: int, headers: dict[str, str] | None = None, body: bytes = b"") -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    #: the token service's scheme in the challenge; where /v2/acp/moved/… redirects (a plain-http URL)
    realm_scheme = "https"
    moved_to = ""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        auth = self.headers.get("Authorization", "")
        if self.path.startswith("/v2/acp/moved/") and self.moved_to:
            self._answer(307, {"Location": self.moved_to})
            return
        if self.path.startswith("/token"):
            expected = "Basic " + base64.b64encode(f"puller:{self.password}".encode()).decode()
            if auth != expected:
                self._answer(401)
                return
            self._answer(200, {"Content-Type": "application/json"}, json.dumps({"token": "tok"}).encode())
            return
        if auth != "Bearer tok":
            realm = f"{self.realm_scheme}://127.0.0.1:{self.server.server_address[1]}/token"
            self._answer(401, {"WWW-Authenticate": f'Bearer realm="{realm}",service="registry"'})
            return
        if self.path == "/v2/" or self.path in self.present:
            self._answer(200, {"Content-Type": "application/vnd.oci.image.index.v1+json"})
            return
        self._answer(404)

    do_HEAD = do_GET  # noqa: N815


@pytest.fixture(scope="module")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    from acpcheck_lab.ocimodel import LabRegistryInstance
    from acpcheck_lab.ociregistry import write_certificates

    directory = tmp_path_factory.mktemp("token-registry")
    write_certificates(directory, [LabRegistryInstance(name="t")], {"t": "127.0.0.1"})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), TokenRegistry)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(directory / "t.crt", directory / "t.key")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", (directory / "ca.crt").read_text()
    finally:
        server.shutdown()


def probe_locally(address: str, ca: str, password: str, *more: str) -> tuple[str, NodeProbe]:
    request = {
        "address": address,
        "ca": ca,
        "username": "puller",
        "password": password,
        "images": [
            {"name": "acp/pause:3.10", "repository": "acp/pause", "reference": "3.10"},
            {"name": "acp/etcd:v3.5.21", "repository": "acp/etcd", "reference": "v3.5.21"},
            *({"name": name, "repository": name.split(":")[0], "reference": name.split(":")[1]} for name in more),
        ],
        "timeout": 5,
    }
    done = subprocess.run(
        ["sh", "-c", registry_command()], input=json.dumps(request), capture_output=True, text=True, timeout=60
    )
    return done.stdout + done.stderr, parse_probe(done.stdout, "registry.caFile (ca.pem)", ca)


def test_the_probe_logs_in_with_a_bearer_token(token_registry: tuple[str, str]) -> None:
    address, ca = token_registry
    output, probe = probe_locally(address, ca, TokenRegistry.password)
    assert (probe.tls, probe.anonymous, probe.scheme, probe.login, probe.token_status) == (
        "ok",
        401,
        "bearer",
        200,
        200,
    )
    assert [(a.image, a.status) for a in probe.images] == [("acp/pause:3.10", 200), ("acp/etcd:v3.5.21", 404)]
    assert TokenRegistry.password not in output and "tok" not in output.replace("tokenStatus", "")
    given = evidence(probe, address=address)
    assert run(checks.check_registry_login, given).status == "pass"
    assert "acp/etcd:v3.5.21" in run(checks.check_registry_images, given).message


def test_the_probe_reports_a_refused_token_without_the_password(token_registry: tuple[str, str]) -> None:
    address, ca = token_registry
    output, probe = probe_locally(address, ca, CANARY)
    assert (probe.login, probe.token_status) == (None, 401)
    assert CANARY not in output
    result = run(checks.check_registry_login, evidence(probe, address=address))
    assert result.status == "fail" and "its token endpoint" in result.message, result.message
    assert CANARY not in result.message


def test_the_credential_goes_to_no_plain_http_token_service_and_follows_no_redirect_elsewhere(
    token_registry: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    address, ca = token_registry
    monkeypatch.setattr(TokenRegistry, "realm_scheme", "http")
    output, probe = probe_locally(address, ca, CANARY)
    assert probe.login is None and "not https" in output and CANARY not in output  # nothing was sent

    seen: list[str] = []

    class Capture(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_HEAD(self) -> None:  # noqa: N802 - http.server's name
            seen.append(self.headers.get("Authorization", "none"))
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_HEAD  # noqa: N815 - urllib follows a redirect with GET

    capture = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Capture)
    threading.Thread(target=capture.serve_forever, daemon=True).start()
    monkeypatch.setattr(TokenRegistry, "realm_scheme", "https")
    monkeypatch.setattr(TokenRegistry, "moved_to", f"http://127.0.0.1:{capture.server_address[1]}/elsewhere")
    try:
        output, probe = probe_locally(address, ca, TokenRegistry.password, "acp/moved:1")
    finally:
        capture.shutdown()
    assert probe.login == 200 and seen == ["none"]  # redirected to plain http: without the token
