"""Every command in the daemon's log, as xCAT's commands.log has it: one INFO
line a command (the journal's, under systemd) with the user, where the
request came from, the command line with its secrets masked, the return
code and how long it took; made from the audit record, so the log and the
audit table always agree."""

from __future__ import annotations

import re

from .cluster import BIN, Cluster
from .sessions import credentials_for
from .test_security import audit_rows
from .waiting import wait_for

# INFO xcatd.commands: Allowed lsdef n1 for root from 127.0.0.1:40312: rc 0, 0.012 s
LINE = re.compile(
    r"^INFO xcatd\.commands: (?P<status>Allowed|Denied|Refused) (?P<command>.*?)"
    r"(?: for (?P<user>\S+))? from (?P<peer>\S+(?: via \S+)?): rc (?P<rc>\d+), "
    r"(?P<seconds>\d+\.\d{3}) s$"
)


def command_lines(cluster: Cluster) -> list[re.Match]:
    return [found for line in cluster.logs().splitlines() if (found := LINE.match(line))]


def logged(cluster: Cluster, command: str, timeout: float = 5) -> re.Match:
    """The log line of `command` (its line as logged), once the daemon has
    written it: that happens just after the client has its answer."""
    found = wait_for(
        lambda: [line for line in command_lines(cluster) if line["command"] == command],
        lambda: (
            f"a log line for {command!r}; the command lines:\n"
            + "\n".join(line.group() for line in command_lines(cluster))
        ),
        timeout,
    )
    return found[-1]


def test_a_change_of_a_password_is_logged_without_it(shared_cluster):
    cluster = shared_cluster
    assert cluster.run("mkdef", "-t", "node", "n1", "groups=all", "mgt=ipmi").returncode == 0

    changed = cluster.run("chdef", "-t", "node", "n1", "bmcpassword=secret", "bmcusername=admin")

    assert changed.returncode == 0, changed.stderr
    line = logged(cluster, "chdef -t node n1 'bmcpassword=******' bmcusername=admin")
    assert (line["status"], line["user"], line["rc"]) == ("Allowed", "root", "0")
    assert re.fullmatch(r"127\.0\.0\.1:\d+", line["peer"])
    assert float(line["seconds"]) < 60
    assert cluster.ok("lsdef", "n1", "-i", "bmcpassword").splitlines()[-1] == (
        "    bmcpassword=secret"
    )
    logged(cluster, "lsdef n1 -i bmcpassword")  # the attribute's name is no secret
    assert "secret" not in cluster.logs()


def test_table_commands_and_site_rows_are_logged_without_their_secrets(shared_cluster):
    cluster = shared_cluster
    cluster.ok("chtab", "key=ipmi", "passwd.username=ADMIN", "passwd.password=t0p-secret")
    # The row's key and user name are no secrets: only the password is masked.
    logged(cluster, "chtab key=ipmi passwd.username=ADMIN 'passwd.password=******'")
    cluster.ok("mkdef", "bmc1", "groups=ipmi", "mgt=ipmi")
    cluster.ok("nodech", "bmc1", "ipmi.password=n0de-secret")
    logged(cluster, "nodech bmc1 'ipmi.password=******'")
    cluster.ok("mkdef", "fsp1", "groups=fsp", "mgt=fsp")
    cluster.ok("chdef", "fsp1", "passwd.HMC=hmc-secret")  # xCAT's password of user HMC
    logged(cluster, "chdef fsp1 'passwd.HMC=******'")
    cluster.run("chtab", "key=snmpsecret", "site.value=s1te-secret")
    logged(cluster, "chtab key=snmpsecret 'site.value=******'")
    cluster.ok("chtab", "key=xcatdport", "site.value=3001")
    logged(cluster, "chtab key=xcatdport site.value=3001")  # an ordinary site row is shown
    for secret in ("t0p-secret", "n0de-secret", "hmc-secret", "s1te-secret"):
        assert secret not in cluster.logs()
        assert secret not in str(audit_rows(cluster))
        assert secret not in cluster.ok("tabdump", "auditlog")


def test_secrets_split_by_the_shell_are_masked_too(shared_cluster):
    cluster = shared_cluster
    for args in (["bmcpassword", "=", "hunter2"], ["bmcpassword", "=hunter2"],
                 ["bmcpassword=", "hunter2"]):  # fmt: skip
        result = cluster.run("chdef", "-t", "node", "n1", *args)
        assert result.returncode == 1  # chdef says how to write it
    logged(cluster, "chdef -t node n1 bmcpassword = '******'")
    logged(cluster, "chdef -t node n1 bmcpassword '=******'")
    logged(cluster, "chdef -t node n1 'bmcpassword=******' '******'")
    assert "hunter2" not in cluster.logs()
    assert "hunter2" not in str(audit_rows(cluster))


def test_failures_denials_and_unknown_commands_are_logged_with_their_rc(shared_cluster, tmp_path):
    cluster = shared_cluster
    assert cluster.run("lsdef", "-t", "node", "nosuch").returncode == 1
    failed = logged(cluster, "lsdef -t node nosuch")
    assert (failed["status"], failed["rc"]) == ("Allowed", "1")

    alice = credentials_for(cluster, "alice", "user", tmp_path / "alice")
    denied = cluster.run("lsxcatd", "-a", env={**cluster.env, "XCAT_CRED_DIR": str(alice)})
    assert denied.stderr == "Error: Permission denied for request\n"
    line = logged(cluster, "lsxcatd -a")
    assert (line["status"], line["user"], line["rc"]) == ("Denied", "alice", "1")

    (tmp_path / "nosuchcmd").symlink_to(BIN / "lsxcatd")
    assert cluster.run(str(tmp_path / "nosuchcmd"), "-x").returncode == 1
    line = logged(cluster, "nosuchcmd -x")
    assert (line["status"], line["user"], line["rc"]) == ("Refused", "root", "1")


def test_an_argument_cannot_forge_a_log_line(shared_cluster):
    cluster = shared_cluster
    forged = (
        "x\nINFO xcatd.commands: Allowed rmdef -t node n1 for root from 10.0.0.1:1: rc 0, 0.001 s"
    )
    cluster.run("chdef", "-t", "node", "n1", f"usercomment={forged}")
    logged(cluster, "chdef -t node n1 'usercomment=x\\nINFO xcatd.commands: Allowed rmdef -t "
                    "node n1 for root from 10.0.0.1:1: rc 0, 0.001 s'")  # fmt: skip
    assert not any(line["command"].startswith("rmdef") for line in command_lines(cluster))


def test_every_audit_row_has_its_log_line(shared_cluster):
    cluster = shared_cluster
    for number in range(20):
        assert cluster.run("nodels", f"n{number}", "groups").returncode in (0, 1)
    logged(cluster, "nodels n19 groups")

    def caught_up() -> tuple[list[dict], list[re.Match]] | None:
        """The rows and the lines once each line has its row (written just after it)."""
        rows, lines = audit_rows(cluster), command_lines(cluster)
        return (rows, lines) if len(rows) >= len(lines) else None

    rows, lines = wait_for(caught_up, "the audit rows catching up with the log lines", 5)
    assert len(lines) == len(rows)
    assert [line["user"] or "" for line in lines] == [row["user"] for row in rows]
    assert [int(line["rc"]) for line in lines] == [row["rc"] for row in rows]
