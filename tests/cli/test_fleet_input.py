"""`acpcheck run --fleet` refuses bad input before it contacts anything: exit 4, every
problem with its file, line and field, no report directory half-written; and the
controller refuses evidence a worker sends outside a member's directory.

The end-to-end fleet runs (test API servers as clusters, -n 2, remote workers) are in
tests/fleet/.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from runner import acpcheck

from acpcheck.errors import InputError
from acpcheck.model.fleet import load_fleet
from acpcheck.run.fleetrun import receive_evidence
from acpcheck.run.inputs import prepare_run

FLEET = """apiVersion: acpcheck/v1
kind: Fleet
metadata: {name: prod}
spec:
  acp: {version: "4.3", upgradeFrom: "4.2"}
  discover: false
  clusters:
    - {name: global, role: global, type: on-premise, kubeconfig: kube/global.yaml}
    - {name: east, role: workload, type: on-premise, kubeconfig: kube/east.yaml}
"""


def write_fleet(directory: Path, text: str = FLEET) -> Path:
    path = directory / "fleet.yaml"
    path.write_text(text)
    return path


def test_a_missing_kubeconfig_is_exit_4_naming_the_fleet_entry_and_nothing_is_written(tmp_path: Path) -> None:
    fleet = write_fleet(tmp_path)
    out = tmp_path / "out"
    result = acpcheck("run", "--fleet", str(fleet), "--out", str(out))
    assert result.returncode == 4, result.stdout + result.stderr
    assert "kube/global.yaml" in result.stderr and "kube/east.yaml" in result.stderr  # every problem at once
    assert not (out / "results.json").exists()


def test_a_schema_problem_in_the_fleet_file_is_exit_4_with_file_and_line(tmp_path: Path) -> None:
    fleet = write_fleet(tmp_path, FLEET.replace("role: workload", "role: worker"))
    result = acpcheck("run", "--fleet", str(fleet), "--out", str(tmp_path / "out"))
    assert result.returncode == 4
    assert f"{fleet}:9" in result.stderr, result.stderr  # the east entry's line
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("option", [["--kubeconfig", "k.yaml"], ["--context", "c"], ["--remediate"]])
def test_run_wide_cluster_options_are_refused_with_a_fleet(tmp_path: Path, option: list[str]) -> None:
    fleet = write_fleet(tmp_path)
    result = acpcheck("run", "--fleet", str(fleet), *option, "--out", str(tmp_path / "out"))
    assert result.returncode == 4
    assert f"{option[0]}: not with --fleet" in result.stderr, result.stderr


def test_plan_and_fleet_are_one_or_the_other(tmp_path: Path) -> None:
    fleet = write_fleet(tmp_path)
    result = acpcheck("run", "--fleet", str(fleet), "--plan", str(fleet))
    assert result.returncode == 4
    assert "not allowed with argument" in result.stderr


def test_validate_names_every_member(tmp_path: Path) -> None:
    result = acpcheck("validate", "--fleet", str(write_fleet(tmp_path)))
    assert result.returncode == 0, result.stderr
    assert "valid fleet prod (2 clusters: global, east)" in result.stdout


def _prepared(tmp_path: Path):  # type: ignore[no-untyped-def]
    (tmp_path / "kube").mkdir()
    server = "https://127.0.0.1:9"
    for name in ("global", "east"):
        (tmp_path / "kube" / f"{name}.yaml").write_text(
            "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
            f"clusters: [{{name: c, cluster: {{server: '{server}'}}}}]\n"
            "users: [{name: u, user: {token: not-a-real-token}}]\n"
            "contexts: [{name: c, context: {cluster: c, user: u}}]\n"
        )
    inputs = prepare_run("", "upgrade", out=str(tmp_path / "out"), fleet=str(write_fleet(tmp_path)))
    from acpcheck.run.settings import Settings

    return inputs, Settings.of(inputs)


@pytest.mark.parametrize(
    ("sent", "refused"),
    [
        ({"east": {"../../escaped": "x"}}, "refused evidence file '../../escaped'"),
        ({"east": {"/etc/passwd": "x"}}, "refused evidence file '/etc/passwd'"),
        ({"north": {"cluster/cluster.json": "{}"}}, "a cluster this run does not have: 'north'"),
        ({"east": {"cluster/cluster.json": 7}}, "refused evidence file 'cluster/cluster.json'"),
    ],
)
def test_the_controller_writes_only_inside_a_members_directory(tmp_path: Path, sent: dict, refused: str) -> None:
    inputs, settings = _prepared(tmp_path)
    try:
        with pytest.raises(InputError) as error:
            receive_evidence(settings, sent, "gw0")
        assert refused in error.value.problems[0].message
        assert not (tmp_path / "escaped").exists()
    finally:
        inputs.out.release()


def test_the_controller_keeps_what_a_worker_gathered_under_the_members_directory(tmp_path: Path) -> None:
    inputs, settings = _prepared(tmp_path)
    try:
        from acpcheck.sources.cluster import gather_cluster

        east = load_fleet(tmp_path / "fleet.yaml").member("east")
        assert east is not None
        evidence = gather_cluster(east.plan)  # nothing listens on port 9: an evidence document that says so
        import json

        receive_evidence(settings, {"east": {"cluster/cluster.json": json.dumps(evidence.as_dict())}}, "gw1")
        saved = tmp_path / "out" / "facts" / "east" / "cluster" / "cluster.json"
        assert json.loads(saved.read_text())["target"] == "cluster:east"
        assert settings.clusters["east"].evidence.raw("cluster").failure is not None
    finally:
        inputs.out.release()
