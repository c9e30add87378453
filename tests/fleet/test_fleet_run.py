"""`acpcheck run --fleet` end to end, on fleets of test API servers (the project's
stand-in for kube-apiserver, one per cluster: ``acpcheck_lab.fleet``): one verdict per
cluster from live state, a cluster whose API is down is ERROR while the rest keep
their verdicts, the same results serial, under ``-n 2`` and replayed from the evidence
the workers sent back, a diff of two fleet runs, and a discovered cluster without a
way in that is ERROR, never left out. Remote workers: tests/lab/test_remote_workers.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import jsonschema

from acpcheck.report.document import clusters
from acpcheck_lab.fleet import TestFleet, platform_cluster, three_cluster_fleet

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "reports" / "results.schema.json").read_text())


def acpcheck(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "acpcheck", *args],
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "COLUMNS": "100"},
        check=False,
    )


def run_fleet(
    fleet: TestFleet | Path, out: Path, *args: str
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """`acpcheck run --fleet … --profile upgrade`: the process and its results.json (schema-valid)."""
    fleet_file = fleet if isinstance(fleet, Path) else fleet.fleet_file
    result = acpcheck("run", "--fleet", str(fleet_file), "--profile", "upgrade", "--out", str(out), *args)
    assert result.returncode in (0, 1), result.stdout + result.stderr
    document = json.loads((out / "results.json").read_text())
    jsonschema.Draft202012Validator(SCHEMA).validate(document)
    return result, document


def verdicts(document: dict[str, Any]) -> dict[str, str]:
    return {cluster.name: cluster.verdict for cluster in clusters(document)}


def failing(document: dict[str, Any], cluster: str) -> set[str]:
    return {r["check"] for r in document["results"] if r["cluster"] == cluster and r["status"] == "fail"}


def comparable(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The results without what differs between two readings of the same fleet (durations)."""
    return [{k: v for k, v in r.items() if k != "duration"} for r in document["results"]]


def test_three_clusters_one_verdict_each_from_live_state(prod_fleet: TestFleet, tmp_path: Path) -> None:
    result, document = run_fleet(prod_fleet, tmp_path / "out")
    assert result.returncode == 1
    assert verdicts(document) == {"global": "ready", "east": "blocked", "west": "blocked"}
    # east: its plan claims 1.33.7, its API server says 1.31.14; west: a removed API still holds an object.
    assert "ACP-UPG-010" in failing(document, "east")
    assert "1.31.14" in next(
        r["message"] for r in document["results"] if r["check"] == "ACP-UPG-010" and r["cluster"] == "east"
    )
    assert failing(document, "west") == {"ACP-UPG-016"}
    assert "flowcontrol.apiserver.k8s.io/v1beta3" in next(
        r["message"] for r in document["results"] if r["check"] == "ACP-UPG-016" and r["cluster"] == "west"
    )
    assert failing(document, "global") == set()
    # The fleet rules are judged once, on global: every workload cluster is in 4.3's range, every
    # path is supported (the third-party range does not apply: the fleet has no imported cluster).
    fleet_rules = {r["check"]: r for r in document["results"] if r["target"] == "fleet:prod"}
    assert {r["cluster"] for r in fleet_rules.values()} == {"global"}
    assert {check: r["status"] for check, r in fleet_rules.items()} == {
        "ACP-UPG-030": "pass",
        "ACP-UPG-031": "pass",
        "ACP-UPG-032": "skip",
    }
    # Every cluster was read from its own API server, and the run says which.
    members = {m["name"]: m for m in document["run"]["fleet"]["clusters"]}
    assert {name: m["liveEvidence"]["server"] for name, m in members.items()} == {
        name: prod_fleet.url(name) for name in ("global", "east", "west")
    }
    # The terminal opens with one line per cluster.
    table = [
        line.split()[:2] for line in result.stdout.splitlines() if line.split()[:1] in (["global"], ["east"], ["west"])
    ]
    assert table[:3] == [["global", "READY"], ["east", "BLOCKED"], ["west", "BLOCKED"]], result.stdout
    # report.html: the first table is the clusters, in the fleet's order, each linking to its findings.
    rows = _first_table_rows((tmp_path / "out" / "report.html").read_text())
    assert rows[0][:4] == ["Cluster", "Role", "Type", "Verdict"]
    assert [(row[0], row[3]) for row in rows[1:4]] == [("global", "ready"), ("east", "blocked"), ("west", "blocked")]
    # JUnit: one test suite per cluster.
    suites = ET.parse(tmp_path / "out" / "junit.xml").getroot().findall("testsuite")
    assert len(suites) == 3 and all(
        name in suites[i].get("name", "") for i, name in enumerate(("global", "east", "west"))
    )


