"""Saving and loading a facts directory: exact round trip, failures included."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import recorded

from acpcheck.errors import InputError
from acpcheck.facts.model import GatherFailure, NodeFacts, assemble
from acpcheck.facts.parse import decode_probe_output
from acpcheck.facts.store import facts_file_name, load_facts, save_facts
from acpcheck.model.plan import ClusterPlan


def plan_of(*names: str) -> ClusterPlan:
    return ClusterPlan.model_validate(
        {
            "apiVersion": "acpcheck/v1",
            "kind": "ClusterPlan",
            "metadata": {"name": "store"},
            "spec": {
                "acp": {"version": "4.3"},
                "cluster": {"kubernetesVersion": "1.34.5"},
                "network": {"clusterCIDR": "10.3.0.0/16", "serviceCIDR": "10.4.0.0/16"},
                "nodes": [{"name": n, "role": "worker", "ipv4": f"192.0.2.{i + 10}"} for i, n in enumerate(names)],
            },
        }
    )


def facts_named(name: str, sections: dict[str, Any]) -> NodeFacts:
    raw = decode_probe_output(recorded.document(sections))
    return assemble(
        name,
        raw,
        gathered_at="2026-01-01T00:00:00Z",
        round_trip_seconds=0.0123456789,
        clock_read_at_epoch=1767225600.1234567,
    )


RESULTS: dict[str, NodeFacts | GatherFailure] = {
    "ubuntu": facts_named("ubuntu", recorded.UBUNTU_2204),
    "centos": facts_named("centos", recorded.CENTOS_79),
    "kylin": facts_named("kylin", recorded.KYLIN_V10_ARM),
    "bare": facts_named("bare", recorded.NO_SYSTEMD),
    "dead": GatherFailure(
        "dead", "unreachable", "192.0.2.99:22 refused the connection", {"address": "root@192.0.2.99:22"}
    ),
}


def test_round_trip_is_exact(tmp_path: Path) -> None:
    written = save_facts(tmp_path, RESULTS)
    assert sorted(p.name for p in written) == ["bare.json", "centos.json", "dead.json", "kylin.json", "ubuntu.json"]
    assert json.loads((tmp_path / "ubuntu.json").read_text())["schema"] == "acpcheck/facts/v1"
    loaded = load_facts(tmp_path, plan_of(*RESULTS))
    assert list(loaded) == list(RESULTS)
    assert loaded == RESULTS
    ubuntu = loaded["ubuntu"]
    assert isinstance(ubuntu, NodeFacts)
    assert (
        isinstance(ubuntu.modules, frozenset)
        and isinstance(ubuntu.addresses, tuple)
        and isinstance(ubuntu.mounts[0].options, tuple)
    )


def test_plan_decides_the_nodes(tmp_path: Path) -> None:
    save_facts(tmp_path, RESULTS)
    loaded = load_facts(tmp_path, plan_of("kylin", "new-node"))
    assert list(loaded) == ["kylin", "new-node"]  # plan order; files of other nodes ignored
    assert loaded["new-node"] == GatherFailure("new-node", "probe", "no facts saved for this node")
    assert list(load_facts(tmp_path)) == ["bare", "centos", "dead", "kylin", "ubuntu"]  # no plan: every file


def test_odd_node_names_get_safe_file_names(tmp_path: Path) -> None:
    odd = facts_named("rack 1/cp:1", recorded.NO_SYSTEMD)
    assert facts_file_name("rack 1/cp:1") == "rack%201%2Fcp%3A1.json"
    save_facts(tmp_path, {"rack 1/cp:1": odd})
    assert load_facts(tmp_path) == {"rack 1/cp:1": odd}


def test_saving_deletes_nothing(tmp_path: Path) -> None:
    save_facts(tmp_path, RESULTS)
    (tmp_path / "results.json").write_text(json.dumps({"schema": "acpcheck/results/v1", "results": []}))
    (tmp_path / "other-node.json").write_text(
        json.dumps({"schema": "acpcheck/facts/v1", "node": "other", "failure": {"kind": "probe", "message": ""}})
    )
    save_facts(tmp_path, {"dead": RESULTS["dead"]})
    # Facts of nodes this call did not gather, and files of other schemas, stay.
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [*(f"{n}.json" for n in RESULTS), "other-node.json", "results.json"]
    )
    assert load_facts(tmp_path, plan_of("dead"))["dead"] == RESULTS["dead"]


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("{not json", "not readable JSON"),
        (
            json.dumps({"schema": "acpcheck/facts/v1", "node": "x", "failure": {"kind": "exploded", "message": ""}}),
            "failure.kind 'exploded'",
        ),
        (json.dumps({"schema": "acpcheck/facts/v1", "node": "x"}), "gathered_at: missing"),
        (json.dumps({"schema": "acpcheck/facts/v9", "node": "x"}), "written by another acpcheck version"),
    ],
)
def test_damaged_files_are_bad_input(tmp_path: Path, content: str, words: str) -> None:
    (tmp_path / "x.json").write_text(content)
    with pytest.raises(InputError) as caught:
        load_facts(tmp_path)
    assert str(tmp_path / "x.json") in str(caught.value) and words in str(caught.value)


def test_wrong_types_are_refused(tmp_path: Path) -> None:
    save_facts(tmp_path, {"ubuntu": RESULTS["ubuntu"]})
    path = tmp_path / "ubuntu.json"
    data = json.loads(path.read_text())
    data["cpu_count"] = "eight"
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match="cpu_count: expected int, got str"):
        load_facts(tmp_path)


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="facts directory not found"):
        load_facts(tmp_path / "nowhere", plan_of("a"))
