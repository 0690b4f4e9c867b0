"""Reading the store's Parquet files (``evtrack.state.table_files.read_table``): the equality
filters of ``get_run`` and ``get_metric_history`` read with row-group pruning, without importing
``pyarrow.dataset``, agree with pyarrow's own filtered read."""

from __future__ import annotations

import random
import subprocess
import sys

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from evtrack.state.table_files import read_table
from evtrack.store import LocalStore


@pytest.fixture
def store_with_file(tmp_path) -> tuple[LocalStore, pa.Table]:
    rng = random.Random(3)
    rows = sorted((f"run-{rng.randrange(40):02d}", rng.choice("abc"), float(i)) for i in range(2000))
    table = pa.table({"run_id": [r[0] for r in rows], "key": [r[1] for r in rows], "value": [r[2] for r in rows]})
    (tmp_path / "tables").mkdir()
    pq.write_table(table, tmp_path / "tables" / "t.parquet", row_group_size=97)  # many row groups
    return LocalStore(str(tmp_path)), table


@pytest.mark.parametrize(
    "filters",
    [
        [("run_id", "=", "run-07")],
        [("run_id", "=", "run-07"), ("key", "=", "b")],
        [("run_id", "=", "run-00")],
        [("run_id", "=", "run-39"), ("key", "=", "c")],
        [("run_id", "=", "no-such-run")],
        [("run_id", "=", "run-07"), ("key", "=", "zzz")],
    ],
)
def test_equality_filters_read_what_pyarrow_reads(store_with_file, filters) -> None:
    store, table = store_with_file
    got = read_table(store, "tables/t.parquet", filters=filters)
    want = pq.read_table(f"{store.root}/tables/t.parquet", filters=filters)
    assert got.to_pylist() == want.to_pylist()
    assert got.schema == table.schema
    projected = read_table(store, "tables/t.parquet", columns=["value"], filters=filters)
    assert projected.column_names == ["value"]
    assert projected.column("value").to_pylist() == want.column("value").to_pylist()


def test_an_expression_filter_is_still_taken(store_with_file) -> None:
    store, _ = store_with_file
    got = read_table(store, "tables/t.parquet", ["run_id"], pc.field("run_id").isin(["run-01", "run-02"]))
    assert set(got.column("run_id").to_pylist()) <= {"run-01", "run-02"} and got.num_rows > 0


def test_another_operator_is_refused(store_with_file) -> None:
    store, _ = store_with_file
    with pytest.raises(ValueError, match="equalities"):
        read_table(store, "tables/t.parquet", filters=[("run_id", ">", "run-01")])


def test_a_filtered_read_does_not_import_pyarrow_dataset(store_with_file) -> None:
    store, _ = store_with_file
    code = (
        "import sys\n"
        "from evtrack.store import LocalStore\n"
        "from evtrack.state.table_files import read_table\n"
        "t = read_table(LocalStore(sys.argv[1]), 'tables/t.parquet', filters=[('run_id', '=', 'run-07')])\n"
        "assert t.num_rows > 0\n"
        "print('pyarrow.dataset' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code, store.root], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
