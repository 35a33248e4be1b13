"""Host-local daemon settings: `xcatd.toml`.

Cluster-wide settings belong to the site object in the database; this file
holds only what is particular to this host's daemon: its name, where it
listens, and the limits of its protocol.  SIGHUP re-reads it; the listening
addresses and ports take effect at the next start.
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from xcat_protocol import DEFAULT_PORT
from xcat_protocol.framing import DEFAULT_MAX_FRAME

from .errors import XcatdError

ROLES = ("master", "servicenode")


class ConfigError(XcatdError):
    pass


@dataclass(frozen=True)
class Config:
    hostname: str
    role: str = "master"  # master = management node, servicenode = service node
    # A service node's management node, <host>:<port>, as `xcatd enroll` found
    # it: where its daemon reads definitions and images, and reports status.
    master: str = ""
    listen: tuple[str, ...] = ("0.0.0.0",)
    port: int = DEFAULT_PORT
    http_port: int = 80
    tftp_port: int = 69
    status_port: int = 3002  # xCAT's xcatiport: `installstatus <state>` lines from nodes
    # The boot services; turn one off where nginx or tftpd-hpa serve instead.
    serve_http: bool = True  # also the nodes' status endpoint
    serve_tftp: bool = True
    serve_status_port: bool = True
    # makedhcp -n starts dnsmasq; off where the site runs its own DHCP server.
    serve_dhcp: bool = True
    replay_window: int = 120  # seconds a request's timestamp may differ from ours
    max_frame: int = DEFAULT_MAX_FRAME
    # Seconds for a TLS handshake; also how long a peer without a client
    # certificate may stay idle.
    handshake_timeout: float = 10.0
    idle_timeout: float = 300.0  # a certified peer with nothing running and nothing sent
    frame_timeout: float = 60.0  # for a frame to arrive whole once begun, or to be sent
    grace_period: float = 30.0  # seconds running requests get to finish on SIGTERM
    max_connections: int = 4096
    max_connections_per_address: int = 256
    max_handshakes: int = 256  # TLS handshakes under way at once
    # ... of them from one address; its others wait (admission.py says why).
    max_handshakes_per_address: int = 16
    max_unauthenticated: int = 256  # connections past the handshake without a certificate
    # Hardware control (rpower, rsetboot, rnetboot): BMC sessions this daemon
    # drives at once, over all requests (xCAT's ipmimaxp; at most 256), and the
    # seconds one attempt at one node may take; a node that does not answer is
    # tried twice.
    bmc_fanout: int = 128
    bmc_timeout: float = 10.0
    # Seconds a service node running a request for this one may say nothing
    # (no output, no progress) before its nodes get an error line each: a
    # hung service node must not hold the request (or the administrator).
    # A working one sends a heartbeat every 5 s (dispatch.HEARTBEAT).
    dispatch_idle: float = 120.0
    # Seconds between a service node's checks with its management node for a
    # new revocation list and for SSH certificates due for renewal
    # (servicenode/trust.py).
    trust_interval: float = 60.0

    @classmethod
    def load(cls, path: Path) -> Config:
        try:
            raw = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"{path} does not exist: run 'xcatd init' first") from None
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read {path}: {exc}") from None
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(raw) - set(known))
        if unknown:
            raise ConfigError(f"{path}: unknown setting {unknown[0]!r}")
        if "hostname" not in raw:
            raise ConfigError(f"{path}: 'hostname' is not set")
        values = {}
        for name, value in raw.items():
            default = getattr(cls, name, None) if name != "hostname" else ""
            values[name] = _coerce(path, name, value, default)
        config = cls(**values)
        if config.role not in ROLES:
            raise ConfigError(f"{path}: role must be one of {', '.join(ROLES)}")
        return config

    def dump(self) -> str:
        lines = [
            "# xcatd host-local settings; cluster-wide settings live in the site object.",
            "# SIGHUP re-reads this file; listen and the ports apply at the next start.",
        ]
        for name, value in asdict(self).items():
            lines.append(f"{name} = {_toml_value(value)}")
        return "\n".join(lines) + "\n"


def _coerce(path: Path, name: str, value, default):
    if isinstance(default, tuple):
        if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            raise ConfigError(f"{path}: {name} must be a list of strings")
        return tuple(value)
    if isinstance(default, float) and isinstance(value, int | float):
        return float(value)
    if type(value) is not type(default):
        raise ConfigError(f"{path}: {name} must be a {type(default).__name__}")
    return value


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return repr(value)
