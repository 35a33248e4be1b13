"""/install on the service nodes over NFS: site.installloc (issue 14, item 3).

The management node (MN) in a network namespace with a bridge, its NFS
server NFS-Ganesha (tests/nfs.py: this kernel has no nfsd) in that
namespace; a service node's host on the bridge.  `nodeset` of the service
node writes the export of installdir and makes the running server read it;
a real NFSv4 client (libnfs) on the service node's host then reads the
MN's packed image through it, and cannot write.  A service node whose
mount fails sets up none of its nodes and says why, once in its log and
once per node.  The mount by a service node's own kernel, and a compute
node booted from the image it serves from there, are in tests/test_netboot.py
(this host's kernel cannot mount NFS).
"""

from __future__ import annotations

import ipaddress
import subprocess
from pathlib import Path

import pytest

from tests.cluster import Cluster
from tests.netboot import Machine
from tests.nfs import ganesha, installdir_of, nfs_cat, reloaded
from tests.test_hierarchy import COMPUTE_IMAGE, SERVICE_IMAGE, STATE, define_compute_nodes
from tests.test_hierarchy import mn as mn  # the fixture
from tests.test_hierarchy import net as net  # the fixture
from tests.test_hierarchy import sn as sn  # the fixture
from tests.test_hierarchy import sn_host as sn_host  # the fixture
from tests.waiting import wait_for
from xcatd.boot.nfsexport import exports_line
from xcatd.servicenode.nfsmount import Installloc, MountError

IMAGE_DIR = Path("netboot/debian12/x86_64") / COMPUTE_IMAGE


def set_up_sn1(mn: Cluster, sn_host: Machine) -> subprocess.CompletedProcess:
    mn.ok("mkdef", "sn1", "groups=service", "mac=52:54:00:78:00:02", f"ip={sn_host.address}")
    return mn.run("nodeset", "sn1", f"osimage={SERVICE_IMAGE}")


def test_nodeset_of_a_service_node_exports_installdir_read_only_over_nfs(mn, sn_host, tmp_path):
    installdir = installdir_of(mn)
    mn.ok("chdef", "-t", "site", f"installloc={installdir}")
    with ganesha(mn.prefix, mn.root, tmp_path / "ganesha"):
        result = set_up_sn1(mn, sn_host)

        assert result.returncode == 0, result.stderr
        assert "site.installloc" not in result.stderr
        assert result.stdout == f"sn1: {STATE}\n"
        export = (mn.root / "etc/ganesha/xcatd.conf").read_text()
        assert f'    Path = "{installdir}";\n' in export
        assert "    CLIENT { Clients = 10.78.0.0/24; Access_Type = RO; }\n" in export
        assert f'%include "{mn.root}/etc/ganesha/xcatd.conf"\n' in (
            (mn.root / "etc/ganesha/ganesha.conf").read_text()
        )
        wait_for(lambda: reloaded(tmp_path / "ganesha"), "ganesha reading its exports again")
        # sn1's host reads the packed image as the MN has it.
        sums = installdir / IMAGE_DIR / "rootimg.cpio.zst.sha256"
        read = nfs_cat(sn_host.prefix, mn.address, sums)
        assert (read.returncode, read.stdout) == (0, sums.read_bytes()), read.stderr
        # ... and cannot write there.
        (tmp_path / "note").write_text("written by sn1\n")
        url = f"nfs://{mn.address}{installdir}/note?version=4"
        wrote = subprocess.run([*sn_host.prefix, "nfs-cp", tmp_path / "note", url],
                               capture_output=True, text=True, timeout=60)  # fmt: skip
        assert wrote.returncode != 0 and not (installdir / "note").exists(), wrote.stdout

        # Nothing changed: the server is left alone.
        assert mn.run("nodeset", "sn1", f"osimage={SERVICE_IMAGE}").returncode == 0
        assert not reloaded(tmp_path / "ganesha", times=2)


