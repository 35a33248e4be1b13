"""mkdef, chdef, lsdef, rmdef and nodels as an xCAT administrator uses them,
through the real client against a real daemon.  Each test uses its own node
names, so one cluster serves the module."""

from __future__ import annotations

import json
import threading

import pytest

from .test_defs_xcat import SOME_FAILED


def ok(result) -> str:
    rc, out, err = result
    assert rc == 0, err
    return out


def test_mkdef_then_lsdef_shows_the_node_in_long_form(xcat):
    assert ok(xcat("mkdef", "-t", "node", "-o", "cn001", "groups=all,compute", "ip=10.1.0.1")) == (
        "1 object definitions have been created or modified.\n"
    )
    assert ok(xcat("lsdef", "cn001")) == (
        "Object name: cn001\n    groups=all,compute\n    ip=10.1.0.1\n"
    )


def test_plain_lsdef_lists_nodes_short(xcat):
    ok(xcat("mkdef", "sh[1-2]", "groups=shorts"))
    assert "sh1  (node)\nsh2  (node)\n" in ok(xcat("lsdef"))
    assert ok(xcat("lsdef", "shorts", "-s")) == "sh1  (node)\nsh2  (node)\n"


def test_a_noderange_creates_many_nodes_keeping_zero_padding(xcat):
    assert ok(xcat("mkdef", "rk[08-11]", "groups=rack")) == (
        "4 object definitions have been created or modified.\n"
    )
    assert ok(xcat("nodels", "rack")) == "rk08\nrk09\nrk10\nrk11\n"


def test_group_attributes_are_inherited_in_group_order(xcat):
    ok(xcat("mkdef", "inh1", "groups=gfast,gslow"))
    ok(xcat("chdef", "-t", "group", "-o", "gslow", "os=rhels9.4", "arch=x86_64"))
    ok(xcat("chdef", "-t", "group", "gfast", "os=debian12"))
    assert ok(xcat("lsdef", "inh1", "-i", "os,arch")) == (  # sorted, as xCAT lists them
        "Object name: inh1\n    arch=x86_64\n    os=debian12\n"
    )
    ok(xcat("chdef", "inh1", "os=ubuntu24.04"))  # the node's own value wins
    assert ok(xcat("nodels", "inh1", "os")) == "inh1: ubuntu24.04\n"
    assert ok(xcat("nodels", "inh1", "-b", "os", "arch")) == (
        "inh1: os: ubuntu24.04\ninh1: arch: x86_64 (inherited from group gslow)\n"
    )


def test_regular_expression_values_are_evaluated_per_node(xcat):
    ok(xcat("mkdef", "rx[001-003]", "groups=rxg"))
    ok(xcat("chdef", "-t", "group", "rxg", r"ip=|rx(\d+)|10.9.0.($1+0)|", "mgt=ipmi",
               "bmc=/rx/bmc-rx/"))  # fmt: skip
    assert ok(xcat("nodels", "rxg", "ip", "bmc")) == (
        "rx001: ip: 10.9.0.1\nrx001: bmc: bmc-rx001\n"
        "rx002: ip: 10.9.0.2\nrx002: bmc: bmc-rx002\n"
        "rx003: ip: 10.9.0.3\nrx003: bmc: bmc-rx003\n"
    )


def test_lsdef_i_shows_listed_attributes_even_when_empty_and_c_compresses(xcat):
    ok(xcat("mkdef", "ic1", "groups=icg", "ip=10.2.0.1"))
    assert (
        ok(xcat("lsdef", "ic1", "-i", "ip,mac")) == "Object name: ic1\n    ip=10.2.0.1\n    mac=\n"
    )
    assert (
        ok(xcat("lsdef", "ic1", "-i", "ip,groups", "-c")) == "ic1: groups=icg\nic1: ip=10.2.0.1\n"
    )


def test_lsdef_w_selects_by_effective_value(xcat):
    ok(xcat("mkdef", "st[1-4]", "groups=stg"))
    ok(xcat("chdef", "st[2-3]", "status=booted"))
    assert ok(xcat("lsdef", "-w", "status==booted", "-s")).splitlines() == [
        "st2  (node)",
        "st3  (node)",
    ]
    ok(xcat("chdef", "-t", "group", "stg", "os=debian12"))
    assert ok(xcat("lsdef", "-w", "groups=~^stg", "-w", "status!=booted", "-s")).splitlines() == [
        "st1  (node)",
        "st4  (node)",
    ]


