"""Boot services: what a node needs from the network to boot, served by the daemon.

TFTP and HTTP servers (read-only, on the daemon's trio event loop), the
boot-loader files nodeset writes (iPXE, GRUB2, pxelinux, petitboot), DHCP
server configuration, and the status reports booting nodes send back.
"""
