"""The ``api_tls`` source (post-install TLS probes): its one name, the live gate of the
JSON sources' template ``gather``, and evidence saved before it had that name.

Until issue 17 the source was registered as ``lb_live`` and saved
``<facts>/lb_live/lb_live.json``; ``data/evidence-before-issue-17`` is such a directory,
as that version wrote it. It must still replay, and new evidence is saved under the
new name."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from acpcheck.sources import REGISTRY
from acpcheck.sources.api_tls import ApiTlsEvidence, ApiTlsSource
from acpcheck.sources.base import GatherContext
from acpcheck.sources.evidence import Evidence
from acpcheck.sources.lb import LoadBalancerSource
from acpcheck.testing import load_plan_text

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "workload-kube-ovn.yaml"
PLAN = load_plan_text(EXAMPLE.read_text())
OLD_EVIDENCE = Path(__file__).parent / "data" / "evidence-before-issue-17"


def test_one_name_for_the_tls_source() -> None:
    entry = REGISTRY["api_tls"]
    assert "lb_live" not in REGISTRY
    assert entry.implementation == "acpcheck.sources.api_tls:ApiTlsSource"
    assert list(entry.provides) == ["api_tls"]
    assert entry.create().name == "api_tls"


def test_evidence_saved_under_the_former_name_replays(tmp_path: Path) -> None:
    facts = tmp_path / "facts"
    shutil.copytree(OLD_EVIDENCE, facts)
    evidence = Evidence(PLAN)
    evidence.replay([REGISTRY["api_tls"]], facts)
    replayed = evidence.provide("api_tls")
    assert isinstance(replayed, ApiTlsEvidence)
    assert replayed.mode == "live"
    assert replayed.nodes["cp1"].version == "v1.31.4"
    assert replayed.through_endpoint[0].error == "unreachable: connection refused"
    # Saved again, it goes under the new name only.
    ApiTlsSource().save(replayed, tmp_path / "again" / "api_tls")
    assert [p.relative_to(tmp_path / "again").as_posix() for p in (tmp_path / "again").rglob("*.json")] == [
        "api_tls/api_tls.json"
    ]
    reloaded = ApiTlsSource().load(tmp_path / "again" / "api_tls", PLAN)
    assert reloaded == replayed


def test_the_new_name_wins_over_the_former_one(tmp_path: Path) -> None:
    facts = tmp_path / "facts"
    shutil.copytree(OLD_EVIDENCE, facts)
    ApiTlsSource().save(ApiTlsEvidence(mode="off", reason="saved by this version"), facts / "api_tls")
    assert ApiTlsSource().load(facts / "api_tls", PLAN).reason == "saved by this version"


def test_no_saved_evidence_is_an_error_document(tmp_path: Path) -> None:
    loaded = ApiTlsSource().load(tmp_path / "api_tls", PLAN)
    assert (loaded.mode, loaded.reason) == ("error", "no API server TLS evidence was saved with these facts")


def test_a_run_replays_evidence_saved_under_the_former_name(tmp_path: Path) -> None:
    facts = tmp_path / "facts"
    shutil.copytree(OLD_EVIDENCE, facts)
    env = {key: value for key, value in os.environ.items() if not key.startswith("ACPCHECK_")}
    done = subprocess.run(
        [sys.executable, "-m", "acpcheck", "run", "--plan", str(EXAMPLE), "--facts", str(facts), "--live"]
        + ["--check", "ACP-LB-007", "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (result,) = json.loads((tmp_path / "out" / "results.json").read_text())["results"]
    assert (result["check"], result["status"]) == ("ACP-LB-007", "pass")


@pytest.mark.parametrize(
    ("live", "source", "mode"),
    [(False, ApiTlsSource(), "off"), (True, LoadBalancerSource(), "live")],
)
def test_the_live_gate_of_the_template(monkeypatch: pytest.MonkeyPatch, live: bool, source: object, mode: str) -> None:
    """A source gathers only in its phase: ``api_tls`` once the cluster exists, ``lb`` before."""
    monkeypatch.delenv("ACPCHECK_KUBECONFIG", raising=False)
    if live:
        monkeypatch.setenv("ACPCHECK_LIVE", "1")
    else:
        monkeypatch.delenv("ACPCHECK_LIVE", raising=False)
    evidence = source.gather(GatherContext(PLAN))  # type: ignore[attr-defined]
    assert (evidence.mode, evidence.endpoint) == (mode, PLAN.spec.endpoint.address)
