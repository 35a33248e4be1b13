"""nodeset as an administrator uses it, through the real client against a real
daemon: osimages packed by the real packimage (from a tiny root image with a
stand-in kernel and initrd), the files each boot loader fetches, the node
definitions, and every reason one node can fail while the others go on."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from .cluster import Cluster

NODE_ERROR = "{node}: Error: {text}"  # xCAT's form of an error about one node


def make_image(
    cluster: Cluster, name: str, osarch: str = "x86_64", *, pack: bool = True, **attributes
) -> Path:
    """An osimage with a one-file root image, a kernel and an initrd; packed
    with the real packimage unless `pack` is false."""
    rootimgdir = cluster.root / "install/netboot/debian12" / osarch / name
    (rootimgdir / "rootimg/etc").mkdir(parents=True)
    (rootimgdir / "rootimg/etc/hostname").write_text("node\n")
    (rootimgdir / "kernel").write_bytes(b"a kernel for " + name.encode())
    (rootimgdir / "initrd-stateless.gz").write_bytes(b"an initrd for " + name.encode())
    given = [f"{key}={value}" for key, value in attributes.items()]
    cluster.ok("mkdef", "-t", "osimage", "-o", name, "provmethod=netboot", "osvers=debian12",
       f"osarch={osarch}", "profile=service", f"rootimgdir={rootimgdir}", *given)  # fmt: skip
    if pack:
        cluster.ok("packimage", "-c", "zstd", name)
    return rootimgdir


@pytest.fixture(scope="module")
def cluster(shared_cluster: Cluster) -> Cluster:
    """One cluster for the module, its DHCP set up, with the images the tests boot."""
    shared_cluster.ok("mkdef", "-t", "network", "-o", "loopback", "net=127.0.0.0",
       "mask=255.0.0.0")  # fmt: skip
    shared_cluster.ok("makedhcp", "-n")
    make_image(shared_cluster, "svc", addkcmdline="quiet rd.shell=0")
    make_image(shared_cluster, "svc-ppc", "ppc64le")
    make_image(shared_cluster, "never-packed", pack=False)
    (make_image(shared_cluster, "half-built") / ".genimage.incomplete").touch()
    (make_image(shared_cluster, "no-kernel") / "kernel").unlink()
    make_image(shared_cluster, "bad-cmdline", pack=False, addkcmdline="quiet; reboot ${x}")
    return shared_cluster


def tftp(cluster: Cluster, path: str) -> Path:
    return cluster.root / "tftpboot" / path


def attributes(cluster: Cluster, node: str, *names: str) -> dict[str, str]:
    out = cluster.ok("lsdef", node, "-i", ",".join(names))
    return dict(line.strip().split("=", 1) for line in out.splitlines()[1:])


# -- osimage ------------------------------------------------------------------------------


def test_osimage_sets_the_nodes_and_writes_their_ipxe_scripts(cluster):
    cluster.ok("mkdef", "ip[1-2]", "groups=ipxe", "mac=|ip(\\d+)|52:54:00:00:01:0($1)|",
       "ip=|ip(\\d+)|127.0.1.($1)|")  # fmt: skip
    assert cluster.ok("nodeset", "ipxe", "osimage=svc") == (
        "ip1: netboot debian12-x86_64-service\nip2: netboot debian12-x86_64-service\n"
    )
    assert attributes(cluster, "ip1", "provmethod", "os", "arch", "profile", "currstate") == {
        "provmethod": "svc",
        "os": "debian12",
        "arch": "x86_64",
        "profile": "service",
        "currstate": "netboot debian12-x86_64-service",
    }
    http = f"http://127.0.0.1:{cluster.http_port}"
    packed = cluster.root / "install/netboot/debian12/x86_64/svc/rootimg.cpio.zst"
    images = f"{http}{cluster.root}/tftpboot/xcat/osimage/svc"
    cmdline = (
        f"imgurl={http}{packed} XCAT=127.0.0.1:{cluster.port} "
        f"XCATCA=sha256:{cluster.ca_fingerprint} NODE=ip1 FC=0 "
        f"BOOTIF=52:54:00:00:01:01 XCATSTATUS={http}/xcatd/status quiet rd.shell=0"
    )
    assert tftp(cluster, "xcat/xnba/nodes/ip1").read_text() == (
        "#!ipxe\n"
        "#netboot debian12-x86_64-service\n"
        f"imgfetch -n kernel {images}/kernel\n"
        "imgload kernel\n"
        f"imgargs kernel {cmdline}\n"
        f"imgfetch -n initrd {images}/initrd-stateless.gz\n"
        "imgexec kernel\n"
    )
    uefi = tftp(cluster, "xcat/xnba/nodes/ip1.uefi").read_text()
    assert f"imgargs kernel {cmdline} initrd=initrd\n" in uefi
    rootimgdir = packed.parent
    for name in ("kernel", "initrd-stateless.gz"):
        copied = tftp(cluster, f"xcat/osimage/svc/{name}")
        assert copied.read_bytes() == (rootimgdir / name).read_bytes()
    # What the DHCP answers name for plain PXE firmware is there, from the ipxe package.
    assert tftp(cluster, "xcat/xnba.kpxe").read_bytes() == (
        Path("/usr/lib/ipxe/undionly.kpxe").read_bytes()
    )
    assert (
        tftp(cluster, "xcat/xnba.efi").read_bytes() == Path("/usr/lib/ipxe/ipxe.efi").read_bytes()
    )
    assert cluster.ok("nodeset", "ipxe", "stat") == (
        "ip1: netboot debian12-x86_64-service\nip2: netboot debian12-x86_64-service\n"
    )


def test_the_command_line_names_the_nodes_servers_and_serial_console(cluster):
    cluster.ok("mkdef", "sv1", "groups=servers", "mac=52:54:00:00:02:01", "ip=10.20.0.1",
       "xcatmaster=10.20.0.254", "tftpserver=10.20.0.253", "serialport=1",
       "serialspeed=115200", "serialflow=hard")  # fmt: skip
    cluster.ok("nodeset", "sv1", "osimage=svc")
    script = tftp(cluster, "xcat/xnba/nodes/sv1").read_text()
    port = cluster.http_port
    # No nfsserver: the image comes from the TFTP server.
    assert f"imgfetch -n kernel http://10.20.0.253:{port}{cluster.root}/tftpboot/" in script
    args = script.split("imgargs kernel ")[1].split("\n")[0].split()
    assert args[0].startswith(f"imgurl=http://10.20.0.253:{port}{cluster.root}/install/")
    assert args[1:] == [
        f"XCAT=10.20.0.254:{cluster.port}", f"XCATCA=sha256:{cluster.ca_fingerprint}",
        "NODE=sv1", "FC=0", "BOOTIF=52:54:00:00:02:01",
        f"XCATSTATUS=http://10.20.0.254:{port}/xcatd/status",
        "console=tty0", "console=ttyS1,115200n8r", "quiet", "rd.shell=0",
    ]  # fmt: skip
    cluster.ok("chdef", "sv1", "nfsserver=10.20.0.252")
    cluster.ok("nodeset", "sv1", "osimage=svc")
    assert f"imgurl=http://10.20.0.252:{port}" in tftp(cluster, "xcat/xnba/nodes/sv1").read_text()


def test_plain_osimage_boots_the_image_the_node_was_set_to(cluster):
    cluster.ok("mkdef", "pm1", "groups=pm", "mac=52:54:00:00:03:01", "ip=127.0.3.1")
    cluster.ok("nodeset", "pm1", "osimage=svc")
    cluster.ok("nodeset", "pm1", "boot")
    assert cluster.ok("nodeset", "pm1", "osimage") == "pm1: netboot debian12-x86_64-service\n"
    cluster.ok("mkdef", "pm2", "groups=pm", "mac=52:54:00:00:03:02", "ip=127.0.3.2")
    rc, out, err = cluster.outcome("nodeset", "pm2", "osimage")
    assert (rc, out) == (1, "")
    assert (
        err
        == NODE_ERROR.format(
            node="pm2", text="no osimage given and provmethod is not set: use osimage=<image>"
        )
        + "\n"
    )


def test_the_kernel_and_initrd_are_copied_once_per_image(cluster):
    cluster.ok("mkdef", "cp[1-3]", "groups=copies", "mac=|cp(\\d+)|52:54:00:00:04:0($1)|",
       "ip=|cp(\\d+)|127.0.4.($1)|")  # fmt: skip
    cluster.ok("nodeset", "copies", "osimage=svc")
    kernel = tftp(cluster, "xcat/osimage/svc/kernel")
    first = kernel.stat()
    cluster.ok("nodeset", "copies", "osimage=svc")
    assert kernel.stat().st_ino == first.st_ino  # the same file: not copied again
    source = cluster.root / "install/netboot/debian12/x86_64/svc/kernel"
    source.write_bytes(b"a newer kernel")
    cluster.ok("nodeset", "cp1", "osimage=svc")
    assert kernel.read_bytes() == b"a newer kernel"
    assert kernel.stat().st_ino != first.st_ino  # replaced whole, never rewritten in place
    source.write_bytes(b"the newest kernel")  # xCAT's nodeset --noupdateinitrd keeps the copy
    cluster.ok("nodeset", "cp1", "osimage=svc", "--noupdateinitrd")
    assert kernel.read_bytes() == b"a newer kernel"


def test_boot_and_offline_leave_the_network_boot(cluster):
    cluster.ok("mkdef", "lv1", "groups=leave", "mac=52:54:00:00:05:01", "ip=127.0.5.1")
    cluster.ok("nodeset", "lv1", "osimage=svc")
    assert cluster.ok("nodeset", "lv1", "boot") == "lv1: boot\n"
    for name in ("lv1", "lv1.uefi"):
        assert tftp(cluster, f"xcat/xnba/nodes/{name}").read_text() == "#!ipxe\n#boot\nexit\n"
    assert attributes(cluster, "lv1", "currstate", "provmethod") == {
        "currstate": "boot", "provmethod": "svc"
    }  # fmt: skip
    # xCAT's -V and --ignorekernelchk (no drivers are injected here) change nothing of it.
    assert cluster.ok("nodeset", "lv1", "offline", "-V", "--ignorekernelchk") == "lv1: offline\n"
    assert tftp(cluster, "xcat/xnba/nodes/lv1").read_text() == "#!ipxe\n#offline\nexit\n"
    assert cluster.ok("nodeset", "lv1", "stat") == "lv1: offline\n"


def test_rmdef_C_takes_nodes_off_the_network_boot_before_removing_them(cluster):
    """xCAT's rmdef -C runs nodeset offline first: a removed node finds no
    boot file that would boot it; the names that are no nodes are said."""
    cluster.ok("mkdef", "rc1", "groups=gone", "mac=52:54:00:00:06:01", "ip=127.0.6.1")
    cluster.ok("nodeset", "rc1", "osimage=svc")
    removed = cluster.run("rmdef", "-C", "rc1,rc2")
    assert (removed.returncode, removed.stdout, removed.stderr) == (
        1,
        "1 object definitions have been removed.\n",
        "Error: Could not find an object named 'rc2' of type 'node'.\n",
    )
    assert tftp(cluster, "xcat/xnba/nodes/rc1").read_text() == "#!ipxe\n#offline\nexit\n"
    assert cluster.run("nodels", "rc1").returncode == 1


def test_a_node_without_boot_files_is_offline(cluster):
    cluster.ok("mkdef", "new1", "groups=fresh")
    assert cluster.ok("nodeset", "new1", "stat") == "new1: offline\n"


# -- the other boot loaders ---------------------------------------------------------------


def test_grub2_configs_are_linked_by_mac_and_hex_ip_beside_a_network_grub(cluster):
    cluster.ok("mkdef", "gb1", "groups=grub", "netboot=grub2", "mac=52:54:00:AA:06:01",
       "ip=127.0.6.1")  # fmt: skip
    cluster.ok("nodeset", "gb1", "osimage=svc")
    config = tftp(cluster, "boot/grub2/gb1").read_text()
    assert config.startswith("#netboot debian12-x86_64-service\nset timeout=5\n")
    assert "    set root=tftp,127.0.0.1\n    echo Loading Install kernel ...\n" in config
    assert "    linux /xcat/osimage/svc/kernel imgurl=" in config
    assert "    initrd /xcat/osimage/svc/initrd-stateless.gz\n" in config
    for link in ("grub.cfg-01-52-54-00-aa-06-01", "grub.cfg-7F000601"):
        assert os.readlink(tftp(cluster, f"boot/grub2/{link}")) == "gb1"
    assert tftp(cluster, "boot/grub2/grub2.x86_64").read_bytes()[:2] == b"MZ"
    assert (
        tftp(cluster, "xcat/xnba/nodes/gb1.uefi")
        .read_text()
        .endswith("\nchain tftp://127.0.0.1/boot/grub2/grub2.x86_64\n")
    )


def test_pxelinux_config_is_linked_by_hex_ip_beside_pxelinux(cluster):
    cluster.ok("mkdef", "px1", "groups=pxe", "netboot=pxe", "mac=52:54:00:00:07:01",
       "ip=127.0.7.1")  # fmt: skip
    cluster.ok("nodeset", "px1", "osimage=svc")
    config = tftp(cluster, "pxelinux.cfg/px1").read_text()
    assert " KERNEL xcat/osimage/svc/kernel\n" in config
    assert " APPEND initrd=xcat/osimage/svc/initrd-stateless.gz imgurl=http://" in config
    assert os.readlink(tftp(cluster, "pxelinux.cfg/7F000701")) == "px1"
    # The firmware runs iPXE first (the DHCP answer is the same for every node).
    assert (
        tftp(cluster, "xcat/xnba/nodes/px1")
        .read_text()
        .endswith(
            "set 209:string pxelinux.cfg/px1\n"
            "set 210:string tftp://127.0.0.1/\n"
            "chain tftp://127.0.0.1/pxelinux.0\n"
        )
    )
    assert tftp(cluster, "pxelinux.0").read_bytes() == (
        Path("/usr/lib/PXELINUX/pxelinux.0").read_bytes()
    )
    assert tftp(cluster, "ldlinux.c32").is_file()


def test_petitboot_config_is_linked_by_lower_case_hex_ip(cluster):
    cluster.ok("mkdef", "pb1", "groups=power", "netboot=petitboot", "mac=52:54:00:00:08:01",
       "ip=127.0.8.10")  # fmt: skip
    assert cluster.ok("nodeset", "pb1", "osimage=svc-ppc") == (
        "pb1: netboot debian12-ppc64le-service\n"
    )
    config = tftp(cluster, "petitboot/pb1").read_text()
    assert "\tkernel http://127.0.0.1:" in config and "/xcat/osimage/svc-ppc/kernel\n" in config
    assert os.readlink(tftp(cluster, "7f00080a")) == "petitboot/pb1"
    assert attributes(cluster, "pb1", "arch")["arch"] == "ppc64le"


def test_links_by_an_old_mac_or_ip_go_when_the_node_changes_or_leaves_dhcp(cluster):
    cluster.ok("mkdef", "mv1", "groups=moving", "netboot=grub2", "mac=52:54:00:00:0f:01",
       "ip=127.0.15.1")  # fmt: skip
    cluster.ok("nodeset", "mv1", "osimage=svc")
    cluster.ok("chdef", "mv1", "mac=52:54:00:00:0f:02", "ip=127.0.15.2")
    cluster.ok("nodeset", "mv1", "osimage=svc")
    grub2 = tftp(cluster, "boot/grub2")
    links = [p.name for p in grub2.iterdir() if p.is_symlink() and p.readlink() == Path("mv1")]
    assert sorted(links) == ["grub.cfg-01-52-54-00-00-0f-02", "grub.cfg-7F000F02"]
    # Another loader: the GRUB2 links go, pxelinux's come.
    cluster.ok("chdef", "mv1", "netboot=pxe")
    cluster.ok("nodeset", "mv1", "osimage=svc")
    assert not any(p.is_symlink() and p.readlink() == Path("mv1") for p in grub2.iterdir())
    assert os.readlink(tftp(cluster, "pxelinux.cfg/7F000F02")) == "mv1"
    cluster.ok("makedhcp", "-d", "mv1")
    assert not tftp(cluster, "pxelinux.cfg/7F000F02").is_symlink()
    assert tftp(cluster, "pxelinux.cfg/mv1").is_file()


# -- what stops one node, and not the others -------------------------------------------------


def test_each_node_that_cannot_boot_says_why_and_the_others_are_set(cluster):
    good = ["mac=52:54:00:00:09:01", "ip=127.0.9.1"]
    cluster.ok("mkdef", "bad-ok", "groups=bad", *good)
    cluster.ok("mkdef", "bad-nomac", "groups=bad", "ip=127.0.9.2")
    cluster.ok("mkdef", "bad-noip", "groups=bad", "mac=52:54:00:00:09:03")
    cluster.ok("mkdef", "bad-pxe", "groups=bad", "netboot=pxe", *good)
    cluster.ok("mkdef", "bad-serial", "groups=bad", "serialport=0", *good)
    rc, out, err = cluster.outcome("nodeset", "bad", "osimage=svc-ppc")
    # Only grub2 or petitboot boot ppc64le; xnba is the default.
    assert rc == 1
    assert out == ""
    assert sorted(err.splitlines()) == sorted(
        NODE_ERROR.format(node=node, text=text)
        for node, text in [
            ("bad-ok", "netboot=xnba cannot boot ppc64le: use grub2 or petitboot"),
            ("bad-nomac", "no MAC address: set one with chdef <node> mac=<mac>"),
            ("bad-noip", "no IP address: set one with chdef <node> ip=<address>"),
            ("bad-pxe", "netboot=pxe cannot boot ppc64le: use grub2 or petitboot"),
            ("bad-serial", "netboot=xnba cannot boot ppc64le: use grub2 or petitboot"),
        ]
    )
    rc, out, err = cluster.outcome("nodeset", "bad", "osimage=svc")
    assert rc == 1
    assert (
        out == "bad-ok: netboot debian12-x86_64-service\nbad-pxe: netboot debian12-x86_64-service\n"
    )
    assert sorted(err.splitlines()) == sorted(
        NODE_ERROR.format(node=node, text=text)
        for node, text in [
            ("bad-nomac", "no MAC address: set one with chdef <node> mac=<mac>"),
            ("bad-noip", "no IP address: set one with chdef <node> ip=<address>"),
            ("bad-serial", "serialport is set but serialspeed is not: set both, or neither"),
        ]
    )
    assert attributes(cluster, "bad-nomac", "currstate") == {"currstate": ""}


@pytest.mark.parametrize(
    ("image", "why"),
    [
        ("nowhere", "Cannot find image 'nowhere' from the osimage table."),
        ("never-packed", "osimage 'never-packed' is not packed: run packimage never-packed"),
        ("half-built", "osimage 'half-built' is not packed: its last genimage did not finish; "
                       "run genimage half-built, then packimage half-built"),
        ("no-kernel", "osimage 'no-kernel' has no {root}/install/netboot/debian12/x86_64/"
                      "no-kernel/kernel: run genimage no-kernel"),
        # iPXE would expand ${x}, GRUB2 run 'reboot' as a command of its own.
        ("bad-cmdline", "osimage 'bad-cmdline': addkcmdline 'quiet; reboot ${{x}}' has characters "
                        "boot loaders read as syntax (quotes, ;, $, `, \\, {{, }}, |, &, <, >, "
                        "control characters)"),
    ],
)  # fmt: skip
def test_an_image_that_cannot_boot_is_each_nodes_error(cluster, image, why):
    cluster.ok("mkdef", f"im-{image}", "groups=images", "mac=52:54:00:00:0a:01", "ip=127.0.10.1")
    rc, out, err = cluster.outcome("nodeset", f"im-{image}", f"osimage={image}")
    assert (rc, out) == (1, "")
    assert err == NODE_ERROR.format(node=f"im-{image}", text=why.format(root=cluster.root)) + "\n"


def test_servers_and_macs_that_would_be_read_as_syntax_are_each_nodes_error(cluster):
    good = ["mac=52:54:00:00:0c:01", "ip=127.0.12.1"]
    cluster.ok("mkdef", "inj-ok", "groups=inject", "netboot=grub2", *good)
    # Would close dhcpd.hosts' filename "..." and run a command as root.
    cluster.ok("mkdef", "inj-nfs", "groups=inject", *good,
       'nfsserver=mn"; } on commit { execute("sh"); } host y { filename "z')  # fmt: skip
    cluster.ok("mkdef", "inj-tftp", "groups=inject", *good, "tftpserver=-oops")
    # A regular expression's value is not checked by the store: this one is a path.
    cluster.ok("mkdef", "inj-mac", "groups=inject", "netboot=grub2", "ip=127.0.12.4",
       "mac=/inj-mac/x\\/..\\/..\\/pwned/")  # fmt: skip
    rc, out, err = cluster.outcome("nodeset", "inject", "osimage=svc")
    assert (rc, out) == (1, "inj-ok: netboot debian12-x86_64-service\n")
    errors = sorted(err.splitlines())
    assert errors == [
        NODE_ERROR.format(node="inj-mac", text="mac 'x/../../pwned' is not a MAC address "
                          "like 52:54:00:12:34:56"),
        NODE_ERROR.format(node="inj-nfs", text="nfsserver 'mn\"; } on commit { execute(\"sh\"); } "
                          "host y { filename \"z' is not an IP address or host name"),
        NODE_ERROR.format(node="inj-tftp",
                          text="tftpserver '-oops' is not an IP address or host name"),
    ]  # fmt: skip
    assert not (cluster.root / "tftpboot/pwned").exists()
    assert cluster.outcome("makedhcp", "inj-nfs")[2] == errors[1] + "\n"


@pytest.mark.parametrize(
    ("node", "why"),
    [
        ("default", "pxelinux reads pxelinux.cfg/default for nodes without a file"),
        ("grub.cfg", "GRUB2 reads its grub.cfg* files"),
        ("rs1.uefi", "it is the name of an iPXE script for UEFI firmware"),
        ("0A000C05", "pxelinux, GRUB2 and petitboot read files named by hex IP address"),
        ("01-52-54-00-00-0d-01", "pxelinux reads files named 01-<mac>"),
    ],
)
def test_names_boot_loaders_look_for_cannot_name_a_node(cluster, node, why):
    cluster.ok("mkdef", node, "groups=reserved", "netboot=pxe", "mac=52:54:00:00:0d:01",
       "ip=127.0.13.1")  # fmt: skip
    try:
        assert cluster.outcome("nodeset", node, "osimage=svc") == (
            1, "", NODE_ERROR.format(node=node, text=f"'{node}' cannot name a boot file: {why}; "
                                     "rename the node") + "\n"
        )  # fmt: skip
    finally:
        cluster.ok("rmdef", node)
    assert not tftp(cluster, f"pxelinux.cfg/{node}").exists()


def test_a_node_name_that_is_no_host_name_gets_no_boot_files(cluster):
    cluster.ok("mkdef", "odd_name", "groups=odd", "mac=52:54:00:00:0e:01", "ip=127.0.14.1")
    cluster.ok("chdef", "-t", "site", "clustersite", "dhcpsetup=n")
    try:
        rc, out, err = cluster.outcome("nodeset", "odd_name", "osimage=svc")
    finally:
        cluster.ok("chdef", "-t", "site", "clustersite", "dhcpsetup=y")
    assert (rc, out) == (1, "")
    assert (
        err
        == NODE_ERROR.format(
            node="odd_name",
            text="not a DHCP host name (letters, digits and '-'), which dnsmasq's answers need",
        )
        + "\n"
    )
    assert not tftp(cluster, "xcat/xnba/nodes/odd_name").exists()


def test_stat_says_which_boot_file_cannot_be_read(cluster):
    cluster.ok("mkdef", "st[1-2]", "groups=unreadable")
    tftp(cluster, "xcat/xnba/nodes/st1").mkdir(parents=True)
    tftp(cluster, "xcat/xnba/nodes/st2").write_bytes(b"#\xff\xfe\n")
    rc, out, err = cluster.outcome("nodeset", "unreadable", "stat")
    assert (rc, out) == (1, "")
    assert err.splitlines() == [
        NODE_ERROR.format(node="st1", text="cannot read its boot file: [Errno 21] Is a "
                          f"directory: '{tftp(cluster, 'xcat/xnba/nodes/st1')}'"),
        NODE_ERROR.format(node="st2", text="cannot read its boot file: 'utf-8' codec can't "
                          "decode byte 0xff in position 1: invalid start byte"),
    ]  # fmt: skip


def test_shell_and_unknown_actions_are_refused(cluster):
    cluster.ok("mkdef", "act1", "groups=actions")
    assert cluster.outcome("nodeset", "act1", "shell") == (
        1, "", "Error: nodeset shell boots xCAT's genesis image, which xcatd does not provide\n"
    )  # fmt: skip
    assert cluster.outcome("nodeset", "act1", "runcmd=bmcsetup") == (
        1, "", "Error: nodeset runcmd= boots xCAT's genesis image, which xcatd does not provide\n"
    )  # fmt: skip
    rc, _, err = cluster.outcome("nodeset", "act1", "install")
    assert rc == 1
    assert err.startswith(
        "Error: 'install' is not a nodeset action: use osimage[=<image>] | boot | offline | stat"
    )


# -- DHCP ---------------------------------------------------------------------------------


def test_nodeset_writes_the_dhcp_entries_unless_dhcpsetup_is_n(cluster):
    cluster.ok("mkdef", "dh1", "groups=dhcp", "mac=52:54:00:00:0b:01", "ip=127.0.11.1")
    cluster.ok("mkdef", "dh2", "groups=dhcp", "mac=52:54:00:00:0b:02", "ip=127.0.11.2")
    hosts = cluster.root / "etc/xcat/dhcp/dnsmasq-hosts"
    cluster.ok("nodeset", "dh1", "osimage=svc")
    assert "52:54:00:00:0b:01,127.0.11.1,dh1\n" in hosts.read_text()
    cluster.ok("chdef", "-t", "site", "clustersite", "dhcpsetup=n")
    try:
        cluster.ok("nodeset", "dh2", "osimage=svc")
    finally:
        cluster.ok("chdef", "-t", "site", "clustersite", "dhcpsetup=y")
    assert "node-dh2" not in hosts.read_text()


def test_dhcp_files_that_cannot_be_written_are_one_error_after_the_nodes_states(cluster):
    cluster.ok("mkdef", "dh3", "groups=dhcp", "mac=52:54:00:00:0b:03", "ip=127.0.11.3")
    directory = cluster.root / "etc/xcat/dhcp"
    hosts = directory / "dnsmasq-hosts"
    kept = hosts.rename(directory / "dnsmasq-hosts.kept")
    hosts.mkdir()
    try:
        rc, out, err = cluster.outcome("nodeset", "dh3", "osimage=svc")
    finally:
        hosts.rmdir()
        kept.rename(hosts)
    assert (rc, out) == (1, "dh3: netboot debian12-x86_64-service\n")
    assert err == (
        f"Error: cannot write the DHCP entries in {directory}: "
        f"[Errno 21] Is a directory: '{hosts}'\n"
    )


# -- which server the files name ----------------------------------------------------------


@pytest.fixture(scope="module")
def listening_elsewhere(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A management node whose xcatd listens on 127.0.0.2 only: loopback's
    address, 127.0.0.1, is this host's, but nothing of xcatd answers there."""
    mn = Cluster(tmp_path_factory.mktemp("elsewhere"), address="127.0.0.2")
    assert mn.init().returncode == 0
    mn.start()
    try:
        make_image(mn, "svc")
        yield mn
    finally:
        mn.stop()


