"""ACP-IMG-001…003 and ACP-REG-009 on the lab's real registry (scenario ``private-registry``):
every node asks a real docker-registry over TLS, with htpasswd auth, over its own SSH
session. Each planted defect is found on every node, by the check that owns it, with
the words that name it; the healthy variant passes; and no registry password (a canary,
and the lab's real one) reaches any artifact or the terminal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from acpcheck_lab import LabInfo, down, up

CHECKS = ("ACP-IMG-001", "ACP-IMG-002", "ACP-IMG-003")
NODES = ("cp1", "w1")
CANARY = "canary-Reg1stry-pw"


@pytest.fixture(scope="module")
def registry_lab(lab_machine: Path) -> Iterator[LabInfo]:
    info = up("private-registry", lab_machine)
    try:
        yield info
    finally:
        down(lab_machine, purge=True)


def variant(lab: LabInfo, name: str = "") -> dict[str, Any]:
    path = lab.paths.root / "registry" / f"plan-{name}.yaml" if name else lab.plan_file
    return yaml.safe_load(path.read_text())


def acpcheck_run(
    lab: LabInfo,
    plan: dict[str, Any],
    out: Path,
    *checks: str,
    env: dict[str, str] | None = None,
    facts: Path | None = None,
) -> dict[str, Any]:
    plan_file = out.parent / f"{out.name}-plan.yaml"
    plan_file.write_text(yaml.safe_dump(plan))
    selectors = [arg for check in (checks or CHECKS) for arg in ("--check", check)]
    command = [sys.executable, "-m", "acpcheck", "run", "--plan", str(plan_file), "--out", str(out), *selectors]
    command += ["--facts", str(facts)] if facts is not None else []
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env={**os.environ, **lab.env(), **(env or {})},
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert (out / "results.json").exists(), done.stdout + done.stderr
    document = json.loads((out / "results.json").read_text())
    document["exit"], document["output"] = done.returncode, done.stdout + done.stderr
    return document


def results(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["check"], r["target"].removeprefix("node:")): r for r in document["results"]}


def assert_on_every_node(document: dict[str, Any], check: str, status: str, *words: str) -> None:
    found = results(document)
    for node in NODES:
        result = found[(check, node)]
        assert result["status"] == status, (check, node, result["status"], result["message"])
        for word in words:
            assert word in result["message"], (check, node, word, result["message"])
        assert node in result["message"] or status in ("pass", "skip"), result["message"]


def test_healthy_variant_passes_every_check(registry_lab: LabInfo, tmp_path: Path) -> None:
    document = acpcheck_run(registry_lab, variant(registry_lab, "healthy"), tmp_path / "out")
    for check in CHECKS:
        assert_on_every_node(document, check, "pass")
    assert document["exit"] == 0, document["output"]
    password = (registry_lab.paths.root / "registry" / "password").read_text().strip()
    assert_nowhere(document, tmp_path / "out", password)
    # the evidence replays: the same results with no connection at all
    replayed = acpcheck_run(
        registry_lab, variant(registry_lab, "healthy"), tmp_path / "replayed", facts=tmp_path / "out" / "facts"
    )
    assert {k: r["status"] for k, r in results(replayed).items()} == {
        k: r["status"] for k, r in results(document).items()
    }


def test_missing_image_fails_naming_it_and_the_node(registry_lab: LabInfo, tmp_path: Path) -> None:
    document = acpcheck_run(registry_lab, variant(registry_lab), tmp_path / "out")
    assert_on_every_node(document, "ACP-IMG-001", "pass")
    assert_on_every_node(document, "ACP-IMG-002", "pass")
    assert_on_every_node(document, "ACP-IMG-003", "fail", "acp/coredns:v1.12.0", "manifest 404")
    for node in NODES:  # the images that are there are not named
        assert "acp/pause" not in results(document)[("ACP-IMG-003", node)]["message"]
    assert document["exit"] == 1


def test_wrong_password_fails_the_login_and_is_never_written(registry_lab: LabInfo, tmp_path: Path) -> None:
    plan = variant(registry_lab, "wrong-password")
    secret = tmp_path / "registry-password"
    secret.write_text(CANARY + "\n")
    plan["spec"]["registry"]["credential"]["passwordFile"] = str(secret)
    out = tmp_path / "out"
    document = acpcheck_run(registry_lab, plan, out)
    assert_on_every_node(document, "ACP-IMG-001", "pass")
    assert_on_every_node(document, "ACP-IMG-002", "fail", "gives 401 with it", "acplab-pull")
    assert_on_every_node(document, "ACP-IMG-003", "skip", "ACP-IMG-002")
    assert_nowhere(document, out, CANARY)
    # passwordEnv: the same refusal, and the same silence
    plan["spec"]["registry"]["credential"] = {"username": "acplab-pull", "passwordEnv": "LAB_REGISTRY_PASSWORD"}
    out = tmp_path / "out-env"
    document = acpcheck_run(registry_lab, plan, out, env={"LAB_REGISTRY_PASSWORD": CANARY})
    assert_on_every_node(document, "ACP-IMG-002", "fail", "gives 401 with it")
    assert_nowhere(document, out, CANARY)


def test_no_credential_where_the_registry_asks_for_one_fails(registry_lab: LabInfo, tmp_path: Path) -> None:
    plan = variant(registry_lab, "healthy")
    del plan["spec"]["registry"]["credential"]
    document = acpcheck_run(registry_lab, plan, tmp_path / "out", "ACP-IMG-002")
    assert_on_every_node(document, "ACP-IMG-002", "fail", "asks for credentials", "plan gives none")


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("expired", ["has expired", "(expired)"]),
        ("wrongsan", ["hostname mismatch", "registry.elsewhere.invalid"]),
        ("no-ca", ["unknown CA", "the node's own trust store"]),
    ],
)
def test_certificate_defects_fail_the_tls_check_naming_the_cause(
    registry_lab: LabInfo, tmp_path: Path, name: str, words: list[str]
) -> None:
    if name == "no-ca":
        plan = variant(registry_lab, "healthy")
        del plan["spec"]["registry"]["caFile"]
    else:
        plan = variant(registry_lab, name)
    document = acpcheck_run(registry_lab, plan, tmp_path / "out")
    assert_on_every_node(document, "ACP-IMG-001", "fail", *words)
    assert_on_every_node(document, "ACP-IMG-002", "skip", "ACP-IMG-001")
    assert_on_every_node(document, "ACP-IMG-003", "skip", "ACP-IMG-001")


def test_refused_and_an_unreachable_node_is_an_error_for_that_node_only(registry_lab: LabInfo, tmp_path: Path) -> None:
    plan = variant(registry_lab, "healthy")
    host = plan["spec"]["registry"]["address"].split(":")[0]
    plan["spec"]["registry"]["address"] = f"{host}:5999"  # the registry's host, a port nobody listens on
    w1 = next(node for node in plan["spec"]["nodes"] if node["name"] == "w1")
    w1["ipv4"] = str(w1["ipv4"]).rsplit(".", 1)[0] + ".250"  # no node there
    document = acpcheck_run(registry_lab, plan, tmp_path / "out", "ACP-IMG-001")
    found = results(document)
    assert found[("ACP-IMG-001", "cp1")]["status"] == "fail"
    assert "connection was refused" in found[("ACP-IMG-001", "cp1")]["message"]
    assert found[("ACP-IMG-001", "w1")]["status"] == "error"


def external_plan(lab: LabInfo, image: str) -> dict[str, Any]:
    """The built-in registry (platform) with an external address: the lab's instance on 443."""
    plan = variant(lab, "ext")
    registry = plan["spec"]["registry"]
    domain = registry["address"]
    cert = lab.paths.root / "registry" / "ext.crt"
    plan["spec"]["registry"] = {
        "type": "platform",
        "externalAddress": {"domain": domain, "certFile": str(cert), "keyFile": str(cert.with_suffix(".key"))},
        "caFile": registry["caFile"],
        "credential": registry["credential"],
        "images": [image],
    }
    return plan


