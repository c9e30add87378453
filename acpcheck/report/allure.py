"""Allure results (``--alluredir``), the way Allure's own integrations write them.

Per check and target, one Allure test result:

- the title is ``ACP-NET-001 <title> [target]``, as in junit.xml;
- labels Allure shows: ``epic`` acpcheck, ``feature`` the area, ``story`` the check
  (the Behaviors tree: area, then check, then its targets), ``tag`` the check id, the
  target and the severity, the suites area / check (the Suites tree), and the custom
  ``check_id`` and ``target`` labels for filters; in a fleet run the Suites tree starts
  with the cluster (``parentSuite``, and a ``cluster`` label: cluster, area, check);
- the severity by rank: acpcheck critical, high, medium, low, info are Allure
  blocker, critical, normal, minor, trivial (after the profile's overrides);
- the docs pages as Allure links, and the description says why the rule exists
  and how to fix it;
- the status says what the result did to the run, and its status details which
  acpcheck status it is, matched by the shipped ``categories.json``:

  ======== ========= ==========================================================
  acpcheck Allure    status details message starts with
  ======== ========= ==========================================================
  PASS     passed    (none)
  FAIL     failed    ``FAIL``: the finding, the fix in the trace
  WARN     passed    ``WARN``: advice, or a failure below ``fail_on``; never broken
  WAIVED   passed    ``WAIVED``: by whom, until when, why, and the finding
  SKIP     skipped   ``SKIP``: why the rule does not apply
  MANUAL   skipped   ``MANUAL``: what a person must verify
  ERROR    broken    ``ERROR``: why it could not be checked
  ======== ========= ==========================================================

The run adds ``environment.properties`` (plan, cluster, ACP version, profile,
``fail_on``, verdict, where the live evidence came from; a fleet run: the fleet file
and each cluster's verdict), ``categories.json`` and one failed result per expired
waiver (``EXPIRED WAIVER``), written by the controller at the end of the run.

The per-item labels, links and description are pytest marks that allure-pytest
reads (``marks``); title, status and status details are set on the result just
before allure-python-commons writes it (``AllureAdapter.report_result``).
"""

from __future__ import annotations

import hashlib
import importlib.resources
import re
import time
import uuid
from pathlib import Path
from typing import Any

import allure_commons
import pytest
from allure_commons.logger import AllureFileLogger
from allure_commons.model2 import Label, Parameter, StatusDetails, TestResult
from allure_commons.utils import md5

from acpcheck.model.result import best_ref
from acpcheck.report.document import LIVE_EVIDENCE_LABELS, clusters, is_fleet, live_evidence, verdict
from acpcheck.report.sarif import fails_the_run

#: acpcheck severity -> Allure severity, by rank (Allure has no "high" or "info").
ALLURE_SEVERITY = {"critical": "blocker", "high": "critical", "medium": "normal", "low": "minor", "info": "trivial"}
CATEGORIES = "allure-categories.json"
EPIC = "acpcheck"


def title(result: dict[str, Any]) -> str:
    return f"{result['check']} {result['title']} [{result['target']}]"


def description(rationale: str, remediation: str) -> str:
    """The Allure description: why the rule exists and how to fix it, in the Markdown Allure
    renders. A docstring's hard wraps are no line breaks there (each paragraph becomes one
    line, list items keep theirs, a word cut at a hyphen is joined again), and reST
    ``code`` becomes Markdown `code`."""
    return f"{_markdown(rationale)}\n\nFix: {_markdown(remediation)}"


_LIST_ITEM = re.compile(r"([-*+]|\d+[.)])\s")


def _markdown(text: str) -> str:
    paragraphs = []
    for paragraph in re.split(r"\n[ \t]*\n", text.strip()):
        lines: list[str] = []
        for line in (line.strip() for line in paragraph.splitlines()):
            if not lines or _LIST_ITEM.match(line):
                lines.append(line)
            else:
                lines[-1] += ("" if re.search(r"\w-$", lines[-1]) else " ") + line
        paragraphs.append("\n".join(lines))
    return re.sub(r"``(.+?)``", r"`\1`", "\n\n".join(paragraphs))