def test_a_cluster_whose_api_is_down_is_error_and_the_rest_keep_their_verdicts(
    prod_fleet_west_down: TestFleet, tmp_path: Path
) -> None:
    _, document = run_fleet(prod_fleet_west_down, tmp_path / "out")
    assert verdicts(document) == {"global": "ready", "east": "blocked", "west": "incomplete"}
    west = [r for r in document["results"] if r["cluster"] == "west" and r["status"] == "error"]
    assert west and all("refused" in r["message"] for r in west), west[:2]
    assert not [r for r in document["results"] if r["cluster"] == "west" and r["status"] == "pass"]


def test_serial_two_workers_and_a_replay_give_the_same_results(prod_fleet: TestFleet, tmp_path: Path) -> None:
    _, serial = run_fleet(prod_fleet, tmp_path / "serial")
    _, parallel = run_fleet(prod_fleet, tmp_path / "parallel", "-n", "2")
    assert comparable(parallel) == comparable(serial)
    # Each member's evidence came back from the worker that read it, under its own folder.
    for name in ("global", "east", "west"):
        saved = json.loads((tmp_path / "parallel" / "facts" / name / "cluster" / "cluster.json").read_text())
        assert saved["target"] == f"cluster:{name}" and saved["server"] == prod_fleet.url(name)
    _, replayed = run_fleet(prod_fleet, tmp_path / "replayed", "--facts", str(tmp_path / "parallel" / "facts"))
    assert comparable(replayed) == comparable(serial)
    assert {m["liveEvidence"]["replayedFrom"] for m in replayed["run"]["fleet"]["clusters"]} == {
        str(tmp_path / "parallel" / "facts" / name) for name in ("global", "east", "west")
    }


def test_diff_of_two_fleet_runs_names_the_cluster_of_each_change(
    prod_fleet: TestFleet, prod_fleet_west_down: TestFleet, tmp_path: Path
) -> None:
    run_fleet(prod_fleet, tmp_path / "monday")
    run_fleet(prod_fleet_west_down, tmp_path / "tuesday")
    diff = acpcheck("diff", str(tmp_path / "monday" / "results.json"), str(tmp_path / "tuesday" / "results.json"))
    assert diff.returncode == 1, diff.stdout + diff.stderr  # west's ERRORs are new
    assert "== cluster west" in diff.stdout and "new" in diff.stdout.split("== cluster west", 1)[1]
    assert "== cluster east: " in diff.stdout and "still failing" in diff.stdout


def test_a_discovered_cluster_without_a_way_in_is_error_not_left_out(start_fleet: Any, tmp_path: Path) -> None:
    spec = three_cluster_fleet()
    listed_more = tuple(
        replace(c, objects=(*c.objects, platform_cluster("north", "1.32.9"))) if c.name == "global" else c
        for c in spec.clusters
    )
    fleet = start_fleet(replace(spec, clusters=listed_more, discover=True))
    _, document = run_fleet(fleet, tmp_path / "out")
    north = [r for r in document["results"] if r["cluster"] == "north"]
    assert north and {r["status"] for r in north} <= {"error", "skip"} and "error" in {r["status"] for r in north}
    assert any("no kubeconfig" in r["message"] or "discovered" in r["message"] for r in north if r["status"] == "error")
    member = next(m for m in document["run"]["fleet"]["clusters"] if m["name"] == "north")
    assert member["discovered"] is True
    assert verdicts(document)["north"] == "incomplete"


def _first_table_rows(html: str) -> list[list[str]]:
    """The text of each row of the first <table> in ``html``."""

    class Rows(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.rows: list[list[str]] = []
            self.tables = 0
            self.cell: list[str] | None = None

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            if tag == "table":
                self.tables += 1
            elif tag == "tr" and self.tables == 1:
                self.rows.append([])
            elif tag in ("td", "th") and self.tables == 1:
                self.cell = []

        def handle_endtag(self, tag: str) -> None:
            if tag in ("td", "th") and self.cell is not None and self.tables == 1:
                self.rows[-1].append(" ".join("".join(self.cell).split()))
                self.cell = None

        def handle_data(self, data: str) -> None:
            if self.cell is not None:
                self.cell.append(data)

    parser = Rows()
    parser.feed(html)
    return parser.rows