def test_nodeset_refuses_an_address_xcatd_does_not_listen_on_and_names_what_to_set(
    listening_elsewhere,
):
    mn = listening_elsewhere
    mn.ok("mkdef", "ls1", "groups=listen", "mac=52:54:00:00:14:01", "ip=127.0.20.1")
    refused = NODE_ERROR.format(
        node="ls1",
        text="xcatd does not listen on 127.0.0.1, this host's address on 127.0.0.0/8 (lo): "
        f"listen is 127.0.0.2 in {mn.root}/etc/xcat/xcatd.toml; add 127.0.0.1 there and "
        "restart xcatd, or name an address it listens on: chdef ls1 xcatmaster=<address>",
    )
    assert mn.outcome("nodeset", "ls1", "osimage=svc") == (1, "", refused + "\n")
    assert not tftp(mn, "xcat/xnba/nodes/ls1").exists()
    # As in xCAT, this host's address on the node's network wins over site.master.
    mn.ok("chdef", "-t", "site", "clustersite", "master=127.0.0.2")
    assert mn.outcome("nodeset", "ls1", "osimage=svc") == (1, "", refused + "\n")
    # The node's xcatmaster wins over both.
    mn.ok("chdef", "ls1", "xcatmaster=127.0.0.2")
    assert mn.ok("nodeset", "ls1", "osimage=svc") == "ls1: netboot debian12-x86_64-service\n"
    script = tftp(mn, "xcat/xnba/nodes/ls1").read_text()
    assert f"imgfetch -n kernel http://127.0.0.2:{mn.http_port}{mn.root}/tftpboot/" in script
    assert f" XCAT=127.0.0.2:{mn.port} " in script
    assert f" XCATSTATUS=http://127.0.0.2:{mn.http_port}/xcatd/status" in script


