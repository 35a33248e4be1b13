"""Noderanges as an administrator types them, against a small cluster in a dict."""

from __future__ import annotations

import os
from collections.abc import Collection, Sequence
from pathlib import Path

import pytest

from xcatd.store.noderange import MAX_DEPTH, NoderangeError, expand, natural_key


class FakeCluster:
    """A NodeSource: nodes and their attributes; a node's groups are its `groups` list.

    `defined` adds groups with given members, as the store's dynamic groups
    and defined-but-empty groups would be.
    """

    def __init__(
        self, nodes: dict[str, dict[str, str]], defined: dict[str, list[str]] | None = None
    ) -> None:
        self.nodes = nodes
        self.defined = defined or {}

    def all_nodes(self) -> Sequence[str]:
        return list(self.nodes)

    def nodes_among(self, names: Collection[str]) -> Collection[str]:
        return {name for name in names if name in self.nodes}

    def group_members(self, group: str) -> Sequence[str] | None:
        members = [n for n, attrs in self.nodes.items() if group in attrs["groups"].split(",")]
        if not members and group not in self.defined:
            return None
        return members + self.defined.get(group, [])

    def attribute(self, node: str, attr: str) -> str | None:
        return self.nodes[node].get(attr)


def _cluster() -> FakeCluster:
    nodes: dict[str, dict[str, str]] = {}
    for i in range(1, 13):  # node01..node12: two racks of compute nodes
        rack = "rack1" if i <= 6 else "rack2"
        os = "rhels9.4" if i % 2 else "rocky9.4"
        nodes[f"node{i:02d}"] = {"groups": f"compute,{rack}", "os": os}
    nodes["node01"]["bmc"] = "10.1.0.1"
    for frame in (1, 2):  # f1n1..f2n3: nodes named by frame and slot
        for slot in (1, 2, 3):
            nodes[f"f{frame}n{slot}"] = {"groups": f"frame{frame}"}
    for i in range(1, 13):  # cn1..cn12: unpadded service nodes
        nodes[f"cn{i}"] = {"groups": "service"}
    nodes["login-a"] = {"groups": "login"}
    # A group whose name looks like a range, an empty group and a "dynamic" one.
    defined = {"rack1-rack2": ["login-a"], "spare": [], "rhels": ["node01", "node03"]}
    return FakeCluster(nodes, defined)


@pytest.fixture
def cluster() -> FakeCluster:
    return _cluster()


def nodes(first: int, last: int, prefix: str = "node", width: int = 2) -> list[str]:
    return [f"{prefix}{i:0{width}d}" for i in range(first, last + 1)]


# -- names, groups, order ----------------------------------------------------


def test_a_node_name_is_that_node(cluster: FakeCluster) -> None:
    assert expand("node01", cluster) == ["node01"]


def test_a_group_name_is_its_members(cluster: FakeCluster) -> None:
    assert expand("rack1", cluster) == nodes(1, 6)
    assert expand("rhels", cluster) == ["node01", "node03"]


def test_a_defined_group_without_members_is_empty_not_unknown(cluster: FakeCluster) -> None:
    assert expand("spare", cluster) == []


def test_results_are_unique_and_in_natural_order(cluster: FakeCluster) -> None:
    assert expand("cn10,cn2,node03,cn1,node03,cn2", cluster) == ["cn1", "cn2", "cn10", "node03"]


def test_natural_key_orders_numbers_by_value() -> None:
    names = ["node10", "node2", "f2n1", "f1n10", "node1", "f1n2", "node"]
    assert sorted(names, key=natural_key) == [
        "f1n2",
        "f1n10",
        "f2n1",
        "node",
        "node1",
        "node2",
        "node10",
    ]
    assert sorted(["node2", "node02", "node3"], key=natural_key) == ["node02", "node2", "node3"]


def test_surrounding_whitespace_is_ignored(cluster: FakeCluster) -> None:
    assert expand("  node01\n", cluster) == ["node01"]


