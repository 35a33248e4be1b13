"""xCAT's table commands as an administrator uses them: tabdump, chtab,
gettab, nodeadd, nodech, noderm, tabrestore, tabprune and tabedit, reading
and writing the same objects as lsdef and chdef.  Expected texts are the
man pages' examples and the messages of xCAT's tabutils.pm,
xCAT-server/sbin/chtab and xCAT-client/sbin/tabrestore; the CSV layout is
tabutils.pm's output_table.  Tests that compare whole tables get a cluster
of their own; the others share one and use their own names."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from xcatd import __version__

from .sessions import credentials_for

NODELIST = (
    "#node,groups,status,statustime,appstatus,appstatustime,primarysn,hidden,updatestatus,"
    "updatestatustime,zonename,comments,disable\n"
)
HOSTS = "#node,ip,hostnames,otherinterfaces,comments,disable\n"
NODETYPE = "#node,os,arch,profile,provmethod,supportedarchs,nodetype,comments,disable\n"
# tabutils.pm's usage texts.
TABDUMP_USAGE = (
    "Usage: tabdump [-d] [table]\n"
    "       tabdump      [table]\n"
    "       tabdump [-f <filename>]  [table]\n"
    "       tabdump [-n <# of records>]  [auditlog | eventlog]\n"
    "       tabdump [-w attr==val [-w attr=~val] ...] [table]\n"
    "       tabdump [-w attr==val [-w attr=~val] ...] [-f <filename>] [table]\n"
    "       tabdump [-?|-h|--help]\n"
    "       tabdump {-v|--version}\n"
    "       tabdump \n"
)
NODECH_USAGE = (
    "Usage: nodech <noderange> table.column=value [...]\n"
    "       nodech {-d | --delete} <noderange> <table> [...]\n"
    "       nodech {-v | --version}\n"
    "       nodech [-? | -h | --help]\n"
)


def ok(result) -> str:
    rc, out, err = result
    assert (rc, err) == (0, ""), err
    return out


def refused(result) -> str:
    """The one error line of a refused command (rc 1, nothing on stdout)."""
    rc, out, err = result
    assert (rc, out) == (1, ""), (rc, out, err)
    assert err.count("\n") == 1, err
    return err


@pytest.fixture
def admin(cluster):
    def run(command: str, *args: str, stdin: str | None = None, env=None):
        result = cluster.run(command, *args, input=stdin, env=env)
        return result.returncode, result.stdout, result.stderr

    return run


# -- the example: one regular expression on a group, read by lsdef --------


def test_chtab_sets_a_group_regex_that_lsdef_computes_for_each_node(admin):
    ok(admin("mkdef", "-t", "node", "node1-node6", "groups=compute,all"))
    assert ok(admin("chtab", "node=compute", r"hosts.ip=|node(\d+)|10.0.0.($1+0)|")) == ""
    assert ok(admin("lsdef", "-t", "node", "-o", "node5", "-i", "ip")) == (
        "Object name: node5\n    ip=10.0.0.5\n"
    )
    assert ok(admin("nodels", "node5", "hosts.ip")) == "node5: 10.0.0.5\n"
    assert (
        ok(admin("tabdump", "hosts")) == HOSTS + r'"compute","|node(\d+)|10.0.0.($1+0)|",,,,' + "\n"
    )
    # The same row, seen and changed from the def commands' side.
    ok(admin("chdef", "-t", "group", "compute", "hostnames=c-alias"))
    assert ok(admin("gettab", "node=compute", "hosts.hostnames")) == "c-alias\n"


# -- tabdump ----------------------------------------------------------------------------


def test_tabdump_prints_every_column_in_xcats_order_quoting_as_xcat(admin):
    ok(admin("mkdef", "cn1", "groups=compute,all", "status=booted"))
    ok(admin("mkdef", "cn2", "groups=compute", 'usercomment=rack "A", slot 2'))
    ok(admin("mkdef", "io1", "groups=io"))
    assert ok(admin("tabdump", "nodelist")) == NODELIST + (
        '"cn1","compute,all","booted",,,,,,,,,,\n'
        '"cn2","compute",,,,,,,,,,"rack ""A"", slot 2",\n'
        '"io1","io",,,,,,,,,,,\n'
    )
    # The man page's examples 2 and 3.
    assert ok(admin("tabdump", "-w", "groups==compute", "nodelist")) == NODELIST + (
        '"cn2","compute",,,,,,,,,,"rack ""A"", slot 2",\n'
    )
    assert ok(admin("tabdump", "-w", "groups=~comput%", "-w", "status==booted", "nodelist")) == (
        NODELIST + '"cn1","compute,all","booted",,,,,,,,,,\n'
    )
    # A table with no rows, and one this project keeps nothing of: the header.
    assert ok(admin("tabdump", "nodetype")) == NODETYPE
    assert ok(admin("tabdump", "vm")).startswith("#node,mgr,host,migrationdest,storage,")


def test_tabdump_lists_and_describes_xcats_tables(xcat):
    tables = ok(xcat("tabdump")).splitlines()
    assert tables == sorted(tables) and {"nodelist", "hosts", "site", "auditlog"} <= set(tables)
    described = ok(xcat("tabdump", "-d", "nodehm"))
    assert described.startswith("node:\t\tThe node name or group name.\n\npower:\t\t")
    assert "\n\ntermserver:\tThe hostname of the terminal server.\n\n" in described
    assert described.endswith("disable:\tSet to 'yes' or '1' to comment out this row.\n")
    assert "\n\nnodelist:\tThe list of all the nodes in the cluster" in ok(xcat("tabdump", "-d"))


def test_tabdump_f_writes_the_file_on_the_users_side(xcat, tmp_path):
    ok(xcat("mkdef", "tf1", "groups=tfgroup"))
    dumped = tmp_path / "nodelist.csv"
    assert ok(xcat("tabdump", "-w", "node==tf1", "-f", str(dumped), "nodelist")) == ""
    assert dumped.read_text() == NODELIST + '"tf1","tfgroup",,,,,,,,,,,\n'


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["nosuch"], "Error: No such table: nosuch\n"),
        (["-d", "nosuch"], "Error: table nosuch does not exist.\n"),
        (["-w", "nosuch==1", "nodelist"], 'Error: No column "nosuch" in table "nodelist"\n'),
        (["-w", "groups", "nodelist"], "Error: Unsupported operator:groups on -w flag input\n"),
        (["-n", "2", "nodelist"], "Error: nodelist table is not supported in tabdump -n. You "
         "may only use this option on the auditlog or the eventlog.\n"),
        (["-n", "2", "-d", "auditlog"], "Error: You  cannot use the -n and -d flag together. \n"),
        (["-f", "/tmp/x.csv"], "Error: table name missing from the command input. \n"),
    ],
)  # fmt: skip
def test_tabdump_refuses_in_xcats_words(xcat, args, error):
    assert refused(xcat("tabdump", *args)) == error


def test_tabdump_usage_and_version(xcat):
    assert xcat("tabdump", "-h") == (0, TABDUMP_USAGE, "")
    assert xcat("tabdump", "site", "nodelist") == (1, TABDUMP_USAGE, "")
    assert xcat("tabdump", "-v") == (0, f"Version {__version__}\n", "")


# -- chtab and gettab ---------------------------------------------------------------------


def test_chtab_man_page_examples_change_what_lsdef_shows(admin):
    assert ok(admin("chtab", "node=node1", "nodelist.groups=all")) == ""  # example 1
    assert ok(admin("chtab", "key=tftpdir", "site.value=/tftpboot")) == ""  # example 2
    assert ok(admin("lsdef", "-t", "site", "-i", "tftpdir")) == (
        "Object name: clustersite\n    tftpdir=/tftpboot\n"
    )
    assert ok(admin("gettab", "key=tftpdir", "site.value")) == "/tftpboot\n"
    ok(admin("chtab", "node=node1", "nodetype.os=rhel5"))  # example 3
    ok(admin("chtab", "node=node1", "nodetype.os=sles"))  # example 4
    ok(admin("chtab", "node=node1", "postscripts.postbootscripts=syslog"))
    ok(admin("chtab", "node=node1", "postscripts.postbootscripts+=otherpkgs"))  # example 5
    ok(admin("chtab", "node=node1", "postscripts.postbootscripts+=otherpkgs"))  # once only
    assert ok(admin("lsdef", "node1", "-i", "os,postbootscripts")) == (
        "Object name: node1\n    os=sles\n    postbootscripts=syslog,otherpkgs\n"
    )
    assert ok(admin("tabdump", "nodetype")) == NODETYPE + '"node1","sles",,,,,,,\n'
    assert ok(admin("chtab", "-d", "node=node1", "nodetype")) == ""  # example 6
    assert ok(admin("tabdump", "nodetype")) == NODETYPE
    assert ok(admin("nodels")) == "node1\n"  # its other rows stay


def test_gettab_man_page_examples(admin, cluster):
    assert ok(admin("gettab", "-H", "key=master", "site.value")) == (
        f"site.value: {cluster.hostname}\n"
    )
    ok(admin("mkdef", "-t", "group", "blades"))
    ok(admin("chtab", "node=blades", "nodehm.mgt=blade"))
    assert ok(admin("gettab", "mgt=blade", "nodehm.node")) == "blades\n"
    assert ok(admin("gettab", "node=blades", "nodehm.mgt", "nodehm.power")) == (
        "nodehm.mgt: blade\nnodehm.power: \n"
    )
    assert refused(admin("gettab", "nosuch=1", "nodehm.mgt")) == (
        "Error: Unknown key nosuch to nodehm\n"
    )
    usage = (
        "Usage: gettab [-H|--with-fieldname] key=value,...  table.attribute ...\n"
        "       gettab [-?|-h|--help]\n"
    )
    assert admin("gettab", "key=master") == (1, usage, "")


def test_conditional_columns_follow_mgt(xcat):
    ok(xcat("mkdef", "bm1", "groups=bmgroup", "mgt=ipmi"))
    ok(xcat("mkdef", "ob1", "groups=bmgroup", "mgt=openbmc"))
    ok(xcat("chtab", "node=bm1", "ipmi.bmc=10.2.0.1", "ipmi.username=ADMIN"))
    assert ok(xcat("lsdef", "bm1", "-i", "bmc,bmcusername")) == (
        "Object name: bm1\n    bmc=10.2.0.1\n    bmcusername=ADMIN\n"
    )
    assert refused(xcat("chtab", "node=ob1", "ipmi.bmc=10.2.0.2")) == (
        "Error: ipmi.bmc is node attribute 'bmc' only where mgt=ipmi, and ob1 has mgt=openbmc\n"
    )
    ok(xcat("chtab", "node=ob1", "openbmc.bmc=10.2.0.2"))
    assert '"ob1","10.2.0.2",' in ok(xcat("tabdump", "openbmc"))
    assert '"ob1"' not in ok(xcat("tabdump", "ipmi"))


# -- bad input: one line each, nothing written ---------------------------------------------


@pytest.mark.parametrize(
    ("args", "out", "error"),
    [
        (["node=bad1", "nosuch.ip=1"], "Table nosuch does not exist.\n", ""),
        (["node=bad1", "hosts.nosuch=1"], "", "Error: hosts.nosuch not a valid table.column "
         "description\n"),
        (["node=bad1", "noderes.discoverynics=eth0"], "", "Error: noderes.discoverynics is not "
         "kept by xcatd: it cannot be set (tabdump shows it empty; see 'Table commands' in the "
         "README for the columns kept)\n"),
        (["nosuch=bad1", "hosts.ip=10.3.0.1"], "", 'Error: No column "nosuch" in table '
         '"nodetype"\n'),
        (["node=bad1", "hosts.ip"], "", "Error: 'hosts.ip' gives no value: write hosts.ip=value\n"),
        (["node=bad1", "hosts.ip=10.3.0.300"], "", "Error: bad1: Invalid value '10.3.0.300' for "
         "attribute 'ip': expected an IPv4 or IPv6 address\n"),
        (["node=nosuch", "hosts.ip=10.3.0.1"], "", "Error: 'nosuch' is neither a node nor a group: "
         "add the node first (nodeadd nosuch groups=...) or define the group (mkdef -t group "
         "nosuch)\n"),
    ],
)  # fmt: skip
def test_chtab_refuses_bad_input_in_one_line_and_writes_nothing(xcat, args, out, error):
    ok(xcat("chdef", "bad1", "groups=badgroup"))
    # Each request also sets a good value: nothing of it may be written.
    rc, stdout, stderr = xcat("chtab", *args[:1], "nodetype.os=written", *args[1:])
    assert (rc, stdout, stderr) == (1, out, error)
    assert ok(xcat("lsdef", "bad1", "-i", "os,ip")) == "Object name: bad1\n    ip=\n    os=\n"


def test_chtab_key_syntax_and_missing_table_are_answered_with_the_usage(xcat):
    rc, out, err = xcat("chtab", "nokey", "hosts.ip=10.3.0.1")
    assert (rc, err) == (1, "") and out.startswith('Incorrect argument "nokey".\nUsage:\n')
    rc, out, err = xcat("chtab", "-d", "node=bad1")
    assert (rc, err) == (1, "") and out.startswith("Missing table name.\nUsage:\n To add")


# -- nodeadd, nodech, noderm ----------------------------------------------------------------


def test_nodeadd_nodech_noderm_man_page_examples(admin):
    assert ok(admin("nodeadd", "node1-node4", "groups=all")) == ""
    ok(admin("nodeadd", "node1-node4", "groups=all,rhel5", "nodetype.os=rhel5"))
    assert ok(admin("nodels", "node1-node4", "nodetype.os")) == (
        "node1: rhel5\nnode2: rhel5\nnode3: rhel5\nnode4: rhel5\n"
    )
    ok(admin("nodech", "node1-node4", "groups,=group1"))  # example 4
    assert ok(admin("nodels", "node1", "groups")) == "node1: group1,all,rhel5\n"
    ok(admin("nodech", "node1-node4", "groups^=group1", "groups,=group2"))  # example 5
    assert ok(admin("lsdef", "node4", "-i", "groups")) == (
        "Object name: node4\n    groups=group2,all,rhel5\n"
    )
    # Selections narrow the noderange (nodech's ==, !=, =~, !~).
    ok(admin("chdef", "node2", "status=booted"))
    ok(admin("nodech", "all", "nodelist.status==booted", "groups,=up"))
    assert ok(admin("nodels", "up")) == "node2\n"
    ok(admin("nodech", "-d", "node1-node4", "nodetype"))
    assert ok(admin("tabdump", "nodetype")) == NODETYPE
    assert ok(admin("noderm", "node1-node3")) == ""
    assert ok(admin("nodels")) == "node4\n"


def test_nodeadd_warns_of_capital_letters_as_xcat(xcat):
    assert xcat("nodeadd", "Cap1", "groups=caps") == (
        0,
        "",
        "Warning: The node name 'Cap1' contains capital letters which may not be resolved "
        "correctly by the dns server.\n",
    )


def test_nodech_refusals(xcat):
    ok(xcat("nodeadd", "nc1", "groups=ncgroup"))
    assert refused(xcat("nodech", "nc1", "groups=ncgroup2", "nosuch.col=1")) == (
        "Error: nosuch.col not a valid table.column description\n"
    )
    assert refused(xcat("nodech", "nc1", "oops")) == "Error: Malformed argument oops ignored.\n"
    assert refused(xcat("nodech", "-d", "nc1", "hosts.ip")) == (
        "Error: . and = not valid in delete mode.\n"
    )
    assert refused(xcat("nodech", "nc[1", "groups=x")).startswith("Error: ")
    assert refused(xcat("nodech", "nc1", "groups=")) == "Error: nc1: a node must keep 'groups'\n"
    assert ok(xcat("nodels", "nc1", "groups")) == "nc1: ncgroup\n"
    assert xcat("nodech", "nc1") == (1, NODECH_USAGE, "")
    assert xcat("nodech", "-h") == (0, NODECH_USAGE, "")
    assert xcat("noderm") == (
        1, "Usage:\n  noderm noderange\n  noderm {-v|--version}\n  noderm [-?|-h|--help]\n", ""
    )  # fmt: skip


def test_nodegrpch_sets_the_group_and_clears_its_nodes_overrides(xcat):
    """The man page's example: every member of the group gets the group's
    value, the nodes' own values that would hide it are cleared."""
    ok(xcat("nodeadd", "ng1-ng3", "groups=nggroup"))
    ok(xcat("nodech", "ng2", "nodehm.mgt=kvm", "nodehm.serialspeed=9600"))
    assert ok(xcat("nodegrpch", "nggroup", "nodehm.mgt=ipmi")) == ""
    assert ok(xcat("nodels", "ng1-ng3", "nodehm.mgt")) == "ng1: ipmi\nng2: ipmi\nng3: ipmi\n"
    assert ok(xcat("nodels", "ng2", "-b", "nodehm.mgt", "nodehm.serialspeed")) == (
        "ng2: nodehm.mgt: ipmi (inherited from group nggroup)\nng2: nodehm.serialspeed: 9600\n"
    )
    # The group's own row holds it (nodehm's columns: node, power, mgt, ...).
    assert ok(xcat("tabdump", "-w", "node==nggroup", "nodehm")).splitlines()[1] == (
        '"nggroup",,"ipmi",,,,,,,,,,,,,'
    )
    assert refused(xcat("nodegrpch", "nggroup", "groups=x")) == (
        "Error: Group membership is not changeable via nodegrpch\n"
    )
    assert refused(xcat("nodegrpch", "nggroup", "nodehm.mgt,=ipmi")) == (
        "Error: ,= and ^= are not supported by nodegrpch\n"
    )
    assert xcat("nodegrpch", "-h") == (
        0,
        "Usage: nodegrpch <group1,group2,...> [table.column=value] [...]\n"
        "       nodegrpch {-v | --version}\n"
        "       nodegrpch [-? | -h | --help]\n",
        "",
    )
    assert xcat("nodegrpch") == (1, NODECH_USAGE, "")  # xCAT prints nodech's usage here
    ok(xcat("nodegrpch", "-d", "nggroup", "nodehm"))  # the group's own row deleted
    assert ok(xcat("nodels", "ng1", "nodehm.mgt")) == "ng1: \n"


