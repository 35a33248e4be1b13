"""The lines of a hosts file (/etc/hosts) as xCAT's makehosts edits them.

A node's line is `<ip> <short name> <long name> <other names>`: the long
name is `<node>.<domain>`, the other names come from its `hostnames`
attribute.  An existing line is the node's when its address is the node's
or its first name is the node's name (also `node.anything`, a long name
written first); the first such line is replaced where it stands, any others
are dropped, and a node with none gets a line at the end.  Every other line
(comments, the host's own names, lines nobody wrote) stays as it is.  xCAT
ends a line with no other names with a space; these lines do not.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from .errors import XcatdError

_IPV4 = re.compile(r"\d+\.\d+\.\d+\.\d+")


class HostsError(XcatdError):
    """A line that cannot be written; the message is xCAT's."""


@dataclass(frozen=True)
class Style:
    """The options that shape a line: -l (or site.FQDNfirst), -o and -a."""

    long_first: bool = False
    others_first: bool = False
    add_domain: bool = False


class HostsFile:
    """The file's lines, indexed by address and by the names of their first name."""

    def __init__(self, lines: list[str]) -> None:
        self._lines: list[str | None] = []  # None: dropped
        self._by_ip: dict[str, set[int]] = {}
        self._by_name: dict[str, set[int]] = {}
        for line in lines:
            self._append(line)

    def text(self) -> str:
        return "".join(f"{line}\n" for line in self._lines if line is not None)

    def first_name(self, ip: str, name: str) -> str | None:
        """The first name of the line that is (`name`, `ip`)'s, if there is one."""
        for index in self._matching(name, ip):
            line = self._lines[index]
            if line is not None:
                fields = line.split()
                return fields[1] if len(fields) > 1 else None
        return None

    def put(self, name: str, ip: str, line: str) -> None:
        """`line` in place of (`name`, `ip`)'s lines, else at the end."""
        matching = self._matching(name, ip)
        if not matching:
            self._append(line)
            return
        self._set(matching[0], line)
        for index in matching[1:]:
            self._set(index, None)

    def remove(self, name: str, ip: str | None) -> None:
        """Drop the lines of `name` or of `ip`."""
        for index in self._matching(name, ip):
            self._set(index, None)

    def _matching(self, name: str, ip: str | None) -> list[int]:
        found = set(self._by_name.get(name, ()))
        if ip:
            found |= self._by_ip.get(ip, set())
        return sorted(found)

    def _append(self, line: str) -> None:
        self._lines.append(None)
        self._set(len(self._lines) - 1, line)

    def _set(self, index: int, line: str | None) -> None:
        self._index(index, self._lines[index], remove=True)
        self._lines[index] = line
        self._index(index, line)

    def _index(self, index: int, line: str | None, *, remove: bool = False) -> None:
        address, names = _keys(line)
        tables = [(self._by_ip, address)] if address else []
        tables += [(self._by_name, name) for name in names]
        for table, key in tables:
            entries = table.setdefault(key, set())
            if remove:
                entries.discard(index)
            else:
                entries.add(index)


def _keys(line: str | None) -> tuple[str | None, list[str]]:
    """What a line is found by: its address, and for an IPv4 line each leading
    part of its first name (`n1.cluster.net`: n1, n1.cluster, n1.cluster.net)."""
    fields = (line or "").split() if line and not line[0].isspace() else []
    if len(fields) < 2:
        return (fields[0] if fields else None), []
    first = fields[1]
    if not _IPV4.fullmatch(fields[0]):
        return fields[0], []
    return fields[0], [first[:dot] for dot, c in enumerate(first) if c == "."] + [first]


def is_address(text: str) -> bool:
    """An IPv4 or IPv6 address (xCAT's isIpaddr)."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def host_line(ip: str, node: str, domain: str, othernames: str, style: Style) -> str:
    """xCAT's line for `node` at `ip`: its short and long names (the long one
    a dotted name of `othernames`, else `<node>.<domain>`) and the others."""
    others: list[str] = []
    added: list[str] = []
    longname = None
    for name in re.split(r"[, ]", othernames.strip()) if othernames.strip() else []:
        if name == node or (domain and name == f"{node}.{domain}"):
            longname = f"{node}.{domain}"
        elif "." in name and longname is None:
            longname = name
        else:
            if "." not in name and style.add_domain:
                added.insert(0, f"{name}.{domain}")
            others.append(name)
    others = [name for name in added + others if name]
    shortname = node
    if domain and node.lower().endswith(f".{domain.lower()}"):
        longname, shortname = node, node[: -len(domain) - 1]
    elif domain and longname is None:
        longname = f"{node}.{domain}"
    if "." in shortname:
        raise HostsError(
            f"Invalid short node name '{shortname}'. The short node name may not contain a "
            "dot. The short node name is considered to be anything preceeding the network "
            f"domain name in the fully qualified node name '{longname}'."
        )
    if style.long_first:
        words = [longname, shortname, *others]
    elif style.others_first:
        words = [*others, longname, shortname]
    else:
        words = [shortname, longname, *others]
    return " ".join([ip, *(word for word in words if word)])
