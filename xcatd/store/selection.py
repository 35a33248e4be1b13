"""Attribute selections: `attr==value`, `attr!=value`, `attr=~regex`, `attr!~regex`.

The same four forms select objects in `lsdef -w`, nodes of a dynamic group
(`wherevals`, joined by `::`) and nodes in a noderange.  `attr=value`
means `==`, as in xCAT.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_FORM = re.compile(r"^([A-Za-z0-9_.]+)(==|!=|=~|!~|=)(.*)$", re.DOTALL)


class SelectionError(ValueError):
    pass


@dataclass(frozen=True)
class Selection:
    attribute: str
    operator: str
    value: str
    pattern: re.Pattern[str] | None = None

    def matches(self, actual: str | None) -> bool:
        actual = actual or ""
        if self.operator == "==":
            return actual == self.value
        if self.operator == "!=":
            return actual != self.value
        assert self.pattern is not None
        found = self.pattern.search(actual) is not None
        return found if self.operator == "=~" else not found


def parse_selection(text: str) -> Selection:
    found = _FORM.match(text)
    if not found:
        raise SelectionError(
            f"'{text}' is not a selection: use attr==value, attr!=value, attr=~re or attr!~re"
        )
    attribute, operator, value = found.groups()
    if operator == "=":
        operator = "=="
    pattern = None
    if operator in ("=~", "!~"):
        try:
            pattern = re.compile(value)
        except re.error as exc:
            raise SelectionError(f"'{text}': bad regular expression: {exc}") from None
    return Selection(attribute, operator, value, pattern)


def parse_wherevals(text: str) -> list[Selection]:
    return [parse_selection(part) for part in text.split("::") if part]