# -- ranges ------------------------------------------------------------------


def test_a_dash_range_keeps_zero_padding(cluster: FakeCluster) -> None:
    assert expand("node01-node04", cluster) == nodes(1, 4)


def test_an_unpadded_range_counts_past_its_width(cluster: FakeCluster) -> None:
    assert expand("cn1-cn10", cluster) == nodes(1, 10, "cn", 1)


def test_the_first_number_sets_the_width(cluster: FakeCluster) -> None:
    assert expand("new08-new11", cluster, verify=False) == nodes(8, 11, "new")
    assert expand("new8-new11", cluster, verify=False) == nodes(8, 11, "new", 1)
    assert expand("new098-new101", cluster, verify=False) == nodes(98, 101, "new", 3)


def test_a_colon_range_is_a_dash_range(cluster: FakeCluster) -> None:
    assert expand("node01:node04", cluster) == nodes(1, 4)


def test_a_range_of_hyphenated_names_splits_at_the_middle_dash(cluster: FakeCluster) -> None:
    assert expand("r1-n08-r1-n10", cluster, verify=False) == ["r1-n08", "r1-n09", "r1-n10"]


def test_a_range_from_a_name_to_itself_is_that_name(cluster: FakeCluster) -> None:
    assert expand("node05-node05", cluster) == ["node05"]


def test_bracket_ranges(cluster: FakeCluster) -> None:
    assert expand("node[01-04]", cluster) == nodes(1, 4)
    assert expand("node[01:04]", cluster) == nodes(1, 4)
    assert expand("node[01,03,10-12]", cluster) == ["node01", "node03", *nodes(10, 12)]
    assert expand("cn[10,2,1]", cluster) == ["cn1", "cn2", "cn10"]


def test_brackets_after_the_number_keep_the_suffix(cluster: FakeCluster) -> None:
    assert expand("node[1-2]-ib", cluster, verify=False) == ["node1-ib", "node2-ib"]


def test_several_brackets_make_a_cartesian_product(cluster: FakeCluster) -> None:
    assert expand("f[1-2]n[1-3]", cluster) == ["f1n1", "f1n2", "f1n3", "f2n1", "f2n2", "f2n3"]


def test_brackets_that_run_numbers_together_still_give_unique_sorted_names(
    cluster: FakeCluster,
) -> None:
    # x[1][11] and x[11][1] are both x111.
    assert expand("x[1,11][1,11]", cluster, verify=False) == ["x11", "x111", "x1111"]
    assert expand("y[1-11]0", cluster, verify=False)[-3:] == ["y90", "y100", "y110"]


def test_plus_gives_that_many_more_after_the_start(cluster: FakeCluster) -> None:
    assert expand("node10+2", cluster) == ["node10", "node11", "node12"]
    assert expand("cn9+2", cluster) == ["cn9", "cn10", "cn11"]
    assert expand("f1n1+2", cluster) == ["f1n1", "f1n2", "f1n3"]
    assert expand("new008+3", cluster, verify=False) == nodes(8, 11, "new", 3)


def test_a_range_over_group_names_expands_each_group(cluster: FakeCluster) -> None:
    assert expand("frame[1-2]", cluster) == expand("f1n1-f1n3,f2n1-f2n3", cluster)


def test_a_group_is_tried_before_a_range(cluster: FakeCluster) -> None:
    # As a range, rack1-rack2 would be every node of both racks.
    assert expand("rack1-rack2", cluster) == ["login-a"]


@pytest.mark.parametrize(
    "noderange",
    [
        ",".join(f"{prefix}[000001-999999]" for prefix in ("a", "b", "c", "d", "e")),
        "n[1-1000],-m[1-999001]",  # what is excluded counts too
        "n[1-1000]m[1-1000]k[1-1000]",
        "m1,n1+999999",
        "^ranges.txt",  # a file's lines are part of the noderange
    ],
)
def test_a_noderange_names_at_most_a_million_names_in_all(noderange: str, tmp_path: Path) -> None:
    (tmp_path / "ranges.txt").write_text("m1\nn1-n1000000\n")
    empty = FakeCluster({})  # mkdef creating nodes: nothing is known yet
    with pytest.raises(NoderangeError) as raised:
        expand(noderange, empty, cwd=str(tmp_path), verify=False)
    assert str(raised.value) == f"Noderange '{noderange}' expands to more than 1,000,000 names"


