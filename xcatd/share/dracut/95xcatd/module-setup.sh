#!/bin/bash
# xcatd's stateless boot, as a dracut module: the initrd genimage makes
# downloads the node's root image from the kernel command line's imgurl=,
# checks it against the checksum packimage published beside it, unpacks it
# into a tmpfs (or mounts a squashfs under an overlay) and switches root to it.
# genimage copies this directory into the image's dracut and asks for it by
# name (dracutmodules in the initrd.conf it writes beside it); nothing else
# includes it.

check() {
    require_binaries curl sha256sum cpio gzip || return 1
    return 255 # only when asked for: never part of a generic initrd
}

depends() {
    # DHCP with dhclient in the initrd's own shell init (no systemd, no
    # NetworkManager): BOOTIF= or ifname= name the interface.
    echo base network-legacy network
}

installkernel() {
    # The root file systems (overlay, squashfs on a loop device), and the
    # PCI transport every virtio network card needs.
    hostonly='' instmods overlay squashfs loop virtio_pci
}

# shellcheck disable=SC2154  # $moddir: set by dracut
install() {
    inst_multiple curl sha256sum cpio gzip mount umount mkdir rm sleep tr
    inst_multiple -o xz zstd
    inst_simple "$moddir/xcatd-lib.sh" /lib/xcatd-lib.sh
    inst_hook cmdline 90 "$moddir/parse-xcatd.sh"
    inst_hook initqueue/timeout 90 "$moddir/xcatd-no-network.sh"
    inst_hook mount 90 "$moddir/xcatd-root.sh"
    dracut_need_initqueue
}
