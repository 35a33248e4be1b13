"""A service node's copy of the definitions it works from (DESIGN.md §9).

The management node's database is the only truth; no database port is
opened to service nodes.  Before it runs a request the management node
carried to it, a service node asks the management node, over the signed
protocol and as itself, for the definitions: `lsdef -a -l --json`, of which
it keeps the site, networks, osimages, groups and nodes.  Its certificate
sees only the nodes it serves (and itself), so that is all it gets.  They
replace its local copy in one transaction: a failed refresh leaves the
last good copy whole.  They are taken again only when they changed: the
management node's greeting to a service node carries the stamp of its
definitions (store/schema.py), which every change makes anew.  The
revocation list comes along when it changed (revocations.py).

With them come the passwd table's rows its nodes' BMCs are driven with
(`getpasswd`, commands/passwd.py), as xCAT's service nodes read that table:
a change of the table changes the stamp too.  They are kept in memory only
(`Copy.passwd`), never written to this node's disk nor logged, and taken
again whenever the definitions are.

Paths are the one thing that differs between the two hosts: osimage paths
under the management node's installdir are read as the same paths under
this node's installdir (where images are cached, images.py), and the
site's installdir and tftpdir stay this host's own.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import sqlite_utils
from xcat_client.credentials import Target

from ..auth import AuthError
from ..errors import XcatdError
from ..hw.target import Defaults
from ..link import Link
from ..policy import GETPASSWD
from ..store import objects
from ..store.objects import Definition, DefinitionError
from ..store.objtypes import GROUP, NETWORK, NODE, OSIMAGE, SITE, ObjectType
from .revocations import TrustError, take_revocations

if TYPE_CHECKING:
    from ..context import Replicating

log = logging.getLogger(__name__)

COPIED = (SITE, NETWORK, OSIMAGE, GROUP, NODE)
HOST_LOCAL = ("installdir", "tftpdir")  # site values that are each host's own


class ReplicaError(XcatdError):
    """The definitions could not be had from the management node; the copy is unchanged."""


@dataclass(frozen=True)
class Copy:
    """The management node's definitions, by type, and the passwd rows."""

    objects: dict[ObjectType, dict[str, dict[str, str]]]
    stamp: int | None = None  # the management node's definitions stamp when taken
    # By key, each its username and password (hw/target.py's defaults): in
    # this daemon's memory only.
    passwd: Defaults = field(default_factory=dict, repr=False)

    @property
    def site(self) -> dict[str, str]:
        return self.objects[SITE].get(SITE.only_object, {})

    @property
    def installdir(self) -> str:
        """The management node's installdir, where its images are."""
        return self.site.get("installdir", "")


def master_of(daemon: Replicating) -> Target:
    try:
        return Target.parse(daemon.config.master)
    except ValueError:
        raise ReplicaError(
            f"this service node does not know its management node (master = "
            f"{daemon.config.master!r} in {daemon.layout.config_file}): run xcatd enroll"
        ) from None


async def refresh(daemon: Replicating) -> Copy:
    """The management node's definitions, made the local ones unless they
    are as last taken; what they are."""
    master = master_of(daemon)
    kept = daemon.definitions
    async with Link.open(master.host, master.port, daemon.ca) as link:
        try:
            await take_revocations(daemon, link)
        except (TrustError, AuthError) as exc:  # the trust task tries again (trust.py)
            log.warning("revocation list from %s not taken: %s", master, exc)
        stamp = link.hello.stamp
        if kept is not None and stamp is not None and kept.stamp == stamp:
            log.info("definitions from %s: unchanged", master)
            return kept
        answer = await link.ask("lsdef", ["-a", "-l", "--json"], user=daemon.config.hostname)
        if answer.rc != 0:
            raise ReplicaError(f"lsdef -a -l on {master}: " + "; ".join(answer.errors))
        passwd = await _passwd(link, daemon.config.hostname)
    records = (o.data for o in answer.outputs if isinstance(o.data, dict))
    copy = Copy(_by_type(records), stamp, passwd)
    here = str(daemon.layout.installdir)
    await daemon.store.run(lambda db: _replace(db, copy, here))
    daemon.definitions = copy
    counts = ", ".join(f"{len(v)} {t.name}" for t, v in copy.objects.items())
    keys = ", ".join(f"key={key}" for key in passwd) or "none"
    log.info("definitions from %s: %s; passwd rows: %s", master, counts, keys)
    return copy


async def _passwd(link: Link, hostname: str) -> Defaults:
    """The passwd rows this node's nodes are driven with; none, said in the
    log, when the management node does not give them (its policy does not
    let this node run getpasswd): the nodes that need them then say so."""
    answer = await link.ask(GETPASSWD, [], user=hostname)
    given = next((o.data.get("passwd") for o in answer.outputs if isinstance(o.data, dict)), None)
    if answer.rc != 0 or not isinstance(given, dict):
        why = "; ".join(answer.errors) or "none given"
        log.warning("passwd rows from %s not taken: %s", link.where, why)
        return {}
    return {
        str(key): {str(c): str(v) for c, v in row.items()}
        for key, row in given.items()
        if isinstance(row, dict)
    }


def _by_type(records: Iterable[dict]) -> dict[ObjectType, dict[str, dict[str, str]]]:
    """The objects a service node keeps, from lsdef's records, by type."""
    kept: dict[ObjectType, dict[str, dict[str, str]]] = {t: {} for t in COPIED}
    types = {t.name: t for t in COPIED}
    for record in records:
        values = {str(k): str(v) for k, v in record.items()}
        name, objtype = values.pop("name", ""), types.get(values.pop("objtype", ""))
        if objtype is not None and name:
            kept[objtype][name] = values
    return kept


def _replace(db: sqlite_utils.Database, copy: Copy, installdir: str) -> None:
    theirs = copy.installdir
    definitions = []
    for objtype, found in copy.objects.items():
        for name, values in found.items():
            if objtype is SITE:
                values = {k: v for k, v in values.items() if k not in HOST_LOCAL}
            elif objtype is GROUP:  # members: what lsdef works out, not stored
                values = {k: v for k, v in values.items() if k != "members"}
            elif objtype is OSIMAGE and theirs and theirs != installdir:
                values = {k: moved(v, theirs, installdir) for k, v in values.items()}
            definitions.append(Definition(objtype, name, values))
    try:
        with db.atomic():
            for objtype in COPIED:
                db.execute(f"delete from [{objtype.name}]")
            objects.create(db, definitions, replace=True)
    except DefinitionError as exc:
        raise ReplicaError(
            "the management node's definitions do not hold here: " + "; ".join(exc.problems[:3])
        ) from None


def moved(value: str, theirs: str, ours: str) -> str:
    """A path under the management node's installdir, under ours instead."""
    path = Path(value)
    if value.startswith("/") and path.is_relative_to(theirs):
        return str(Path(ours) / path.relative_to(theirs))
    return value
