"""BIND 9 as an authoritative server for one test zone that accepts TSIG-signed dynamic updates (RFC 2136)."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .common import LOOPBACK, free_port, stop_process, wait_for_port, which

KEY_NAME = "openclaw-test"

NAMED_CONF = """\
options {{
    directory "{work}";
    pid-file "{work}/named.pid";
    listen-on port {port} {{ {host}; }};
    listen-on-v6 {{ none; }};
    recursion no;
    dnssec-validation no;
    notify no;
}};
controls {{ }};
key "{key_name}" {{
    algorithm hmac-sha512;
    secret "{secret}";
}};
zone "{zone}" {{
    type primary;
    file "{work}/db.{zone}";
    allow-update {{ key "{key_name}"; }};
}};
"""

ZONE = """\
$TTL 60
@   IN SOA ns1.{zone}. hostmaster.{zone}. 1 60 60 600 60
@   IN NS  ns1.{zone}.
ns1 IN A   {host}
"""


def named_binary() -> str | None:
    return which("named", "/usr/sbin")


@dataclass
class BindServer:
    """named in the foreground on 127.0.0.1:<free port>, serving ``zone``."""

    binary: str
    zone: str
    host: str = LOOPBACK
    port: int = field(default_factory=free_port)
    work_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="openclaw-bind-")))
    key_name: str = KEY_NAME
    secret: str = field(default_factory=lambda: base64.b64encode(os.urandom(64)).decode())
    process: subprocess.Popen | None = None

    def start(self) -> BindServer:
        self.work_dir.chmod(0o755)
        (self.work_dir / f"db.{self.zone}").write_text(ZONE.format(zone=self.zone, host=self.host), encoding="utf-8")
        conf = self.work_dir / "named.conf"
        conf.write_text(
            NAMED_CONF.format(work=self.work_dir, port=self.port, host=self.host, key_name=self.key_name, secret=self.secret, zone=self.zone), encoding="utf-8"
        )
        self.log = open(self.work_dir / "named.log", "wb")  # noqa: SIM115 - closed in stop()
        # -g: foreground, log to stderr; no -u, so the test-owned files stay writable.
        self.process = subprocess.Popen([self.binary, "-g", "-c", str(conf)], stdout=self.log, stderr=subprocess.STDOUT)
        wait_for_port(self.port, 20, "named", host=self.host, process=self.process)
        return self

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
            self.log.close()
        shutil.rmtree(self.work_dir, ignore_errors=True)

    def __enter__(self) -> BindServer:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
