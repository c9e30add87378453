"""The fleet file (acpcheck.model.fleet): loading, every kind of problem at file:line, the
plans made from entries, discovery, and the plain data xdist workers rebuild a fleet from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from acpcheck.errors import InputError
from acpcheck.grading import not_applicable
from acpcheck.model.check import REGISTRY
from acpcheck.model.fleet import (
    ENTRY_KUBERNETES_PLACEHOLDER,
    discover_members,
    entry_plan,
    fleet_from_data,
    fleet_json_schema,
    fleet_to_data,
    load_fleet,
)
from acpcheck.testing import run_check

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "fleet" / "fleet.yaml"

FLEET = """\
apiVersion: acpcheck/v1
kind: Fleet
metadata:
  name: prod
spec:
  acp:
    version: "4.3"
    upgradeFrom: "4.2"
  clusters:
    - name: global
      role: global
      type: on-premise
      kubeconfig: kube/global.yaml
      context: global-admin
      plan: plans/global.yaml
    - name: business-1
      kubeconfig: kube/business-1.yaml
      context: b1
    - name: edge
      type: imported
      kubeconfig: /etc/acp/edge.yaml
      upgradeFrom: "4.1"
"""

PLAN = """\
apiVersion: acpcheck/v1
kind: ClusterPlan
metadata: {name: global}
spec:
  acp: {version: "4.3", upgradeFrom: "4.2"}
  cluster: {role: global, type: on-premise, kubernetesVersion: "1.33.7"}
  network: {clusterCIDR: 10.3.0.0/16, serviceCIDR: 10.4.0.0/16}
  kubeconfig: plan-own.kubeconfig
