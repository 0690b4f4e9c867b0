"""The ``ObjectStore`` contract, run against both backends, plus ``open_store`` and S3 outages."""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import pytest

from evtrack.errors import CommitConflictError, InvalidParameterError, InvalidUriError, ObjectNotFoundError, StoreError
from evtrack.store import LocalStore, ObjectInfo, ObjectStore, open_store
from evtrack.store.base import list_keys, open_chunks

MiB = 1024 * 1024


def keys(store: ObjectStore, prefix: str = "", start_after: str | None = None) -> list[str]:
    return [info.key for info in store.list(prefix, start_after)]


# -- get / put -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key, data",
    [
        ("plain.txt", b"hello"),
        ("binary.bin", bytes(range(256)) * 17),
        ("empty", b""),
        ("events/2024/01/01/segment-0001.jsonl", b'{"v": 1}\n'),
        ("unicode/réseau-数据 ünd space.json", "ünïcödé".encode()),
    ],
)
def test_put_then_get_returns_the_same_bytes(object_store: ObjectStore, key: str, data: bytes) -> None:
    object_store.put(key, data)
    assert object_store.get(key) == data
    assert keys(object_store) == [key]


def test_put_overwrites(object_store: ObjectStore) -> None:
    object_store.put("a/b", b"first")
    object_store.put("a/b", b"second, longer")
    assert object_store.get("a/b") == b"second, longer"
    assert object_store.head("a/b").size == len(b"second, longer")


def test_get_missing_raises_object_not_found_naming_the_key(object_store: ObjectStore) -> None:
    with pytest.raises(ObjectNotFoundError, match="nope/missing.json"):
        object_store.get("nope/missing.json")


# -- put_if_absent -------------------------------------------------------------------------


def test_put_if_absent_first_wins(object_store: ObjectStore) -> None:
    object_store.put_if_absent("_manifests/00000000000000000001.json", b"winner")
    with pytest.raises(CommitConflictError, match="00000000000000000001"):
        object_store.put_if_absent("_manifests/00000000000000000001.json", b"loser")
    assert object_store.get("_manifests/00000000000000000001.json") == b"winner"
    assert keys(object_store) == ["_manifests/00000000000000000001.json"]


def test_put_if_absent_conflicts_with_a_plain_put(object_store: ObjectStore) -> None:
    object_store.put("catalog/name", b"taken")
    with pytest.raises(CommitConflictError):
        object_store.put_if_absent("catalog/name", b"mine")
    assert object_store.get("catalog/name") == b"taken"


def test_concurrent_put_if_absent_has_exactly_one_winner(object_store: ObjectStore) -> None:
    n = 8
    barrier = threading.Barrier(n)
    outcomes: dict[int, str] = {}

    def contend(i: int) -> None:
        barrier.wait()
        try:
            object_store.put_if_absent("_manifests/00000000000000000007.json", b"writer-%d" % i)
            outcomes[i] = "won"
        except CommitConflictError:
            outcomes[i] = "lost"
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            outcomes[i] = repr(exc)

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    winners = [i for i, outcome in outcomes.items() if outcome == "won"]
    assert sorted(outcomes.values()) == ["lost"] * (n - 1) + ["won"], outcomes
    assert object_store.get("_manifests/00000000000000000007.json") == b"writer-%d" % winners[0]


# -- list ----------------------------------------------------------------------------------

# Chosen so that directory-grouped listing would differ from S3's flat order:
# "-" (0x2d) < "/" (0x2f) < "0" (0x30).
UNORDERED_KEYS = [
    "events/170.jsonl",
    "events/2.jsonl",
    "events/17/x.jsonl",
    "events/17-a.jsonl",
    "events/1700.jsonl",
    "events/17/a/b.jsonl",
    "events.jsonl",
    "a.txt",
    "a-b/c",
    "a/b",
    "a0",
    "tables/runs/p.parquet",
]


@pytest.fixture
def filled_store(object_store: ObjectStore) -> ObjectStore:
    for key in UNORDERED_KEYS:
        object_store.put(key, key.encode())
    return object_store


