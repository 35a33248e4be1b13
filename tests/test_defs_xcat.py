"""The definition commands as an administrator coming from xCAT knows them:
the same command lines give the same bytes, on the same stream, with the
same exit code.  Expected texts are xCAT's (DBobjectdefs.pm, tabutils.pm,
the man pages); the list of object types in a usage text is this project's.
Each test uses its own names, so one cluster serves the module."""

from __future__ import annotations

import zlib

import pytest

from xcatd import __version__

# What xCAT's usage subroutines print (defmk_usage, defch_usage, defls_usage,
# defrm_usage in DBobjectdefs.pm), with this project's object types.
TYPES = (
    " boottarget group monitoring network node notification osdistro osdistroupdate osimage"
    " policy rack route site zone"
)
TAIL = (
    "The following data object types are supported by xCAT:\n\n"
    f"{TYPES}\n\n\n"
    "Use the '-h' option together with the '-t <object-types>' option to\n"
    " get a list of valid attribute names for each object type.\n\n"
)
USAGE = {
    "mkdef": (
        "\nUsage: mkdef - Create xCAT data object definitions.\n\n"
        "  mkdef [-h | --help ] [-t object-types]\n\n"
        "  mkdef [-V | --verbose] [-t object-types] [--template template-object-name]\n"
        "      [-o object-names] [-z|--stanza ]\n"
        "      [-d | --dynamic] [-w attr==val [-w attr=~val] ...]\n"
        "      [-f | --force] [noderange] [attr=val [attr=val...]]\n\n" + TAIL
    ),
    "chdef": (
        "\nUsage: chdef - Change xCAT data object definitions.\n\n"
        "  chdef [-h | --help ] [-t object-types]\n\n"
        "  chdef [-t object-types] [-o object-names] [-n new-name] [node]\n\n"
        "  chdef [-V | --verbose] [-t object-types] [-o object-names] [-d | --dynamic]\n"
        "    [-z | --stanza] [-m | --minus] [-p | --plus]\n"
        "    [-w attr==val [-w attr=~val] ... ] [noderange] [attr=val [attr=val...]]\n\n\n"
        + TAIL.replace(TYPES, TYPES.strip().replace(" ", ","))
    ),
    "lsdef": (
        "\nUsage: lsdef - List xCAT data object definitions.\n\n"
        "  lsdef [-h | --help ] [-t object-types]\n\n"
        "  lsdef [-l|--long] [-a|--all] [-t *object-types*] [-z|--stanza]\n"
        "        [-i attr-list] [--template [template-object-name]] \n\n"
        "  lsdef [-V | --verbose] [-t object-types] [-o object-names]\n"
        "        [ -l | --long] [-s | --short] [-a | --all] [-z | --stanza ] [-S]\n"
        "        [-i attr-list] [-w attr==val [-w attr=~val] ...] [noderange]\n\n\n" + TAIL
    ),
    "rmdef": (
        "\nUsage: rmdef - Remove xCAT data object definitions.\n\n"
        "  rmdef [-h | --help ] [-t object-types]\n\n"
        "  rmdef [-V | --verbose] [-t object-types] [-a | --all] [-f | --force]\n"
        "    [-o object-names] [-C | --cleanup] [noderange]\n\n\n" + TAIL
    ),
}
NODELS_USAGE = (
    "Usage:\n"
    "  nodels [noderange] [-b|--blame] [-H|--with-fieldname] [table.attribute | shortname] "
    "[-S][...]\n"
    "  nodels {-v|--version}\n"
    "  nodels [-?|-h|--help]\n"
)
NO_GROUPS = "Error: Attribute 'groups' is not specified for node '{}', skipping to the next node.\n"
# What xCAT's mkdef and chdef print last once some object has failed (DBobjectdefs.pm).
SOME_FAILED = (
    "Error: One or more errors occured when attempting to create or modify xCAT object "
    "definitions.\n"
)


def ok(result) -> str:
    rc, out, err = result
    assert (rc, err) == (0, ""), err
    return out


def created(n: int) -> str:
    return f"{n} object definitions have been created or modified.\n"


def not_found(*names: str, objtype: str = "node") -> str:
    """What xCAT's def commands print on stderr for objects that do not exist."""
    return "".join(
        f"Error: Could not find an object named '{name}' of type '{objtype}'.\n" for name in names
    )


# -- lsdef -l -z, -i -z ---------------------------------------------------------------


def test_the_seed_step_saves_an_osimage_as_a_stanza_file_and_it_reads_back(xcat, tmp_path):
    image = "rhels6.3-ppc64-netboot-service"
    rootimgdir = "/install/netboot/rhels6.3/ppc64/service"
    ok(xcat("mkdef", "-t", "osimage", "-o", image, "provmethod=netboot", "osvers=rhels6.3",
            "osarch=ppc64", "profile=service", f"rootimgdir={rootimgdir}"))  # fmt: skip
    stanza = ok(xcat("lsdef", "-t", "osimage", "-l", image, "-z"))
    assert stanza == (
        "# <xCAT data object stanza file>\n\n"
        f"{image}:\n"
        "    objtype=osimage\n"
        "    osarch=ppc64\n"
        "    osvers=rhels6.3\n"
        "    profile=service\n"
        "    provmethod=netboot\n"
        f"    rootimgdir={rootimgdir}\n"
    )
    assert ok(xcat("lsdef", "-t", "osimage", image, "-z")) == stanza  # -l adds nothing to -z
    saved = tmp_path / "myservice.def"
    saved.write_text(stanza)
    assert ok(xcat("rmdef", "-t", "osimage", image)) == "1 object definitions have been removed.\n"
    assert ok(xcat("mkdef", "-z", stdin=saved.read_text())) == created(1)
    assert ok(xcat("lsdef", "-t", "osimage", "-l", image, "-z")) == stanza


def test_i_with_z_gives_the_listed_attributes_sorted_even_when_empty(xcat):
    ok(xcat("mkdef", "-t", "osimage", "-o", "iz-img", "provmethod=netboot", "osvers=debian12"))
    assert ok(
        xcat("lsdef", "-t", "osimage", "iz-img", "-i", "provmethod,pkglist,osvers", "-z")
    ) == (
        "# <xCAT data object stanza file>\n\n"
        "iz-img:\n"
        "    objtype=osimage\n"
        "    osvers=debian12\n"
        "    pkglist=\n"
        "    provmethod=netboot\n"
    )


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["-l", "-s"], "The flags '-l' and '-s' cannot be used together."),
        (["-i", "ip", "-s"], "The flags '-i' and '-s' cannot be used together."),
        (["-c"], "The flags '-c' and '-i' must be used together."),
        (["--osimage", "-i", "ip"], "The flags '-i' and '--osimage' cannot be used together."),
        (["--osimage", "-z"], "The flags '-z' and '--osimage' cannot be used together."),
    ],
)
def test_lsdef_refuses_what_xcat_refuses_together_with_its_usage(xcat, args, error):
    assert xcat("lsdef", *args) == (1, USAGE["lsdef"], f"Error: {error}\n")


# -- chdef creates ---------------------------------------------------------------------


def test_chdef_creates_a_node_that_does_not_exist(xcat):
    assert ok(xcat("chdef", "-t", "node", "-o", "newnode", "groups=all")) == (
        created(1) + "New object definitions 'newnode' have been created.\n"
    )
    assert ok(xcat("lsdef", "newnode")) == "Object name: newnode\n    groups=all\n"
    assert ok(xcat("chdef", "newnode", "status=booted")) == created(1)  # exists now


def test_chdef_creates_a_noderange_and_other_types(xcat):
    assert ok(xcat("chdef", "cr[1-3]", "groups=crg")) == (
        created(3) + "New object definitions 'cr1,cr2,cr3' have been created.\n"
    )
    assert ok(xcat("nodels", "crg")) == "cr1\ncr2\ncr3\n"
    assert ok(xcat("chdef", "-t", "osimage", "-o", "cr-img", "provmethod=netboot")) == (
        created(1) + "New object definitions 'cr-img' have been created.\n"
    )
    network = ok(xcat("chdef", "-t", "network", "-o", "crnet", "net=10.8.0.0", "mask=255.255.0.0"))
    assert network == created(1) + "New object definitions 'crnet' have been created.\n"


def test_a_group_some_node_lists_or_the_site_is_not_new(xcat):
    ok(xcat("mkdef", "lg1", "groups=listedg"))
    assert ok(xcat("chdef", "-t", "group", "-o", "listedg", "netboot=xnba")) == created(1)
    assert ok(xcat("chdef", "-t", "group", "-o", "emptyg", "netboot=xnba")) == (
        created(1) + "New object definitions 'emptyg' have been created.\n"
    )
    assert ok(xcat("chdef", "-t", "site", "-o", "clustersite", "timezone=UTC")) == created(1)


