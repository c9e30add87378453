"""The pytest plugin, driven through pytester: inertness, statuses, reports, xdist."""

from __future__ import annotations

import functools
import importlib.util
import json
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from acpcheck.facts.model import GatherFailure
from acpcheck.facts.store import save_facts
from acpcheck.plugin.options import RUN_PARTS
from acpcheck.report.document import RESULTS_SCHEMA

ROOT = Path(__file__).resolve().parents[2]

# pytester's in-process runs (runpytest) drop every module a run imported when it ends;
# the plugin imports its run parts (and the model) only on a run with a plan, so a
# second run would import a second copy of some of them beside the first copy kept by
# this process (a check whose CheckMeta is not the CheckMeta a step knows). Imported
# here once, they are there before every run, as in one plain pytest process.
for part in RUN_PARTS:
    importlib.import_module(part)
EXAMPLE = ROOT / "examples" / "workload-kube-ovn.yaml"


@functools.cache
def _node_factories():
    """tests/nodes/conftest.py (healthy NodeFacts builders), loaded by path."""
    spec = importlib.util.spec_from_file_location("node_factories", ROOT / "tests" / "nodes" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses in it look their module up
    spec.loader.exec_module(module)
    return module


# One check of every outcome. Ids live in a range no real check uses (9xx).
CHECKS = textwrap.dedent(
    '''
    from acpcheck import Scope, Severity, When, check, fail, manual, warn

    REF = ["https://docs.alauda.io/container_platform/4.3/install/prepare/node_preprocessing.html"]

    @check(id="ACP-NET-901", title="passes", severity=Severity.HIGH, refs=REF, remediation="nothing")
    def check_passes(plan):
        """Always compliant."""

    @check(id="ACP-NET-902", title="fails", severity=Severity.HIGH, refs=REF, remediation="fix the CIDR")
    def check_fails(plan):
        """Always a violation."""
        fail(f"{plan.spec.network.cluster_cidr[0]} overlaps 10.3.0.0/17", cidr=str(plan.spec.network.cluster_cidr[0]))

    @check(id="ACP-NET-903", title="low severity failure", severity=Severity.LOW, refs=REF, remediation="consider it")
    def check_low(plan):
        """Below fail_on: a WARN."""
        assert plan.spec.cluster.role == "global", "this is not the global cluster"

    @check(id="ACP-NET-904", title="explicit warning", severity=Severity.CRITICAL, refs=REF, remediation="look")
    def check_warns(plan):
        """warn() is always WARN."""
        warn("worth a look")

    @check(id="ACP-NET-905", title="not applicable", severity=Severity.HIGH, refs=REF, remediation="-",
           applies=When(plugins=frozenset({"calico"})))
    def check_calico_only(plan):
        """Skipped for Kube-OVN plans."""
        fail("must not run")

    @check(id="ACP-NET-906", title="needs a person", severity=Severity.HIGH, refs=REF, remediation="-")
    def check_manual(plan):
        """Manual."""
        manual("ask the network team whether VRRP is allowed")

    @check(id="ACP-NET-907", title="broken check", severity=Severity.HIGH, refs=REF, remediation="-")
    def check_breaks(plan):
        """A bug or lost connection is ERROR, never FAIL."""
        raise ConnectionError("node unreachable")

    @check(id="ACP-NODE-908", title="per worker", severity=Severity.HIGH, refs=REF, remediation="-",
           scope=Scope.NODE, roles={"worker"})
    def check_per_worker(node):
        """Runs once per worker node."""
        if node.facts.hostname == "w2":
            fail(f"{node.name} ({node.spec.ipv4}) is bad")
    '''
)

EXPECTED = {
    ("ACP-NET-901", "plan"): "pass",
    ("ACP-NET-902", "plan"): "fail",
    ("ACP-NET-903", "plan"): "warn",
    ("ACP-NET-904", "plan"): "warn",
    ("ACP-NET-905", "plan"): "skip",
    ("ACP-NET-906", "plan"): "manual",
    ("ACP-NET-907", "plan"): "error",
    ("ACP-NODE-908", "node:w1"): "pass",
    ("ACP-NODE-908", "node:w2"): "fail",
}


@pytest.fixture
def checks(pytester: pytest.Pytester) -> pytest.Pytester:
    """The demo checks, plus saved healthy facts for every example node, replayed
    with --acp-facts (these tests are about the plugin, not about SSH)."""
    pytester.makepyfile(check_demo=CHECKS)
    factories = _node_factories()
    save_facts(
        pytester.path / "facts", {name: factories.healthy_facts(name) for name in ("cp1", "cp2", "cp3", "w1", "w2")}
    )
    return pytester


def replay(pytester: pytest.Pytester) -> str:
    return f"--acp-facts={pytester.path / 'facts'}"


@functools.cache
def _results_schema():
    import jsonschema

    return jsonschema.Draft202012Validator(json.loads((ROOT / "reports" / "results.schema.json").read_text()))


def results_of(out: Path) -> dict:
    """results.json of a run, validated against reports/results.schema.json (every run's output)."""
    document = json.loads((out / "results.json").read_text())
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in _results_schema().iter_errors(document)]
    assert not errors, errors
    return document


