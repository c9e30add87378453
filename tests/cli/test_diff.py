"""`acpcheck diff OLD NEW` and `acpcheck run --baseline OLD` on real runs.

The runs are real `acpcheck run --profile plan` processes (no connection) of the
defective example plan (OLD), and of the same plan file with one defect fixed (the
service CIDR no longer overlaps the pod CIDR: ACP-NET-001), one added (the Kube-OVN
join CIDR now overlaps the pod CIDR: ACP-NET-002) and one changed (another invalid
VRID: ACP-NET-014's message); ACP-NET-012, ACP-NET-017 and ACP-VER-001 stay as they were.
"""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from runner import acpcheck

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data")) if "report_runs" not in sys.modules else None
import report_runs  # noqa: E402  (tests/data: the shared report runs)

ROOT = Path(__file__).resolve().parents[2]
DEFECTIVE = ROOT / "examples" / "defective" / "workload-with-defects.yaml"
DIFF_SCHEMA = json.loads((ROOT / "reports" / "diff.schema.json").read_text())
RESULTS_SCHEMA = json.loads((ROOT / "reports" / "results.schema.json").read_text())
SARIF_SCHEMA = json.loads((ROOT / "tests" / "data" / "sarif-schema-2.1.0.json").read_text())

FIXED = {"ACP-NET-001"}
NEW = {"ACP-NET-002"}
CHANGED = {"ACP-NET-014"}
STILL = {"ACP-NET-012", "ACP-NET-017", "ACP-VER-001"}


def next_plan(text: str) -> str:
    """The defective plan after the change described in the module's docstring."""
    changed = (
        text.replace("serviceCIDR: 10.3.128.0/17", "serviceCIDR: 10.5.0.0/16")
        .replace("joinCIDR: 10.4.0.0/16", "joinCIDR: 10.3.0.0/24")
        .replace("vrid: 300", "vrid: 256")
    )
    assert changed.count("10.5.0.0/16") == changed.count("10.3.0.0/24") == changed.count("vrid: 256") == 1
    return changed


@dataclass(frozen=True)
class Runs:
    directory: Path
    plan: Path
    old: Path  # results.json of the defective plan
    new: Path  # results.json of the plan after the change

    def run(self, name: str, plan_text: str, *extra: str) -> tuple[int, Path, str]:
        """`acpcheck run --profile plan` of ``plan_text`` written to the runs' plan file (the
        path stays the same, as a plan kept in a repository does); (exit code, out dir, stdout)."""
        self.plan.write_text(plan_text)
        out = self.directory / name
        done = acpcheck("run", "--plan", str(self.plan), "--profile", "plan", "--out", str(out), *extra, cwd=ROOT)
        assert "Traceback" not in done.stderr, done.stderr
        return done.returncode, out, done.stdout


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    directory = tmp_path_factory.mktemp("diff")
    plan = directory / "plan.yaml"
    made = Runs(directory, plan, directory / "old" / "results.json", directory / "new" / "results.json")
    assert made.run("old", DEFECTIVE.read_text())[0] == 1
    assert made.run("new", next_plan(DEFECTIVE.read_text()))[0] == 1
    return made


def diff(*args: str) -> tuple[int, str, str]:
    done = acpcheck("diff", *args, env={"COLUMNS": "80"})
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, done.stdout, done.stderr


def diff_json(old: Path, new: Path) -> tuple[int, dict[str, Any]]:
    code, out, err = diff(str(old), str(new), "--format", "json")
    assert err == "", err
    document: dict[str, Any] = json.loads(out)
    jsonschema.Draft202012Validator(DIFF_SCHEMA).validate(document)
    return code, document