def test_a_new_node_without_groups_writes_nothing_for_any_object(xcat):
    ok(xcat("mkdef", "keep1", "groups=keepg"))
    assert xcat("chdef", "keep1,lack1,lack2", "status=booted") == (
        1,
        "",
        NO_GROUPS.format("lack1") + NO_GROUPS.format("lack2") + SOME_FAILED,
    )
    stanza = (
        "keep1:\n    objtype=node\n    status=booted\n\n"
        "lack3:\n    objtype=node\n    status=booted\n"
    )
    assert xcat("chdef", "-z", stdin=stanza) == (1, "", NO_GROUPS.format("lack3") + SOME_FAILED)
    assert ok(xcat("lsdef", "keep1")) == "Object name: keep1\n    groups=keepg\n"
    assert xcat("nodels", "lack1,lack2,lack3")[2] == (
        "Error: Invalid nodes and/or groups in noderange: lack1,lack2,lack3\n"
    )


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["-m", "mghost", "groups=all"],
         "The '-m' option is not valid since the 'mghost' definition does not exist."),
        (["-t", "network", "-o", "halfnet", "net=10.9.0.0"],
         "Net or mask value should not be empty for xCAT network object 'halfnet'."),
    ],
)  # fmt: skip
def test_what_chdef_cannot_create_is_refused_as_xcat_refuses_it(xcat, args, error):
    assert xcat("chdef", *args) == (1, "", f"Error: {error}\n" + SOME_FAILED)


def test_mkdef_says_what_a_new_object_lacks_in_xcat_s_words(xcat):
    assert xcat("mkdef", "-t", "network", "-o", "maskless", "net=10.10.0.0") == (
        1,
        "",
        "Error: Net or mask value should not be empty for xCAT network object 'maskless'.\n"
        + SOME_FAILED,
    )
    assert xcat("mkdef", "lack4", "status=booted") == (
        1,
        "",
        NO_GROUPS.format("lack4") + SOME_FAILED,
    )


# -- objects that do not exist -----------------------------------------------------------


def test_lsdef_of_a_node_that_does_not_exist(xcat):
    nothing = "No object definitions have been found\n"
    assert xcat("lsdef", "-t", "node", "nosuch") == (1, nothing, not_found("nosuch"))
    header = "# <xCAT data object stanza file>\n"
    assert xcat("lsdef", "-z", "nosuch") == (1, header, not_found("nosuch"))


def test_lsdef_lists_the_objects_that_exist_and_names_the_others(xcat):
    ok(xcat("mkdef", "ex[1-2]", "groups=exg"))
    assert xcat("lsdef", "ex1,nosuch1,ex2,nosuch2", "-s") == (
        1,
        "ex1  (node)\nex2  (node)\n",
        not_found("nosuch1", "nosuch2"),
    )
    ok(xcat("mkdef", "-t", "osimage", "-o", "ex-img", "provmethod=netboot"))
    assert xcat("lsdef", "-t", "osimage", "-o", "ex-img,no-img") == (
        1,
        "Object name: ex-img\n    provmethod=netboot\n",
        not_found("no-img", objtype="osimage"),
    )
    assert xcat("lsdef", "-t", "group", "-o", "nosuchgroup")[2] == not_found(
        "nosuchgroup", objtype="group"
    )


def test_with_w_a_missing_name_is_just_not_selected(xcat):
    ok(xcat("mkdef", "wn1", "groups=wng"))
    assert xcat("lsdef", "-w", "status==nope", "wn1,nosuch") == (
        0,
        "No object definitions have been found\n",
        "",
    )
    assert ok(xcat("lsdef", "-w", "status==nope")) == "No object definitions have been found\n"


def test_a_type_without_objects(cluster):
    def run(*args: str) -> tuple[int, str, str]:
        result = cluster.run("lsdef", *args)
        return result.returncode, result.stdout, result.stderr

    assert run() == (1, "", "Error: Could not get objects of type 'node'.\n")
    assert run("-t", "osimage", "-l") == (
        1,
        "",
        "Error: Could not get objects of type 'osimage'.\n",
    )
    assert run("nosuch") == (0, "Could not find any objects of type 'node'.\n", "")
    assert run("-t", "network", "-o", "nonet", "-z") == (
        0,
        "Could not find any objects of type 'network'.\n# <xCAT data object stanza file>\n",
        "",
    )
    shown = run("-a", "-s")
    assert shown[0] == 0
    assert shown[1].startswith(
        "Could not find any objects of type 'node'.\nCould not find any objects of type 'group'.\n"
    )
    assert "clustersite (site)\n" in shown[1]  # one space with -a, as xCAT prints it


def test_rmdef_removes_what_exists_and_names_the_rest(xcat):
    ok(xcat("mkdef", "rx[1-2]", "groups=rxg"))
    assert xcat("rmdef", "rx1,nosuch,rx2") == (
        1,
        "2 object definitions have been removed.\n",
        not_found("nosuch"),
    )
    assert xcat("nodels", "rx1")[2] == "Error: Invalid nodes and/or groups in noderange: rx1\n"


def test_nodels_keeps_the_noderange_message(xcat):
    assert xcat("nodels", "nosuch") == (
        1,
        "",
        "Error: Invalid nodes and/or groups in noderange: nosuch\n",
    )


# -- usage, help and version ------------------------------------------------------------


@pytest.mark.parametrize("command", ["mkdef", "chdef", "rmdef"])
def test_without_arguments_the_usage_is_printed(xcat, command):
    assert xcat(command) == (0, USAGE[command], "")


@pytest.mark.parametrize(
    ("command", "option"),
    [("mkdef", "-h"), ("chdef", "--help"), ("rmdef", "-h"), ("lsdef", "-h"), ("lsdef", "-?")],
)
def test_h_prints_the_usage(xcat, command, option):
    assert xcat(command, option) == (0, USAGE[command], "")


def test_h_with_a_type_lists_its_attributes_in_every_def_command(xcat):
    listing = ok(xcat("lsdef", "-t", "network", "-h"))
    assert listing.startswith("The valid attribute names for object type 'network' are:\n")
    for command in ("mkdef", "chdef", "rmdef"):
        assert ok(xcat(command, "-t", "network", "-h")) == listing


def test_h_lists_xcat_s_attributes_as_xcat_does(xcat):
    # DBobjectdefs.pm: a header, "Attribute          Description", then each
    # attribute sorted, "attr:" and two tabs (one from 7 characters on) before
    # its description from Schema.pm, a blank line between.
    listing = ok(xcat("lsdef", "-t", "network", "-h"))
    assert listing.startswith(
        "The valid attribute names for object type 'network' are:\n"
        "Attribute          Description\n\n"
        "ddnsdomain:\tA domain to be combined with nodename to construct FQDN for DDNS updates "
    )
    assert (
        "\n\nmtu:\t\tThe default MTU for the network, If multiple networks are applied to the "
        "same nic on the SN and/or CN, the MTU shall be the same for those networks.\n\n"
    ) in listing
    assert listing.endswith("\n\nvlanid:\t\tThe vlan ID if this network is within a vlan.\n")
    nodes = ok(xcat("lsdef", "-t", "node", "-h"))
    for attribute in ("nodetype:\t", "hidden:\t\t", "nicips:\t", "vmhost:\t\t", "switchtype:\t"):
        assert f"\n\n{attribute}" in nodes
    assert ok(xcat("lsdef", "-t", "node", "-h", "-i", "nicips.eth0,arch")) == (
        "Attribute          Description\n\n"
        "arch:\t\tThe hardware architecture of this node.  Valid values: x86_64, ppc64, x86, "
        "ia64, aarch64.\n\n"
        "nicips:\t\tComma-separated list of IP addresses per NIC.\n"
        "                To specify one ip address per NIC:\n"
        "                    <nic1>!<ip1>,<nic2>!<ip2>,..., for example, "
        "eth0!10.0.0.100,ib0!11.0.0.100\n"
        "                To specify multiple ip addresses per NIC:\n"
        "                    <nic1>!<ip1>|<ip2>,<nic2>!<ip1>|<ip2>,..., for example, "
        "eth0!10.0.0.100|fd55::214:5eff:fe15:849b,ib0!11.0.0.100|2001::214:5eff:fe15:849a. "
        "The xCAT object definition commands support to use nicips.<nicname> as the sub "
        "attributes.\n"
        "                Note: The primary IP address must also be stored in the hosts.ip "
        "attribute. The nichostnamesuffixes should specify one hostname suffix for each ip "
        "address.\n"
    )