def test_a_huge_number_is_a_node_number_like_any_other_and_quickly_so() -> None:
    # Arguments may be megabytes long: nothing here may take the square of that.
    digits = "1" * 1_200_000  # more digits than natural_key can count in a character
    named = expand(f"{digits},x,2", FakeCluster({}), verify=False)
    assert named == ["node2", f"node{digits}", "x"]


def test_a_number_names_a_node_with_the_prefix_and_suffix(cluster: FakeCluster) -> None:
    # noderange.3: "10-20 (equivalent to: node10,node11,node12,...node20)";
    # XCAT_NODE_PREFIX and XCAT_NODE_SUFFIX change "node" and add a suffix.
    assert expand("10-12", FakeCluster({}), verify=False) == ["node10", "node11", "node12"]
    assert expand("1+2", cluster, prefix="cn") == ["cn1", "cn2", "cn3"]
    assert expand("5,7", FakeCluster({}), verify=False, prefix="r", suffix="-ib") == [
        "r5-ib",
        "r7-ib",
    ]
    with pytest.raises(NoderangeError, match="Invalid nodes and/or groups in noderange: node99"):
        expand("99", cluster)


def test_a_group_named_again_and_again_counts_each_time() -> None:
    big = FakeCluster({f"node{i:06d}": {"groups": "all"} for i in range(200_000)})
    with pytest.raises(NoderangeError, match="expands to more than 1,000,000 names"):
        expand(",".join(["all"] * 10_000), big)


def test_a_large_range_against_a_large_cluster() -> None:
    big = FakeCluster({f"node{i:06d}": {"groups": "all"} for i in range(100_000, 0, -1)})
    names = expand("node[000001-100000]", big)
    assert len(names) == 100_000
    assert names == sorted(names, key=natural_key)
    assert names[:2] == ["node000001", "node000002"] and names[-1] == "node100000"


# -- regular expressions, files, attribute selections -------------------------


def test_a_regex_matches_whole_node_names(cluster: FakeCluster) -> None:
    assert expand("/node0[1-3]", cluster) == nodes(1, 3)
    assert expand("/cn1.*", cluster) == ["cn1", "cn10", "cn11", "cn12"]
    assert expand("/node0", cluster) == []  # anchored: no partial matches
    assert expand("/f(1|2)n1", cluster) == ["f1n1", "f2n1"]


def test_a_file_holds_a_noderange_on_each_line(cluster: FakeCluster, tmp_path: Path) -> None:
    listed = tmp_path / "nodes.txt"
    listed.write_text(
        "# the nodes to reinstall\n"
        "\n"
        "node01\n"
        "rack2,-node07\n"
        "cn1: booted\n"  # nodels output: the name and its value
        "   f1n1-f1n2   trailing words are ignored\n"
    )
    expected = ["cn1", "f1n1", "f1n2", "node01", *nodes(8, 12)]
    assert expand(f"^{listed}", cluster) == expected
    assert expand("^nodes.txt", cluster, cwd=str(tmp_path)) == expected


def test_a_file_combines_with_the_rest_of_the_noderange(
    cluster: FakeCluster, tmp_path: Path
) -> None:
    (tmp_path / "broken").write_text("node03\nnode04\n")
    assert expand(f"rack1,-^{tmp_path}/broken", cluster) == ["node01", "node02", "node05", "node06"]


