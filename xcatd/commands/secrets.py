"""Who may read the secrets the store keeps (BMC passwords, the passwd
table's passwords, ...): the administrators, that is the callers the policy
lets change the tables (`chtab`, whatever the nodes), who could set those
secrets anyway; and the cluster's own daemons (management and service
nodes), which drive the BMCs with them.  Every other caller reads a secret
as `******` (audit.MASK); what is secret is audit.is_secret's one definition.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from ..audit import MASK, is_secret
from ..call import Call

DAEMON_ROLES = ("master", "servicenode")
__all__ = ["MASK", "is_secret", "masked", "may_read_secrets"]
Source = TypeVar("Source")


def may_read_secrets(call: Call) -> bool:
    role = call.caller.signer.role
    if role in DAEMON_ROLES:
        return True
    return call.context.policy.allows(call.caller.name, role, "chtab", None)


def masked(values: Mapping[str, tuple[str, Source]]) -> dict[str, tuple[str, Source]]:
    """Attribute values (each with where it comes from) as a caller who may
    not read secrets sees them."""
    return {
        name: (MASK if value and is_secret(name) else value, source)
        for name, (value, source) in values.items()
    }