# -- tabrestore and tabedit -------------------------------------------------------------------


def test_tabrestore_replaces_a_table_whole_or_not_at_all(admin, tmp_path):
    ok(admin("nodeadd", "r1-r3", "groups=rack"))
    ok(admin("nodech", "r1-r3", "hosts.ip=10.4.0.9"))
    saved = tmp_path / "hosts.csv"
    saved.write_text(HOSTS + '"r1","10.4.0.1",,,,\n"r2","10.4.0.2","r2-a,r2-b",,,\n')
    assert ok(admin("tabrestore", str(saved))) == ""
    restored = HOSTS + '"r1","10.4.0.1",,,,\n"r2","10.4.0.2","r2-a,r2-b",,,\n'
    assert ok(admin("tabdump", "hosts")) == restored  # r3's row is gone
    # One bad row: nothing of the file is written.
    saved.write_text(HOSTS + '"r1","10.4.0.11",,,,\n"r3","not-an-ip",,,,\n')
    assert refused(admin("tabrestore", str(saved))) == (
        "Error: r3: Invalid value 'not-an-ip' for attribute 'ip': expected an IPv4 or IPv6 "
        "address\n"
    )
    assert ok(admin("tabdump", "hosts")) == restored
    # -a adds rows and keeps the others.
    saved.write_text(HOSTS + '"r3","10.4.0.3",,,,\n')
    ok(admin("tabrestore", "-a", str(saved)))
    assert ok(admin("tabdump", "hosts")) == restored + '"r3","10.4.0.3",,,,\n'


