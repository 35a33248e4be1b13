"""Who may run what: xCAT's ordered policy rules.

Rules are tried from the lowest priority number up; the first rule whose
every set field matches the request decides; no match means deny.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

ALLOWING = ("allow", "accept", "trusted")
RULES = (*ALLOWING, "deny")

# What `xcatd init` installs.  Service nodes may read the definitions they need
# to serve their nodes and report status; the noderange restriction to "nodes
# this service node serves" comes with the object store's noderange support.
DEFAULT_RULES: tuple[dict[str, Any], ...] = (
    {"priority": "1", "name": "root", "rule": "allow", "comments": "root may do everything"},
    {
        "priority": "1.2",
        "role": "master",
        "rule": "trusted",
        "comments": "the management node's own daemon, relaying for its users",
    },
    {
        "priority": "4",
        "role": "servicenode",
        "commands": "lsxcatd,lsdef,nodels,nodestat,updatenodestat",
        "rule": "allow",
        "comments": "service nodes read definitions and report status",
    },
)


class PolicyError(Exception):
    """A policy row that cannot be used; the message names it."""


@dataclass(frozen=True)
class Rule:
    priority: float
    rule: str
    name: str | None = None
    role: str | None = None
    commands: frozenset[str] | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Rule:
        try:
            priority = float(row["priority"])
        except (TypeError, ValueError):
            raise PolicyError(f"policy priority {row['priority']!r} is not a number") from None
        rule = str(row.get("rule") or "").lower()
        if rule not in RULES:
            raise PolicyError(
                f"policy {row['priority']}: rule {row.get('rule')!r} is not one of "
                + ", ".join(RULES)
            )
        commands = row.get("commands")
        return cls(
            priority=priority,
            rule=rule,
            name=None if row.get("name") in (None, "", "*") else row["name"],
            role=row.get("role") or None,
            commands=frozenset(c.strip() for c in commands.split(",")) if commands else None,
        )

    def matches(self, user: str, role: str, command: str) -> bool:
        return (
            (self.name is None or self.name == user)
            and (self.role is None or self.role == role)
            and (self.commands is None or command in self.commands)
        )


class Policy:
    def __init__(self, rows: Iterable[dict[str, Any]]) -> None:
        rules = [
            Rule.from_row(row)
            for row in rows
            if str(row.get("disable") or "").lower() not in ("1", "yes", "true")
        ]
        self.rules = sorted(rules, key=lambda r: r.priority)

    def allows(self, user: str, role: str, command: str) -> bool:
        for rule in self.rules:
            if rule.matches(user, role, command):
                return rule.rule in ALLOWING
        return False
