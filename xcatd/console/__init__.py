"""The console server inside the daemon: what conserver is to xCAT.

For each node whose `cons` is `ipmi`, one long-lived Serial-over-LAN session
with its BMC, held by the daemon whoever watches: its output appended with
timestamps to `<logdir>/consoles/<node>.log` (rotated by size), its recent
history kept in memory, shown to any number of `rcons` watchers, one of whom
may type (`rcons -f` takes write access).  A BMC that drops the session is
reconnected with a growing pause.

- `log`: the console log file, timestamped and rotated.
- `sol`: the IPMI SOL link, through pyghmi (blocking: worker threads only).
- `session`: one node's console: link, history, watchers, the one writer.
- `server`: the daemon's consoles by node, opened on demand.

Sessions are opened at a node's first `rcons` and then kept for the life
of the daemon (opening every node's console at start is a later step); a
node whose first connection fails is not kept, and rcons says why.
"""