def test_a_file_error_names_the_file_and_line(cluster: FakeCluster, tmp_path: Path) -> None:
    listed = tmp_path / "nodes.txt"
    listed.write_text("node01\nnode[01-03\n")
    with pytest.raises(NoderangeError, match=r"nodes\.txt, line 2: .*missing '\]'"):
        expand(f"^{listed}", cluster)


def test_file_problems(cluster: FakeCluster, tmp_path: Path) -> None:
    with pytest.raises(NoderangeError, match=r"Cannot read noderange file .*No such file"):
        expand(f"^{tmp_path}/absent", cluster)
    with pytest.raises(NoderangeError, match="Is a directory"):
        expand(f"^{tmp_path}", cluster)
    os.mkfifo(tmp_path / "fifo")  # nobody writes to it: reading must not wait
    with pytest.raises(NoderangeError, match="not a regular file"):
        expand(f"^{tmp_path}/fifo", cluster)
    with pytest.raises(NoderangeError, match="relative path and there is no working directory"):
        expand("^nodes.txt", cluster)
    (tmp_path / "outer").write_text(f"^{tmp_path}/inner\n")
    (tmp_path / "inner").write_text("node01\n")
    with pytest.raises(NoderangeError, match="files do not nest"):
        expand(f"^{tmp_path}/outer", cluster)


def test_unknown_names_in_a_file_are_reported(cluster: FakeCluster, tmp_path: Path) -> None:
    (tmp_path / "nodes.txt").write_text("node01\nnode99\n")
    with pytest.raises(NoderangeError, match=r"^Invalid nodes and/or groups in noderange: node99$"):
        expand("^nodes.txt", cluster, cwd=str(tmp_path))


def test_attribute_selections(cluster: FakeCluster) -> None:
    odd, even = nodes(1, 12)[0::2], nodes(1, 12)[1::2]
    assert expand("os==rhels9.4", cluster) == odd
    assert expand("os=rhels9.4", cluster) == odd
    assert expand("os!=rhels9.4", cluster) == sorted(
        [n for n in cluster.nodes if n not in odd], key=natural_key
    )
    assert expand("os=~^rocky", cluster) == even
    assert expand("os!~rhels@compute", cluster) == even


def test_an_unset_attribute_compares_as_empty(cluster: FakeCluster) -> None:
    assert expand("bmc!=", cluster) == ["node01"]
    assert len(expand("bmc==", cluster)) == len(cluster.nodes) - 1


# -- exclusion, intersection, parentheses -----------------------------------


def test_exclusion_wins_whatever_the_order(cluster: FakeCluster) -> None:
    without = ["node01", *nodes(3, 6)]
    assert expand("rack1,-node02", cluster) == without
    assert expand("-node02,rack1", cluster) == without
    assert expand("rack1,-node02,node02", cluster) == without


def test_only_exclusions_select_nothing(cluster: FakeCluster) -> None:
    assert expand("-node01", cluster) == []


def test_intersection(cluster: FakeCluster) -> None:
    assert expand("compute@rack1@os==rocky9.4", cluster) == ["node02", "node04", "node06"]
    assert expand("rack1@rack2", cluster) == []


def test_intersection_binds_tighter_than_union(cluster: FakeCluster) -> None:
    assert expand("cn1,rack1@node[05-08]", cluster) == ["cn1", "node05", "node06"]


def test_parentheses_group(cluster: FakeCluster) -> None:
    assert expand("(rack1,cn1)@node[01-02],cn[1-2]", cluster) == [
        "cn1",
        "cn2",
        "node01",
        "node02",
    ]
    assert expand("compute,-(rack1,node07)", cluster) == nodes(8, 12)
    assert expand("((node01))", cluster) == ["node01"]


def test_exclusions_inside_parentheses_stay_inside(cluster: FakeCluster) -> None:
    assert expand("(rack1,-node01),node01", cluster) == nodes(1, 6)


# -- unknown names -----------------------------------------------------------


def test_unknown_names_are_reported_in_the_order_met(cluster: FakeCluster) -> None:
    with pytest.raises(NoderangeError) as raised:
        expand("node01,bogus,node99,bogus", cluster)
    assert str(raised.value) == "Invalid nodes and/or groups in noderange: bogus,node99"


