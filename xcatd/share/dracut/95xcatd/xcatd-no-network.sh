#!/bin/sh
# initqueue timeout hook: say (once) why the boot waits, before dracut gives up.
# shellcheck disable=SC2154  # $root: set by the cmdline hooks, in dracut's init
[ "$root" = xcatd ] || return 0
[ -e /tmp/xcatd.said-no-network ] && return 0
: > /tmp/xcatd.said-no-network
xcatd_bootif=$(getarg BOOTIF=)
warn "xcatd: no network yet: no DHCP lease on ${xcatd_bootif:-any wired interface}"
