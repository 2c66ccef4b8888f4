"""The cross-document long table in DuckDB, and what the SQL templates read from it.

Two relations, both built by `build_fact_db` so that a stored query can be re-run on a fresh
database made from the same facts:

- `facts(entity, doc_id, year, metric, value, unit)`: every aligned figure, one row per
  document that prints it (a 2023 report repeating 2022 figures gives a second 2022 row);
- `metric_values(entity, year, metric, value, unit)`: one row per (entity, year, metric) whose
  documents agree on the value. Keys whose documents disagree (a restated figure) are left
  out: no single answer would be right for a reader of every source document.

Every generated query reads `metric_values`; `rows_read` maps a query's scope back to the
`facts` rows, and so to the documents the answer rests on.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import duckdb
import pyarrow as pa

from qwenlong.core.errors import DatasetError
from qwenlong.synth.numerical.align import AlignedFact

CREATE_FACTS = (
    "CREATE TABLE facts (entity TEXT NOT NULL, doc_id TEXT NOT NULL, year INTEGER NOT NULL, "
    "metric TEXT NOT NULL, value DOUBLE NOT NULL, unit TEXT NOT NULL)"
)
CREATE_METRIC_VALUES = (
    "CREATE VIEW metric_values AS "
    "SELECT entity, year, metric, min(value) AS value, min(unit) AS unit "
    "FROM facts GROUP BY entity, year, metric HAVING count(DISTINCT value) = 1"
)


def sql_string(text: str) -> str:
    """A SQL string literal (single quotes doubled), so stored queries are self-contained."""
    return "'" + text.replace("'", "''") + "'"


def sql_list(items: Iterable[str]) -> str:
    """`('a', 'b')` for an IN clause, in the given order."""
    return "(" + ", ".join(sql_string(item) for item in items) + ")"


def connect() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB on one thread: results and float sums do not depend on scheduling."""
    return duckdb.connect(":memory:", config={"threads": 1})


def build_fact_db(
    facts: Sequence[AlignedFact], conn: duckdb.DuckDBPyConnection | None = None
) -> duckdb.DuckDBPyConnection:
    """Create `facts` and `metric_values` from aligned facts (in a new database by default)."""
    conn = conn or connect()
    conn.execute(CREATE_FACTS)
    conn.execute(CREATE_METRIC_VALUES)
    columns = {
        "entity": pa.array([f.entity for f in facts], pa.string()),
        "doc_id": pa.array([f.doc_id for f in facts], pa.string()),
        "year": pa.array([f.year for f in facts], pa.int32()),
        "metric": pa.array([f.metric for f in facts], pa.string()),
        "value": pa.array([f.value for f in facts], pa.float64()),
        "unit": pa.array([f.unit for f in facts], pa.string()),
    }
    conn.register("_new_facts", pa.table(columns))
    conn.execute("INSERT INTO facts SELECT * FROM _new_facts")
    conn.unregister("_new_facts")
    return conn


def run_query(conn: duckdb.DuckDBPyConnection, sql: str) -> list[tuple]:
    """All rows of `sql`; a failing query is a bug in a template, reported with its text."""
    try:
        return conn.execute(sql).fetchall()
    except duckdb.Error as err:
        raise DatasetError(f"numerical query failed ({err}): {sql}") from None


@dataclass(frozen=True)
class Scope:
    """The keys a query reads: its metrics and entities, and its years (None: all years)."""

    metrics: tuple[str, ...]
    entities: tuple[str, ...]
    years: tuple[int, ...] | None = None


@dataclass(frozen=True)
class RowRead:
    """One agreed value a query reads, with the documents that print it."""

    entity: str
    metric: str
    year: int
    value: float
    unit: str
    doc_ids: tuple[str, ...]


def rows_read(conn: duckdb.DuckDBPyConnection, scope: Scope) -> list[RowRead]:
    """The `metric_values` rows inside `scope`, each with every document that states it."""
    sql = (
        "SELECT v.entity, v.metric, v.year, v.value, v.unit, list(DISTINCT f.doc_id ORDER BY "
        "f.doc_id) FROM metric_values v JOIN facts f USING (entity, year, metric) "
        f"WHERE v.metric IN {sql_list(scope.metrics)} AND v.entity IN {sql_list(scope.entities)}"
    )
    if scope.years is not None:
        sql += " AND v.year IN (" + ", ".join(str(y) for y in scope.years) + ")"
    sql += " GROUP BY ALL ORDER BY v.entity, v.metric, v.year"
    return [RowRead(e, m, y, v, u, tuple(docs)) for e, m, y, v, u, docs in run_query(conn, sql)]


@dataclass
class Catalog:
    """`metric_values` loaded into Python: what templates may ask about, and what they may not.

    Templates use it to pick entities, years and thresholds that make a well-posed question
    (every value present, no ties where a single entity is asked for); the answer itself always
    comes from running the SQL.
    """

    values: dict[tuple[str, str, int], float]
    """(metric, entity, year) -> agreed value."""
    units: dict[str, str]
    """Metric -> unit."""
    conflicts: int = 0
    """(entity, year, metric) keys left out because their documents disagree."""
    _series: dict[tuple[str, str], dict[int, float]] = field(
        default_factory=dict, init=False, repr=False
    )

    def __post_init__(self) -> None:
        for (metric, entity, year), value in sorted(self.values.items()):
            self._series.setdefault((metric, entity), {})[year] = value

    @classmethod
    def load(cls, conn: duckdb.DuckDBPyConnection) -> Catalog:
        rows = run_query(conn, "SELECT metric, entity, year, value, unit FROM metric_values")
        conflicts = run_query(
            conn,
            "SELECT count(*) FROM (SELECT 1 FROM facts GROUP BY entity, year, metric "
            "HAVING count(DISTINCT value) > 1)",
        )[0][0]
        values = {(m, e, y): v for m, e, y, v, _ in rows}
        units = {m: u for m, _, _, _, u in rows}
        return cls(values, units, int(conflicts))

    def metrics(self) -> list[str]:
        return sorted(self.units)

    def series(self, metric: str, entity: str) -> dict[int, float]:
        """Year -> value of one entity's metric, years ascending."""
        return self._series.get((metric, entity), {})

    def entities(self, metric: str, years: Iterable[int] = ()) -> list[str]:
        """Entities (sorted) with a value of `metric` in every one of `years`."""
        wanted = set(years)
        return sorted(
            entity
            for (m, entity), series in self._series.items()
            if m == metric and wanted <= series.keys()
        )

    def years(self, metric: str) -> list[int]:
        """Every year (sorted) with at least one value of `metric`."""
        return sorted({y for (m, _), s in self._series.items() if m == metric for y in s})
