"""Helpers for check tables: build a plan from the base example plus edits, run one check.

    def test_pod_service_overlap():
        plan = make_plan({"spec": {"network": {"serviceCIDR": "10.3.128.0/17"}}})
        assert run_check(check_pod_service_disjoint, plan).status == "fail"

``make_plan`` deep-merges the edits into ``BASE`` (a valid 4.3 Kube-OVN workload
plan); a value of ``DELETE`` removes the key. The plan goes through the real loader,
so every test plan is also schema-valid.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from acpcheck import testing
from acpcheck.matrix import known_acp_versions
from acpcheck.model.check import Severity
from acpcheck.model.plan import ClusterPlan, plan_from_document
from acpcheck.model.result import CheckResult
from acpcheck.yamlsource import parse_yaml
from acpcheck_lab.apiserver import DEFAULT_VERSION, ServerDir, TestApiServer, init_server_dir, kubeconfig, shipped_crds

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
BASE: dict[str, Any] = yaml.safe_load((EXAMPLES / "workload-kube-ovn.yaml").read_text())
DELETE = object()


def merge(base: Any, edits: Any) -> Any:
    if isinstance(edits, dict):
        result = dict(base) if isinstance(base, dict) else {}
        for key, value in edits.items():
            if value is DELETE:
                result.pop(key, None)
            else:
                result[key] = merge(result.get(key), value)
        return result
    return copy.deepcopy(edits)


def make_plan(edits: dict[str, Any] | None = None, base: dict[str, Any] | None = None) -> ClusterPlan:
    data = merge(base if base is not None else BASE, edits or {})
    return plan_from_document(parse_yaml(yaml.safe_dump(data), "test-plan.yaml"), known_acp_versions())


def run_check(
    function: Callable[..., Any],
    plan: ClusterPlan,
    params: dict[str, Any] | None = None,
    fail_on: Severity = Severity.MEDIUM,
) -> CheckResult:
    """Grade one plan check exactly as a run does (acpcheck.testing)."""
    return testing.run_check(function, plan, params=params, fail_on=fail_on)


@pytest.fixture
def base_plan() -> ClusterPlan:
    return make_plan()


# ---------------------------------------------------------------------------
# Live clusters: the project's test API server (a stand-in for kube-apiserver), one per
# cluster state, read over TLS with the reader's token, as a run reads a cluster.

#: A started test API server's reader kubeconfig: ``serve_cluster(objects, version=, crds=, without=)``.
ServeCluster = Callable[..., Path]


@pytest.fixture(scope="module")
def server_dir(tmp_path_factory: pytest.TempPathFactory) -> ServerDir:
    """One CA and set of users per module, shared by the servers its tests start."""
    return init_server_dir(tmp_path_factory.mktemp("api") / "dir", port=0)


@pytest.fixture
def serve_cluster(server_dir: ServerDir, tmp_path: Path) -> Iterator[ServeCluster]:
    """``serve_cluster(objects, version=, crds=, without=)``: a test API server holding ``objects``
    and serving the shipped CRDs (but those named in ``without``) and ``crds``, stopped after the
    test; the path of a kubeconfig for its reader (get and list on everything, by bearer token)."""
    started: list[TestApiServer] = []
    token = next(user.token for user in server_dir.users() if user.name == "acpcheck-reader")

    def start(
        objects: list[dict[str, Any]],
        version: str = DEFAULT_VERSION,
        crds: list[dict[str, Any]] | None = None,
        without: tuple[str, ...] = (),
    ) -> Path:
        shipped = [crd for crd in shipped_crds() if crd["metadata"]["name"] not in without]
        server = TestApiServer(
            server_dir.tls(), server_dir.users(), port=0, kubernetes_version=version, crds=[*shipped, *(crds or [])]
        ).start()
        started.append(server)
        for obj in objects:
            server.put(copy.deepcopy(obj))
        path = tmp_path / f"kubeconfig-{len(started)}"
        path.write_text(kubeconfig(server.url, server_dir.ca.read_bytes(), "acpcheck-reader", token=token))
        return path

    yield start
    for server in started:
        server.stop()
