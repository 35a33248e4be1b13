"""`xcatd lab`: a virtual cluster on this machine, with real networks, BMCs
and consoles, for evaluating, learning and rehearsing changes without
hardware; the system tests use its parts too.

    lab.py              up, status, down
    state.py            what a lab made, recorded under its root
    netns.py            namespaces, bridges, taps (iproute2)
    bmc.py              ipmi_sim BMCs
    chassis_control.py  the program behind each BMC: a QEMU machine
    qemu.py             network-booting QEMU machines, the KVM probe
    process.py          long-running programs and their logs
    forward.py          the host's door to the lab's daemon
    media.py            `xcatd lab media`: a Debian 12 ISO from the host's apt
"""
