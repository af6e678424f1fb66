"""Pebble (ACME test CA) and pebble-challtestsrv (DNS-01), from Debian's pebble package."""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from .common import LOOPBACK, HarnessError, free_ports, stop_process, wait_for_port, which
from .tls import issue_local_certificate

HOOK = Path(__file__).with_name("challtestsrv_hook.py")


def pebble_binaries() -> tuple[str, str] | None:
    pebble = which("pebble", "/usr/bin")
    challtestsrv = which("pebble-challtestsrv", "/usr/bin")
    return (pebble, challtestsrv) if pebble and challtestsrv else None


def _listener_certificate(directory: Path) -> tuple[Path, Path, Path]:
    """A per-run CA and a certificate for 127.0.0.1/localhost signed by it.

    The Debian package ships no listener certificate, and a fixed one would be
    shared by every run; a fresh one keeps runs independent.
    """
    return issue_local_certificate(directory, prefix="listener", ca_common_name="openclaw test pebble listener CA")


@dataclass
class PebbleACME:
    """Pebble on 127.0.0.1 that validates DNS-01 against its own challtestsrv."""

    pebble_binary: str
    challtestsrv_binary: str
    work_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="openclaw-pebble-")))
    host: str = LOOPBACK
    # "host:port" of a DNS server to validate DNS-01 against instead of the
    # bundled pebble-challtestsrv (for example a BIND taking RFC 2136 updates).
    dns_server: str | None = None
    processes: list = field(default_factory=list)

    def __post_init__(self) -> None:
        (
            self.acme_port,
            self.management_port,
            self.dns_port,
            self.challtestsrv_port,
            self.va_http_port,
            self.va_tls_port,
        ) = free_ports(6)

    @property
    def directory_url(self) -> str:
        return f"https://{self.host}:{self.acme_port}/dir"

    @property
    def challtestsrv_url(self) -> str:
        return f"http://{self.host}:{self.challtestsrv_port}"

    def _ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.listener_ca))

    def start(self) -> PebbleACME:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.listener_ca, cert, key = _listener_certificate(self.work_dir)
        config = {
            "pebble": {
                "listenAddress": f"{self.host}:{self.acme_port}",
                "managementListenAddress": f"{self.host}:{self.management_port}",
                "certificate": str(cert),
                "privateKey": str(key),
                "httpPort": self.va_http_port,
                "tlsPort": self.va_tls_port,
                "ocspResponderURL": "",
                "externalAccountBindingRequired": False,
            }
        }
        config_path = self.work_dir / "pebble-config.json"
        config_path.write_text(json.dumps(config, indent=2), encoding="utf-8")

        if self.dns_server is None:
            self._start_challtestsrv()
        env = dict(os.environ, PEBBLE_VA_NOSLEEP="1", PEBBLE_WFE_NONCEREJECT="0")
        pebble_log = open(self.work_dir / "pebble.log", "wb")  # noqa: SIM115 - closed with the process
        pebble = subprocess.Popen(
            [self.pebble_binary, "-config", str(config_path), "-dnsserver", self.dns_server or f"{self.host}:{self.dns_port}"],
            stdout=pebble_log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        self.processes.append((pebble, pebble_log))
        wait_for_port(self.acme_port, 15, "pebble", host=self.host, process=pebble)
        wait_for_port(self.management_port, 15, "pebble management", host=self.host, process=pebble)
        self.root_ca = self.work_dir / "pebble-root.pem"
        self.root_ca.write_bytes(self.fetch_root())
        return self

    def _start_challtestsrv(self) -> None:
        challtestsrv_log = open(self.work_dir / "challtestsrv.log", "wb")  # noqa: SIM115 - closed with the process
        challtestsrv = subprocess.Popen(
            [
                self.challtestsrv_binary,
                "-defaultIPv4",
                self.host,
                "-defaultIPv6",
                "",
                "-dns01",
                f"{self.host}:{self.dns_port}",
                "-management",
                f"{self.host}:{self.challtestsrv_port}",
                "-http01",
                "",
                "-https01",
                "",
                "-tlsalpn01",
                "",
            ],
            stdout=challtestsrv_log,
            stderr=subprocess.STDOUT,
        )
        self.processes.append((challtestsrv, challtestsrv_log))
        wait_for_port(self.challtestsrv_port, 15, "pebble-challtestsrv", host=self.host, process=challtestsrv)

    def fetch_root(self) -> bytes:
        """Pebble's issuing root (regenerated at every start), from /roots/0."""
        url = f"https://{self.host}:{self.management_port}/roots/0"
        with urllib.request.urlopen(url, context=self._ssl_context(), timeout=10) as response:
            return response.read()

    def directory(self) -> dict:
        with urllib.request.urlopen(self.directory_url, context=self._ssl_context(), timeout=10) as response:  # noqa: S310
            return json.load(response)

    def certbot(self, domains: list[str], config_dir: Path, *extra: str) -> subprocess.CompletedProcess:
        """Issue a certificate with Debian's certbot over DNS-01 through challtestsrv."""
        certbot = which("certbot", "/usr/bin")
        if certbot is None:
            raise HarnessError("certbot is not installed")
        hook = f"{sys.executable} {HOOK}"
        command = [
            certbot,
            "certonly",
            "--non-interactive",
            "--agree-tos",
            "--register-unsafely-without-email",
            "--server",
            self.directory_url,
            "--config-dir",
            str(config_dir / "config"),
            "--work-dir",
            str(config_dir / "work"),
            "--logs-dir",
            str(config_dir / "logs"),
            "--manual",
            "--preferred-challenges",
            "dns",
            "--manual-auth-hook",
            f"{hook} set",
            "--manual-cleanup-hook",
            f"{hook} clear",
            "--key-type",
            "ecdsa",
            *[arg for domain in domains for arg in ("-d", domain)],
            *extra,
        ]
        env = dict(os.environ, REQUESTS_CA_BUNDLE=str(self.listener_ca), OPENCLAW_CHALLTESTSRV_URL=self.challtestsrv_url)
        return subprocess.run(command, check=False, capture_output=True, text=True, env=env, timeout=180)

    def stop(self) -> None:
        for process, log in reversed(self.processes):
            stop_process(process)
            log.close()
        self.processes.clear()
        shutil.rmtree(self.work_dir, ignore_errors=True)

    def __enter__(self) -> PebbleACME:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
