"""`acpcheck explain ID` shows how `acpcheck remediate` fixes the check: the steps
linked to it (``@step(fixes=…)``), with what each does, or that there is none."""

from __future__ import annotations

from runner import acpcheck


def section(stdout: str) -> str:
    """The explain output's remediation-steps section, its wrapped lines joined."""
    start = stdout.index("Remediation steps")
    return " ".join(stdout[start : stdout.index("\nSources:", start)].split())


def test_explain_shows_the_steps_that_fix_a_check() -> None:
    explained = acpcheck("explain", "ACP-NODE-008")
    assert explained.returncode == 0, explained.stderr
    shown = section(explained.stdout)
    assert "ACP-NODE-008/swap-off (each node where the check fails)" in shown
    assert "turns swap off now and comments the swap entries out of /etc/fstab" in shown
    assert "deletes software" not in shown


def test_explain_says_a_step_removes_software_and_runs_on_the_cluster() -> None:
    removing = section(acpcheck("explain", "ACP-NODE-025").stdout)
    assert "ACP-NODE-025/conflicting-software" in removing and "--allow-removals" in removing
    cluster = section(acpcheck("explain", "ACP-ROLE-001").stdout)
    assert "ACP-ROLE-001/role-label (the cluster)" in cluster


def test_explain_says_when_no_step_fixes_a_check() -> None:
    explained = acpcheck("explain", "ACP-VER-001")
    assert explained.returncode == 0, explained.stderr
    shown = section(explained.stdout)
    assert "none: acpcheck does not change anything for this check" in shown and "ACP-VER-001/" not in shown
