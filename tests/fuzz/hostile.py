"""Hostile and careless input, as hypothesis strategies: plans, profiles, waivers, facts, options.

Every strategy draws a ``Case``: the files to lay out in an empty directory, the
``acpcheck`` arguments, the environment, and a label naming the mutations (for
counting outcomes by class). Inputs start from valid documents and are then
damaged the way people and attackers damage them:

- structure: a field set to a value of another type, a huge or impossible one
  (``2026-02-30``, a 5,000-digit integer, NaN), deleted, duplicated, a key with a
  newline or brackets, a literal secret under a secret-looking key anywhere;
- YAML: unknown and mismatched tags, deep nesting, alias bombs, self-referencing
  aliases, merge keys, duplicate keys;
- text: control and escape characters anywhere (comments included), invalid
  UTF-8, UTF-16, a BOM, truncation;
- files: a FIFO, a directory, ``/dev/zero``, an ``extends`` cycle;
- secrets: the canary below planted where only a secret belongs: under a secret
  key, inside a secret-shaped string (URL user info, ``password=…``, a PEM
  block, a token), as an environment variable's or a file's content, and as a
  variable name or a path that cannot be resolved.

``CANARY`` must never appear in anything acpcheck prints or writes.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
CANARY = "Kq7canaryZx3"

#: Special file contents (anything else is the file's bytes).
FIFO = "<fifo>"
DIRECTORY = "<directory>"
DEV_ZERO = "<dev-zero>"


@dataclass
class Case:
    kind: str
    files: dict[str, bytes | str] = field(default_factory=dict)
    argv: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    labels: list[str] = field(default_factory=list)
    #: The exit codes the contract allows for this case, when it fixes them (e.g. {4} for a usage error).
    expect: set[int] | None = None

    @property
    def label(self) -> str:
        return "+".join(self.labels) or "clean"

    def lay_out(self, directory: Path) -> None:
        import os

        for name, content in self.files.items():
            path = directory / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if content == FIFO:
                os.mkfifo(path)
            elif content == DIRECTORY:
                path.mkdir(exist_ok=True)
            elif content == DEV_ZERO:
                path.symlink_to("/dev/zero")
            elif isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content)


# ---------------------------------------------------------------------------
# Valid starting points

BASE_PLAN: dict[str, Any] = yaml.safe_load((ROOT / "examples" / "workload-kube-ovn.yaml").read_text())
NODE_NAMES = [n["name"] for n in BASE_PLAN["spec"]["nodes"]]

BASE_PROFILE: dict[str, Any] = {
    "name": "fuzz",
    "extends": "plan",
    "include": ["scope:plan"],
    "fail_on": "medium",
    "overrides": {"ACP-NET-010": {"severity": "high"}},
    "params": {"defaultMaxPods": 110},
}
BASE_WAIVERS: dict[str, Any] = {
    "waivers": [
        {
            "check": "ACP-NET-013",
            "target": "plan",
            "reason": "lab",
            "owner": "me@example.com",
            "expires": dt.date(2099, 12, 31),
        },
        {
            "check": "ACP-NODE-*",
            "target": "node:*",
            "reason": "old",
            "owner": "you@example.com",
            "expires": dt.date(2000, 1, 1),
        },
    ]
}


def _base_facts() -> dict[str, dict[str, Any]]:
    """One valid facts document per plan node, from a recorded Ubuntu node."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("fuzz_recorded", ROOT / "tests" / "facts" / "recorded.py")
    assert spec and spec.loader
    recorded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recorded)
    from acpcheck.facts.model import assemble
    from acpcheck.facts.parse import decode_probe_output
    from acpcheck.facts.store import encode

    raw = decode_probe_output(recorded.document(recorded.UBUNTU_2204))
    return {
        name: encode(
            assemble(
                name, raw, gathered_at="2026-01-01T00:00:00Z", round_trip_seconds=0.01, clock_read_at_epoch=1767225600.2
            )
        )
        for name in NODE_NAMES
    }


BASE_FACTS = _base_facts()

# ---------------------------------------------------------------------------
# Ingredients