def test_tabdump_then_tabrestore_of_a_table_with_conditional_columns(admin, tmp_path):
    # The administrator's backup and restore of one table: mp.id is slotid
    # where mgt=fsp, mp.nodetype hwtype only where mgt=blade; the fsp's
    # empty mp.nodetype is left alone, not refused.
    ok(admin("mkdef", "fsp1", "groups=fsps", "mgt=fsp", "slotid=4", "mpa=amm2"))
    ok(admin("mkdef", "bld1", "groups=blades", "mgt=blade", "id=2", "hwtype=blade"))
    saved = tmp_path / "mp.csv"
    saved.write_text(ok(admin("tabdump", "mp")))
    assert ok(admin("tabrestore", str(saved))) == ""
    assert ok(admin("tabdump", "mp")) == saved.read_text()
    assert ok(admin("lsdef", "fsp1,bld1", "-i", "slotid,hwtype", "-c")) == (
        "bld1: hwtype=blade\nbld1: slotid=\nfsp1: hwtype=\nfsp1: slotid=4\n"
    )


def test_tabrestore_refuses_what_xcat_refuses_and_columns_not_kept(xcat, tmp_path):
    ok(xcat("mkdef", "-t", "group", "-o", "blade", "mgt=blade"))
    ok(xcat("mkdef", "blade05", "groups=blade"))
    mp = tmp_path / "mp.csv"  # the man page's example: each blade's mpa and id worked out
    mp.write_text('#node,mpa,id,comments,disable\n"blade","|\\D+(\\d+)|amm(($1-1)/14+1)|",'
                  '"|\\D+(\\d+)|(($1-1)%14+1)|",,\n')  # fmt: skip
    assert ok(xcat("tabrestore", str(mp))) == ""
    assert (
        ok(xcat("lsdef", "blade05", "-i", "mpa,id", "-c")) == "blade05: id=5\nblade05: mpa=amm1\n"
    )
    noderes = tmp_path / "noderes.csv"  # a column xCAT's object definitions do not have
    noderes.write_text('#node,discoverynics\n"blade05","eth0"\n')
    assert refused(xcat("tabrestore", str(noderes))) == (
        "Error: noderes.discoverynics is not kept by xcatd: it cannot be set (tabdump shows it "
        "empty; see 'Table commands' in the README for the columns kept)\n"
    )
    headless = tmp_path / "hosts.csv"
    headless.write_text('"r1","10.4.0.1",,,,\n')
    assert refused(xcat("tabrestore", str(headless))) == (
        "Error: Data missing header line starting with #\n"
    )
    headless.write_text("#node,ip,nosuch\n")
    assert refused(xcat("tabrestore", str(headless))) == (
        "Error: The header line indicates that column 'nosuch' should exist, which is not "
        "defined in the schema for 'hosts'\n"
    )
    headless.write_text(HOSTS + '"r1","10.4.0.1",,,,,"extra"\n')
    assert refused(xcat("tabrestore", str(headless))) == (
        'Error: Too many fields on line 0: "r1","10.4.0.1",,,,,"extra" | "extra"\n'
    )
    assert refused(xcat("tabrestore", str(tmp_path / "absent.csv"))) == (
        f"Error: Unable to open {tmp_path / 'absent.csv'} for reading.\n"
    )


