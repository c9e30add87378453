"""ACP-REG-007 on the lab: the registry's external domain forwards HTTPS to every global
control-plane node, proven by the load-balancer proof's listeners through a real haproxy.

The lab is a global cluster's (the scenario's ``plan: {cluster: {role: global}}``) whose haproxy
forwards 443, 6443 and 11443 on the endpoint address; the plan gives that address as the one
the registry's domain points to (``spec.registry.externalAddress.address``), so no name is
resolved and only lab addresses are contacted (the audit hook of test_lb_on_lab says so). With
cp2 left out of 443's backend, ACP-REG-007 FAILs naming cp2; with every node there it PASSes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from test_lb_on_lab import assert_only_lab_addresses, findings, lab_up, leftovers, plan_of, run_acpcheck

DOMAIN = "registry.lab.example"


def scenario(tmp_path: Path, missing: dict[int, list[str]]) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "reg-lb",
                "description": "a global cluster's haproxy; the registry domain points at its address",
                "plan": {"cluster": {"role": "global"}},
                "loadBalancer": {"ports": [443, 6443, 11443], "missing": missing},
                "nodes": [{"name": f"cp{i}", "role": "control-plane"} for i in (1, 2, 3)],
            }
        )
    )
    return path


@pytest.mark.parametrize(
    ("missing", "expect"),
    [
        ({}, {}),
        (
            {443: ["cp2"]},
            {
                ("ACP-REG-007", "node:*"): (
                    "fail",
                    (f"{DOMAIN} (", ", the plan)", ":443 reached cp1, cp3, never cp2"),
                )
            },
        ),
    ],
    ids=["every node", "cp2 left out of 443"],
)
def test_registry_domain_forwarding_on_a_real_haproxy(
    missing: dict[int, list[str]], expect: dict[tuple[str, str], Any], lab_machine: Path, tmp_path: Path
) -> None:
    with lab_up(lab_machine, str(scenario(tmp_path, missing))) as lab:
        endpoint = plan_of(lab)["spec"]["endpoint"]["address"]
        external = {"domain": DOMAIN, "address": endpoint, "certFile": "registry.crt", "keyFile": "registry.key"}
        edits = {"registry": {"externalAddress": external}, "loadBalancer": {"proofSeconds": 1}}
        document = run_acpcheck(lab, tmp_path / "run", "ACP-REG-007", edits=edits)
        assert leftovers(lab) == [], "a listener survived the run"
    results = {(r["check"], r["target"]): r for r in document["results"]}
    assert results[("ACP-REG-007", "node:*")]["status"] == ("fail" if expect else "pass"), results
    seen = findings(document)
    assert set(seen) == set(expect), seen
    for key, (status, words) in expect.items():
        assert seen[key][0] == status
        assert all(word in seen[key][1] for word in words), seen[key][1]
        assert endpoint in seen[key][1]
    assert document["exit"] == (1 if expect else 0)
    assert_only_lab_addresses(lab, document)
