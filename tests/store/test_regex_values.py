"""Regular-expression attribute values, as an administrator writes them on a group."""

from __future__ import annotations

import pytest

from xcatd.store.patterns import MATCH_LIMIT
from xcatd.store.regex_values import (
    MAX_LENGTH,
    RegexValueError,
    compile_value,
    evaluate,
    is_regex_value,
)

# -- the documented examples -------------------------------------------------


def test_arithmetic_on_a_capture_drops_leading_zeros() -> None:
    assert evaluate(r"|node(\d+)|10.0.0.($1+0)|", "node012") == "10.0.0.12"
    assert evaluate(r"|node(\d+)|bmc($1)|", "node05") == "bmc5"


def test_division_and_remainder_spread_nodes_over_subnets() -> None:
    value = r"|\D+(\d+)|192.168.($1/256).($1%256)|"
    assert evaluate(value, "node300") == "192.168.1.44"
    assert evaluate(value, "node255") == "192.168.0.255"


def test_a_capture_outside_parentheses_is_its_text() -> None:
    assert evaluate(r"|node(\d+)|bmc$1|", "node05") == "bmc05"


def test_arithmetic_over_several_captures_with_precedence_and_nesting() -> None:
    value = r"|r(\d+)n(\d+)|10.($1+100).(($1-1)*16+$2)|"
    assert evaluate(value, "r2n3") == "10.102.19"
    assert evaluate(r"|n(\d+)|(2+3*$1) (-(2+3)*$1) ( 7 - - $1 )|", "n4") == "14 -20 11"


def test_division_truncates_toward_zero_like_perl() -> None:
    assert evaluate(r"|n(\d+)|(-$1/7) ($1%-7) (-$1%7)|", "n20") == "-2 6 -6"


def test_only_the_match_is_replaced_as_in_xcat() -> None:
    assert evaluate(r"|(\d+)|($1+1)|", "node05") == "node6"


# -- /pattern/replacement/ ---------------------------------------------------


def test_substitution() -> None:
    assert evaluate("/node/bmc/", "node05") == "bmc05"
    assert evaluate(r"/node(\d+)/bmc$1-ipmi/", "node05") == "bmc05-ipmi"
    assert evaluate(r"/node(\d+)/\1.ib/", "node05") == "05.ib"


# -- when a value does not apply ---------------------------------------------


def test_a_pattern_that_does_not_match_gives_no_value() -> None:
    assert evaluate(r"|node(\d+)|10.0.0.($1+0)|", "login") is None
    assert evaluate("/node/bmc/", "login") is None


def test_an_empty_result_gives_no_value() -> None:
    assert evaluate("/.*//", "node05") is None


# -- what is and is not a regular-expression value ----------------------------


@pytest.mark.parametrize(
    "value",
    [
        "10.0.0.1",
        "/install/netboot",  # a path: does not end with '/'
        "/install/netboot/rocky/",  # four slashes
        "|only|",  # two delimiters
        "a|b|c|",  # does not start with the delimiter
        r"/a/b\/",  # the last '/' is escaped
        "",
        "/",
        "||",
    ],
)
def test_plain_values_are_returned_unchanged(value: str) -> None:
    assert not is_regex_value(value)
    assert evaluate(value, "node05") == value


def test_a_path_with_exactly_three_slashes_is_a_substitution_as_in_xcat() -> None:
    assert is_regex_value("/install/custom/")
    assert evaluate("/install/custom/", "node05") is None
    assert evaluate("/install/custom/", "install01") == "custom01"


def test_escaped_delimiters_belong_to_the_pattern() -> None:
    assert is_regex_value(r"/a\/b/c/")
    assert evaluate(r"/a\/b/c/", "xa/b") == "xc"
    assert evaluate(r"|n(\d)\|x|y\|($1)|", "n1|x") == "y|1"