def by_category(document: dict[str, Any]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {"new": set(), "fixed": set(), "changed": set(), "still-failing": set()}
    for finding in document["findings"]:
        found[finding["category"]].add(finding["check"])
    return found


def test_diff_sorts_every_finding_into_new_fixed_changed_and_still_failing(runs: Runs) -> None:
    code, document = diff_json(runs.old, runs.new)
    assert document["old"]["sha256"] == hashlib.sha256(runs.old.read_bytes()).hexdigest()
    assert code == 1 and document["exitCode"] == 1  # something is new
    assert by_category(document) == {"new": NEW, "fixed": FIXED, "changed": CHANGED, "still-failing": STILL}
    assert document["counts"] == {"new": 1, "fixed": 1, "changed": 1, "still-failing": 3}
    fixed = next(f for f in document["findings"] if f["category"] == "fixed")
    assert fixed["old"]["status"] == "fail" and fixed["new"] == {"status": "pass", "message": ""}
    changed = next(f for f in document["findings"] if f["category"] == "changed")
    assert "VRID 300" in changed["old"]["message"] and "VRID 256" in changed["new"]["message"]
    assert document["old"]["runId"] != document["new"]["runId"]
    assert document["old"]["cluster"] == document["new"]["cluster"] == "staging-west"


def test_diff_text_names_each_finding_under_its_category(runs: Runs) -> None:
    code, out, err = diff(str(runs.old), str(runs.new))
    assert code == 1 and err == ""
    assert all(len(line) <= 80 or "https://" in line for line in out.splitlines())  # wrapped; a URL is never cut
    headings = [line for line in out.splitlines() if line and not line.startswith(" ")]
    assert headings[1:] == [
        "New (1)",
        "Fixed (1)",
        "Changed (1)",
        "Still failing (3)",
        "1 new, 1 fixed, 1 changed, 3 still failing",
    ]
    assert "  FAIL ACP-NET-002 [plan]" in out
    assert "  FAIL → PASS ACP-NET-001 [plan]" in out
    assert "was: VRID 300" in out and "now: VRID 256" in out


def test_nothing_new_exits_0_and_the_reverse_diff_swaps_new_and_fixed(runs: Runs) -> None:
    code, document = diff_json(runs.new, runs.new)
    assert code == 0 and by_category(document)["still-failing"] == NEW | CHANGED | STILL
    code, document = diff_json(runs.new, runs.old)
    assert code == 1
    assert by_category(document) == {"new": FIXED, "fixed": NEW, "changed": CHANGED, "still-failing": STILL}


def test_a_plan_whose_lines_moved_changes_no_finding(runs: Runs, tmp_path: Path) -> None:
    # Messages cite the plan as <file>:<line>: two comment lines on top move every line,
    # and the plan given by another path (a copy) must not turn every finding into "changed".
    moved = tmp_path / "moved.yaml"
    moved.write_text("# reviewed\n# again\n" + DEFECTIVE.read_text())
    done = acpcheck("run", "--plan", str(moved), "--profile", "plan", "--out", str(tmp_path / "out"))
    assert done.returncode == 1, done.stderr
    code, document = diff_json(runs.old, tmp_path / "out" / "results.json")
    assert code == 0
    assert by_category(document)["still-failing"] == FIXED | CHANGED | STILL and document["counts"]["changed"] == 0


def bad(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("name", "content", "said"),
    [
        ("missing.json", None, "file not found"),
        ("a-directory", "", "not a regular file (it is a directory)"),
        ("summary.md", "# acpcheck: staging-west\n", "not readable JSON: Expecting value"),
        ("sarif.json", '{"version": "2.1.0", "runs": []}', 'not a results.json: it has no "schema"'),
        ("future.json", '{"schema": "acpcheck/results/v9"}', "schema: acpcheck/results/v9 is not a version"),
        ("other.json", '{"schema": "acpcheck/remediation/v1"}', "schema: not a results.json"),
        (
            "status.json",
            '{"schema": "acpcheck/results/v1", "run": {"id": "r", "cluster": "c"}, "results": [{"check": '
            '"ACP-NET-001", "title": "t", "severity": "high", "status": "broken", "target": "plan", "message": ""}]}',
            "results[0].status: unknown status 'broken'",
        ),
    ],
)
def test_bad_input_exits_4_naming_the_file_and_what_is_wrong(
    runs: Runs, tmp_path: Path, name: str, content: str | None, said: str
) -> None:
    path = tmp_path / name
    if content == "":
        path.mkdir()
    elif content is not None:
        bad(path, content)
    for args in ([str(path), str(runs.new)], [str(runs.old), str(path)]):
        code, out, err = diff(*args)
        assert code == 4 and out == ""
        assert f"{path}: {said}" in err or f"{path}:1: {said}" in err, err


def test_results_of_two_clusters_are_refused(runs: Runs, tmp_path: Path) -> None:
    other = tmp_path / "calico"
    done = acpcheck("run", "--plan", str(ROOT / "examples" / "calico.yaml"), "--profile", "plan", "--out", str(other))
    assert (other / "results.json").exists(), done.stderr
    code, out, err = diff(str(runs.old), str(other / "results.json"))
    assert code == 4 and out == ""
    assert "is a run of cluster 'branch-calico'" in err and "of cluster 'staging-west'" in err, err


# ---------------------------------------------------------------------------
# acpcheck run --baseline


def test_baseline_run_fails_only_on_a_new_finding(runs: Runs) -> None:
    code, out, stdout = runs.run("gated-new", next_plan(DEFECTIVE.read_text()), "--baseline", str(runs.old))
    assert code == 1  # ACP-NET-002 is new
    document = json.loads((out / "results.json").read_text())
    jsonschema.Draft202012Validator(RESULTS_SCHEMA).validate(document)
    baseline = document["run"]["baseline"]
    assert baseline["file"] == str(runs.old) and baseline["runId"] == json.loads(runs.old.read_text())["run"]["id"]
    assert baseline["counts"] == {"new": 1, "fixed": 1, "changed": 1, "still-failing": 3}
    assert {k["check"]: k["state"] for k in baseline["known"]} == {
        **dict.fromkeys(STILL, "unchanged"),
        **dict.fromkeys(CHANGED, "updated"),
    }
    said = "4 of this run's findings were in it (3 unchanged, 1 changed)"
    assert said in " ".join(stdout.split()) and said in (out / "summary.md").read_text()

    sarif = json.loads((out / "results.sarif").read_text())
    jsonschema.Draft4Validator(SARIF_SCHEMA).validate(sarif)
    states = {r["ruleId"]: r["baselineState"] for r in sarif["runs"][0]["results"]}
    assert states == {
        **dict.fromkeys(NEW, "new"),
        **dict.fromkeys(STILL, "unchanged"),
        **dict.fromkeys(CHANGED, "updated"),
    }


def test_baseline_run_passes_when_only_old_findings_remain(runs: Runs) -> None:
    # The same defects (ACP-NET-001 fixed, nothing added): 4 FAIL results, all known, exit 0.
    text = DEFECTIVE.read_text().replace("serviceCIDR: 10.3.128.0/17", "serviceCIDR: 10.5.0.0/16")
    code, out, stdout = runs.run("gated-old", text, "--baseline", str(runs.old))
    document = json.loads((out / "results.json").read_text())
    assert document["summary"]["fail"] == 4
    assert code == 0 and document["run"]["exitCode"] == 0
    assert document["run"]["baseline"]["counts"] == {"new": 0, "fixed": 1, "changed": 0, "still-failing": 4}
    states = {r["baselineState"] for r in json.loads((out / "results.sarif").read_text())["runs"][0]["results"]}
    assert states == {"unchanged"}
    # Without the baseline the same run fails.
    assert runs.run("ungated", text)[0] == 1


def test_an_expired_waiver_still_fails_a_baseline_run(runs: Runs) -> None:
    waivers = runs.directory / "waivers.yaml"
    waivers.write_text(
        "waivers:\n  - {check: ACP-NET-012, target: plan, reason: two for now, owner: ops@example.com, "
        "expires: 2020-01-01}\n"
    )
    code, out, _ = runs.run("expired", DEFECTIVE.read_text(), "--baseline", str(runs.old), "--waivers", str(waivers))
    document = json.loads((out / "results.json").read_text())
    assert document["run"]["baseline"]["counts"]["new"] == 0 and document["expiredWaivers"]
    assert code == 1


def test_a_bad_baseline_is_bad_input_before_anything_runs(runs: Runs, tmp_path: Path) -> None:
    summary = shutil.copy(runs.old.with_name("summary.md"), tmp_path / "summary.md")
    code, out, _ = runs.run("bad-baseline", DEFECTIVE.read_text(), "--baseline", str(summary))
    assert code == 4 and not out.exists()
    done = acpcheck(
        "run", "--plan", str(ROOT / "examples" / "calico.yaml"), "--profile", "plan", "--out", str(tmp_path / "c"),
        "--baseline", str(runs.old),
    )  # fmt: skip
    assert done.returncode == 4 and not (tmp_path / "c").exists()
    assert f"{runs.old}: --baseline: is a run of cluster 'staging-west'" in done.stderr, done.stderr


def test_plain_pytest_takes_the_baseline_too(runs: Runs, tmp_path: Path) -> None:
    """`pytest -p acpcheck --acp-baseline=…` gates the same way (the --acp-* options mirror run's)."""
    import subprocess
    import sys

    from acpcheck.run.inputs import CHECKS_DIR

    runs.plan.write_text(DEFECTIVE.read_text())
    command = [
        sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", f"--acp-plan={runs.plan}",
        "--acp-profile=plan", f"--acp-out={tmp_path / 'out'}", f"--acp-baseline={runs.old}", str(CHECKS_DIR),
    ]  # fmt: skip
    subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=120, check=False)
    document = json.loads((tmp_path / "out" / "results.json").read_text())
    assert document["run"]["exitCode"] == 0 and document["run"]["baseline"]["counts"]["still-failing"] == 5
    bad_baseline = runs.old.with_name("summary.md")
    done = subprocess.run(
        [*command[:-2], f"--acp-baseline={bad_baseline}", f"--acp-out={tmp_path / 'bad'}", command[-1]],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert done.returncode == 4 and f"{bad_baseline}:1: --baseline: not readable JSON" in done.stdout + done.stderr


def test_a_finding_whose_check_did_not_run_is_fixed_with_no_result(runs: Runs, tmp_path: Path) -> None:
    # The later run selected the NET checks only: ACP-VER-001 has no result there at all.
    done = acpcheck(
        "run", "--plan", str(DEFECTIVE), "--profile", "plan", "--check", "ACP-NET-*", "--out", str(tmp_path / "net"),
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    code, document = diff_json(runs.old, tmp_path / "net" / "results.json")
    assert code == 0
    fixed = [f for f in document["findings"] if f["category"] == "fixed"]
    assert [(f["check"], f["new"]) for f in fixed] == [("ACP-VER-001", None)]
    _, out, _ = diff(str(runs.old), str(tmp_path / "net" / "results.json"))
    assert "FAIL → no result ACP-VER-001 [plan]" in out


def test_every_status_but_pass_and_skip_is_a_finding(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The every-status run (tests/data/report_runs.py): FAIL, ERROR (an unreachable node),
    WARN, MANUAL and WAIVED results are findings, PASS and SKIP are not; against itself,
    every finding is still failing, and as a baseline of the same run it leaves nothing
    new, yet the run still fails on its expired waiver."""
    first = report_runs.every_status(tmp_path_factory.getbasetemp())
    results = first.out / "results.json"
    document = json.loads(results.read_text())
    code, compared = diff_json(results, results)
    assert code == 0 and set(compared["counts"].values()) - {0} == {len(compared["findings"])}
    statuses = {f["new"]["status"] for f in compared["findings"]}
    assert statuses == {"fail", "error", "warn", "manual", "waived"}
    assert len(compared["findings"]) == sum(n for s, n in document["summary"].items() if s not in ("pass", "skip"))

    again = report_runs.run_every_status(tmp_path_factory.mktemp("again"), "out", "--baseline", str(results))
    gated = json.loads((again.out / "results.json").read_text())
    assert gated["run"]["baseline"]["counts"]["new"] == 0 and gated["expiredWaivers"]
    assert again.process.returncode == 1  # the expired waiver still fails the run


# ---------------------------------------------------------------------------
# fleets (acpcheck/results/v2 with run.fleet), and v1 files next to v2 ones


def fleet_files(tmp_path: Path) -> tuple[Path, Path]:
    """OLD: the three-cluster fleet (tests/data/fleet_documents.py: global ready, east
    blocked, west's API down). NEW: west answers again (its three ERRORs pass), east
    still fails, and global has a new FAIL on node cp1 (a node east has too)."""
    import fleet_documents as fleet

    old = fleet.three_clusters()
    results = [r for r in copy.deepcopy(old["results"]) if r["cluster"] != "west"]
    results += [fleet.result("west", f"ACP-UPG-0{n}", "pass", "cluster:west") for n in (10, 12, 13)]
    results.append(fleet.result("global", "ACP-UPG-011", "fail", "node:cp1", "kubelet v1.30 is 3 minors behind"))
    results = [r for r in results if not (r["cluster"], r["target"], r["status"]) == ("global", "node:cp1", "pass")]
    new = fleet.document(results, run_id="20261208T200000Z-bbbb")
    paths = tmp_path / "old.json", tmp_path / "new.json"
    for path, document in zip(paths, (old, new), strict=True):
        path.write_text(json.dumps(document))
    return paths


def test_diff_of_two_fleet_runs_lists_changes_per_cluster(tmp_path: Path) -> None:
    old, new = fleet_files(tmp_path)
    code, document = diff_json(old, new)
    assert code == 1 and document["counts"] == {"new": 1, "fixed": 3, "changed": 0, "still-failing": 2}
    per_cluster = {(f["cluster"], f["check"], f["target"]): f["category"] for f in document["findings"]}
    assert per_cluster == {
        ("global", "ACP-UPG-011", "node:cp1"): "new",  # east's node:cp1 passes: another finding
        ("west", "ACP-UPG-010", "cluster:west"): "fixed",
        ("west", "ACP-UPG-012", "cluster:west"): "fixed",
        ("west", "ACP-UPG-013", "cluster:west"): "fixed",
        ("global", "ACP-UPG-012", "cluster:global"): "still-failing",
        ("east", "ACP-UPG-010", "cluster:east"): "still-failing",
    }
    code, out, err = diff(str(old), str(new))
    assert code == 1 and err == ""
    lines = out.splitlines()
    assert [line for line in lines if line.startswith("== ")] == [
        "== cluster global: 1 new, 1 still failing",
        "== cluster east: 1 still failing",
        "== cluster west: 3 fixed",
    ]
    east = lines.index("== cluster east: 1 still failing")
    # Under its cluster's heading a finding does not repeat the cluster.
    assert lines[east + 2 : east + 4] == [
        "  Still failing (1)",
        "    FAIL ACP-UPG-010 [cluster:east] the live version is in range",
    ]
    assert lines[-1] == "1 new, 3 fixed, 0 changed, 2 still failing"
    # Nothing new the other way round... but west's ERRORs are new then.
    assert diff_json(new, old)[1]["counts"] == {"new": 3, "fixed": 1, "changed": 0, "still-failing": 2}


def test_a_fleet_is_compared_only_with_the_same_fleet(tmp_path: Path) -> None:
    old, new = fleet_files(tmp_path)
    other = json.loads(new.read_text())
    other["run"]["cluster"] = other["run"]["fleet"]["name"] = "staging"
    new.write_text(json.dumps(other))
    code, out, err = diff(str(old), str(new))
    assert code == 4 and out == ""
    assert f"{new}: run.cluster: is a run of fleet 'staging', but {old} is of fleet 'prod'" in err, err


def test_a_v1_results_json_compares_with_a_v2_one(runs: Runs, tmp_path: Path) -> None:
    """results.json written before v2 is still read: its results are of run.cluster."""
    document = json.loads(runs.new.read_text())
    if document["schema"] == "acpcheck/results/v1":  # the other version of the same run
        document.update(schema="acpcheck/results/v2")
        document["run"]["fleet"] = None
        for result in document["results"]:
            result["cluster"] = document["run"]["cluster"]
    else:
        document.update(schema="acpcheck/results/v1")
        del document["run"]["fleet"]
        for result in document["results"]:
            del result["cluster"]
    other = tmp_path / "other-version.json"
    other.write_text(json.dumps(document))
    assert diff_json(runs.old, other)[1]["findings"] == diff_json(runs.old, runs.new)[1]["findings"]
    assert diff_json(other, runs.new)[1]["counts"] == {"new": 0, "fixed": 0, "changed": 0, "still-failing": 5}