CONTROL = [chr(c) for c in (*range(9), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F, 0x85, 0x9B)] + [
    "\u202e",
    "\u2066",
    "\ufeff",
    "\ufffe",
]
ESCAPES = [
    "\x1b[31mRED\x1b[0m",
    "\x1b]0;owned\x07",
    "\x07",
    "\x00",
    "\r\x1b[2K",
    "\u202efdp.exe",
    "\x08\x08\x08",
    "]]>",
    "<script>alert(1)</script>",
    "&lt;",
    "\ud800",
]

SECRET_SHAPED = [
    f"https://admin:{CANARY}@console.example.com/",
    f"socks5://user:{CANARY}@127.0.0.1:1080",
    f"password={CANARY}",
    f"token: {CANARY}",
    f"--client-secret={CANARY}",
    f"-----BEGIN OPENSSH PRIVATE KEY-----\n{CANARY}\n-----END OPENSSH PRIVATE KEY-----\n",
    f"-----BEGIN RSA PRIVATE KEY----- {CANARY} -----END RSA PRIVATE KEY-----",
    f"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ{CANARY}.c2lnbmF0dXJl",
    f"ghp_{CANARY}0123456789abcdefghijklmnop",
    f"AKIA{CANARY.upper()[:12]}AAAA",
]
SECRET_KEYS = [
    "password",
    "Password",
    "pass_word",
    "passphrase",
    "privateKey",
    "private-key",
    "token",
    "secret",
    "apiKey",
    "client-key-data",
    "credentials",
]

IMPOSSIBLE = [
    "2026-02-30",
    "2026-13-01",
    "0000-01-01",
    "2026-12-31T25:61:00Z",
    "1" + "0" * 5000,
    "-0x" + "f" * 4500,
    ".nan",
    "-.inf",
    "1e400",
    "!!python/object/apply:os.system ['true']",
    "!!python/name:os.system",
    "!unknown {a: 1}",
    "!!int not-a-number",
    "!!float [1]",
    "!!map scalar",
    "!!binary aGVsbG8=",
    "!!timestamp yesterday",
    "!!set {a, b}",
    "!!omap [a: 1]",
    "!!str",
    "*undefined_alias",
    "{<<: *nowhere}",
    "{<<: [1, 2]}",
    "{a: 1, a: 2}",
    "&self [*self]",
    "&selfmap {k: *selfmap}",
    "? [complex, key]\n: 1",
    "{[a]: 1}",
    "{{a: 1}: 2}",
]


def nested(depth: int, mapping: bool) -> str:
    return ("{a: " * depth + "1" + "}" * depth) if mapping else ("[" * depth + "]" * depth)


def alias_bomb(levels: int, fan: int) -> str:
    parts = ["&l0 [" + ", ".join(["lol"] * fan) + "]"]
    for level in range(1, levels):
        parts.append(f"&l{level} [" + ", ".join([f"*l{level - 1}"] * fan) + "]")
    return "[" + ", ".join(parts) + "]"


RAW = "RAWxx{}xxRAW"  # a plain scalar safe_dump leaves alone; replaced by a raw YAML fragment


def raw_fragments() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(IMPOSSIBLE),
        st.builds(nested, st.sampled_from([50, 200, 500, 1000, 5000, 20000]), st.booleans()),
        st.builds(alias_bomb, st.integers(2, 12), st.integers(2, 12)),
    )


def plain_values() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**70), 2**70),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=12),
        st.text(
            alphabet=st.sampled_from([*CONTROL, "a", "[", "]", ".", ":", "\n", "é", "&", "<"]), min_size=1, max_size=8
        ),
        st.sampled_from(ESCAPES),
        st.dates(),
        st.lists(st.integers(0, 9), max_size=3),
        st.dictionaries(st.sampled_from(["a", "b", "x.y", "k[0]"]), st.integers(0, 5), max_size=2),
    )


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(data, dict):
        for key, value in data.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found += _paths(value, (*prefix, index))
    return found


