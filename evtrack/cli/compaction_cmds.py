"""``evtrack compact``, ``evtrack gc`` and ``evtrack tables``."""

from __future__ import annotations

import signal
import sys
import time

import click

from evtrack.cli.options import Duration, resolve_uri, tracking_uri_option


def _progress(done: int, total: int, events: int) -> None:
    if total >= 50 and sys.stderr.isatty():
        click.echo(f"\r  {done}/{total} segments, {events:,} events", err=True, nl=done >= total)


@click.command()
@tracking_uri_option
@click.option(
    "--every",
    type=Duration(),
    default=None,
    metavar="DURATION",
    help="Run forever, one pass every DURATION (e.g. 60s); stops cleanly on SIGTERM/SIGINT.",
)
@click.option("--rebuild", is_flag=True, help="Re-derive every table from the events table.")
@click.option(
    "--grace",
    type=Duration(),
    default=300.0,
    show_default=True,
    help="Delete folded inbox segments once they are this old.",
)
@click.option(
    "--processes",
    type=click.IntRange(min=0),
    default=None,
    metavar="N",
    help="Worker processes decoding a large backlog (default: one per core when the backlog "
    "spans several batches; 0 or 1 decodes in this process).",
)
def compact(tracking_uri: str | None, every: float | None, rebuild: bool, grace: float, processes: int | None) -> None:
    """Fold the event inbox into Parquet tables and commit a new manifest.

    Safe to run from cron on several machines at once.

    Example:

        evtrack compact --tracking-uri s3://ml-bucket/tracking --every 60s
    """
    from compaction import Compactor
    from compaction.rebuild import rebuild as do_rebuild
    from evtrack.store import open_store

    store = open_store(resolve_uri(tracking_uri))
    if rebuild:
        rebuilt = do_rebuild(store)
        click.echo(f"rebuild: {rebuilt.summary()}")
        from compaction import delta

        delta.publish_after_run(store, rebuilt)  # the rebuilt version in the Delta logs too
        return
    stop = {"now": False}

    def _stop(signum, frame):
        stop["now"] = True

    if every:
        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
    while True:
        report = Compactor(store, grace_seconds=grace, progress=_progress, processes=processes).run()
        click.echo(report.summary())
        if not every:
            return
        deadline = time.monotonic() + every
        while not stop["now"] and time.monotonic() < deadline:
            time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
        if stop["now"]:
            click.echo("stopped")
            return


def _split_ids(value: str | None) -> list[str] | None:
    ids = [part.strip() for part in (value or "").split(",") if part.strip()]
    return ids or None


@click.command("gc")
@tracking_uri_option
@click.option(
    "--older-than",
    "older_than",
    type=Duration(),
    default=0.0,
    metavar="DURATION",
    help="Only purge runs and experiments deleted at least this long ago, e.g. 30d or "
    "1d2h3m4s (default: every deleted one).",
)
@click.option(
    "--retention",
    type=Duration(),
    default="7d",
    show_default=True,
    metavar="DURATION",
    help="Keep manifests superseded, and unreferenced table files written, within this "
    "period (0 is unsafe while a compactor runs).",
)
@click.option(
    "--run-ids",
    "run_ids",
    default=None,
    metavar="ID,ID",
    help="Purge only these deleted runs (as mlflow gc: deleted experiments are still "
    "chosen by --experiment-ids or age).",
)
@click.option(
    "--experiment-ids",
    "experiment_ids",
    default=None,
    metavar="ID,ID",
    help="Purge only these deleted experiments, with all their runs.",
)
@click.option("--dry-run", is_flag=True, help="Print what would be deleted, and delete nothing.")
def gc(
    tracking_uri: str | None,
    older_than: float,
    retention: float,
    run_ids: str | None,
    experiment_ids: str | None,
    dry_run: bool,
) -> None:
    """Permanently delete deleted runs and experiments, and old table versions.

    Like mlflow gc: runs and experiments in the deleted stage (all of them, or
    those given, or those deleted longer ago than --older-than) lose their rows
    in every table, their artifacts and their experiment names. Then manifests
    superseded longer ago than --retention and table files no kept manifest
    lists are removed. Time travel to a removed version fails with an error.

    Example:

        evtrack gc --tracking-uri s3://ml-bucket/tracking --older-than 30d
    """
    from compaction.gc import gc as run_gc
    from evtrack.store import open_store

    store = open_store(resolve_uri(tracking_uri))
    report = run_gc(
        store,
        older_than_s=older_than,
        retention_s=retention,
        run_ids=_split_ids(run_ids),
        experiment_ids=_split_ids(experiment_ids),
        dry_run=dry_run,
    )
    if report.compaction is not None and report.compaction.segments:
        click.echo(f"compacted first: {report.compaction.summary()}")
    verb = "would be" if dry_run else "was"
    for run_id in report.purged_runs:
        click.echo(f"run {run_id} {verb} permanently deleted")
    for exp_id in report.purged_experiments:
        click.echo(f"experiment {exp_id} {verb} permanently deleted")
    if dry_run:
        for version in report.deleted_manifests:
            click.echo(f"would delete manifest {version}")
        for key in report.deleted_files:
            click.echo(f"would delete {key}")
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(report.summary())


