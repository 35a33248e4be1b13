"""`xcatd lab demo` (what `bash .ci/demo` runs), end to end: the seed walked
on a new lab until the compute node, served by the booted service node,
reports `booted`; every administrator command shown before its output, each
phase timed, and the lab left running for the administrator to try more.

The walk is only meaningful whole (the service node must boot from the
image the walk built, then boot the compute node), so this is one system
test: under QEMU TCG on a 2-core machine, 10 to 15 minutes.  Its lab has a
root, namespace and port of its own (tests/test_lab.py's Lab), and the
media's packages come from the tests' cache.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from xcatd.lab.demo import COMPUTE, MYSERVICE, DemoError, edited
from xcatd.lab.state import State

from .cluster import BIN
from .media import CACHE
from .test_lab import Lab

DEMO_TIMEOUT = 3600  # the whole walk, on a machine loaded by other tests
# The commands an administrator reads, in the order the seed (then the
# compute node) needs them.
COMMANDS = [
    "xcatd lab up --service-nodes 1 --compute-nodes 1 --root",
    "xcatd lab media --out",
    "copycds ",
    "lsdef -t osimage | grep -i service",
    "lsdef -t osimage -l debian12-x86_64-netboot-service -z > ",
    "diff -u ",
    "cat ",  # | mkdef -z
    "xcatd bundle ",
    f"genimage {MYSERVICE}",
    "chroot ",
    "echo '/install *(ro,no_root_squash,sync,fsid=13)' > ",
    f"packimage -c zstd {MYSERVICE}",
    "chdef sn1 nicips.eth1=172.30.1.1 nicnetworks.eth1=sn1-net",
    f"nodeset service osimage={MYSERVICE}",
    "rnetboot service",
    "rcons sn1",
    "XCATHOST=172.30.0.11:3001 lsxcatd -t",
    f"genimage {COMPUTE}",
    f"packimage -c zstd {COMPUTE}",
    "makedhcp -n",
    f"nodeset cn1 osimage={COMPUTE}",
    "rnetboot cn1",
    "rcons cn1",
    "nodestat sn1,cn1",
]


@pytest.fixture
def lab() -> Iterator[Lab]:
    """A lab of the test's own under a short directory (a machine's QMP
    socket path must fit in 108 bytes), taken down whatever happens."""
    directory = Path(tempfile.mkdtemp(prefix="xcatd-demo-"))
    lab = Lab(directory / "lab")
    yield lab
    if State.load(lab.root) is not None:
        lab.xcatd("down")
    shutil.rmtree(directory, ignore_errors=True)


def test_the_demo_walks_the_seed_to_a_compute_node_booted_through_the_service_node(
    lab: Lab, capsys: pytest.CaptureFixture
):
    command = [BIN / "xcatd", "lab", "demo", "--root", str(lab.root), "--namespace",
               lab.namespace, "--port", str(lab.port), "--cache", str(CACHE)]  # fmt: skip

    walked = subprocess.run(command, capture_output=True, text=True, timeout=DEMO_TIMEOUT)

    shown = walked.stdout
    assert (walked.returncode, walked.stderr) == (0, ""), shown[-5000:] + walked.stderr
    typed = [line.removeprefix("$ ") for line in shown.splitlines() if line.startswith("$ ")]
    at = 0
    for expected in COMMANDS:  # each shown, in this order (others between them)
        at = next((n for n in range(at, len(typed)) if typed[n].startswith(expected)), -1)
        assert at >= 0, f"{expected!r} not shown after the earlier commands:\n" + "\n".join(typed)
    # The output after the commands: the images copycds made, the consoles
    # of both machines booting, the service node serving with its certificate.
    assert "debian12-x86_64-netboot-service  (osimage)\n" in shown
    for node in ("sn1", "cn1"):
        console = shown.split(f"$ rcons {node}", 1)[1]
        assert re.search(r"Linux version \d", console), console[:3000]
        assert f"xcatd: root image of {node} ready" in console
        assert re.search(rf"^# {node} reported 'booted' \d+ s after rnetboot$", console, re.M)
    assert "\nThis is a Service Node\n" in shown
    # Both answer, each probed from a host on its network (cn1 by sn1).
    assert shown.split("$ nodestat sn1\n", 1)[1].startswith("sn1: sshd\n"), shown[-3000:]
    both = shown.split("$ nodestat sn1,cn1\n", 1)[1]
    assert both.startswith("cn1: sshd\nsn1: sshd\n"), shown[-3000:]
    # Every phase timed, and the total.
    times = shown.split("== Phase times\n", 1)[1]
    with capsys.disabled():  # the times belong in CI's output, also when the test passes
        print("\n" + times.split("\n\n", 1)[0])
    assert len(re.findall(r"^ +\d+\. .+ \d+ s$", times, re.M)) == 11, times
    assert re.search(r"^ +Total +\d+ s \(\d+\.\d min\)$", times, re.M), times
    assert f"xcatd lab down --root {lab.root}" in times
    # The lab is left up: both machines on, both nodes booted.
    assert sorted(lab.ok("rpower", "all", "stat").splitlines()) == ["cn1: on", "sn1: on"]
    assert lab.ok("nodels", "all", "nodelist.status") == "cn1: booted\nsn1: booted\n"
    down = lab.xcatd("down")
    assert down.returncode == 0, down.stderr
    assert lab.left_behind() == []


def test_the_edit_names_the_new_image_and_its_rootimgdir_and_adds_the_kernel_option():
    listed = ("# <xCAT data object stanza file>\n\ndebian12-x86_64-netboot-service:\n"
              "    objtype=osimage\n    profile=service\n"
              "    rootimgdir=/install/netboot/debian12/x86_64/service\n")  # fmt: skip

    assert edited(listed) == (
        "# <xCAT data object stanza file>\n\ndebian12-x86_64-netboot-myservice:\n"
        "    objtype=osimage\n    profile=service\n"
        "    rootimgdir=/install/netboot/debian12/x86_64/myservice\n"
        "    addkcmdline=net.ifnames=0\n"
    )
    with pytest.raises(DemoError, match="lsdef -z printed no stanza of debian12-x86_64-netboot"):
        edited("# <xCAT data object stanza file>\n")


def test_a_step_that_fails_says_which_and_leaves_the_lab_up_to_look_at(lab: Lab):
    missing = lab.root.parent / "none.iso"
    command = [BIN / "xcatd", "lab", "demo", "--root", str(lab.root), "--namespace",
               lab.namespace, "--port", str(lab.port)]  # fmt: skip
    refused = subprocess.run([*command, "--iso", str(missing)], capture_output=True, text=True,
                             timeout=60)  # fmt: skip
    assert (refused.returncode, refused.stdout, refused.stderr) == (
        1, "", f"Error: {missing} is not a file: give a Debian 12 ISO with --iso\n"
    )  # fmt: skip
    assert lab.left_behind() == []
    not_an_iso = lab.root.parent / "notes.iso"
    not_an_iso.write_text("not a disc\n")

    walked = subprocess.run([*command, "--iso", str(not_an_iso)], capture_output=True, text=True,
                            timeout=300)  # fmt: skip

    assert walked.returncode == 1
    assert f"\n$ copycds {not_an_iso}\n" in walked.stdout
    assert walked.stderr.startswith(f"Error: copycds {not_an_iso} failed (rc 1): "), walked.stderr
    assert walked.stderr.endswith(
        f"; the lab is left up to look at: xcatd lab status --root {lab.root}, "
        f"xcatd lab down --root {lab.root}\n"
    )
    assert len(walked.stderr.splitlines()) == 1
    assert lab.ok("nodels", "all") == "cn1\nsn1\n"
