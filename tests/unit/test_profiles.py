"""Profiles (extends, selectors, fail_on, overrides) and waivers files."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from acpcheck.errors import InputError
from acpcheck.model.check import CheckMeta, Scope, Severity
from acpcheck.model.profile import builtin_profiles, load_profile
from acpcheck.model.waivers import load_waivers


def meta(check_id: str, scope: Scope = Scope.PLAN, tags: frozenset[str] = frozenset()) -> CheckMeta:
    return CheckMeta(check_id, "t", Severity.HIGH, scope, ("https://x",), "r", "doc", "f", tags=tags)


def test_builtin_profiles_exist_and_load() -> None:
    assert {"plan", "preinstall", "ci", "upgrade", "hcp"} <= set(builtin_profiles())
    for name in builtin_profiles():
        assert load_profile(name).name == name


def test_plan_profile_is_plan_scope_only() -> None:
    plan = load_profile("plan")
    assert plan.selects(meta("ACP-NET-001")) and not plan.selects(meta("ACP-NODE-001", Scope.NODE))


def test_preinstall_extends_plan() -> None:
    profile = load_profile("preinstall")
    assert profile.selects(meta("ACP-NET-001")) and profile.selects(meta("ACP-NODE-001", Scope.NODE))
    assert profile.selects(meta("ACP-LB-001", Scope.CLUSTER)) and not profile.selects(
        meta("ACP-ENC-001", Scope.CLUSTER)
    )
    assert profile.fail_on is Severity.MEDIUM


def test_ci_is_strict() -> None:
    assert load_profile("ci").fail_on is Severity.LOW


def test_custom_profile_extends_relative_file(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text(
        "name: base\ninclude: ['ACP-NET-*', 'tag:dns']\nparams: {defaultMaxPods: 200}\n"
    )
    (tmp_path / "team.yaml").write_text(
        "name: team\nextends: base.yaml\nexclude: [ACP-NET-002]\nfail_on: high\noverrides: {ACP-NET-001: "
        "{severity: low}}\n"
    )
    profile = load_profile(str(tmp_path / "team.yaml"))
    assert profile.selects(meta("ACP-NET-001")) and not profile.selects(meta("ACP-NET-002"))
    assert profile.selects(meta("ACP-NODE-010", Scope.NODE, frozenset({"dns"})))
    assert profile.fail_on is Severity.HIGH
    assert profile.severity_of(meta("ACP-NET-001")) is Severity.LOW
    assert profile.params["defaultMaxPods"] == 200


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: x\nfail_on: urgent\n", "fail_on: 'urgent' is not a severity"),
        ("name: x\ninclude: [colour:red]\n", "'colour:red' is not a selector"),
        ("name: x\nincludes: [scope:plan]\n", "includes: unknown field"),
        (
            "name: x\nextends: nonexistent\n",
            "profile 'nonexistent' not found (built-in profiles: ci, hcp, hcp-postcreate, hcp-precreate, plan, "
            "preinstall, upgrade)",
        ),
    ],
)
def test_bad_profile(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as caught:
        load_profile(str(path))
    assert expected in str(caught.value)
    assert str(path) in str(caught.value)


def test_profile_cycle(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("name: a\nextends: b.yaml\n")
    (tmp_path / "b.yaml").write_text("name: b\nextends: a.yaml\n")
    with pytest.raises(InputError, match="cycle"):
        load_profile(str(tmp_path / "a.yaml"))


def test_waivers_match_by_glob_and_expire(tmp_path: Path) -> None:
    path = tmp_path / "w.yaml"
    path.write_text(
        "waivers:\n"
        "  - {check: 'ACP-NODE-*', target: 'node:w*', reason: lab, owner: ops, expires: 2026-12-31}\n"
        "  - {check: ACP-NET-001, reason: old, owner: net, expires: 2026-01-01}\n"
    )
    waivers = load_waivers(path, today=dt.date(2026, 11, 21))
    assert waivers.find("ACP-NODE-003", "node:w1").owner == "ops"
    assert waivers.find("ACP-NODE-003", "node:cp1") is None
    assert [w.check for w in waivers.expired] == ["ACP-NET-001"]


def test_bad_waiver_is_located(tmp_path: Path) -> None:
    path = tmp_path / "w.yaml"
    path.write_text("waivers:\n  - check: ACP-NET-001\n    reason: x\n    expires: someday\n")
    with pytest.raises(InputError) as caught:
        load_waivers(path)
    text = str(caught.value)
    assert f"{path}:2: waivers[0].owner: required field is missing" in text
    assert f"{path}:4: waivers[0].expires:" in text
