"""The data files xcatd ships (xcatd/share): profiles, the dracut module, systemd
units, sshd's and rsyslog's drop-ins, which genimage puts into images and
`xcatd init` places."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def _share() -> Path:
    """xcatd/share, the data files shipped in the package, found through the
    import system wherever xcatd is installed (a checkout, site-packages, the
    venv in a service image).  They are used as files (copied into images,
    named in messages), which they are in every install: a zip import, the
    one case where they would not be, is not how xcatd is installed."""
    package = files("xcatd")
    if not isinstance(package, Path):
        raise ImportError(f"xcatd's data files must be files on disk, not in {package}")
    return package / "share"


SHARE = _share()
