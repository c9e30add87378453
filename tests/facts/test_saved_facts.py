"""Facts saved by an earlier acpcheck still load, and every fact is declared once.

tests/data/facts-v1 was written by ``save_facts`` before the facts were declared in
acpcheck/facts/model.py (see tests/data/README.md); it is never regenerated.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import recorded

from acpcheck.facts.model import NodeFacts, assemble, declared_facts, probe_script
from acpcheck.facts.parse import decode_probe_output, probe_text
from acpcheck.facts.store import decode, load_facts

SAVED_V1 = Path(__file__).resolve().parents[1] / "data" / "facts-v1"
RECORDINGS = {
    "ubuntu": recorded.UBUNTU_2204,
    "centos": recorded.CENTOS_79,
    "kylin": recorded.KYLIN_V10_ARM,
    "bare": recorded.NO_SYSTEMD,
}


def default_of(field: dataclasses.Field[object]) -> object:
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return field.default


def test_facts_saved_by_v1_load_equal_to_todays_reading_of_the_same_probe() -> None:
    loaded = load_facts(SAVED_V1)
    assert sorted(loaded) == ["bare", "centos", "dead", "kylin", "ubuntu"]
    saved_fields = set(json.loads((SAVED_V1 / "ubuntu.json").read_text())) - {"schema"}
    for name, sections in RECORDINGS.items():
        facts = loaded[name]
        assert isinstance(facts, NodeFacts)
        today = assemble(
            name,
            decode_probe_output(recorded.document(sections)),
            gathered_at="2026-01-01T00:00:00Z",
            round_trip_seconds=0.0123456789,
            clock_read_at_epoch=1767225600.1234567,
        )
        # Facts added since v1 are absent from the file: they load as their default ("unknown").
        newer = {f.name: default_of(f) for f in dataclasses.fields(NodeFacts) if f.name not in saved_fields}
        assert all(getattr(facts, field) == value for field, value in newer.items())
        # probe_errors are now listed in field order, v1 listed them in its reading order.
        assert sorted(facts.probe_errors) == sorted(today.probe_errors), name
        assert dataclasses.replace(today, probe_errors=facts.probe_errors, **newer) == facts, name
    assert loaded["dead"].kind == "unreachable"  # type: ignore[union-attr]


def test_a_saved_file_lacking_any_fact_loads_that_facts_default() -> None:
    document = json.loads((SAVED_V1 / "ubuntu.json").read_text())
    for field in dataclasses.fields(NodeFacts):
        if field.name in declared_facts() and field.name in document:
            partial = {key: value for key, value in document.items() if key != field.name}
            facts = decode(partial)
            assert getattr(facts, field.name) == default_of(field) or field.name == "clock_epoch", field.name


def test_every_declared_section_is_in_the_probe() -> None:
    """A declaration names the probe sections its reader reads: probe.sh or its own shell prints them."""
    script = probe_script()
    for name, declared in declared_facts().items():
        for section in declared.sections:
            stem = re.escape(section.removesuffix("*"))
            assert re.search(rf"\b[FCRV] \"?{stem}", script) or f"rec {section} " in script, (name, section)


def test_declared_shell_lands_before_the_json_writer_and_nowhere_else() -> None:
    script = probe_script()
    writer = script.index("# --- one JSON document")
    for declared in declared_facts().values():
        if declared.shell:
            assert script.count(declared.shell) == 1 and script.index(declared.shell) < writer
            assert declared.shell not in probe_text()
