"""Who may run what: xCAT's ordered policy rules.

Rules are tried from the lowest priority number up; the first rule whose
every set field matches the request decides; no match means deny.  A rule
with a noderange matches only a request for nodes that are all in it, so a
decision may wait until the request's noderange is known (`verdict`).
Apart from the rules, a service node's certificate sees only the nodes it
serves (`Call.nodes`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .errors import XcatdError

ALLOWING = ("allow", "accept", "trusted")
RULES = (*ALLOWING, "deny")

# The commands a service node's daemon asks of the management node's for its
# trust (servicenode/trust.py; commands/trust.py answers them), and for the
# passwd table's rows its nodes' BMCs are driven with (servicenode/replica.py;
# commands/passwd.py answers it).
GETCRL, RENEW_SSH, GETPASSWD = "getcrl", "renewsshcerts", "getpasswd"
# What service nodes may run: read definitions, report their nodes' status,
# take the revocation list, renew their SSH certificates and take the passwd
# rows.  The default rule as earlier releases installed it, which a newer one
# extends (store/schema.py): the first five only (schema 2), then with getcrl
# and renewsshcerts.
SERVICE_NODE_COMMANDS_2 = "lsxcatd,lsdef,nodels,nodestat,updatenodestat"
SERVICE_NODE_COMMANDS_3 = f"{SERVICE_NODE_COMMANDS_2},{GETCRL},{RENEW_SSH}"
SERVICE_NODE_COMMANDS = f"{SERVICE_NODE_COMMANDS_3},{GETPASSWD}"
EARLIER_SERVICE_NODE_COMMANDS = (SERVICE_NODE_COMMANDS_2, SERVICE_NODE_COMMANDS_3)

# What `xcatd init` installs.  Service nodes may read the definitions they need
# to serve their nodes and report status (of the nodes they serve only).
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
        "commands": SERVICE_NODE_COMMANDS,
        "rule": "allow",
        "comments": "service nodes read definitions, report status and keep their trust current",
    },
)


class PolicyError(XcatdError):
    """A policy row that cannot be used; the message names it."""


@dataclass(frozen=True)
class Rule:
    priority: float
    rule: str
    name: str | None = None
    role: str | None = None
    commands: frozenset[str] | None = None
    noderange: str | None = None

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
            noderange=None if row.get("noderange") in (None, "", "*") else row["noderange"],
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

    def verdict(self, user: str, role: str, command: str) -> bool | None:
        """Allowed or not; None when the first rule that may decide has a
        noderange, and so the answer depends on the nodes (`allows`)."""
        for rule in self.rules:
            if rule.matches(user, role, command):
                return None if rule.noderange else rule.rule in ALLOWING
        return False

    def allows(
        self, user: str, role: str, command: str, covers: Callable[[str], bool] | None
    ) -> bool:
        """Whether the request may run; `covers(noderange)` says whether all
        the nodes it is for are in a rule's noderange (None: it names none,
        and no rule with a noderange matches it)."""
        for rule in self.rules:
            if not rule.matches(user, role, command):
                continue
            if rule.noderange and (covers is None or not covers(rule.noderange)):
                continue
            return rule.rule in ALLOWING
        return False
