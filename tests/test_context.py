"""A command runs on a context of the test's own making: the store, layout
and CA that `xcatd init` makes, opened in a directory of the test's, and no
daemon (xcatd/context.py) — the administrator's session below goes through
the command functions alone, no server, no client."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from xcat_protocol.messages import Output, RequestBody, ServerMessage

from xcatd import __version__
from xcatd.admin import init_cluster
from xcatd.auth import Caller, Identity
from xcatd.boot.dnsmasq import DhcpService
from xcatd.ca import CertificateAuthority, fingerprint, name_of, role_of
from xcatd.call import Call
from xcatd.commands import REGISTRY
from xcatd.config import Config
from xcatd.console.server import ConsoleServer
from xcatd.context import Context
from xcatd.layout import Layout
from xcatd.policy import Policy
from xcatd.servicenode.replica import Copy
from xcatd.store import Store


@dataclass
class Here:
    """A context with no daemon behind it: a cluster `xcatd init` made under
    `root`, opened."""

    layout: Layout
    config: Config
    store: Store
    ca: CertificateAuthority
    consoles: ConsoleServer
    dhcp: DhcpService
    policy: Policy
    version: str = __version__
    started: float = field(default_factory=time.time)
    connections: int = 0
    definitions: Copy | None = None

    @classmethod
    def init(cls, root: Path) -> Here:
        layout = Layout.for_root(root)
        for _ in init_cluster(layout, settings={"hostname": "mn.cluster"}):
            pass
        config = Config.load(layout.config_file)
        store = Store(layout.database)
        return cls(
            layout,
            config,
            store,
            CertificateAuthority(layout.pki),
            ConsoleServer(layout.logdir / "consoles", config.bmc_timeout),
            DhcpService(layout.dhcp),
            Policy(store.db["policy"].rows),
        )

    @property
    def role(self) -> str:
        return self.config.role

    async def reload_policy(self) -> None:
        self.policy = Policy(await self.store.run(lambda db: list(db["policy"].rows)))


async def run(context: Context, *argv: str) -> tuple[int, str, str]:
    """One command line, run as root on `context`: rc, stdout, stderr."""
    cert = context.ca.issue("root", "user").cert
    root = Identity(name_of(cert), role_of(cert), cert.serial_number, fingerprint(cert), cert)
    cmd, *args = argv
    body = RequestBody(cmd, args, "root", int(time.time() * 1000), os.urandom(16))
    sent: list[ServerMessage] = []

    async def send(message: ServerMessage) -> None:
        sent.append(message)

    command = REGISTRY[cmd]
    assert command.run is not None
    call = Call(1, Caller(root, root), body, command.parse(args), context, send)
    await command.run(call)
    outputs = [each for each in sent if isinstance(each, Output)]
    out = "".join(f"{each.text}\n" for each in outputs if each.kind in ("info", "data"))
    err = "".join(f"Error: {each.text}\n" for each in outputs if each.kind == "error")
    return call.return_code, out, err


async def test_commands_run_on_a_context_with_no_daemon(tmp_path):
    here = Here.init(tmp_path)
    try:
        assert await run(
            here, "mkdef", "-t", "node", "-o", "cn001", "groups=compute", "ip=10.1.0.1"
        ) == (
            0,
            "1 object definitions have been created or modified.\n",
            "",
        )
        assert await run(here, "lsdef", "cn001") == (
            0,
            "Object name: cn001\n    groups=compute\n    ip=10.1.0.1\n",
            "",
        )
        # A policy written: the command has its context read the policy again.
        assert not here.policy.allows("carol", "user", "nodels", None)
        rc, _, err = await run(
            here, "mkdef", "-t", "policy", "-o", "6", "name=carol", "commands=nodels", "rule=allow"
        )
        assert (rc, err) == (0, "")
        assert here.policy.allows("carol", "user", "nodels", None)
        assert await run(here, "lsxcatd", "-d") == (
            0,
            f"cfgloc=SQLite:{here.layout.database}\ndbengine=SQLite\n",
            "",
        )
        rc, _, err = await run(here, "lsdef", "cn002")
        assert rc == 1 and "cn002" in err
    finally:
        here.store.close()