def test_tabedit_applies_the_edited_table_through_the_editor(admin, cluster, tmp_path):
    ok(admin("nodeadd", "e1-e2", "groups=edit"))
    editor = tmp_path / "editor.py"
    editor.write_text(
        "import sys, pathlib\n"
        "p = pathlib.Path(sys.argv[1])\n"
        'p.write_text(p.read_text().replace(\'"e2","edit"\', \'"e2","edit,gpu"\'))\n'
    )
    env = {**cluster.env, "TABEDITOR": f"{sys.executable} {editor}"}
    assert ok(admin("tabedit", "nodelist", env=env)) == ""
    assert ok(admin("nodels", "gpu")) == "e2\n"
    assert admin("tabedit", "auditlog", env=env) == (
        1,
        "The auditlog and eventlog tables may not be edited. Editing will cause index "
        "regeneration. Use the tabprune command.\n",
        "",
    )


# -- passwd: the BMCs' default credentials, read by administrators only -----------------

PASSWD = "#key,username,password,cryptmethod,authdomain,comments,disable\n"


def test_passwd_rows_are_kept_and_their_passwords_shown_to_administrators_only(
    admin, cluster, tmp_path
):
    ok(admin("chtab", "key=ipmi", "passwd.username=ADMIN", "passwd.password=t0p-secret"))
    ok(admin("chtab", "key=redfish", "passwd.username=root", "passwd.password=rf-secret"))
    ok(admin("chtab", "key=redfish", "passwd.comments=the Redfish BMCs"))
    dumped = PASSWD + (
        '"ipmi","ADMIN","t0p-secret",,,,\n"redfish","root","rf-secret",,,"the Redfish BMCs",\n'
    )
    assert ok(admin("tabdump", "passwd")) == dumped
    assert ok(admin("gettab", "key=ipmi", "passwd.password")) == "t0p-secret\n"
    assert ok(admin("gettab", "username=root", "passwd.key", "passwd.password")) == (
        "passwd.key: redfish\npasswd.password: rf-secret\n"
    )
    # No def command shows them: xCAT has no passwd object type.
    assert admin("lsdef", "-t", "passwd")[0] == 1

    # A user the policy lets read the tables, but not change them.
    creds = credentials_for(cluster, "alice", "user", tmp_path / "alice")
    ok(admin("mkdef", "-t", "policy", "5", "name=alice", "commands=tabdump,gettab", "rule=allow"))
    env = {**cluster.env, "XCAT_CRED_DIR": str(creds)}
    assert ok(admin("tabdump", "passwd", env=env)) == dumped.replace(
        "t0p-secret", "******"
    ).replace("rf-secret", "******")
    assert ok(admin("gettab", "key=ipmi", "passwd.username", "passwd.password", env=env)) == (
        "passwd.username: ADMIN\npasswd.password: ******\n"
    )
    # A node's own BMC password alike, in lsdef and nodels.
    ok(admin("mkdef", "pw1", "groups=pwgroup", "mgt=ipmi", "bmcusername=u", "bmcpassword=n0de-pw"))
    ok(admin("chtab", "priority=5", "policy.commands+=lsdef,nodels"))
    assert ok(admin("lsdef", "pw1", "-i", "bmcusername,bmcpassword", env=env)) == (
        "Object name: pw1\n    bmcpassword=******\n    bmcusername=u\n"
    )
    assert ok(admin("nodels", "pw1", "ipmi.password", env=env)) == "pw1: ******\n"
    assert admin("lsdef", "-w", "bmcpassword==n0de-pw", env=env) == (
        1, "", "Error: -w bmcpassword: only administrators may select objects by a secret\n"
    )  # fmt: skip
    assert ok(admin("nodels", "pw1", "bmcpassword")) == "pw1: n0de-pw\n"  # root reads it

    ok(admin("chtab", "-d", "key=redfish", "passwd"))
    assert ok(admin("tabdump", "passwd")) == PASSWD + '"ipmi","ADMIN","t0p-secret",,,,\n'
    for secret in ("t0p-secret", "rf-secret"):
        assert secret not in cluster.logs()