def test_stanza_output_reads_back_as_the_same_objects(xcat):
    ok(xcat("mkdef", "-t", "osimage", "-o", "img-a", "provmethod=netboot", "osvers=debian12",
            "pkglist=/install/custom/a.pkglist,/install/custom/b.pkglist"))  # fmt: skip
    stanza = ok(xcat("lsdef", "-t", "osimage", "-o", "img-a", "-z"))
    assert stanza == (
        "# <xCAT data object stanza file>\n\nimg-a:\n    objtype=osimage\n    osvers=debian12\n"
        "    pkglist=/install/custom/a.pkglist,/install/custom/b.pkglist\n"
        "    provmethod=netboot\n"
    )
    clone = stanza.replace("img-a:", "img-b:")
    assert ok(xcat("mkdef", "-z", stdin=clone)) == (
        "1 object definitions have been created or modified.\n"
    )
    assert ok(xcat("lsdef", "-t", "osimage", "-o", "img-b", "-z")) == clone


def test_stanza_defaults_apply_to_the_objects_that_follow(xcat):
    stanza = (
        "default-node:\n    groups=dflt\n    netboot=xnba\n\n"
        "df1:\n    objtype=node\n\n"
        'df2:\n    objtype=node\n    netboot="grub2"\n'
    )
    ok(xcat("mkdef", "-z", stdin=stanza))
    assert ok(xcat("nodels", "dflt", "netboot")) == "df1: xnba\ndf2: grub2\n"


def test_mkdef_refuses_an_existing_object_unless_forced(xcat):
    ok(xcat("mkdef", "ex1", "groups=exg", "ip=10.3.0.1"))
    assert xcat("mkdef", "ex1", "groups=exg") == (
        1,
        "",
        "Warning: A definition for 'ex1' already exists. No changes will be made.  "
        "Run again with '-f' option to force replace.\n"
        "Error: 0 object definitions have been created or modified.\n",
    )
    ok(xcat("mkdef", "-f", "ex1", "groups=exg2"))
    assert ok(xcat("lsdef", "ex1")) == "Object name: ex1\n    groups=exg2\n"  # replaced whole


def test_a_node_needs_groups(xcat):
    assert xcat("mkdef", "nogroups1", "ip=10.4.0.1") == (
        1,
        "",
        "Error: Attribute 'groups' is not specified for node 'nogroups1', skipping to the next "
        "node.\n" + SOME_FAILED,
    )


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["bad1", "groups=g", "ip=10.0.0.256"],
         "Error: bad1: Invalid value '10.0.0.256' for attribute 'ip': expected an IPv4 or IPv6 "
         "address\n" + SOME_FAILED),
        (["bad2", "groups=g", "mac=zz:zz"],
         "Error: bad2: Invalid value 'zz:zz' for attribute 'mac': expected a MAC address like "
         "52:54:00:12:34:56\n" + SOME_FAILED),
        (["bad3", "groups=g", "netboot=floppy"],
         "Error: bad3: Invalid value 'floppy' for attribute 'netboot': expected one of xnba, pxe, "
         "grub2, petitboot, yaboot, onie\n" + SOME_FAILED),
        (["bad4", "groups=g", "colour=blue"],
         "Error: bad4: 'colour' is not a valid attribute name for an object type of 'node' "
         "(see lsdef -t node -h)\n"),
        (["-t", "gizmo", "-o", "x1", "a=b"],
         "Error: \nType 'gizmo' is not a valid xCAT object type.\n"),
        (["-t", "osimage", "-o", "../../etc", "provmethod=netboot"],
         "Error: '../../etc' is not a valid osimage name: use letters, digits, '.', '-' and '_' "
         "(no '/', '..', spaces or control characters)\n"),
        (["-t", "osimage", "-o", "img", "rootimgdir=relative/dir"],
         "Error: img: Invalid value 'relative/dir' for attribute 'rootimgdir': expected an "
         "absolute path\n" + SOME_FAILED),
    ],
)  # fmt: skip
def test_bad_definitions_are_refused_with_the_reason_and_nothing_is_written(xcat, args, error):
    assert xcat("mkdef", *args) == (1, "", error)


