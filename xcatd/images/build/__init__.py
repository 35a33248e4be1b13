"""genimage's room: a root image built with the distribution's own package
manager, its kernel and stateless initrd, and what the booted node needs in
it (boot units, SSH trust, a service node's xcatd).  See genimage.py."""
