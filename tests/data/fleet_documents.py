"""results.json documents of a fleet run (acpcheck/results/v2), made here as the run writes them.

The fleet ``prod`` of three clusters, in the fleet file's order:

- ``global`` (role global, with a plan file): everything passes, including the
  fleet-level rule (target ``fleet:prod``), so it is **ready**;
- ``east`` (workload, no plan file): its live Kubernetes version is not the one the
  target needs (a FAIL), so it is **blocked**;
- ``west`` (workload, imported, discovered on global): its API server is down, so
  every check of it is ERROR with one reason, and it is **incomplete**.

``global`` and ``east`` both have a node ``cp1``: a report that keyed findings by
check and target alone would mix them up.
"""

from __future__ import annotations

import copy
from typing import Any

from acpcheck.model.result import Status, exit_code
from acpcheck.report.document import RESULTS_SCHEMA

FLEET = "prod"
REF = "https://docs.alauda.io/container_platform/4.3/upgrade/overview.html"
EAST_FAIL = "the live API server is v1.31.4; ACP 4.3 needs 1.32 or later on every workload cluster"
WEST_DOWN = "could not check: https://10.0.3.1:6443: connect: connection refused"


def result(
    cluster: str,
    check: str,
    status: str,
    target: str,
    message: str = "",
    severity: str = "high",
    title: str = "",
) -> dict[str, Any]:
    return {
        "check": check, "title": title or f"title of {check}", "area": check.split("-")[1], "severity": severity,
        "status": status, "target": target, "message": message, "evidence": {}, "remediation": f"fix {check}",
        "refs": [REF], "waiver": None, "duration": 0.01, "cluster": cluster,
    }  # fmt: skip


def member(name: str, role: str, kind: str, plan: str | None, discovered: bool = False) -> dict[str, Any]:
    evidence = {
        "server": f"https://{name}.example.com:6443", "context": f"{name}-admin", "user": "auditor",
        "serverVersion": "v1.33.2", "readAt": "2026-12-07T20:00:00Z", "replayedFrom": None, "replayedAt": None,
    }  # fmt: skip
    return {
        "name": name,
        "role": role,
        "type": kind,
        "plan": plan,
        "discovered": discovered,
        "liveEvidence": None if name == "west" else evidence,
    }


def document(results: list[dict[str, Any]], run_id: str = "20261207T200000Z-aaaa") -> dict[str, Any]:
    """A whole fleet document of ``results`` (summary and exit code computed as the run does)."""
    summary = {str(status): sum(r["status"] == status for r in results) for status in Status}
    return {
        "schema": RESULTS_SCHEMA,
        "run": {
            "id": run_id,
            "started": "2026-12-07T20:00:00Z",
            "finished": "2026-12-07T20:00:09Z",
            "profile": "upgrade",
            "plan": "fleet.yaml",
            "cluster": FLEET,
            "acp": "4.3",
            "acpcheck": "0.1.0",
            "failOn": "medium",
            "exitCode": exit_code(summary, 0),
            "liveEvidence": None,
            "baseline": None,
            "fleet": {
                "name": FLEET,
                "file": "fleet.yaml",
                "acp": "4.3",
                "clusters": [
                    member("global", "global", "on-premise", "plans/global.yaml"),
                    member("east", "workload", "on-premise", None),
                    member("west", "workload", "imported", None, discovered=True),
                ],
            },
        },  # fmt: skip
        "summary": summary,
        "expiredWaivers": [],
        "results": results,
    }


def three_clusters() -> dict[str, Any]:
    """The fleet of the module's docstring: global ready, east blocked, west incomplete."""
    results = [
        result("global", "ACP-UPG-010", "pass", "cluster:global"),
        result("global", "ACP-UPG-011", "pass", "node:cp1"),
        result("global", "ACP-UPG-020", "pass", f"fleet:{FLEET}", title="workload clusters are in range"),
        result("global", "ACP-UPG-012", "warn", "cluster:global", "2 certificate signing requests pending", "low"),
        result("east", "ACP-UPG-010", "fail", "cluster:east", EAST_FAIL, title="the live version is in range"),
        result("east", "ACP-UPG-011", "pass", "node:cp1"),
        result("east", "ACP-UPG-012", "pass", "cluster:east"),
        *(result("west", f"ACP-UPG-0{n}", "error", "cluster:west", WEST_DOWN) for n in (10, 12, 13)),
    ]
    return document(results)


def v1(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` as acpcheck/results/v1 wrote a single-plan run: no ``run.fleet``, no ``cluster``."""
    old = copy.deepcopy(document)
    old["schema"] = "acpcheck/results/v1"
    del old["run"]["fleet"]
    for entry in old["results"]:
        entry.pop("cluster", None)
    return old