def test_one_bad_object_in_ten_thousand_writes_nothing(xcat):
    stanza = "".join(f"bulk{n:05d}:\n    objtype=node\n    groups=bulk\n" for n in range(10_000))
    stanza = stanza.replace(
        "bulk05123:\n    objtype=node\n", "bulk05123:\n    objtype=node\n    ip=x\n"
    )
    assert xcat("mkdef", "-z", stdin=stanza) == (
        1,
        "",
        "Error: bulk05123: Invalid value 'x' for attribute 'ip': expected an IPv4 or IPv6 "
        "address\n" + SOME_FAILED,
    )
    rc, _, err = xcat("nodels", "bulk")
    assert (rc, err) == (1, "Error: Invalid nodes and/or groups in noderange: bulk\n")


@pytest.mark.parametrize(
    ("stanza", "error"),
    [
        ("n1:\n    groups=all\n", "Error: line 1: object 'n1' has no objtype\n"),
        ("groups=all\n", "Error: line 1: 'groups=' comes before any object name\n"),
        ("n1:\n    objtype=node\n    this is not a line\n",
         "Error: line 3: expected '<name>:' or 'attribute=value': '    this is not a line'\n"),
    ],
)  # fmt: skip
def test_stanzas_that_do_not_parse_say_which_line(xcat, stanza, error):
    assert xcat("mkdef", "-z", stdin=stanza) == (1, "", error)


def test_chdef_plus_and_minus_edit_lists(xcat):
    ok(xcat("mkdef", "pm1", "groups=all,pmg"))
    ok(xcat("chdef", "pm1", "-p", "groups=rack7,rack8"))
    assert ok(xcat("nodels", "pm1", "groups")) == "pm1: all,pmg,rack7,rack8\n"
    ok(xcat("chdef", "-m", "pm1", "groups=rack7,all"))
    assert ok(xcat("nodels", "pm1", "groups")) == "pm1: pmg,rack8\n"
    assert xcat("chdef", "-m", "pm1", "groups=pmg,rack8") == (
        1,
        "",
        "Error: pm1: a node must keep 'groups'\n" + SOME_FAILED,
    )


def test_chdef_clears_an_attribute_with_an_empty_value(xcat):
    ok(xcat("mkdef", "clr1", "groups=clrg", "ip=10.5.0.1"))
    ok(xcat("chdef", "clr1", "ip="))
    assert ok(xcat("lsdef", "clr1")) == "Object name: clr1\n    groups=clrg\n"


def test_chdef_n_renames(xcat):
    ok(xcat("mkdef", "old1", "groups=rng", "ip=10.6.0.1"))
    ok(xcat("chdef", "old1", "-n", "new1"))
    assert ok(xcat("lsdef", "new1")) == "Object name: new1\n    groups=rng\n    ip=10.6.0.1\n"
    assert (
        xcat("lsdef", "old1")[2] == "Error: Could not find an object named 'old1' of type 'node'.\n"
    )


def test_chdef_of_an_unknown_node_without_groups_names_it(xcat):
    # chdef creates what does not exist, and a new node needs groups.
    assert xcat("chdef", "ghost1", "status=booted") == (
        1,
        "",
        "Error: Attribute 'groups' is not specified for node 'ghost1', skipping to the next "
        "node.\n" + SOME_FAILED,
    )


def test_mkdef_template_clones_an_object(xcat):
    ok(xcat("mkdef", "-t", "osimage", "-o", "base-img", "provmethod=netboot", "osarch=x86_64"))
    ok(xcat("mkdef", "-t", "osimage", "-o", "my-img", "--template", "base-img", "profile=svc"))
    assert ok(xcat("lsdef", "-t", "osimage", "my-img")) == (
        "Object name: my-img\n    osarch=x86_64\n    profile=svc\n    provmethod=netboot\n"
    )


def test_rmdef_removes_and_reports(xcat):
    ok(xcat("mkdef", "rm[1-3]", "groups=rmg"))
    assert ok(xcat("rmdef", "rm[1-2]")) == "2 object definitions have been removed.\n"
    assert ok(xcat("nodels", "rmg")) == "rm3\n"
    assert xcat("rmdef", "-t", "osimage", "-o", "no-such-img") == (
        1,
        "No objects have been removed from the xCAT database.\n",
        "Error: Could not find an object named 'no-such-img' of type 'osimage'.\n",
    )


