r"""Generate xcatd/store/xcat_templates.json from xCAT's shipped object templates.

    python tools/xcat_templates.py /path/to/xcat-core/xCAT/templates/objects

xCAT ships object definition templates (`x86_64-template`,
`switch-template`, ...) as stanza files under templates/objects/<type>/;
`lsdef --template` shows them and `mkdef --template NAME` creates objects
from them, a value `MANDATORY:...` saying the attribute must be given and
`OPTIONAL:...` that it may be.  The JSON holds each template's type and
attributes as xCAT's stanza reader leaves them (quotes taken off), read
with this project's stanza parser; each attribute is checked against this
project's declarations, so a template that would not load is caught here.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "xcatd" / "store" / "xcat_templates.json"
sys.path.insert(0, str(ROOT))

from xcatd.store.objtypes import TYPES  # noqa: E402
from xcatd.store.stanza import StanzaError, parse  # noqa: E402


def templates(directory: Path) -> dict[str, dict]:
    """Every template under `directory` (one folder per object type), by name."""
    found: dict[str, dict] = {}
    for path in sorted(directory.glob("*/*.stanza")):
        for stanza in parse(path.read_text(encoding="utf-8")):
            objtype = TYPES.get(stanza.objtype or "")
            if objtype is None:
                raise StanzaError(f"{path}: '{stanza.name}' is of unknown type {stanza.objtype}")
            values = {k: v for k, v in stanza.attributes.items() if k != "objtype"}
            unknown = [name for name in values if objtype.attribute(name) is None]
            if unknown:
                raise StanzaError(f"{path}: '{stanza.name}' has unknown attributes {unknown}")
            found[stanza.name] = {"objtype": objtype.name, "attributes": values}
    return found


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        print(f"usage: {argv[0]} PATH/TO/xCAT/templates/objects", file=sys.stderr)
        return 2
    try:
        found = templates(Path(argv[1]))
    except (OSError, StanzaError) as exc:
        print(f"cannot read the templates: {exc}", file=sys.stderr)
        return 1
    data = {
        "generated_by": "tools/xcat_templates.py from xCAT's xCAT/templates/objects",
        "templates": found,
    }
    OUTPUT.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{OUTPUT.relative_to(ROOT)}: {len(found)} templates")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
