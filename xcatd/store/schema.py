"""The tables, derived from the declarations, and the database's schema version.

`ensure_schema` runs whenever the database is opened (the daemon at start,
the local `xcatd` actions).  SQLite's `user_version` holds SCHEMA_VERSION:
a new database is created at it; an older one is upgraded to it in one
transaction, after a copy of it is made beside it; a newer one (made by a
later xcatd) is refused untouched.  Columns for attributes declared since
the database was made are added at every open, whatever the version: they
are additive, and an older xcatd ignores them.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlite_utils

from .. import __version__
from ..errors import XcatdError
from ..policy import EARLIER_SERVICE_NODE_COMMANDS, SERVICE_NODE_COMMANDS
from .objtypes import STORED

log = logging.getLogger(__name__)

SCHEMA_VERSION = 3


def _priorities_as_text(db: sqlite_utils.Database) -> None:
    """Schema 1 kept policy priorities as numbers (1.0); 2 keeps them as
    text, as xCAT's policy table does and as rules are named (`1`, `1.2`)."""
    policy = db.table("policy")
    if not policy.exists():
        return
    policy.transform(types={"priority": str})  # 1.0 becomes '1.0'
    for (text,) in db.execute("SELECT priority FROM policy").fetchall():
        try:
            number = float(text)
        except ValueError:
            continue  # not a number: the policy says so when it is loaded
        spelled = str(int(number)) if number.is_integer() else repr(number)
        if spelled != text:
            db.execute("UPDATE policy SET priority = ? WHERE priority = ?", [spelled, text])


# What upgrading from version n (the key) to n + 1 takes beyond creating the
# tables and columns that are missing (`_create`, which runs after these):
# renames, retyped columns, moved or rewritten data.  2 to 3 only adds the
# passwd table (the BMCs' default credentials): an xcatd of schema 2 would
# not read it, and its nodes would lose those credentials, so it refuses a
# database of 3.
UPGRADES: dict[int, Callable[[sqlite_utils.Database], None]] = {1: _priorities_as_text}


class SchemaError(XcatdError):
    """The database cannot be used by this xcatd as it is; one line saying
    what and what to do, and the database was left as it was."""


def ensure_schema(db: sqlite_utils.Database) -> None:
    """Make the database this release's schema, or refuse it (SchemaError)."""
    before = schema_version(db)
    _refuse_newer(db, before)
    backup = _backup(db, before) if 0 < before < SCHEMA_VERSION else None
    try:
        found = _upgrade(db)
    except sqlite3.Error as exc:
        kept = f"; the copy from before is {backup}" if backup else ""
        raise SchemaError(
            f"the cluster database {_path(db)} could not be brought to schema {SCHEMA_VERSION}: "
            f"{exc}; nothing in it was changed{kept}"
        ) from exc
    if backup is not None and found < SCHEMA_VERSION:
        log.info(
            "upgraded the cluster database from schema %d to %d; the copy from before is %s",
            found, SCHEMA_VERSION, backup,
        )  # fmt: skip


def _upgrade(db: sqlite_utils.Database) -> int:
    """Upgrade the database to SCHEMA_VERSION in one transaction; the version it was."""
    with _writing(db):
        # Read again under the write lock: another process may have upgraded it meanwhile.
        found = schema_version(db)
        _refuse_newer(db, found)
        for version in range(max(found, 1), SCHEMA_VERSION):
            if step := UPGRADES.get(version):
                step(db)
        _create(db)
        db.conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    return found


def schema_version(db: sqlite_utils.Database) -> int:
    """The database's schema version; 0 for a new one."""
    return db.conn.execute("PRAGMA user_version").fetchone()[0]


def _refuse_newer(db: sqlite_utils.Database, found: int) -> None:
    if found > SCHEMA_VERSION:
        path = _path(db)
        copies = f"{Path(path).name}.schema{SCHEMA_VERSION}-*.backup"
        raise SchemaError(
            f"the cluster database {path} is of schema {found}, made by an xcatd newer than "
            f"this one ({__version__}, schema {SCHEMA_VERSION}): upgrade xcatd, or restore the "
            f"copy its upgrade left beside it ({copies})"
        )


def _path(db: sqlite_utils.Database) -> str:
    """The file of the main database ('' for one in memory)."""
    return next(row[2] for row in db.conn.execute("PRAGMA database_list") if row[1] == "main")


def _backup(db: sqlite_utils.Database, found: int) -> Path | None:
    """A consistent copy of the database (WAL included) beside it, before an
    upgrade changes it; its path.  None for a database in memory."""
    if not (path := _path(db)):
        return None
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    copy = Path(f"{path}.schema{found}-{stamp}.backup")
    try:
        # Made with the database's own permissions: it holds the same secrets.
        os.close(os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_EXCL, os.stat(path).st_mode & 0o777))
    except OSError as exc:
        raise _cannot_copy(path, copy, found, exc) from None
    try:
        with sqlite3.connect(copy) as target:
            db.conn.backup(target)
        target.close()
    except (sqlite3.Error, OSError) as exc:
        copy.unlink(missing_ok=True)
        raise _cannot_copy(path, copy, found, exc) from None
    return copy


