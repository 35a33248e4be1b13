"""The tables, derived from the declarations.  `ensure_schema` creates what is
missing, including columns for attributes declared since the database was made."""

from __future__ import annotations

import sqlite_utils

from .objtypes import TYPES

SCHEMA_VERSION = 2


def ensure_schema(db: sqlite_utils.Database) -> None:
    with db.atomic():
        for object_type in TYPES.values():
            columns = {object_type.key: str, **dict.fromkeys(object_type.attributes, str)}
            table = db[object_type.name]
            if table.exists():
                missing = {c: str for c in columns if c not in table.columns_dict}
                for column in missing:
                    table.add_column(column, str)
            else:
                table.create(columns, pk=object_type.key)
        db["audit"].create(
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
        db["certificates"].create(
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
        db["certificates"].create_index(["name"], if_not_exists=True)
        db["enrollments"].create(
            {
                "node": str,
                "expires": float,  # seconds since the epoch
                "armed_by": str,  # who ran the nodeset that armed it
            },
            pk="node",
            if_not_exists=True,
        )
    db.conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
