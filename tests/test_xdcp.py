"""xdcp as an xCAT administrator runs it: files from the user's machine to
many nodes at once (scp, or rsync with -r), pulled back with -P as
`<file>._<node>`, and into an image's root with -i.  The nodes are a real
sshd trusting the cluster's SSH CA (tests/sshnode.py); they share this
host's file system, so each test copies under its own directory."""

from __future__ import annotations

import io
import os
import tarfile

from .sessions import connect, credentials_for, outcome
from .test_xdsh import an_image_root


def test_a_file_goes_to_every_node_and_reads_back(cluster, ssh_nodes, tmp_path):
    source = tmp_path / "motd"
    source.write_text("welcome\n")
    target = tmp_path / "on-nodes"
    target.mkdir()
    assert cluster.ok("xdcp", "sshnodes", str(source), f"{target}/motd") == ""
    rc, out, _ = cluster.outcome("xdsh", "sshnodes", f"cat {target}/motd")
    assert (rc, sorted(out.splitlines())) == (0, ["sh1: welcome", "sh2: welcome"])
    # Several files into a directory, with rsync, modes and times kept (-p).
    other = tmp_path / "issue"
    other.write_text("issued\n")
    os.chmod(other, 0o600)
    os.utime(other, (1_000_000_000, 1_000_000_000))
    cluster.ok("xdcp", "sh1", "-r", "/usr/bin/rsync", "-p", str(source), str(other), str(target))
    copied = target / "issue"
    assert copied.read_text() == "issued\n"
    assert (oct(copied.stat().st_mode & 0o777), copied.stat().st_mtime) == ("0o600", 1e9)


def test_a_directory_goes_with_R(cluster, ssh_nodes, tmp_path):
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub/leaf").write_text("leaf\n")
    target = tmp_path / "copied-tree"
    assert cluster.outcome("xdcp", "sh1", str(tree), str(target)) == (
        1, "", f"Error: {tree} is a directory: give -R to copy it and what it holds\n"
    )  # fmt: skip
    cluster.ok("xdcp", "sh1", "-R", str(tree), str(target))
    assert (target / "sub/leaf").read_text() == "leaf\n"


def test_P_pulls_each_nodes_file_beside_the_others(cluster, ssh_nodes, tmp_path):
    remote = tmp_path / "hostfile"
    remote.write_text("from the node\n")
    into = tmp_path / "pulled"
    into.mkdir()
    assert cluster.ok("xdcp", "sshnodes", "-P", str(remote), str(into)) == ""
    assert sorted(p.name for p in into.iterdir()) == ["hostfile._sh1", "hostfile._sh2"]
    assert (into / "hostfile._sh2").read_text() == "from the node\n"
    assert cluster.outcome("xdcp", "sh1", "-P", str(remote), str(tmp_path / "none")) == (
        1, "", f"Error: Cannot copy to target {tmp_path / 'none'}. Directory does not exist.\n"
    )  # fmt: skip


def test_a_missing_source_or_node_file_is_one_line(cluster, ssh_nodes, tmp_path):
    missing = tmp_path / "missing"
    assert cluster.outcome("xdcp", "sh1", str(missing), "/tmp") == (
        1, "", f"Error: cannot read {missing}: No such file or directory\n"
    )  # fmt: skip
    into = tmp_path / "pulled"
    into.mkdir()
    rc, out, err = cluster.outcome("xdcp", "sh1", "-P", str(missing), str(into))
    assert (rc, out) == (1, "")
    assert err.splitlines()[-1] == "Error:  sh1 remote shell had exit code 1."
    present = tmp_path / "present"
    present.write_text("")
    assert cluster.outcome("xdcp", "sh1", "-r", "/usr/bin/rcp", str(present), "/tmp") == (
        1, "", "Error: Remote command: /usr/bin/rcp is invalid, the supported remote "
        "commands: scp, rsync.\n"
    )  # fmt: skip