def test_external_address_test_pull(registry_lab: LabInfo, tmp_path: Path) -> None:
    document = acpcheck_run(
        registry_lab, external_plan(registry_lab, "automation/qaimages:helloworld"), tmp_path / "ok", "ACP-REG-009"
    )
    assert_on_every_node(document, "ACP-REG-009", "pass")
    document = acpcheck_run(
        registry_lab, external_plan(registry_lab, "automation/qaimages:missing"), tmp_path / "missing", "ACP-REG-009"
    )
    assert_on_every_node(document, "ACP-REG-009", "fail", "automation/qaimages:missing", "manifest 404")
    plan = external_plan(registry_lab, "automation/qaimages:helloworld")
    del plan["spec"]["registry"]["caFile"]  # the nodes' own trust does not know the lab CA
    document = acpcheck_run(registry_lab, plan, tmp_path / "no-ca", "ACP-REG-009")
    assert_on_every_node(document, "ACP-REG-009", "fail", "unknown CA")
    # not applicable to a private registry's plan
    document = acpcheck_run(registry_lab, variant(registry_lab, "healthy"), tmp_path / "private", "ACP-REG-009")
    skipped = [r for r in document["results"] if r["check"] == "ACP-REG-009"]
    assert [r["status"] for r in skipped] == ["skip"] and "externalAddress" in skipped[0]["message"], skipped


def assert_nowhere(document: dict[str, Any], out: Path, secret: str) -> None:
    """The secret is in no file the run wrote (results.json, report.html, junit.xml, results.sarif,
    summary.md, facts, evidence) and not in its terminal output."""
    assert secret not in document["output"], "the password reached stdout/stderr"
    written = [path for path in out.rglob("*") if path.is_file()]
    assert {"results.json", "report.html", "junit.xml", "results.sarif"} <= {p.name for p in written}
    for path in written:
        data = path.read_bytes()
        for form in {secret, json.dumps(secret)[1:-1]}:
            assert form.encode() not in data, f"the password reached {path.relative_to(out)}"
