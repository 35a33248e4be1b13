#!/bin/sh
# cmdline hook: imgurl= means a stateless xcatd boot.  root=xcatd makes
# dracut accept a boot with no root device; rd.neednet=1 has network-legacy
# bring up BOOTIF= (else every wired interface) by DHCP before the mount
# hook runs - unless the command line already says how (ip=).
command -v getarg > /dev/null || . /lib/dracut-lib.sh

if [ -n "$(getarg imgurl=)" ]; then
    root=xcatd
    # shellcheck disable=SC2034  # read by dracut's init
    rootok=1
    echo "rd.neednet=1" > /etc/cmdline.d/90-xcatd.conf
elif [ -z "$root" ]; then
    die "xcatd: no imgurl= on the kernel command line (nodeset writes it)"
fi
