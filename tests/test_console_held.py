"""Which daemon holds a node's console (xcatd/console/server.py held_here):
the one that drives its BMC, never two at once, since a second SOL session
on a BMC takes it from the first."""

from __future__ import annotations

from pathlib import Path

from xcatd.console.server import held_here
from xcatd.store import Store
from xcatd.store.objects import Definition, Edit, change, create, object_type

NODE = object_type("node")
BMC = {"mgt": "ipmi", "cons": "ipmi", "bmc": "10.0.0.101", "bmcusername": "admin",
       "bmcpassword": "secret"}  # fmt: skip


def _store(tmp_path: Path, ipmidispatch: str) -> Store:
    store = Store(tmp_path / "xcat.sqlite")
    create(store.db, [Definition(NODE, "sn1", {"groups": "service"}),
                      Definition(NODE, "cn1", {"groups": "compute", "servicenode": "sn1", **BMC})],
           replace=False)  # fmt: skip
    change(store.db, [Edit(Definition(object_type("site"), "clustersite",
                                      {"ipmidispatch": ipmidispatch}))], create=True)  # fmt: skip
    return store


def test_the_service_node_holds_its_nodes_consoles_when_it_drives_their_bmcs(tmp_path):
    store = _store(tmp_path, "y")
    assert list(held_here(store.db, "sn1", "servicenode", {})[0]) == ["cn1"]
    assert list(held_here(store.db, "mn1", "master", {})[0]) == []


def test_with_ipmidispatch_n_only_the_management_node_holds_them(tmp_path):
    store = _store(tmp_path, "n")
    assert list(held_here(store.db, "sn1", "servicenode", {})[0]) == []
    assert list(held_here(store.db, "mn1", "master", {})[0]) == ["cn1"]
