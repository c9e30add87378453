"""Properties of the node-check catalogue as a whole: every check has a passing and a
failing row, unknown facts never FAIL, ids are stable and contiguous, and the node
matrix data is complete for every ACP release acpcheck knows."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from acpcheck.catalog import load_catalog
from acpcheck.checks.support import port_ranges
from acpcheck.facts.model import NodeFacts
from acpcheck.matrix import known_acp_versions
from acpcheck.matrix.os import kernel_core, kylin_service_pack, node_release, os_matrix, probe_queries
from acpcheck.model.check import REGISTRY
from nodes.conftest import Case, grade, healthy_facts, node_context, node_set, plan_with

TABLE_MODULES = sorted(
    path.stem for path in Path(__file__).parent.glob("test_node_*.py") if path.stem != Path(__file__).stem
)


def node_checks() -> dict[str, Callable[..., Any]]:
    """Every first-party ACP-NODE check, by id."""
    load_catalog()
    checks = {}
    for check_id, meta in sorted(REGISTRY.items()):
        if check_id.startswith("ACP-NODE-") and meta.function.startswith("acpcheck.checks.node_"):
            module, name = meta.function.rsplit(".", 1)
            checks[check_id] = getattr(importlib.import_module(module), name)
    return checks


def table_rows() -> Iterator[Case]:
    for name in TABLE_MODULES:
        for param in importlib.import_module(f"nodes.{name}").CASES:
            yield param.values[0]


def is_cross_node(check_fn: Callable[..., Any]) -> bool:
    return next(iter(inspect.signature(check_fn).parameters)) == "nodes"


# ---------------------------------------------------------------------------
# The tables


def test_every_node_check_has_a_passing_and_a_failing_row() -> None:
    outcomes: dict[str, set[str]] = {check_id: set() for check_id in node_checks()}
    for row in table_rows():
        outcomes[row.check_id].add(row.expect)
    without_pass = sorted(check_id for check_id, seen in outcomes.items() if "pass" not in seen)
    without_failure = sorted(check_id for check_id, seen in outcomes.items() if not seen & {"fail", "warn"})
    assert not without_pass, f"no passing row: {without_pass}"
    assert not without_failure, f"no failing (or, for WARN-only checks, warning) row: {without_failure}"


def test_failing_rows_assert_the_values_seen() -> None:
    vague = [
        f"{row.check_id} {row.facts or row.node_set}"
        for row in table_rows()
        if row.expect in ("fail", "warn") and not row.mentions
    ]
    assert not vague, f"FAIL/WARN rows must assert what the message names: {vague}"


def test_ids_are_contiguous() -> None:
    ids = list(node_checks())
    assert ids == [f"ACP-NODE-{n:03d}" for n in range(1, len(ids) + 1)]


# ---------------------------------------------------------------------------
# Unknown facts are never a FAIL

#: Optional fields whose None is documented as a state of the node, not "unknown":
#: resolv_conf None means the file is missing (a FAIL of ACP-NODE-015), selinux None
#: means SELinux is absent (as good as disabled).
NONE_IS_A_STATE = {"resolv_conf", "selinux"}

#: Plans under which every node check applies: the example workload cluster, and a
#: global cluster with a self-built VIP (sizing and VIP checks).
EVERY_CHECK_APPLIES = [
    {},
    {
        "spec": {
            "cluster": {"role": "global"},
            "endpoint": {"address": "192.0.2.100", "selfBuiltVIP": {"enabled": True, "vrid": 137}},
        }
    },
    {"spec": {"network": {"kubeOvn": {"transmitMode": "underlay"}, "nic": "eth1"}}},  # the Underlay checks
]


def fields_of(kind: str) -> list[str]:
    """NodeFacts fields that may be None ("optional") or are collections ("collection")."""
    result = []
    for field in dataclasses.fields(NodeFacts):
        text = str(field.type)
        if kind == "optional" and text.endswith("| None") and field.name not in NONE_IS_A_STATE:
            result.append(field.name)
        if (
            kind == "collection"
            and text.split("[")[0] in ("tuple", "frozenset", "dict")
            and field.name != "probe_errors"
        ):
            result.append(field.name)
    return result


def empty_of(field_name: str) -> Any:
    return type(getattr(healthy_facts(), field_name))()


def verdicts_with(overrides: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(check id, status, message) of every node check on cp1 (and on the node_set, with
    cp1's facts changed), under each plan of EVERY_CHECK_APPLIES."""
    for edits in EVERY_CHECK_APPLIES:
        plan = plan_with(edits)
        for check_id, check_fn in node_checks().items():
            target = (
                node_set(plan, {"cp1": overrides})
                if is_cross_node(check_fn)
                else node_context("cp1", plan, **overrides)
            )
            verdict = grade(check_fn, target)
            yield check_id, verdict.status, verdict.message


