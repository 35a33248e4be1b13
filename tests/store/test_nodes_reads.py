"""What a request about a few nodes reads of the database: those nodes'
rows and the groups they list, never every node, whatever the cluster's
size; and about many nodes, whole tables once, not a query per node."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest
import sqlite_utils

from xcatd.store.noderange import expand
from xcatd.store.nodes import FEW, Nodes
from xcatd.store.schema import ensure_schema

COUNT = 3000


@pytest.fixture(scope="module")
def db() -> Iterator[sqlite_utils.Database]:
    database = sqlite_utils.Database(sqlite3.connect(":memory:"))
    ensure_schema(database)
    database["node"].insert_all(
        {"node": f"n{i:04d}", "groups": f"all,rack{i % 10}", "ip": f"10.0.{i // 250}.{i % 250}"}
        for i in range(COUNT)
    )
    database["group"].insert_all(
        [
            {"groupname": "rack3", "mgt": "ipmi", "bmc": r"|\z|-imm|"},
            {"groupname": "all", "os": "x"},
        ]
    )
    yield database


@pytest.fixture
def statements(db: sqlite_utils.Database) -> Iterator[list[str]]:
    """The SQL statements run while the test does its work."""
    seen: list[str] = []
    db.conn.set_trace_callback(seen.append)
    yield seen
    db.conn.set_trace_callback(None)


def _scans(statements: list[str]) -> list[str]:
    """Statements reading the node table without naming the nodes they want."""
    return [s for s in statements if "from [node]" in s and " in (" not in s]


def test_one_node_named_reads_its_row_and_its_groups_only(db, statements) -> None:
    nodes = Nodes.load(db)
    assert expand("n0003", nodes) == ["n0003"]
    assert nodes.sourced("n0003") == {
        "groups": ("all,rack3", None),
        "ip": ("10.0.0.3", None),
        "mgt": ("ipmi", "rack3"),
        "bmc": ("n0003-imm", "rack3"),
        "os": ("x", "all"),
    }
    assert nodes.attribute("n0003", "bmc") == "n0003-imm"
    assert _scans(statements) == []
    assert len(statements) <= 6, statements


def test_a_node_that_does_not_exist_is_found_missing_without_a_scan_of_nodes(db, statements):
    nodes = Nodes.load(db)
    assert nodes.nodes_among(["n9999", "n0001"]) == {"n0001"}
    assert not nodes.empty()
    assert _scans(statements) == []


def test_many_nodes_read_the_table_once_not_a_query_each(db, statements) -> None:
    nodes = Nodes.load(db)
    names = expand("n[0000-2999]", nodes)
    assert len(names) == COUNT
    nodes.expect(names)
    assert all(nodes.sourced(name)["groups"][0].startswith("all,") for name in names)
    assert len(statements) < 2 * FEW, len(statements)


def test_a_selection_over_every_node_reads_one_column(db, statements) -> None:
    nodes = Nodes.load(db)
    chosen = [n for n in nodes.all_nodes() if nodes.attribute(n, "ip") == "10.0.1.7"]
    assert chosen == ["n0257"]
    assert len(statements) < 2 * FEW + 5, len(statements)


def test_a_group_s_members_come_from_one_scan_in_sqlite(db, statements) -> None:
    nodes = Nodes.load(db)
    members = nodes.group_members("rack3")
    assert members is not None and len(members) == COUNT // 10 and "n0013" in members
    assert nodes.group_members("rack33") is None  # rack3 is in its name, not its list
    assert len(statements) <= 6, statements