def marks(
    check: str,
    check_title: str,
    area: str,
    target: str,
    severity: str,
    rationale: str,
    remediation: str,
    refs: list[str],
    cluster: str | None = None,
) -> list[Any]:
    """The allure-pytest marks of one check item: labels, links, description.
    ``cluster``: the item's fleet member (a fleet run), the top of its Suites tree."""
    label, link = pytest.mark.allure_label, pytest.mark.allure_link
    out = [
        label(ALLURE_SEVERITY.get(severity, "normal"), label_type="severity"),
        label(EPIC, label_type="epic"),
        label(area, label_type="feature"),
        label(f"{check} {check_title}", label_type="story"),
        label(check, target, f"severity:{severity}", label_type="tag"),
        label(check, label_type="check_id"),
        label(target, label_type="target"),
        label(cluster or EPIC, label_type="parentSuite"),
        label(area, label_type="suite"),
        label(f"{check} {check_title}", label_type="subSuite"),
        pytest.mark.allure_description(description(rationale, remediation)),
    ]
    if cluster:
        out.append(label(cluster, label_type="cluster"))
    for index, ref in enumerate(refs):
        out.append(
            link(
                ref,
                link_type="link",
                name=f"ACP docs: {ref.rsplit('/', 1)[-1] or ref}"
                if index
                else f"ACP docs (source): {ref.rsplit('/', 1)[-1] or ref}",
            )
        )
    return out


def status_of(result: dict[str, Any], fail_on: str, acp: str) -> tuple[str, str | None, str | None]:
    """(Allure status, status message, trace) of one results.json entry."""
    status, message = result["status"], result["message"]
    fix = f"fix: {result['remediation']}\nsee: {best_ref(result, acp)}"
    if status == "pass":
        return "passed", None, None
    if status == "fail":
        return "failed", f"FAIL ({result['severity']}, fails at {fail_on} and above): {message}", fix
    if status == "warn":
        why = (
            "advice" if fails_the_run(result["severity"], fail_on) else f"{result['severity']}, below fail_on {fail_on}"
        )
        return "passed", f"WARN ({why}): {message}", fix
    if status == "waived":
        waiver = result.get("waiver") or {}
        return (
            "passed",
            (
                f"WAIVED by {waiver.get('owner')} until {waiver.get('expires')}: "
                f"{waiver.get('reason')}\n\nfinding: {message}"
            ),
            fix,
        )
    if status == "skip":
        return "skipped", f"SKIP: {message}", None
    if status == "manual":
        return "skipped", f"MANUAL: {message}", fix
    return "broken", f"ERROR: {message}", None


class AllureAdapter:
    """Sets each check's Allure title, status and status details.

    Registered as a pytest plugin (it sees every graded report of this process) and
    with allure-python-commons, whose ``report_result`` hook it implements ahead of
    the file writer: the result is complete then (labels included) and not yet
    written. On an xdist worker it handles the worker's own results."""

    def __init__(self, fail_on: str, acp: str):
        self.fail_on = fail_on
        self.acp = acp
        # (cluster, check, target): a fleet's clusters may have targets of the same name
        self.results: dict[tuple[str, str, str], dict[str, Any]] = {}
        # (check, target) -> its key above, for an item without a cluster label (a run of one plan)
        self.keys: dict[tuple[str, str], tuple[str, str, str]] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        data = getattr(report, "acp_result", None)
        if data is None:
            return
        key = (data.get("cluster") or "", data["check"], data["target"])
        previous = self.results.get(key)
        if previous is None or previous["status"] == "pass":  # a teardown error only matters after a pass
            self.results[key] = data
            self.keys[key[1:]] = key

    @allure_commons.hookimpl(tryfirst=True)
    def report_result(self, result: Any) -> None:
        labels = {label.name: label.value for label in result.labels}
        check, target = labels.get("check_id", ""), labels.get("target", "")  # "": not a check
        if "cluster" in labels:  # a fleet run's item
            data = self.results.get((labels["cluster"], check, target))
        else:  # one plan: one cluster, whatever its name
            data = self.results.get(self.keys.get((check, target), ("", "", "")))
        if data is None:
            return
        status, message, trace = status_of(data, self.fail_on, self.acp)
        result.name = title(data)
        result.status = status
        result.statusDetails = StatusDetails(message=message, trace=trace) if message else None
        node = data["target"].removeprefix("node:")
        if node != data["target"] and node != "*":
            # The node's name (not the repr of its facts) as the parameter, and one
            # history per check and node: allure-pytest takes both from a callspec's
            # params, and a CheckItem's callspec carries only the node's id
            # (acpcheck.plugin.collection._parametrised).
            result.parameters = [p for p in result.parameters if p.name != "node"] + [
                Parameter(name="node", value=node)
            ]
            result.historyId = md5(result.fullName, node)