def test_xcat_s_attributes_are_stored_and_listed(xcat):
    # The examples: attributes xCAT has that this project does not act on.
    ok(xcat("mkdef", "xa1", "groups=xag", "nodetype=osi", "hidden=0", "nicips.eth0=10.40.0.1"))
    ok(xcat("mkdef", "-t", "network", "-o", "xanet", "net=10.40.0.0", "mask=255.255.0.0",
            "mtu=9000"))  # fmt: skip
    ok(xcat("chdef", "-t", "site", "dhcplease=3600"))
    ok(xcat("mkdef", "-t", "osimage", "-o", "xaimg", "imagetype=linux", "nfsrootopts=nolock"))
    assert ok(xcat("lsdef", "xa1")) == (
        "Object name: xa1\n    groups=xag\n    hidden=0\n    nicips.eth0=10.40.0.1\n"
        "    nodetype=osi\n"
    )
    assert ok(xcat("lsdef", "-t", "network", "xanet", "-i", "mtu")) == (
        "Object name: xanet\n    mtu=9000\n"
    )
    assert ok(xcat("lsdef", "-t", "site", "-i", "dhcplease")) == (
        "Object name: clustersite\n    dhcplease=3600\n"
    )
    assert ok(xcat("lsdef", "-t", "osimage", "xaimg", "-i", "nfsrootopts")) == (
        "Object name: xaimg\n    nfsrootopts=nolock\n"
    )
    assert xcat("chdef", "xa1", "colour=blue")[0] == 1  # unknown ones stay refused


@pytest.mark.parametrize(
    ("args", "usage"),
    [
        (["chdef", "-t", "node"], True),
        (["rmdef", "-t", "osimage"], True),
        (["chdef", "status=booted"], False),
        (["mkdef", "-t", "osimage"], False),
        (["rmdef", "-f"], False),
    ],
)
def test_no_object_names(xcat, args, usage):
    expected = USAGE[args[0]] if usage else ""
    assert xcat(*args) == (1, expected, "Error: No object names were provided.\n")


@pytest.mark.parametrize("command", ["lsdef", "mkdef", "chdef", "rmdef"])
@pytest.mark.parametrize("option", ["-v", "--version"])
def test_v_prints_the_version_as_xcat_does(xcat, command, option):
    assert xcat(command, option) == (0, f"{command} - Version {__version__}\n", "")


def test_nodels_v_and_h(xcat):
    assert xcat("nodels", "-v") == (0, f"Version {__version__}\n", "")
    assert xcat("nodels", "--version") == (0, f"Version {__version__}\n", "")
    assert xcat("nodels", "-h") == (0, NODELS_USAGE, "")


# -- the site --------------------------------------------------------------------------


def test_t_site_without_a_name_means_clustersite(xcat):
    assert ok(xcat("chdef", "-t", "site", "domain=cluster.example")) == created(1)
    assert "\n    domain=cluster.example\n" in ok(xcat("lsdef", "-t", "site", "-l"))
    assert ok(xcat("lsdef", "-t", "site", "-i", "domain", "-c")) == (
        "clustersite: domain=cluster.example\n"
    )
    assert ok(xcat("lsdef", "-t", "site", "-s")) == "clustersite  (site)\n"


# -- chdef -n ---------------------------------------------------------------------------


def test_chdef_n_says_what_it_renamed(xcat):
    ok(xcat("mkdef", "rn1,rn2", "groups=rng"))
    assert xcat("chdef", "rn1", "-n", "rn3") == (
        0,
        "Changed the object name from rn1 to rn3.\n",
        "",
    )
    assert ok(xcat("nodels", "rng")) == "rn2\nrn3\n"
    assert xcat("chdef", "rn3", "-n", "rn2") == (1, "", "Error: Object rn2 already exists.\n")
    assert xcat("chdef", "rnghost", "-n", "rnnew") == (
        1,
        "",
        "Error: The rnghost is not a valid object.\n",
    )


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["-p", "rn2", "-n", "rn4", "groups=x"],
         "Cannot combine '-n' and '-d','-p','-m','-z','-w' options."),
        (["rn2,rn3", "-n", "rn4"],
         "The '-n' option (changing object name) can only work on one object."),
        (["rn2", "-n", "a/b"],
         "The new object name 'a/b' is not valid.Please refer to \"man xcatdb\" for the valid "
         "\"xCAT Object Name Format\" "),
    ],
)  # fmt: skip
def test_chdef_n_refuses_with_its_usage(xcat, args, error):
    assert xcat("chdef", *args) == (1, USAGE["chdef"], f"Error: {error}\n")


# -- what fails, what exists -------------------------------------------------------------


def test_one_failing_object_closes_with_xcat_s_line_and_nothing_is_written(xcat):
    assert xcat("mkdef", "fo1,fo2", "groups=fog", "ip=10.0.0.300") == (
        1,
        "",
        "Error: fo1: Invalid value '10.0.0.300' for attribute 'ip': expected an IPv4 or IPv6 "
        "address\n"
        "Error: fo2: Invalid value '10.0.0.300' for attribute 'ip': expected an IPv4 or IPv6 "
        "address\n" + SOME_FAILED,
    )
    stanza = "fo3:\n    objtype=node\n    groups=fog\n\nfo4:\n    objtype=node\n"
    assert xcat("mkdef", "-z", stdin=stanza) == (1, "", NO_GROUPS.format("fo4") + SOME_FAILED)
    assert xcat("nodels", "fo1,fo3")[2] == (
        "Error: Invalid nodes and/or groups in noderange: fo1,fo3\n"
    )


def test_an_unknown_attribute_fails_the_whole_mkdef_without_the_closing_line(xcat):
    # xCAT's mkdef refuses unknown attributes before it looks at any object;
    # its chdef goes on and closes with its line.
    unknown = (
        "Error: {}: 'colour' is not a valid attribute name for an object type of 'node' "
        "(see lsdef -t node -h)\n"
    )
    assert xcat("mkdef", "ua1", "groups=uag", "colour=blue") == (1, "", unknown.format("ua1"))
    assert xcat("chdef", "ua2", "groups=uag", "colour=blue") == (
        1,
        "",
        unknown.format("ua2") + SOME_FAILED,
    )


EXISTS = (
    "Warning: A definition for '{}' already exists. No changes will be made.  "
    "Run again with '-f' option to force replace.\n"
)


def test_mkdef_of_an_existing_object_warns_and_creates_the_others(xcat):
    ok(xcat("mkdef", "ae1", "groups=aeg", "ip=10.11.0.1"))
    assert xcat("mkdef", "ae1,ae2", "groups=aeg2") == (0, created(1), EXISTS.format("ae1"))
    assert ok(xcat("lsdef", "ae1,ae2")) == (
        "Object name: ae1\n    groups=aeg\n    ip=10.11.0.1\nObject name: ae2\n    groups=aeg2\n"
    )
    assert xcat("mkdef", "ae1,ae2", "groups=aeg2") == (
        1,
        "",
        EXISTS.format("ae1") + EXISTS.format("ae2")
        + "Error: 0 object definitions have been created or modified.\n",
    )  # fmt: skip
    # With an object that fails, the warning still comes and nothing is written.
    assert xcat("mkdef", "ae1,ae3", "status=booted") == (
        1,
        "",
        EXISTS.format("ae1") + NO_GROUPS.format("ae3") + SOME_FAILED,
    )


def test_mkdef_of_an_existing_network_is_an_error_even_with_f(xcat):
    ok(xcat("mkdef", "-t", "network", "-o", "exnet", "net=10.12.0.0", "mask=255.255.0.0"))
    for force in ([], ["-f"]):
        assert xcat("mkdef", *force, "-t", "network", "-o", "exnet", "net=10.13.0.0",
                    "mask=255.255.0.0") == (
            1,
            "",
            "Error: A network definition called 'exnet' already exists. Cannot create a "
            "definition for 'exnet'.\n" + SOME_FAILED,
        )  # fmt: skip


# -- bad options and types ---------------------------------------------------------------


@pytest.mark.parametrize("command", ["lsdef", "mkdef", "chdef", "rmdef"])
# `lsdef -t` alone is one too: its usage lists the object types.
@pytest.mark.parametrize("args", [["-Q"], ["--nosuch", "n1"], ["-o"], ["-t"]])
def test_a_bad_option_prints_xcat_s_words_and_the_usage(xcat, command, args):
    assert xcat(command, *args) == (1, USAGE[command], "Error: Invalid option..\n")


@pytest.mark.parametrize("command", ["lsdef", "mkdef", "chdef"])
def test_C_and_x_are_refused_in_xcats_words(xcat, command):
    # DBobjectdefs.pm processArgs: the four commands parse them, then refuse.
    assert xcat(command, "-C", "n1") == (
        1, USAGE[command], f"Error: Option '-C' can not be used with {command}.\n"
    )  # fmt: skip
    assert xcat(command, "-x") == (
        1, "", "Error: The '-x' (XML format) option is not yet implemented.\n"
    )  # fmt: skip


