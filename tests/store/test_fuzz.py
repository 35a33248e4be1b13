"""Fuzzing what users type that the store parses: noderanges, regular-expression
values, selections, stanza files and patterns.  Whatever the text, each
parser gives its result or raises its own documented error (one line) —
never any other exception, and never slowly."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xcatd.store import noderange, patterns
from xcatd.store.noderange import NoderangeError, expand
from xcatd.store.nodes import Nodes
from xcatd.store.patterns import Pattern, PatternError
from xcatd.store.regex_values import RegexValueError, compile_value, is_regex_value
from xcatd.store.selection import SelectionError, parse_selection, parse_wherevals
from xcatd.store.stanza import StanzaError, parse

FUZZ = settings(max_examples=300, deadline=2000)
# re warns of "[[" and the like; the daemon silences it (patterns), but pytest
# resets warning filters around each test.
pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


def tokens(*pieces: str) -> st.SearchStrategy[str]:
    """Text made of these pieces and of any characters: closer to what users
    write than characters alone, so the parsers' deeper paths are reached."""
    piece = st.sampled_from(pieces) | st.text(max_size=3)
    return st.lists(piece, max_size=24).map("".join)


NODE_NAMES = ["node01", "node02", "node10", "cn1", "f1n1", "login-a", "nabc", "n0"]
# Whole atoms, combined by the grammar's operators: names, groups (a dynamic
# one with a bad selection), ranges up to the (lowered) limit, expressions,
# selections (one over a value whose arithmetic fails for node 'nabc').
atoms = st.sampled_from(
    [*NODE_NAMES, "all", "compute", "power", "broken", "node[01-10]", "x[1-4000]",
     "node01-node10", "n1+3000", "f[1-2]n[1-3]", "/n.*", "/(n|nn)+b", "/[", "bmc==bmc1",
     "ip=~^10\\.", "os!~rhels", "^file"]
) | st.text(max_size=6)  # fmt: skip
expressions = st.recursive(
    atoms,
    lambda inner: (
        st.builds("".join, st.tuples(inner, st.sampled_from([",", "@", ",-"]), inner))
        | inner.map("({})".format)
    ),
    max_leaves=8,
)
noderange_pieces = tokens(
    *NODE_NAMES, "compute", "rack1", "power", "all", "0", "1", "09", "10", "999",
    "[", "]", "-", ":", ",", "@", "+", "(", ")", "^", "/", ".*", "\\", "|",
    "==", "!=", "=~", "!~", "=", "os", "ip", "bmc", "groups", "{2}", "*", "?",
)  # fmt: skip
noderanges = st.text(max_size=80) | expressions | noderange_pieces
regex_parts = tokens(
    "(", ")", "$1", "$2", "$", "\\d+", "\\D", "\\w", ".*", "+", "-", "*", "/", "%", "0",
    "7", "99999999999", "node", "x", "[", "]", "\\", "{3}", "{4294967295}", " ", "\\|",
    "\\/", "|", "\\g<x>", "\\g<1>",
)  # fmt: skip
regex_values = st.text(max_size=60) | st.builds(
    lambda delimiter, pattern, expression: delimiter + pattern + delimiter + expression + delimiter,
    st.sampled_from("|/"),
    regex_parts,
    regex_parts,
)
node_names = st.text(max_size=30) | st.from_regex(
    r"[a-z]{0,6}[0-9]{0,20}[a-z-]{0,4}", fullmatch=True
)
selections = st.text(max_size=60) | tokens(
    "os", "groups", "ip", "==", "!=", "=~", "!~", "=", "::", "rhels", "^", "$", "(",
    ")", "|", "*", "+", "{1,2}", "{4294967295}", "(?:a{600})", "[a-z]", "\\", ".",
)  # fmt: skip
stanzas = st.text(max_size=200) | tokens(
    "\n", "node01:", "default-node:", "default-group:", ":", "=", " = ", "objtype=node",
    "objtype=group", "groups=all", '"', "#", " ", "\t", "\r", "fd59::/64:", "objtype",
)  # fmt: skip


@contextlib.contextmanager
def small_limits() -> Iterator[None]:
    """Smaller limits, so that an input that reaches one fails in milliseconds
    and the limits' paths are taken more often."""
    with (
        mock.patch.object(noderange, "MAX_NAMES", 5000),
        mock.patch.object(patterns, "BUDGET", 0.2),
        patterns.budget(),
    ):
        yield


def cluster() -> Nodes:
    """A few nodes in memory, with groups that have regular-expression values
    (one fails for some nodes) and a dynamic group (one whose selection is bad)."""
    groups_of = {name: "all,compute" if name.startswith("n") else "all" for name in NODE_NAMES}
    groups = {
        "compute": {"ip": r"|n\D*(\d+)|10.0.0.($1+0)|", "bmc": r"|n(\w+)|bmc($1+1)|"},
        "power": {"grouptype": "dynamic", "wherevals": "ip=~^10\\.::groups!~login"},
        "broken": {"grouptype": "dynamic", "wherevals": "not a selection"},
    }
    own = {name: {"groups": listed} for name, listed in groups_of.items()}
    own["node01"]["os"] = "rhels9.4"

    def column(attribute: str) -> dict[str, str]:
        return {n: v[attribute] for n, v in own.items() if attribute in v}

    return Nodes(groups_of, groups, lambda _names: own, column)


@FUZZ
@given(noderanges, st.booleans())
def test_noderanges_expand_or_say_what_is_wrong(text: str, verify: bool) -> None:
    with small_limits(), contextlib.suppress(NoderangeError):
        names = expand(text, cluster(), verify=verify, read_files=False)
        assert len(names) <= 5000


@FUZZ
@given(regex_values, node_names)
def test_regex_values_compile_and_evaluate_or_say_what_is_wrong(value: str, node: str) -> None:
    with small_limits(), contextlib.suppress(RegexValueError):
        result = compile_value(value)(node)
        assert result is None or isinstance(result, str)
        assert is_regex_value(value) or result == value


@FUZZ
@given(selections, st.text(max_size=40))
def test_selections_parse_and_match_or_say_what_is_wrong(text: str, actual: str) -> None:
    with small_limits(), contextlib.suppress(SelectionError):
        assert parse_selection(text).matches(actual) in (True, False)
    with small_limits(), contextlib.suppress(SelectionError):
        for selection in parse_wherevals(text):
            selection.matches(actual)


@FUZZ
@given(stanzas)
def test_stanza_files_parse_or_say_which_line_is_wrong(text: str) -> None:
    with contextlib.suppress(StanzaError):
        for stanza in parse(text):
            assert stanza.objtype is not None


@FUZZ
@given(st.text(max_size=80) | selections | regex_values, node_names)
def test_patterns_compile_and_match_or_say_what_is_wrong(text: str, subject: str) -> None:
    with small_limits(), contextlib.suppress(PatternError):
        pattern = Pattern(text)
        pattern.search(subject)
        pattern.fullmatch(subject)


@FUZZ
@given(st.text(st.characters(blacklist_characters="\n"), max_size=80))
def test_errors_are_one_line(text: str) -> None:
    for parser, error in [
        (lambda: expand(text, cluster(), read_files=False), NoderangeError),
        (lambda: compile_value(f"|{text}|x|"), RegexValueError),
        (lambda: parse_selection(f"os=~{text}"), SelectionError),
        (lambda: Pattern(text), PatternError),
    ]:
        try:
            with small_limits():
                parser()
        except error as raised:
            assert "\n" not in str(raised), str(raised)
