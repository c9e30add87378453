"""summary.md at 1,000 nodes stays under GitHub's comment limit (65,536 characters), with
every kind of finding still named and the rest pointed to report.html.

The results are made here, shaped like a big run's: per node, 30 passing checks, 8 that
do not apply, a FAIL whose message names the node (so it cannot be said once for all),
a FAIL with one message everywhere, a WARN and a WAIVED finding; 40 unreachable nodes
(ERRORs), plan results, and 30 expired waivers.
"""

from __future__ import annotations

from typing import Any

from acpcheck.model.result import Status, exit_code
from acpcheck.report import writers

GITHUB_COMMENT_LIMIT = 65_536
NODES = 1_000
REF = "https://docs.alauda.io/container_platform/4.3/install/prepare/node_preprocessing.html"


def result(check: str, status: str, target: str, message: str = "", severity: str = "high") -> dict[str, Any]:
    waiver = (
        {"check": check, "target": "node:*", "reason": "lab", "owner": "ops@example.com", "expires": "2999-01-01"}
        if status == "waived"
        else None
    )
    return {
        "check": check, "title": f"title of {check}", "area": check.split("-")[1], "severity": severity,
        "status": status, "target": target, "message": message, "evidence": {}, "remediation": f"fix {check}",
        "refs": [REF], "waiver": waiver, "duration": 0.001,
    }  # fmt: skip


def summarise_statuses(statuses: list[str]) -> dict[str, int]:
    """The document's summary: every status, counted (as acpcheck.model.result.summarise does)."""
    return {str(status): statuses.count(str(status)) for status in Status}


def big_document() -> dict[str, Any]:
    results = [result(f"ACP-NET-{i:03d}", "pass", "plan") for i in range(1, 20)]
    results.append(result("ACP-NET-050", "fail", "plan", "the cluster CIDR overlaps the node network"))
    for n in range(NODES):
        node = f"node:worker-{n:04d}"
        if n < 40:
            results += [
                result(f"ACP-NODE-{i:03d}", "error", node, "could not check: unreachable: 10.0.0.1:22 timed out")
                for i in range(1, 41)
            ]
            continue
        results += [result(f"ACP-NODE-{i:03d}", "pass", node) for i in range(1, 31)]
        results += [result(f"ACP-NODE-{i:03d}", "skip", node, "not applicable: arm64 only") for i in range(31, 39)]
        results.append(result("ACP-NODE-039", "fail", node, f"kernel 5.4.0-{n} on {node} is older than 5.10"))
        results.append(result("ACP-NODE-040", "fail", node, "swap is on (/swap.img)"))
        results.append(result("ACP-NODE-041", "warn", node, "time zone is UTC, the plan says Asia/Shanghai", "low"))
        results.append(result("ACP-NODE-042", "waived", node, "SELinux is enforcing"))
    summary = summarise_statuses([r["status"] for r in results])
    expired = [
        {"check": f"ACP-NODE-{i:03d}", "target": "node:*", "reason": "old", "owner": "ops@example.com",
         "expires": "2020-01-01"}
        for i in range(100, 130)
    ]  # fmt: skip
    run = {
        "id": "r1", "started": "2026-01-01T00:00:00Z", "finished": "2026-01-01T00:10:00Z", "profile": "full",
        "plan": "clusters/big.yaml", "cluster": "big", "acp": "4.3", "acpcheck": "0.1.0", "failOn": "medium",
        "exitCode": exit_code(summary, len(expired)),
    }  # fmt: skip
    return {"schema": "acpcheck/results/v1", "run": run, "summary": summary, "expiredWaivers": expired,
            "results": results}  # fmt: skip


def test_summary_at_1000_nodes_fits_a_github_comment() -> None:
    """Before the bounds, this document's summary.md had 2,908,001 characters."""
    document = big_document()
    text = writers.summary_markdown(document)
    print(f"summary.md at {NODES} nodes, {len(document['results'])} results: {len(text)} characters")
    assert len(text) < GITHUB_COMMENT_LIMIT
    # Passing and not applicable results are counted, not listed.
    summary = document["summary"]
    assert f"{summary['pass']} passed" in text and f"{summary['skip']} not applicable" in text
    assert "worker-0999 | " not in text and "| ACP-NODE-001 |" not in text
    # Every kind of finding is still named, with how many more there are and where they are.
    for check in ("ACP-NET-050", "ACP-NODE-039", "ACP-NODE-040", "ACP-NODE-041", "ACP-NODE-042"):
        assert check in text, check
    assert "…and 955 more FAIL of ACP-NODE-039 with other messages" in text
    assert "and 940 more targets" in text  # the same swap FAIL on 960 nodes, 20 of them named
    assert "…and 10 more expired waivers in report.html." in text
    assert "40 checks could not run on node:worker-0000" in text


def test_a_small_run_lists_every_finding() -> None:
    """Under the bounds nothing is cut: no "more" line."""
    document = big_document()
    document["results"] = [r for r in document["results"] if r["target"] in ("plan", "node:worker-0040")]
    document["expiredWaivers"] = document["expiredWaivers"][:1]
    document["summary"] = summarise_statuses([r["status"] for r in document["results"]])
    text = writers.summary_markdown(document)
    assert "more" not in text and "kernel 5.4.0-40 on node:worker-0040" in text