def _parent(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path[:-1]:
        data = data[part]
    return data


@st.composite
def mutated(draw: st.DrawFn, base: Any, kind: str, secrets: bool = True) -> tuple[Any, dict[str, str], list[str]]:
    """``base`` with 0-3 structural mutations; raw YAML fragments keyed by placeholder."""
    data = copy.deepcopy(base)
    raws: dict[str, str] = {}
    labels: list[str] = []
    for _ in range(draw(st.integers(0, 3))):
        paths = _paths(data)
        path = draw(st.sampled_from(paths))
        action = draw(
            st.sampled_from(
                ["set", "set", "raw", "raw", "delete", "secret-key", "secret-value", "odd-key", "escape"]
                if secrets
                else ["set", "raw", "delete", "odd-key", "escape"]
            )
        )
        if not path:
            if action in ("set", "delete"):
                data = draw(
                    st.one_of(st.none(), st.integers(), st.text(max_size=5), st.lists(st.integers(), max_size=2))
                )
                labels.append("root-replaced")
            continue
        parent = _parent(data, path)
        key = path[-1]
        if action == "set":
            parent[key] = draw(plain_values())
            labels.append("wrong-value")
        elif action == "raw":
            placeholder = RAW.format(len(raws))
            raws[placeholder] = draw(raw_fragments())
            parent[key] = placeholder
            labels.append("yaml-" + _fragment_class(raws[placeholder]))
        elif action == "delete":
            del parent[key]
            labels.append("deleted")
        elif action == "escape":
            parent[key] = draw(st.sampled_from(ESCAPES)) + "x"
            labels.append("escape-chars")
        elif action == "odd-key":
            target = parent if isinstance(parent, dict) else data if isinstance(data, dict) else None
            if target is not None:
                target[draw(st.sampled_from(["bad\nkey", "k[0]", "a.b", "x]y[", "\x1b[2Jkey", "é", "", " "]))] = draw(
                    plain_values()
                )
                labels.append("odd-key")
        elif action == "secret-key":
            target = parent if isinstance(parent, dict) else None
            if target is not None:
                target[draw(st.sampled_from(SECRET_KEYS))] = draw(
                    st.sampled_from([CANARY, [CANARY], {"v": CANARY}, f"x{CANARY}"])
                )
                labels.append("secret-key")
        elif action == "secret-value":
            value = draw(st.sampled_from(SECRET_SHAPED))
            parent[key] = [value] if draw(st.booleans()) else value
            labels.append("secret-in-value")
    return data, raws, labels


def _fragment_class(fragment: str) -> str:
    if fragment.startswith("[&l0"):
        return "alias-bomb"
    if fragment.startswith(("{a: {a:", "[[")):
        return "deep"
    if fragment.startswith("!"):
        return "tag"
    if fragment[:1].isdigit() and len(fragment) > 100 or "f" * 100 in fragment:
        return "big-int"
    if fragment[:4].isdigit():
        return "date"
    if "*" in fragment or "&" in fragment:
        return "alias"
    return "other"


def dump(data: Any, raws: dict[str, str]) -> str:
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=10**6, default_flow_style=False)
    for placeholder, fragment in raws.items():
        text = text.replace(placeholder, fragment.replace("\n", " "))
    return text


@st.composite
def damaged_text(draw: st.DrawFn, text: str, labels: list[str]) -> bytes:
    """YAML text with 0-2 text-level mutations, encoded."""
    if draw(st.integers(0, 5)) == 0:
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(CONTROL)) + text[at:]
        labels.append("control-char")
    if draw(st.integers(0, 7)) == 0:
        text = "# a comment \x1b[31m with an escape\n" + text
        labels.append("control-in-comment")
    if draw(st.integers(0, 9)) == 0:
        at = draw(st.integers(0, len(text)))
        text = text[:at]
        labels.append("truncated")
    data = text.encode("utf-8", "surrogatepass")
    encoding = draw(st.sampled_from(["utf-8"] * 12 + ["bom", "utf-16", "latin-1", "invalid-byte", "nul"]))
    if encoding == "bom":
        data = b"\xef\xbb\xbf" + data
    elif encoding == "utf-16":
        data = text.encode("utf-16", "surrogatepass")
    elif encoding == "latin-1":
        data = text.replace("metadata", "métadata").encode("latin-1", "replace")
    elif encoding == "invalid-byte":
        lines = data.split(b"\n")
        index = draw(st.integers(0, max(0, len(lines) - 1)))
        lines[index] += b"\xff\xfe"
        data = b"\n".join(lines)
    elif encoding == "nul":
        data = data.replace(b"\n", b"\n\x00", 1)
    if encoding != "utf-8":
        labels.append("encoding-" + encoding)
    return data