def test_list_yields_all_keys_in_flat_lexicographic_order(filled_store: ObjectStore) -> None:
    infos = list(filled_store.list())
    assert [i.key for i in infos] == sorted(UNORDERED_KEYS)
    assert all(isinstance(i, ObjectInfo) and i.size == len(i.key) for i in infos)
    assert all(abs(i.mtime - time.time()) < 600 for i in infos)


@pytest.mark.parametrize(
    "prefix",
    ["events/", "events", "events/17", "events/17/", "events/17/a", "a", "a/", "tables/runs/p.parquet", "zzz", "nope/"],
)
def test_list_filters_by_any_string_prefix(filled_store: ObjectStore, prefix: str) -> None:
    expected = sorted(k for k in UNORDERED_KEYS if k.startswith(prefix))
    assert keys(filled_store, prefix) == expected
    assert list(list_keys(filled_store, prefix)) == expected  # the keys alone (no stat on a local store)


@pytest.mark.parametrize(
    "prefix, start_after",
    [
        ("", "a"),
        ("", "events/17"),
        ("", "events/17/a/b.jsonl"),
        ("", "events/17/"),
        ("events/", "events/17-a.jsonl"),
        ("events/", "events/2"),
        ("events/", "events/3"),
        ("events/", "a"),
        ("events/17", "events/17/x.jsonl"),
        ("", "zzz"),
    ],
)
def test_list_start_after(filled_store: ObjectStore, prefix: str, start_after: str) -> None:
    expected = sorted(k for k in UNORDERED_KEYS if k.startswith(prefix) and k > start_after)
    assert keys(filled_store, prefix, start_after) == expected


def test_list_of_an_empty_store_or_missing_prefix_is_empty(object_store: ObjectStore) -> None:
    assert keys(object_store) == []
    assert keys(object_store, "events/") == []
    object_store.put("events/x", b"1")
    assert keys(object_store, "tables/") == []
    assert keys(object_store, "events/x/") == []


# -- head / delete -------------------------------------------------------------------------


def test_head_present_and_absent(object_store: ObjectStore) -> None:
    assert object_store.head("runs/r1/meta.json") is None
    object_store.put("runs/r1/meta.json", b"12345")
    info = object_store.head("runs/r1/meta.json")
    assert info is not None
    assert (info.key, info.size) == ("runs/r1/meta.json", 5)
    assert abs(info.mtime - time.time()) < 600
    assert object_store.head("runs/r1") is None  # a "directory" is not an object


def test_delete_is_idempotent_and_leaves_siblings(object_store: ObjectStore) -> None:
    object_store.put("events/a/1", b"1")
    object_store.put("events/b/2", b"2")
    object_store.delete("events/a/1")
    object_store.delete("events/a/1")
    object_store.delete("never/existed")
    assert object_store.head("events/a/1") is None
    assert keys(object_store) == ["events/b/2"]
    object_store.put("events/a/1", b"again")  # the pruned directory comes back
    assert object_store.get("events/a/1") == b"again"


def test_delete_many_removes_exactly_the_keys_given(object_store: ObjectStore) -> None:
    doomed = [f"events/w/{i}" for i in range(40)] + [f"events/v/deep/{i}" for i in range(5)]
    for key in doomed:
        object_store.put(key, b"x")
    object_store.put("tables/keep", b"k")
    object_store.put("events/v/stay", b"s")
    if hasattr(object_store, "DELETE_BATCH"):
        object_store.DELETE_BATCH = 3  # type: ignore[attr-defined]  # many requests, several at a time on S3
    object_store.delete_many(doomed + ["never/existed"])
    object_store.delete_many([])
    assert keys(object_store) == ["events/v/stay", "tables/keep"]
    root = getattr(object_store, "root", None)
    if root is not None:  # the local store prunes the directories it emptied, and only those
        assert not os.path.exists(os.path.join(root, "events", "w"))
        assert not os.path.exists(os.path.join(root, "events", "v", "deep"))
        assert os.path.isdir(os.path.join(root, "events", "v"))


# -- put_file / get_file -------------------------------------------------------------------