@pytest.mark.parametrize(
    "args",
    [
        ["lsdef", "-t", "gizmo"],
        ["lsdef", "-t", "node,gizmo", "-s"],
        ["mkdef", "-t", "gizmo", "-o", "x1", "a=b"],
        ["chdef", "-t", "gizmo", "-o", "x1", "a=b"],
        ["rmdef", "-t", "gizmo", "-o", "x1"],
        ["lsdef", "-t", "gizmo", "-h"],
    ],
)
def test_a_bad_type_in_xcat_s_words_for_every_def_command(xcat, args):
    assert xcat(*args) == (1, "", "Error: \nType 'gizmo' is not a valid xCAT object type.\n")


@pytest.mark.parametrize("command", ["mkdef", "chdef"])
def test_several_types_do_not_take_attribute_values(xcat, command):
    assert xcat(command, "-t", "node,group", "-o", "mt1", "groups=mtg") == (
        1,
        "",
        "Error: Cannot combine multiple types with 'att=val' pairs on the command line.\n",
    )


def test_rmdef_of_several_types_removes_objects_of_the_first(xcat):
    ok(xcat("mkdef", "mt2", "groups=mtg"))
    assert ok(xcat("rmdef", "-t", "node,group", "-o", "mt2")) == (
        "1 object definitions have been removed.\n"
    )


# -- lsdef forms -------------------------------------------------------------------------


def test_lsdef_s_z_gives_the_names_as_stanzas(xcat):
    ok(xcat("mkdef", "sz2,sz10", "groups=szg"))
    assert ok(xcat("lsdef", "-s", "-z", "szg")) == (
        "# <xCAT data object stanza file>\n\nsz10:\n\nsz2:\n"
    )


def test_lsdef_sorts_names_as_xcat_does(xcat):
    ok(xcat("mkdef", "so2,so10,so1", "groups=sog"))
    assert ok(xcat("lsdef", "-s", "so2,so10,so1")) == ("so1  (node)\nso10  (node)\nso2  (node)\n")
    for name in ("b-img", "a-img"):
        ok(xcat("mkdef", "-t", "osimage", "-o", name, "provmethod=netboot"))
    assert ok(xcat("lsdef", "-t", "osimage", "-o", "b-img,a-img", "-s")) == (
        "a-img  (osimage)\nb-img  (osimage)\n"
    )
    assert xcat("lsdef", "-t", "osimage", "-o", "z-img,b-img,y-img", "-s") == (
        1,
        "b-img  (osimage)\n",
        not_found("y-img", "z-img", objtype="osimage"),
    )


def test_a_group_s_members_in_long_and_stanza_output(xcat):
    ok(xcat("mkdef", "gmz1,gmz2", "groups=gmz"))
    ok(xcat("mkdef", "-t", "group", "-o", "gmzempty", "netboot=xnba"))
    assert ok(xcat("lsdef", "-t", "group", "-o", "gmz,gmzempty")) == (
        "Object name: gmz\n    members=gmz1,gmz2\n"
        "Object name: gmzempty\n    grouptype=static\n    members=\n    netboot=xnba\n"
    )
    assert ok(xcat("lsdef", "-t", "group", "-o", "gmz,gmzempty", "-z")) == (
        "# <xCAT data object stanza file>\n\n"
        "gmz:\n    objtype=group\n    members=gmz1,gmz2\n\n"
        "gmzempty:\n    objtype=group\n    grouptype=static\n    members=\n    netboot=xnba\n"
    )


def test_lsdef_t_site_with_a_name_lists_the_site_and_names_the_name(xcat):
    site = ok(xcat("lsdef", "-t", "site", "-o", "clustersite"))
    assert site.startswith("Object name: clustersite\n")
    assert xcat("lsdef", "-t", "site", "-o", "foo") == (1, site, not_found("foo", objtype="site"))
    assert xcat("lsdef", "-t", "site", "foo") == (1, site, not_found("foo", objtype="site"))


def test_lsdef_a_z_is_every_object_as_stanzas(cluster):
    assert cluster.run("mkdef", "az1", "groups=azg").returncode == 0
    result = cluster.run("lsdef", "-a", "-z")
    assert (result.returncode, result.stderr) == (0, "")
    notes, _, stanzas = result.stdout.partition("# <xCAT data object stanza file>\n")
    empty = ["osimage", "network", "route", "monitoring", "notification", "boottarget", "rack",
             "osdistro", "osdistroupdate", "zone"]  # fmt: skip
    assert notes == "".join(f"Could not find any objects of type '{t}'.\n" for t in empty)
    assert "\naz1:\n    objtype=node\n    groups=azg\n" in stanzas
    assert "\nazg:\n    objtype=group\n    members=az1\n" in stanzas
    assert stanzas.startswith("\nclustersite:\n    objtype=site\n")
    names = cluster.run("lsdef", "-a", "-s", "-z").stdout.partition("file>\n")[2]
    assert names.startswith("\nclustersite:\n\naz1:\n\nazg:\n\n")


# -- rmdef of groups ---------------------------------------------------------------------


def test_rmdef_of_a_group_takes_it_out_of_its_members_groups(xcat):
    ok(xcat("mkdef", "rg1", "groups=rgkeep,rgdef,rglisted"))
    ok(xcat("mkdef", "rg2", "groups=rgdef"))
    ok(xcat("chdef", "-t", "group", "-o", "rgdef", "netboot=xnba"))
    assert ok(xcat("rmdef", "-t", "group", "-o", "rgdef,rglisted")) == (
        "2 object definitions have been removed.\n"
    )
    assert ok(xcat("nodels", "rg1,rg2", "groups")) == "rg1: rgkeep\nrg2: \n"
    assert xcat("lsdef", "-t", "group", "-o", "rgdef,rglisted")[2] == not_found(
        "rgdef", "rglisted", objtype="group"
    )


def test_rmdef_of_a_dynamic_group_leaves_the_nodes(xcat):
    ok(xcat("mkdef", "rd1", "groups=rdg", "status=rdstate"))
    ok(
        xcat(
            "mkdef", "-t", "group", "-o", "rddyn", "grouptype=dynamic", "wherevals=status==rdstate"
        )
    )
    assert ok(xcat("lsdef", "-t", "group", "-o", "rddyn", "-i", "members")) == (
        "Object name: rddyn\n    members=rd1\n"
    )
    assert ok(xcat("rmdef", "-t", "group", "-o", "rddyn")) == (
        "1 object definitions have been removed.\n"
    )
    assert ok(xcat("nodels", "rd1", "groups")) == "rd1: rdg\n"


# -- nodels table.column -----------------------------------------------------------------


def test_nodels_names_the_column_only_with_H_or_several_columns_as_xcat(xcat):
    # xCAT's nodels (tabutils.pm) starts at $terse = 2 and counts one down per
    # table.column: with one, no label (`blade1: blade`, nodels.1 example 6);
    # with two or -H, `node: table.column: value`.  An empty value prints as
    # `node: `: the client (Client.pm) appends ": " and the empty contents.
    ok(xcat("mkdef", "ns1", "groups=nsg", "status=booted"))
    ok(xcat("mkdef", "ns2", "groups=nsg"))
    assert ok(xcat("nodels", "nsg", "nodelist.status")) == "ns1: booted\nns2: \n"
    assert ok(xcat("nodels", "nsg", "-H", "nodelist.status")) == (
        "ns1: nodelist.status: booted\nns2: nodelist.status: \n"
    )
    assert ok(xcat("nodels", "ns1", "nodelist.groups", "nodelist.status")) == (
        "ns1: nodelist.groups: nsg\nns1: nodelist.status: booted\n"
    )


def test_nodels_man_page_examples_select_by_column_and_list_a_whole_table(xcat):
    # nodels.1 examples 2, 7, 8 and 9: a table's every column, selections
    # (==, =~/re/) that narrow the nodes and are not shown, names sorted by
    # characters (blade10 before blade2) as xCAT's output there shows.
    ok(xcat("mkdef", "nlb1-nlb3,nlb10", "groups=nlblade", "mgt=blade", "mpa=amm1"))
    ok(xcat("chdef", "-t", "group", "nlblade", r"id=|\D+(\d+)|$1|"))
    ok(xcat("mkdef", "nlr1,nlr2", "groups=nlrack", "rack=2", "switch=nlsw2", "installnic=eth0"))
    ok(xcat("mkdef", "nlr3", "groups=nlrack", "rack=3"))
    assert ok(xcat("nodels", "nlblade,nlrack", "mp.mpa==amm1")) == "nlb1\nnlb10\nnlb2\nnlb3\n"
    assert ok(xcat("nodels", "nlblade,nlrack", "nodepos.rack==2", "switch.switch")) == (
        "nlr1: switch.switch: nlsw2\nnlr2: switch.switch: nlsw2\n"
    )
    assert ok(xcat("nodels", "nlblade", "mp.mpa=~/^amm.*/", "mp.id")) == (
        "nlb1: mp.id: 1\nnlb10: mp.id: 10\nnlb2: mp.id: 2\nnlb3: mp.id: 3\n"
    )
    assert ok(xcat("nodels", "nlrack", "nodepos.rack!=2")) == "nlr3\n"
    whole = ok(xcat("nodels", "nlr1", "noderes")).splitlines()
    # The columns with a value first, then every other one of the table, empty.
    assert whole[:3] == [
        "nlr1: noderes.installnic: eth0",
        "nlr1: noderes.node: nlr1",
        "nlr1: noderes.servicenode: ",
    ]
    assert len(whole) == 22 and "nlr1: noderes.primarynic: " in whole


