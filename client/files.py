"""Files that table commands name on the user's side, read or written by the
client, as xCAT's clients do: `tabrestore FILE.csv` sends the file's
contents (xCAT-client/sbin/tabrestore), `tabdump -f FILE` writes the dump to
the file instead of standard output.  The daemon never opens a user's path.
"""

from __future__ import annotations

from typing import NamedTuple, TextIO

from .errors import ClientError


class Local(NamedTuple):  # not a dataclass: importing dataclasses costs every command 5 ms
    stdin: bytes | None = None  # what to send as the request's input
    out: TextIO | None = None  # where standard output goes instead


def local(command: str, args: list[str]) -> Local:
    """What `command` needs of the user's files, or ClientError in xCAT's words."""
    if command == "tabrestore":
        return Local(stdin=_restored(args))
    if command == "tabdump" and (path := _option_value(args, "-f")):
        try:
            return Local(out=open(path, "w", encoding="utf-8"))
        except OSError:
            table = next((a for a in args if not a.startswith("-") and a != path), "")
            raise ClientError(
                f"Error on tabdump of {table} to {path}. Unable to open the file for write. "
            ) from None
    return Local()


def _restored(args: list[str]) -> bytes | None:
    """The contents of tabrestore's file (its first argument that is no option)."""
    path = next((arg for arg in args if not arg.startswith("-")), None)
    if path is None:
        return None
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError:
        raise ClientError(f"Unable to open {path} for reading.") from None


def _option_value(args: list[str], option: str) -> str | None:
    """The value of `-f FILE` or `-fFILE`."""
    for index, arg in enumerate(args):
        if arg == option and index + 1 < len(args):
            return args[index + 1]
        if arg.startswith(option) and len(arg) > len(option) and not arg.startswith("--"):
            return arg[len(option) :]
    return None


def close(out: TextIO | None) -> None:
    if out is not None:
        out.close()
