"""A step names the check it fixes by the check's function (``@step(fixes=…)``), so a
wrong link fails when the check module is imported, never silently at remediate time."""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from acpcheck import Scope, Severity, check, fail
from acpcheck.remediation import Changes, NodeView, cluster_step, step
from acpcheck.remediation import steps as step_module
from acpcheck.remediation.runner import selected_steps
from acpcheck.remediation.steps import Step, register

REF = ["https://docs.alauda.io/container_platform/4.3/install/prepare/node_preprocessing.html"]


@check(
    id="ACP-NODE-971", title="test: a node check", severity=Severity.HIGH, scope=Scope.NODE, refs=REF, remediation="-"
)
def check_node_thing(node: Any) -> None:
    """A node check (test)."""
    fail("test")


@check(
    id="ACP-ROLE-971",
    title="test: a cluster check",
    severity=Severity.HIGH,
    scope=Scope.CLUSTER,
    refs=REF,
    remediation="-",
)
def check_cluster_thing(cluster: Any) -> None:
    """A cluster check (test)."""
    fail("test")


@pytest.fixture(autouse=True)
def forget_test_steps() -> Iterator[None]:
    yield
    for check_id in ("ACP-NODE-971", "ACP-ROLE-971", "ACP-NODE-979"):
        step_module.STEPS.pop(check_id, None)


def nothing(view: Any) -> Changes:
    return Changes()


def test_a_step_links_to_its_check_by_the_function() -> None:
    made = step(fixes=check_node_thing, name="thing", does="test")(nothing)
    assert made.check == "ACP-NODE-971" and made.id == "ACP-NODE-971/thing" and made.target == "node"
    assert step_module.steps_for("ACP-NODE-971") == [made]
    on_cluster = cluster_step(fixes=check_cluster_thing, name="thing", does="test")(nothing)
    assert on_cluster.check == "ACP-ROLE-971" and on_cluster.target == "cluster"


@pytest.mark.parametrize(
    "wrong",
    ["ACP-NODE-971", "ACP-NODE-0971", None, nothing, check_node_thing.__acpcheck__],
    ids=["id", "typo", "none", "plain-function", "metadata"],
)
def test_anything_but_a_check_function_is_a_type_error(wrong: Any) -> None:
    with pytest.raises(TypeError, match=r"@step\(fixes=…\) takes the check function"):
        step(fixes=wrong, name="thing", does="test")


def test_a_node_step_of_a_cluster_check_and_back_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="ACP-ROLE-971 is a cluster check .* a step fixes a node check"):
        step(fixes=check_cluster_thing, name="thing", does="test")
    with pytest.raises(ValueError, match="ACP-NODE-971 is a node check .* a cluster_step fixes a cluster check"):
        cluster_step(fixes=check_node_thing, name="thing", does="test")


def test_a_wrong_link_fails_when_the_check_module_is_imported(tmp_path: Path) -> None:
    module = tmp_path / "acp_pack_with_a_typo.py"
    module.write_text(
        textwrap.dedent(
            """
            from acpcheck.remediation import Changes, NodeView, step

            @step(fixes="ACP-NODE-0008", name="swap-off", does="turns swap off")
            def swap_off(node: NodeView) -> Changes:
                return Changes()
            """
        )
    )
    spec = importlib.util.spec_from_file_location(module.stem, module)
    assert spec is not None and spec.loader is not None
    loaded = importlib.util.module_from_spec(spec)
    with pytest.raises(TypeError, match="'ACP-NODE-0008'"):
        spec.loader.exec_module(loaded)
    assert module.stem not in sys.modules
    assert "ACP-NODE-0008" not in step_module.STEPS


def test_the_runner_refuses_a_step_of_a_check_never_imported() -> None:
    """Only a Step made by hand can name an unknown check; the runner says so, never skips it."""
    register(Step("ACP-NODE-979", "orphan", "test", nothing))
    with pytest.raises(LookupError, match="ACP-NODE-979/orphan fix ACP-NODE-979, but no check ACP-NODE-979"):
        selected_steps(())


def test_the_step_api_is_one_import() -> None:
    import acpcheck.remediation as api

    assert api.step is step and api.NodeView is NodeView
    for name in api.__all__:
        assert getattr(api, name) is not None, name
