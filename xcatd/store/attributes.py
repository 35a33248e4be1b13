"""What an attribute value may be: kinds, and the check each kind makes.

An attribute is declared once (see `objtypes`) with its kind; parsing,
validation, `lsdef -h` and the table columns all read that declaration.
Checks return the value as it will be stored, or raise AttributeValueError
with a sentence naming the attribute and what is wrong.  `Attribute.check` is
where every value written is checked, whatever its kind: no value is longer
than `MAX_VALUE_BYTES`, so that no listing of it outgrows a reply frame.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass
from enum import Enum

from ..errors import XcatdError
from . import keyed
from .regex_values import RegexValueError, compile_value, is_regex_value

MAX_VALUE_BYTES = 64 << 10  # of one attribute value, in UTF-8
_SHOWN = 80  # characters of a bad value that its error message repeats


class AttributeValueError(XcatdError, ValueError):
    pass


class Kind(Enum):
    TEXT = "text"
    INTEGER = "integer"
    IP = "IP address"
    MAC = "MAC address"
    PATH = "absolute path"
    PATHS = "comma-separated absolute paths"
    LIST = "comma-separated list"
    CHOICE = "one of"
    NUMBER = "number"
    PER_INTERFACE = "per interface"  # xCAT's nics table: see keyed.py


_MAC = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Attribute:
    name: str
    meaning: str
    kind: Kind = Kind.TEXT
    choices: tuple[str, ...] = ()
    regex_allowed: bool = False  # xCAT regular-expression values (node and group attributes)
    # xCAT's only_if: the attribute may be set only where one of these
    # (attribute, value) holds (bmc: mgt=ipmi or mgt=openbmc); () for any object.
    only_if: tuple[tuple[str, str], ...] = ()

    @property
    def is_list(self) -> bool:
        return self.kind in (Kind.LIST, Kind.PATHS)

    @property
    def per_interface(self) -> bool:
        return self.kind is Kind.PER_INTERFACE

    def check(self, value: str) -> str:
        """The value to store; '' clears the attribute."""
        if len(value) > MAX_VALUE_BYTES:  # surely too long: refused without encoding it
            raise self._too_long()
        return _checked(self, value)

    def check_entry(self, name: str, value: str) -> str:
        """One interface's value (`name` is attr.nic) as it will be stored."""
        if len(value) > MAX_VALUE_BYTES:
            raise self._too_long()
        why = "control characters are not allowed" if _CONTROL.search(value) else None
        if why := why or keyed.entry_problem(value):
            raise AttributeValueError(f"Invalid value '{value}' for attribute '{name}': {why}")
        return value

    def _check(self, value: str) -> str:
        if len(value.encode(errors="surrogatepass")) > MAX_VALUE_BYTES:
            raise self._too_long()
        if _CONTROL.search(value):
            raise self._bad(value, "control characters are not allowed")
        if value == "":
            return value
        if self.regex_allowed and is_regex_value(value):
            try:
                compile_value(value)
            except RegexValueError as exc:
                raise AttributeValueError(
                    f"Invalid value for attribute '{self.name}': {exc}"
                ) from None
            return value
        return _CHECKS[self.kind](self, value)

    def _too_long(self) -> AttributeValueError:
        return AttributeValueError(
            f"Invalid value for attribute '{self.name}': longer than {MAX_VALUE_BYTES:,} "
            f"bytes ({MAX_VALUE_BYTES >> 10} KiB), the most a value may hold"
        )

    def _bad(self, value: str, why: str) -> AttributeValueError:
        # Not all of a long value: a chdef of 100,000 nodes makes this message
        # for each of them.
        if len(value) > _SHOWN:
            value = f"{value[:_SHOWN]}... ({len(value):,} characters)"
        return AttributeValueError(f"Invalid value '{value}' for attribute '{self.name}': {why}")


@functools.lru_cache(maxsize=1024)  # values of up to 64 KiB: at most 64 MiB
def _checked(attribute: Attribute, value: str) -> str:
    # A chdef of 100,000 nodes checks the same value 100,000 times.
    return attribute._check(value)


def _text(attribute: Attribute, value: str) -> str:
    return value


def _integer(attribute: Attribute, value: str) -> str:
    if not re.fullmatch(r"-?\d+", value):
        raise attribute._bad(value, "expected an integer")
    return str(int(value))


def _number(attribute: Attribute, value: str) -> str:
    try:
        float(value)
    except ValueError:
        raise attribute._bad(value, "expected a number") from None
    return value


def _ip(attribute: Attribute, value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise attribute._bad(value, "expected an IPv4 or IPv6 address") from None


def mac_address(text: str) -> str | None:
    """`text` as a MAC address is stored (lower case, ':'), or None when it is not one.
    Also for values the store could not check: those of regular expressions."""
    address = text.strip().lower().replace("-", ":")
    return address if _MAC.fullmatch(address) else None


def _mac(attribute: Attribute, value: str) -> str:
    # xCAT keeps several MACs of a node separated by '|'; '!' marks one not
    # to be used for DHCP ("mac!*NOIP*").
    macs = []
    for mac in value.split("|"):
        address, bang, rest = mac.partition("!")
        checked = mac_address(address)
        if checked is None:
            raise attribute._bad(value, "expected a MAC address like 52:54:00:12:34:56")
        macs.append(checked + bang + rest)
    return "|".join(macs)


def _path(attribute: Attribute, value: str) -> str:
    if not value.startswith("/"):
        raise attribute._bad(value, "expected an absolute path")
    return value


def _paths(attribute: Attribute, value: str) -> str:
    for item in value.split(","):
        _path(attribute, item.strip())
    return ",".join(item.strip() for item in value.split(","))


def _list(attribute: Attribute, value: str) -> str:
    return ",".join(item.strip() for item in value.split(",") if item.strip())


def _per_interface(attribute: Attribute, value: str) -> str:
    if why := keyed.column_problem(value):
        raise attribute._bad(value, why)
    return value


def _choice(attribute: Attribute, value: str) -> str:
    if value not in attribute.choices:
        raise attribute._bad(value, f"expected one of {', '.join(attribute.choices)}")
    return value


_CHECKS = {
    Kind.TEXT: _text,
    Kind.INTEGER: _integer,
    Kind.NUMBER: _number,
    Kind.IP: _ip,
    Kind.MAC: _mac,
    Kind.PATH: _path,
    Kind.PATHS: _paths,
    Kind.LIST: _list,
    Kind.CHOICE: _choice,
    Kind.PER_INTERFACE: _per_interface,
}
