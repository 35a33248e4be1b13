"""What a service node takes from its management node to keep its trust
current (servicenode/trust.py): the revocation list, and new SSH
certificates before its old ones expire.

    getcrl
    renewsshcerts <host public key> <root's public key>

`getcrl` prints the cluster CA's revocation list (PEM), which is public
material; the default policy lets service nodes run it.  `renewsshcerts`
certifies a service node's SSH host key and its root's key again, for the
service node whose own certificate signed the request and no one else
(`own_service_node`): not for a relayed request, and not for an
administrator (an administrator re-enrolls a node with nodeset).  Like
every request, both are audited.
"""

from __future__ import annotations

from ..auth import AuthError
from ..call import Call
from ..enrollment import ssh_certificates
from ..policy import GETCRL, RENEW_SSH
from ..sshca import SshError, public_key
from .registry import CommandParser, command


@command(GETCRL, "Print the cluster CA's certificate revocation list (service nodes take it).")
def getcrl_options(parser: CommandParser) -> None:
    pass


@getcrl_options.runs
async def getcrl(call: Call) -> None:
    try:
        pem = call.context.auth.revocations.pem
    except AuthError as exc:
        await call.error(str(exc))
        return
    text = pem.decode()
    await call.data(text.rstrip("\n"), data={"crl": text})


@command(
    RENEW_SSH,
    "Renew a service node's SSH host and root certificates (for itself only).",
    own_service_node=True,
)
def renewsshcerts_options(parser: CommandParser) -> None:
    parser.add_argument("host_key", help="its SSH host public key (OpenSSH, Ed25519)")
    parser.add_argument("user_key", help="its root's SSH public key (OpenSSH, Ed25519)")


@renewsshcerts_options.runs
async def renewsshcerts(call: Call) -> None:
    caller = call.caller
    keys = (call.options.host_key, call.options.user_key)
    try:
        for line in keys:
            public_key(line)
    except SshError as exc:
        await call.error(str(exc))
        return
    issued = await ssh_certificates(call.context, caller.signer.cert, *keys)
    await call.data(f"{caller.name}: SSH certificates renewed", data=issued)