# -- auditlog and tabprune --------------------------------------------------------------------


def test_the_audit_trail_is_xcats_auditlog_and_tabprune_prunes_it(admin):
    for _ in range(3):
        ok(admin("nodels"))
    dump = _settled_auditlog(admin, at_least=3)
    header, first, *_ = dump.splitlines()
    assert header == (
        "#recid,audittime,userid,clientname,clienttype,command,noderange,args,status,"
        "comments,disable"
    )
    assert first.startswith('"1","') and ',"nodels",,,"Allowed",,' in first
    assert ok(admin("tabprune", "auditlog", "-i", "3")) == "tabprune of auditlog complete.\n"
    assert not ok(admin("tabdump", "-w", "recid<3", "auditlog")).count("\n") > 1
    pruned = ok(admin("tabprune", "auditlog", "-V", "-a"))
    assert pruned.startswith(header + '\n"3","')
    assert admin("tabprune", "auditlog") == (
        1, "One option -p or -i or -n or -a or -d must be supplied.\n", ""
    )  # fmt: skip
    assert admin("tabprune", "nodelist", "-n", "2") == (
        1, "Table nodelist not supported, see tabprune -h for supported tables.\n", ""
    )  # fmt: skip


def _settled_auditlog(admin, at_least: int) -> str:
    """tabdump auditlog once the audit writer has caught up (it writes in batches)."""
    import time

    deadline = time.monotonic() + 10
    while True:
        dump = ok(admin("tabdump", "auditlog"))
        if dump.count("\n") > at_least or time.monotonic() > deadline:
            return dump
        time.sleep(0.1)


