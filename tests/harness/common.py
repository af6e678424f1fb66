"""Small helpers shared by the service harnesses."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from contextlib import closing
from pathlib import Path

LOOPBACK = "127.0.0.1"


class HarnessError(RuntimeError):
    """A service could not be started or stopped; the message says which and why."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def free_ports(count: int) -> list[int]:
    """Distinct free ports (kept bound until all are chosen, so they differ)."""
    sockets = []
    try:
        for _index in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((LOOPBACK, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def wait_for_port(port: int, timeout: float, what: str, host: str = LOOPBACK, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise HarnessError(f"{what} exited with code {process.returncode} before listening on {host}:{port}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise HarnessError(f"{what} did not listen on {host}:{port} within {timeout:.0f}s")


def which(program: str, *extra_dirs: str) -> str | None:
    found = shutil.which(program)
    if found:
        return found
    for directory in extra_dirs:
        candidate = Path(directory) / program
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def running_as_root() -> bool:
    return os.geteuid() == 0


def unprivileged_user(name: str) -> tuple[int, int]:
    """uid/gid of a system user, for servers that refuse to run as root."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError as exc:
        raise HarnessError(f"user {name!r} does not exist; install the Debian package that creates it") from exc
    return entry.pw_uid, entry.pw_gid


def stop_process(process: subprocess.Popen, timeout: float = 10) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout)


def loopback_request(port: int, method: str, path: str, body=None, headers: dict | None = None) -> tuple[int, str]:
    """One HTTP request to 127.0.0.1:<port>: (status, body) whatever the status; a dict body is sent as JSON."""
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"http://{LOOPBACK}:{port}{path}", data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