def test_noderange_3_examples(xcat):
    ok(xcat("mkdef", "nrx1-nrx10", "groups=nrx"))
    ok(xcat("mkdef", "nrf1n1-nrf1n3,nrf2n1-nrf2n3,nrf3n1", "groups=nrframes"))
    ok(xcat("chdef", "nrx2,nrx7", "cons=hmc"))
    # 2: exclusion has precedence, 3: single exclusions
    assert ok(xcat("nodels", "nrx1-nrx10,-nrx3-nrx5,nrx4")).split() == (
        ["nrx1", "nrx10", "nrx2", "nrx6", "nrx7", "nrx8", "nrx9"]
    )
    assert ok(xcat("nodels", "nrx1-nrx10,-nrx3,-nrx5")).split() == (
        ["nrx1", "nrx10", "nrx2", "nrx4", "nrx6", "nrx7", "nrx8", "nrx9"]
    )
    # 7: a regular expression matches whole names
    assert ok(xcat("nodels", "/nrx[23].*")) == "nrx2\nnrx3\n"
    # 8: a table.column selection is the attribute the column is (other
    # tests' nodes have cons=hmc too: these are the ones of nrx)
    for selection in ("nodehm.cons==hmc", "nodehm.cons=~hmc", "nodehm.cons=~/^h/"):
        assert ok(xcat("nodels", f"nrx@{selection}")) == "nrx2\nnrx7\n"
    # 9: the nodes of the first two frames
    assert ok(xcat("nodels", "nrf[1-2]n[1-3]")).split() == (
        ["nrf1n1", "nrf1n2", "nrf1n3", "nrf2n1", "nrf2n2", "nrf2n3"]
    )


def test_lsdef_i_names_the_attributes_a_type_does_not_have(xcat):
    # DBobjectdefs.pm defls: an error for each, the others listed; rc 1.
    ok(xcat("mkdef", "ia1", "groups=iag", "arch=ppc64le"))
    assert xcat("lsdef", "ia1", "-i", "arch,nosuch") == (
        1,
        "Object name: ia1\n    arch=ppc64le\n",
        "Error: 'nosuch' is not a valid attribute name for an object type of 'node'.\n",
    )
    assert xcat("lsdef", "ia1", "-i", "nosuch") == (
        1, "", "Error: 'nosuch' is not a valid attribute name for an object type of 'node'.\n"
    )  # fmt: skip
    rc, out, _ = xcat("lsdef", "-t", "site", "-i", "anykey")  # the site's are not checked
    assert (rc, out) == (0, "Object name: clustersite\n    anykey=\n")


def test_lsdef_V_says_which_table_row_and_column_hold_each_value(xcat):
    # lsdef.1 example 13, in DBobjUtils.pm getobjdefs' words: a tab, then the
    # table, its key and the column (for a conditional column, the one whose
    # condition holds); other types' key after a space.
    ok(xcat("mkdef", "vb1", "groups=vbg", "mgt=blade", "id=7", "mpa=amm7"))
    ok(xcat("mkdef", "vf1", "groups=vbg", "mgt=fsp", "slotid=4"))
    assert ok(xcat("lsdef", "-V", "-l", "-t", "node", "-o", "vb1,vf1")) == (
        "Object name: vb1\n"
        "    groups=vbg\t(Table:nodelist - Key:node - Column:groups)\n"
        "    id=7\t(Table:ppc - Key:node - Column:id)\n"
        "    mgt=blade\t(Table:nodehm - Key:node - Column:mgt)\n"
        "    mpa=amm7\t(Table:mp - Key:node - Column:mpa)\n"
        "Object name: vf1\n"
        "    groups=vbg\t(Table:nodelist - Key:node - Column:groups)\n"
        "    mgt=fsp\t(Table:nodehm - Key:node - Column:mgt)\n"
        "    slotid=4\t(Table:mp - Key:node - Column:id)\n"
    )
    ok(xcat("mkdef", "-t", "network", "-o", "vnet", "net=10.77.0.0", "mask=255.255.0.0"))
    assert ok(xcat("lsdef", "-V", "-t", "network", "vnet", "-i", "net")) == (
        "Object name: vnet\n    net=10.77.0.0\t(Table:networks - Key: netname - Column:net)\n"
    )


def test_hidden_nodes_are_listed_with_S_only(xcat):
    # nodels.1 example 10, lsdef.1 example 14: nodes with hidden=1 (xCAT's
    # FSPs and BPAs) are left out of nodels and lsdef, named or not.
    ok(xcat("mkdef", "hdn1,hdn2", "groups=hdng"))
    ok(xcat("chdef", "hdn2", "hidden=1"))
    assert ok(xcat("nodels", "hdng")) == "hdn1\n"
    assert ok(xcat("nodels", "hdng", "-S")) == "hdn1\nhdn2\n"
    assert ok(xcat("lsdef", "-s", "hdng")) == "hdn1  (node)\n"
    assert ok(xcat("lsdef", "-S", "-s", "hdng")) == "hdn1  (node)\nhdn2  (node)\n"
    assert "hdn2" not in ok(xcat("lsdef"))
    assert ok(xcat("lsdef", "-S")).count("hdn2  (node)") == 1


def test_nodels_answers_a_bad_option_with_its_usage(xcat):
    assert xcat("nodels", "-x") == (1, NODELS_USAGE, "")


def test_lsdef_nics_lists_the_attributes_per_interface(xcat):
    # lsdef.1 example 17: --nics is -i nicips,nichostnamesuffixes,... (DBobjectdefs.pm).
    ok(xcat("mkdef", "nic1", "groups=all", "nicips.eth0=1.1.1.1|1.2.1.1", "nictypes.eth0=Ethernet"))
    assert ok(xcat("lsdef", "nic1", "--nics")) == (
        "Object name: nic1\n    nicips.eth0=1.1.1.1|1.2.1.1\n    nictypes.eth0=Ethernet\n"
    )
    assert ok(xcat("lsdef", "nic1", "--nics", "-c")) == (
        "nic1: nicips.eth0=1.1.1.1|1.2.1.1\nnic1: nictypes.eth0=Ethernet\n"
    )
    rc, out, err = xcat("lsdef", "nic1", "--nics", "-i", "groups")
    assert (rc, out) == (1, USAGE["lsdef"])
    assert err == "Error: The flags '-i' and '--nics' cannot be used together.\n"


# -- regular-expression values in Perl's syntax --------------------------------------------


def test_a_group_s_bmc_with_perl_s_z_gives_each_node_its_name_and_a_suffix(xcat):
    # xCAT's documentation: chdef -t group <g> bmc='|\z|-imm|' (a bmc needs a mgt that uses one).
    ok(xcat("mkdef", "pz1,pz2", "groups=pzg"))
    assert ok(xcat("chdef", "-t", "group", "-o", "pzg", "mgt=ipmi", r"bmc=|\z|-imm|")) == created(1)
    assert ok(xcat("lsdef", "pz1,pz2", "-i", "bmc", "-c")) == "pz1: bmc=pz1-imm\npz2: bmc=pz2-imm\n"
    assert ok(xcat("nodels", "pz2", "ipmi.bmc")) == "pz2: pz2-imm\n"
    assert ok(xcat("lsdef", "-t", "group", "pzg", "-i", "bmc")) == (
        "Object name: pzg\n    bmc=|\\z|-imm|\n"
    )
    assert ok(xcat("lsdef", "-s", "-w", r"bmc=~^pz\d-imm\z")) == "pz1  (node)\npz2  (node)\n"


# -- dynamic and static groups from the command line ----------------------------------------


