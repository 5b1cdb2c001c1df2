"""The SQL a load runs, built from Table objects so every identifier is quoted: portable statements first.

``target`` is the warehouse table, ``staging`` the load's stage: a temporary table (no ``_tenant`` column:
all its rows are the load's tenant) or, for a SQLite load that staged in place, a table of the target's
layout. A staged row is *current* unless the warehouse already holds a newer version of it (a higher
``_last_modified``); older copies never overwrite newer ones. Of several copies of a key staged in one load, the
newest wins (ties, and rows without a timestamp, by arrival): the parallel fetches of a run may hand an older copy
over after a newer one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Delete,
    Insert,
    Select,
    String,
    Table,
    Update,
    and_,
    case,
    delete,
    distinct,
    exists,
    func,
    insert,
    literal,
    literal_column,
    or_,
    select,
    true,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.schema import ExecutableDDLElement
from sqlalchemy.sql.compiler import DDLCompiler

from airflow_provider_acumatica.warehouse.columns import UtcDateTime
from airflow_provider_acumatica.warehouse.schema import (
    DELETED_AT,
    LAST_MODIFIED,
    STAGED_ORDER,
    SYNCED_AT,
    TENANT,
)


class AddColumn(ExecutableDDLElement):
    """``ALTER TABLE ... ADD COLUMN`` with quoted identifiers (SQLAlchemy Core has no construct for it)."""

    def __init__(self, table: Table, column: Column, *, if_not_exists: bool = False) -> None:
        self.table = table
        self.column = column
        self.if_not_exists = if_not_exists


@compiles(AddColumn)
def _compile_add_column(element: AddColumn, compiler: DDLCompiler, **kw: Any) -> str:
    preparer = compiler.preparer
    column_type = compiler.dialect.type_compiler_instance.process(element.column.type)
    guard = "IF NOT EXISTS " if element.if_not_exists else ""
    return (
        f"ALTER TABLE {preparer.format_table(element.table)} "
        f"ADD COLUMN {guard}{preparer.format_column(element.column)} {column_type}"
    )


class DropColumn(ExecutableDDLElement):
    """``ALTER TABLE ... DROP COLUMN`` (SQLite 3.35 and later, PostgreSQL)."""

    def __init__(self, table: Table, name: str) -> None:
        self.table = table
        self.name = name


class RenameColumn(ExecutableDDLElement):
    """``ALTER TABLE ... RENAME COLUMN``."""

    def __init__(self, table: Table, old: str, new: str) -> None:
        self.table = table
        self.old = old
        self.new = new


@compiles(DropColumn)
def _compile_drop_column(element: DropColumn, compiler: DDLCompiler, **_kw: Any) -> str:
    preparer = compiler.preparer
    return f"ALTER TABLE {preparer.format_table(element.table)} DROP COLUMN {preparer.quote(element.name)}"


@compiles(RenameColumn)
def _compile_rename_column(element: RenameColumn, compiler: DDLCompiler, **_kw: Any) -> str:
    preparer = compiler.preparer
    return (
        f"ALTER TABLE {preparer.format_table(element.table)} RENAME COLUMN {preparer.quote(element.old)} "
        f"TO {preparer.quote(element.new)}"
    )


class RenameTable(ExecutableDDLElement):
    """``ALTER TABLE ... RENAME TO ...`` (within the table's schema) with quoted identifiers."""

    def __init__(self, table: Table, new_name: str) -> None:
        self.table = table
        self.new_name = new_name


@compiles(RenameTable)
def _compile_rename_table(element: RenameTable, compiler: DDLCompiler, **kw: Any) -> str:
    preparer = compiler.preparer
    return f"ALTER TABLE {preparer.format_table(element.table)} RENAME TO {preparer.quote(element.new_name)}"


def same_key(left: Table, right: Table, key_columns: Sequence[str]) -> list[ColumnElement[bool]]:
    """Conditions matching rows of two tables on the key columns."""
    return [left.c[name] == right.c[name] for name in key_columns]


def is_current(target: Table, staged: Any) -> ColumnElement[bool]:
    """True unless the warehouse row is newer than the staged one (rows without a timestamp always update)."""
    return or_(staged[LAST_MODIFIED].is_(None), _not_older(target.c[LAST_MODIFIED], staged[LAST_MODIFIED]))


def _not_older(stored: Any, incoming: Any) -> ColumnElement[bool]:
    """True unless the stored row has a timestamp and the incoming one an older (or no) timestamp."""
    return or_(stored.is_(None), incoming >= stored)


def drop_superseded(staging: Table, key_columns: Sequence[str]) -> Delete:
    """Delete staged rows of which the stage holds a newer copy (see ``_staged_again``): one copy of each key stays."""
    return delete(staging).where(_staged_again(staging, staging.alias("later"), key_columns))


def count_staged_keys(staging: Table, key_columns: Sequence[str]) -> Select:
    """PostgreSQL (14+): (staged rows, distinct 64-bit hashes of their keys) in one pass. Equal keys hash equally,
    so when the two counts are equal no key was staged twice. Sorting 8-byte hashes is far cheaper than matching
    the keys themselves (`drop_superseded`'s self-join)."""
    key_hash = func.hash_record_extended(func.row(*(staging.c[name] for name in key_columns)), 0)
    return select(func.count(), func.count(distinct(key_hash))).select_from(staging)


def drop_superseded_by_rowid(staging: Table, key_columns: Sequence[str]) -> Delete:
    """`drop_superseded` for SQLite: the superseded rowids are found in the stage's key index alone, then deleted
    by rowid (a DELETE ... WHERE EXISTS reads every staged row from the table, about four times slower)."""
    copy = staging.alias("copy")
    rowid = literal_column("rowid")  # the rowid of the FROM it is selected from: "copy" inside, staging outside
    superseded = select(rowid).select_from(copy).where(_staged_again(copy, staging.alias("later"), key_columns))
    return delete(staging).where(rowid.in_(superseded))


def _staged_again(copy: Any, later: Any, key_columns: Sequence[str]) -> ColumnElement[bool]:
    """Whether a row of `later` (the stage again) has the key of the staged `copy` and supersedes it: a newer
    ``_last_modified``, or the same (or none on both) and a later arrival. A copy without a timestamp is older than one
    with: so the copies of a key are in one order and exactly one of them is superseded by none."""
    newer, older = later.c[LAST_MODIFIED], copy.c[LAST_MODIFIED]
    arrived_later = later.c[STAGED_ORDER] > copy.c[STAGED_ORDER]
    supersedes = or_(
        newer > older,
        and_(newer == older, arrived_later),
        and_(older.is_(None), or_(newer.is_not(None), arrived_later)),
    )
    return exists().where(*same_key(later, copy, key_columns), supersedes)


def count_existing(target: Table, staging: Table, key_columns: Sequence[str], tenant: str) -> Select:
    """(staged rows already in the warehouse, of which older than the warehouse's copy)."""
    joined = staging.join(target, and_(target.c[TENANT] == tenant, *same_key(target, staging, key_columns)))
    stale = func.coalesce(func.sum(case((is_current(target, staging.c), 0), else_=1)), 0)
    return select(func.count(), stale).select_from(joined)


def staged_rows(staging: Table, columns: Sequence[str], tenant: str, synced_at: datetime) -> Select:
    """The staged rows as warehouse rows: tenant, columns, sync time."""
    return select(
        literal(tenant, String()).label(TENANT),
        *(staging.c[name] for name in columns),
        literal(synced_at, UtcDateTime()).label(SYNCED_AT),
    )


def insert_staged(
    target: Table,
    staging: Table,
    columns: Sequence[str],
    tenant: str,
    synced_at: datetime,
    *conditions: ColumnElement[bool],
    insert_of: Any = insert,
    order_by: Sequence[Any] = (),
) -> Insert:
    """INSERT ... SELECT of the staged rows (those meeting ``conditions``, in ``order_by``) as warehouse rows into
    the target.

    On its own it fills a table created by this load's commit: no row can conflict with one already there.
    """
    rows = staged_rows(staging, columns, tenant, synced_at).where(*conditions).order_by(*order_by)
    return insert_of(target).from_select([TENANT, *columns, SYNCED_AT], rows)


def upsert(
    insert_of: Any,
    target: Table,
    staging: Table,
    columns: Sequence[str],
    key_columns: Sequence[str],
    tenant: str,
    synced_at: datetime,
) -> Insert:
    """INSERT ... SELECT ... ON CONFLICT DO UPDATE for PostgreSQL and SQLite (``insert_of`` is the dialect's insert),
    where the staged copy is current (see ``is_current``)."""
    statement = insert_staged(target, staging, columns, tenant, synced_at, true(), insert_of=insert_of)
    return _updating_on_conflict(statement, columns, key_columns, where=is_current(target, statement.excluded))


def move_staged(
    insert_of: Any,
    target: Table,
    staging: Table,
    columns: Sequence[str],
    key_columns: Sequence[str],
    tenant: str,
    synced_at: datetime,
) -> Insert:
    """INSERT ... SELECT ... ON CONFLICT DO UPDATE of every staged row into a table of this load's own, in key order
    and a key's copies in arrival order, each replacing the row there unless that one is newer (or has a timestamp
    where it has none): the copy that stays is the one ``drop_superseded`` keeps, also across moves."""
    order = [*(staging.c[name] for name in key_columns), staging.c[STAGED_ORDER]]
    statement = insert_staged(target, staging, columns, tenant, synced_at, true(), insert_of=insert_of, order_by=order)
    not_older = _not_older(target.c[LAST_MODIFIED], statement.excluded[LAST_MODIFIED])
    return _updating_on_conflict(statement, columns, key_columns, where=not_older)


def _updating_on_conflict(
    statement: Any, columns: Sequence[str], key_columns: Sequence[str], where: ColumnElement[bool] | None = None
) -> Insert:
    """``statement`` (an INSERT ... SELECT ... WHERE: SQLite's upsert grammar needs the WHERE) updating the row
    already there on a key conflict. Updating a row clears its ``_deleted_at``: a row read again exists again."""
    excluded = statement.excluded
    changes = {name: excluded[name] for name in columns if name not in key_columns}
    changes |= {SYNCED_AT: excluded[SYNCED_AT], DELETED_AT: None}
    return statement.on_conflict_do_update(index_elements=[TENANT, *key_columns], set_=changes, where=where)


def update_existing(
    target: Table, staging: Table, columns: Sequence[str], key_columns: Sequence[str], tenant: str, synced_at: datetime
) -> Update:
    """Portable half of a merge: update the warehouse rows the stage holds a current copy of."""
    match = and_(target.c[TENANT] == tenant, *same_key(target, staging, key_columns))
    changes: dict[str, Any] = {
        name: select(staging.c[name]).where(match).scalar_subquery() for name in columns if name not in key_columns
    }
    changes |= {SYNCED_AT: synced_at, DELETED_AT: None}
    return target.update().where(exists().where(match, is_current(target, staging.c))).values(changes)


def insert_missing(
    target: Table, staging: Table, columns: Sequence[str], key_columns: Sequence[str], tenant: str, synced_at: datetime
) -> Insert:
    """Portable other half of a merge: insert the staged rows the warehouse does not hold."""
    existing = target.alias("existing")
    present = exists().where(existing.c[TENANT] == tenant, *same_key(existing, staging, key_columns))
    return insert_staged(target, staging, columns, tenant, synced_at, ~present)


def mark_absent(
    target: Table,
    listed: Table,
    key_columns: Sequence[str],
    tenant: str,
    deleted_at: datetime,
    synced_before: datetime | None = None,
) -> Update:
    """Mark deleted the tenant's live rows whose key is not listed (and, if given, synced before a time)."""
    conditions = [
        target.c[TENANT] == tenant,
        target.c[DELETED_AT].is_(None),
        ~exists().where(*same_key(listed, target, key_columns)),
    ]
    if synced_before is not None:
        conditions.append(target.c[SYNCED_AT] < synced_before)
    return target.update().where(*conditions).values({DELETED_AT: deleted_at})


def mark_listed(target: Table, deletions: Table, match_columns: Sequence[str], tenant: str) -> Update:
    """Mark deleted the tenant's live rows listed in ``deletions``, unless modified after their deletion."""
    match = same_key(deletions, target, match_columns)
    deleted_at = deletions.c[DELETED_AT]
    not_newer = or_(target.c[LAST_MODIFIED].is_(None), target.c[LAST_MODIFIED] <= deleted_at)
    return (
        target.update()
        .where(target.c[TENANT] == tenant, target.c[DELETED_AT].is_(None), exists().where(*match, not_newer))
        .values({DELETED_AT: select(func.max(deleted_at)).where(*match).scalar_subquery()})
    )