def statuses(document: dict) -> dict[tuple[str, str], str]:
    return {(r["check"], r["target"]): r["status"] for r in document["results"]}


def test_inert_without_a_plan(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_plain="def test_one():\n    assert 1\n\ndef check_helper():\n    raise AssertionError('not a test')\n"
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert not (pytester.path / "reports").exists()
    assert "== acpcheck ==" not in result.stdout.str() and "check_helper" not in result.stdout.str()


def test_every_status_is_graded_and_reported(checks: pytest.Pytester) -> None:
    out = checks.path / "out"
    result = checks.runpytest(replay(checks), f"--acp-plan={EXAMPLE}", f"--acp-out={out}")
    document = results_of(out)
    assert statuses(document) == EXPECTED
    assert document["summary"] == {"pass": 2, "fail": 2, "warn": 2, "skip": 1, "manual": 1, "error": 1, "waived": 0}
    assert document["run"]["exitCode"] == 1
    # Plain pytest keeps its own exit codes: a FAIL is a failed test.
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        ["*FAIL*ACP-NET-902 [[]plan[]] fails*", "*10.3.0.0/16 overlaps 10.3.0.0/17*", "*2 warned*"]
    )


def test_results_json_entry_is_complete(checks: pytest.Pytester) -> None:
    out = checks.path / "out"
    checks.runpytest(replay(checks), f"--acp-plan={EXAMPLE}", f"--acp-out={out}")
    document = results_of(out)
    assert document["schema"] == RESULTS_SCHEMA
    assert {"id", "started", "finished", "profile", "plan", "acpcheck"} <= set(document["run"])
    failing = next(r for r in document["results"] if r["check"] == "ACP-NET-902")
    assert failing == {
        **failing,
        "title": "fails",
        "area": "NET",
        "severity": "high",
        "status": "fail",
        "target": "plan",
        "message": "10.3.0.0/16 overlaps 10.3.0.0/17",
        "evidence": {"cidr": "10.3.0.0/16"},
        "remediation": "fix the CIDR",
        "waiver": None,
    }
    assert failing["refs"][0].startswith("https://docs.alauda.io/")


def test_same_results_under_xdist(checks: pytest.Pytester) -> None:
    serial, parallel = checks.path / "serial", checks.path / "parallel"
    checks.runpytest_subprocess(replay(checks), f"--acp-plan={EXAMPLE}", f"--acp-out={serial}")
    result = checks.runpytest_subprocess(
        replay(checks), f"--acp-plan={EXAMPLE}", f"--acp-out={parallel}", "-n", "2", "--dist", "loadgroup"
    )
    result.stdout.fnmatch_lines(["*2 workers*"])
    strip = lambda doc: [{k: v for k, v in r.items() if k != "duration"} for r in doc["results"]]  # noqa: E731
    assert strip(results_of(parallel)) == strip(results_of(serial))
    assert results_of(parallel)["summary"] == results_of(serial)["summary"]


