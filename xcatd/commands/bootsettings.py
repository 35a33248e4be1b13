"""What nodeset and makedhcp share: the boot settings of a request."""

from __future__ import annotations

from collections.abc import Mapping

from ..boot.netboot import Settings
from ..call import Call


def settings(call: Call, site: Mapping[str, str]) -> Settings:
    """The boot settings: the site object's, else this daemon's own."""
    return Settings.of(site, call.context.layout, call.context.config)