@click.group()
def tables() -> None:
    """Inspect the compacted tables."""


@tables.command("files")
@tracking_uri_option
@click.argument("table")
@click.option("--version", "version", type=int, default=None, help="Manifest version (default: newest).")
@click.option("--uri/--key", "as_uri", default=True, help="Print full URIs (default) or store keys.")
def tables_files(tracking_uri: str | None, table: str, version: int | None, as_uri: bool) -> None:
    """Print the live files of TABLE in a manifest version, one per line.

    Hand them to Spark, Trino, Athena or DuckDB to read exactly that version.

    Example:

        evtrack tables files metrics --version 12
    """
    from evtrack.state import manifest as mf
    from evtrack.state import tables as tbl
    from evtrack.errors import InvalidParameterError
    from evtrack.store import open_store

    if table not in tbl.all_tables():
        raise InvalidParameterError(f"unknown table {table!r}; tables: {', '.join(tbl.all_tables())}")
    store = open_store(resolve_uri(tracking_uri))
    m = mf.load(store, version)
    for f in m.files(table):
        click.echo(f"{store.uri}/{f['path']}" if as_uri else f["path"])


@tables.command("publish")
@tracking_uri_option
@click.option("--table", "table_names", multiple=True, metavar="TABLE", help="Only this table (repeatable).")
def tables_publish(tracking_uri: str | None, table_names: tuple[str, ...]) -> None:
    """Bring every table's Delta log (tables/<table>/_delta_log/) up to the newest manifest.

    Compactions do this on their own; run it after a crash, with EVTRACK_DELTA_LOG=0,
    or on a store compacted before Delta logs existed. Missing versions are rebuilt
    from the manifests still in the store, one Delta version per manifest.

    Example:

        evtrack tables publish --tracking-uri s3://ml-bucket/tracking
    """
    from compaction import delta
    from evtrack.errors import EvtrackError
    from evtrack.store import open_store

    names = [_known_table(t) for t in table_names] or None
    report = delta.publish(open_store(resolve_uri(tracking_uri)), table_names=names)
    click.echo(report.summary())
    if report.errors:
        raise EvtrackError("; ".join(report.errors))


@tables.command("versions")
@tracking_uri_option
@click.argument("table")
@click.option("--manifest", "manifest", type=int, default=None, help="Print only the Delta version of this manifest.")
@click.option("--last", "last", type=click.IntRange(min=0), default=None, help="Only the LAST newest versions.")
def tables_versions(tracking_uri: str | None, table: str, manifest: int | None, last: int | None) -> None:
    """Print TABLE's Delta versions and the manifest version each one mirrors.

    Delta version d of a table holds exactly the live files of manifest m: read
    "the runs table as of manifest 41" as the Delta version printed by --manifest 41.

    Example:

        evtrack tables versions runs --manifest 41
    """
    from compaction import delta
    from evtrack.errors import ResourceNotFoundError
    from evtrack.store import open_store

    store = open_store(resolve_uri(tracking_uri))
    _known_table(table)
    if manifest is not None:
        found = delta.delta_version_of(store, table, manifest)
        if found is None:
            raise ResourceNotFoundError(
                f"no Delta version of {table} mirrors manifest {manifest} (not published yet, or cleaned up "
                "by gc); see 'evtrack tables versions " + table + "'"
            )
        click.echo(str(found))
        return
    import datetime

    click.echo("delta_version\tmanifest_version\tcommitted")
    for e in delta.version_map(store, table, last):
        when = datetime.datetime.fromtimestamp(e.timestamp / 1000, datetime.timezone.utc).isoformat(timespec="seconds")
        click.echo(f"{e.delta_version}\t{'' if e.manifest_version is None else e.manifest_version}\t{when}")


def _known_table(table: str) -> str:
    from evtrack.errors import InvalidParameterError
    from evtrack.state import tables as tbl

    if table not in tbl.all_tables():
        raise InvalidParameterError(f"unknown table {table!r}; tables: {', '.join(tbl.all_tables())}")
    return table


def register(cli: click.Group) -> None:
    """Add these commands to the ``evtrack`` group."""
    cli.add_command(compact)
    cli.add_command(gc)
    cli.add_command(tables)