def test_nodeset_says_in_one_line_that_the_nfs_server_is_not_running(mn, sn_host):
    installdir = installdir_of(mn)
    mn.ok("chdef", "-t", "site", f"installloc={installdir}")

    result = set_up_sn1(mn, sn_host)

    assert (result.returncode, result.stdout) == (0, f"sn1: {STATE}\n")  # sn1 still boots
    said = [line for line in result.stderr.splitlines() if "site.installloc" in line]
    assert said == [
        f"Warning: site.installloc: {installdir} is exported in {mn.root}/etc/ganesha/xcatd.conf,"
        " but nfs-ganesha is not running: systemctl start nfs-ganesha"
    ], result.stderr


def test_installloc_of_another_host_is_that_hosts_export(mn, sn_host):
    mn.ok("chdef", "-t", "site", "installloc=nfs1:/install")

    result = set_up_sn1(mn, sn_host)

    assert result.returncode == 0 and "site.installloc" not in result.stderr, result.stderr
    assert not (mn.root / "etc/ganesha/xcatd.conf").exists()


def test_a_service_node_that_cannot_mount_installloc_sets_up_none_of_its_nodes(mn, sn):
    """No NFS server answers at the MN's address: sn1's mount fails, once in
    its log; its nodes each get the reason, the MN's own node is set up."""
    define_compute_nodes(mn)
    installloc = f"10.78.0.1:{installdir_of(mn)}"
    mn.ok("chdef", "-t", "site", f"installloc={installloc}")

    result = mn.run("nodeset", "compute", f"osimage={COMPUTE_IMAGE}")

    assert (result.returncode, result.stdout) == (1, f"cn13: {STATE}\n"), result.stderr
    errors = [line for line in result.stderr.splitlines() if "Error" in line]
    assert [line.split(": mount", 1)[0] for line in errors] == [
        f"cn1{n}: Error: osimage {COMPUTE_IMAGE} is not reachable" for n in (1, 2)
    ], result.stderr
    logged = [line for line in sn.logs().splitlines() if "site.installloc" in line]
    assert len(logged) == 1, sn.logs()[-2000:]
    assert f"site.installloc: cannot mount {installloc} on {sn.root}/install: " in logged[0]
    # Nothing half-done: no copy, no boot files for its nodes.
    assert not (sn.root / "install" / IMAGE_DIR / "rootimg.cpio.zst").exists()
    assert not (sn.root / "tftpboot/xcat/xnba/nodes/cn11").exists()

    # Restarted, sn1 mounts it again before it serves, from the definitions
    # it last took: it tries, and says so once more.  Its nodes, never set
    # up, need no image: setting them up again tries no mount of its own.
    sn.stop()
    assert sn.start_restored().endswith("restored the boot files of 0 nodes")
    logged = [line for line in sn.logs().splitlines() if "site.installloc" in line]
    assert len(logged) == 2 and "cannot mount" in logged[1], sn.logs()[-2000:]


def test_installloc_is_hostname_and_path_or_a_path_of_the_management_node():
    assert Installloc.parse("") is None
    assert Installloc.parse("/install") == Installloc("", "/install")
    assert Installloc.parse("nfs1:/install").source("10.0.0.1") == "nfs1:/install"
    assert Installloc.parse("/install").source("10.0.0.1") == "10.0.0.1:/install"
    with pytest.raises(MountError, match="'install' is not hostname:/path or /path"):
        Installloc.parse("install")


def test_the_exports_line_is_read_only_to_each_network():
    nets = [ipaddress.IPv4Network("10.78.0.0/24"), ipaddress.IPv4Network("10.79.0.0/16")]
    assert exports_line(Path("/install"), nets) == (
        "/install 10.78.0.0/24(ro,no_root_squash,sync,no_subtree_check) "
        "10.79.0.0/16(ro,no_root_squash,sync,no_subtree_check)\n"
    )