# ---------------------------------------------------------------------------
# Cases


def run_args(*extra: str, profile: str = "plan", plan: str = "plan.yaml") -> list[str]:
    return ["run", "--plan", plan, "--profile", profile, "--out", "out", *extra]


@st.composite
def plan_cases(draw: st.DrawFn) -> Case:
    data, raws, labels = draw(mutated(BASE_PLAN, "plan"))
    content = draw(damaged_text(dump(data, raws), labels))
    return Case("plan", {"plan.yaml": content}, run_args(), labels=labels)


@st.composite
def profile_cases(draw: st.DrawFn) -> Case:
    data = copy.deepcopy(BASE_PROFILE)
    labels: list[str] = []
    files: dict[str, bytes | str] = {}
    change = draw(
        st.sampled_from(["none", "param", "param", "unknown-param", "unknown-override", "extends", "mutate", "mutate"])
    )
    if change == "param":
        data["params"]["defaultMaxPods"] = draw(
            st.one_of(
                st.integers(-(2**66), 2**66),
                st.sampled_from([-5, 0, 1, 256, 257, "110", 1.5, None, True, [110], {"v": 1}]),
            )
        )
        labels.append("param-value")
    elif change == "unknown-param":
        data["params"][draw(st.sampled_from(["defaultMaxPod", "maxPods", "x"]))] = 1
        labels.append("param-unknown")
    elif change == "unknown-override":
        data["overrides"][draw(st.sampled_from(["ACP-NET-999", "ACP-NOPE-001", "acp-net-001", "*"]))] = {
            "severity": "low"
        }
        labels.append("override-unknown")
    elif change == "extends":
        target = draw(
            st.sampled_from(["self", "cycle", "missing", "fifo", "dir", "devzero", "chain", "absolute-missing"])
        )
        labels.append("extends-" + target)
        if target == "self":
            data["extends"] = "profile.yaml"
        elif target == "cycle":
            data["extends"] = "other.yaml"
            files["other.yaml"] = "name: other\nextends: ./profile.yaml\n"
        elif target == "missing":
            data["extends"] = "nowhere/missing.yaml"
        elif target == "absolute-missing":
            data["extends"] = "/nonexistent/missing.yaml"
        elif target in ("fifo", "dir", "devzero"):
            data["extends"] = "parent.yaml"
            files["parent.yaml"] = {"fifo": FIFO, "dir": DIRECTORY, "devzero": DEV_ZERO}[target]
        elif target == "chain":
            depth = draw(st.integers(2, 40))
            data["extends"] = "p1.yaml"
            for level in range(1, depth):
                files[f"p{level}.yaml"] = f"name: p{level}\nextends: p{level + 1}.yaml\n"
            files[f"p{depth}.yaml"] = "name: last\nextends: plan\n"
    content: bytes
    if change == "mutate":
        mutated_data, raws, more = draw(mutated(data, "profile"))
        labels += more
        content = draw(damaged_text(dump(mutated_data, raws), labels))
    else:
        content = dump(data, {}).encode()
    files["profile.yaml"] = content
    files["plan.yaml"] = (ROOT / "examples" / "workload-kube-ovn.yaml").read_bytes()
    return Case("profile", files, run_args(profile="profile.yaml"), labels=labels)


@st.composite
def waiver_cases(draw: st.DrawFn) -> Case:
    data, raws, labels = draw(mutated(BASE_WAIVERS, "waivers"))
    if (
        draw(st.booleans())
        and isinstance(data, dict)
        and isinstance(data.get("waivers"), list)
        and data["waivers"]
        and isinstance(data["waivers"][0], dict)
    ):
        placeholder = RAW.format("date")
        raws[placeholder] = draw(
            st.sampled_from(
                [
                    "2026-02-30",
                    "2025-02-29",
                    "2026-00-10",
                    "99999-01-01",
                    "tomorrow",
                    "2026-12-31T25:00:00",
                    "1" + "0" * 4400,
                    "20261231",
                ]
            )
        )
        data["waivers"][0]["expires"] = placeholder
        labels.append("date")
    content = draw(damaged_text(dump(data, raws), labels))
    return Case(
        "waivers",
        {"plan.yaml": (ROOT / "examples" / "workload-kube-ovn.yaml").read_bytes(), "waivers.yaml": content},
        run_args("--waivers", "waivers.yaml"),
        labels=labels,
    )


