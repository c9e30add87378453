"""Live evidence that says where it came from, and API errors that say what went wrong once
(issue 21, item 3), through `acpcheck run` against the test API server: real TLS, real
tokens, real 401/403 answers.

- Every output (terminal, results.json, junit.xml, results.sarif, summary.md,
  report.html, Allure's environment.properties) names the API server, the kubeconfig's
  context and user, the API server's version and when it was read; a replay (--facts)
  keeps the time it was read and says that it replayed it; a run that read no cluster
  says nothing about one. No token ever reaches an output.
- A 403 says "forbidden" once, a TLS failure carries OpenSSL's reason, and no error text
  the test API server can cause has a word twice in a row.
- A --kubeconfig that does not exist, or a --context it does not have, is bad input
  (exit 4) naming the file, whatever the run would read with it.
"""

from __future__ import annotations

import json
import re
import socket
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import xmlschema
import yaml
from runner import acpcheck

from acpcheck.sources.cluster import gather_cluster
from acpcheck.testing import load_plan_text
from acpcheck.tlserrors import describe_tls_error
from acpcheck_lab.apiserver import Hostile, ServerDir, TestApiServer, init_server_dir, serve_dir

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
SCHEMA = json.loads((ROOT / "reports" / "results.schema.json").read_text())
#: The reader's bearer token: it authenticates every live run here, and must appear in no output.
CANARY = "acpcheck-CANARY-token-7Qx9w2Lr5Tz"
PASSWORD = {"NODE_SSH_PASSWORD": "not-used-by-cluster-checks"}
#: Two checks that read only the cluster (no node is contacted).
CLUSTER_CHECKS = "ACP-ENC-001,ACP-ENC-002"
SEED = """apiVersion: v1
kind: Node
metadata: {name: cp1, labels: {node-role.kubernetes.io/control-plane: ""}}
status: {addresses: [{type: InternalIP, address: 192.0.2.11}]}
---
apiVersion: cluster.alauda.io/v1alpha1
kind: EtcdEncryptionConfig
metadata: {name: default}
spec: {resources: [secrets, configmaps], rotationInterval: 168h0m0s, type: aesgcm}
"""
#: A word said twice in a row ("forbidden: forbidden:", "tls: TLS …"), whatever the case and the punctuation between.
DOUBLED = re.compile(r"\b([A-Za-z]{2,})\b[\s:;,]+\1\b", re.IGNORECASE)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestApiServer, ServerDir]]:
    root = tmp_path_factory.mktemp("api")
    server_dir = init_server_dir(root / "dir", port=0)
    token = next(user.token for user in server_dir.users() if user.name == "acpcheck-reader")
    assert token
    for path in (server_dir.config, server_dir.kubeconfig("acpcheck-reader")):
        path.write_text(path.read_text().replace(token, CANARY))
    seed = root / "seed.yaml"
    seed.write_text(SEED)
    server = serve_dir(server_dir.root, listen="127.0.0.1:0", seeds=[seed])
    yield server, server_dir
    server.stop()


@pytest.fixture(scope="module")
def plan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("plan") / "plan.yaml"
    text = (ROOT / "examples" / "workload-kube-ovn.yaml").read_text()
    path.write_text(text.replace("auth: {privateKeyFile: ~/.ssh/id_ed25519}", "auth: {passwordEnv: NODE_SSH_PASSWORD}"))
    return path


def run(plan: Path, out: Path, *args: str) -> tuple[Any, dict[str, Any]]:
    """`acpcheck run` of the upgrade profile's cluster-only checks; (the process, results.json)."""
    result = acpcheck(
        "run",
        "--plan",
        str(plan),
        "--profile",
        "upgrade",
        "--check",
        CLUSTER_CHECKS,
        "--out",
        str(out),
        *args,
        env=PASSWORD,
    )
    assert result.returncode in (0, 1, 2), result.stdout + result.stderr
    document = json.loads((out / "results.json").read_text())
    jsonschema.Draft202012Validator(SCHEMA).validate(document)
    return result, document


def edited(source: Path, target: Path, edit: Any) -> Path:
    document = yaml.safe_load(source.read_text())
    edit(document)
    target.write_text(yaml.safe_dump(document))
    return target