def test_mkdef_d_w_makes_a_dynamic_group_as_mkdef_1_example_8(xcat):
    ok(xcat("mkdef", "hm1,hm2", "groups=hmg", "mgt=hmc", "cons=hmc"))
    ok(xcat("mkdef", "hm3", "groups=hmg", "mgt=ipmi", "cons=ipmi"))
    assert ok(
        xcat("mkdef", "-t", "group", "-o", "HMCMgtNodes", "-d", "-w", "mgt==hmc", "-w", "cons==hmc")
    ) == created(1)
    assert ok(xcat("lsdef", "-t", "group", "HMCMgtNodes")) == (
        "Object name: HMCMgtNodes\n"
        "    grouptype=dynamic\n"
        "    members=hm1,hm2\n"
        "    wherevals=mgt==hmc::cons==hmc\n"
    )
    assert ok(xcat("nodels", "HMCMgtNodes")) == "hm1\nhm2\n"
    ok(xcat("chdef", "hm3", "mgt=hmc", "cons=hmc"))  # the group follows the nodes
    assert ok(xcat("nodels", "HMCMgtNodes")) == "hm1\nhm2\nhm3\n"
    # mkdef.1 example 15: by node name.
    ok(xcat("mkdef", "-t", "group", "hm_vms", "-d", "-w", "node=~^hm[12]$"))
    assert ok(xcat("nodels", "hm_vms")) == "hm1\nhm2\n"


def test_chdef_d_w_changes_a_dynamic_group_s_selection(xcat):
    ok(xcat("mkdef", "cw1", "groups=cwg", "os=sles15"))
    ok(xcat("mkdef", "cw2", "groups=cwg", "os=rhels9.4"))
    ok(xcat("mkdef", "-t", "group", "-o", "cwdyn", "-d", "-w", "os=~^sles[0-9]+$"))
    assert ok(xcat("nodels", "cwdyn")) == "cw1\n"
    assert ok(xcat("chdef", "-t", "group", "-o", "cwdyn", "-d", "-w", "os=~^rh")) == created(1)
    assert ok(xcat("nodels", "cwdyn")) == "cw2\n"
    assert xcat("chdef", "-t", "group", "-o", "cwdyn", "netboot=xnba") == (
        1,
        "",
        "Error: Can not assign attributes to dynamic node group 'cwdyn'.\n" + SOME_FAILED,
    )


@pytest.mark.parametrize(
    ("args", "errors"),
    [
        (["-d"], "Error: The 'where' attributes and values were not provided for dynamic group "
                 "'{g}'.\nError: Skipping to the next group.\n" + SOME_FAILED),
        (["grouptype=dynamic"], "Error: The 'where' attributes and values were not provided for "
                                "dynamic group '{g}'.\nError: Skipping to the next group.\n"
                                + SOME_FAILED),
        (["-d", "-w", "mgt==ipmi", "netboot=xnba"],
         "Error: Can not assign attributes to dynamic node group '{g}'.\n" + SOME_FAILED),
        (["-d", "-w", "colour==blue"],
         "Error: Incorrect attribute 'colour' in the selection string specified with -w flag.\n"),
        (["-d", "-w", "mgt"], "Error: Incorrect selection string specified with -w flag.\n"),
        (["-w", "mgt==ipmi", "members=hm1"],
         "Error: Cannot use a list of members together with the '-w' option.\n" + SOME_FAILED),
    ],
)  # fmt: skip
def test_what_xcat_refuses_of_a_group_writes_nothing(xcat, args, errors):
    group = f"bad{zlib.crc32(' '.join(args).encode())}"
    assert xcat("mkdef", "-t", "group", "-o", group, *args) == (1, "", errors.format(g=group))
    assert xcat("lsdef", "-t", "group", group)[2] == not_found(group, objtype="group")


def test_members_that_are_not_nodes_are_named_and_the_others_written_as_xcat_does(xcat):
    ok(xcat("mkdef", "gmn[1-2]", "groups=gmnall"))
    skipped = "Error: Could not find a node named '{}', skipping to the next node.\n"
    assert xcat("mkdef", "-t", "group", "-o", "gmn", "members=gmn1,nosuch9") == (
        1, created(1), skipped.format("nosuch9")
    )  # fmt: skip
    assert ok(xcat("lsdef", "-t", "group", "gmn", "-i", "members")) == (
        "Object name: gmn\n    members=gmn1\n"
    )
    assert xcat("chdef", "-t", "group", "-o", "gmn", "members=gmn2,nosuch8") == (
        1, created(1), skipped.format("nosuch8")
    )  # fmt: skip
    assert ok(xcat("nodels", "gmn")) == "gmn2\n"
    assert xcat("lsdef", "nosuch8")[0] == 1  # no node is made of a name that is not one
    # None of them a node: the members stay as they were.
    assert xcat("chdef", "-t", "group", "-o", "gmn", "members=nosuch7") == (
        1, created(1), skipped.format("nosuch7")
    )  # fmt: skip
    assert ok(xcat("nodels", "gmn")) == "gmn2\n"


def test_d_and_w_are_for_groups(xcat):
    assert xcat("mkdef", "dw1", "groups=dwg", "-w", "mgt==ipmi") == (
        1,
        "",
        "Error: The '-d' and '-w' options define groups: use them with '-t group'.\n",
    )


def test_a_static_group_s_members_are_written_into_the_nodes_groups(xcat):
    ok(xcat("mkdef", "sm[1-4]", "groups=smg", "arch=x86_64"))
    ok(xcat("chdef", "sm4", "arch=ppc64le"))
    assert ok(xcat("mkdef", "-t", "group", "-o", "smlist", "members=sm1,sm2")) == created(1)
    assert ok(xcat("nodels", "sm[1-4]", "groups")) == (
        "sm1: smg,smlist\nsm2: smg,smlist\nsm3: smg\nsm4: smg\n"
    )
    # chdef replaces the members (xCAT's default), -p adds, -m removes.
    ok(xcat("chdef", "-t", "group", "-o", "smlist", "members=sm2,sm3"))
    assert ok(xcat("nodels", "smlist")) == "sm2\nsm3\n"
    ok(xcat("chdef", "-t", "group", "-o", "smlist", "-p", "members=sm4"))
    ok(xcat("chdef", "-t", "group", "-o", "smlist", "-m", "members=sm2"))
    assert ok(xcat("nodels", "smlist")) == "sm3\nsm4\n"
    assert ok(xcat("lsdef", "-t", "group", "smlist")) == (
        "Object name: smlist\n    grouptype=static\n    members=sm3,sm4\n"
    )
    # A static group selected with -w: the nodes that match now, listed by them.
    ok(xcat("mkdef", "-t", "group", "-o", "smpower", "-w", "arch==ppc64le"))
    assert ok(xcat("nodels", "sm4", "groups")) == "sm4: smg,smlist,smpower\n"


# -- XCAT_NODE_PREFIX and XCAT_NODE_SUFFIX ---------------------------------------------------


def test_a_number_names_a_node_with_the_prefix_and_suffix_of_the_environment(shared_cluster, xcat):
    # noderange.3: "10-20 (equivalent to: node10,node11,...)", the prefix and
    # suffix settable by XCAT_NODE_PREFIX and XCAT_NODE_SUFFIX.
    ok(xcat("mkdef", "node[7001-7003]", "groups=npg"))
    assert ok(xcat("nodels", "7001-7003")) == "node7001\nnode7002\nnode7003\n"
    assert ok(xcat("nodels", "7001+1")) == "node7001\nnode7002\n"
    env = {**shared_cluster.env, "XCAT_NODE_PREFIX": "cn", "XCAT_NODE_SUFFIX": "-ib"}

    def run(*args: str) -> tuple[int, str, str]:
        result = shared_cluster.run(*args, env=env)
        return result.returncode, result.stdout, result.stderr

    assert run("mkdef", "81-82", "groups=npg") == (0, created(2), "")
    assert run("nodels", "81,82") == (0, "cn81-ib\ncn82-ib\n", "")
    assert ok(xcat("nodels", "npg")) == "cn81-ib\ncn82-ib\nnode7001\nnode7002\nnode7003\n"
    assert run("nodels", "83") == (
        1,
        "",
        "Error: Invalid nodes and/or groups in noderange: cn83-ib\n",
    )


# -- networks --------------------------------------------------------------------------------

SAME_NETWORK = (
    "Error: A network definition called '{}' already exists that contains the same net and "
    "mask values. Cannot create a definition for '{}'.\n"
)


