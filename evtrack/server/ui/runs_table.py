"""The runs table of an experiment: what the query string asks for, which columns, which cells.

The page shows one page of ``search_runs`` (``max_results`` runs, default 100),
never the whole experiment; the CSV export walks the same search page by page.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from evtrack.entities import Run, ViewType
from evtrack.errors import InvalidParameterError

DEFAULT_MAX_RESULTS = 100
MAX_PAGE = 1000
MAX_DEFAULT_COLUMNS = 60  # of each kind (params, metrics, tags) when the user chose none
SYSTEM_TAG_PREFIXES = ("mlflow.", "evtrack.")
_PREFIXES = {"params": "param", "param": "param", "metrics": "metric", "metric": "metric", "tags": "tag", "tag": "tag"}
_PLURAL = {"param": "params", "metric": "metrics", "tag": "tags"}
_VIEWS = {"active": ViewType.ACTIVE_ONLY, "deleted": ViewType.DELETED_ONLY, "all": ViewType.ALL}
_SIMPLE_KEY = re.compile(r"^[A-Za-z_][\w.\-/:]*$")

# (label, order_by key) of the fixed info columns; duration cannot be ordered by.
INFO_COLUMNS = (
    ("Run name", "attributes.run_name"),
    ("Start time", "attributes.start_time"),
    ("Duration", None),
    ("Status", "attributes.status"),
    ("User", "attributes.user_id"),
)


@dataclass(frozen=True)
class Column:
    """A params/metrics/tags column of the runs table."""

    kind: str  # "param" | "metric" | "tag"
    key: str

    @property
    def name(self) -> str:
        """How the column is spelled in ``?columns=`` (``params.alpha``)."""
        return f"{_PLURAL[self.kind]}.{self.key}"

    @property
    def order_key(self) -> str:
        """The column in MLflow's order_by grammar (keys quoted when needed)."""
        key = self.key if _SIMPLE_KEY.match(self.key) else '"' + self.key.replace('"', '""') + '"'
        return f"{_PLURAL[self.kind]}.{key}"

    def value(self, run: Run) -> Any:
        """The run's value in this column (None when it has none)."""
        source = {"param": run.data.params, "metric": run.data.metrics, "tag": run.data.tags}[self.kind]
        return source.get(self.key)


def parse_columns(values: list[str]) -> list[Column]:
    """Columns from ``?columns=params.a,metrics.b`` (repeatable); a clear error for a bad one."""
    out: list[Column] = []
    for value in values:
        for item in value.split(","):
            item = item.strip()
            if not item:
                continue
            prefix, dot, key = item.partition(".")
            if not dot or not key or prefix not in _PREFIXES:
                raise InvalidParameterError(
                    f"Invalid column {item!r}: expected params.<key>, metrics.<key> or tags.<key>"
                )
            col = Column(_PREFIXES[prefix], key)
            if col not in out:
                out.append(col)
    return out


def is_system_tag(key: str) -> bool:
    """Whether a tag is set by evtrack/MLflow itself (``mlflow.*``, ``evtrack.*``)."""
    return key.startswith(SYSTEM_TAG_PREFIXES)


def default_columns(runs: list[Run], show_tags: bool) -> list[Column]:
    """Every param and metric key of these runs (and their user tags when asked), sorted."""
    params = sorted({k for r in runs for k in r.data.params})[:MAX_DEFAULT_COLUMNS]
    metrics = sorted({k for r in runs for k in r.data.metrics})[:MAX_DEFAULT_COLUMNS]
    cols = [Column("param", k) for k in params] + [Column("metric", k) for k in metrics]
    if show_tags:
        tags = sorted({k for r in runs for k in r.data.tags if not is_system_tag(k)})[:MAX_DEFAULT_COLUMNS]
        cols += [Column("tag", k) for k in tags]
    return cols


@dataclass
class RunsQuery:
    """What the runs table was asked for in the query string."""

    filter: str = ""
    order_by: str = ""
    max_results: int = DEFAULT_MAX_RESULTS
    page_token: str | None = None
    view: str = "active"
    columns: list[Column] = field(default_factory=list)
    show_tags: bool = False

    @classmethod
    def from_request(cls, request) -> RunsQuery:
        """Parse the query string; a bad ``max_results``/``view``/``columns`` is an error naming it."""
        q = request.query_params
        raw_max = q.get("max_results") or str(DEFAULT_MAX_RESULTS)
        try:
            max_results = int(raw_max)
        except ValueError:
            raise InvalidParameterError(f"Invalid max_results {raw_max!r}: expected a whole number") from None
        if not 1 <= max_results <= MAX_PAGE:
            raise InvalidParameterError(f"Invalid max_results {max_results}: must be between 1 and {MAX_PAGE}")
        view = q.get("view") or "active"
        if view not in _VIEWS:
            raise InvalidParameterError(f"Invalid view {view!r}: expected one of {', '.join(_VIEWS)}")
        return cls(
            filter=q.get("filter") or "",
            order_by=(q.get("order_by") or "").strip(),
            max_results=max_results,
            page_token=q.get("page_token") or None,
            view=view,
            columns=parse_columns(q.getlist("columns")),
            show_tags=(q.get("show_tags") or "") in ("1", "true", "on"),
        )

    @property
    def view_type(self) -> int:
        return _VIEWS[self.view]

    @property
    def order_list(self) -> list[str] | None:
        return [self.order_by] if self.order_by else None

    def url(self, path: str, **changes: Any) -> str:
        """``path`` with this query's parameters, ``changes`` applied (None drops one)."""
        params: dict[str, Any] = {
            "filter": self.filter,
            "order_by": self.order_by,
            "max_results": self.max_results if self.max_results != DEFAULT_MAX_RESULTS else None,
            "page_token": self.page_token,
            "view": self.view if self.view != "active" else None,
            "columns": ",".join(c.name for c in self.columns) or None,
            "show_tags": "1" if self.show_tags else None,
        }
        params.update(changes)
        kept = {k: v for k, v in params.items() if v not in (None, "")}
        return path + ("?" + urllib.parse.urlencode(kept) if kept else "")

    def sort_url(self, path: str, order_key: str) -> str:
        """The URL ordering by a column: ascending first, descending when already ascending."""
        direction = "DESC" if self.order_by == f"{order_key} ASC" else "ASC"
        return self.url(path, order_by=f"{order_key} {direction}", page_token=None)

    def sort_mark(self, order_key: str | None) -> str:
        """▲/▼ when the table is ordered by this column."""
        if not order_key or not self.order_by:
            return ""
        if self.order_by in (f"{order_key} ASC", order_key):
            return "▲"
        return "▼" if self.order_by == f"{order_key} DESC" else ""