def _cannot_copy(path: str, copy: Path, found: int, exc: Exception) -> SchemaError:
    return SchemaError(
        f"cannot copy the cluster database {path} to {copy} before upgrading it from schema "
        f"{found} to {SCHEMA_VERSION}: {exc}; nothing was changed (free space, then start "
        "xcatd again)"
    )


@contextmanager
def _writing(db: sqlite_utils.Database) -> Iterator[None]:
    """One transaction holding the write lock from its start, so that the
    version read in it is still true when it commits; all or nothing."""
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        if db.conn.in_transaction:
            db.conn.execute("ROLLBACK")
        raise
    db.conn.execute("COMMIT")


def _create(db: sqlite_utils.Database) -> None:
    """Every table and column this release declares that the database lacks."""
    for object_type in STORED.values():
        columns = {object_type.key: str, **dict.fromkeys(object_type.attributes, str)}
        table = db.table(object_type.name)
        if table.exists():
            missing = {c: str for c in columns if c not in table.columns_dict}
            for column in missing:
                table.add_column(column, str)
        else:
            table.create(columns, pk=object_type.key)
    _stamp_changes(db)
    _service_node_commands(db)
    db.table("audit").create(
        {
            "id": int,
            "time": str,  # ISO 8601, UTC
            "user": str,  # who signed the request
            "peer": str,  # address and, when relayed, the relaying identity
            "command": str,
            "args": str,  # JSON list, secrets masked
            "noderange": str,
            "status": str,  # allowed | denied | refused
            "rc": int,
            "duration_ms": float,
        },
        pk="id",
        if_not_exists=True,
    )
    db.table("certificates").create(
        {
            "serial": str,  # decimal: serials exceed SQLite's 64-bit integers
            "name": str,
            "role": str,
            "not_after": str,
            "issued": str,
            "revoked": str,  # time of revocation, NULL while valid
        },
        pk="serial",
        if_not_exists=True,
    )
    db.table("certificates").create_index(["name"], if_not_exists=True)
    db.table("enrollments").create(
        {
            "node": str,
            "expires": float,  # seconds since the epoch
            "armed_by": str,  # who ran the nodeset that armed it
        },
        pk="node",
        if_not_exists=True,
    )


def _service_node_commands(db: sqlite_utils.Database) -> None:
    """The default rule for service nodes, as an earlier release installed
    it, gets the commands they have needed since (getcrl, renewsshcerts:
    servicenode/trust.py; getpasswd: servicenode/replica.py).  Additive like
    the columns, so at every open; a rule an administrator changed is left
    as it is."""
    if db.table("policy").exists():
        marks = ", ".join("?" for _ in EARLIER_SERVICE_NODE_COMMANDS)
        db.execute(
            f"UPDATE policy SET commands = ? WHERE role = 'servicenode' AND commands IN ({marks})",
            [SERVICE_NODE_COMMANDS, *EARLIER_SERVICE_NODE_COMMANDS],
        )


# What a node's status report writes (boot/status.py): not a change of its
# definition, so a service node's copy of it stays current (replica.py).
REPORTED = ("status", "statustime")


def _stamp_changes(db: sqlite_utils.Database) -> None:
    """The definitions' stamp: a random number that every change of an
    object makes anew, by triggers, so that no write path can miss one (a
    value written again as it was is no change).  Random rather than
    counted: a database restored from a copy has the stamp of the
    definitions it holds, never one that named others.  Remade at every
    open, as columns may have been added since."""
    db.execute("CREATE TABLE IF NOT EXISTS stamp (value INTEGER NOT NULL)")
    if db.execute("SELECT count(*) FROM stamp").fetchone()[0] == 0:
        db.execute("INSERT INTO stamp VALUES (random())")
    for object_type in STORED.values():
        table = object_type.name
        defined = [f"[{c}]" for c in db[table].columns_dict if c not in REPORTED]
        changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in defined)
        events = {
            "insert": "INSERT",
            "delete": "DELETE",
            "update": f"UPDATE OF {', '.join(defined)}",
        }
        for name, event in events.items():
            when = f" WHEN {changed}" if name == "update" else ""
            db.execute(f"DROP TRIGGER IF EXISTS [stamp_{table}_{name}]")
            db.execute(
                f"CREATE TRIGGER [stamp_{table}_{name}] AFTER {event} ON [{table}]{when} "
                "BEGIN UPDATE stamp SET value = random(); END"
            )


def definitions_stamp(db: sqlite_utils.Database) -> int:
    """The stamp of the definitions as they are now (see _stamp_changes)."""
    return db.execute("SELECT value FROM stamp").fetchone()[0]