@pytest.mark.parametrize("field_name", fields_of("optional"))
def test_an_unknown_fact_never_fails(field_name: str) -> None:
    failed = [
        f"{check_id}: {message}"
        for check_id, status, message in verdicts_with({field_name: None})
        if status in ("fail", "error")
    ]
    assert not failed


@pytest.mark.parametrize("field_name", fields_of("collection"))
def test_a_probe_section_that_failed_never_fails(field_name: str) -> None:
    overrides = {field_name: empty_of(field_name), "probe_errors": (f"{field_name}: command failed",)}
    failed = [
        f"{check_id}: {message}"
        for check_id, status, message in verdicts_with(overrides)
        if status in ("fail", "error")
    ]
    assert not failed


def test_the_healthy_node_passes_everything() -> None:
    not_passing = [
        f"{check_id}: {status} {message}"
        for check_id, status, message in verdicts_with({})
        if status not in ("pass", "skip")
    ]
    assert not not_passing


# ---------------------------------------------------------------------------
# Matrix data


def test_every_known_acp_release_has_node_data() -> None:
    assert set(os_matrix().versions) == set(known_acp_versions())


@pytest.mark.parametrize("version", sorted(os_matrix().versions))
def test_matrix_rows_cite_their_release_and_parse(version: str) -> None:
    support = os_matrix().versions[version]
    page = f"https://docs.alauda.io/container_platform/{version}/"
    assert support.source.startswith(page) and support.leftover_paths_source.startswith(page)
    for row in support.systems:
        assert row.source.startswith(page), row.name
        assert len(row.kernel_cores) == len({kernel_core(k) for k in row.kernels}) and all(
            kernel_core(k) for k in row.kernels
        ), row.name
    assert [row for row in support.systems if row.architecture == "aarch64"], (
        "ARM64 (Kylin V10 SP3) is listed in every release"
    )


def test_probe_queries_cover_every_list_the_checks_read() -> None:
    queries, pre = probe_queries(), os_matrix().preprocessing
    assert set(pre.packages["kylin"]) <= set(queries["packages"]) and set(pre.snaps["ubuntu"]) <= set(queries["snaps"])
    assert {"scp", "sftp", "md5sum"} <= set(queries["binaries"])
    assert {pre.kubelet_unit, "/var/lib/nerdctl", "/var/log/pods"} <= set(queries["paths"])
    assert queries["disks"] == ["/", "/cpaas", "/var/lib/containerd", "/var/lib/etcd"]


# ---------------------------------------------------------------------------
# Small readers


@pytest.mark.parametrize(
    ("release", "core"),
    [
        ("5.15.0-56-generic", "5.15.0"),
        ("4.19.90-52.22.v2207.ky10.aarch64", "4.19.90"),
        ("3.10.0", "3.10.0"),
        ("5.15", None),
        ("", None),
        (None, None),
    ],
)
def test_kernel_core(release: str | None, core: str | None) -> None:
    assert kernel_core(release) == core


@pytest.mark.parametrize(
    ("os_id", "version_id", "pretty", "version"),
    [
        ("ubuntu", "22.04", "Ubuntu 22.04.4 LTS", "22.04"),
        ("rhel", "8.10", None, "8.10"),
        ("centos", "7", "CentOS Linux 7 (Core)", None),
        ("centos", "7.9.2009", None, "7.9"),
        ("kylin", "V10", "Kylin Linux Advanced Server V10 (SP3)", "V10 SP3"),
        ("kylin", "V10 SP1", None, "V10 SP1"),
        ("kylin", "V10", "Kylin Linux Advanced Server V10 (Lance)", None),
    ],
)
def test_node_release(os_id: str, version_id: str, pretty: str | None, version: str | None) -> None:
    assert node_release(os_id, version_id, pretty).version == version


def test_kylin_service_pack_needs_the_word() -> None:
    assert kylin_service_pack("V10", "Kylin V10 (sp2)") == 2
    assert kylin_service_pack("V10", "Kylin Linux Advanced Server V10") is None


def test_port_ranges() -> None:
    assert port_ranges([10250, 2379, 6443, 2380, *range(10249, 10257)]) == "2379-2380, 6443, 10249-10256"
