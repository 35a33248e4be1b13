"""Authorization by node: a service node's certificate reaches only the nodes
it serves (DESIGN.md §9), and the policy table's noderange column decides
as in xCAT — a rule with a noderange matches a request only when every node
it names is in that noderange."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cluster import Cluster
from tests.sessions import credentials_for


@pytest.fixture(scope="module")
def cluster(shared_cluster: Cluster) -> Cluster:
    """sn1 serves cn1 (its servicenode), cn3 (xcatmaster) and rack1's nodes
    (servicenode inherited from the group); sn2 serves cn2."""
    shared_cluster.ok("mkdef", "-t", "group", "-o", "rack1", "servicenode=sn1")
    # A regular expression: cn51 is sn1's, cn52 sn2's.
    shared_cluster.ok("mkdef", "-t", "group", "-o", "rack5", r"servicenode=|\D+(\d+)|sn($1-50)|")
    for node, *attributes in (
        ("sn1", "groups=service"),
        ("sn2", "groups=service"),
        ("cn1", "groups=compute", "servicenode=sn1,sn2"),
        ("cn2", "groups=compute", "servicenode=sn2", "mgt=ipmi", "bmcpassword=cn2secret"),
        ("cn3", "groups=compute", "xcatmaster=sn1"),
        ("cn4", "groups=compute,rack1"),
        ("cn51", "groups=compute,rack5"),
        ("cn52", "groups=compute,rack5"),
    ):
        shared_cluster.ok("mkdef", node, *attributes)
    return shared_cluster


@pytest.fixture(scope="module")
def as_sn1(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory):
    creds = credentials_for(cluster, "sn1", "servicenode", tmp_path_factory.mktemp("sn1"))
    return user(cluster, creds)


def user(cluster: Cluster, creds: Path):
    def run(command: str, *args: str) -> tuple[int, str, str]:
        result = cluster.run(command, *args, env={**cluster.env, "XCAT_CRED_DIR": str(creds)})
        return result.returncode, result.stdout, result.stderr

    return run


def test_a_service_node_sees_only_the_nodes_it_serves_and_itself(as_sn1):
    assert as_sn1("nodels") == (0, "cn1\ncn3\ncn4\ncn51\nsn1\n", "")
    assert as_sn1("nodels", "compute") == (0, "cn1\ncn3\ncn4\ncn51\n", "")
    rc, out, _ = as_sn1("lsdef", "-t", "node", "-i", "servicenode")
    assert rc == 0
    assert [line for line in out.splitlines() if line.startswith("Object name")] == [
        "Object name: cn1", "Object name: cn3", "Object name: cn4", "Object name: cn51",
        "Object name: sn1",
    ]  # fmt: skip
    assert "Object name: cn4\n    servicenode=sn1\n" in out


def test_a_node_given_to_a_service_node_or_taken_away_is_so_at_its_next_request(cluster, as_sn1):
    assert as_sn1("nodels", "compute") == (0, "cn1\ncn3\ncn4\ncn51\n", "")
    cluster.ok("mkdef", "cn6", "groups=compute,rack1")  # rack1: sn1's
    cluster.ok("chdef", "cn3", "xcatmaster=")
    try:
        assert as_sn1("nodels", "compute") == (0, "cn1\ncn4\ncn51\ncn6\n", "")
    finally:
        cluster.ok("rmdef", "cn6")
        cluster.ok("chdef", "cn3", "xcatmaster=sn1")
    assert as_sn1("nodels", "compute") == (0, "cn1\ncn3\ncn4\ncn51\n", "")


def test_a_service_node_cannot_name_a_node_it_does_not_serve(as_sn1):
    assert as_sn1("nodels", "cn2") == (
        1,
        "",
        "Error: Invalid nodes and/or groups in noderange: cn2\n",
    )
    rc, out, err = as_sn1("lsdef", "cn2", "-i", "bmcpassword")
    assert (rc, out) == (1, "")
    assert err == "Error: Permission denied for request: sn1 does not serve cn2\n"
    assert "cn2secret" not in out + err


def test_a_service_node_cannot_change_a_node_it_does_not_serve(cluster, tmp_path):
    # Even where the policy would let a service node change definitions.
    cluster.ok("mkdef", "-t", "policy", "-o", "3.5", "role=servicenode", "commands=chdef",
               "rule=allow")  # fmt: skip
    try:
        as_sn1 = user(cluster, credentials_for(cluster, "sn1", "servicenode", tmp_path / "sn1"))
        assert as_sn1("chdef", "cn2", "groups=mine") == (
            1, "", "Error: Permission denied for request: sn1 does not serve cn2\n"
        )  # fmt: skip
        assert as_sn1("chdef", "cn9", "groups=new")[0] == 1  # nor make a node
        assert as_sn1("chdef", "cn1", "usercomment=fixed")[0] == 0
    finally:
        cluster.ok("rmdef", "-t", "policy", "-o", "3.5")
    assert cluster.ok("lsdef", "cn2", "-i", "groups") == "Object name: cn2\n    groups=compute\n"
    assert cluster.run("nodels", "cn9").returncode == 1  # not made


def test_a_policy_rule_with_a_noderange_decides_only_for_nodes_in_it(cluster, tmp_path):
    cluster.ok("mkdef", "-t", "policy", "-o", "2.5", "name=alice", "noderange=rack1,cn1",
               "commands=lsdef,nodels", "rule=allow")  # fmt: skip
    try:
        alice = user(cluster, credentials_for(cluster, "alice", "user", tmp_path / "alice"))
        assert alice("nodels", "cn4,cn1") == (0, "cn1\ncn4\n", "")
        assert alice("lsdef", "cn4", "-i", "groups")[0] == 0
        denied = (1, "", "Error: Permission denied for request\n")
        assert alice("nodels", "cn4,cn2") == denied  # cn2 is outside the rule's noderange
        assert alice("nodels") == denied  # no noderange: the rule does not match
        assert alice("lsdef", "-t", "osimage") == denied
    finally:
        cluster.ok("rmdef", "-t", "policy", "-o", "2.5")
