r"""Users' regular expressions cannot hold the daemon: a pattern that
backtracks without end fails on the first name it meets, one merely slow on
every name fails after the request's matching budget (not after minutes
over all the nodes), and patterns too long or too big to compile are refused."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from xcatd.store import Store, objects, patterns
from xcatd.store.noderange import NoderangeError, expand
from xcatd.store.nodes import Nodes
from xcatd.store.objects import Definition
from xcatd.store.objtypes import GROUP, NODE
from xcatd.store.patterns import MAX_LENGTH, MAX_UNROLLED, Pattern, PatternError
from xcatd.store.regex_values import RegexValueError
from xcatd.store.selection import SelectionError, parse_selection

SLOW = r"^(\w|\w\w)*-$"
# This pattern takes some 20 ms to refuse each of these names: 40 s over
# 2,000 of them...
SLOW_NAMES = [f"node{n:020d}-x" for n in range(2000)]
# ...and seconds, or much longer, each of these.
HOPELESS_NAMES = [f"node{n:036d}-x" for n in range(3)]


@pytest.fixture
def short_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """Half a second of matching per request, so that the tests are quick."""
    monkeypatch.setattr(patterns, "BUDGET", 0.5)


@pytest.fixture
def store_of(tmp_path: Path) -> Callable[[list[str]], Store]:
    """A cluster database with these nodes, all in group compute."""

    def made(names: list[str]) -> Store:
        store = Store(tmp_path / "xcat.sqlite")
        definitions = [Definition(NODE, name, {"groups": "compute"}) for name in names]
        objects.create(store.db, definitions, replace=False)
        return store

    return made


def nodels(noderange: str) -> Callable[..., list[str]]:
    """What nodels NODERANGE does in the store."""
    return lambda db: expand(noderange, Nodes.load(db))


async def test_a_regex_that_backtracks_without_end_fails_on_the_first_name(
    store_of: Callable[[list[str]], Store],
) -> None:
    store = store_of(HOPELESS_NAMES)
    with pytest.raises(NoderangeError) as raised:
        await store.run(nodels(f"/{SLOW}"))
    assert str(raised.value) == (
        f"Bad regular expression '/{SLOW}': one match took more than 0.25 s: simplify it"
    )
    # The classic example of catastrophic backtracking is quick for the
    # matcher used.
    assert await store.run(nodels(r"/(\w*\w*\w*)*X")) == []


async def test_a_regex_slow_on_every_name_fails_after_the_budget_in_all(
    store_of: Callable[[list[str]], Store], short_budget: None
) -> None:
    store = store_of(SLOW_NAMES)
    with pytest.raises(NoderangeError) as raised:
        await store.run(nodels(f"/{SLOW}"))
    assert str(raised.value) == (
        f"Bad regular expression '/{SLOW}': matching took more than 0.5 s in all: simplify it"
    )
    # The next request has a budget of its own.
    assert await store.run(nodels("/node0+1-x")) == ["node00000000000000000001-x"]


async def test_a_selection_that_backtracks_fails(
    store_of: Callable[[list[str]], Store],
) -> None:
    # lsdef -w 'usercomment=~(a|aa)+b' over nodes with long comments.
    store = store_of(["n1"])
    selection = parse_selection("usercomment=~(a|aa)+b")
    with pytest.raises(SelectionError) as raised:
        await store.run(lambda db: selection.matches("a" * 60 + "cb"))
    assert str(raised.value) == (
        "'usercomment=~(a|aa)+b': one match took more than 0.25 s: simplify it"
    )


async def test_a_regex_value_slow_on_every_node_fails_after_the_budget_in_all(
    store_of: Callable[[list[str]], Store], short_budget: None
) -> None:
    store = store_of(SLOW_NAMES)
    bmc = Definition(GROUP, "compute", {"bmc": f"/{SLOW}/bmc/"})
    objects.change(store.db, [objects.Edit(bmc)])

    def lsdef(db) -> list[dict[str, str]]:
        nodes = Nodes.load(db)
        return [nodes.effective(name) for name in SLOW_NAMES]

    with pytest.raises(RegexValueError) as raised:
        await store.run(lsdef)
    assert str(raised.value).startswith(f"Bad regular expression value '/{SLOW}/bmc/' for node")
    assert str(raised.value).endswith(": matching took more than 0.5 s in all: simplify it")


def test_budgets_nest_into_the_outer_one(short_budget: None) -> None:
    slow = Pattern(SLOW)
    with patterns.budget():
        with pytest.raises(PatternError, match="in all"):
            for name in SLOW_NAMES:
                slow.fullmatch(name)
        with patterns.budget(), pytest.raises(PatternError, match="in all"):
            Pattern("n").fullmatch("n")  # the outer budget is spent


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("a" * (MAX_LENGTH + 1), f"longer than {MAX_LENGTH:,} characters"),
        ("(?:a{600}){600}", f"its repeat counts unroll to more than {MAX_UNROLLED:,} items"),
        ("(?:x+y){20000,}", f"its repeat counts unroll to more than {MAX_UNROLLED:,} items"),
        ("(" * 450 + ")" * 450, "its parentheses are nested too deeply"),
        ("a{4294967295}", "the repetition number is too large"),
        ("*node", "nothing to repeat at position 0"),
        (r"(?<=a+)b", "look-behind requires fixed-width pattern"),  # regex would take it
    ],
)
def test_patterns_that_cannot_be_used_are_refused_before_matching(text: str, problem: str) -> None:
    with pytest.raises(PatternError) as raised:
        Pattern(text)
    assert problem in str(raised.value)
    assert "\n" not in str(raised.value)


def test_large_but_cheap_repeats_are_fine() -> None:
    assert Pattern("node[0-9]{1,4000}").fullmatch("node" + "7" * 3000)
    assert Pattern("(?:rack[0-9]{2}){0,5000}").fullmatch("rack01rack02")