def register(config: pytest.Config, fail_on: str, acp: str) -> AllureAdapter:
    """Register the adapter with pytest and allure-python-commons (ahead of the file writer)."""
    adapter = AllureAdapter(fail_on, acp)
    config.pluginmanager.register(adapter, "acpcheck-allure")
    allure_commons.plugin_manager.register(adapter, "acpcheck-allure")
    config.add_cleanup(lambda: allure_commons.plugin_manager.unregister(name="acpcheck-allure"))
    return adapter


# -- what the controller adds at the end of the run ---------------------------------------


def _property(text: str, key: bool = False) -> str:
    """One key or value of a Java properties file (read as ISO 8859-1 by Allure)."""
    out = []
    for char in str(text):
        if char in "\\":
            out.append("\\\\")
        elif char in "\n\r\t\f":
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t", "\f": "\\f"}[char])
        elif char in "=:#! " and (key or char in "#!" and not out):
            out.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) > 0x7E:
            out.extend(f"\\u{unit:04x}" for unit in _utf16(char))
        else:
            out.append(char)
    return "".join(out)


def _utf16(char: str) -> list[int]:
    data = char.encode("utf-16-be", "surrogatepass")
    return [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]


def environment(document: dict[str, Any]) -> str:
    """``environment.properties``: what the Allure report's Environment widget shows."""
    run = document["run"]
    pairs = [
        ("plan", run["plan"]),
        ("cluster", run["cluster"]),
        ("ACP version", run["acp"]),
        ("profile", run["profile"]),
        ("fail_on", run["failOn"]),
        ("verdict", f"{verdict(document)} (exit code {run['exitCode']})"),
        ("expired waivers", len(document.get("expiredWaivers", []))),
        ("run", run["id"]),
        ("acpcheck", run["acpcheck"]),
    ]
    pairs += [(f"live evidence {LIVE_EVIDENCE_LABELS[key]}", value) for key, value in live_evidence(document)]
    if is_fleet(document):
        pairs[0] = ("fleet", run["fleet"]["file"])
        pairs[1] = ("fleet name", run["cluster"])
        pairs += [
            (f"cluster {m.name}", m.verdict + (f": {m.blockers}" if m.blockers else "")) for m in clusters(document)
        ]
    return "".join(f"{_property(k, key=True)}={_property(str(v))}\n" for k, v in pairs)


def write_run_files(directory: Path, document: dict[str, Any]) -> None:
    """environment.properties, categories.json and one failed result per expired waiver."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "environment.properties").write_text(environment(document), encoding="latin-1")
    categories = importlib.resources.files("acpcheck.reports").joinpath(CATEGORIES).read_text(encoding="utf-8")
    (directory / "categories.json").write_text(categories, encoding="utf-8")
    logger = AllureFileLogger(str(directory))
    now = int(time.time() * 1000)
    for waiver in document.get("expiredWaivers", []):
        full_name = f"acpcheck.waivers#{waiver['check']}[{waiver['target']}]"
        logger.report_result(
            TestResult(
                uuid=str(uuid.uuid4()),
                historyId=hashlib.md5(full_name.encode()).hexdigest(),
                testCaseId=hashlib.md5(full_name.encode()).hexdigest(),
                fullName=full_name,
                name=f"{waiver['check']} waiver expired [{waiver['target']}]",
                status="failed",
                statusDetails=StatusDetails(
                    message=(
                        f"EXPIRED WAIVER owned by {waiver['owner']}, expired on {waiver['expires']}: it waives "
                        "nothing and fails the run"
                    ),
                    trace=(
                        f"reason it was given: {waiver['reason']}\nrenew it (a new expires date) or remove it "
                        "from the waivers file"
                    ),
                ),
                stage="finished",
                start=now,
                stop=now,
                labels=[
                    Label("epic", EPIC),
                    Label("feature", "waivers"),
                    Label("story", "expired waivers"),
                    Label("tag", "expired-waiver"),
                    Label("severity", "blocker"),
                    Label("parentSuite", EPIC),
                    Label("suite", "waivers"),
                ],
            )
        )
