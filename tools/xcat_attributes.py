r"""Generate xcatd/store/xcat_attributes.json from xCAT's perl-xCAT/xCAT/Schema.pm.

    python tools/xcat_attributes.py /path/to/Schema.pm

Every attribute that xCAT's `%defspec` gives the object types this project
has (TYPES), each type's key (%defspec's objkey), with the description
`lsdef -t TYPE -h` prints for it and where xCAT keeps it (table.column, and
the `only_if` condition of each place), in %defspec's order.  The site
object's attributes are the keys of xCAT's site table: %defspec names three,
but xCAT's chdef takes any key, and the site table's description lists
every key xCAT reads, each with its meaning; those are the site's here.
xcatd/store/objtypes.py declares every attribute from this file, beside the
kinds and checks of the attributes this project acts on.

Schema.pm is read with tools/xcat_tables.py's reader of Perl literals;
none of it is run.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from xcat_tables import SchemaError, read_schema

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "xcatd" / "store" / "xcat_attributes.json"
# The six this project acts on, then those an administrator defines for
# xCAT's own use (routes, zones, racks, ...), which are kept as they are given.
TYPES = ("node", "group", "osimage", "network", "site", "policy", "route", "zone", "rack",
         "boottarget", "osdistro", "osdistroupdate", "notification", "monitoring")  # fmt: skip
# %defspec's header: `route => { attrs => [], attrhash => {}, objkey => 'routename' },`
_OBJKEY = re.compile(r"^\s*(\w+)\s*=>\s*\{[^}]*\}[^}]*objkey\s*=>\s*'(\w+)'", re.M)

# A key in the site table's description: ` name:  text` (or ` name :  text`)
# at the start of a line, its text going on over the lines indented under it.
_SITE_KEY = re.compile(r"^ (\w+)\s*:\s*(.*)$")


def attributes(
    objtype: str, tabspec: dict[str, dict], defspec: dict[str, list[dict]]
) -> list[dict[str, Any]]:
    """The type's attributes, each once, in %defspec's order; the object's
    own name (its key: node, groupname, ...) is not an attribute."""
    found: dict[str, dict[str, Any]] = {}
    for spec in defspec.get(objtype, []):
        name = spec["attr_name"]
        table, _, column = spec["tabentry"].partition(".")
        if _names_the_object(spec, column):
            continue
        place = [spec["tabentry"], spec.get("only_if", "")]
        if name in found:
            found[name]["places"].append(place)
            continue
        description = spec.get("description") or _column_description(tabspec, table, column)
        found[name] = {"name": name, "description": description, "places": [place]}
    return list(found.values())


def _names_the_object(spec: dict, column: str) -> bool:
    """Whether this attribute is the column that names the object
    (`access_tabentry => 'nodelist.node=attr:node'` for attribute node)."""
    access = spec.get("access_tabentry", "")
    return access.endswith(f"=attr:{spec['attr_name']}") and access.split("=")[0].endswith(
        f".{column}"
    )


def _column_description(tabspec: dict[str, dict], table: str, column: str) -> str:
    return tabspec.get(table, {}).get("descriptions", {}).get(column, "")


def site_attributes(tabspec: dict[str, dict]) -> list[dict[str, Any]]:
    """The keys the site table's description lists, with their meanings."""
    text = tabspec["site"]["descriptions"]["key"]
    found: list[dict[str, Any]] = []
    current: list[str] | None = None
    for line in text.splitlines():
        key = _SITE_KEY.match(line)
        if key and not line.startswith("  "):
            current = [key.group(2).strip()]
            found.append({"name": key.group(1), "lines": current, "places": [["site.value", ""]]})
        elif current is not None and line.strip() and not line.strip().startswith("---"):
            if line.startswith("  "):
                current.append(line.strip())
            else:
                current = None  # a heading such as "DHCP ATTRIBUTES"
        elif current is not None and not line.strip():
            current = None
    for attribute in found:
        attribute["description"] = " ".join(part for part in attribute.pop("lines") if part)
    return found


def generate(text: str) -> dict[str, Any]:
    tabspec, defspec = read_schema(text)
    types = {objtype: attributes(objtype, tabspec, defspec) for objtype in TYPES}
    types["site"] = site_attributes(tabspec)
    keys = {name: key for name, key in _OBJKEY.findall(text) if name in TYPES}
    return {
        "generated_by": "tools/xcat_attributes.py from xCAT's perl-xCAT/xCAT/Schema.pm",
        "keys": keys,
        "types": types,
    }


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        print(f"usage: {argv[0]} PATH/TO/perl-xCAT/xCAT/Schema.pm", file=sys.stderr)
        return 2
    try:
        data = generate(Path(argv[1]).read_text(encoding="utf-8", errors="replace"))
    except (SchemaError, KeyError) as exc:
        print(f"{argv[1]}: cannot read the attributes: {exc}", file=sys.stderr)
        return 1
    OUTPUT.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    counts = ", ".join(f"{t} {len(a)}" for t, a in data["types"].items())
    print(f"{OUTPUT.relative_to(ROOT)}: {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