def test_put_file_get_file_roundtrip(object_store: ObjectStore, tmp_path: Any) -> None:
    src = tmp_path / "model.bin"
    src.write_bytes(os.urandom(100_000))
    object_store.put_file("artifacts/1/r/model.bin", str(src))
    dest = tmp_path / "out" / "deep" / "model.bin"
    object_store.get_file("artifacts/1/r/model.bin", str(dest))
    assert dest.read_bytes() == src.read_bytes()
    assert object_store.head("artifacts/1/r/model.bin").size == 100_000


def test_large_file_roundtrip_in_parts(store_uri: str, tmp_path: Any) -> None:
    store = open_store(store_uri)
    if not isinstance(store, LocalStore):  # exercise multipart: 6 MiB file, 5 MiB parts
        from evtrack.store.s3 import S3Store

        store = S3Store(store.bucket, store.prefix, multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB)
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(6 * MiB + 123))
    store.put_file("artifacts/big.bin", str(src))
    assert store.head("artifacts/big.bin").size == 6 * MiB + 123
    dest = tmp_path / "big-copy.bin"
    store.get_file("artifacts/big.bin", str(dest))
    assert dest.read_bytes() == src.read_bytes()


def test_get_file_missing_raises_object_not_found(object_store: ObjectStore, tmp_path: Any) -> None:
    with pytest.raises(ObjectNotFoundError, match="missing.bin"):
        object_store.get_file("missing.bin", str(tmp_path / "x"))
    assert not (tmp_path / "x").exists()


def test_put_file_of_a_missing_local_file_is_a_parameter_error(object_store: ObjectStore, tmp_path: Any) -> None:
    with pytest.raises(InvalidParameterError, match="nope.bin"):
        object_store.put_file("a", str(tmp_path / "nope.bin"))
    assert keys(object_store) == []


# -- read_range / iter_chunks --------------------------------------------------------------

DIGITS = b"0123456789"


@pytest.mark.parametrize(
    "start, length, expected",
    [
        (0, 4, b"0123"),  # the start
        (3, 4, b"3456"),  # the middle
        (6, 4, b"6789"),  # exactly the end
        (7, 10, b"789"),  # runs over the end: what there is
        (0, 100, DIGITS),
        (10, 1, b""),  # starts at the end
        (25, 5, b""),  # starts past the end
        (4, 0, b""),  # zero length
    ],
)
def test_read_range(object_store: ObjectStore, start: int, length: int, expected: bytes) -> None:
    object_store.put("logs/digits.txt", DIGITS)
    assert object_store.read_range("logs/digits.txt", start, length) == expected


def test_read_range_of_an_empty_object_is_empty(object_store: ObjectStore) -> None:
    object_store.put("empty", b"")
    assert object_store.read_range("empty", 0, 10) == b""
    assert object_store.read_range("empty", 0, 0) == b""


@pytest.mark.parametrize("length", [0, 5])
def test_read_range_missing_raises_object_not_found(object_store: ObjectStore, length: int) -> None:
    with pytest.raises(ObjectNotFoundError, match="nope/missing.bin"):
        object_store.read_range("nope/missing.bin", 0, length)


@pytest.mark.parametrize("start, length", [(-1, 5), (0, -1), (1.5, 2)])
def test_read_range_rejects_a_negative_or_fractional_range(object_store: ObjectStore, start: Any, length: Any) -> None:
    object_store.put("f", DIGITS)
    with pytest.raises(InvalidParameterError, match="invalid byte range"):
        object_store.read_range("f", start, length)


def test_iter_chunks_reassembles_an_object_larger_than_a_chunk(object_store: ObjectStore) -> None:
    data = os.urandom(3 * 4096 + 1000)
    object_store.put("artifacts/model.bin", data)
    chunks = list(object_store.iter_chunks("artifacts/model.bin", chunk_size=4096))
    assert b"".join(chunks) == data
    assert len(chunks) >= 4 and all(0 < len(c) <= 4096 for c in chunks)


