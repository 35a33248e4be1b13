"""Every command the daemon serves, one module per family.

Importing this package registers them all in `REGISTRY`.
"""

from . import copycds, defs, genimage, lsxcatd, packimage  # noqa: F401  (registers)
from .registry import REGISTRY, Command, HelpRequested, UsageError

__all__ = ["REGISTRY", "Command", "HelpRequested", "UsageError"]
