"""lsxcatd through the real client, against a real daemon."""

import json


def test_lsxcatd_version(shared_cluster):
    result = shared_cluster.run("lsxcatd", "-v")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Version 0.1.0\n"


def test_lsxcatd_all_describes_the_daemon(shared_cluster):
    result = shared_cluster.run("lsxcatd", "-a")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:3] == ["Version 0.1.0", "This is a Management Node", "hostname=mn1"]
    assert f"cfgloc=SQLite:{shared_cluster.root}/var/lib/xcat/xcat.sqlite" in lines
    assert "dbengine=SQLite" in lines
    assert any(line.startswith("uptime=") for line in lines)
    assert "connections=1" in lines


def test_lsxcatd_json_prints_the_facts_as_one_json_line(shared_cluster):
    result = shared_cluster.run("lsxcatd", "-a", "--json")
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    facts = json.loads(line)
    assert facts["version"] == "0.1.0"
    assert facts["nodetype"] == "MN"
    assert facts["dbengine"] == "SQLite"


USAGE = (  # xCAT's (tabutils.pm lsxcatd_usage)
    "       lsxcatd [-v|--version]\n       lsxcatd [-h|--help]\n       lsxcatd [-d|--database]\n"
    "       lsxcatd [-t|--nodetype]\n       lsxcatd [-a|--all]\n"
)


def test_lsxcatd_without_an_option_prints_xcats_usage_and_fails(shared_cluster):
    assert shared_cluster.outcome("lsxcatd") == (1, USAGE, "")


def test_lsxcatd_help_comes_from_the_daemon(shared_cluster):
    assert shared_cluster.outcome("lsxcatd", "-h") == (0, USAGE, "")
