"""copycds's room: distribution media read (an ISO in-process, or a
directory), the distribution they hold detected, and copied into the install
tree whole or not at all."""
