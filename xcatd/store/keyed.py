"""Attributes with a value per network interface: xCAT's nics table.

xCAT keeps `nicips`, `nicnetworks`, ... of a node as one column each, in
the form `eth0!10.0.0.1,eth1!10.1.0.1|10.1.0.2` (interface, '!', value;
several interfaces separated by ','), and its def commands show and take
them one interface at a time: `chdef sn1 nicips.eth1=10.1.0.1` sets eth1's
entry and leaves eth0's, `nicips.eth1=` removes it, and lsdef prints
`nicips.eth1=10.1.0.1`.  This module is that translation, both ways; the
store keeps xCAT's column form, so the table view and the object view are
the same data.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import TypeVar

Source = TypeVar("Source")

# An interface name as the kernel allows one (eth1, ib0, bond0.100, enp0s3).
_INTERFACE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]{0,14}")
_SEPARATORS = re.compile(r"[,!]")


def split_name(name: str) -> tuple[str, str | None]:
    """`nicips.eth1` -> (`nicips`, `eth1`); a plain name -> (name, None).
    xCAT's per-interface attributes are its nics table's columns, all named
    nic...: other dotted names (an fsp's `passwd.HMC`) are attributes whole."""
    base, dot, interface = name.partition(".")
    return (base, interface) if dot and base.startswith("nic") else (name, None)


def is_interface(name: str) -> bool:
    return _INTERFACE.fullmatch(name) is not None


def entry_problem(value: str) -> str | None:
    """Why `value` cannot be one interface's entry, or None."""
    if _SEPARATORS.search(value):
        return "one interface's value may not hold ',' or '!'"
    return None


def column_problem(value: str) -> str | None:
    """Why `value` is not xCAT's column form `<nic>!<value>[,<nic>!<value>...]`, or None."""
    for entry in value.split(","):
        interface, bang, _ = entry.partition("!")
        if not bang or not is_interface(interface):
            return f"expected <interface>!<value>[,<interface>!<value>...], not '{entry}'"
    return None


def entries(column: str | None) -> dict[str, str]:
    """The column's value by interface, in its order."""
    found = {}
    for entry in (column or "").split(","):
        interface, bang, value = entry.partition("!")
        if bang and interface:
            found[interface] = value
    return found


def column(by_interface: Mapping[str, str]) -> str:
    """The column form of values by interface ('' when there are none)."""
    return ",".join(f"{interface}!{value}" for interface, value in by_interface.items() if value)


def folded(values: Mapping[str, str], current: Mapping[str, str | None]) -> dict[str, str]:
    """`values` with each `attr.nic` entry merged into the column `attr`: into
    what `values` sets it to, else into its `current` value."""
    result: dict[str, str] = {}
    per_interface: dict[str, dict[str, str]] = {}
    for name, value in values.items():
        base, interface = split_name(name)
        if interface is None:
            result[name] = value
        else:
            per_interface.setdefault(base, {})[interface] = value
    for base, given in per_interface.items():
        merged = entries(result.get(base, current.get(base)))
        merged.update(given)
        result[base] = column(merged)
    return result


def shown(
    values: Mapping[str, tuple[str, Source]], keyed: Iterable[str]
) -> dict[str, tuple[str, Source]]:
    """Values (with where each comes from) as lsdef shows them: each `keyed`
    column as one `attr.nic` entry per interface."""
    keyed = set(keyed)
    result: dict[str, tuple[str, Source]] = {}
    for name, (value, source) in values.items():
        if name in keyed:
            result.update({f"{name}.{nic}": (v, source) for nic, v in entries(value).items()})
        else:
            result[name] = (value, source)
    return result
