"""acpcheck/matrix/removed_apis.yaml: it loads, every row cites its section of the upstream
deprecation guide, and a broken table is refused naming the file."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from acpcheck.errors import InputError
from acpcheck.matrix import load_data_file
from acpcheck.matrix.removed_apis import GUIDE, REMOVED_APIS_FILE, RemovedApis, removed_apis
from acpcheck.sources.cluster import READS, REMOVED_API_READS


def test_every_row_loads_with_its_source() -> None:
    rows = removed_apis()
    assert len(rows) >= 30
    for row in rows:
        assert row.source.startswith(GUIDE + "#") and row.source.endswith("-v" + row.removed_in.replace(".", ""))
    by_key = {row.key: row for row in rows}
    flowschemas = by_key["removed-api/flowcontrol.apiserver.k8s.io/v1beta3/flowschemas"]
    assert (flowschemas.removed_in, flowschemas.replacement) == ("1.32", "flowcontrol.apiserver.k8s.io/v1")
    assert by_key["removed-api/batch/v1beta1/cronjobs"].removed_in == "1.25"


def test_removed_by_compares_minors() -> None:
    row = next(row for row in removed_apis() if row.removed_in == "1.32")
    assert row.removed_by("1.32") and row.removed_by("v1.34.5-acp.1")
    assert not row.removed_by("1.31") and not row.removed_by("v1.31.14")


def test_the_cluster_source_reads_every_row_once() -> None:
    assert set(REMOVED_API_READS) == {row.key for row in removed_apis()}
    assert [read.key for read in READS].count("removed-api/batch/v1beta1/cronjobs") == 1
    # One object tells whether anything is stored; rows with API-server-kept objects are read whole.
    assert REMOVED_API_READS["removed-api/batch/v1beta1/cronjobs"].limit == 1
    assert REMOVED_API_READS["removed-api/flowcontrol.apiserver.k8s.io/v1beta3/flowschemas"].limit is None


@pytest.mark.parametrize(
    ("edit", "said"),
    [
        (lambda row: row.update(source="https://example.com/removals"), "is not a section of"),
        (lambda row: row.update(removedIn="1.x"), "is not a Kubernetes minor"),
        (lambda row: row.pop("source"), "source"),
        (lambda row: row.update(apiServerManaged="no-value"), "is not annotation=value"),
    ],
)
def test_a_broken_table_is_refused_naming_the_file(tmp_path: Path, edit: object, said: str) -> None:
    data = yaml.safe_load(REMOVED_APIS_FILE.read_text())
    edit(data["removed"][0])  # type: ignore[operator]
    path = tmp_path / "removed_apis.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(InputError) as refused:
        load_data_file(path, RemovedApis, "removed API table")
    assert str(path) in str(refused.value) and said in str(refused.value)


def test_a_row_listed_twice_is_refused(tmp_path: Path) -> None:
    data = yaml.safe_load(REMOVED_APIS_FILE.read_text())
    data["removed"].append(dict(data["removed"][0]))
    path = tmp_path / "removed_apis.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(InputError, match="listed twice"):
        load_data_file(path, RemovedApis, "removed API table")
