"""A project-owned nginx: its own prefix, config and ports on 127.0.0.1."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .common import LOOPBACK, HarnessError, free_ports, running_as_root, wait_for_port, which

MAIN_CONF = """\
# Harness nginx: everything lives under the prefix; no system paths are written.
{user}
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log {prefix}/logs/access.log;
    client_body_temp_path {prefix}/tmp/client_body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    default_type text/plain;
    server {{
        listen {host}:{http_port} default_server;
        server_name _;
        location = /__harness {{ return 200 "harness nginx {http_port}\\n"; }}
        location / {{ return 404; }}
    }}
    include {prefix}/conf.d/*.conf;
}}
"""


def nginx_binary() -> str | None:
    return which("nginx", "/usr/sbin")


@dataclass
class NginxServer:
    """nginx with conf.d/ for the test's own server blocks; two free ports reserved."""

    binary: str
    prefix: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="openclaw-nginx-")))
    host: str = LOOPBACK
    http_port: int = 0
    https_port: int = 0

    def __post_init__(self) -> None:
        if not self.http_port or not self.https_port:
            self.http_port, self.https_port = free_ports(2)

    @property
    def conf_file(self) -> Path:
        return self.prefix / "nginx.conf"

    @property
    def conf_d(self) -> Path:
        return self.prefix / "conf.d"

    @property
    def pid_file(self) -> Path:
        return self.prefix / "nginx.pid"

    @property
    def error_log(self) -> Path:
        return self.prefix / "logs" / "error.log"

    def _command(self, *args: str) -> list[str]:
        return [self.binary, "-p", str(self.prefix), "-c", str(self.conf_file), "-e", str(self.error_log), *args]

    def role_variables(self, http_port: int, https_port: int, status_port: int, certificate, key) -> dict:
        """The nginx role's variables that point it at this private instance instead of the system nginx."""
        return {
            "openclaw_nginx_install": False,
            "openclaw_nginx_disable_default_site": False,
            "openclaw_nginx_binary": self.binary,
            "openclaw_nginx_main_conf": str(self.conf_file),
            "openclaw_nginx_site_dir": str(self.conf_d),
            "openclaw_nginx_openclaw_dir": str(self.prefix / "openclaw"),
            "openclaw_nginx_command_args": ["-p", str(self.prefix), "-e", str(self.error_log)],
            "openclaw_nginx_listen_address": self.host,
            "openclaw_nginx_http_port": http_port,
            "openclaw_nginx_https_port": https_port,
            "openclaw_nginx_status_port": status_port,
            "openclaw_nginx_certificate": str(certificate),
            "openclaw_nginx_certificate_key": str(key),
        }

    def write_main_conf(self) -> None:
        # Workers drop to nobody when the master runs as root.
        user = "user nobody nogroup;" if running_as_root() else ""
        self.conf_file.write_text(
            MAIN_CONF.format(user=user, prefix=self.prefix, host=self.host, http_port=self.http_port),
            encoding="utf-8",
        )

    def test_config(self) -> subprocess.CompletedProcess:
        """`nginx -t` on the live tree; returncode 0 means valid."""
        return subprocess.run(self._command("-t"), check=False, capture_output=True, text=True)

    def master_pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text(encoding="utf-8").strip())
        except (OSError, ValueError):
            return None

    def worker_pids(self) -> set[int]:
        master = self.master_pid()
        if master is None:
            return set()
        workers = set()
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                # Field 4 of /proc/<pid>/stat is the parent pid; the command
                # name (field 2) is parenthesised and may contain spaces.
                fields = stat.read_text(encoding="utf-8").rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[1]) == master:
                workers.add(int(stat.parent.name))
        return workers

    def start(self) -> NginxServer:
        for sub in ("logs", "tmp", "conf.d"):
            (self.prefix / sub).mkdir(parents=True, exist_ok=True)
        self.prefix.chmod(0o755)
        self.write_main_conf()
        checked = self.test_config()
        if checked.returncode != 0:
            raise HarnessError(f"nginx -t failed: {checked.stderr.strip()}")
        started = subprocess.run(self._command(), check=False, capture_output=True, text=True)
        if started.returncode != 0:
            raise HarnessError(f"nginx failed to start: {started.stderr.strip()}")
        wait_for_port(self.http_port, 10, "nginx", host=self.host)
        return self

    def reload(self, timeout: float = 10) -> None:
        """Validate, signal a reload and wait until the old workers are gone.

        `nginx -s reload` returns 0 even when the new configuration fails to
        apply, so the harness checks the config first and then waits for the
        worker generation to change.
        """
        checked = self.test_config()
        if checked.returncode != 0:
            raise HarnessError(f"nginx -t failed, not reloading: {checked.stderr.strip()}")
        before = self.worker_pids()
        master = self.master_pid()
        if master is None:
            raise HarnessError("nginx is not running (no pid file)")
        os.kill(master, signal.SIGHUP)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            now = self.worker_pids()
            if now and not now & before:
                return
            time.sleep(0.05)
        raise HarnessError(f"nginx did not replace its workers within {timeout:.0f}s; see {self.error_log}")

    def stop(self, timeout: float = 10) -> None:
        master = self.master_pid()
        if master is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(master, signal.SIGQUIT)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and Path(f"/proc/{master}").exists():
                time.sleep(0.05)
            if Path(f"/proc/{master}").exists():
                os.kill(master, signal.SIGKILL)
        shutil.rmtree(self.prefix, ignore_errors=True)

    def __enter__(self) -> NginxServer:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