def test_a_network_with_another_s_net_and_mask_is_refused_and_nothing_is_written(xcat):
    ok(xcat("mkdef", "-t", "network", "-o", "dn1", "net=10.31.0.0", "mask=255.255.0.0"))
    for command in ("mkdef", "chdef"):
        same = xcat(command, "-t", "network", "-o", "dn2", "net=10.31.0.0", "mask=255.255.0.0")
        assert same == (1, "", SAME_NETWORK.format("dn1", "dn2") + SOME_FAILED)
    stanzas = (
        "dn3:\n    objtype=network\n    net=10.33.0.0\n    mask=255.255.0.0\n\n"
        "dn4:\n    objtype=network\n    net=10.33.0.0\n    mask=255.255.0.0\n"
    )
    assert xcat("mkdef", "-z", stdin=stanzas) == (
        1,
        "",
        SAME_NETWORK.format("dn3", "dn4") + SOME_FAILED,
    )
    assert xcat("mkdef", "-t", "network", "-o", "dn5", "net=10.35.0.0") == (
        1,
        "",
        "Error: Net or mask value should not be empty for xCAT network object 'dn5'.\n"
        + SOME_FAILED,
    )
    assert xcat("lsdef", "-t", "network", "dn2,dn3,dn4,dn5")[2] == not_found(
        "dn2", "dn3", "dn4", "dn5", objtype="network"
    )


# -- xCAT's shipped object templates -------------------------------------------------------


def test_lsdef_template_lists_and_shows_xcat_s_shipped_templates(xcat):
    # lsdef.1 examples 20 and 19.
    names = ["cec-template", "hmc-template", "onieswitch", "ppc64le-openbmc-template",
             "ppc64le-template", "ppc64lekvmguest-template", "switch-template",
             "x86_64-template", "x86_64kvmguest-template"]  # fmt: skip
    assert ok(xcat("lsdef", "-t", "node", "--template")) == "".join(
        f"{name}  (node)\n" for name in names
    )
    assert ok(xcat("lsdef", "-t", "node", "--template", "switch-template")) == (
        "Object name: switch-template\n"
        "    groups=switch\n"
        "    ip=OPTIONAL:the ip address of the switch\n"
        "    mac=OPTIONAL:the MAC address of the switch\n"
        "    mgt=switch\n"
        "    nodetype=switch\n"
        "    switchtype=OPTIONAL:The type of switch. It is used to identify the file name that "
        "implements the functions for this swithc. The valid values are: Mellanox, Cisco, BNT "
        "and Juniper.\n"
        "    usercomment=the switch definition template\n"
    )
    assert xcat("lsdef", "-t", "node", "--template", "nosuch-template") == (
        1,
        "",
        "Error: Could not find nosuch-template in xCAT templates.\n",
    )


def test_mkdef_template_makes_a_node_from_a_shipped_template(xcat):
    assert ok(xcat("mkdef", "-t", "node", "-o", "tsw1", "--template", "switch-template")) == (
        created(1)
    )
    assert ok(xcat("lsdef", "tsw1")) == (
        "Object name: tsw1\n    groups=switch\n    mgt=switch\n    nodetype=switch\n"
        "    usercomment=the switch definition template\n"
    )
    # A MANDATORY attribute must be given; OPTIONAL ones are left out.
    assert xcat("mkdef", "tx1", "--template", "x86_64-template", "ip=10.50.0.1") == (
        1,
        "",
        'Error: The attribute "bmc" must be specified!\n',
    )
    ok(xcat("mkdef", "tx1", "--template", "x86_64-template", "ip=10.50.0.1", "bmc=10.51.0.1"))
    assert ok(xcat("lsdef", "tx1")) == (
        "Object name: tx1\n    arch=x86_64\n    bmc=10.51.0.1\n    cons=ipmi\n    getmac=ipmi\n"
        "    groups=all\n    ip=10.50.0.1\n    mgt=ipmi\n    netboot=xnba\n    serialport=0\n"
        "    serialspeed=115200\n    usercomment=the system X node definition\n"
    )


@pytest.mark.parametrize(
    ("args", "error", "with_usage"),
    [
        (["--template"], "no object definition template specified for mkdef --template!", True),
        (["--template", "a,b"], "Only 1 template object definition should be specified for "
                                "mkdef!", True),
        (["--template", "nosuch"], "Could not find the template object named 'nosuch' of type "
                                   "'node'.", False),
        (["--template", "tsame"], "The template node cannot be the same as the node to create.",
         False),
    ],
)  # fmt: skip
def test_mkdef_template_refusals_in_xcat_s_words(xcat, args, error, with_usage):
    ok(xcat("chdef", "tsame", "groups=tsg"))
    assert xcat("mkdef", "tsame,tnew", *args) == (
        1,
        USAGE["mkdef"] if with_usage else "",
        f"Error: {error}\n",
    )


# -- chdef -u / mkdef -u: osimages filled in from their profile ------------------------------


def test_chdef_u_points_an_osimage_at_its_profile_and_then_at_the_administrators_copy(
    shared_cluster, xcat
):
    root = shared_cluster.root.resolve()
    install, netboot = root / "install", root / "opt/xcat/share/xcat/netboot"
    ok(xcat("mkdef", "-t", "osimage", "-o", "u-img", "provmethod=netboot", "profile=compute",
            "osvers=rocky9.4", "osarch=x86_64"))  # fmt: skip
    assert ok(xcat("chdef", "u-img", "-u", "profile=service")) == created(1)
    assert ok(xcat("lsdef", "-t", "osimage", "-l", "u-img")) == (
        "Object name: u-img\n"
        "    exlist="
        f"{netboot}/rh/service.exlist\n"
        "    imagetype=linux\n"
        "    osarch=x86_64\n"
        "    osdistroname=rocky9.4-x86_64\n"
        "    osname=Linux\n"
        "    osvers=rocky9.4\n"
        f"    otherpkgdir={install}/post/otherpkgs/rocky9.4/x86_64\n"
        f"    otherpkglist={netboot}/rh/service.otherpkgs.pkglist\n"
        f"    pkgdir={install}/rocky9.4/x86_64\n"
        f"    pkglist={netboot}/rh/service.pkglist\n"
        f"    postinstall={netboot}/rh/service.postinstall\n"
        "    profile=service\n"
        "    provmethod=netboot\n"
        f"    rootimgdir={install}/netboot/rocky9.4/x86_64/service\n"
    )
    # The administrator copies the pkglist under custom/ and edits it: -u finds it first.
    custom = install / "custom/netboot/rh"
    custom.mkdir(parents=True)
    (custom / "service.rocky9.pkglist").write_text("bash\n")
    assert ok(xcat("chdef", "-t", "osimage", "-o", "u-img", "-u")) == created(1)
    assert ok(xcat("lsdef", "-t", "osimage", "u-img", "-i", "pkglist,exlist")) == (
        "Object name: u-img\n"
        f"    exlist={netboot}/rh/service.exlist\n"
        f"    pkglist={custom}/service.rocky9.pkglist\n"
    )


def test_mkdef_u_makes_a_whole_osimage_from_a_profile_and_a_provmethod(shared_cluster, xcat):
    root = shared_cluster.root.resolve()
    assert ok(xcat("mkdef", "-u", "-o", "mku-img", "provmethod=statelite", "profile=compute",
                   "osvers=debian12", "osarch=aarch64")) == created(1)  # fmt: skip
    listed = ok(xcat("lsdef", "-t", "osimage", "mku-img", "-i",
                     "osdistroname,pkglist,template,rootimgdir"))  # fmt: skip
    assert listed == (
        "Object name: mku-img\n"
        "    osdistroname=debian12-aarch64\n"
        f"    pkglist={root}/opt/xcat/share/xcat/netboot/debian/compute.aarch64.pkglist\n"
        f"    rootimgdir={root}/install/netboot/debian12/aarch64/compute\n"
        "    template=\n"
    )


def test_lsdef_osimage_shows_each_nodes_image_beside_the_node(shared_cluster, xcat):
    """--osimage: the osimage a node's provmethod names, or the one its os,
    arch and profile give for provmethod=netboot (what mkdef -u would make)."""
    root = shared_cluster.root.resolve()
    ok(xcat("mkdef", "-t", "osimage", "-o", "os-img", "provmethod=netboot", "profile=compute",
            "osvers=rocky9.4", "osarch=x86_64",
            "rootimgdir=/install/netboot/rocky/compute"))  # fmt: skip
    ok(xcat("mkdef", "osi1", "groups=osi", "provmethod=os-img"))
    ok(xcat("mkdef", "osi2", "groups=osi", "provmethod=netboot", "os=debian12", "arch=x86_64",
            "profile=service"))  # fmt: skip
    assert ok(xcat("lsdef", "osi1", "--osimage")) == (
        "Object name: osi1\n"
        "    groups=osi\n"
        "    provmethod=os-img\n"
        "    osarch=x86_64\n"
        "    osvers=rocky9.4\n"
        "    profile=compute\n"
        "    provmethod=netboot\n"
        "    rootimgdir=/install/netboot/rocky/compute\n"
    )
    listed = ok(xcat("lsdef", "osi2", "--osimage")).splitlines()
    netboot = root / "opt/xcat/share/xcat/netboot/debian"
    assert f"    pkglist={netboot}/service.x86_64.pkglist" in listed
    assert f"    rootimgdir={root}/install/netboot/debian12/x86_64/service" in listed
    # A node that names no image and lacks what would make one: xCAT's error, the node still listed.
    ok(xcat("mkdef", "osi3", "groups=osi", "provmethod=netboot"))
    assert xcat("lsdef", "osi3", "--osimage") == (
        1,
        "Object name: osi3\n    groups=osi\n    provmethod=netboot\n",
        "Error: Missing attributes for node osi3, check the node attributes "
        "'os', 'arch','profile' and 'provmethod'.\n",
    )


