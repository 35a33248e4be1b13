"""Telnet (RFC 854) as a console client speaks it to a serial port served
over TCP, sans I/O: what the port sends is split into the console's output
and the answers its option requests need; what is typed has its 0xFF bytes
doubled.

Accepted: the port echoing (ECHO), no go-aheads (SUPPRESS-GO-AHEAD) and
8-bit data both ways (BINARY), which is what a terminal server's port and
QEMU's `telnet=on` serial port offer; every other option is refused.  Each
request is answered once, so two ends cannot loop on it; subnegotiations
and other commands are dropped from the output.
"""

from __future__ import annotations

IAC, DONT, DO, WONT, WILL, SB, SE = 255, 254, 253, 252, 251, 250, 240
BINARY, ECHO, SGA = 0, 1, 3
THEIRS = {BINARY, ECHO, SGA}  # options we want the port to do (it offers WILL)
OURS = {BINARY, SGA}  # options we do when the port asks (DO)
ANSWERS = {
    WILL: lambda option: DO if option in THEIRS else DONT,
    DO: lambda option: WILL if option in OURS else WONT,
}


class Telnet:
    def __init__(self) -> None:
        self._state = "data"
        self._command = 0
        self._answered: set[tuple[int, int]] = set()

    def receive(self, data: bytes) -> tuple[bytes, bytes]:
        """The console output in `data`, and what to send the port back."""
        output, answer = bytearray(), bytearray()
        for byte in data:
            state = self._state
            if state == "data":
                if byte == IAC:
                    self._state = "command"
                else:
                    output.append(byte)
            elif state == "command":
                self._state = "data"
                if byte == IAC:
                    output.append(IAC)
                elif byte in (WILL, WONT, DO, DONT):
                    self._command, self._state = byte, "option"
                elif byte == SB:
                    self._state = "sub"
            elif state == "option":
                self._state = "data"
                answer += self._answer(self._command, byte)
            elif state == "sub":
                self._state = "sub-command" if byte == IAC else "sub"
            else:  # sub-command: IAC SE ends the subnegotiation
                self._state = "data" if byte == SE else "sub"
        return bytes(output), bytes(answer)

    def _answer(self, command: int, option: int) -> bytes:
        if command not in ANSWERS or (command, option) in self._answered:
            return b""  # WONT and DONT need no answer
        self._answered.add((command, option))
        return bytes((IAC, ANSWERS[command](option), option))


def escaped(data: bytes) -> bytes:
    """Keystrokes as telnet sends them: a 0xFF byte doubled."""
    return data.replace(b"\xff", b"\xff\xff")
