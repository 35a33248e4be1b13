"""Every command the daemon serves, one module per family.

Importing this package registers them all in `REGISTRY`.
"""

from . import (  # noqa: F401  (registers)
    console,
    copycds,
    defs,
    genimage,
    lsxcatd,
    makedhcp,
    makehosts,
    makenetworks,
    nodeset,
    packimage,
    passwd,
    power,
    pping,
    psh,
    rinstall,
    rmimage,
    status,
    tables,
    trust,
    updatenodestat,
    xdcp,
    xdsh,
)
from .registry import REGISTRY, Command, HelpRequested, UsageError

__all__ = ["REGISTRY", "Command", "HelpRequested", "UsageError"]