def test_a_node_on_a_network_this_host_is_not_on_is_served_by_site_master(listening_elsewhere):
    mn = listening_elsewhere
    mn.ok("mkdef", "rm1", "groups=remote", "mac=52:54:00:00:14:02", "ip=10.99.0.5")
    mn.ok("chdef", "-t", "site", "clustersite", "master=127.0.0.2")
    assert mn.outcome("nodeset", "rm1", "osimage=svc") == (1, "", NODE_ERROR.format(
        node="rm1", text="127.0.0.2, site.master, is a loopback address, which the node at "
        "10.99.0.5 cannot reach: chdef -t site clustersite master=<address>") + "\n"
    )  # fmt: skip
    mn.ok("chdef", "-t", "site", "clustersite", "master=")
    mn.ok("mkdef", "-t", "network", "-o", "remote", "net=10.99.0.0", "mask=255.255.0.0")
    assert mn.outcome("nodeset", "rm1", "osimage=svc") == (1, "", NODE_ERROR.format(
        node="rm1", text="no interface of this host is on network remote (10.99.0.0/16) of "
        "its ip 10.99.0.5, and site.master is not set: give the node an xcatmaster (chdef rm1 "
        "xcatmaster=<address>) or set site.master (chdef -t site clustersite master=<address>)"
    ) + "\n")  # fmt: skip
    # Another host's address (a router's way to this one, say) is its own to serve.
    mn.ok("chdef", "-t", "site", "clustersite", "master=10.99.0.254")
    assert mn.ok("nodeset", "rm1", "osimage=svc") == "rm1: netboot debian12-x86_64-service\n"
    assert f" XCAT=10.99.0.254:{mn.port} " in tftp(mn, "xcat/xnba/nodes/rm1").read_text()


def test_h_v_and_no_arguments_answer_with_xcats_usage(cluster):
    usage = (
        "Usage:\n   Common:\n      nodeset [-h|--help|-v|--version]\n"
        "      nodeset <noderange> [boot|osimage[=<imagename>]|offline|stat]\n"
    )
    assert cluster.outcome("nodeset") == (0, usage, "")
    assert cluster.outcome("nodeset", "-h") == (0, usage, "")
    assert cluster.outcome("nodeset", "--version") == (0, "Version 0.1.0\n", "")
