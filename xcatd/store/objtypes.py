"""The object types and their attributes, each declared exactly once.

Everything else reads these declarations: the database columns, option and
value checking, `lsdef -h`, long and stanza output.  Attribute names and
meanings follow xCAT's tables (nodelist, nodehm, ipmi, noderes, nodetype,
mac, hosts, chain, servicenode, linuximage/osimage, networks, site, policy).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

from ..images.osimage import PACK_COMPRESSIONS, PACK_METHODS, PROVMETHODS
from . import keyed
from .attributes import Attribute, Kind

A = Attribute


@dataclass(frozen=True, eq=False)  # one instance per type: identity is equality
class ObjectType:
    name: str
    key: str  # the column that holds the object's name
    summary: str
    attributes: dict[str, Attribute]
    required: tuple[str, ...] = ()
    only_object: str = ""  # site has exactly one object, 'clustersite'

    def attribute(self, name: str) -> Attribute | None:
        """The attribute `name` declares; for `nicips.eth1`, the per-interface `nicips`."""
        found = self.attributes.get(name)
        if found is None and "." in name:
            base, interface = keyed.split_name(name)
            found = self.attributes.get(base)
            if found is None or not found.per_interface or not keyed.is_interface(interface or ""):
                return None
        return found

    @cached_property  # asked for every object listed: 100,000 times by one lsdef
    def per_interface(self) -> tuple[str, ...]:
        """The attributes with a value per network interface (xCAT's nics table)."""
        return tuple(name for name, a in self.attributes.items() if a.per_interface)


def _declare(*attributes: Attribute) -> dict[str, Attribute]:
    return {attribute.name: attribute for attribute in attributes}


NETBOOT = ("xnba", "pxe", "grub2", "petitboot", "yaboot", "onie")
YES_NO = ("y", "n", "yes", "no", "1", "0")
NO = ("n", "no", "0")  # of YES_NO, the values that say no
ARCHES = ("x86_64", "ppc64", "ppc64le", "aarch64")

# Node attributes: a node has them, and so does a group, from which its
# nodes inherit them.  Regular-expression values are allowed here.
NODE_ATTRIBUTES = tuple(
    A(a.name, a.meaning, a.kind, a.choices, regex_allowed=a.name != "groups")
    for a in (
        A("groups", "Comma list of groups this node belongs to, in inheritance order", Kind.LIST),
        A("status", "The current status of the node (netbooting, booted, ...)"),
        A("statustime", "When status last changed (MM-DD-YYYY HH:MM:SS)"),
        A("usercomment", "Free text about this object"),
        A("mgt", "Hardware management method", Kind.CHOICE,
          # xCAT's (nodehm.mgt), and switch, which its switch templates use.
          ("ipmi", "redfish", "kvm", "openbmc", "hmc", "ivm", "fsp", "blade", "bpa", "esx",
           "rhevm", "switch", "none")),
        A("power", "Power control method, when it differs from mgt"),
        A("cons", "Console method (ipmi, kvm, ...)"),
        A("conserver", "The host that runs the console server for this node"),
        A("serialport", "Serial console port number (0 for ttyS0)", Kind.INTEGER),
        A("serialspeed", "Serial console speed in baud", Kind.INTEGER),
        A("serialflow", "Serial flow control (hard, soft, none)", Kind.CHOICE,
          ("hard", "soft", "none")),
        A("bmc", "Host name or IP address of the node's BMC"),
        A("bmcusername", "BMC user name"),
        A("bmcpassword", "BMC password"),
        A("bmcport", "BMC port", Kind.INTEGER),
        A("netboot", "The network boot loader", Kind.CHOICE, NETBOOT),
        A("installnic", "The interface the node boots and installs from"),
        A("primarynic", "The node's primary interface"),
        A("servicenode", "Comma list of service nodes that serve this node", Kind.LIST),
        A("xcatmaster", "The management or service node as the node sees it"),
        A("tftpserver", "TFTP server for this node"),
        A("nfsserver", "NFS or HTTP server for this node's images"),
        A("arch", "Architecture", Kind.CHOICE, ARCHES),
        A("os", "Operating system (rhels9.4, debian12, ...)"),
        A("profile", "Profile (compute, service, ...)"),
        A("provmethod", "Provisioning method or osimage name"),
        A("mac", "MAC address of the boot interface; several separated by |", Kind.MAC),
        A("ip", "IP address of the node", Kind.IP),
        A("hostnames", "Extra host names of the node", Kind.LIST),
        A("currstate", "What the node does at its next network boot"),
        A("currchain", "The chain the node follows now"),
        A("chain", "The chain of tasks at discovery", Kind.LIST),
        A("setupdhcp", "Service node role: run DHCP", Kind.CHOICE, YES_NO),
        A("setuptftp", "Service node role: serve TFTP", Kind.CHOICE, YES_NO),
        A("setupnfs", "Service node role: serve NFS", Kind.CHOICE, YES_NO),
        A("postscripts", "Scripts run on the node after installation", Kind.LIST),
        A("postbootscripts", "Scripts run on the node after every boot", Kind.LIST),
        # xCAT's nics table: a value per interface, <nic>!<value>,... (keyed.py).
        A("nicips", "IP addresses of each NIC (several: '|' between them)", Kind.PER_INTERFACE),
        A("nicnetworks", "The network object each NIC is on", Kind.PER_INTERFACE),
        A("nictypes", "Type of each NIC (Ethernet, Infiniband, bond, vlan, bridge)",
          Kind.PER_INTERFACE),
        A("nichostnamesuffixes", "Host name suffix of each NIC", Kind.PER_INTERFACE),
        A("nichostnameprefixes", "Host name prefix of each NIC", Kind.PER_INTERFACE),
        A("nicaliases", "Host name aliases of each NIC", Kind.PER_INTERFACE),
        A("nicextraparams", "Extra configuration parameters of each NIC", Kind.PER_INTERFACE),
        A("nicdevices", "Devices each NIC is made of (bond0!eth0|eth2)", Kind.PER_INTERFACE),
        A("niccustomscripts", "Custom script configuring each NIC", Kind.PER_INTERFACE),
    )
)  # fmt: skip

NODE = ObjectType(
    "node", "node", "A compute, service or other node", _declare(*NODE_ATTRIBUTES), ("groups",)
)

GROUP = ObjectType(
    "group",
    "groupname",
    "A group of nodes; its attributes are inherited by its members",
    _declare(
        A("grouptype", "static (nodes list the group) or dynamic (wherevals)", Kind.CHOICE,
          ("static", "dynamic")),
        A("members", "The nodes in the group (shown by lsdef, derived for static groups)"),
        A("wherevals", "Dynamic group selection: attr==val::attr=~re ..."),
        *(a for a in NODE_ATTRIBUTES if a.name != "groups"),
    ),
)  # fmt: skip

OSIMAGE = ObjectType(
    "osimage",
    "imagename",
    "An operating system image definition",
    _declare(
        A("groups", "Groups this image belongs to", Kind.LIST),
        A("imagetype", "Image type", Kind.CHOICE, ("linux",)),
        A("description", "Free text describing the image"),
        A("provmethod", "Provisioning method", Kind.CHOICE, PROVMETHODS),
        A("osdistroname", "The distribution this image is built from (<os>-<arch>)"),
        A("osupdatename", "Updates applied to the distribution", Kind.LIST),
        A("rootfstype", "Root file system type of a stateless image (ramdisk, overlay)"),
        A("profile", "Profile name (compute, service, ...)"),
        A("osname", "Operating system family", Kind.CHOICE, ("Linux",)),
        A("osvers", "Operating system version (rhels9.4, debian12, ...)"),
        A("osarch", "Architecture", Kind.CHOICE, ARCHES),
        A("synclists", "Files to synchronise into the image", Kind.PATHS),
        A("postscripts", "Scripts run on nodes after installation", Kind.LIST),
        A("postbootscripts", "Scripts run on nodes after every boot", Kind.LIST),
        A("serverrole", "Role of nodes using this image (servicenode, compute)"),
        A("template", "Installation template (install images)", Kind.PATH),
        A("boottarget", "Boot target for custom kernels"),
        A("addkcmdline", "Extra kernel command line arguments"),
        A("pkglist", "Package list files", Kind.PATHS),
        A("pkgdir", "Package repositories: directories or URLs", Kind.LIST),
        A("otherpkglist", "Lists of extra packages from otherpkgdir", Kind.PATHS),
        A("otherpkgdir", "Directory of extra packages (this project's wheels go here)",
          Kind.PATH),
        A("exlist", "Exclusion lists applied when packing", Kind.PATHS),
        A("postinstall", "Scripts run on the root image after genimage", Kind.PATHS),
        A("rootimgdir", "Where the root image is built", Kind.PATH),
        A("kerneldir", "Directory of a custom kernel", Kind.PATH),
        A("nodebootif", "The interface the node boots from"),
        A("otherifce", "Other interfaces to bring up at boot", Kind.LIST),
        A("netdrivers", "Network drivers for the stateless initrd", Kind.LIST),
        A("kernelver", "Kernel version in the image"),
        A("krpmver", "Kernel package version"),
        A("permission", "Mode of the packed image", Kind.INTEGER),
        A("dump", "Where kdump writes (nfs://...)"),
        A("crashkernelsize", "Memory reserved for the crash kernel"),
        A("partitionfile", "Partition layout file (install images)"),
        A("driverupdatesrc", "Driver update sources", Kind.LIST),
        A("usercomment", "Free text about this object"),
        # Recorded by packimage: what the last pack made.
        A("packfile", "The packed image file the last packimage wrote", Kind.PATH),
        A("packmethod", "Archive method of the last packimage", Kind.CHOICE, PACK_METHODS),
        A("packcompression", "Compression of the last packimage", Kind.CHOICE,
          PACK_COMPRESSIONS),
        A("packsize", "Size in bytes of the last packed image", Kind.INTEGER),
        A("packsha256", "SHA-256 of the last packed image (also in <packfile>.sha256)"),
        A("packtime", "When the last packimage finished (MM-DD-YYYY HH:MM:SS)"),
        A("packuuid", "IMAGEUUID written into the image's /opt/xcat/xcatinfo by the last pack"),
    ),
)  # fmt: skip

NETWORK = ObjectType(
    "network",
    "netname",
    "A network the cluster's nodes are on",
    _declare(
        A("net", "Network address", Kind.IP),
        A("mask", "Netmask", Kind.IP),
        A("gateway", "Gateway (<xcatmaster> for the node's master)"),
        A("dhcpserver", "DHCP server for this network"),
        A("tftpserver", "TFTP server for this network"),
        A("nameservers", "Name servers", Kind.LIST),
        A("dynamicrange", "Dynamic DHCP range (start-end)"),
        A("mgtifname", "The management node's interface on this network"),
        A("usercomment", "Free text about this object"),
    ),
    ("net", "mask"),
)  # fmt: skip

SITE = ObjectType(
    "site",
    "name",
    "Cluster-wide settings",
    _declare(
        A("master", "The management node's address as nodes see it"),
        A("domain", "DNS domain of the cluster"),
        A("installdir", "Where distro media, images and profiles live", Kind.PATH),
        A("tftpdir", "Root of the TFTP tree", Kind.PATH),
        A("httpport", "Port of the boot HTTP server", Kind.INTEGER),
        A("dhcpsetup", "Let nodeset write DHCP entries", Kind.CHOICE, YES_NO),
        A("nameservers", "Name servers given to nodes", Kind.LIST),
        A("timezone", "Time zone of the cluster"),
        A("sharedtftp", "Service nodes share the MN's tftpdir", Kind.CHOICE, YES_NO),
        A("installloc", "Where service nodes mount installdir from over NFS, hostname:/path "
          "(the management node's without hostname; the path is its installdir); unset: "
          "they copy the images they serve"),
        A("consoleservice", "Console service (conserver, goconserver)"),
        A("xcatdport", "xcatd port", Kind.INTEGER),
        A("xcatiport", "Port of the install-status line protocol", Kind.INTEGER),
        A("ipmidispatch", "Whether hardware control (rpower, rcons, ...) of a service node's "
          "nodes runs on it (default y)", Kind.CHOICE, YES_NO),
        A("enrollwindow", "Minutes a service node may enroll for its certificate after "
          "nodeset (default 30)", Kind.INTEGER),
        A("sshcertminutes", "Minutes the SSH certificates of a service node's host and root "
          "are valid; its daemon renews them while a third is left (default 43200)",
          Kind.INTEGER),
    ),
    only_object="clustersite",
)  # fmt: skip

POLICY = ObjectType(
    "policy",
    "priority",
    "Who may run what; lowest priority first, first match decides",
    _declare(
        A("name", "User (certificate CN) the rule is for; empty or * for anyone"),
        A("role", "Certificate role the rule is for (user, servicenode, master)",
          Kind.CHOICE, ("user", "servicenode", "master")),
        A("commands", "Commands the rule covers; empty for all", Kind.LIST),
        A("noderange", "Nodes the rule covers"),
        A("parameters", "Command arguments the rule covers"),
        A("time", "Time the rule applies"),
        A("rule", "What the rule decides", Kind.CHOICE, ("allow", "accept", "trusted", "deny")),
        A("comments", "Free text"),
        A("disable", "Set to 1 or yes to disable the rule", Kind.CHOICE, YES_NO),
    ),
)  # fmt: skip

TYPES: dict[str, ObjectType] = {t.name: t for t in (SITE, NODE, GROUP, OSIMAGE, NETWORK, POLICY)}

# Every other attribute xCAT's %defspec gives these types, with xCAT's
# description (xcat_attributes.json, generated from Schema.pm by
# tools/xcat_attributes.py): accepted and stored as text, so that an xCAT
# administrator's definitions load whole.  The policy's `usercomment` is
# xCAT's name for the column this project calls `comments`.
_XCAT_ATTRIBUTES = Path(__file__).with_name("xcat_attributes.json")
_NOT_XCAT_S = {"group": ("groups",), "policy": ("usercomment",)}


def _complete(objtype: ObjectType, listed: list[dict]) -> None:
    """Add xCAT's attributes of `objtype` that are not declared above (as
    text; per interface when xCAT keeps them in its nics table), and give
    the declared ones xCAT's description for `lsdef -h`."""
    attributes = objtype.attributes
    regex_allowed = objtype in (NODE, GROUP)
    for spec in listed:
        name, description = spec["name"], spec["description"]
        if name in _NOT_XCAT_S.get(objtype.name, ()):
            continue
        only_if = _only_if(spec["places"])
        if (declared := attributes.get(name)) is not None:
            meaning = description or declared.meaning
            attributes[name] = replace(declared, meaning=meaning, only_if=only_if)
            continue
        per_interface = any(place.startswith("nics.") for place, _ in spec["places"])
        kind = Kind.PER_INTERFACE if per_interface else Kind.TEXT
        attributes[name] = A(name, description, kind, regex_allowed=regex_allowed, only_if=only_if)


def _only_if(places: list[list[str]]) -> tuple[tuple[str, str], ...]:
    """The conditions of an attribute's places (`mgt=ipmi`, ...); none when
    any place has none: xCAT lets the attribute be set on any object then."""
    conditions = [condition.split("=", 1) for _, condition in places]
    if not all(len(condition) == 2 for condition in conditions):
        return ()
    return tuple(dict.fromkeys((a, v) for a, v in conditions))


_XCAT = json.loads(_XCAT_ATTRIBUTES.read_text(encoding="utf-8"))
# xCAT's other types an administrator defines (route, zone, rack, boottarget,
# osdistro, ...): their attributes are all xCAT's, kept as given.
for _name, _key in _XCAT["keys"].items():
    TYPES.setdefault(_name, ObjectType(_name, _key, f"xCAT's {_name} object", {}))
for _name, _listed in _XCAT["types"].items():
    _complete(TYPES[_name], _listed)

# xCAT's passwd table: the user and password each kind of component (its
# `key`: ipmi, redfish, system, ...) is reached with when a node names none.
# xCAT has no object type for it, so no def command shows it (TYPES); only
# the table commands do.  A row is named by its key alone: xCAT keys the
# table by key and username, but its BMC plugins read the first row of a key.
PASSWD = ObjectType(
    "passwd",
    "key",
    "Default user names and passwords of cluster components",
    _declare(
        A("username", "The default user name for this kind of component"),
        A("password", "The default password for this kind of component"),
        A("cryptmethod", "How a system password is encrypted (md5, sha256, sha512)"),
        A("authdomain", "The domain in which this entry has meaning"),
        A("comments", "Free text"),
        A("disable", "Set to 1 or yes to disable the row", Kind.CHOICE, YES_NO),
    ),
)

# Every type the database keeps a table of: the def commands' and the tables' own.
STORED: dict[str, ObjectType] = {**TYPES, PASSWD.name: PASSWD}

_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")


def check_name(object_type: ObjectType, name: str) -> str | None:
    """Why `name` cannot name an object, or None.

    Names become file and directory names later (boot files, image
    directories), so nothing that could leave a directory is accepted.
    """
    if object_type is POLICY:
        try:
            float(name)
        except ValueError:
            return f"policy names are priorities (numbers like 1.2), not '{name}'"
        return None
    if len(name) > 253 or not _NAME.fullmatch(name) or ".." in name:
        return (
            f"'{name}' is not a valid {object_type.name} name: use letters, digits, "
            "'.', '-' and '_' (no '/', '..', spaces or control characters)"
        )
    return None