def test_node_checks_are_grouped_per_node(checks: pytest.Pytester) -> None:
    result = checks.runpytest(replay(checks), f"--acp-plan={EXAMPLE}", "--collect-only", "-q", "-k", "per_worker")
    # Only workers (w1, w2), never the control-plane nodes.
    result.stdout.fnmatch_lines(["*check_per_worker[[]w1[]]*", "*check_per_worker[[]w2[]]*"])
    assert "cp1" not in result.stdout.str()
    # The xdist_group mark sits on each parameter (test_same_results_under_xdist shows
    # the end-to-end effect); here we read the marks pytest attached.
    conftest = (
        "def pytest_collection_finish(session):\n    for item in session.items:\n        group = "
        "item.get_closest_marker('xdist_group')\n        if group: print('GROUP', item.name, group.args[0])\n"
    )
    checks.makeconftest(conftest)
    result = checks.runpytest(replay(checks), f"--acp-plan={EXAMPLE}", "--collect-only", "-q", "-s")
    result.stdout.fnmatch_lines(["GROUP check_per_worker[[]w1[]] w1", "GROUP check_per_worker[[]w2[]] w2"])


def test_profile_selects_and_regrades(checks: pytest.Pytester) -> None:
    profile = checks.path / "strict.yaml"
    profile.write_text(
        "name: strict\nextends: plan\nexclude: [ACP-NET-907, ACP-NET-906]\nfail_on: low\noverrides:\n  "
        "ACP-NET-902: {severity: info}\n"
    )
    out = checks.path / "out"
    checks.runpytest(replay(checks), f"--acp-plan={EXAMPLE}", f"--acp-out={out}", f"--acp-profile={profile}")
    got = statuses(results_of(out))
    assert ("ACP-NET-907", "plan") not in got and ("ACP-NET-906", "plan") not in got  # excluded
    assert ("ACP-NODE-908", "node:w1") not in got  # the plan profile has no node checks
    assert got[("ACP-NET-903", "plan")] == "fail"  # low >= fail_on low
    assert got[("ACP-NET-902", "plan")] == "warn"  # re-graded to info, below fail_on


def test_no_item_is_made_for_a_check_the_run_leaves_out(checks: pytest.Pytester) -> None:
    """Items are made only for selected checks (a plan-only run of 1,000 nodes makes no
    node items), and a node check that does not apply is one SKIP, not one per node."""
    collected = checks.runpytest(replay(checks), f"--acp-plan={EXAMPLE}", "--acp-profile=plan", "--collect-only", "-q")
    listing = collected.stdout.str()
    assert "ACP-NODE" not in listing and "check_per_worker" not in listing and "deselected" not in listing
    calico = checks.path / "calico.py"
    calico.write_text(
        CHECKS.split("@check(")[0]
        + textwrap.dedent(
            """
        @check(id="ACP-NODE-909", title="calico nodes", severity=Severity.HIGH, refs=REF, remediation="-",
               scope=Scope.NODE, applies=When(plugins=frozenset({"calico"})))
        def check_calico_node(node):
            \"\"\"Not for Kube-OVN plans.\"\"\"
            fail("must not run")

        @check(id="ACP-NODE-910", title="calico node set", severity=Severity.HIGH, refs=REF, remediation="-",
               scope=Scope.NODE, applies=When(plugins=frozenset({"calico"})))
        def check_calico_nodes(nodes):
            \"\"\"Not for Kube-OVN plans either (a cross-node check).\"\"\"
            fail("must not run")
        """
        )
    )
    out = checks.path / "out"
    checks.runpytest(
        replay(checks),
        f"--acp-plan={EXAMPLE}",
        f"--acp-out={out}",
        "--acp-select=ACP-NODE-909,ACP-NODE-910",
        str(calico),
    )
    results = results_of(out)["results"]
    assert [(r["check"], r["target"], r["status"]) for r in results] == [
        ("ACP-NODE-909", "node:*", "skip"),
        ("ACP-NODE-910", "node:*", "skip"),
    ]
    assert all("network plugin kube-ovn" in r["message"] for r in results)


