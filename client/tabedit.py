"""tabedit TABLE: the table in the user's editor, written back on save, as
xCAT's tabedit script does it: a `tabdump` into a temporary file,
$TABEDITOR (else $EDITOR, else vi) on it, then a `tabrestore` of it, which
the daemon checks and applies whole or not at all.  After a refusal the
editor opens again on the same file (Enter), or the edit is abandoned
(Ctrl-C).
"""

from __future__ import annotations

import hashlib
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from .errors import ClientError
from .main import run
from .render import Renderer

USAGE = "Usage: tabedit <tablename>\n       tabedit [-? | -h | --help]"
LOGS = ("auditlog", "eventlog")


def main(argv: list[str] | None = None) -> int:
    args = (sys.argv if argv is None else argv)[1:]
    if not args or args[0] in ("-?", "-h", "--help"):
        print(USAGE)
        return 1
    table = args[0]
    if table in LOGS:
        print(
            "The auditlog and eventlog tables may not be edited. Editing will cause index "
            "regeneration. Use the tabprune command."
        )
        return 1
    try:
        return edit(table)
    except ClientError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def edit(table: str) -> int:
    with tempfile.TemporaryDirectory(prefix="tabedit.") as directory:
        path = Path(directory) / f"{table}.csv"
        with path.open("w", encoding="utf-8") as out:
            rc = run("tabdump", [table], Renderer(out=out))
        if rc:
            return rc
        before = _digest(path)
        while True:
            editor = os.environ.get("TABEDITOR") or os.environ.get("EDITOR") or "vi"
            subprocess.run([*shlex.split(editor), path.name], cwd=directory, check=False)
            if _digest(path) == before:
                print("No file modifications detected, not restoring.")
                return 0
            if run("tabrestore", [str(path)], Renderer(), path.read_bytes()) == 0:
                return 0
            print("Above errors occured, hit enter to edit, or ctrl-c to abort")
            input()


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


if __name__ == "__main__":
    sys.exit(main())