def test_lsdef_of_several_types_names_each_type(xcat):
    ok(xcat("mkdef", "-t", "network", "-o", "mgmt", "net=10.0.0.0", "mask=255.255.0.0"))
    out = ok(xcat("lsdef", "-t", "network,site", "-l"))
    assert "Object name: mgmt  (network)\n    mask=255.255.0.0\n    net=10.0.0.0\n" in out
    assert "Object name: clustersite  (site)\n" in out


def test_lsdef_h_with_a_type_lists_every_attribute_with_its_meaning(xcat):
    out = ok(xcat("lsdef", "-t", "osimage", "-h"))
    assert out.startswith("The valid attribute names for object type 'osimage' are:\n")
    for attribute in ("rootimgdir", "otherpkgdir", "exlist", "postinstall", "pkglist"):
        assert f"\n{attribute}:\t" in out
    # This project's own attributes are listed too, with their meanings.
    assert "\n\npacksha256:\tSHA-256 of the last packed image (also in <packfile>.sha256)\n" in out


def test_json_gives_one_record_per_object(xcat):
    ok(xcat("mkdef", "js[1-2]", "groups=jsg", "ip=10.7.0.1"))
    records = [json.loads(line) for line in ok(xcat("lsdef", "jsg", "--json")).splitlines()]
    assert records == [
        {"name": "js1", "objtype": "node", "groups": "jsg", "ip": "10.7.0.1"},
        {"name": "js2", "objtype": "node", "groups": "jsg", "ip": "10.7.0.1"},
    ]


def test_dynamic_groups_select_by_wherevals(xcat):
    ok(xcat("mkdef", "dy[1-3]", "groups=dyg"))
    ok(xcat("chdef", "dy2", "arch=ppc64le"))
    ok(xcat("mkdef", "-t", "group", "-o", "power", "grouptype=dynamic",
            "wherevals=arch==ppc64le::groups=~dyg"))  # fmt: skip
    assert ok(xcat("nodels", "power")) == "dy2\n"


def test_twenty_clients_changing_overlapping_nodes_lose_nothing(xcat):
    ok(xcat("mkdef", "cc[01-10]", "groups=ccg"))
    failures = []

    def client(n: int) -> None:
        # Each client adds its own group to every node: a lost update would
        # show as a missing group.
        rc, _, err = xcat("chdef", "-p", "ccg", f"groups=client{n:02d}")
        if rc != 0 or err:
            failures.append(err)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    for line in ok(xcat("nodels", "ccg", "groups")).splitlines():
        groups = line.split(": ")[1].split(",")
        assert sorted(groups) == ["ccg"] + [f"client{n:02d}" for n in range(20)], line


def test_a_policy_defined_with_mkdef_applies_at_once(shared_cluster, xcat, tmp_path):
    from .sessions import credentials_for

    carol = credentials_for(shared_cluster, "carol", "user", tmp_path / "carol")
    env = {**shared_cluster.env, "XCAT_CRED_DIR": str(carol)}
    denied = shared_cluster.run("nodels", env=env)
    assert (denied.returncode, denied.stderr) == (1, "Error: Permission denied for request\n")

    ok(xcat("mkdef", "-t", "policy", "-o", "6", "name=carol", "commands=nodels", "rule=allow"))
    assert shared_cluster.run("nodels", env=env).returncode == 0
    # ...but the daemon does not read files for her: it runs as root.
    secret = shared_cluster.run("nodels", "^/etc/shadow", env=env)
    assert (secret.returncode, secret.stderr) == (
        1,
        "Error: '^/etc/shadow': only root may use noderange files\n",
    )
    ok(xcat("rmdef", "-t", "policy", "-o", "6"))
    assert shared_cluster.run("nodels", env=env).returncode == 1


def test_root_may_use_a_noderange_file(shared_cluster, xcat, tmp_path):
    ok(xcat("mkdef", "nf[1-3]", "groups=nfg"))
    listing = tmp_path / "nodes.txt"
    listing.write_text("# the ones to boot\nnf1\nnf3\n")
    assert ok(xcat("nodels", f"^{listing}")) == "nf1\nnf3\n"


def test_lsdef_of_a_group_shows_its_members_and_type(xcat):
    ok(xcat("mkdef", "gm[1-2]", "groups=gmembers"))
    ok(xcat("chdef", "-t", "group", "gmembers", "netboot=grub2"))
    assert ok(xcat("lsdef", "-t", "group", "-l", "gmembers")) == (
        "Object name: gmembers\n    grouptype=static\n    members=gm1,gm2\n    netboot=grub2\n"
    )


