r"""Generate xcatd/store/xcat_tables.json from xCAT's perl-xCAT/xCAT/Schema.pm.

    python tools/xcat_tables.py /path/to/Schema.pm

xCAT's tables are a second view of this project's objects (tabdump, chtab,
nodech, ...).  What the view needs of xCAT is in Schema.pm: `%tabspec` (each
table's columns in order, its keys and descriptions) and `%defspec` (which
object attribute each table.column is, with its `only_if` condition, and which
column names the object: `access_tabentry => 'hosts.node=attr:node'`, or, for
the site table, which key row holds an attribute: `site.key=str:master`).
The JSON keeps, for every table, its columns in xCAT's order and, for each
column, the (object type, attribute, only_if, position in %defspec) mappings
for the object types this project has; whether this project keeps a column
is then read from its own declarations (xcatd/store/objtypes.py) when the daemon starts, so an
attribute declared later is in the table view without regenerating this.

Schema.pm is Perl; this reads the literals it is made of (hashes, arrays,
`qw()`, quoted strings joined by `.`) with a small parser of its own and runs
none of it.  Double-quoted strings are taken as written, escapes resolved and
nothing interpolated (Schema.pm interpolates nothing).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "xcatd" / "store" / "xcat_tables.json"

_TOKEN = re.compile(
    r"""
    (?P<space>\s+|\#[^\n]*)
  | (?P<qw>qw\s*\((?P<words>[^)]*)\))
  | (?P<qq>qq\s*\{(?P<qqtext>[^}]*)\})
  | (?P<single>'(?:[^'\\]|\\.)*')
  | (?P<double>"(?:[^"\\]|\\.)*")
  | (?P<arrow>=>|->)
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<word>[$%@]?[A-Za-z_][A-Za-z0-9_:]*)
  | (?P<punct>[{}\[\](),.;=\\])
    """,
    re.VERBOSE,
)
_ESCAPES = {"n": "\n", "t": "\t"}


class SchemaError(ValueError):
    """Schema.pm holds something this reader does not know; the message says where."""


def tokens(text: str, start: int) -> list[tuple[str, Any]]:
    """The tokens of `text` from `start` to the end of the statement (`;` at
    bracket depth 0), as (kind, value)."""
    found: list[tuple[str, Any]] = []
    depth, position = 0, start
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            line = text.count("\n", 0, position) + 1
            raise SchemaError(f"line {line}: cannot read {text[position : position + 40]!r}")
        position = match.end()
        kind = {"words": "qw", "qqtext": "qq"}.get(match.lastgroup, match.lastgroup)
        if kind == "space":
            continue
        value = _value(kind, match)
        if kind == "punct" and value in "{[(":
            depth += 1
        elif kind == "punct" and value in "}])":
            depth -= 1
        elif kind == "punct" and value == ";" and depth == 0:
            return found
        found.append((kind, value))
    return found


def _value(kind: str, match: re.Match) -> Any:
    text = match.group(kind)
    if kind == "qw":
        return match.group("words").split()
    if kind == "single":
        return re.sub(r"\\([\\'])", r"\1", text[1:-1])
    if kind in ("double", "qq"):
        inside = text[1:-1] if kind == "double" else match.group("qqtext")
        return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), inside)
    return text


class Reader:
    """Perl literals from a list of tokens."""

    def __init__(self, found: list[tuple[str, Any]]) -> None:
        self.found = found
        self.at = 0

    def peek(self) -> tuple[str, Any]:
        return self.found[self.at] if self.at < len(self.found) else ("end", None)

    def take(self, value: str | None = None) -> tuple[str, Any]:
        token = self.peek()
        if value is not None and token[1] != value:
            raise SchemaError(f"expected {value!r}, found {token[1]!r}")
        self.at += 1
        return token

    def value(self) -> Any:
        """A term, or terms joined by `.`."""
        result = self.term()
        while self.peek() == ("punct", "."):
            self.take()
            result = f"{result}{self.term()}"
        return result

    def term(self) -> Any:
        kind, value = self.take()
        if kind in ("single", "double", "qq", "number", "word", "qw"):
            return value
        if value == "{":
            return dict(self.pairs("}"))
        if value in "[(":
            return self.items("]" if value == "[" else ")")
        raise SchemaError(f"unexpected {value!r}")

    def items(self, close: str) -> list[Any]:
        """A list up to `close`; a qw() inside it is spread, as Perl does."""
        result: list[Any] = []
        while self.peek()[1] != close:
            kind = self.peek()[0]
            item = self.value()
            if kind == "qw":
                result.extend(item)
            else:
                result.append(item)
            if self.peek()[1] in (",", "=>"):
                self.take()
        self.take(close)
        return result

    def pairs(self, close: str) -> list[tuple[str, Any]]:
        flat = self.items(close)
        if len(flat) % 2:
            raise SchemaError(f"odd number of items in a hash: {flat[:4]!r}...")
        return list(zip(flat[::2], flat[1::2], strict=True))


def literal_after(text: str, pattern: str) -> Any:
    """The parenthesised list that follows the first match of `pattern`."""
    found = re.search(pattern, text, re.MULTILINE)
    if found is None:
        raise SchemaError(f"Schema.pm has no {pattern!r}")
    reader = Reader(tokens(text, found.end()))
    reader.take("(")
    return reader.items(")")


def read_schema(text: str) -> tuple[dict[str, dict], dict[str, list[dict]]]:
    """xCAT's %tabspec, and %defspec's attribute lists by object type."""
    tabspec = dict(_pairs(text, "tabspec"))
    nodeattrs = literal_after(text, r"^my @nodeattrs\s*=\s*(?=\()")
    defspec: dict[str, list[dict]] = {}
    for found in re.finditer(
        r"^@\{\s*\$defspec\{(\w+)\}->\{'attrs'\}\s*\}\s*=\s*(?=\()", text, re.M
    ):
        reader = Reader(tokens(text, found.end()))
        reader.take("(")
        defspec[found.group(1)] = reader.items(")")
    for found in re.finditer(
        r"^push\(@\{\s*\$defspec\{(\w+)\}->\{'attrs'\}\s*\},\s*@nodeattrs\)", text, re.M
    ):
        defspec[found.group(1)] = [*defspec[found.group(1)], *nodeattrs]
    return tabspec, defspec


def _pairs(text: str, name: str) -> list[tuple[str, Any]]:
    found = re.search(rf"^%{name}\s*=\s*(?=\()", text, re.MULTILINE)
    assert found is not None
    reader = Reader(tokens(text, found.end()))
    reader.take("(")
    return reader.pairs(")")


def project_types() -> list[str]:
    """The object types this project has (their names are xCAT's)."""
    sys.path.insert(0, str(ROOT))
    from xcatd.store.objtypes import TYPES

    return list(TYPES)


def tables(tabspec: dict[str, dict], defspec: dict[str, list[dict]], types: list[str]) -> dict:
    """Each table as the JSON holds it, in xCAT's (alphabetical) order."""
    result = {}
    for name in sorted(tabspec):
        spec = tabspec[name]
        descriptions = spec.get("descriptions", {})
        result[name] = {
            "keys": spec.get("keys", []),
            "description": spec.get("table_desc", ""),
            "columns": [
                {"name": column, "description": descriptions.get(column, "")}
                for column in spec["cols"]
            ],
        }
    for objtype in types:
        for position, attribute in enumerate(defspec.get(objtype, [])):
            _map(result, objtype, attribute, position)
    return result


def _map(result: dict, objtype: str, attribute: dict, position: int) -> None:
    """Record in `result` where one of %defspec's attributes lives; its
    position in %defspec tells which of an attribute's conditional places
    comes first (ipmi.bmc before openbmc.bmc)."""
    table, _, column = attribute["tabentry"].partition(".")
    entry = result[table]
    access = attribute.get("access_tabentry", "")
    # 'hosts.node=attr:node': column node names the object; 'site.key=str:master':
    # the row whose key is 'master' holds the attribute master.  Rows named by
    # both (ppcdirect: hcp and username) are not objects' rows: left out.
    parts = [part.partition("=") for part in access.split("::")]
    if len(parts) != 1:
        return
    where, _, how = parts[0]
    key_column = where.partition(".")[2]
    if how.startswith("str:"):
        entry["attribute_rows"] = {"type": objtype, "name": key_column, "value": column}
        return
    entry.setdefault("names", {})[objtype] = key_column
    for item in entry["columns"]:
        if item["name"] == column:
            mapping = [objtype, attribute["attr_name"], attribute.get("only_if", ""), position]
            item.setdefault("attributes", []).append(mapping)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        print(f"usage: {argv[0]} PATH/TO/perl-xCAT/xCAT/Schema.pm", file=sys.stderr)
        return 2
    text = Path(argv[1]).read_text(encoding="utf-8", errors="replace")
    try:
        tabspec, defspec = read_schema(text)
    except SchemaError as exc:
        print(f"{argv[1]}: {exc}", file=sys.stderr)
        return 1
    data = {
        "generated_by": "tools/xcat_tables.py from xCAT's perl-xCAT/xCAT/Schema.pm",
        "tables": tables(tabspec, defspec, project_types()),
    }
    OUTPUT.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{OUTPUT.relative_to(ROOT)}: {len(data['tables'])} tables")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
