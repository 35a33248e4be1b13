"""The database's schema version, as an upgrade of xcatd meets it: today's
database opens as it was, an older one is upgraded (after a copy beside
it), a newer one is refused untouched with one line.

schema2.sqlite is a database made by the release of schema 2 (the one
before migrations): `xcatd init --root` of that release, then a network,
an osimage, a group and three nodes written with its object store; its
WAL checkpointed, VACUUMed with 1 KiB pages to keep it small.
schema3.sqlite is schema2.sqlite opened (upgraded) by the release of
schema 3, then a passwd row (key=ipmi, ADMIN, passw0rd) written with its
object store; checkpointed and VACUUMed the same way.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import sqlite3
from pathlib import Path

import pytest
import sqlite_utils

from xcatd import __version__
from xcatd.policy import EARLIER_SERVICE_NODE_COMMANDS, GETPASSWD, SERVICE_NODE_COMMANDS
from xcatd.store import Store, objects
from xcatd.store.objtypes import NODE, PASSWD, POLICY
from xcatd.store.schema import SCHEMA_VERSION, UPGRADES, SchemaError, schema_version

from ..cluster import Cluster

TODAYS = Path(__file__).with_name("schema3.sqlite")
SCHEMA_2 = Path(__file__).with_name("schema2.sqlite")


def database_of(tmp_path: Path, made: Path | None = None) -> Path:
    """A copy of a checked-in database (never opened in place), or a path for a new one."""
    path = tmp_path / "xcat.sqlite"
    if made is not None:
        shutil.copy(made, path)
    return path


def version_of(path: Path) -> int:
    with sqlite3.connect(path) as connection:
        return connection.execute("PRAGMA user_version").fetchone()[0]


def backups(path: Path) -> list[Path]:
    return sorted(path.parent.glob(f"{path.name}.schema*.backup"))


def the_copy(path: Path, version: int) -> Path:
    """The one copy an upgrade left beside the database, of its schema before."""
    (copy,) = backups(path)
    assert copy.name.startswith(f"xcat.sqlite.schema{version}-")
    assert version_of(copy) == version
    return copy


# -- the release of schema 1, frozen ---------------------------------------------

SCHEMA_1_RULES = (
    {"priority": 1.0, "name": "root", "rule": "allow", "comments": "root may do everything"},
    {"priority": 1.2, "role": "master", "rule": "trusted", "comments": "relaying for its users"},
    {"priority": 4.0, "role": "servicenode", "commands": "lsxcatd,lsdef,nodels", "rule": "allow"},
)


def make_schema_1(path: Path) -> None:
    """What `xcatd init` of the first release wrote: ensure_schema of schema 1
    (policy priorities as numbers; no object tables) and its default rules."""
    db = sqlite_utils.Database(path)
    with db.atomic():
        db["policy"].create(
            {"priority": float, "name": str, "role": str, "commands": str, "noderange": str,
             "rule": str, "comments": str, "disable": str},
            pk="priority", if_not_exists=True,
        )  # fmt: skip
        db["audit"].create(
            {"id": int, "time": str, "user": str, "peer": str, "command": str, "args": str,
             "noderange": str, "status": str, "rc": int, "duration_ms": float},
            pk="id", if_not_exists=True,
        )  # fmt: skip
        db["certificates"].create(
            {"serial": str, "name": str, "role": str, "not_after": str, "issued": str,
             "revoked": str},
            pk="serial", if_not_exists=True,
        )  # fmt: skip
        db["certificates"].create_index(["name"], if_not_exists=True)
    db.conn.execute("PRAGMA user_version=1")
    db["policy"].insert_all(SCHEMA_1_RULES, alter=False)
    db["audit"].insert({"id": 1, "user": "root", "command": "lsxcatd", "rc": 0})
    db.close()


# -- today's database -------------------------------------------------------------


def test_a_database_of_todays_release_is_served_as_it_was(tmp_path):
    cluster = Cluster(tmp_path / "c")
    assert cluster.init().returncode == 0, cluster.logs()
    database = cluster.root / "var/lib/xcat/xcat.sqlite"
    with sqlite_utils.Database(database) as db:  # this machine's paths and ports
        site = db["site"].get("clustersite")
    shutil.copy(TODAYS, database)
    with sqlite_utils.Database(database) as db:
        local = ("installdir", "tftpdir", "httpport", "xcatdport", "xcatiport")
        db["site"].update("clustersite", {name: site[name] for name in local})
    cluster.start()
    try:
        assert cluster.ok("nodels") == "cn1\nsn1\nsn2\n"
        assert cluster.ok("lsdef", "sn2", "-i", "groups,ip,status,provmethod,bmcpassword") == (
            "Object name: sn2\n"
            "    bmcpassword=secret\n"
            "    groups=service,all\n"
            "    ip=10.77.0.12\n"
            "    provmethod=debian12-x86_64-netboot-service\n"
            "    status=booted\n"
        )
        assert cluster.ok("lsdef", "-t", "policy") == "1  (policy)\n1.2  (policy)\n4  (policy)\n"
        assert (
            cluster.ok("lsdef", "-t", "osimage") == "debian12-x86_64-netboot-service  (osimage)\n"
        )
    finally:
        cluster.stop()
    assert version_of(database) == SCHEMA_VERSION
    assert backups(database) == []  # nothing to upgrade, nothing copied
    assert "upgraded the cluster database" not in cluster.logs()


def test_a_database_of_todays_release_keeps_its_rows_when_opened(tmp_path):
    path = database_of(tmp_path, TODAYS)
    store = Store(path)
    try:
        nodes = objects.load(store.db, NODE)
        assert sorted(nodes) == ["cn1", "sn1", "sn2"]
        assert nodes["cn1"] == {
            "groups": "compute,all",
            "servicenode": "sn1",
            "ip": "10.78.1.1",
            "mac": "52:54:00:00:01:01",
        }
        assert sorted(objects.load(store.db, POLICY)) == ["1", "1.2", "4"]
        assert [row["name"] for row in store.db["certificates"].rows] == ["root"]
        assert objects.load(store.db, PASSWD) == {
            "ipmi": {"username": "ADMIN", "password": "passw0rd"}
        }
    finally:
        store.close()


# -- an older one -----------------------------------------------------------------


def test_an_older_database_is_upgraded_after_a_copy_beside_it(tmp_path, caplog):
    path = database_of(tmp_path)
    make_schema_1(path)
    caplog.set_level(logging.INFO, logger="xcatd.store.schema")
    store = Store(path)
    try:
        assert schema_version(store.db) == SCHEMA_VERSION
        policy = objects.load(store.db, POLICY)
        assert sorted(policy) == ["1", "1.2", "4"]  # as xCAT names rules, no longer 1.0
        assert policy["4"]["commands"] == "lsxcatd,lsdef,nodels"
        assert store.db["audit"].get(1)["command"] == "lsxcatd"
        assert objects.load(store.db, NODE) == {}  # the object tables are there
    finally:
        store.close()
    copy = the_copy(path, 1)
    with sqlite3.connect(copy) as before:
        assert [row[0] for row in before.execute("SELECT priority FROM policy")] == [1.0, 1.2, 4.0]
    assert copy.stat().st_mode == path.stat().st_mode
    assert caplog.messages == [
        f"upgraded the cluster database from schema 1 to {SCHEMA_VERSION}; "
        f"the copy from before is {copy}"
    ]
    Store(path).close()  # opened again: nothing more to do, no second copy
    assert backups(path) == [copy]


def test_a_database_of_schema_2_gets_the_passwd_table_and_keeps_its_objects(tmp_path):
    path = database_of(tmp_path, SCHEMA_2)
    store = Store(path)
    try:
        assert schema_version(store.db) == SCHEMA_VERSION
        nodes = objects.load(store.db, NODE)
        assert sorted(nodes) == ["cn1", "sn1", "sn2"]
        assert nodes["cn1"]["mac"] == "52:54:00:00:01:01"
        assert objects.load(store.db, PASSWD) == {}  # there, and empty
    finally:
        store.close()
    with sqlite3.connect(the_copy(path, 2)) as before:
        tables = {row[0] for row in before.execute("SELECT name FROM sqlite_master")}
    assert "node" in tables and "passwd" not in tables


@pytest.mark.parametrize("earlier", EARLIER_SERVICE_NODE_COMMANDS)
def test_the_default_service_node_rule_of_an_earlier_release_gets_todays_commands(
    tmp_path, earlier
):
    """Service nodes need what an earlier release's default rule lacks
    (getcrl, renewsshcerts, getpasswd); a rule the administrator wrote stays."""
    path = database_of(tmp_path, TODAYS)
    with sqlite_utils.Database(path) as db:
        db["policy"].update("4", {"commands": earlier})
        db["policy"].insert({"priority": "5", "role": "servicenode", "commands": "lsdef",
                             "rule": "allow"})  # fmt: skip
    store = Store(path)
    try:
        rules = objects.load(store.db, POLICY)
    finally:
        store.close()
    assert rules["4"]["commands"] == SERVICE_NODE_COMMANDS
    assert GETPASSWD in SERVICE_NODE_COMMANDS.split(",")
    assert rules["5"]["commands"] == "lsdef"


def test_an_upgrade_that_fails_changes_nothing(tmp_path, monkeypatch):
    path = database_of(tmp_path)
    make_schema_1(path)
    upgrade = UPGRADES[1]

    def fails_half_way(db: sqlite_utils.Database) -> None:
        upgrade(db)  # the priorities retyped...
        raise sqlite3.OperationalError("disk I/O error")  # ...and then the disk fails

    monkeypatch.setitem(UPGRADES, 1, fails_half_way)
    with pytest.raises(SchemaError) as failed:
        Store(path)
    (copy,) = backups(path)
    assert str(failed.value) == (
        f"the cluster database {path} could not be brought to schema {SCHEMA_VERSION}: disk I/O "
        f"error; nothing in it was changed; the copy from before is {copy}"
    )
    assert version_of(path) == 1
    with sqlite3.connect(path) as db:
        assert [row[0] for row in db.execute("SELECT priority FROM policy")] == [1.0, 1.2, 4.0]
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables == {"policy", "audit", "certificates"}


# -- a newer one ------------------------------------------------------------------


def test_a_newer_database_is_refused_untouched_in_one_line(tmp_path):
    cluster = Cluster(tmp_path / "c")
    assert cluster.init().returncode == 0
    database = cluster.root / "var/lib/xcat/xcat.sqlite"
    with sqlite3.connect(database) as newer:  # what the next release would have made of it
        newer.execute("CREATE TABLE replicas (node TEXT PRIMARY KEY)")
        newer.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    newer.close()
    before = hashlib.sha256(database.read_bytes()).hexdigest()
    result = cluster.xcatd("serve")
    assert (result.returncode, result.stdout, result.stderr) == (
        1,
        "",
        f"Error: the cluster database {database} is of schema {SCHEMA_VERSION + 1}, made by an "
        f"xcatd newer than this one ({__version__}, schema {SCHEMA_VERSION}): upgrade xcatd, or "
        "restore the copy its upgrade left beside it "
        f"(xcat.sqlite.schema{SCHEMA_VERSION}-*.backup)\n",
    )
    assert hashlib.sha256(database.read_bytes()).hexdigest() == before
    assert version_of(database) == SCHEMA_VERSION + 1
    assert backups(database) == []
    with pytest.raises(SchemaError):  # and any other opener: `xcatd revoke`, ...
        Store(database)
