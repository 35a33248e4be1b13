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


def test_lsxcatd_without_an_option_prints_usage_and_fails(shared_cluster):
    result = shared_cluster.run("lsxcatd")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("Error: one of the arguments -v/--version")
    assert "usage: lsxcatd [-h] [--json] (-v | -t | -d | -a)" in result.stderr


def test_lsxcatd_help_comes_from_the_daemon(shared_cluster):
    result = shared_cluster.run("lsxcatd", "-h")
    assert result.returncode == 0
    assert result.stdout.startswith("usage: lsxcatd")
    assert "--database" in result.stdout
