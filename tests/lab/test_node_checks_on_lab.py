"""Every node check proven on real lab nodes: FAIL on a node that really has the
defect, PASS on one that does not; and the run survives bad credentials, a bad
proxy, changed host keys and dead nodes. Each test runs `acpcheck run` as a user
would (a real process, real sshd nodes, the real SOCKS5 proxy).

The `defects` scenario (lab/acpcheck_lab/scenarios/defects.yaml) says which node carries
which defect. Every proof is a ``Proof`` row of a table that a test here is
parametrized over, and the test asserts exactly the row's expectations; the catalogue
test derives "proven" from those parametrizations, so a new node check without a lab
proof fails it. Two checks cannot be proven here: the CPU architecture of a lab node
is this machine's (ACP-NODE-028 ARM CPU model, ACP-NODE-036 same architecture);
their unit tables in tests/nodes cover both outcomes.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from acpcheck.model.result import ALL_NODES
from acpcheck_lab import LabInfo

PlanEdit = Callable[[dict[str, Any], LabInfo], None]


@dataclass(frozen=True)
class Proof:
    """One check's expected statuses on the lab: ``expect`` maps a target (a node name,
    or "nodes" for a cross-node check) to the status the check must give it."""

    check: str
    expect: tuple[tuple[str, str], ...]
    edit: PlanEdit | None = field(default=None, compare=False)  # how the lab's plan is changed first
    case: str = ""

    def __str__(self) -> str:
        return f"{self.check}{'-' + self.case if self.case else ''}"


def proofs(table: dict[str, tuple[tuple[str, ...], tuple[str, ...]]], bad: str) -> list[Proof]:
    """Rows of ``check: (nodes that must be <bad>, nodes that must PASS)``."""
    return [
        Proof(check, tuple((node, bad) for node in failing) + tuple((node, "pass") for node in passing))
        for check, (failing, passing) in sorted(table.items())
    ]


#: check -> (nodes that must FAIL, nodes that must PASS) in the defects lab's own plan.
PROOFS = proofs(
    {
        "ACP-NODE-001": (("bad-kernel",), ("healthy",)),
        "ACP-NODE-002": (("centos-bad",), ("centos-ok",)),
        "ACP-NODE-003": (("bad-kernel",), ("healthy",)),
        "ACP-NODE-004": (("centos-bad",), ("centos-ok",)),
        "ACP-NODE-005": (("bad-kernel",), ("healthy",)),
        "ACP-NODE-006": (("bad-kernel",), ("healthy",)),
        "ACP-NODE-007": (("bad-config",), ("healthy",)),
        "ACP-NODE-008": (("bad-kernel",), ("healthy",)),
        "ACP-NODE-009": (("bad-sudo",), ("healthy", "hidden-ok")),
        "ACP-NODE-010": (("bad-config",), ("healthy",)),
        "ACP-NODE-011": (("bad-config",), ("healthy",)),
        "ACP-NODE-012": (("bad-config",), ("healthy",)),
        "ACP-NODE-013": (("bad-config",), ("healthy",)),
        "ACP-NODE-014": (("bad-config",), ("healthy",)),
        "ACP-NODE-015": (("bad-config", "bad-network", "bad-software"), ("healthy",)),
        "ACP-NODE-016": (("bad-config",), ("healthy",)),
        "ACP-NODE-018": (("bad-network",), ("healthy",)),
        "ACP-NODE-019": (("bad-network",), ("healthy",)),
        "ACP-NODE-020": (("bad-network",), ("healthy",)),
        "ACP-NODE-021": (("bad-network",), ("healthy",)),
        "ACP-NODE-022": (("bad-software",), ("healthy",)),
        "ACP-NODE-023": (("bad-software",), ("healthy",)),
        "ACP-NODE-024": (("bad-software",), ("healthy",)),
        "ACP-NODE-025": (("bad-software",), ("healthy",)),
        "ACP-NODE-026": (("bad-software",), ("healthy",)),
        "ACP-NODE-027": (("bad-kernel", "bad-network", "kylin-sp2"), ("healthy", "centos-ok", "kylin-ok")),
        "ACP-NODE-031": (("bad-kernel",), ("healthy",)),
        "ACP-NODE-032": (("bad-kernel",), ("healthy",)),
    },
    "fail",
)
#: Checks whose FAIL comes out as WARN by design (low severity under fail_on medium).
WARN_PROOFS = proofs({"ACP-NODE-029": (("kylin-sp2",), ("kylin-ok",))}, "warn")
#: Cross-node checks, for the whole defects fleet (with the words the message must hold) …
FLEET_PROOFS = [
    (Proof("ACP-NODE-033", (("nodes", "fail"),)), "twin"),
    (Proof("ACP-NODE-034", (("nodes", "fail"),)), "Asia/Shanghai"),
    (Proof("ACP-NODE-035", (("nodes", "fail"),)), "bad-time"),
    (
        Proof("ACP-NODE-037", (("nodes", "warn"),)),
        "debian",
    ),  # Debian among Ubuntu, CentOS and Kylin: OS type "should" match
]
#: … and for a consistent fleet of healthy nodes (ACP-NODE-036 can only PASS here).
HEALTHY_FLEET = ("healthy", "hidden-ok", "bad-kernel")
CONSISTENT_FLEET_PROOFS = [
    Proof(check, (("nodes", "pass"),))
    for check in ("ACP-NODE-033", "ACP-NODE-034", "ACP-NODE-035", "ACP-NODE-036", "ACP-NODE-037")
]


def _unused_direct_address(lab: LabInfo) -> str:
    """In the lab's direct subnet, on no node: reachable-looking, but nobody's address."""
    taken = {node.ipv4 for node in lab.nodes}
    return str(next(a for a in reversed(list(lab.lab_subnets.direct.hosts())) if str(a) not in taken))


def _address_outside_the_lab(lab: LabInfo) -> str:
    subnets = lab.lab_subnets
    return next(
        a
        for a in ("192.0.2.250", "198.51.100.250", "10.255.0.250")
        if not any(ipaddress.ip_address(a) in net for net in (subnets.direct, subnets.hidden))
    )


def _plan_ip_not_on_the_node(plan: dict[str, Any], lab: LabInfo) -> None:
    healthy = next(n for n in plan["spec"]["nodes"] if n["name"] == "healthy")
    healthy["sshHost"] = healthy["ipv4"]
    healthy["ipv4"] = _unused_direct_address(lab)  # reachable over SSH, but not the node's address


def _global_cluster(plan: dict[str, Any], lab: LabInfo) -> None:
    plan["spec"]["cluster"]["role"] = "global"


def _vip(where: Callable[[LabInfo], str]) -> PlanEdit:
    def edit(plan: dict[str, Any], lab: LabInfo) -> None:
        plan["spec"]["endpoint"] = {"address": where(lab), "selfBuiltVIP": {"enabled": True, "vrid": 37}}

    return edit


#: Checks proven on an edited plan, one run with ``--check`` each.
PLAN_EDIT_PROOFS = [
    Proof("ACP-NODE-017", (("healthy", "fail"), ("bad-kernel", "pass")), _plan_ip_not_on_the_node, "ip-not-on-node"),
    Proof(
        "ACP-NODE-030", (("bad-kernel", "fail"), ("healthy", "pass")), _global_cluster, "global-2-cpus-4-gib"
    ),  # bad-kernel: 2 CPUs, 4 GiB
    Proof("ACP-NODE-038", (("nodes", "pass"),), _vip(_unused_direct_address), "vip-in-subnet"),
    Proof("ACP-NODE-038", (("nodes", "fail"),), _vip(_address_outside_the_lab), "vip-elsewhere"),
]
NOT_PROVABLE_ON_THIS_MACHINE = {"ACP-NODE-028", "ACP-NODE-036"}


@pytest.fixture(scope="module")
def lab(defects_lab: LabInfo) -> LabInfo:
    return defects_lab


def acpcheck_run(
    lab: LabInfo, plan: dict[str, Any] | Path, out: Path, *args: str, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """`acpcheck run` on the lab; returns results.json plus the exit code."""
    if isinstance(plan, dict):
        path = out.parent / f"{out.name}-plan.yaml"
        path.write_text(yaml.safe_dump(plan))
        plan = path
    command = [sys.executable, "-m", "acpcheck", "run", "--plan", str(plan), "--out", str(out), *args]
    completed = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env={**os.environ, **lab.env(), **(env or {})},
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    results_file = out / "results.json"
    assert results_file.exists(), completed.stdout + completed.stderr
    document = json.loads(results_file.read_text())
    document["exit"] = completed.returncode
    document["output"] = completed.stdout + completed.stderr
    return document


def statuses(document: dict[str, Any]) -> dict[tuple[str, str], str]:
    return {(r["check"], target_of(r)): r["status"] for r in document["results"]}


def target_of(result: dict[str, Any]) -> str:
    """A result's node name, or "nodes" for a cross-node result."""
    return "nodes" if result["target"] == ALL_NODES else result["target"].removeprefix("node:")


