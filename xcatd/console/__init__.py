"""The console server inside the daemon: what conserver is to xCAT.

For each node with a console (`cons=ipmi`: Serial over LAN with its BMC;
`cons=cyclades` or `mrv`: a serial port on a terminal server, over TCP
and telnet), one long-lived session held by the daemon whoever watches:
its output appended with timestamps to `<logdir>/consoles/<node>.log`
(rotated by size), its recent history kept in memory, shown to any number
of `rcons` watchers, one of whom may type (`rcons -f` takes write access).
A BMC or port that drops the session is reconnected with a growing pause.

- `log`: the console log file, timestamped and rotated.
- `sol`: the IPMI SOL link, through pyghmi (blocking: worker threads only).
- `tcp`: the link to a serial port over TCP (blocking too), `telnet` its protocol.
- `session`: one node's console: link, history, watchers, the one writer.
- `server`: the daemon's consoles by node: every defined node's opened at
  the daemon's start and again at SIGHUP, one defined since at its first
  rcons.

A console held from the start is kept whatever happens, tried again while
it cannot be had; one opened by rcons whose first connection fails is not
kept, and rcons says why.
"""