def test_what_u_refuses_in_xcats_words(xcat):
    ok(xcat("mkdef", "-t", "osimage", "-o", "ur-img", "provmethod=netboot"))
    assert xcat("chdef", "ur-img", "-u", "osvers=rocky9.4") == (
        1,
        "",
        "Error: The profile and provmethod are all need to be specified.\n" + SOME_FAILED,
    )
    assert xcat("chdef", "ur-img", "-u", "profile=compute", "provmethod=diskful") == (
        1,
        "",
        "Error: The provmethod: diskful is incorrect.\n" + SOME_FAILED,
    )
    assert xcat("chdef", "ur-img", "-u", "profile=compute", "imagetype=windows") == (
        1,
        "",
        "Error: The input imagetype:windows not match linux.\n" + SOME_FAILED,
    )
    assert xcat("chdef", "ur-img", "-u", "-p", "profile=compute") == (
        1,
        "",
        "Error: Cannot use '-u' with '-p' or '-m'.\n",
    )
    assert xcat("chdef", "-t", "node", "ur-img", "-u", "profile=compute") == (
        1,
        USAGE["chdef"],
        "Error: Option '-u' only work for objtype 'osimage'.\n",
    )
    assert xcat("lsdef", "-u", "ur-img") == (
        1,
        USAGE["lsdef"],
        "Error: Option '-u' can not work with lsdef.\n",
    )
    # Nothing was written by any of these.
    assert ok(xcat("lsdef", "-t", "osimage", "ur-img", "-z")) == (
        "# <xCAT data object stanza file>\n\nur-img:\n    objtype=osimage\n    provmethod=netboot\n"
    )


# -- conditional attributes (Schema.pm's only_if) --------------------------------------------

BMC_NEEDS_MGT = "Error: Cannot set the attr='{}' attribute unless mgt value is {}.\n"


def test_a_bmc_needs_a_mgt_that_uses_one_given_stored_or_inherited(xcat):
    assert xcat("mkdef", "oi1", "groups=oig", "bmc=10.1.1.1") == (
        1, "", BMC_NEEDS_MGT.format("bmc", "ipmi or openbmc") + SOME_FAILED
    )  # fmt: skip
    assert xcat("lsdef", "oi1")[0] == 1  # nothing written
    assert ok(xcat("mkdef", "oi1", "groups=oig", "mgt=ipmi", "bmc=10.1.1.1")) == created(1)
    assert ok(xcat("chdef", "oi1", "bmcport=623")) == created(1)  # its stored mgt
    ok(xcat("mkdef", "-t", "group", "oibmc", "mgt=openbmc"))
    assert ok(xcat("mkdef", "oi2", "groups=oibmc", "bmc=10.1.1.2")) == created(1)  # inherited
    # bmcport is for ipmi alone; xCAT names every value the failing attributes would need.
    assert xcat("chdef", "oi2", "bmcport=623") == (
        1, "", BMC_NEEDS_MGT.format("bmcport", "ipmi") + SOME_FAILED
    )  # fmt: skip
    ok(xcat("mkdef", "oi3", "groups=oig", "mgt=kvm"))
    assert xcat("chdef", "oi3", "bmc=10.1.1.3", "bmcport=623") == (
        1,
        "",
        BMC_NEEDS_MGT.format("bmc", "ipmi or openbmc")
        + BMC_NEEDS_MGT.format("bmcport", "ipmi or openbmc")
        + SOME_FAILED,
    )
    assert ok(xcat("chdef", "oi3", "bmc=")) == created(1)  # clearing is never refused
    # A Redfish BMC is kept in the same attributes.
    assert ok(
        xcat("mkdef", "oi4", "groups=oig", "mgt=redfish", "bmc=10.1.1.4", "bmcport=8443")
    ) == (created(1))
    assert ok(xcat("lsdef", "oi1,oi2,oi3", "-i", "bmc,bmcport", "-c")) == (
        "oi1: bmc=10.1.1.1\noi1: bmcport=623\noi2: bmc=10.1.1.2\noi2: bmcport=\n"
        "oi3: bmc=\noi3: bmcport=\n"
    )


def test_a_switchs_snmp_user_needs_nodetype_switch(xcat):
    assert xcat("mkdef", "oisw", "groups=oig", "snmpusername=admin") == (
        1,
        "",
        "Error: Cannot set the attr='snmpusername' attribute unless nodetype value is switch.\n"
        + SOME_FAILED,
    )
    assert ok(xcat("mkdef", "oisw", "groups=oig", "nodetype=switch", "snmpusername=admin")) == (
        created(1)
    )


# -- xCAT's other object types: routes, zones, racks, ... ------------------------------------


def test_a_route_is_defined_listed_changed_and_is_a_row_of_the_routes_table(xcat):
    assert ok(xcat("mkdef", "-t", "route", "-o", "rt1", "net=10.90.0.0", "mask=255.255.0.0",
                   "gateway=10.1.0.254", "ifname=eth1")) == created(1)  # fmt: skip
    assert ok(xcat("lsdef", "-t", "route", "-l", "rt1")) == (
        "Object name: rt1\n    gateway=10.1.0.254\n    ifname=eth1\n    mask=255.255.0.0\n"
        "    net=10.90.0.0\n"
    )
    assert ok(xcat("chdef", "-t", "route", "rt1", "usercomment=to the lab")) == created(1)
    assert ok(xcat("tabdump", "routes")) == (
        "#routename,net,mask,gateway,ifname,comments,disable\n"
        '"rt1","10.90.0.0","255.255.0.0","10.1.0.254","eth1","to the lab",\n'
    )
    assert xcat("chdef", "-t", "route", "rt1", "nosuch=1")[0] == 1
    assert ok(xcat("rmdef", "-t", "route", "rt1")) == "1 object definitions have been removed.\n"
    # The table is the same objects: chtab makes a route that lsdef lists.
    ok(xcat("chtab", "routename=rt2", "routes.net=10.91.0.0", "routes.mask=255.255.0.0"))
    assert ok(xcat("lsdef", "-t", "route", "-s")) == "rt2  (route)\n"


def test_a_zone_and_a_rack_as_xcat_s_documentation_defines_them(xcat):
    ok(xcat("mkdef", "-t", "zone", "-o", "zone1", "sshbetweennodes=yes", "defaultzone=yes"))
    ok(xcat("mkdef", "zn1", "groups=zg", "zonename=zone1"))
    ok(xcat("mkdef", "-t", "rack", "rack01", "num=1", "height=42", "room=B101"))
    assert ok(xcat("lsdef", "-t", "zone,rack", "-z")) == (
        "# <xCAT data object stanza file>\n\n"
        "zone1:\n    objtype=zone\n    defaultzone=yes\n    sshbetweennodes=yes\n\n"
        "rack01:\n    objtype=rack\n    height=42\n    num=1\n    room=B101\n"
    )
    assert ok(xcat("nodels", "zn1", "nodelist.zonename")) == "zn1: zone1\n"


@pytest.mark.parametrize(
    "objtype", ["route", "zone", "rack", "boottarget", "osdistro", "osdistroupdate",
                "notification", "monitoring"]
)  # fmt: skip
def test_lsdef_h_lists_xcat_s_attributes_of_the_other_types(xcat, objtype):
    listed = ok(xcat("lsdef", "-t", objtype, "-h"))
    assert listed.startswith(f"The valid attribute names for object type '{objtype}' are:\n")


def test_an_fsp_s_password_of_each_user_is_an_attribute_of_its_own(xcat):
    ok(xcat("mkdef", "pf1", "groups=pfg", "mgt=fsp", "passwd.HMC=abc123", "passwd.admin=adm1n"))
    assert ok(xcat("lsdef", "pf1", "-i", "passwd.HMC,passwd.admin")) == (
        "Object name: pf1\n    passwd.HMC=abc123\n    passwd.admin=adm1n\n"
    )
    assert ok(xcat("chdef", "pf1", "passwd.HMC=n3w")) == created(1)
    assert xcat("mkdef", "pf2", "groups=pfg", "mgt=ipmi", "passwd.HMC=x") == (
        1,
        "",
        "Error: Cannot set the attr='passwd.HMC' attribute unless mgt value is bpa or fsp.\n"
        + SOME_FAILED,
    )