"""


def write(directory: Path, fleet: str = FLEET, plan: str | None = PLAN) -> Path:
    (directory / "plans").mkdir(exist_ok=True)
    if plan is not None:
        (directory / "plans" / "global.yaml").write_text(plan)
    path = directory / "fleet.yaml"
    path.write_text(fleet)
    return path


def problems_of(path: Path) -> list[str]:
    with pytest.raises(InputError) as raised:
        load_fleet(path)
    return [str(problem) for problem in raised.value.problems]


# ---------------------------------------------------------------------------
# A good fleet


def test_good_fleet_members_in_file_order(tmp_path: Path) -> None:
    fleet = load_fleet(write(tmp_path))
    assert (fleet.name, fleet.target, fleet.file) == ("prod", "4.3", str(tmp_path / "fleet.yaml"))
    assert [(m.name, m.role, m.type, m.upgrade_from, m.discovered) for m in fleet.members] == [
        ("global", "global", "on-premise", "4.2", False),
        ("business-1", "workload", "on-premise", "4.2", False),  # the fleet's upgradeFrom
        ("edge", "workload", "imported", "4.1", False),  # its own
    ]
    assert fleet.global_member is fleet.member("global")
    assert fleet.member("nope") is None
    assert all(member.unreachable is None for member in fleet.members)


def test_member_with_a_plan_file_takes_the_entry_kubeconfig_and_context(tmp_path: Path) -> None:
    plan = load_fleet(write(tmp_path)).member("global").plan  # type: ignore[union-attr]
    assert plan.declared
    assert plan.spec.kubeconfig == str(tmp_path / "kube" / "global.yaml")  # relative to the fleet file, absolute
    assert plan.spec.kubeconfig_context == "global-admin"
    assert plan.spec.cluster.kubernetes_version == "1.33.7"  # the rest is the plan file's
    assert plan.where("spec", "cluster", "kubernetesVersion") == f"{tmp_path / 'plans' / 'global.yaml'}:6"


def test_entry_plan_is_a_validated_plan_located_at_the_entry(tmp_path: Path) -> None:
    fleet = load_fleet(write(tmp_path))
    plan = fleet.member("business-1").plan  # type: ignore[union-attr]
    assert plan == entry_plan(fleet, 1)
    assert not plan.declared
    assert plan.metadata.name == "business-1"
    assert (plan.spec.acp.version, plan.spec.acp.upgrade_from) == ("4.3", "4.2")
    assert (plan.spec.cluster.role, plan.spec.cluster.type) == ("workload", "on-premise")
    assert plan.spec.cluster.kubernetes_version == ENTRY_KUBERNETES_PLACEHOLDER
    assert plan.spec.network is None  # unknown: checks that read it SKIP
    assert plan.spec.kubeconfig == str(tmp_path / "kube" / "business-1.yaml")
    assert plan.spec.kubeconfig_context == "b1"
    fleet_file = str(tmp_path / "fleet.yaml")
    assert plan.file == fleet_file
    assert plan.where("metadata", "name") == f"{fleet_file}:16"
    assert plan.where("spec", "kubeconfig") == f"{fleet_file}:17"
    assert plan.where("spec", "acp", "version") == f"{fleet_file}:7"  # the fleet's target
    assert plan.where("spec", "cluster", "type") == f"{fleet_file}:16"  # not written: the entry's line
    edge = fleet.member("edge").plan  # type: ignore[union-attr]
    assert edge.spec.kubeconfig == "/etc/acp/edge.yaml"
    assert edge.where("spec", "acp", "upgradeFrom") == f"{fleet_file}:22"


def test_only_plan_free_checks_apply_to_an_entry_plan(tmp_path: Path) -> None:
    import acpcheck.checks.fleet
    import acpcheck.checks.versions  # noqa: F401 — registers the plan checks

    fleet = load_fleet(write(tmp_path))
    made, declared = fleet.member("business-1").plan, fleet.member("global").plan  # type: ignore[union-attr]
    plan_check = REGISTRY["ACP-UPG-001"]
    fleet_check = REGISTRY["ACP-UPG-031"]
    assert not plan_check.plan_free and fleet_check.plan_free
    reason = not_applicable(plan_check, made)
    assert reason is not None and "business-1 has no plan file in the fleet" in reason
    assert not_applicable(plan_check, declared) is None
    assert not_applicable(fleet_check, made) is None
    result = run_check(acpcheck.checks.versions.check_upgrade_path_supported, made)
    assert result.status == "skip" and "no plan file" in result.message


def test_the_example_fleet_loads() -> None:
    fleet = load_fleet(EXAMPLE)
    assert fleet.global_member is not None and fleet.global_member.plan.declared
    assert {m.name for m in fleet.members} == {"global", "business-1", "edge-eks", "legacy"}


# ---------------------------------------------------------------------------
# Problems: each at file:line, exit 4 (InputError)


def test_bad_yaml(tmp_path: Path) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text("apiVersion: acpcheck/v1\nkind: Fleet\nmetadata: {name: prod\n")
    [problem] = problems_of(path)
    assert problem.startswith(f"{path}:") and "invalid YAML" in problem


def test_missing_field_and_no_clusters(tmp_path: Path) -> None:
    fleet = FLEET.replace('    version: "4.3"\n', "").split("  clusters:")[0] + "  clusters: []\n"
    problems = problems_of(write(tmp_path, fleet))
    assert f"{tmp_path / 'fleet.yaml'}:6: spec.acp.version: required field is missing" in problems
    assert any(p.startswith(f"{tmp_path / 'fleet.yaml'}:8: spec.clusters:") and "at least 1" in p for p in problems)


def test_two_globals(tmp_path: Path) -> None:
    fleet = FLEET.replace("    - name: edge\n", "    - name: edge\n      role: global\n")
    [problem] = problems_of(write(tmp_path, fleet))
    assert problem == (
        f"{tmp_path / 'fleet.yaml'}:20: spec.clusters[2].role: a fleet has one global cluster; "
        f"{tmp_path / 'fleet.yaml'}:10 already names one"
    )


def test_duplicate_names(tmp_path: Path) -> None:
    fleet = FLEET.replace("name: edge", "name: business-1")
    [problem] = problems_of(write(tmp_path, fleet))
    assert problem == (
        f"{tmp_path / 'fleet.yaml'}:19: spec.clusters[2].name: cluster business-1 is already named at "
        f"{tmp_path / 'fleet.yaml'}:16"
    )


def test_unknown_acp_version_and_bad_names(tmp_path: Path) -> None:
    fleet = FLEET.replace('version: "4.3"', 'version: "9.9"').replace("name: edge", "name: Edge_1")
    problems = problems_of(write(tmp_path, fleet))
    assert f"{tmp_path / 'fleet.yaml'}:7: spec.acp.version: ACP 9.9 is not in acpcheck's version matrix" in problems[0]
    assert problems[1].startswith(f"{tmp_path / 'fleet.yaml'}:19: spec.clusters[2].name: has the wrong format")


def test_unknown_field_and_wrong_kind(tmp_path: Path) -> None:
    fleet = FLEET.replace("kind: Fleet", "kind: ClusterPlan").replace("context: b1", "contxt: b1")
    problems = problems_of(write(tmp_path, fleet))
    assert problems == [
        f"{tmp_path / 'fleet.yaml'}:2: kind: must be one of 'Fleet'",
        f"{tmp_path / 'fleet.yaml'}:18: spec.clusters[1].contxt: unknown field; did you mean 'context'?",
    ]


def test_plan_name_role_type_and_version_mismatch_at_the_entry(tmp_path: Path) -> None:
    plan = PLAN.replace("{name: global}", "{name: other}").replace('version: "4.3"', 'version: "4.2"')
    plan = plan.replace("role: global, type: on-premise", "role: workload, type: immutable")
    problems = problems_of(write(tmp_path, plan=plan))
    plan_file, fleet_file = tmp_path / "plans" / "global.yaml", tmp_path / "fleet.yaml"
    assert problems == [
        f"{fleet_file}:10: spec.clusters[0].name: name global differs from plan {plan_file}: other ({plan_file}:3); "
        "make them the same",
        f"{fleet_file}:11: spec.clusters[0].role: role global differs from plan {plan_file}: workload "
        f"({plan_file}:6); make them the same",
        f"{fleet_file}:12: spec.clusters[0].type: type on-premise differs from plan {plan_file}: immutable "
        f"({plan_file}:6); make them the same",
        f"{fleet_file}:15: spec.clusters[0].plan: plan {plan_file} targets ACP 4.2 ({plan_file}:5), the fleet ACP "
        f"4.3 ({fleet_file}:7); make them the same",
    ]


def test_broken_member_plan_reports_the_plan_files_lines(tmp_path: Path) -> None:
    plan = PLAN.replace("clusterCIDR: 10.3.0.0/16", "clusterCIDR: 10.3.0.300/16")
    problems = problems_of(write(tmp_path, plan=plan))
    assert len(problems) == 1
    assert problems[0].startswith(f"{tmp_path / 'plans' / 'global.yaml'}:7: spec.network.clusterCIDR:")


def test_missing_member_plan_file(tmp_path: Path) -> None:
    problems = problems_of(write(tmp_path, plan=None))
    assert problems == [
        f"{tmp_path / 'fleet.yaml'}:15: spec.clusters[0].plan: {tmp_path / 'plans' / 'global.yaml'}: file not found"
    ]


def test_inline_secret_refused_without_echo(tmp_path: Path) -> None:
    fleet = FLEET.replace("      context: b1\n", "      context: b1\n      token: Zq9canaryHunter2x\n").replace(
        "kubeconfig: /etc/acp/edge.yaml", "kubeconfig: https://admin:Kq7canaryPw@acp.example.com/kube"
    )
    problems = problems_of(write(tmp_path, fleet))
    text = "\n".join(problems)
    assert "canary" not in text
    assert f"{tmp_path / 'fleet.yaml'}:19: spec.clusters[1].token: literal secrets are refused" in text
    assert f"{tmp_path / 'fleet.yaml'}:22: spec.clusters[2].kubeconfig: a URL with user info" in text


def test_the_fleet_files_problems_come_before_its_plans(tmp_path: Path) -> None:
    fleet = FLEET.replace('version: "4.3"', 'version: "9.9"').replace("name: edge", "name: business-1")
    plan = PLAN.replace("clusterCIDR: 10.3.0.0/16", "clusterCIDR: nonsense")
    # the schema's problems stop loading before members are looked at: one file at a time
    problems = problems_of(write(tmp_path, fleet, plan))
    assert len(problems) == 1 and ":7: spec.acp.version:" in problems[0]


# ---------------------------------------------------------------------------
# Discovery


def test_discovery_adds_what_global_lists_and_the_file_does_not_name(tmp_path: Path) -> None:
    fleet = load_fleet(write(tmp_path))
    listed: list[dict[str, Any]] = [
        {"name": "global", "version": "1.33.7", "type": "Baremetal"},
        {"name": "business-1", "version": "1.33.7", "type": "Baremetal"},
        {"name": "business-2", "version": "1.30.1", "type": "Baremetal"},
        {"name": "aks-1", "version": "1.29.2", "type": "Imported"},
        {"name": None},
    ]
    found = discover_members(fleet, listed)
    assert [(m.name, m.role, m.type, m.upgrade_from, m.discovered) for m in found] == [
        ("business-2", "workload", "on-premise", "4.2", True),
        ("aks-1", "workload", "imported", "4.2", True),
    ]
    unreachable = found[0].unreachable or ""
    assert "discovered on the global cluster" in unreachable and "kubernetes/business-2" in unreachable
    assert "access-cluster-with-kubeconfig" in unreachable
    plan = found[0].plan
    assert not plan.declared and plan.spec.kubeconfig is None
    assert plan.where() == f"{tmp_path / 'fleet.yaml'}:5"  # nothing of it is written: the fleet's spec
    grown = fleet.with_discovered(listed)
    assert [m.name for m in grown.members] == ["global", "business-1", "edge", "business-2", "aks-1"]
    assert len(fleet.members) == 3  # the loaded fleet is unchanged


def test_no_discovery_when_the_fleet_says_so(tmp_path: Path) -> None:
    fleet = load_fleet(write(tmp_path, FLEET.replace("  clusters:\n", "  discover: false\n  clusters:\n")))
    assert discover_members(fleet, [{"name": "business-2", "version": "1.30.1"}]) == []


def test_entry_without_kubeconfig_or_plan_is_unreachable(tmp_path: Path) -> None:
    fleet = load_fleet(write(tmp_path, FLEET + "    - name: dark\n"))
    dark = fleet.member("dark")
    assert dark is not None and dark.unreachable is not None
    assert dark.unreachable.startswith("the fleet file gives no kubeconfig for it: add an entry for dark")


# ---------------------------------------------------------------------------
# Plain data for xdist workers, and the schema


def test_to_and_from_data_round_trip_without_files(tmp_path: Path) -> None:
    listed = [{"name": "business-2", "version": "1.30.1", "type": "Baremetal"}]
    fleet = load_fleet(write(tmp_path)).with_discovered(listed)
    data = fleet_to_data(fleet)
    assert json.loads(json.dumps(data)) == data  # what execnet can send
    for path in tmp_path.rglob("*.yaml"):
        path.unlink()  # a worker reads no file
    rebuilt = fleet_from_data(data)
    assert rebuilt == fleet
    assert rebuilt.members == fleet.members
    assert [m.plan.where("spec", "acp", "version") for m in rebuilt.members] == [
        m.plan.where("spec", "acp", "version") for m in fleet.members
    ]


def test_json_schema_describes_the_file() -> None:
    schema = fleet_json_schema()
    assert schema["$id"] == "urn:acpcheck:fleet:v1" and schema["title"] == "acpcheck Fleet"
    cluster = schema["$defs"]["FleetCluster"]
    assert cluster["additionalProperties"] is False
    assert set(cluster["properties"]) == {"name", "role", "type", "kubeconfig", "context", "plan", "upgradeFrom"}
    assert cluster["properties"]["type"]["enum"] == [
        "on-premise",
        "hosted-control-plane",
        "imported",
        "registered",
        "immutable",
    ]
    assert schema["$defs"]["FleetSpec"]["properties"]["clusters"]["minItems"] == 1


def test_the_documented_fleet_loads_and_shows_every_field(tmp_path: Path) -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "interfaces.md").read_text()
    section = doc.split("## Fleet file", 1)[1]
    text = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    plan = (EXAMPLE.parent / "plans" / "global.yaml").read_text()
    fleet = load_fleet(write(tmp_path, text, plan))
    assert [m.name for m in fleet.members] == ["global", "business-1"]
    schema = fleet_json_schema()
    fields = {name for definition in schema["$defs"].values() for name in definition.get("properties", {})}
    missing = sorted(name for name in fields | set(schema["properties"]) if f"{name}:" not in text)
    assert not missing, f"fields of the fleet model that docs/interfaces.md does not show: {missing}"
