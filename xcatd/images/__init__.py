"""Images: distribution media in, bootable diskless images out.

Three rooms, each one command's work, none importing another's modules:

    media/   copycds: read an ISO or a directory (read), tell which
             distribution it holds (detect), copy it into the install tree (copy)
    build/   genimage: the root image with the distro's package manager
             (genimage: steps, lock, marker; dnf, debian; chroot; pkglist;
             wheels), its kernel and stateless initrd (initrd), the units and
             settings a node boots with (bootunits), no private key (privatekeys)
    pack/    packimage: the root image into one file nodes download (packimage:
             locks, atomic output; tree: the walk; cpio, tar, compress; exlist;
             sync: the synclists)

What the rooms share is here: the osimage (osimage: its attributes typed,
its files, the rules every command applies), files read and written inside
a root image without following its links out (rootfiles), cross-process
locks (locks), the list-file reader behind pkglist and exlist (listfiles),
image profiles (profiles), `mkdef -u`'s defaults (osimage_update) and the
data files xcatd ships (shipped).
"""