def test_tables_data_is_generated_from_schema_pm():
    """The checked-in mapping says where it comes from; each kept column
    names an attribute the object types declare."""
    import json

    from xcatd.store import tables
    from xcatd.store.objtypes import STORED

    data = json.loads(tables.DATA.read_text())
    assert data["generated_by"].startswith("tools/xcat_tables.py")
    assert Path(__file__).parents[1].joinpath("tools/xcat_tables.py").exists()
    hosts = tables.table("hosts")
    assert [c.name for c in hosts.columns] == HOSTS[1:].strip().split(",")
    for table in tables.tables().values():
        for column in table.columns:
            for mapping in column.mappings:
                declared = STORED[mapping.objtype.name]
                assert mapping.attribute in declared.attributes or mapping.attribute == declared.key


def test_nodels_reads_table_columns_as_the_attributes_they_are(xcat):
    ok(xcat("nodeadd", "nl1", "groups=nlgroup", "mgt=ipmi", "ipmi.username=ADMIN"))
    assert ok(xcat("nodels", "nl1", "ipmi.username")) == "nl1: ADMIN\n"
    assert ok(xcat("nodels", "nl1", "mgt", "nodehm.termserver")) == (
        "nl1: mgt: ipmi\nnl1: nodehm.termserver: \n"
    )
    assert refused(xcat("nodels", "nl1", "ipmi.nosuch")) == (
        "Error: ipmi.nosuch not a valid table.column description\n"
    )