def section(stdout: str) -> str:
    """The acpcheck section of the terminal output, its wrapped lines joined."""
    body = stdout.split("= acpcheck =", 1)[1].split("\n", 1)[1]
    return re.sub(r"\n {7}", " ", body)


def allure_environment(directory: Path) -> dict[str, str]:
    """environment.properties as a Java properties reader sees it (``\\ `` escapes, ``\\uXXXX``)."""

    def unescape(text: str) -> str:
        controls = {"n": "\n", "t": "\t", "r": "\r", "f": "\f"}
        return re.sub(
            r"\\u([0-9a-fA-F]{4})|\\(.)", lambda m: chr(int(m[1], 16)) if m[1] else controls.get(m[2], m[2]), text
        )

    pairs = {}
    for line in (directory / "environment.properties").read_text(encoding="latin-1").splitlines():
        key, value = re.split(r"(?<!\\)=", line, maxsplit=1)
        pairs[unescape(key)] = unescape(value)
    return pairs


def every_output(out: Path, result: Any, *more: Path) -> dict[str, str]:
    texts = {"stdout": result.stdout, "stderr": result.stderr}
    for directory in (out, *more):
        for path in directory.rglob("*"):
            if path.is_file():
                texts[str(path)] = path.read_text(errors="replace")
    return texts


def assert_provenance_everywhere(out: Path, allure: Path | None, result: Any, expected: dict[str, Any]) -> str:
    """Every output names the same provenance; returns the sentence people read."""
    document = json.loads((out / "results.json").read_text())
    assert document["run"]["liveEvidence"] == expected
    said = {key: value for key, value in expected.items() if value is not None}
    properties = {
        str(p.get("name")): str(p.get("value")) for p in ET.parse(out / "junit.xml").getroot().iter("property")
    }
    assert {k[len("liveEvidence.") :]: v for k, v in properties.items() if k.startswith("liveEvidence.")} == said
    xmlschema.XMLSchema(str(DATA / "junit-10.xsd")).validate(str(out / "junit.xml"))  # what Jenkins enforces
    sarif = json.loads((out / "results.sarif").read_text())
    jsonschema.validate(sarif, json.loads((DATA / "sarif-schema-2.1.0.json").read_text()))
    assert sarif["runs"][0]["invocations"][0]["properties"]["liveEvidence"] == expected
    if allure is not None:
        environment = allure_environment(allure)
        assert environment["live evidence API server"] == expected["server"]
        assert environment["live evidence context"] == expected["context"]
        assert environment["live evidence user"] == expected["user"]
        assert environment["live evidence API server version"] == expected["serverVersion"]
        assert environment["live evidence read at"] == expected["readAt"]
    html = (out / "report.html").read_text()
    sentence = re.search(r'<p class="run" id="live-evidence">([^<]*)</p>', html)
    assert sentence is not None, html[:3000]
    text = sentence.group(1)
    for value in said.values():
        assert value in text
    summary = (out / "summary.md").read_text().splitlines()
    assert text in summary  # the same sentence, a paragraph of its own
    assert section(result.stdout).startswith(text + "\n")  # the head of the terminal's acpcheck section
    for name, output in every_output(out, result, *([allure] if allure else [])).items():
        assert CANARY not in output, name
    return text


def test_a_live_run_and_its_replay_say_where_the_evidence_came_from(
    api: tuple[TestApiServer, ServerDir], plan: Path, tmp_path: Path
) -> None:
    server, server_dir = api
    kubeconfig = server_dir.kubeconfig("acpcheck-reader")
    live, allure = tmp_path / "live", tmp_path / "allure"
    result, document = run(plan, live, "--kubeconfig", str(kubeconfig), "--alluredir", str(allure))
    assert {r["status"] for r in document["results"]} <= {"pass", "warn", "skip"}, document["results"]
    read_at = json.loads((live / "facts" / "cluster" / "cluster.json").read_text())["observedAt"]
    expected = {
        "server": server.url,
        "context": "test-apiserver",
        "user": "acpcheck-reader",
        "serverVersion": "v1.34.5+acpcheck-test-apiserver",
        "readAt": read_at,
        "replayedFrom": None,
        "replayedAt": None,
    }
    said = assert_provenance_everywhere(live, allure, result, expected)
    assert said == (
        f"Live evidence: {server.url} (context test-apiserver, user acpcheck-reader), API server "
        f"v1.34.5+acpcheck-test-apiserver, read at {read_at}"
    )

    # The replay, under xdist: read at the original time, and replayed by this run.
    replay = tmp_path / "replay"
    result, document = run(plan, replay, "--kubeconfig", str(kubeconfig), "--facts", str(live / "facts"), "-n", "2")
    replayed = {**expected, "replayedFrom": str(live / "facts"), "replayedAt": document["run"]["started"]}
    said = assert_provenance_everywhere(replay, None, result, replayed)
    assert said.endswith(
        f"read at {read_at}; replayed by this run from {live / 'facts'} at {document['run']['started']}"
    )