def lab_plan(lab: LabInfo) -> dict[str, Any]:
    return yaml.safe_load(lab.plan_file.read_text())


@pytest.fixture(scope="module")
def full_run(lab: LabInfo, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return acpcheck_run(lab, lab.plan_file, tmp_path_factory.mktemp("full") / "out", "--profile", "preinstall")


def test_full_run_finds_defects_and_completes(full_run: dict[str, Any]) -> None:
    assert full_run["exit"] == 1
    assert full_run["summary"]["error"] == 0, [r for r in full_run["results"] if r["status"] == "error"]
    assert "gathering facts: 12/12 nodes" in full_run["output"]


def assert_proof(document: dict[str, Any], proof: Proof) -> None:
    """Every expectation of ``proof``; a FAIL or WARN must name its node."""
    got = statuses(document)
    for target, status in proof.expect:
        assert got.get((proof.check, target)) == status, (proof.check, target, got.get((proof.check, target)))
        if status != "pass" and target != "nodes":
            message = next(
                r["message"] for r in document["results"] if r["check"] == proof.check and target_of(r) == target
            )
            assert target in message, message


@pytest.mark.parametrize("proof", PROOFS + WARN_PROOFS, ids=str)
def test_node_check_fails_on_the_defect_and_passes_without(full_run: dict[str, Any], proof: Proof) -> None:
    assert_proof(full_run, proof)


@pytest.mark.parametrize(("proof", "words"), FLEET_PROOFS, ids=str)
def test_cross_node_check_for_the_defects_fleet(full_run: dict[str, Any], proof: Proof, words: str) -> None:
    assert_proof(full_run, proof)
    message = next(r["message"] for r in full_run["results"] if r["check"] == proof.check and target_of(r) == "nodes")
    assert words.lower() in message.lower(), message


@pytest.fixture(scope="module")
def consistent_fleet_run(lab: LabInfo, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    plan = lab_plan(lab)
    plan["spec"]["nodes"] = [n for n in plan["spec"]["nodes"] if n["name"] in HEALTHY_FLEET]
    return acpcheck_run(lab, plan, tmp_path_factory.mktemp("fleet") / "out", "--check", "ACP-NODE-03*")


@pytest.mark.parametrize("proof", CONSISTENT_FLEET_PROOFS, ids=str)
def test_cross_node_check_for_a_consistent_fleet(consistent_fleet_run: dict[str, Any], proof: Proof) -> None:
    assert_proof(consistent_fleet_run, proof)


@pytest.mark.parametrize("proof", PLAN_EDIT_PROOFS, ids=str)
def test_node_check_on_an_edited_plan(lab: LabInfo, tmp_path: Path, proof: Proof) -> None:
    assert proof.edit is not None
    plan = lab_plan(lab)
    proof.edit(plan, lab)
    assert_proof(acpcheck_run(lab, plan, tmp_path / "out", "--check", proof.check), proof)


def asserted_proofs() -> list[Proof]:
    """Every Proof that a test of this module, or of test_underlay_on_lab, is parametrized over (and so asserts)."""
    import test_underlay_on_lab  # the Kube-OVN Underlay checks, proven on their own scenario

    found = []
    for name, test in [*globals().items(), *vars(test_underlay_on_lab).items()]:
        for mark in getattr(test, "pytestmark", []) if name.startswith("test_") else []:
            if mark.name == "parametrize":
                for row in mark.args[1]:
                    values = row.values if hasattr(row, "values") else row if isinstance(row, tuple | list) else (row,)
                    found += [value for value in values if isinstance(value, Proof)]
    return found


def test_every_node_check_is_proven_here_or_named_as_not_provable() -> None:
    from acpcheck.catalog import load_catalog

    node_checks = {check for check in load_catalog() if check.startswith("ACP-NODE-")}
    outcomes: dict[str, set[str]] = {}
    for proof in asserted_proofs():
        outcomes.setdefault(proof.check, set()).update(status for _, status in proof.expect)
    # proven: some test shows the check PASS and some test shows it FAIL (or WARN)
    proven = {check for check, seen in outcomes.items() if "pass" in seen and seen & {"fail", "warn"}}
    assert node_checks - proven == NOT_PROVABLE_ON_THIS_MACHINE, sorted(
        node_checks - proven - NOT_PROVABLE_ON_THIS_MACHINE
    )
    assert not proven & NOT_PROVABLE_ON_THIS_MACHINE  # proven after all: take it off the list
    assert proven <= node_checks, sorted(proven - node_checks)  # a table names a check the catalogue does not have


# -- transport failures: ERROR for the node concerned, the rest of the run completes ---------


def only(plan: dict[str, Any], *names: str) -> dict[str, Any]:
    plan["spec"]["nodes"] = [n for n in plan["spec"]["nodes"] if n["name"] in names]
    return plan


def errors_by_node(document: dict[str, Any]) -> dict[str, str]:
    return {target_of(r): r["message"] for r in document["results"] if r["status"] == "error"}


def test_wrong_key_is_an_auth_error(lab: LabInfo, tmp_path: Path) -> None:
    stranger = tmp_path / "id_stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True)
    plan = only(lab_plan(lab), "healthy", "bad-kernel")
    plan["spec"]["nodes"][0]["ssh"] = {"auth": {"privateKeyFile": str(stranger)}}
    started = time.monotonic()
    document = acpcheck_run(lab, plan, tmp_path / "out", "--check", "ACP-NODE-008")
    assert time.monotonic() - started < 60  # generous: only "it did not hang"
    assert document["exit"] == 1  # bad-kernel's swap FAIL outranks healthy's ERROR
    assert "could not check: auth:" in errors_by_node(document)["healthy"]
    assert statuses(document)[("ACP-NODE-008", "bad-kernel")] == "fail"  # the other node still ran


#: Everything `acpcheck run --out` writes (facts/ holds one file per node that answered).
OUTPUT_FILES = ("results.json", "junit.xml", "summary.md", "report.html", "results.sarif")


def assert_canary_nowhere(document: dict[str, Any], out: Path, canary: str, *, facts: list[str]) -> None:
    written = sorted(path for path in out.rglob("*") if path.is_file())
    names = {str(path.relative_to(out)) for path in written}
    assert set(OUTPUT_FILES) <= names, sorted(names)
    assert {
        node for node in facts if not any(n.startswith("facts/") and n.endswith(f"/{node}.json") for n in names)
    } == set(), sorted(names)
    assert canary not in document["output"], "the password reached stdout/stderr"
    for path in written:
        data = path.read_bytes()
        for form in {canary, json.dumps(canary)[1:-1], re.escape(canary)}:
            assert form.encode() not in data, f"the password reached {path.relative_to(out)}"


def test_wrong_password_is_an_auth_error_and_never_written(lab: LabInfo, tmp_path: Path) -> None:
    canary = f"Canary-{secrets.token_hex(8)}-Wrong"
    plan = only(lab_plan(lab), "bad-sudo", "healthy")
    next(n for n in plan["spec"]["nodes"] if n["name"] == "bad-sudo")["ssh"] = {
        "user": "acplab",
        "auth": {"passwordEnv": "LAB_WRONG_PASSWORD"},
    }
    out = tmp_path / "out"
    document = acpcheck_run(lab, plan, out, "--check", "ACP-NODE-00*", env={"LAB_WRONG_PASSWORD": canary})
    assert "could not check: auth:" in errors_by_node(document)["bad-sudo"]
    assert_canary_nowhere(document, out, canary, facts=["healthy"])


def test_right_password_gathers_and_is_never_written(lab: LabInfo, tmp_path: Path) -> None:
    # The lab user's password is new for every `up`: a canary of its own.
    plan = only(lab_plan(lab), "bad-sudo")
    plan["spec"]["nodes"][0]["ssh"] = {"user": "acplab", "auth": {"passwordEnv": "ACPLAB_SSH_PASSWORD"}}
    out = tmp_path / "out"
    document = acpcheck_run(lab, plan, out, "--profile", "preinstall")
    assert statuses(document)[("ACP-NODE-008", "bad-sudo")] == "pass"  # a real gather over password auth
    assert json.loads(next((out / "facts").rglob("bad-sudo.json")).read_text())  # … that produced facts
    assert_canary_nowhere(document, out, lab.lab_password, facts=["bad-sudo"])


def test_proxy_with_wrong_credentials_is_an_error_for_hidden_nodes_only(lab: LabInfo, tmp_path: Path) -> None:
    document = acpcheck_run(
        lab,
        only(lab_plan(lab), "healthy", "hidden-ok"),
        tmp_path / "out",
        "--check",
        "ACP-NODE-008",
        env={"ACPLAB_PROXY_PASSWORD": "wrong"},
    )
    errors = errors_by_node(document)
    assert list(errors) == ["hidden-ok"] and "proxy-auth" in errors["hidden-ok"]
    assert statuses(document)[("ACP-NODE-008", "healthy")] == "pass"


@pytest.mark.parametrize("policy", ["strict", "accept-new"])
def test_changed_host_key_is_refused(lab: LabInfo, tmp_path: Path, policy: str) -> None:
    impostor = tmp_path / "impostor"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(impostor)], check=True)
    plan = only(lab_plan(lab), "healthy", "bad-kernel")
    known_hosts = tmp_path / "known_hosts"
    healthy_ip = plan["spec"]["nodes"][0]["ipv4"]
    key_type, key_data = impostor.with_suffix(".pub").read_text().split()[:2]
    pinned = [line for line in lab.paths.known_hosts.read_text().splitlines() if not line.startswith(f"{healthy_ip} ")]
    pinned.append(f"{healthy_ip} {key_type} {key_data}")
    known_hosts.write_text("\n".join(pinned) + "\n")
    plan["spec"]["ssh"].update({"hostKeyPolicy": policy, "knownHostsFile": str(known_hosts)})
    document = acpcheck_run(lab, plan, tmp_path / "out", "--check", "ACP-NODE-008")
    assert "host-key" in errors_by_node(document)["healthy"] and "CHANGED" in errors_by_node(document)["healthy"]
    assert statuses(document)[("ACP-NODE-008", "bad-kernel")] == "fail"


