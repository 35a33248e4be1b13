"""The entry point of every user command: `lsxcatd`, `lsdef`, ... are all this.

It sends the name it was started as and its arguments, signed, to the daemon,
which parses them; so options and usage text are defined once, in the daemon,
next to the command.
"""

from __future__ import annotations

import os
import stat
import sys
from typing import Any, NoReturn

from xcat_protocol.messages import Cancel, Done, Output, Progress

from . import files
from .connection import Connection
from .credentials import Credentials, Target
from .errors import ClientError
from .render import Renderer

CANCELLED = 130
READER_GONE = 141  # what a shell reports for a process ended by SIGPIPE


def main(argv: list[str] | None = None) -> NoReturn:
    """Run the command and exit with its status, skipping the interpreter's
    finalisation: tearing down the modules, OpenSSL and cryptography cost
    every command several milliseconds, and by now nothing is left open
    (the connection is closed, files written) but the buffered output."""
    code = command(argv)
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        code = READER_GONE
    sys.stderr.flush()
    os._exit(code)


def command(argv: list[str] | None = None) -> int:
    """The command's exit status, once its output is rendered."""
    argv = sys.argv if argv is None else argv
    command = os.path.basename(argv[0])
    args = argv[1:]
    # --json is also sent on: commands parse it and send structured records.
    renderer = Renderer(json_lines="--json" in args)
    try:
        local = files.local(command, args)  # tabrestore's file, tabdump -f's
        if local.out is not None:
            renderer = Renderer(json_lines="--json" in args, out=local.out)
        try:
            return run(command, args, renderer, local.stdin)
        finally:
            files.close(local.out)
    except ClientError as exc:
        renderer.finish()
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # Whoever read our output has gone (`lsdef | head -2`): stop quietly,
        # as a Unix tool ended by SIGPIPE does.  Output still buffered must
        # not fail again at exit, so it goes nowhere.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return READER_GONE


def run(command: str, args: list[str], renderer: Renderer, stdin: bytes | None = None) -> int:
    connection = Connection(Target.from_environment(), Credentials.from_environment())
    fields = {
        "user": _user(),
        "cwd": os.getcwd(),
        "env": {k: v for k, v in os.environ.items() if k.startswith("XCAT_")},
    }
    if command == "rcons" and not {"-h", "--help"} & set(args):
        from .console import attach  # only rcons pays for the terminal handling

        try:
            return attach(connection, args, **fields)
        finally:
            connection.close()
    request_id = None
    try:
        request_id = connection.request(
            command, args, stdin=stdin if stdin is not None else _piped_stdin(), **fields
        )
        rc = _follow(connection, request_id, renderer)
        if rc == 0 and command == "rinstall" and {"-c", "--console"} & set(args):
            return _console(connection, args, fields)
        return rc
    except KeyboardInterrupt:
        # Closing the connection cancels every request on it anyway; the
        # cancel frame says so explicitly while the connection is still up.
        renderer.finish()
        if request_id is not None:
            try:  # noqa: SIM105 - contextlib.suppress would cost every command 2 ms to import
                connection.send(Cancel(request_id))
            except ClientError:
                pass  # the connection is gone, which cancels the request too
        print(f"Error: {command} cancelled", file=sys.stderr)
        return CANCELLED
    finally:
        connection.close()


def _console(connection: Connection, args: list[str], fields: dict[str, Any]) -> int:
    """rinstall -c, once the node is provisioning: rcons on it, as xCAT's
    client runs it (the daemon refused -c for more than one node)."""
    from .console import attach

    noderange = next(arg for arg in args if not arg.startswith("-"))
    return attach(connection, [noderange], **fields)


def _follow(connection: Connection, request_id: int, renderer: Renderer) -> int:
    while True:
        message = connection.receive()
        if isinstance(message, Output):
            renderer.output(message)
        elif isinstance(message, Progress):
            renderer.progress(message)
        elif isinstance(message, Done) and message.id == request_id:
            renderer.finish()
            return message.rc


def _piped_stdin() -> bytes | None:
    """Standard input when a pipe or a file was given, as in `mkdef -z < file`."""
    try:
        mode = os.fstat(sys.stdin.fileno()).st_mode
    except (OSError, ValueError, AttributeError):
        return None
    if stat.S_ISFIFO(mode) or stat.S_ISREG(mode):
        return sys.stdin.buffer.read()
    return None


def _user() -> str:
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError):
        return str(os.getuid())
