"""xCAT's regular expressions are Perl's: patterns as administrators write them
for xCAT, matched here with the same meaning."""

from __future__ import annotations

import re

import pytest

from xcatd.store.patterns import Pattern, PatternError
from xcatd.store.perl_regex import translate
from xcatd.store.regex_values import RegexValueError, evaluate


def test_z_is_the_very_end_so_a_value_can_append_to_the_node_name() -> None:
    # xCAT's documentation: bmc='|\z|-imm|' gives node1 the BMC node1-imm.
    assert evaluate(r"|\z|-imm|", "node1") == "node1-imm"
    assert evaluate(r"|^(\w+)\z|$1-bmc|", "rack2n7") == "rack2n7-bmc"
    assert Pattern(r"os\z").search("os-rhels9.4") is None
    assert Pattern(r"9\.4\z").search("rhels9.4") is not None


def test_perl_s_big_z_allows_a_final_newline_and_a_matches_the_start() -> None:
    assert Pattern(r"\Aab\Z").search("ab\n") is not None
    assert Pattern(r"\Aab\z").search("ab\n") is None


def test_horizontal_space_quoting_and_posix_classes() -> None:
    assert Pattern(r"a\hb").search("a\tb") is not None
    assert Pattern(r"a\hb").search("a\nb") is None
    assert Pattern(r"\Q1.2\E").search("1x2") is None
    assert Pattern(r"\Q1.2\E").search("v1.2") is not None
    assert Pattern(r"^node[[:digit:]]+$").fullmatch("node42") is not None
    assert Pattern(r"^[^[:digit:]]+$").fullmatch("node42") is None
    assert Pattern(r"[[:alpha:]_]+").fullmatch("a_b") is not None


def test_named_groups_and_back_references_in_perl_s_spelling() -> None:
    pattern = Pattern(r"(?<rack>\d+)-\k<rack>-\g{1}-\g1")
    assert pattern.fullmatch("7-7-7-7") is not None
    assert pattern.fullmatch("7-8-7-7") is None
    assert translate(r"(?'n'x)\k{n}\k'n'") == "(?P<n>x)(?P=n)(?P=n)"


def test_a_bracket_keeps_its_leading_bracket_and_escapes() -> None:
    assert Pattern(r"[]a]+").fullmatch("]a]") is not None
    assert Pattern(r"[\h\d]+").fullmatch(" 1\t2") is not None


def test_what_python_cannot_match_the_same_way_is_refused_by_name() -> None:
    for pattern, named in [
        (r"\Gx", r"'\G'"),
        (r"a\Kb", r"'\K'"),
        (r"(?{ system('reboot') })", "(?{...})"),
        (r"(a)\g{-1}", "relative back-references"),
        (r"[[:nosuch:]]", "[:nosuch:]"),
    ]:
        with pytest.raises(PatternError, match=re.escape(named)):
            Pattern(pattern)
    with pytest.raises(RegexValueError, match=r"Bad regular expression value '\|\\Gx\|y\|'"):
        evaluate(r"|\Gx|y|", "node1")


def test_patterns_without_perl_only_syntax_are_left_as_they_are() -> None:
    for pattern in [r"^node(\d+)$", r"rack[0-9]{2}", r"(?P<n>x)(?P=n)", r"a\.b", r"\d+\s*\w"]:
        assert translate(pattern) == pattern