def test_waiver_and_expired_waiver(checks: pytest.Pytester) -> None:
    waivers = checks.path / "waivers.yaml"
    waivers.write_text(
        textwrap.dedent(
            """
            waivers:
              - {check: ACP-NET-902, target: plan, reason: accepted for the lab, owner: net-team, expires: 2999-01-01}
              - {check: ACP-NODE-908, target: "node:w2", reason: old exception, owner: ops, expires: 2020-01-01}
            """
        )
    )
    out = checks.path / "out"
    checks.runpytest(replay(checks), f"--acp-plan={EXAMPLE}", f"--acp-out={out}", f"--acp-waivers={waivers}")
    document = results_of(out)
    by_key = {(r["check"], r["target"]): r for r in document["results"]}
    assert by_key[("ACP-NET-902", "plan")]["status"] == "waived"
    assert by_key[("ACP-NET-902", "plan")]["waiver"]["owner"] == "net-team"
    assert by_key[("ACP-NODE-908", "node:w2")]["status"] == "fail"
    assert "expired on 2020-01-01" in by_key[("ACP-NODE-908", "node:w2")]["message"]
    assert document["expiredWaivers"][0]["owner"] == "ops"
    assert document["summary"]["waived"] == 1


def test_expired_waiver_alone_fails_the_run(checks: pytest.Pytester) -> None:
    waivers = checks.path / "waivers.yaml"
    waivers.write_text("waivers:\n  - {check: ACP-NET-999, reason: gone, owner: ops, expires: 2020-01-01}\n")
    out = checks.path / "out"
    checks.runpytest(
        replay(checks),
        f"--acp-plan={EXAMPLE}",
        f"--acp-out={out}",
        f"--acp-waivers={waivers}",
        "--acp-select=ACP-NET-901",
    )
    document = results_of(out)
    assert document["summary"]["pass"] == 1 and document["summary"]["fail"] == 0
    assert document["run"]["exitCode"] == 1


def test_junit_names_checks_and_marks_failures(checks: pytest.Pytester) -> None:
    out = checks.path / "out"
    checks.runpytest(replay(checks), f"--acp-plan={EXAMPLE}", f"--acp-out={out}")
    suite = ET.parse(out / "junit.xml").getroot().find("testsuite")
    assert (
        suite is not None and suite.get("tests") == "9" and suite.get("failures") == "2" and suite.get("errors") == "1"
    )
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    failing = cases["ACP-NET-902 fails [plan]"]
    assert failing.find("failure") is not None and "fix the CIDR" in failing.find("failure").text
    assert cases["ACP-NET-907 broken check [plan]"].find("error") is not None
    assert cases["ACP-NET-906 needs a person [plan]"].find("skipped").get("message").startswith("MANUAL")


def test_summary_and_html_are_written(checks: pytest.Pytester) -> None:
    out = checks.path / "out"
    checks.runpytest(replay(checks), f"--acp-plan={EXAMPLE}", f"--acp-out={out}")
    summary = (out / "summary.md").read_text()
    assert summary.startswith("# acpcheck: prod-east — NOT compliant")
    assert summary.index("## ❌ FAIL (2)") < summary.index("## 💥 ERROR (1)") < summary.index("## ⚠️ WARN (2)")
    assert "**Fix:** fix the CIDR" in summary
    page = (out / "report.html").read_text()
    assert (
        page.startswith("<!doctype html>")
        and page.count("<script") == 1
        and '<script id="filter-script">' in page
        and "http://" not in page
    )
    assert "Always a violation." in page  # the check's rationale: the "why" of its finding


