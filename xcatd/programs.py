"""Short programs the daemon runs and waits for (systemctl, mount): their
output, or one line saying why they failed."""

from __future__ import annotations

import trio

from .errors import XcatdError


async def run_program(*command: str, error: type[XcatdError], label: str = "") -> str:
    """A short program's output; `error` with `label` (else the command
    line) and the last line it said when it fails or cannot be run."""
    try:
        done = await trio.run_process(command, capture_stdout=True, capture_stderr=True,
                                      check=False)  # fmt: skip
    except OSError as exc:
        raise error(f"cannot run {command[0]}: {exc.strerror}") from None
    if done.returncode != 0:
        said = done.stderr.decode(errors="replace").strip().splitlines()
        raise error(f"{label or ' '.join(command)}: {said[-1] if said else done.returncode}")
    return done.stdout.decode(errors="replace")
