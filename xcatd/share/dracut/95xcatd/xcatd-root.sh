#!/bin/sh
# mount hook: the node's root, from imgurl=, at $NEWROOT.  Sourced by dracut's
# init (the network is up by now); any failure ends in the emergency shell.
# shellcheck disable=SC2154  # $root: set by the cmdline hooks, in dracut's init
[ "$root" = xcatd ] || return 0
command -v xcatd_root > /dev/null || . /lib/xcatd-lib.sh
xcatd_root