def test_allure_labels(checks: pytest.Pytester) -> None:
    allure_dir = checks.path / "allure"
    checks.runpytest(
        replay(checks),
        f"--acp-plan={EXAMPLE}",
        f"--acp-out={checks.path / 'out'}",
        f"--alluredir={allure_dir}",
        "--acp-select=ACP-NET-902",
    )
    documents = [json.loads(p.read_text()) for p in allure_dir.glob("*-result.json")]
    assert len(documents) == 1
    labels = {(label["name"], label["value"]) for label in documents[0]["labels"]}
    assert {
        ("severity", "critical"),
        ("feature", "NET"),
        ("check_id", "ACP-NET-902"),
        ("target", "plan"),
        ("tag", "ACP-NET-902"),
        ("tag", "plan"),
    } <= labels
    assert documents[0]["name"] == "ACP-NET-902 fails [plan]" and documents[0]["status"] == "failed"
    assert documents[0]["statusDetails"]["message"].startswith(
        "FAIL (high, fails at medium and above): 10.3.0.0/16 overlaps"
    )
    assert (allure_dir / "environment.properties").exists() and (allure_dir / "categories.json").exists()


def test_bad_plan_is_a_usage_error(pytester: pytest.Pytester) -> None:
    plan = pytester.path / "plan.yaml"
    plan.write_text(EXAMPLE.read_text().replace("clusterCIDR: 10.3.0.0/16", "clusterCIDR: 10.3.0.0/33"))
    result = pytester.runpytest(f"--acp-plan={plan}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"*{plan}:*: spec.network.clusterCIDR: '10.3.0.0/33' has an impossible prefix length*"]
    )


def test_checks_without_plan_say_what_is_missing(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_uses_plan="def test_x(plan):\n    pass\n")
    result = pytester.runpytest()
    result.stdout.fnmatch_lines(["*acpcheck checks need a plan: run with --acp-plan FILE*"])


def test_checks_get_their_evidence_without_fixtures_and_pack_fixtures_still_work(checks: pytest.Pytester) -> None:
    """A check asking only for what the run provides gets it with no per-item fixture
    work (the cost that dominated 1,000-node runs); a check pack's check that also
    asks for a fixture of its conftest.py is collected the usual way, same names."""
    checks.makeconftest(
        "import pytest\n\n@pytest.fixture\ndef bad_node():\n    return 'w1'\n\n"
        "def pytest_collection_finish(session):\n    for item in session.items:\n        print('ITEM', "
        "item.name, sorted(item.fixturenames))\n"
    )
    pack = checks.path / "check_pack.py"
    pack.write_text(
        CHECKS.split("@check(")[0]
        + textwrap.dedent(
            """
        @check(id="ACP-NODE-911", title="pack check with a fixture", severity=Severity.HIGH, refs=REF, remediation="-",
               scope=Scope.NODE, roles={"worker"})
        def check_with_fixture(node, bad_node):
            \"\"\"Uses the pack's fixture.\"\"\"
            if node.name == bad_node:
                fail(f"{node.name} is the bad one")
        """
        )
    )
    out = checks.path / "out"
    result = checks.runpytest(replay(checks), f"--acp-plan={EXAMPLE}", f"--acp-out={out}", "-s")
    result.stdout.fnmatch_lines(
        ["ITEM check_per_worker[[]w1[]] [[][]]", "ITEM check_with_fixture[[]w1[]] [[]'bad_node', 'node', 'request'[]]"]
    )
    got = statuses(results_of(out))
    assert got[("ACP-NODE-911", "node:w1")] == "fail" and got[("ACP-NODE-911", "node:w2")] == "pass"
    assert {k: v for k, v in got.items() if k[0] != "ACP-NODE-911"} == EXPECTED


