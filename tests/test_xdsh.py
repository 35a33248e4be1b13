"""xdsh as an xCAT administrator runs it: a command on many nodes over SSH,
each line `<node>: <line>`, and a command in an image's root (-i).  Nodes
that answer are a real sshd trusting the cluster's SSH CA (tests/sshnode.py)
and the lab's machines (tests/test_netboot.py runs xdsh on sn1 and, through
sn1, on cn1); here too the image, and the nodes that cannot be reached,
each said in xCAT's words."""

from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path

from .cluster import free_port
from .sessions import credentials_for


def an_image_root(path: Path) -> Path:
    """A root directory with a shell in it (dash and its libraries), as
    xdsh -i finds in a genimage'd rootimg."""
    shell = Path(shutil.which("dash") or "/bin/dash").resolve()
    libraries = subprocess.run(["ldd", shell], capture_output=True, text=True, check=True)
    for item in [str(shell), *libraries.stdout.split()]:
        if item.startswith("/") and Path(item).is_file():
            target = path / item.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(item, target)
    (path / "bin").mkdir(parents=True, exist_ok=True)
    shutil.copy2(shell, path / "bin/sh")
    return path


def test_i_runs_the_command_in_an_images_root(cluster, tmp_path):
    root = an_image_root(tmp_path / "rootimg")
    (root / "etc").mkdir()
    (root / "etc/hostname").write_text("inside\n")
    # One command line, read by the image's shell (its /etc, not this host's);
    # words after the command are the command's (-l here).
    assert cluster.ok("xdsh", "-i", str(root), "read n < /etc/hostname && echo $n-read") == (
        "inside-read\n"
    )
    assert cluster.outcome("xdsh", "-i", str(root), "echo", "-l", ";", "exit", "3") == (
        1, "-l\n", f"Error: the command had exit code 3 in {root}\n"
    )  # fmt: skip
    assert cluster.outcome("xdsh", "-i", str(tmp_path), "true") == (
        1, "", f"Error: {tmp_path} is not an image's root (no bin/sh): give -i "
        "<rootimgdir>/rootimg\n"
    )  # fmt: skip


def test_a_node_ssh_cannot_reach_is_xcats_error_line_and_the_rc(cluster):
    cluster.ok("mkdef", "xd1", "groups=all", "ip=127.0.0.1")
    closed = free_port()  # nothing listens there
    rc, out, err = cluster.outcome("xdsh", "xd1", "-o", f"-p {closed}", "uptime")
    assert (rc, out) == (1, "")
    assert err == (
        f"xd1: ssh: connect to host 127.0.0.1 port {closed}: Connection refused\n"
        "Error:  xd1 remote shell had exit code 255.\n"
    )


def test_t_ends_a_node_that_does_not_answer(cluster):
    cluster.ok("mkdef", "xd2", "groups=all", "ip=127.0.0.1")
    with socket.socket() as silent:  # accepts the connection, never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        outcome = cluster.outcome("xdsh", "xd2", "-t", "2", "-o", f"-p {port}", "uptime")
    assert outcome == (1, "", "xd2: Error: no answer within 2 s (-t): ended\n")


def test_bad_command_lines_are_one_line(cluster):
    assert cluster.outcome("xdsh", "xd3")[2].startswith(
        "Error: give the command to run on the nodes: xdsh <noderange> <command>"
    )
    assert cluster.outcome("xdsh", "-f", "0", "xd3", "uptime")[2].startswith(
        "Error: -f takes the number of nodes at once: 1 or more"
    )


def test_i_and_o_run_as_root_here_so_only_administrators_may(cluster, tmp_path):
    cluster.ok("mkdef", "-t", "policy", "-o", "2.7", "name=bob", "commands=xdsh", "rule=allow")
    cluster.ok("mkdef", "xd4", "groups=all", "ip=127.0.0.1")
    creds = credentials_for(cluster, "bob", "user", tmp_path / "bob")
    bob = {**cluster.env, "XCAT_CRED_DIR": str(creds)}
    root = an_image_root(tmp_path / "rootimg")
    for args in (["-i", str(root), "id"], ["xd4", "-o", "-oProxyCommand=id", "uptime"]):
        given = args[0] if args[0] == "-i" else "-o"
        refused = cluster.run("xdsh", *args, env=bob)
        assert (refused.returncode, refused.stderr) == (
            1,
            f"Error: xdsh {given} runs as root on mn1: only administrators (those the policy "
            "lets run chtab) may use it\n",
        )


def test_a_node_that_answers_runs_the_command_as_root(cluster, ssh_nodes):
    # A real sshd trusting the cluster's SSH CA: no password, no prompt.
    # Nodes finish in any order; each node's lines come together.
    rc, out, err = cluster.outcome("xdsh", "sshnodes", "id -un; echo err >&2")
    assert (rc, sorted(out.splitlines())) == (0, ["sh1: root", "sh2: root"])
    assert sorted(err.splitlines()) == ["sh1: err", "sh2: err"]
    rc, out, err = cluster.outcome("xdsh", "sh1", "-z", "exit 4")
    assert (rc, out, err) == (
        1, "sh1: Remote_command_rc = 4\n", "Error:  sh1 remote shell had exit code 4.\n"
    )  # fmt: skip
    # The port given as an ssh option, as an administrator may.
    config = cluster.root / ".ssh/config"
    config.unlink()
    assert cluster.ok("xdsh", "sh2", "-o", f"-p {ssh_nodes.port}", "echo", "hi") == "sh2: hi\n"