JSON_ODD = [
    "NaN",
    "Infinity",
    "1" + "0" * 5000,
    "[" * 5000 + "]" * 5000,
    '"\\u001b[31mred\\u001b[0m"',
    '"\\ud800"',
    '"\\u0000"',
    '"]]><x>"',
    "{}",
    "[]",
    "null",
    '{"schema": "acpcheck/facts/v1"}',
]


@st.composite
def facts_cases(draw: st.DrawFn) -> Case:
    documents = copy.deepcopy(BASE_FACTS)
    labels: list[str] = []
    files: dict[str, bytes | str] = {}
    node = draw(st.sampled_from(NODE_NAMES))
    raws: dict[str, str] = {}
    data: Any = documents[node]
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(data)
        path = draw(st.sampled_from(paths))
        action = draw(st.sampled_from(["set", "set", "raw", "delete", "escape", "file"]))
        if action == "file":
            files_kind = draw(
                st.sampled_from(
                    [FIFO, DIRECTORY, DEV_ZERO, "truncated", "invalid-utf8", "duplicate-key", "raw-control"]
                )
            )
            labels.append("facts-file-" + files_kind.strip("<>"))
            raws["__file__"] = files_kind
            continue
        if not path:
            data = draw(plain_values().map(lambda v: v.isoformat() if isinstance(v, dt.date) else v))
            labels.append("facts-root")
            continue
        parent = _parent(data, path)
        key = path[-1]
        if action == "set":
            parent[key] = draw(plain_values().map(lambda v: v.isoformat() if isinstance(v, dt.date) else v))
            labels.append("facts-wrong-value")
        elif action == "raw":
            placeholder = RAW.format(len(raws))
            raws[placeholder] = draw(st.sampled_from(JSON_ODD))
            parent[key] = placeholder
            labels.append("facts-json-odd")
        elif action == "delete":
            del parent[key]
            labels.append("facts-deleted")
        elif action == "escape":
            parent[key] = draw(st.sampled_from(ESCAPES))
            labels.append("facts-escape")
    documents[node] = data
    for name, document in documents.items():
        text = json.dumps(document, indent=1, ensure_ascii=False)
        for placeholder, fragment in raws.items():
            if placeholder != "__file__":
                text = text.replace(json.dumps(placeholder), fragment)
        content: bytes | str = text.encode("utf-8", "surrogatepass")
        if name == node and "__file__" in raws:
            special = raws["__file__"]
            if special in (FIFO, DIRECTORY, DEV_ZERO):
                content = special
            elif special == "truncated":
                content = text[: len(text) // 2].encode()
            elif special == "invalid-utf8":
                content = text.encode().replace(b"\n", b"\n\xff", 3)
            elif special == "duplicate-key":
                content = text.replace('{\n "schema"', '{\n "node": "w9",\n "schema"', 1).encode()
            elif special == "raw-control":
                content = text.replace('"ubuntu"', '"ub\x1buntu"').encode()
        files[f"facts/nodes/{name}.json"] = content
    files["plan.yaml"] = (ROOT / "examples" / "workload-kube-ovn.yaml").read_bytes()
    return Case("facts", files, run_args("--facts", "facts", profile="preinstall"), labels=labels)


LOOPBACK_PLAN = (
    (ROOT / "examples" / "workload-kube-ovn.yaml")
    .read_text()
    .replace("port: 22", "port: 9\n    connectTimeoutSeconds: 2")
    .replace("ipv4: 192.0.2.1", "sshHost: 127.0.0.1, ipv4: 192.0.2.1")
    .replace("ipv4: 192.0.2.2", "sshHost: 127.0.0.1, ipv4: 192.0.2.2")
)
assert LOOPBACK_PLAN.count("sshHost: 127.0.0.1") == len(NODE_NAMES)


@st.composite
def secret_reference_cases(draw: st.DrawFn) -> Case:
    """Plans whose nodes are reached on loopback only (port 9: nothing listens)."""
    how = draw(
        st.sampled_from(
            [
                "env-unset-name",
                "env-set",
                "file-missing",
                "key-missing",
                "file-present",
                "proxy-env-unset",
                "proxy-env-set",
                "env-unset-conventional",
            ]
        )
    )
    env: dict[str, str] = {}
    files: dict[str, bytes | str] = {}
    auth = "auth: {privateKeyFile: ~/.ssh/id_ed25519}"
    if how == "env-unset-name":
        replacement = f"auth: {{passwordEnv: {CANARY}}}"
    elif how == "env-unset-conventional":
        replacement = "auth: {passwordEnv: ACPCHECK_FUZZ_UNSET_VARIABLE}"
    elif how == "env-set":
        replacement = "auth: {passwordEnv: ACPCHECK_FUZZ_PASSWORD}"
        env["ACPCHECK_FUZZ_PASSWORD"] = CANARY
    elif how == "file-missing":
        replacement = f"auth: {{passwordFile: /nonexistent/{CANARY}}}"
    elif how == "key-missing":
        replacement = f"auth: {{privateKeyFile: ./{CANARY}_key}}"
    elif how == "file-present":
        replacement = "auth: {passwordFile: pw.txt}"
        files["pw.txt"] = CANARY + "\n"
    elif how == "proxy-env-unset":
        replacement = (
            f"auth: {{passwordEnv: ACPCHECK_FUZZ_PASSWORD}}\n    proxy: {{url: 'socks5://127.0.0.1:9', "
            f"usernameEnv: user{CANARY}, passwordEnv: ACPCHECK_FUZZ_PASSWORD}}"
        )
        env["ACPCHECK_FUZZ_PASSWORD"] = CANARY
    else:
        replacement = (
            "auth: {passwordEnv: ACPCHECK_FUZZ_PASSWORD}\n    proxy: {url: 'socks5://127.0.0.1:9', usernameEnv: "
            "ACPCHECK_FUZZ_USER, passwordEnv: ACPCHECK_FUZZ_PASSWORD}"
        )
        env.update(ACPCHECK_FUZZ_PASSWORD=CANARY, ACPCHECK_FUZZ_USER="fuzzuser")
    files["plan.yaml"] = LOOPBACK_PLAN.replace(auth, replacement)
    return Case("secret-refs", files, run_args("--check", "ACP-NODE-00*", profile="preinstall"), env=env, labels=[how])


BASE_KUBECONFIG: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Config",
    "current-context": "fuzz",
    "clusters": [{"name": "fuzz", "cluster": {"server": "https://127.0.0.1:9"}}],  # nothing listens: refused at once
    "users": [{"name": "fuzz", "user": {"token": CANARY}}],
    "contexts": [{"name": "fuzz", "context": {"cluster": "fuzz", "user": "fuzz"}}],
}