def test_unreachable_node_is_error_and_the_rest_completes(checks: pytest.Pytester) -> None:
    factories = _node_factories()
    save_facts(
        checks.path / "facts",
        {
            **{name: factories.healthy_facts(name) for name in ("cp1", "cp2", "cp3", "w2")},
            "w1": GatherFailure("w1", "unreachable", "192.0.2.21:22 refused the connection"),
        },
    )
    out = checks.path / "out"
    checks.runpytest(replay(checks), f"--acp-plan={EXAMPLE}", f"--acp-out={out}")
    by_key = {(r["check"], r["target"]): r for r in results_of(out)["results"]}
    assert by_key[("ACP-NODE-908", "node:w1")]["status"] == "error"
    assert (
        by_key[("ACP-NODE-908", "node:w1")]["message"]
        == "could not check: unreachable: 192.0.2.21:22 refused the connection"
    )
    assert by_key[("ACP-NODE-908", "node:w2")]["status"] == "fail"
    assert by_key[("ACP-NET-901", "plan")]["status"] == "pass"


def test_sarif_puts_findings_on_the_plan_file(checks: pytest.Pytester) -> None:
    waivers = checks.path / "waivers.yaml"
    waivers.write_text("waivers:\n  - {check: ACP-NET-903, reason: lab only, owner: ops, expires: 2999-01-01}\n")
    out = checks.path / "out"
    checks.runpytest(replay(checks), f"--acp-plan={EXAMPLE}", f"--acp-out={out}", f"--acp-waivers={waivers}")
    document = json.loads((out / "results.sarif").read_text())
    assert document["version"] == "2.1.0"
    run = document["runs"][0]
    # The target is in the result's properties and location, not in its message.
    by_rule = {(r["ruleId"], f"[{r['properties']['target']}]"): r for r in run["results"]}
    # A FAIL (it failed the run): an error; the explicit warn() of a critical check: a warning;
    # waived: a suppressed note.
    assert by_rule[("ACP-NET-902", "[plan]")]["level"] == "error"
    assert by_rule[("ACP-NET-904", "[plan]")]["level"] == "warning"
    assert by_rule[("ACP-NET-903", "[plan]")]["level"] == "note"
    assert by_rule[("ACP-NET-903", "[plan]")]["suppressions"][0]["justification"].startswith("lab only")
    node_finding = by_rule[("ACP-NODE-908", "[node:w2]")]
    assert node_finding["locations"][0]["logicalLocations"][0]["fullyQualifiedName"] == "node:w2"
    # The plan is outside the working directory: relative to its own directory, on w2's line of spec.nodes.
    assert node_finding["locations"][0]["physicalLocation"]["artifactLocation"] == {
        "uri": EXAMPLE.name,
        "uriBaseId": "PLANDIR",
    }
    assert run["originalUriBaseIds"]["PLANDIR"]["uri"] == EXAMPLE.parent.as_uri() + "/"
    line = node_finding["locations"][0]["physicalLocation"]["region"]["startLine"]
    assert EXAMPLE.read_text().splitlines()[line - 1].strip().startswith("- {name: w2,")
    rules = {rule["id"]: rule for rule in run["tool"]["driver"]["rules"]}
    assert set(rules) == {
        "ACP-NET-901",
        "ACP-NET-902",
        "ACP-NET-903",
        "ACP-NET-904",
        "ACP-NET-905",
        "ACP-NET-906",
        "ACP-NET-907",
        "ACP-NODE-908",
    }
    assert rules["ACP-NET-902"]["fullDescription"]["text"] == "Always a violation."  # the rationale, also under pytest
    assert not any(
        r["ruleId"] in ("ACP-NET-901", "ACP-NET-907") for r in run["results"]
    )  # PASS and ERROR are not findings
    (invocation,) = run["invocations"]
    assert (
        invocation["executionSuccessful"] is False
        and invocation["toolExecutionNotifications"][0]["associatedRule"]["id"] == "ACP-NET-907"
    )
