"""psh as an xCAT administrator runs it: a command on many nodes, each line
`<node>: <line>` as it comes, xCAT's `*** ssh exited with error code N.`
for a node that failed, and as many failed nodes as the rc.  The nodes are
a real sshd trusting the cluster's SSH CA (tests/sshnode.py)."""

from __future__ import annotations


def test_each_nodes_lines_and_failures(cluster, ssh_nodes):
    rc, out, err = cluster.outcome("psh", "sshnodes", "echo", "up")
    assert (rc, sorted(out.splitlines()), err) == (0, ["sh1: up", "sh2: up"], "")
    rc, out, err = cluster.outcome("psh", "-f", "1", "sshnodes", "echo", "x;", "exit", "3")
    assert (rc, sorted(out.splitlines())) == (2, ["sh1: x", "sh2: x"])
    assert sorted(err.splitlines()) == [
        "sh1: *** ssh exited with error code 3.",
        "sh2: *** ssh exited with error code 3.",
    ]
    # psh's options end where the command begins.
    assert cluster.ok("psh", "sh1", "echo", "-l", "x") == "sh1: -l x\n"


def test_i_reaches_each_node_by_its_interfaces_name(cluster, ssh_nodes):
    # sh1-eth9 names no host here: ssh says so, and psh xCAT's line.
    rc, out, err = cluster.outcome("psh", "-i", "eth9", "sh1", "uptime")
    assert (rc, out) == (1, "")
    assert err.splitlines()[-1] == "sh1: *** ssh exited with error code 255."
    assert "sh1-eth9" in err.splitlines()[0]
