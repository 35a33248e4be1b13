"""Files that table commands name on the user's side, read or written by the
client, as xCAT's clients do: `tabrestore FILE.csv` sends the file's
contents (xCAT-client/sbin/tabrestore), `tabdump -f FILE` writes the dump to
the file instead of standard output, `xdcp <noderange> FILE… TARGET` sends
its files (a tar archive, each source under `<index>/<name>`), as they are on
the user's machine.  The daemon never opens a user's path.
"""

from __future__ import annotations

import os
import stat
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
    if command == "xdcp":
        return Local(stdin=_copied(args))
    return Local()


# xdcp's options that take a value, and the ones that keep the files where
# they are (-P: the daemon pulls from the nodes; -F: a synclist names them).
XDCP_VALUES = {"-f", "-l", "-t", "-o", "-r", "-i", "-F"}
XDCP_LONG_VALUES = {"--fanout", "--user", "--timeout", "--node-options", "--node-rcp",
                    "--rootimg", "--File"}  # fmt: skip
XDCP_NO_SOURCES = {"-P", "-F", "-h", "--pull", "--File", "--help"}


def _copied(args: list[str]) -> bytes | None:
    """xdcp's source files and directories, packed; None when the command
    line names none (the daemon says what is wrong)."""
    options, words = _xdcp_words(args)
    if XDCP_NO_SOURCES & set(options):
        return None
    in_image = "-i" in options or "--rootimg" in options
    sources = words[:-1] if in_image else words[1:-1]
    if not sources:
        return None
    recursive = "-R" in options or "--recursive" in options
    import io
    import tarfile  # only xdcp pays for it

    packed = io.BytesIO()
    with tarfile.open(fileobj=packed, mode="w", dereference=True) as archive:
        for index, source in enumerate(sources):
            _check_source(source, recursive)
            name = os.path.basename(source.rstrip("/")) or "root"
            archive.add(source, arcname=f"{index}/{name}", recursive=recursive)
    return packed.getvalue()


def _check_source(source: str, recursive: bool) -> None:
    try:
        mode = os.stat(source).st_mode
    except OSError as exc:
        raise ClientError(f"cannot read {source}: {exc.strerror}") from None
    if stat.S_ISDIR(mode) and not recursive:
        raise ClientError(f"{source} is a directory: give -R to copy it and what it holds")
    if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
        raise ClientError(f"{source} is not a regular file or a directory")


def _xdcp_words(args: list[str]) -> tuple[list[str], list[str]]:
    """xdcp's options (each short flag of a bundle alone) and its words, as
    the daemon parses them: options end where the files begin."""
    options: list[str] = []
    words: list[str] = []
    pending = list(args)
    while pending:
        arg = pending.pop(0)
        in_image = "-i" in options or "--rootimg" in options
        if words and (len(words) > 1 or in_image):
            words.append(arg)
        elif arg.startswith("--"):
            options.append(arg.split("=", 1)[0])
            if arg in XDCP_LONG_VALUES and pending:
                pending.pop(0)
        elif arg.startswith("-") and arg != "-":
            for position, letter in enumerate(arg[1:], 1):
                options.append(f"-{letter}")
                if f"-{letter}" in XDCP_VALUES:
                    if position == len(arg) - 1 and pending:
                        pending.pop(0)  # its value is the next word
                    break
        else:
            words.append(arg)
    return options, words


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