def test_iter_chunks_default_chunk_size_streams_the_whole_object(object_store: ObjectStore) -> None:
    data = os.urandom(MiB + 17)
    object_store.put("big", data)
    chunks = list(object_store.iter_chunks("big"))
    assert b"".join(chunks) == data and len(chunks) >= 2 and max(map(len, chunks)) <= MiB


def test_iter_chunks_of_an_empty_object_yields_nothing(object_store: ObjectStore) -> None:
    object_store.put("empty", b"")
    assert list(object_store.iter_chunks("empty")) == []


def test_iter_chunks_missing_raises_object_not_found_by_the_first_chunk(object_store: ObjectStore) -> None:
    with pytest.raises(ObjectNotFoundError, match="nope/missing.bin"):
        next(iter(object_store.iter_chunks("nope/missing.bin")))
    with pytest.raises(ObjectNotFoundError, match="nope/missing.bin"):
        open_chunks(object_store, "nope/missing.bin")  # raised by the call itself


def test_open_chunks_streams_what_iter_chunks_streams(object_store: ObjectStore) -> None:
    object_store.put("a", b"x" * 10)
    object_store.put("empty", b"")
    assert list(open_chunks(object_store, "a", 4)) == [b"xxxx", b"xxxx", b"xx"]
    assert list(open_chunks(object_store, "empty")) == []


@pytest.mark.parametrize("chunk_size", [0, -1])
def test_iter_chunks_rejects_a_chunk_size_below_one(object_store: ObjectStore, chunk_size: int) -> None:
    object_store.put("a", b"x")
    with pytest.raises(InvalidParameterError, match="invalid chunk size"):
        list(object_store.iter_chunks("a", chunk_size))


# -- key safety ----------------------------------------------------------------------------

BAD_KEYS = ["", "/etc/passwd", "../escape", "a/../../escape", "a/./b", "a//b", "a/", "a\\b", "nul\x00byte"]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_unsafe_keys_are_rejected(object_store: ObjectStore, key: str) -> None:
    for op in (
        lambda: object_store.put(key, b"x"),
        lambda: object_store.put_if_absent(key, b"x"),
        lambda: object_store.get(key),
        lambda: object_store.read_range(key, 0, 1),
        lambda: list(object_store.iter_chunks(key)),
        lambda: object_store.head(key),
        lambda: object_store.delete(key),
    ):
        with pytest.raises(InvalidUriError, match="invalid object key"):
            op()