def test_rmdef_all_needs_force(xcat):
    ok(xcat("mkdef", "-t", "network", "-o", "tmpnet", "net=192.168.9.0", "mask=255.255.255.0"))
    rc, out, err = xcat("rmdef", "-t", "network", "-a")
    assert (rc, err) == (1, "Error: You must use the '-f' option when using the '-a' option.\n")
    assert out.startswith("\nUsage: rmdef - Remove xCAT data object definitions.\n")
    assert ok(xcat("rmdef", "-t", "network", "-a", "-f")).endswith("have been removed.\n")
    assert xcat("lsdef", "-t", "network") == (
        1,
        "",
        "Error: Could not get objects of type 'network'.\n",
    )


def test_spaces_around_equals_on_the_command_line_are_refused(xcat):
    ok(xcat("mkdef", "sp1", "groups=spg"))
    assert xcat("chdef", "sp1", "groups = other") == (
        1,
        "",
        "Error: 'groups = other': write groups=other, with no spaces around '='\n",
    )
    assert xcat("chdef", "sp1", "gr oups=x") == (
        1,
        "",
        "Error: 'gr oups=x': 'gr oups' is not an attribute name (up to 64 letters, digits, "
        "'_' and '.'; see lsdef -t TYPE -h)\n",
    )
    assert ok(xcat("nodels", "sp1", "groups")) == "sp1: spg\n"


def test_a_stanza_file_may_put_spaces_around_equals_as_in_xcat(xcat):
    ok(xcat("mkdef", "-z", stdin="sp2:\n    objtype = node\n    groups = spg2\n"))
    assert ok(xcat("nodels", "sp2", "groups")) == "sp2: spg2\n"


def test_a_value_over_64_kib_is_refused_and_nothing_is_written(xcat):
    ok(xcat("mkdef", "big1", "groups=bigg"))
    assert xcat("chdef", "big1", "usercomment=" + "x" * 70_000) == (
        1,
        "",
        "Error: big1: Invalid value for attribute 'usercomment': longer than 65,536 bytes "
        "(64 KiB), the most a value may hold\n" + SOME_FAILED,
    )
    # 20 MiB in a stanza: refused too, rather than stored and then too big to list.
    stanza = f"big2:\n    objtype=node\n    groups=bigg\n    usercomment={'y' * (20 << 20)}\n"
    rc, _, err = xcat("mkdef", "-z", stdin=stanza)
    assert (rc, err) == (
        1,
        "Error: big2: Invalid value for attribute 'usercomment': longer than 65,536 bytes "
        "(64 KiB), the most a value may hold\n" + SOME_FAILED,
    )
    # The limit is on UTF-8 bytes: 32,768 'é' are 64 KiB exactly, one more is too many.
    assert xcat("chdef", "big1", "usercomment=" + "é" * 32_769)[0] == 1
    ok(xcat("chdef", "big1", "usercomment=" + "é" * 32_768))
    assert ok(xcat("nodels", "big1", "usercomment")) == "big1: " + "é" * 32_768 + "\n"
    assert ok(xcat("nodels", "bigg")) == "big1\n"


def test_an_error_repeats_only_the_start_of_a_long_value(xcat):
    # One such line comes back for each node named: they must stay short.
    ok(xcat("mkdef", "lv[1-3]", "groups=lvg"))
    assert xcat("chdef", "lvg", "ip=" + "9" * 60_000) == (
        1,
        "",
        "".join(
            f"Error: lv{n}: Invalid value '{'9' * 80}... (60,000 characters)' for attribute "
            "'ip': expected an IPv4 or IPv6 address\n"
            for n in (1, 2, 3)
        )
        + SOME_FAILED,
    )


def test_a_regular_expression_that_backtracks_without_end_fails_at_once(xcat):
    # Matching the pattern against any of these names would take minutes.
    ok(xcat("mkdef", "bt[001-200]" + "a" * 40 + "-x", "groups=btg"))
    assert xcat("nodels", r"/^(\w|\w\w)*-$") == (
        1,
        "",
        r"Error: Bad regular expression '/^(\w|\w\w)*-$': one match took more than 0.25 s: "
        "simplify it\n",
    )
    assert ok(xcat("nodels", "btg")).count("\n") == 200  # and the daemon goes on