def sshd_pids(lab: LabInfo, node: str) -> list[int]:
    netns = lab.node(node).netns
    pids = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True, check=True).stdout.split()
    return [int(pid) for pid in pids if Path(f"/proc/{pid}/comm").read_text().strip() == "sshd"]


def test_frozen_node_times_out_and_the_run_completes(lab: LabInfo, tmp_path: Path) -> None:
    plan = only(lab_plan(lab), "healthy", "bad-kernel")
    plan["spec"]["ssh"]["connectTimeoutSeconds"] = 2
    frozen = sshd_pids(lab, "healthy")
    for pid in frozen:
        os.kill(pid, signal.SIGSTOP)  # the node stops answering, like a hung machine
    try:
        started = time.monotonic()
        document = acpcheck_run(lab, plan, tmp_path / "out", "--check", "ACP-NODE-008")
        elapsed = time.monotonic() - started
    finally:
        for pid in frozen:
            os.kill(pid, signal.SIGCONT)
    assert "timeout" in errors_by_node(document)["healthy"]
    assert statuses(document)[("ACP-NODE-008", "bad-kernel")] == "fail"
    assert elapsed < 60  # bounded by the node's timeout, not hung


def test_node_killed_before_its_turn_is_unreachable(lab: LabInfo, tmp_path: Path) -> None:
    # Killing the node's sshd listener closes its port: from then on the node refuses
    # connections, as a powered-off service does. This is the lab's last test on it.
    for pid in sshd_pids(lab, "kylin-sp2"):
        os.kill(pid, signal.SIGKILL)
    document = acpcheck_run(
        lab, only(lab_plan(lab), "kylin-sp2", "kylin-ok"), tmp_path / "out", "--check", "ACP-NODE-008"
    )
    assert "unreachable" in errors_by_node(document)["kylin-sp2"]
    assert statuses(document)[("ACP-NODE-008", "kylin-ok")] == "pass"
    assert document["exit"] == 2


def test_xdist_run_gives_the_same_results_and_contacts_each_node_once(lab: LabInfo, tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"  # one file for both runs: messages cite it
    plan.write_text(yaml.safe_dump(only(lab_plan(lab), "healthy", "hidden-ok", "bad-kernel", "bad-config")))
    logs = {
        name: lab.state_dir / "nodes" / name / "sshd.log"
        for name in ("healthy", "hidden-ok", "bad-kernel", "bad-config")
    }
    before = {name: log.read_text().count("Accepted ") for name, log in logs.items()}
    parallel = acpcheck_run(lab, plan, tmp_path / "parallel", "-n", "2")
    after = {name: log.read_text().count("Accepted ") for name, log in logs.items()}
    assert {name: after[name] - before[name] for name in logs} == dict.fromkeys(logs, 1)
    serial = acpcheck_run(lab, plan, tmp_path / "serial")

    def strip(d):
        return sorted(
            (r["check"], r["target"], r["status"], r["message"]) for r in d["results"] if "clock" not in r["message"]
        )

    assert strip(parallel) == strip(serial)