@st.composite
def kubeconfig_cases(draw: st.DrawFn) -> Case:
    """The kubeconfig of a run's live sources (issue 22): mutated and damaged like a plan,
    or not a file at all, or naming a token or CA file that is a FIFO. Its user's token
    is the canary; its API server a closed loopback port, and the plan's nodes too."""
    how = draw(
        st.sampled_from(
            ["mutated"] * 6
            + ["fifo", "dev-zero", "directory", "token-file", "token-file-fifo", "ca-file-fifo", "exec-missing"]
        )
    )
    labels = [how]
    files: dict[str, bytes | str] = {
        "plan.yaml": LOOPBACK_PLAN.replace(
            "auth: {privateKeyFile: ~/.ssh/id_ed25519}", "auth: {passwordEnv: ACPCHECK_FUZZ_PASSWORD}"
        )
    }
    config = copy.deepcopy(BASE_KUBECONFIG)
    user, cluster = config["users"][0]["user"], config["clusters"][0]["cluster"]
    if how == "mutated":
        config, raws, more = draw(mutated(BASE_KUBECONFIG, "kubeconfig"))
        files["kubeconfig"] = draw(damaged_text(dump(config, raws), more))
        labels += more
    elif how in ("fifo", "dev-zero", "directory"):
        files["kubeconfig"] = {"fifo": FIFO, "dev-zero": DEV_ZERO, "directory": DIRECTORY}[how]
    else:
        if how.startswith("token-file"):
            del user["token"]
            user["tokenFile"] = "token"
            files["token"] = FIFO if how == "token-file-fifo" else CANARY + "\n"
        elif how == "ca-file-fifo":
            cluster["certificate-authority"] = "ca.pem"
            files["ca.pem"] = FIFO
        else:
            del user["token"]
            user["exec"] = {
                "apiVersion": "client.authentication.k8s.io/v1",
                "command": "./no-such-plugin",
                "interactiveMode": "Never",
            }
        files["kubeconfig"] = dump(config, {})
    return Case(
        "kubeconfig",
        files,
        run_args("--kubeconfig", "kubeconfig", "--check", "area:ENC", profile="upgrade"),
        env={"ACPCHECK_FUZZ_PASSWORD": "fuzz-password"},
        labels=labels,
    )


