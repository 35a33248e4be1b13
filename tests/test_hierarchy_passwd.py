"""A service node drives its nodes' BMCs with the management node's passwd
rows, as xCAT's service nodes read the passwd table (DESIGN.md §9).

A management node (MN) and an enrolled service node (sn1), each a real
daemon process on the loopback network; a compute node cn1 served by sn1,
its BMC a simulated one (ipmi_sim in front of a real QEMU machine,
tests/bmc.py), with no bmcusername or bmcpassword of its own: only the MN's
`chtab key=ipmi passwd.username=… passwd.password=…`.  The administrator's
rpower on the MN is carried out by sn1, which takes the rows with the
definitions (`getpasswd`, answered to a service node's own daemon only),
keeps them in memory, and takes them again when the table changes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.bmc import QEMU_CHASSIS, USER, BmcLab, bmc_lab
from tests.cluster import Cluster
from tests.sessions import credentials_for
from tests.terminal import HELP, LEAVE, Terminal
from tests.test_console import BOOT_TIMEOUT
from tests.test_enrollment import audited
from tests.test_enrollment import mn as mn  # the fixture
from tests.test_hierarchy_trust import as_its_daemon
from tests.test_hierarchy_trust import sn as sn  # the fixture
from xcatd.lab.chassis_control import GUEST_READY

PASSWORD, WRONG = "Sn-passwd-S3cret", "Wr0ng-passwd-9"


@pytest.fixture
def bmcs() -> Iterator[BmcLab]:
    with bmc_lab(QEMU_CHASSIS) as lab:
        yield lab


def serve_cn1(mn: Cluster, sn: Cluster, bmcs: BmcLab, *extra: str, console: bool = False) -> str:
    """cn1, served by sn1, its BMC's address and port only (with `console`,
    its BMC serves Serial over LAN); the passwd row for IPMI on the MN.
    Where its BMC is."""
    (bmc,) = bmcs.start(1, password=PASSWORD, console=console)
    # sn1 shares the loopback address with the MN: the MN reaches it at its port.
    mn.ok("chdef", "-t", "site", f"xcatdport={sn.port}")
    mn.ok("mkdef", "cn1", "groups=compute", "servicenode=sn1", "mgt=ipmi",
          f"bmc={bmc.address}", f"bmcport={bmc.port}", *extra)  # fmt: skip
    mn.ok("chtab", "key=ipmi", f"passwd.username={USER}", f"passwd.password={PASSWORD}")
    return f"{bmc.address}:{bmc.port}"


def test_rpower_through_a_service_node_uses_the_mns_passwd_row_and_its_changes(mn, sn, bmcs):
    bmc = serve_cn1(mn, sn, bmcs)

    assert mn.ok("rpower", "cn1", "stat") == "cn1: off\n"
    assert mn.ok("rpower", "cn1", "on") == "cn1: on\n"
    assert bmcs.bmcs[0].machine.pid() is not None  # the machine runs: sn1 powered it on
    assert mn.ok("rpower", "cn1", "stat") == "cn1: on\n"
    # Carried out by sn1, which took the rows once (after its start's): the
    # table did not change.
    audit_says(sn, "rpower", [("root", "allowed", 0)] * 3)
    audit_says(mn, "getpasswd", [("sn1", "allowed", 0)] * 2)

    mn.ok("chtab", "key=ipmi", f"passwd.password={WRONG}")
    result = mn.run("rpower", "cn1", "stat")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        f"cn1: Error: BMC {bmc} refused the password of user '{USER}': check passwd.password "
        "(key=ipmi)\n"
    )
    audit_says(mn, "getpasswd", [("sn1", "allowed", 0)] * 3)

    # Back, and a row disabled is not given: then sn1 says what to set.
    mn.ok("chtab", "key=ipmi", f"passwd.password={PASSWORD}")
    assert mn.ok("rpower", "cn1", "stat") == "cn1: on\n"
    mn.ok("chtab", "key=ipmi", "passwd.disable=1")
    result = mn.run("rpower", "cn1", "stat")
    assert result.stderr.startswith("cn1: Error: bmcusername and bmcpassword are not set: ")

    # The passwords reached sn1's memory only: not its disk, not its log.
    for secret in (PASSWORD, WRONG):
        assert not files_holding(sn.root, secret)
        assert secret not in mn.logs()
    assert "passwd rows: key=ipmi" in sn.logs()


def test_rcons_through_a_service_node_uses_the_mns_passwd_row(mn, sn, bmcs):
    """sn1 holds cn1's console once it has the row (taken with the
    definitions rcons brings it), logging it; the MN carries rcons there."""
    serve_cn1(mn, sn, bmcs, "cons=ipmi", console=True)
    console = Terminal(mn, "rcons", "cn1")
    try:
        console.wait_for(HELP)
        assert mn.ok("rpower", "cn1", "on") == "cn1: on\n"
        console.wait_for(GUEST_READY, BOOT_TIMEOUT)
        console.type(LEAVE)
        assert console.exit_code() == 0
    finally:
        console.close()
    assert "holding 1 consoles" in sn.logs()
    assert GUEST_READY in (sn.root / "var/log/xcat/consoles/cn1.log").read_text()
    audit_says(sn, "rcons", [("root", "allowed", 0)])
    assert not files_holding(sn.root, PASSWORD)


def audit_says(cluster: Cluster, command: str, rows: list[tuple[str, str, int]]) -> None:
    """The audit records of `command` (user, status, rc) are these, once written."""
    assert audited(cluster, command, len(rows)) == rows


def files_holding(root: Path, secret: str) -> list[Path]:
    """Every file under `root` (the database, its journal, logs, ...) whose
    bytes hold `secret`."""
    needle = secret.encode()
    return [path for path in root.rglob("*") if path.is_file() and needle in path.read_bytes()]


def test_getpasswd_is_answered_only_to_a_service_node_and_only_with_its_rows(mn, sn, bmcs,
                                                                             tmp_path):  # fmt: skip
    serve_cn1(mn, sn, bmcs)
    mn.ok("chtab", "key=redfish", "passwd.username=rf", "passwd.password=rf-secret")
    mn.ok("chtab", "key=system", "passwd.username=root", "passwd.password=sys-secret")

    # The MN's root, though the policy lets it run everything.
    by_root = mn.run("getpasswd")
    assert (by_root.returncode, by_root.stdout) == (1, "")
    assert by_root.stderr == (
        "Error: Permission denied for request: getpasswd is answered only to a service node's "
        "daemon, signed with its own certificate; 'root' is not one\n"
    )
    at_start = ("sn1", "allowed", 0)  # sn1 took its definitions as it started
    audit_says(mn, "getpasswd", [at_start, ("root", "denied", 1)])

    # sn1's own certificate, as its daemon asks: the row its node is driven with.
    as_sn1 = mn.run("getpasswd", env=as_its_daemon(mn, sn, tmp_path / "sn1-cred"))
    assert (as_sn1.returncode, as_sn1.stdout) == (0, f"key=ipmi username={USER} password=******\n")
    # Another service node serves no node: none.
    sn2 = credentials_for(mn, "sn2", "servicenode", tmp_path / "sn2")
    as_sn2 = mn.run("getpasswd", env={**mn.env, "XCAT_CRED_DIR": str(sn2)})
    assert (as_sn2.returncode, as_sn2.stdout) == (0, "no passwd rows are needed\n")
    audit_says(
        mn,
        "getpasswd",
        [at_start, ("root", "denied", 1), ("sn1", "allowed", 0), ("sn2", "allowed", 0)],
    )
    assert "rf-secret" not in mn.logs() and "sys-secret" not in mn.logs()
