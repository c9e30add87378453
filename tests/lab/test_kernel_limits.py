"""The lab's kernel limits (lab/acpcheck_lab/kernel_limits.py) on a directory laid out like
/proc/sys: raised to fit the lab, never lowered, recorded once and put back exactly."""

from __future__ import annotations

from pathlib import Path

from acpcheck_lab.kernel_limits import LIMITS, raise_limits, read_limits, restore_limits, wanted_limits

DEFAULTS = {
    "net/ipv4/neigh/default/gc_thresh1": 128,
    "net/ipv4/neigh/default/gc_thresh2": 512,
    "net/ipv4/neigh/default/gc_thresh3": 1024,
    "net/core/netdev_max_backlog": 1000,
}


def sysctls(tmp_path: Path, values: dict[str, int]) -> Path:
    root = tmp_path / "sys"
    for name, value in values.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(f"{value}\n")
    return root


def test_a_60_node_lab_gets_room_for_every_pair_and_down_puts_the_defaults_back(tmp_path: Path) -> None:
    root, record = sysctls(tmp_path, DEFAULTS), tmp_path / "run" / "limits.json"
    raised = raise_limits(60, root=root, record=record)
    assert raised["net/ipv4/neigh/default/gc_thresh3"] >= 60 * 59  # the 3,540 entries that overflowed 1,024
    assert (
        raised["net/ipv4/neigh/default/gc_thresh1"]
        <= raised["net/ipv4/neigh/default/gc_thresh2"]
        <= raised["net/ipv4/neigh/default/gc_thresh3"]
    )
    assert raised["net/core/netdev_max_backlog"] > 60
    assert restore_limits(root=root, record=record) is True
    assert read_limits(root) == DEFAULTS and not record.exists()
    assert restore_limits(root=root, record=record) is False  # idempotent: nothing recorded any more


def test_higher_limits_set_by_the_admin_are_never_lowered_and_stay_after_down(tmp_path: Path) -> None:
    generous = {name: 10**7 for name in LIMITS}
    root, record = sysctls(tmp_path, generous), tmp_path / "limits.json"
    assert raise_limits(1000, root=root, record=record) == generous
    restore_limits(root=root, record=record)
    assert read_limits(root) == generous


def test_a_second_up_without_down_keeps_the_first_record(tmp_path: Path) -> None:
    """A killed `up` followed by another `up`: down must restore what the machine had, not the lab's values."""
    root, record = sysctls(tmp_path, DEFAULTS), tmp_path / "limits.json"
    raise_limits(10, root=root, record=record)
    raise_limits(1000, root=root, record=record)
    assert (
        read_limits(root)["net/ipv4/neigh/default/gc_thresh3"]
        == wanted_limits(1000)["net/ipv4/neigh/default/gc_thresh3"]
    )
    restore_limits(root=root, record=record)
    assert read_limits(root) == DEFAULTS


def test_a_damaged_record_restores_nothing_and_is_removed(tmp_path: Path) -> None:
    root, record = sysctls(tmp_path, DEFAULTS), tmp_path / "limits.json"
    record.write_text("{not json")
    assert restore_limits(root=root, record=record) is False and not record.exists()
    assert read_limits(root) == DEFAULTS


def test_a_record_can_only_lower_what_the_lab_raised(tmp_path: Path) -> None:
    root, record = sysctls(tmp_path, DEFAULTS), tmp_path / "limits.json"
    record.write_text('{"net/core/netdev_max_backlog": 99999999, "net/ipv4/neigh/default/gc_thresh1": "64"}')
    restore_limits(root=root, record=record)
    assert read_limits(root) == DEFAULTS