def test_a_run_that_reads_no_cluster_says_nothing_about_one(plan: Path, tmp_path: Path) -> None:
    out, allure = tmp_path / "out", tmp_path / "allure"
    result = acpcheck(
        "run", "--plan", str(plan), "--profile", "plan", "--out", str(out), "--alluredir", str(allure), env=PASSWORD
    )
    assert result.returncode in (0, 1), result.stdout + result.stderr
    assert json.loads((out / "results.json").read_text())["run"]["liveEvidence"] is None
    for name, text in every_output(out, result, allure).items():
        if not name.endswith("results.json"):
            assert not re.search("live.?evidence", text, re.IGNORECASE), name
    head = result.stdout.split("= acpcheck =", 1)[1].splitlines()[1]
    assert head.strip(), "no empty line where the provenance would be"


# -- errors said once, with their reason ------------------------------------------------------


def messages(document: dict[str, Any]) -> list[str]:
    return [r["message"] for r in document["results"] if r["status"] == "error"]


def test_a_403_says_forbidden_once_and_a_tls_failure_says_why(
    api: tuple[TestApiServer, ServerDir], plan: Path, tmp_path: Path
) -> None:
    server, server_dir = api
    _, forbidden = run(plan, tmp_path / "403", "--kubeconfig", str(server_dir.kubeconfig("no-eec-reader")))
    assert messages(forbidden) and set(messages(forbidden)) == {
        "could not check: forbidden: kubeconfig user 'no-eec-reader' may not get "
        'etcdencryptionconfigs.cluster.alauda.io "default" (403 Forbidden: etcdencryptionconfigs.cluster.alauda.io '
        '"default" is forbidden: User "no-eec-reader" cannot get resource "etcdencryptionconfigs" in API group '
        '"cluster.alauda.io" at the cluster scope)'
    }
    assert forbidden["run"]["liveEvidence"]["user"] == "no-eec-reader"

    no_ca = edited(
        server_dir.kubeconfig("acpcheck-reader"),
        tmp_path / "no-ca.kubeconfig",
        lambda d: d["clusters"][0]["cluster"].pop("certificate-authority-data"),
    )
    result, tls = run(plan, tmp_path / "tls", "--kubeconfig", str(no_ca))
    assert set(messages(tls)) == {
        f"could not check: tls: {server.url}: unknown CA: the server's certificate is not signed by a CA in the "
        "system's CAs (the kubeconfig names no CA) (certificate verify failed: self-signed certificate in "
        "certificate chain); give the CA that issued it, or check that this is the right server"
    }
    # Nothing was read, but the reports still say which server was tried, and that its version is unknown.
    assert tls["run"]["liveEvidence"]["serverVersion"] is None
    assert "API server version unknown" in (tmp_path / "tls" / "report.html").read_text()
    for name, text in every_output(tmp_path / "tls", result).items():
        assert CANARY not in text, name
    for said in messages(forbidden) + messages(tls):
        assert not DOUBLED.search(said), said


