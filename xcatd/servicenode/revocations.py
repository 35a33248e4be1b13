"""A service node takes the management node's revocation list when it
changed (servicenode/trust.py says when): the stamp of the list in the
management node's greeting differs from that of this node's."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..errors import XcatdError
from ..link import Link
from ..policy import GETCRL

if TYPE_CHECKING:
    from ..context import Replicating

log = logging.getLogger(__name__)


class TrustError(XcatdError):
    """The management node did not give what was asked; the text says what it said."""


async def take_revocations(daemon: Replicating, link: Link) -> None:
    """The management node's revocation list, unless this node has it already."""
    revocations = daemon.auth.revocations
    theirs = link.hello.crl
    if theirs is None or theirs == revocations.stamp:
        return
    answer = await link.ask(GETCRL, [], user=daemon.config.hostname)
    pem = next((o.data.get("crl") for o in answer.outputs if isinstance(o.data, dict)), None)
    if answer.rc != 0 or not isinstance(pem, str):
        raise TrustError(f"{GETCRL} on {link.where}: " + "; ".join(answer.errors))
    revoked = revocations.adopt(pem.encode())
    log.info("revocation list from %s: %d certificates revoked", link.where, revoked)
