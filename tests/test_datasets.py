"""Datasets (issue 6, part 2): evtrack.data constructors, log_input, Run.inputs, dataset filters, views."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import evtrack
from compaction.compactor import compact
from evtrack.data import digests
from evtrack.entities import DatasetInput
from evtrack.errors import InvalidParameterError, ResourceNotFoundError
from evtrack.store import open_store

CSV = b"trip_distance,duration,vendor\n1.5,7.2,a\n3.0,12.9,b\n0.4,3.1,a\n"


@pytest.fixture
def csv_file(tmp_path: Path) -> Path:
    path = tmp_path / "trips.csv"
    path.write_bytes(CSV)
    return path


def _df(**changes: Any):
    pd = pytest.importorskip("pandas")
    data = {"trip_distance": [1.5, 3.0, 0.4], "vendor": ["a", "b", None], "passengers": [1, 2, 1]}
    data.update(changes)
    return pd.DataFrame(data)


# -- constructors --------------------------------------------------------------------------


def test_a_local_file(csv_file: Path) -> None:
    ds = evtrack.data.from_path(csv_file)
    assert ds.name == "trips.csv" and ds.source_type == "local" and ds.source.uri == str(csv_file)
    assert ds.digest == hashlib.sha256(CSV).hexdigest()[:16]  # a full hash: the sha256sum prefix
    assert ds.profile == {
        "size_bytes": len(CSV),
        "digest_method": "sha256",
        "sha256": hashlib.sha256(CSV).hexdigest(),
        "num_rows": 3,
        "num_elements": 9,
    }
    assert ds.schema == {
        "mlflow_colspec": [
            {"type": "double", "name": "trip_distance", "required": True},
            {"type": "double", "name": "duration", "required": True},
            {"type": "string", "name": "vendor", "required": True},
        ]
    }
    entity = ds.to_entity()
    assert json.loads(entity.source) == {"uri": str(csv_file)} and json.loads(entity.profile)["num_rows"] == 3
    assert evtrack.data.from_path(f"file://{csv_file}", name="trips").digest == ds.digest
    csv_file.write_bytes(CSV.replace(b"12.9", b"12.8"))
    assert evtrack.data.from_path(csv_file).digest != ds.digest


def test_a_directory_and_a_parquet_file(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    folder = tmp_path / "trips"
    folder.mkdir()
    for i in range(3):
        pq.write_table(pa.table({"x": list(range(i * 10, i * 10 + 10)), "y": [0.5] * 10}), folder / f"part-{i}.parquet")
    (folder / ".hidden").write_text("skipped")
    ds = evtrack.data.from_path(folder)
    assert ds.name == "trips" and ds.profile["num_files"] == 3 and ds.profile["num_rows"] == 30
    assert ds.schema["mlflow_colspec"][0] == {"type": "long", "name": "x", "required": False}
    single = evtrack.data.from_path(folder / "part-0.parquet")
    assert single.profile["num_rows"] == 10 and single.profile["num_elements"] == 20
    (folder / ".hidden").write_text("changed, still skipped")
    assert evtrack.data.from_path(folder).digest == ds.digest
    (folder / "part-2.parquet").rename(folder / "part-9.parquet")  # same bytes, another name
    assert evtrack.data.from_path(folder).digest != ds.digest


def test_a_missing_path() -> None:
    with pytest.raises(ResourceNotFoundError, match="No such file or directory"):
        evtrack.data.from_path("/no/such/file.csv")


def test_an_s3_object_and_prefix(
    s3_uri: str, s3_client: Any, tmp_path: Path, csv_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket, _, prefix = s3_uri[len("s3://") :].partition("/")
    s3_client.put_object(Bucket=bucket, Key=f"{prefix}/data/trips.csv", Body=CSV)
    s3_client.put_object(Bucket=bucket, Key=f"{prefix}/data/more.csv", Body=CSV)
    ds = evtrack.data.from_path(f"{s3_uri}/data/trips.csv")
    local = evtrack.data.from_path(csv_file)
    assert (ds.source_type, ds.source.uri, ds.name) == ("s3", f"{s3_uri}/data/trips.csv", "trips.csv")
    assert ds.digest == local.digest and ds.schema == local.schema  # the content decides, not the place
    assert ds.profile["num_rows"] == 3
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "trips.csv").write_bytes(CSV)
    (folder / "more.csv").write_bytes(CSV)
    prefix_ds = evtrack.data.from_path(f"{s3_uri}/data/")
    assert prefix_ds.digest == evtrack.data.from_path(folder).digest and prefix_ds.profile["num_files"] == 2
    monkeypatch.setattr(digests, "SAMPLE_BYTES", 16)  # a sampled hash over ranged GETs
    monkeypatch.setenv(digests.FULL_HASH_ENV, "10")
    sampled = evtrack.data.from_path(f"{s3_uri}/data/trips.csv")
    assert sampled.profile["digest_method"] == "sampled-sha256"
    assert sampled.digest == evtrack.data.from_path(csv_file).digest != ds.digest
    with pytest.raises(ResourceNotFoundError):
        evtrack.data.from_path(f"{s3_uri}/nothing-here")


def test_a_big_file_gets_a_sampled_hash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(digests.FULL_HASH_ENV, str(1 << 20))
    size = 5 << 20
    data = bytearray(hashlib.sha256(b"seed").digest() * (size // 32))
    path = tmp_path / "big.bin"

    def digest_of(content: bytes) -> evtrack.data.Dataset:
        path.write_bytes(content)
        return evtrack.data.from_path(path)

    base = digest_of(bytes(data))
    assert base.profile["digest_method"] == "sampled-sha256" and "sha256" not in base.profile
    assert digest_of(bytes(data)).digest == base.digest
    for offset in (10, size // 2, size - 10):  # a change in a sampled chunk (head, middle, tail) shows
        changed = bytearray(data)
        changed[offset] ^= 0xFF
        assert digest_of(bytes(changed)).digest != base.digest, offset
    unsampled = bytearray(data)
    unsampled[size // 4] ^= 0xFF  # the documented limit: an edit between the samples that keeps the size
    assert digest_of(bytes(unsampled)).digest == base.digest
    assert digest_of(bytes(data) + b"x").digest != base.digest  # the size is hashed too
    monkeypatch.setenv(digests.FULL_HASH_ENV, str(10 << 20))
    full = digest_of(bytes(unsampled))
    assert full.profile["digest_method"] == "sha256" and full.digest == hashlib.sha256(unsampled).hexdigest()[:16]


def test_pandas_and_arrow_digests() -> None:
    pa = pytest.importorskip("pyarrow")
    df = _df()
    ds = evtrack.data.from_pandas(df, source="s3://bucket/trips.csv", targets="trip_distance", name="trips")
    assert (ds.name, ds.source_type, ds.targets, ds.df is df) == ("trips", "s3", "trip_distance", True)
    assert ds.profile == {"num_rows": 3, "num_elements": 9, "digest_method": "arrow-ipc-sha256"}
    assert {c["name"]: c["required"] for c in ds.schema["mlflow_colspec"]} == {
        "trip_distance": True,
        "vendor": False,
        "passengers": True,
    }
    assert evtrack.data.from_pandas(_df()).digest == ds.digest  # stable
    assert (
        evtrack.data.from_pandas(df.copy()).name == "dataset"
        and json.loads(evtrack.data.from_pandas(df).to_entity().source)["tags"]["mlflow.source.name"]
    )
    different = [
        _df(trip_distance=[1.5, 3.0, 0.5]),
        _df(vendor=["a", "b", "c"]),
        _df().iloc[::-1].reset_index(drop=True),
        _df().rename(columns={"vendor": "vendor_id"}),
        _df(passengers=[1.0, 2.0, 1.0]),
        _df().iloc[:2],
    ]
    assert len({ds.digest} | {evtrack.data.from_pandas(d).digest for d in different}) == len(different) + 1
    table = pa.table({"trip_distance": [1.5, 3.0, 0.4], "vendor": ["a", "b", None], "passengers": [1, 2, 1]})
    arrow = evtrack.data.from_arrow(table)
    assert arrow.digest == ds.digest  # the same values, built another way
    chunked = pa.concat_tables([table.slice(0, 1), table.slice(1)])
    assert evtrack.data.from_arrow(chunked).digest == arrow.digest
    assert evtrack.data.from_arrow(table.to_batches()[0]).digest == arrow.digest
    with pytest.raises(InvalidParameterError, match="targets column 'nope'"):
        evtrack.data.from_pandas(df, targets="nope")
    with pytest.raises(InvalidParameterError, match="needs a pandas DataFrame"):
        evtrack.data.from_pandas([1, 2])


def test_digests_are_the_same_in_another_process(csv_file: Path) -> None:
    code = (
        "import sys, evtrack, pandas as pd;"
        "df = pd.DataFrame({'trip_distance': [1.5, 3.0, 0.4], 'vendor': ['a', 'b', None], 'passengers': [1, 2, 1]});"
        "print(evtrack.data.from_pandas(df).digest, evtrack.data.from_path(sys.argv[1]).digest)"
    )
    out = subprocess.run([sys.executable, "-c", code, str(csv_file)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [evtrack.data.from_pandas(_df()).digest, evtrack.data.from_path(csv_file).digest]


def test_numpy_digest() -> None:
    np = pytest.importorskip("numpy")
    x = np.arange(12, dtype=float).reshape(4, 3)
    ds = evtrack.data.from_numpy(x, targets=np.arange(4))
    assert ds.digest == evtrack.data.from_numpy(x.copy(), targets=np.arange(4)).digest
    assert ds.digest != evtrack.data.from_numpy(x.reshape(3, 4), targets=np.arange(4)).digest
    assert ds.digest != evtrack.data.from_numpy(x, targets=np.arange(4) + 1).digest
    assert ds.profile["features_shape"] == [4, 3]
    assert json.loads(ds.schema["mlflow_tensorspec"]["features"])[0]["tensor-spec"] == {
        "dtype": "float64",
        "shape": [-1, 3],
    }


# -- logging and reading -------------------------------------------------------------------


def test_log_input_and_run_inputs(tracking_uri: str, csv_file: Path) -> None:
    train = evtrack.data.from_path(csv_file, name="train")
    evaluation = evtrack.data.from_pandas(_df(), name="eval")
    with evtrack.start_run() as run:
        evtrack.log_input(train, context="training", tags={"split": "2021-01"})
        evtrack.log_input(train, context="training", tags={"split": "ignored: logged already"})
        evtrack.log_input(train, context="evaluation")  # the same data in another context is another input
        evtrack.log_inputs([evaluation, evaluation], contexts=["evaluation", None])
    inputs = evtrack.get_run(run.info.run_id).inputs.dataset_inputs
    assert [(i.dataset.name, i.context) for i in inputs] == [
        ("train", "training"),
        ("train", "evaluation"),
        ("eval", "evaluation"),
        ("eval", None),
    ]
    first = inputs[0]
    assert isinstance(first, DatasetInput) and first.dataset == train.to_entity()
    assert {t.key: t.value for t in first.tags} == {"split": "2021-01", "mlflow.data.context": "training"}
    assert evtrack.get_run(run.info.run_id).to_dictionary()["inputs"]["dataset_inputs"][0]["dataset"]["name"] == "train"
    with evtrack.start_run() as other:
        pass
    assert evtrack.get_run(other.info.run_id).inputs.dataset_inputs == []
    assert "inputs" not in evtrack.get_run(other.info.run_id).to_dictionary()


def test_log_input_checks(tracking_uri: str) -> None:
    from evtrack.entities import Dataset

    with evtrack.start_run():
        with pytest.raises(InvalidParameterError, match="'digest' exceeds the maximum length of 36"):
            evtrack.log_input(Dataset("d", "x" * 37, "local", "{}"))
        with pytest.raises(InvalidParameterError, match="must be specified"):
            evtrack.log_input(None)
        with pytest.raises(InvalidParameterError, match="Cannot log list as a dataset"):
            evtrack.log_input([1, 2, 3])
        with pytest.raises(InvalidParameterError, match="same length"):
            evtrack.log_inputs([Dataset("d", "1", "local", "{}")], contexts=["a", "b"])
        evtrack.log_input(Dataset("d", "1", "local", "{}"), context="training")  # an entity is fine


def test_an_mlflow_dataset_can_be_logged(local_uri: str, fresh_evtrack: None) -> None:
    mlflow_data = pytest.importorskip("mlflow.data")
    evtrack.set_tracking_uri(local_uri)
    ds = mlflow_data.from_pandas(_df(), name="from-mlflow")
    with evtrack.start_run() as run:
        evtrack.log_input(ds, context="training")
    (got,) = evtrack.get_run(run.info.run_id).inputs.dataset_inputs
    assert (got.dataset.name, got.dataset.digest, got.context) == ("from-mlflow", ds.digest, "training")


# -- search and SQL ------------------------------------------------------------------------

FILTERS = [
    ("datasets.name = 'train'", {"a", "b"}),
    ("dataset.name != 'train'", {"b", "c"}),  # some input of the run has another name
    ("datasets.name LIKE 'tr%'", {"a", "b"}),
    ("datasets.name LIKE 'TR%'", set()),
    ("datasets.name ILIKE 'TR%'", {"a", "b"}),
    ("datasets.name IN ('eval', 'other')", {"b", "c"}),
    ("datasets.name NOT IN ('train')", {"b", "c"}),
    ("datasets.context = 'training'", {"a", "b", "c"}),
    ("datasets.context = 'evaluation'", {"b"}),
    ("datasets.context != 'training'", {"b"}),
    ("datasets.context IN ('evaluation')", {"b"}),
    ("datasets.digest = '{train}'", {"a", "b"}),
    ("datasets.digest IN ('{train}', '{other}')", {"a", "b", "c"}),
    ("datasets.digest NOT IN ('{train}')", {"b", "c"}),
    ("datasets.name = 'train' and datasets.context = 'evaluation'", {"b"}),
    ("datasets.name = 'other' and params.alpha = '0.5'", {"c"}),
    ("datasets.name = 'nothing'", set()),
]


def test_dataset_filters_before_and_after_compaction(tracking_uri: str, csv_file: Path, tmp_path: Path) -> None:
    train = evtrack.data.from_path(csv_file, name="train")
    other_file = tmp_path / "other.csv"
    other_file.write_bytes(CSV + b"9.9,30.0,c\n")
    other = evtrack.data.from_path(other_file, name="other")
    evaluation = evtrack.data.from_pandas(_df(), name="eval")
    names: dict[str, str] = {}
    for label, inputs in (
        ("a", [(train, "training")]),
        ("b", [(train, "training"), (evaluation, "evaluation")]),
        ("c", [(other, "training")]),
        ("d", []),
    ):
        with evtrack.start_run(run_name=label) as run:
            evtrack.log_param("alpha", "0.5")
            for ds, ctx in inputs:
                evtrack.log_input(ds, context=ctx)
        names[run.info.run_id] = label
    ids = {v: k for k, v in names.items()}

    def found(filter_string: str) -> set[str]:
        flt = filter_string.format(train=train.digest, other=other.digest)
        return {names[r.info.run_id] for r in evtrack.search_runs(filter_string=flt, output_format="list")}

    # The SQL is the same on both stores: on S3 (slower round trips) a third of the table will do.
    cases = FILTERS[::3] if tracking_uri.startswith("s3://") else FILTERS

    def check() -> None:
        failures = [(f, got, want) for f, want in cases if (got := found(f)) != want]
        assert not failures
        runs = evtrack.search_runs(filter_string="datasets.context = 'evaluation'", output_format="list")
        assert [i.dataset.name for i in runs[0].inputs.dataset_inputs] == ["train", "eval"]

    check()
    report = compact(open_store(tracking_uri), grace_seconds=0)
    assert report.events > 0
    check()
    with evtrack.start_run(run_id=ids["d"]):  # a tail input on top of a compacted run
        evtrack.log_input(other, context="testing")
    assert found("datasets.context = 'testing'") == {"d"}
    assert found("datasets.name = 'other'") == {"c", "d"}
    assert [i.context for i in evtrack.get_run(ids["d"]).inputs.dataset_inputs] == ["testing"]
    compact(open_store(tracking_uri), grace_seconds=0)
    assert found("datasets.context = 'testing'") == {"d"}


def test_inputs_view_and_table(tracking_uri: str, csv_file: Path, table_rows: Any) -> None:
    ds = evtrack.data.from_path(csv_file, name="train")
    with evtrack.start_run() as run:
        evtrack.log_input(ds, context="training", tags={"split": "jan"})
    rows = evtrack.sql(
        "SELECT run_id, name, digest, context, source_type, tags, "
        "json_extract(profile, '$.num_rows')::INT AS n FROM inputs"
    ).to_pylist()
    assert rows == [
        {
            "run_id": run.info.run_id,
            "name": "train",
            "digest": ds.digest,
            "context": "training",
            "source_type": "local",
            "tags": '{"split":"jan"}',
            "n": 3,
        }
    ]
    assert evtrack.sql("SELECT count(*) AS n FROM datasets").to_pylist() == [{"n": 1}]
    compact(open_store(tracking_uri), grace_seconds=0)
    (row,) = table_rows(open_store(tracking_uri), "inputs")
    assert (row["run_id"], row["name"], row["context"]) == (run.info.run_id, "train", "training")
    joined = evtrack.sql("SELECT r.run_name, i.name FROM runs r JOIN inputs i USING (run_id)").to_pylist()
    assert joined == [{"run_name": run.info.run_name, "name": "train"}]


def test_gc_purges_the_inputs_of_a_deleted_run(
    local_uri: str, fresh_evtrack: None, csv_file: Path, table_rows: Any
) -> None:
    from compaction.gc import gc
    from compaction.rebuild import rebuild

    evtrack.set_tracking_uri(local_uri)
    store = open_store(local_uri)
    ds = evtrack.data.from_path(csv_file)
    run_ids = []
    for _ in range(2):
        with evtrack.start_run() as run:
            evtrack.log_input(ds, context="training")
        run_ids.append(run.info.run_id)
    compact(store, grace_seconds=0)
    evtrack.delete_run(run_ids[0])
    evtrack.flush()
    assert gc(store).purged_runs == [run_ids[0]]
    assert [r["run_id"] for r in table_rows(store, "inputs")] == [run_ids[1]]
    rebuild(store)  # the events table agrees: the inputs table is derived from it like the others
    assert [r["run_id"] for r in table_rows(store, "inputs")] == [run_ids[1]]
    assert (
        evtrack.search_runs(filter_string=f"datasets.digest = '{ds.digest}'", output_format="list")[0].info.run_id
        == run_ids[1]
    )