# -- refusing bad values when they are written --------------------------------


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (r"|node(\d+)|($1+1|", "unbalanced '(': missing ')'"),
        (r"|node(\d+)|$1+1)|", "unbalanced ')' at position 5 of the expression"),
        (r"|node(\d+)|($1^2)|", "unexpected '^' in arithmetic"),
        (r"|node(\d+)|($1 $1)|", "unexpected '$1' in arithmetic"),
        (r"|node(\d+)|($1+)|", "unexpected ')' in arithmetic"),
        (r"|node(\d+)|()|", "unexpected ')' in arithmetic"),
        (r"|node(\d+)|(__import__('os'))|", "unexpected '_' in arithmetic"),
        (r"|node(\d+)|($1/0)|", "division by zero"),
        (r"|node(\d+)|($1%(2-2))|", "division by zero"),
        (r"|node(\d+)|(1000000000000000000)|", "out of range"),
        (r"|node(\d+)|(999999999*999999999*999)|", "out of range"),
        (r"|node(\d+)|($2)|", "'$2' names a capture the pattern does not have"),
        (r"|node(\d+)|($0)|", "'$0' is not a capture: use $1 to $9"),
        (r"|node(\d+)|bmc$|", "'$' is not a capture"),
        (r"|node(\d+|x|", "bad pattern: missing ), unterminated subpattern"),
        (r"||x|", "empty pattern"),
        (r"/node(\d)/\2/", "bad replacement: invalid group reference 2"),
        (r"/node(\d)/\g<x>/", "bad replacement: unknown group name 'x'"),
        (r"|a{4294967295}|x|", "bad pattern: the repetition number is too large"),
        (r"|(?:a{100}){200}|x|", "bad pattern: its repeat counts unroll to more than 10,000"),
    ],
)
def test_bad_values_are_refused_with_one_line_naming_them(value: str, problem: str) -> None:
    with pytest.raises(RegexValueError) as raised:
        compile_value(value)
    message = str(raised.value)
    assert message.startswith(f"Bad regular expression value '{value}': ")
    assert problem in message
    assert "\n" not in message
    assert isinstance(raised.value, ValueError)


def test_a_value_too_long_is_refused_without_repeating_all_of_it() -> None:
    value = "|node|" + "1" * 60_000 + "|"
    with pytest.raises(RegexValueError) as raised:
        compile_value(value)
    message = str(raised.value)
    assert message.endswith(f"' (60,007 characters): longer than {MAX_LENGTH} characters")
    assert len(message) < 200


# -- failures for one node ----------------------------------------------------


def test_arithmetic_on_a_capture_that_is_not_a_number_names_the_node() -> None:
    evaluate_for = compile_value(r"|n(\w+)|($1+1)|")  # valid: fine for n1, n2, ...
    assert evaluate_for("n41") == "42"
    with pytest.raises(RegexValueError, match="for node 'nabc': \\$1 is 'abc', not a number"):
        evaluate_for("nabc")


def test_a_division_by_a_capture_of_zero_names_the_node() -> None:
    with pytest.raises(RegexValueError, match="for node 'n0': division by zero"):
        evaluate(r"|n(\d+)|(100/$1)|", "n0")


def test_huge_numbers_in_node_names_are_refused() -> None:
    with pytest.raises(RegexValueError, match="out of range"):
        evaluate(r"|n(\d+)|($1*10)|", "n" + "9" * 18)
    with pytest.raises(RegexValueError, match="out of range"):
        evaluate(r"|n(\d+)|($1)|", "n" + "1" * 5000)


def test_a_pattern_that_backtracks_without_end_fails_for_the_node_in_bounded_time() -> None:
    evaluate_for = compile_value("/(a|aa)+b/x/")
    with pytest.raises(RegexValueError) as raised:
        evaluate_for("a" * 60 + "cb")
    assert str(raised.value) == (
        "Bad regular expression value '/(a|aa)+b/x/' for node '" + "a" * 60 + "cb': "
        f"one match took more than {MATCH_LIMIT:g} s: simplify it"
    )


def test_compiled_values_are_shared() -> None:
    value = r"|node(\d+)|10.0.0.($1+0)|"
    assert compile_value(value) is compile_value(value)