def test_local_store_never_writes_outside_its_root(tmp_path: Any) -> None:
    root = tmp_path / "root"
    store = LocalStore(str(root))
    for key in BAD_KEYS:
        with pytest.raises(InvalidUriError):
            store.put(key, b"x")
    with pytest.raises(InvalidUriError):
        store.put(".tmp-sneaky", b"x")  # reserved for temp files, which are never listed
    store.put("ok", b"x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["root"]
    assert sorted(p.name for p in root.iterdir()) == ["ok"]


def test_local_store_leaves_no_temp_files_and_lists_none(tmp_path: Any) -> None:
    store = LocalStore(str(tmp_path))
    store.put("d/a", b"1")
    store.put_if_absent("d/b", b"2")
    with pytest.raises(CommitConflictError):
        store.put_if_absent("d/b", b"3")
    (tmp_path / "d" / ".tmp-crashed-writer").write_bytes(b"partial")
    assert keys(store) == ["d/a", "d/b"]
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == [".tmp-crashed-writer", "a", "b"]


def test_local_store_key_that_collides_with_a_directory_is_a_store_error(tmp_path: Any) -> None:
    store = LocalStore(str(tmp_path))
    store.put("a/b", b"1")
    with pytest.raises(StoreError):
        store.put("a", b"2")
    with pytest.raises(StoreError, match="parent of the key is an object"):
        store.put("a/b/c", b"3")
    assert keys(store) == ["a/b"]


# -- open_store ----------------------------------------------------------------------------


def test_open_store_plain_and_file_paths(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    relative = open_store("rel/store")
    assert isinstance(relative, LocalStore)
    assert relative.uri == f"file://{tmp_path}/rel/store"
    monkeypatch.chdir("/")  # resolved at open time, not at use
    relative.put("k", b"v")
    assert (tmp_path / "rel" / "store" / "k").read_bytes() == b"v"
    absolute = open_store(f"file://{tmp_path}/rel/store")
    assert absolute.uri == relative.uri
    assert absolute.get("k") == b"v"
    assert open_store(str(tmp_path / "rel" / "store")).uri == relative.uri


def test_open_store_s3_uri(s3_endpoint: str) -> None:
    store = open_store("s3://my-bucket/some/prefix/")
    assert (store.bucket, store.prefix, store.uri) == ("my-bucket", "some/prefix", "s3://my-bucket/some/prefix")
    assert open_store("s3://my-bucket").uri == "s3://my-bucket"


@pytest.mark.parametrize(
    "uri, why",
    [
        ("http://x", "scheme 'http' is not supported"),
        ("gs://bucket/p", "scheme 'gs' is not supported"),
        ("s3://", "is not a valid bucket name"),
        ("s3:///prefix", "is not a valid bucket name"),
        ("file://relative/path", "absolute path"),
        ("", "empty"),
    ],
)
def test_open_store_rejects_bad_uris_with_a_helpful_message(uri: str, why: str) -> None:
    with pytest.raises(InvalidUriError) as info:
        open_store(uri)
    message = str(info.value)
    assert why in message
    assert repr(uri) in message
    assert "s3://bucket[/prefix]" in message and "file:///" in message


def test_importing_evtrack_store_does_not_import_boto3() -> None:
    import subprocess
    import sys

    code = "import sys, evtrack.store; evtrack.store.open_store('x'); print('boto3' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -- S3 outages ----------------------------------------------------------------------------


def test_unreachable_s3_endpoint_is_a_one_line_store_error_and_recovers(moto_server_factory: Any) -> None:
    import boto3

    from evtrack.store.s3 import S3Store

    server = moto_server_factory()
    boto3.client("s3", endpoint_url=server.url).create_bucket(Bucket="outage-bucket")
    store = S3Store("outage-bucket", "p", endpoint_url=server.url, max_attempts=2, connect_timeout=1, read_timeout=2)
    store.put("events/seg-1", b"before")
    server.stop()
    slowest = 0.0
    for op in (
        lambda: store.get("events/seg-1"),
        lambda: store.read_range("events/seg-1", 0, 3),
        lambda: list(store.iter_chunks("events/seg-1")),
        lambda: store.put("events/seg-2", b"x"),
        lambda: store.put_if_absent("events/seg-3", b"x"),
        lambda: list(store.list("events/")),
        lambda: store.delete_many(["events/seg-1", "events/seg-2"]),
    ):
        started = time.monotonic()
        with pytest.raises(StoreError) as info:
            op()
        slowest = max(slowest, time.monotonic() - started)
        assert not isinstance(info.value, (ObjectNotFoundError, CommitConflictError))
        message = str(info.value)
        assert "\n" not in message
        assert "outage-bucket" in message and server.url in message
    with pytest.raises(StoreError, match="get of s3://outage-bucket/p/events/seg-1 via"):
        store.get("events/seg-1")
    assert slowest < 5, f"an operation took {slowest:.1f} s to report the outage (2 attempts, 1 s connect timeout)"
    server.start()  # same port, same data
    assert store.get("events/seg-1") == b"before"
    assert keys(store) == ["events/seg-1"]


def test_moto_server_restarts_on_the_same_port(moto_server_factory: Any) -> None:
    server = moto_server_factory()
    port = server.port
    for _ in range(3):
        server.stop()
        assert not server.running
        server.start()
        assert server.port == port and server.running


def test_local_store_put_races_with_delete_pruning_directories(tmp_path: Any) -> None:
    store = LocalStore(str(tmp_path), fsync=False)
    errors: list[BaseException] = []

    def churn(name: str) -> None:
        try:
            for i in range(300):
                store.put(f"d/e/{name}", b"%d" % i)
                store.delete(f"d/e/{name}")
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=churn, args=(name,)) for name in "abcd"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert keys(store) == [] and list(tmp_path.iterdir()) == []
