"""Attribute selections: `attr==value`, `attr!=value`, `attr=~regex`, `attr!~regex`.

The same four forms select objects in `lsdef -w`, nodes of a dynamic group
(`wherevals`, joined by `::`) and nodes in a noderange.  `attr=value`
means `==`, as in xCAT.  A regular expression is the user's: it is matched
within the request's budget (`patterns`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import XcatdError
from .patterns import Pattern, PatternError

# What an attribute name may be (xCAT's are short; a long one is a mistake,
# and would be repeated in an error message for each object named).
ATTRIBUTE_NAME = re.compile(r"[A-Za-z0-9_.]{1,64}")
_FORM = re.compile(rf"^({ATTRIBUTE_NAME.pattern})(==|!=|=~|!~|=)(.*)$", re.DOTALL)


class SelectionError(XcatdError, ValueError):
    """A selection that cannot be used; the message names it and says why, on one line."""


@dataclass(frozen=True)
class Selection:
    attribute: str
    operator: str
    value: str
    pattern: Pattern | None = None

    def matches(self, actual: str | None) -> bool:
        actual = actual or ""
        if self.operator == "==":
            return actual == self.value
        if self.operator == "!=":
            return actual != self.value
        assert self.pattern is not None
        try:
            found = self.pattern.search(actual) is not None
        except PatternError as error:
            raise SelectionError(f"'{self.text}': {error}") from None
        return found if self.operator == "=~" else not found

    @property
    def text(self) -> str:
        """The selection as written (with `==` for `=`)."""
        return f"{self.attribute}{self.operator}{self.value}"


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
            pattern = Pattern(value)
        except PatternError as exc:
            raise SelectionError(f"'{text}': bad regular expression: {exc}") from None
    return Selection(attribute, operator, value, pattern)


def parse_wherevals(text: str) -> list[Selection]:
    return [parse_selection(part) for part in text.split("::") if part]
