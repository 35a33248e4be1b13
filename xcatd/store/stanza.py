"""xCAT's stanza format, both ways.

    # <xCAT data object stanza file>

    node01:
        objtype=node
        groups=all,compute

`mkdef -z` and `chdef -z` read it; `lsdef -z` writes it; what one writes the
other reads back as the same objects.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from ..errors import XcatdError

HEADER = "# <xCAT data object stanza file>"


class StanzaError(XcatdError, ValueError):
    pass


@dataclass
class Stanza:
    name: str
    line: int  # where it starts, for error messages
    attributes: dict[str, str] = field(default_factory=dict)

    @property
    def objtype(self) -> str | None:
        return self.attributes.get("objtype")


def parse(text: str) -> list[Stanza]:
    """The objects in a stanza file, with `default-<type>:` values applied.

    A default applies to the objects of its type that follow it; an object's
    own values win.
    """
    stanzas: list[Stanza] = []
    defaults: dict[str, dict[str, str]] = {}
    current: Stanza | None = None
    current_default: dict[str, str] | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith(":") and "=" not in line:
            name = line[:-1].strip()
            if not name:
                raise StanzaError(f"line {number}: an object name is missing before ':'")
            if name.startswith("default-"):
                current, current_default = None, defaults.setdefault(name[8:], {})
            else:
                current, current_default = Stanza(name, number), None
                stanzas.append(current)
            continue
        attribute, equals, value = line.partition("=")
        attribute = attribute.strip()
        if not equals or not attribute:
            raise StanzaError(f"line {number}: expected '<name>:' or 'attribute=value': {raw!r}")
        target = current.attributes if current is not None else current_default
        if target is None:
            raise StanzaError(f"line {number}: '{attribute}=' comes before any object name")
        target[attribute] = _unquote(value.strip())
    for stanza in stanzas:
        if stanza.objtype is None:
            raise StanzaError(f"line {stanza.line}: object '{stanza.name}' has no objtype")
        stanza.attributes = {**defaults.get(stanza.objtype, {}), **stanza.attributes}
    return stanzas


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def format_stanzas(objects: Iterable[tuple[str, str, dict[str, str]]]) -> Iterator[str]:
    """Lines of a stanza file for (name, type, attributes) in the order given."""
    yield HEADER
    for name, objtype, attributes in objects:
        yield ""
        yield f"{name}:"
        yield f"    objtype={objtype}"
        for attribute in sorted(attributes):
            yield f"    {attribute}={attributes[attribute]}"