def test_a_regular_expression_value_that_fails_for_a_node_says_so_in_one_line(xcat):
    ok(xcat("mkdef", "rvx1", "groups=rvg"))
    ok(xcat("mkdef", "rv" + "a" * 40 + "-x", "groups=rvg"))
    ok(xcat("chdef", "-t", "group", "rvg", r"ip=|rv(\w+)|10.0.0.($1+0)|"))
    assert xcat("nodels", "rvx1", "ip") == (
        1,
        "",
        r"Error: Bad regular expression value '|rv(\w+)|10.0.0.($1+0)|' for node 'rvx1': "
        "$1 is 'x1', not a number\n",
    )
    ok(xcat("chdef", "-t", "group", "rvg", r"ip=", "mgt=ipmi", r"bmc=/^(\w|\w\w)*-$/bmc/"))
    rc, _, err = xcat("lsdef", "rvg")
    assert (rc, err) == (
        1,
        r"Error: Bad regular expression value '/^(\w|\w\w)*-$/bmc/' for node 'rv"
        + "a" * 40
        + "-x': one match took more than 0.25 s: simplify it\n",
    )


def test_attributes_per_interface_are_set_and_shown_one_nic_at_a_time(xcat):
    """xCAT's nics table: `nicips.eth1=` sets one interface's entry and keeps
    the others'; lsdef shows an entry per interface; stanzas read back."""
    ok(xcat("mkdef", "nic1", "groups=nics", "nicips.eth1=10.78.0.1", "nicnetworks.eth1=cnet"))
    ok(xcat("chdef", "nic1", "nicips.ib0=10.90.0.1|10.91.0.1"))
    assert ok(xcat("lsdef", "nic1")) == (
        "Object name: nic1\n    groups=nics\n    nicips.eth1=10.78.0.1\n"
        "    nicips.ib0=10.90.0.1|10.91.0.1\n    nicnetworks.eth1=cnet\n"
    )
    assert ok(xcat("lsdef", "nic1", "-i", "nicips", "-c")) == (
        "nic1: nicips.eth1=10.78.0.1\nnic1: nicips.ib0=10.90.0.1|10.91.0.1\n"
    )
    # The table's own form, as tabdump and nodels show the column.
    assert ok(xcat("nodels", "nic1", "nicips")) == "nic1: eth1!10.78.0.1,ib0!10.90.0.1|10.91.0.1\n"
    ok(xcat("chdef", "nic1", "nicips.eth1="))  # removes eth1's entry only
    assert ok(xcat("lsdef", "nic1", "-i", "nicips")) == (
        "Object name: nic1\n    nicips.ib0=10.90.0.1|10.91.0.1\n"
    )
    stanza = ok(xcat("lsdef", "nic1", "-z"))
    ok(xcat("rmdef", "nic1"))
    ok(xcat("mkdef", "-z", stdin=stanza))
    assert ok(xcat("lsdef", "nic1", "-z")) == stanza


@pytest.mark.parametrize(
    "args, error",
    [
        (["nicips.eth1=10.0.0.1,eth2!10.0.0.2"],
         "Error: nicbad: Invalid value '10.0.0.1,eth2!10.0.0.2' for attribute 'nicips.eth1': "
         "one interface's value may not hold ',' or '!'"),
        (["nicips=10.0.0.1"],
         "Error: nicbad: Invalid value '10.0.0.1' for attribute 'nicips': expected "
         "<interface>!<value>[,<interface>!<value>...], not '10.0.0.1'"),
        (["-p", "nicips.eth1=10.0.0.1"],
         "Error: -p and -m add to and remove from lists, not nicips.eth1=: give the "
         "interface's whole value"),
        (["ip.eth1=10.0.0.1"],
         "Error: nicbad: 'ip.eth1' is not a valid attribute name for an object type of "
         "'node' (see lsdef -t node -h)"),
    ],
)  # fmt: skip
def test_bad_values_per_interface_are_refused(xcat, args, error):
    ok(xcat("mkdef", "-f", "nicbad", "groups=nics"))
    rc, _, err = xcat("chdef", "nicbad", *args)
    assert (rc, err.splitlines()[0]) == (1, error)
    assert ok(xcat("lsdef", "nicbad")) == "Object name: nicbad\n    groups=nics\n"