VALID_SELECTORS = ["ACP-NET-*", "area:VER", "scope:plan", "ACP-ENC-*", "area:enc", "", "ACP-NET-001,area:NET"]
INVALID_SELECTORS = [
    "tag:no-such-tag",
    "area:XYZ",
    "scope:everything",
    "tag:",
    "nonsense",
    "ACP-NET-9999",
    "acp-net-001",
]


@st.composite
def option_cases(draw: st.DrawFn) -> Case:
    files: dict[str, bytes | str] = {"plan.yaml": (ROOT / "examples" / "workload-kube-ovn.yaml").read_bytes()}
    argv = run_args()
    how = draw(
        st.sampled_from(
            [
                "unknown-option",
                "no-plan",
                "check",
                "check",
                "out-file",
                "out-under-file",
                "out-dev-null",
                "out-proc",
                "alluredir-file",
                "plan-fifo",
                "plan-dir",
                "plan-devzero",
                "plan-missing",
                "waivers-fifo",
                "foreign-out",
                "no-command",
                "bad-command",
            ]
        )
    )
    labels = [how]
    if how == "unknown-option":
        argv.append(draw(st.sampled_from(["--frobnicate", "-x", "--plan"])))
    elif how == "no-plan":
        argv = ["run", "--profile", "plan"]
    elif how == "check":
        selectors = draw(st.lists(st.sampled_from(VALID_SELECTORS + INVALID_SELECTORS), min_size=1, max_size=2))
        for selector in selectors:
            argv += ["--check", selector]
        if not any(s in INVALID_SELECTORS for s in selectors):
            return Case("options", files, argv, labels=["check-valid"], expect={0, 1, 2, 5})
        labels = ["check-invalid"]
    elif how == "out-file":
        files["outfile"] = b"not a directory"
        argv[argv.index("out")] = "outfile"
    elif how == "out-under-file":
        files["outfile"] = b"not a directory"
        argv[argv.index("out")] = "outfile/sub"
    elif how == "out-dev-null":
        argv[argv.index("out")] = "/dev/null"
    elif how == "out-proc":
        argv[argv.index("out")] = "/proc/acpcheck-cannot-write-here"
    elif how == "alluredir-file":
        files["allure"] = b"a file"
        argv += ["--alluredir", "allure"]
    elif how in ("plan-fifo", "plan-dir", "plan-devzero"):
        files["plan.yaml"] = {"plan-fifo": FIFO, "plan-dir": DIRECTORY, "plan-devzero": DEV_ZERO}[how]
    elif how == "plan-missing":
        del files["plan.yaml"]
    elif how == "waivers-fifo":
        files["w.yaml"] = FIFO
        argv += ["--waivers", "w.yaml"]
    elif how == "foreign-out":
        files["out/notes.txt"] = b"my own notes\n"
    elif how == "no-command":
        argv = []
    elif how == "bad-command":
        argv = ["frobnicate"]
    return Case("options", files, argv, labels=labels, expect={4})


def any_case() -> st.SearchStrategy[Case]:
    return st.one_of(
        plan_cases(),
        profile_cases(),
        waiver_cases(),
        facts_cases(),
        secret_reference_cases(),
        option_cases(),
        kubeconfig_cases(),
    )


STRATEGIES = {
    "plan": plan_cases,
    "profile": profile_cases,
    "waivers": waiver_cases,
    "facts": facts_cases,
    "secret-refs": secret_reference_cases,
    "options": option_cases,
    "kubeconfig": kubeconfig_cases,
}
