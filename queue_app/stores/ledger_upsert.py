"""The ledger's upsert: a batch of ``JobRecord`` rows in one ``INSERT ... ON CONFLICT`` statement.

The ORM compiles its SQL anew for every ``bulk_create``, which made the ledger cost about
150-200 µs of CPU per event in the worker process. This statement is built once per row count
from ``JobRecord._meta`` (table, columns, quoted by the connection) and cached; each batch then
only adapts its values (with the backend's adapters, as the ORM does) and runs it.

The SQL is the subset SQLite (3.24+) and PostgreSQL share: ``INSERT INTO t (...) VALUES (...),
... ON CONFLICT (job_id) DO UPDATE SET c = excluded.c, ... WHERE <the row's event is older>``,
or ``DO NOTHING``. "Older" compares the stream entry ids as numbers (``ledger_ms``,
``ledger_seq``), so concurrent writers never put an older state back; on PostgreSQL the row
is locked while the condition is checked.

An update names only the columns that can differ: ``STABLE_FIELDS`` (indexed, fixed when a job
is created) are left out of ``SET`` and required equal in ``WHERE``, so that SQLite does not
rewrite their five indexes for every event. Rows that fail that test (an id reused by a new
job after its hash expired) are not in the statement's ``RETURNING`` and get the full update.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, tzinfo
from operator import itemgetter
from typing import Any, NamedTuple

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Field

from queue_app.models import JobRecord, job_record_fields
from queue_app.queue import Job
from queue_app.queue.redis.core import compact_json

#: Fields a newer event overwrites on an existing row; people's marks (retries, archive) stay.
EVENT_FIELDS = (
    *job_record_fields(Job(payload={})),
    "recorded_at",
    "ledger_entry",
    "ledger_ms",
    "ledger_seq",
)
#: Indexed fields a job keeps from its creation on: an update of the same job leaves them out.
STABLE_FIELDS = ("queue", "job_type", "trace_id", "organization", "created_at")
#: Most rows in one statement (PostgreSQL takes at most 65,535 parameters a statement).
MAX_ROWS = 500
MAX_PARAMS = 65_535
#: Field types whose Python values (str, int) every driver takes as they are.
PLAIN_TYPES = frozenset(
    {"CharField", "TextField", "IntegerField", "PositiveIntegerField", "BigIntegerField"}
)


def _fields() -> list[Field[Any, Any]]:
    """Return the fields an insert writes: every concrete one but the generated primary key."""
    meta = JobRecord._meta
    return [field for field in meta.concrete_fields if field is not meta.auto_field]


@functools.lru_cache(maxsize=64)
def _statement(
    quote: Callable[[str], str], rows: int, mode: str, mark: str, from_json: bool = False
) -> str:
    """Return the upsert of ``rows`` rows, with names quoted by ``quote``, ``mark`` per value.

    With ``from_json`` (PostgreSQL), the rows come as one JSON array of objects keyed by column,
    whatever their number, read by ``json_populate_recordset`` with the table's own column
    types: a short statement whose parsing psycopg caches (it parses a long one anew on every
    call), and one text value, where psycopg's client-side binding quotes an array per column
    element by element in Python (about half of the writer's CPU per event on PostgreSQL).
    ``mode``: "keep" (stored rows stay), "overwrite" (a newer event rewrites ``EVENT_FIELDS``)
    or "update" (the same, but only of rows whose ``STABLE_FIELDS`` match, leaving those out;
    the statement returns the job id of each row it inserted or updated).
    """
    meta = JobRecord._meta
    fields, table = _fields(), quote(meta.db_table)
    columns = [quote(field.column) for field in fields]
    if from_json:
        source = (
            f"SELECT {', '.join(columns)} FROM json_populate_recordset(NULL::{table}, {mark}::json)"
        )
    else:
        group = "(" + ", ".join([mark] * len(columns)) + ")"
        source = f"VALUES {', '.join([group] * rows)}"
    insert = f"INSERT INTO {table} ({', '.join(columns)}) {source}"
    target = quote(meta.get_field("job_id").column)
    if mode == "keep":
        return f"{insert} ON CONFLICT ({target}) DO NOTHING"
    column = {name: quote(meta.get_field(name).column) for name in EVENT_FIELDS}
    ms, seq = column["ledger_ms"], column["ledger_seq"]
    newer = (
        f"(excluded.{ms} > {table}.{ms}"
        f" OR (excluded.{ms} = {table}.{ms} AND excluded.{seq} > {table}.{seq}))"
    )
    if mode == "overwrite":
        updated, condition, returning = list(column.values()), newer, ""
    else:
        updated = [column[name] for name in EVENT_FIELDS if name not in STABLE_FIELDS]
        same = [f"excluded.{column[name]} = {table}.{column[name]}" for name in STABLE_FIELDS]
        condition, returning = " AND ".join([newer, *same]), f" RETURNING {target}"
    assignments = ", ".join(f"{name} = excluded.{name}" for name in updated)
    conflict = f"ON CONFLICT ({target}) DO UPDATE SET {assignments} WHERE {condition}"
    return f"{insert} {conflict}{returning}"


def _from_json(db: Any) -> bool:
    """Tell whether the rows go as one JSON value (PostgreSQL) rather than a value per column."""
    return bool(db.vendor == "postgresql")


def _mark(db: Any) -> str:
    """Return the placeholder of a value: "?" on SQLite, "%s" elsewhere."""
    # Django's SQLite cursor rewrites each "%s" to "?" with a regular expression: ~10 µs a row.
    return "?" if db.vendor == "sqlite" else "%s"


def _adapter(field: Field[Any, Any], db: Any) -> Callable[[Any], Any] | None:
    """Return how a value of ``field`` goes to the driver, as the ORM sends it (None: as is).

    Values come from ``job_record_fields`` with their Python types already, so the common types
    skip the ORM's conversions and go straight to the backend's adapters. Where the rows go as
    one JSON value (``_from_json``), a JSON field's value nests in it as it is and a datetime
    goes as its text, which PostgreSQL reads as the ORM's value.
    """
    kind = field.get_internal_type()
    if kind in PLAIN_TYPES:
        return None
    if kind == "DateTimeField":
        if _from_json(db):
            return _datetime_text
        if _method(db.ops, "adapt_datetimefield_value", "sqlite3") and settings.USE_TZ:
            return functools.partial(_sqlite_datetime, db.timezone)
        return db.ops.adapt_datetimefield_value  # type: ignore[no-any-return]
    if kind == "JSONField":
        encoder = getattr(field, "encoder", None)
        if _from_json(db):
            return None if encoder is None else functools.partial(_encoded_value, encoder)
        if encoder is None and _method(db.ops, "adapt_json_value", "base"):
            return _json_text
        return lambda value: None if value is None else db.ops.adapt_json_value(value, encoder)
    return functools.partial(field.get_db_prep_save, connection=db)


def _method(ops: Any, name: str, backend: str) -> bool:
    """Tell whether ``ops`` use the method ``name`` of Django's ``backend`` ("base", "sqlite3")."""
    module = getattr(getattr(type(ops), name, None), "__module__", "")
    return module == f"django.db.backends.{backend}.operations"


#: ``json.dumps(value)`` (its default options), with the C encoder built once instead of per call.
_encode_json = compact_json(separators=(", ", ": "))


def _json_text(value: Any) -> str | None:
    """Return a JSON column's text as Django's base ``adapt_json_value`` writes it."""
    return None if value is None else _encode_json(value)


def _encoded_value(encoder: type[json.JSONEncoder], value: Any) -> Any:
    """Return ``value`` as a JSON field with ``encoder`` stores it, for the rows' JSON."""
    return None if value is None else json.loads(json.dumps(value, cls=encoder))


def _datetime_text(value: datetime | None) -> str | None:
    """Return a datetime as PostgreSQL reads it from JSON: its ISO text (naive: session zone)."""
    return None if value is None else str(value)


def _sqlite_datetime(zone: tzinfo, value: datetime | None) -> str | None:
    """Return a datetime column's text as SQLite's ``adapt_datetimefield_value`` does (USE_TZ)."""
    if value is None:
        return None
    if value.tzinfo is UTC and zone is UTC:  # the ledger's datetimes: drop the "+00:00"
        return str(value)[:-6]
    if value.utcoffset() is not None:  # aware: naive in the connection's time zone
        value = value.astimezone(zone).replace(tzinfo=None)
    return str(value)


def _fixed_values(
    adapters: list[tuple[str, Callable[[Any], Any] | None]], common: Mapping[str, Any]
) -> dict[str, Any]:
    """Return each field's value for rows without one (``common``, else its default), adapted."""
    defaults = {field.attname: field.get_default() for field in _fields()}
    fixed = {}
    for name, adapt in adapters:
        value = common[name] if name in common else defaults[name]
        fixed[name] = value if adapt is None else adapt(value)
    return fixed


class _Plan(NamedTuple):
    """How the rows of one ``upsert_records`` call go to the database."""

    adapters: list[tuple[str, Callable[[Any], Any] | None]]
    fixed: dict[str, Any]
    quote: Callable[[str], str]
    mark: str
    from_json: bool

    def run(self, cursor: Any, rows: Sequence[Mapping[str, Any]], mode: str) -> None:
        """Upsert ``rows`` in one statement of ``mode``."""
        if self.from_json:
            params, count = [_json_rows(rows, self.adapters, self.fixed)], 0
        else:
            params, count = _params(rows, self.adapters, self.fixed), len(rows)
        cursor.execute(_statement(self.quote, count, mode, self.mark, self.from_json), params)


def upsert_records(
    rows: Sequence[Mapping[str, Any]], *, overwrite: bool, common: Mapping[str, Any]
) -> None:
    """Insert ledger rows (field name -> value; ``common`` values, then defaults, fill the rest).

    With ``overwrite``, a row already stored takes the event fields of the new one when the new
    row's entry (``ledger_ms``, ``ledger_seq``) is newer; without, stored rows stay as they are.
    Call it inside a transaction: a batch larger than one statement takes several.
    """
    if not rows:
        return
    db = connections[DEFAULT_DB_ALIAS]
    adapters = [(field.attname, _adapter(field, db)) for field in _fields()]
    fixed = _fixed_values(adapters, common)
    plan = _Plan(adapters, fixed, db.ops.quote_name, _mark(db), _from_json(db))
    per_statement = min(MAX_ROWS, (db.features.max_query_params or MAX_PARAMS) // len(adapters))
    mode = _mode(db, overwrite)
    with db.cursor() as cursor:
        for start in range(0, len(rows), per_statement):
            chunk = rows[start : start + per_statement]
            plan.run(cursor, chunk, mode)
            others = _skipped(cursor, chunk) if mode == "update" else []
            if others:  # an older event (skipped again) or another job under the same id
                plan.run(cursor, others, "overwrite")


def _mode(db: Any, overwrite: bool) -> str:
    """Return the statement mode of an upsert (see ``_statement``)."""
    if not overwrite:
        return "keep"
    return "update" if db.features.can_return_rows_from_bulk_insert else "overwrite"


def _skipped(cursor: Any, chunk: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Return the rows of ``chunk`` that the "update" statement just run neither inserted nor
    updated (it returns the job id of each row it wrote)."""
    written = {job_id for (job_id,) in cursor.fetchall()}
    if len(written) == len(chunk):
        return []
    return [row for row in chunk if row["job_id"] not in written]


#: The rows' JSON for PostgreSQL: compact, UTF-8 as it is (psycopg sends the text as UTF-8).
_encode_rows = compact_json(ensure_ascii=False)
#: A NUL character in the rows' JSON (its escape, not an escaped backslash before "u0000").
_NUL = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")


def _json_rows(
    rows: Sequence[Mapping[str, Any]],
    adapters: list[tuple[str, Callable[[Any], Any] | None]],
    fixed: dict[str, Any],
) -> str:
    """Return ``rows`` as one JSON array of objects keyed by column (``_adapted``);
    ``JobRecord``'s field names are its column names.

    A NUL character (a job's payload, result or error may hold one; PostgreSQL refuses it in
    text and JSON, which left the batch unstorable and the ledger stuck) is stored as U+FFFD.
    """
    text = _encode_rows(_adapted(rows, adapters, fixed))
    if "\\u0000" not in text:
        return text
    return _NUL.sub(lambda found: found.group(1) + "\ufffd", text)


def _params(
    rows: Sequence[Mapping[str, Any]],
    adapters: list[tuple[str, Callable[[Any], Any] | None]],
    fixed: dict[str, Any],
) -> list[Any]:
    """Return the values of ``rows`` in column order (``_adapted``), one list for all rows."""
    pick = itemgetter(*(name for name, _ in adapters))
    params: list[Any] = []
    for values in _adapted(rows, adapters, fixed):
        params += pick(values)
    return params


def _adapted(
    rows: Sequence[Mapping[str, Any]],
    adapters: list[tuple[str, Callable[[Any], Any] | None]],
    fixed: dict[str, Any],
) -> list[dict[str, Any]]:
    """Return each row with every field: its own values adapted, ``fixed`` where it has none."""
    adapted = [(name, adapt) for name, adapt in adapters if adapt is not None]
    out = []
    for row in rows:
        values = {**fixed, **row}
        for name, adapt in adapted:
            if name in row:
                values[name] = adapt(values[name])
        out.append(values)
    return out