def test_no_error_text_of_the_test_api_server_says_a_word_twice(
    api: tuple[TestApiServer, ServerDir], plan: Path, tmp_path: Path
) -> None:
    """Every failure the test API server can cause, as a check's ERROR says it ("<kind>: <message>")."""
    server, server_dir = api
    cluster_plan = load_plan_text(plan.read_text())

    def texts(kubeconfig: Path, **environ: str) -> list[str]:
        evidence = gather_cluster(cluster_plan, environ={"ACPCHECK_KUBECONFIG": str(kubeconfig), **environ})
        found = [f"{evidence.failure[0]}: {evidence.failure[1]}"] if evidence.failure else []
        return found + [f"{r.status}: {r.message}" for r in evidence.reads.values() if r.message]

    reader = server_dir.kubeconfig("acpcheck-reader")
    with socket.socket() as spare:
        spare.bind(("127.0.0.1", 0))
        closed_port = spare.getsockname()[1]
    cases = {
        "403 on an object": texts(server_dir.kubeconfig("no-eec-reader")),
        "403 on a list": texts(server_dir.kubeconfig("no-node-reader")),
        "401": texts(
            edited(reader, tmp_path / "401", lambda d: d["users"][0]["user"].update(token="wrong-token-0123456789"))
        ),
        "unknown CA": texts(
            edited(reader, tmp_path / "ca", lambda d: d["clusters"][0]["cluster"].pop("certificate-authority-data"))
        ),
        "unreachable": texts(
            edited(
                reader,
                tmp_path / "closed",
                lambda d: d["clusters"][0]["cluster"].update(server=f"https://127.0.0.1:{closed_port}"),
            )
        ),
        "no such context": texts(reader, ACPCHECK_KUBECONTEXT="prod"),
    }
    for mode in ("malformed", "reset"):
        server.hostile = Hostile(mode, "/apis/cluster.alauda.io")
        try:
            cases[f"hostile {mode}"] = texts(reader)
        finally:
            server.hostile = None
    server.hostile = Hostile("silent", "/version")
    try:
        cases["timeout"] = texts(reader, ACPCHECK_REQUEST_TIMEOUT="1")
    finally:
        server.hostile = None
    for case, said in cases.items():
        assert said, f"{case}: no error at all"
        for text in said:
            assert not DOUBLED.search(text), f"{case}: {text}"
            assert CANARY not in text and "wrong-token-0123456789" not in text, f"{case}: {text}"
    assert any("forbidden: kubeconfig user 'no-node-reader' may not list nodes" in t for t in cases["403 on a list"])


def test_tls_failures_are_named_from_their_text_when_no_ssl_error_is_left() -> None:
    """The kubernetes client turns urllib3's SSLError into text ("SSLError\\n…"): the
    reason OpenSSL gave is still what is said, never the bare class name."""
    wrapped = Exception(
        "SSLError\nHTTPSConnectionPool(host='127.0.0.1', port=6443): Max retries exceeded with url: /version "
        "(Caused by SSLError(SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify "
        "failed: self-signed certificate in certificate chain (_ssl.c:1010)')))"
    )
    assert describe_tls_error(wrapped).message == (
        "TLS failed: certificate verify failed: self-signed certificate in certificate chain"
    )
    assert describe_tls_error(Exception("SSLError")).message == "TLS failed: SSLError"  # nothing more was said


# -- a kubeconfig or context that cannot be used is bad input ------------------------------------


@pytest.mark.parametrize("check", ["ACP-NET-001", "area:LB", CLUSTER_CHECKS])
def test_a_missing_kubeconfig_or_unknown_context_exits_4_naming_the_file(
    api: tuple[TestApiServer, ServerDir], plan: Path, tmp_path: Path, check: str
) -> None:
    """Whatever the run reads with it: a plan check, the live load-balancer checks (which
    only ask whether a kubeconfig is given), the cluster checks."""
    missing = tmp_path / "missing.kubeconfig"
    profile = "upgrade" if check == CLUSTER_CHECKS else "preinstall"
    common = ("run", "--plan", str(plan), "--profile", profile, "--check", check, "--out", str(tmp_path / "out"))
    result = acpcheck(*common, "--kubeconfig", str(missing), env=PASSWORD)
    assert result.returncode == 4, result.stdout + result.stderr
    assert result.stderr == (
        f"acpcheck: bad input\n{missing}: file not found (the kubeconfig given by --kubeconfig or "
        "ACPCHECK_KUBECONFIG)\n"
    )
    kubeconfig = api[1].kubeconfig("admin")
    result = acpcheck(*common, "--kubeconfig", str(kubeconfig), "--context", "prod", env=PASSWORD)
    assert result.returncode == 4, result.stdout + result.stderr
    assert re.fullmatch(
        rf"acpcheck: bad input\n{re.escape(str(kubeconfig))}:\d+: contexts: there is no context 'prod' \(the "
        r"contexts: test-apiserver\)\n",
        result.stderr,
    ), result.stderr
    assert not (tmp_path / "out").exists()  # refused before anything was started or written
