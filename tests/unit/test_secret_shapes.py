"""Secret shapes (issue 22, items 3 and 7): every format is recognised, nothing
secret-shaped is quoted by any problem, and the scan is linear: values of 16 MiB built
to defeat each pattern are scanned to the right answer (bench/secret_scan_bench.py
shows the time per doubling; no test here measures time).

The commands themselves, with real processes and report directories, are in
test_secret_echo.py.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from acpcheck.errors import InputError, Problem
from acpcheck.model.plan import plan_from_document
from acpcheck.model.profile import selector_problems
from acpcheck.secretshapes import SHAPES, could_be_secret, secret_shape
from acpcheck.yamlsource import parse_yaml

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
BASE = (EXAMPLES / "workload-kube-ovn.yaml").read_text()
CANARY = "Kq7canaryZx3"
MIB = 1024 * 1024


def b64(data: str | bytes) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


#: Every format the fuzzing planted (issue 22), each holding CANARY: name -> secret.
PLANTED = {
    "stripe secret key": f"sk_live_{CANARY}4eC39HqLyjWDarjtT1zdp7dc",
    "stripe restricted key": f"rk_live_{CANARY}4eC39HqLyjWDarjtT1",
    "google api key": ("AIza" + f"SyA{CANARY}" + "x1y2z3" * 6)[:39],
    "npm token": ("npm_" + CANARY + "a1b2c3" * 6)[:40],
    "bearer": f"Bearer {CANARY}",
    "authorization header": f"Authorization: Bearer {CANARY}",
    "authorization basic": "Authorization: Basic " + b64(f"admin:{CANARY}"),
    "basic": "Basic " + b64(f"admin:{CANARY}"),
    "azure connection string": (
        f"DefaultEndpointsProtocol=https;AccountName=acme;AccountKey={b64(CANARY * 6)};EndpointSuffix=core.windows.net"
    ),
    "azure sas": f"SharedAccessSignature=sv=2022-11-02&sig={CANARY}",
    "shadow line": (
        f"root:$6${CANARY}$Vh0eGZb6u0iJ2NqFhQ9Rz0WcYpJxL0mXq3r9jH2a8tKc7v4sD1fE6gH5iJ3kL2mN1oP0qR9sT8u:19000:0:99999:7:::"
    ),
    "shadow line, DES": f"daemon:{CANARY}a:19000:0:99999:7:::",
    "sha-512 crypt": f"$6$rounds=5000${CANARY}$5x8bZkq1ZxYVh0eGZb6u0iJ2",
    "bcrypt": f"$2b$12${CANARY}abcdefghijklmnopqrstuvwxyz0123456789AB",
    "yescrypt": f"$y$j9T${CANARY}$ABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "htpasswd apr1": f"admin:$apr1${CANARY}$abcdefghijkl",
    "ldap ssha": f"{{SSHA}}{CANARY}abcdefgh==",
    # the formats acpcheck recognised before issue 22
    "url user info": f"https://admin:{CANARY}@console.example.com",
    "password=": f"password={CANARY}",
    "camelCase token": f"accessToken: {CANARY}",
    "jwt": f"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ{CANARY}.c2lnbmF0dXJl",
    "github": f"ghp_{CANARY}0123456789abcdefghijklmnop",
    "aws": f"AKIA{CANARY.upper()}AAAA",
    "pem": f"-----BEGIN RSA PRIVATE KEY----- {CANARY} -----END RSA PRIVATE KEY-----",
}


def needle(secret: str) -> str:
    """What of ``secret`` must never be printed: the canary, or what encodes it."""
    for part in (CANARY, CANARY.upper(), b64(f"admin:{CANARY}"), b64(CANARY * 6)):
        if part in secret:
            return part
    raise AssertionError(f"no canary in {secret!r}")


def _bare(pem: bytes) -> str:
    """A PEM body without its BEGIN and END lines: what a careless paste leaves."""
    return "\n".join(line for line in pem.decode().splitlines() if not line.startswith("-----"))


@pytest.fixture(scope="module")
def key_bodies() -> dict[str, str]:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raw = serialization.NoEncryption()
    pem = serialization.Encoding.PEM
    return {
        "rsa pkcs1": _bare(rsa_key.private_bytes(pem, serialization.PrivateFormat.TraditionalOpenSSL, raw)),
        "rsa pkcs8": _bare(rsa_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, raw)),
        "ec sec1": _bare(
            ec.generate_private_key(ec.SECP256R1()).private_bytes(
                pem, serialization.PrivateFormat.TraditionalOpenSSL, raw
            )
        ),
        "ed25519 pkcs8": _bare(
            ed25519.Ed25519PrivateKey.generate().private_bytes(pem, serialization.PrivateFormat.PKCS8, raw)
        ),
        "openssh": _bare(
            ed25519.Ed25519PrivateKey.generate().private_bytes(pem, serialization.PrivateFormat.OpenSSH, raw)
        ),
        "rsa pkcs1, one line": _bare(
            rsa_key.private_bytes(pem, serialization.PrivateFormat.TraditionalOpenSSL, raw)
        ).replace("\n", ""),
    }


@pytest.mark.parametrize("name", PLANTED)
def test_every_planted_format_is_recognised(name: str) -> None:
    secret = PLANTED[name]
    assert secret_shape(secret) is not None
    assert secret_shape(f"prefix {secret} suffix") is not None


def test_bare_private_key_bodies_are_recognised_and_public_ones_are_not(key_bodies: dict[str, str]) -> None:
    for name, body in key_bodies.items():
        assert secret_shape(body) is not None, name
    public = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    for encoding in (serialization.PublicFormat.SubjectPublicKeyInfo, serialization.PublicFormat.PKCS1):
        assert secret_shape(_bare(public.public_bytes(serialization.Encoding.PEM, encoding))) is None, encoding


@pytest.mark.parametrize(
    "text",
    [
        "10.0.0.1",
        "fd00::0:0:0:0:0:1",
        "a:b:1:2:3:4:5:6",
        "12:30:00",
        "https://console.example.com",
        "socks5://127.0.0.1:1080",
        "cpaas.io/platform-url",
        "git@github.com:acme/plans.git",
        "platform-team@example.com",
        "node:*",
        "ACP-NET-*",
        "Bearer authentication",
        "Bearer token-based access",
        "Basic configuration",
        "Basic settings",
        "max tokens: 5",
        "task_live_migrationEnabledXYZ1234",
        "the $5 fee",
        "single-node lab, never meant to be HA",
    ],
)
def test_ordinary_values_are_not_secrets(text: str) -> None:
    assert secret_shape(text) is None


def test_every_refusal_message_is_itself_no_secret() -> None:
    # A problem line is checked for secret shapes before it is printed: our own words must pass.
    for shape in SHAPES:
        assert secret_shape(shape.refusal) is None, shape.refusal
        assert secret_shape(f"it looks like {shape.kind}; not shown") is None, shape.kind


# -- linear time: 16 MiB values built to make a backtracking pattern try every start --

ADVERSARIAL = {
    "long word": lambda n: "a" * n,  # the URL shape before issue 22: hours for 3 MB
    "mixed word": lambda n: ("Ab3" * n)[:n],
    "-eyJ repeated": lambda n: ("-eyJ" * n)[:n],
    "eyJ headers": lambda n: ("eyJ" + "a" * 60 + ".x") * (n // 65),
    "://, no @": lambda n: ("a://" + "b" * 61) * (n // 65),
    "password, spaces": lambda n: "password" + " " * (n - 8),
    "-----BEGIN run": lambda n: "-----BEGIN " + "A" * (n - 11),
    "$6$ and a run": lambda n: "$6$" + "a" * (n - 3),
    "colons and digits": lambda n: ("a:*:1:2" * n)[:n],
    "Bearer words": lambda n: ("Bearer abcdefgh " * n)[:n],
    "Basic and a run": lambda n: "Basic " + "QUFB" * (n // 4),
    "base64 from M": lambda n: ("M" + "A" * 62 + " ") * (n // 64),
}


@pytest.mark.parametrize("kind", ADVERSARIAL)
def test_a_16_mib_value_is_scanned_to_the_right_answer(kind: str) -> None:
    value = ADVERSARIAL[kind](16 * MIB)
    assert secret_shape(value) is None
    assert secret_shape(value + " https://u:" + CANARY + "@h") is not None  # found at the very end, too


def test_a_16_mib_plan_value_through_the_loader() -> None:
    text = BASE.replace(
        "    nodeName: ip\n", f"    nodeName: ip\n    annotations: {{example.com/blob: {'a' * (16 * MIB - 4096)}}}\n"
    )
    plan = plan_from_document(parse_yaml(text, "big.yaml"))
    assert len(plan.spec.cluster.annotations["example.com/blob"]) == 16 * MIB - 4096
    with pytest.raises(InputError) as caught:
        plan_from_document(parse_yaml(text.replace("a" * 64 + "}", f"https://admin:{CANARY}@h" + "}"), "big.yaml"))
    assert "a URL with user info" in str(caught.value) and CANARY not in str(caught.value)


# -- never quoted ------------------------------------------------------------


def _problems(text: str, name: str = "plan.yaml") -> list[str]:
    with pytest.raises(InputError) as caught:
        plan_from_document(parse_yaml(text, name))
    return str(caught.value).splitlines()


def _line(text: str, needle: str) -> int:
    return next(number for number, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.mark.parametrize("name", PLANTED)
@pytest.mark.parametrize("place", ["node name", "annotation value", "annotation key", "list item"])
def test_a_planted_secret_is_refused_at_its_line_and_never_quoted(name: str, place: str) -> None:
    secret = json.dumps(PLANTED[name])
    edits = {
        "node name": ("{name: w2,", f"{{name: {secret},"),
        "annotation value": (
            "    nodeName: ip\n",
            f"    nodeName: ip\n    annotations: {{example.com/note: {secret}}}\n",
        ),
        "annotation key": ("    nodeName: ip\n", f"    nodeName: ip\n    annotations: {{{secret}: x}}\n"),
        "list item": ("    nodeName: ip\n", f"    nodeName: ip\n    featureGates: [cri-docker, {secret}]\n"),
    }
    find, replace = edits[place]
    text = BASE.replace(find, replace)
    problems = _problems(text)
    assert not any(needle(PLANTED[name]) in p for p in problems), problems
    line = _line(text, needle(PLANTED[name]))
    assert any(p.startswith(f"plan.yaml:{line}:") and "not shown" in p for p in problems), problems


def test_a_shadow_file_says_which_lines_are_not_valid_and_shows_none() -> None:
    shadow = (
        f"root:$6${CANARY}$5x8bZkq1ZxYVh0e:19000:0:99999:7:::\n"
        "daemon:*:19000:0:99999:7:::\n"
        f"alice:!$y$j9T${CANARY}$ABCDEFGH:19500:0:99999:7:::\n"
    )
    problems = _problems(shadow, "shadow")
    for line in (1, 2, 3):
        assert any(p.startswith(f"shadow:{line}: line {line} of shadow is not valid here (") for p in problems), (
            problems
        )
    assert not any(CANARY in p or "daemon" in p or "19000" in p for p in problems), problems


def test_an_unknown_field_is_named_only_when_it_looks_like_a_field_name() -> None:
    text = BASE.replace("    nodeName: ip\n", "    nodeName: ip\n    'Hunter2! x': 1\n    ipFamly: ipv4\n")
    problems = _problems(text)
    assert any("spec.cluster.ipFamly: unknown field; did you mean 'ipFamily'?" in p for p in problems), problems
    line = _line(text, "Hunter2")
    assert any(
        p.startswith(f"plan.yaml:{line}: spec.cluster: line {line} of plan.yaml is not valid here (an unknown field")
        for p in problems
    ), problems
    assert not any("Hunter2" in p for p in problems)


def test_a_value_that_could_be_a_secret_is_not_quoted_by_a_validator() -> None:
    problems = _problems(
        BASE.replace("ipv4: 192.0.2.21}", "ipv4: Zq9-Hunter2-canary}").replace(
            "ipv4: 192.0.2.22}", "ipv4: '2001:db8::22'}"
        )
    )
    assert any("spec.nodes[3].ipv4: this value is not a valid IP address (value not shown)" in p for p in problems), (
        problems
    )
    assert any("spec.nodes[4].ipv4: '2001:db8::22' is not an IPv4 address" in p for p in problems), problems
    assert not any("Hunter2" in p for p in problems)


def test_a_selector_that_could_be_a_secret_is_not_quoted() -> None:
    problems = [str(p) for p in selector_problems(["Zq9-Hunter2!", "area:Zq9-Hunter2!"])]
    assert problems[0].startswith("--check: this selector (not shown: it could be a secret) matches no check id"), (
        problems
    )
    assert problems[1].startswith("--check: this selector (not shown: it could be a secret) is not a selector"), (
        problems
    )
    assert not any("Hunter2" in p for p in problems)
    assert "'nonsense' matches no check id" in str(selector_problems(["nonsense"])[0])


@pytest.mark.parametrize("name", ["stripe secret key", "google api key", "bearer", "shadow line"])
def test_no_problem_line_quotes_a_secret_whoever_built_it(name: str) -> None:
    secret = PLANTED[name]
    in_field = str(Problem("f.yaml", 3, f"annotations[{secret!r}]", "unknown field"))
    in_message = str(Problem("--check", None, "", f"{secret!r} matches no check id"))
    in_file = str(Problem(f"/tmp/{secret}.yaml", None, "", "file not found"))
    assert in_field.startswith("f.yaml:3: line 3 of f.yaml is not valid here (it looks like ")
    assert in_message.startswith("--check: not valid here (it looks like ")
    assert in_file.startswith("(a file name that looks like ")
    assert CANARY not in in_field + in_message + in_file


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("2001:db8::21", False),
        ("not_a_host!", False),
        ("colour:red", False),
        ("Zq9-Hunter2-canary", True),
        ("Hunter2!", True),
        ("x" * 101, True),
    ],
)
def test_what_could_be_a_secret(text: str, secret: bool) -> None:
    assert could_be_secret(text) is secret
