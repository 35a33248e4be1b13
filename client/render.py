"""Turning the server's output frames into what the user sees.

`info` and `data` text goes to stdout; warnings and errors go to stderr as
`Warning: ...` and `Error: ...`, as xCAT prints them.  With --json, each
record's structured `data` is printed as one JSON line instead.  Progress
becomes a one-line bar, only when stderr is a terminal.
"""

from __future__ import annotations

import sys
from typing import TextIO

from xcat_protocol.messages import Output, Progress

BAR_WIDTH = 30


class Renderer:
    def __init__(
        self, json_lines: bool = False, out: TextIO = sys.stdout, err: TextIO = sys.stderr
    ) -> None:
        self.json_lines = json_lines
        self.out = out
        self.err = err
        self.show_progress = err.isatty()
        self._bar_shown = False

    def output(self, record: Output) -> None:
        self._clear_bar()
        # xCAT's way: `<node>: Error: ...` for one node, `Error: ...` for the request.
        label = "" if record.node is None else f"{record.node}: "
        text = f"{label}{record.text}"
        if record.kind == "error":
            print(f"{label}Error: {record.text}", file=self.err)
        elif record.kind == "warning":
            print(f"{label}Warning: {record.text}", file=self.err)
        elif record.kind == "stderr":
            print(text, file=self.err)
        elif self.json_lines:
            if record.data is not None:
                import json  # only --json pays for it: every command's start-up counts

                print(json.dumps(record.data, default=str), file=self.out)
        elif record.text is not None:
            print(text, file=self.out)

    def progress(self, record: Progress) -> None:
        if not self.show_progress:
            return
        if record.total:
            share = min(record.done / record.total, 1.0)
            filled = int(share * BAR_WIDTH)
            bar = f"[{'#' * filled}{' ' * (BAR_WIDTH - filled)}] {share:4.0%}"
            amount = f"{_amount(record.done, record.unit)}/{_amount(record.total, record.unit)}"
        else:
            bar, amount = "", _amount(record.done, record.unit)
        self.err.write(f"\r\x1b[K{record.what} {bar} {amount}")
        self.err.flush()
        self._bar_shown = True

    def finish(self) -> None:
        self._clear_bar()
        self.out.flush()

    def _clear_bar(self) -> None:
        if self._bar_shown:
            self.err.write("\r\x1b[K")
            self._bar_shown = False


def _amount(value: int, unit: str) -> str:
    if unit != "bytes":
        return f"{value} {unit}"
    size = float(value)
    for suffix in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or suffix == "GiB":
            return f"{size:.1f} {suffix}" if suffix != "B" else f"{value} B"
        size /= 1024
    raise AssertionError("unreachable")