def test_a_range_reports_the_names_that_do_not_exist(cluster: FakeCluster) -> None:
    with pytest.raises(NoderangeError) as raised:
        expand("node11-node14", cluster)
    assert str(raised.value) == "Invalid nodes and/or groups in noderange: node13,node14"


def test_unknown_names_are_reported_even_when_excluded(cluster: FakeCluster) -> None:
    with pytest.raises(NoderangeError, match=r"noderange: nosuch$"):
        expand("rack1,-nosuch", cluster)


def test_without_verify_new_names_are_kept(cluster: FakeCluster) -> None:
    assert expand("node11-node14", cluster, verify=False) == nodes(11, 14)
    assert expand("rack1-node1,login-b", cluster, verify=False) == ["login-b", "rack1-node1"]


def test_without_verify_groups_regexes_and_selections_still_resolve(
    cluster: FakeCluster,
) -> None:
    assert expand("frame1,new1", cluster, verify=False) == ["f1n1", "f1n2", "f1n3", "new1"]
    assert expand("/cn1[01]", cluster, verify=False) == ["cn10", "cn11"]
    assert expand("bmc!=", cluster, verify=False) == ["node01"]


# -- malformed noderanges ----------------------------------------------------


@pytest.mark.parametrize(
    ("noderange", "message"),
    [
        ("", "Empty noderange"),
        ("   ", "Empty noderange"),
        ("(node01,node02", "unbalanced parentheses, missing ')'"),
        ("node01)", "')' at position 7 has no '('"),
        ("(node01)node02", "unexpected 'n' at position 9"),
        ("node[01-03", "unbalanced '[', missing ']'"),
        ("node01-03]", "unbalanced ']' at position 10"),
        ("node[[1-2]]", "brackets do not nest"),
        ("node01,,cn1", "empty element at position 8"),
        ("node01,", "empty element at position 8"),
        ("()", "empty element at position 2"),
        ("node01@-node02", "'-' excludes only at the start of an element"),
        ("a1-b3", "Bad range 'a1-b3': 'a1' and 'b3' must differ only in one number"),
        ("f1n1-f2n3", "'f1n1' and 'f2n3' must differ only in one number"),
        ("node10-node01", "Bad range 'node10-node01': it counts down, from 10 to 1"),
        ("node[3-1]", "it counts down, from 3 to 1"),
        ("node[1-1000001]", "more than 1,000,000 names"),
        ("node1+1000000", "more than 1,000,000 names"),
        ("f[1-1000]n[1-1001]", "more than 1,000,000 names"),
        ("node1-node" + "9" * 5000, "a number has more than 18 digits"),
        ("node1+" + "9" * 19, "a number has more than 18 digits"),
        ("node[a-c]", "'a-c' in brackets is not a number or a range like 1-10"),
        ("node[]", "'' in brackets is not a number"),
        ("/*node", "Bad regular expression '/*node': nothing to repeat"),
        ("os=~a{2,1}", "Bad attribute selection in noderange"),
        ("==rhels9.4", "Bad attribute selection in noderange"),
        ("(" * (MAX_DEPTH + 1) + "node01" + ")" * (MAX_DEPTH + 1), "nested more than"),
    ],
)
def test_malformed_noderanges_say_what_is_wrong(
    cluster: FakeCluster, noderange: str, message: str
) -> None:
    with pytest.raises(NoderangeError) as raised:
        expand(noderange, cluster)
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_a_malformed_range_is_malformed_without_verify_too(cluster: FakeCluster) -> None:
    with pytest.raises(NoderangeError, match="counts down"):
        expand("node10-node01", cluster, verify=False)


def test_an_escaped_comma_stays_in_its_regex(cluster: FakeCluster) -> None:
    assert expand(r"/node0[12]\,?", cluster) == ["node01", "node02"]