def test_i_copies_into_an_images_root_for_administrators_only(cluster, tmp_path):
    root = an_image_root(tmp_path / "rootimg")
    source = tmp_path / "resolv.conf"
    source.write_text("nameserver 10.0.0.1\n")
    cluster.ok("xdcp", "-i", str(root), str(source), "/etc/resolv.conf")
    assert (root / "etc/resolv.conf").read_text() == "nameserver 10.0.0.1\n"
    # A link in the image pointing out of it is replaced, never followed.
    outside = tmp_path / "outside"
    outside.write_text("host's\n")
    (root / "etc/hosts").symlink_to(outside)
    cluster.ok("xdcp", "-i", str(root), str(source), "/etc/hosts")
    assert (outside.read_text(), (root / "etc/hosts").is_symlink()) == ("host's\n", False)

    # A synclist, as packimage applies an osimage's; to nodes it is not provided.
    synclist = tmp_path / "synclist"
    synclist.write_text(f"{source} -> /etc/sync/\n")
    assert cluster.ok("xdcp", "-i", str(root), "-F", str(synclist)) == ""
    assert (root / "etc/sync/resolv.conf").read_text() == "nameserver 10.0.0.1\n"
    assert cluster.outcome("xdcp", "all", "-F", str(synclist))[2] == (
        "Error: xdcp -F (a synclist to nodes) and -s are not provided here: xdcp -i <rootimg> "
        "-F <synclist> syncs an image; copy files to nodes with xdcp <noderange> "
        "<sourcefile>... <targetpath>\n"
    )

    cluster.ok("mkdef", "-t", "policy", "-o", "2.7", "name=bob", "commands=xdcp", "rule=allow")
    creds = credentials_for(cluster, "bob", "user", tmp_path / "bob")
    bob = {**cluster.env, "XCAT_CRED_DIR": str(creds)}
    for args in (["-i", str(root)], ["sh1", "-P"], ["sh1", "-o", "-oProxyCommand=id"]):
        refused = cluster.run("xdcp", *args, str(source), "/tmp", env=bob)
        assert (refused.returncode, refused.stderr) == (
            1,
            f"Error: xdcp {args[1] if args[0] == 'sh1' else '-i'} runs as root on mn1: only "
            "administrators (those the policy lets run chtab) may use it\n",
        )


def test_P_does_not_pull_through_a_service_node(cluster, tmp_path):
    # (Copies to nodes of a service node go through it: tests/test_hierarchy.py.)
    cluster.ok("mkdef", "cn9", "groups=all", "ip=10.9.0.9", "servicenode=sn9")
    assert cluster.outcome("xdcp", "cn9", "-P", "/etc/hosts", str(tmp_path)) == (
        1, "", "Error: cn9: served by service node sn9: -P does not pull through it (as "
        "xCAT's): pull to sn9 first (xdsh sn9 xdcp … -P …), then from it\n"
    )  # fmt: skip


def test_a_user_the_policy_lets_run_xdcp_sends_their_own_files(cluster, ssh_nodes, tmp_path):
    cluster.ok("mkdef", "-t", "policy", "-o", "2.7", "name=bob", "commands=xdcp", "rule=allow")
    creds = credentials_for(cluster, "bob", "user", tmp_path / "bob")
    bob = {**cluster.env, "XCAT_CRED_DIR": str(creds)}
    mine = tmp_path / "mine"
    mine.write_text("bob's\n")
    target = tmp_path / "bobs-copy"
    copied = cluster.run("xdcp", "sh1", str(mine), str(target), env=bob)
    assert (copied.returncode, copied.stderr, target.read_text()) == (0, "", "bob's\n")
    # The daemon never opens a path for the user: a request that names a file
    # of the management node without sending it copies nothing, and an
    # archive reaching out of its staging directory is refused.
    connection = connect(cluster, creds)
    target = tmp_path / "stolen"
    lines, rc = _xdcp_request(connection, ["sh1", "/etc/shadow", str(target)], None)
    assert (rc, lines[0], target.exists()) == (1, NOT_SENT, False)
    lines, rc = _xdcp_request(connection, ["sh1", "x", str(target)], _archive("0/../../escaped"))
    assert (rc, lines[0]) == (
        1, "Error: the files sent hold '0/../../escaped', which xdcp does not copy"
    )  # fmt: skip
    lines, rc = _xdcp_request(connection, ["sh1", "a", "b", str(target)], _archive("0/one"))
    assert (rc, lines[0]) == (1, "Error: the files sent are not the ones the command line names")
    connection.close()


def _xdcp_request(connection, args: list[str], stdin: bytes | None) -> tuple[list[str], int]:
    """An xdcp request as bob's own program might send it, not xdcp's client."""
    return outcome(connection, connection.request("xdcp", args, stdin=stdin, user="bob"))


def _archive(name: str) -> bytes:
    """A tar archive of one file named `name` (the client sends `0/<file>`)."""
    packed = io.BytesIO()
    with tarfile.open(fileobj=packed, mode="w") as archive:
        member = tarfile.TarInfo(name)
        member.size = 1
        archive.addfile(member, io.BytesIO(b"1"))
    return packed.getvalue()


NOT_SENT = (
    "Error: xdcp's files come with the request from its client: run the xdcp command, "
    "which sends them"
)
