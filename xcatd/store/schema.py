"""The tables, declared once.  `ensure_schema` creates what is missing."""

from __future__ import annotations

import sqlite_utils

SCHEMA_VERSION = 1


def ensure_schema(db: sqlite_utils.Database) -> None:
    with db.atomic():
        db["policy"].create(
            {
                "priority": float,  # lowest first; the first full match decides
                "name": str,  # user (certificate CN); NULL or '*' = anyone
                "role": str,  # certificate role; NULL = any
                "commands": str,  # comma list; NULL = every command
                "noderange": str,
                "rule": str,  # allow | accept | trusted | deny
                "comments": str,
                "disable": str,
            },
            pk="priority",
            if_not_exists=True,
        )
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
    db.conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
