"""One throwaway server on this machine for the converge benchmarks.

A fleet is what every contender (the collection, the naive role, the seed's
script, the floor) works on: its own Docker networks, PostgreSQL container,
runtime image tag and private nginx, all named after ``ident`` and removed at
the end, with the offline test images. Nothing listens beyond 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / "tests"))

from harness.common import free_ports  # noqa: E402 - test harness: ports, images, nginx
from harness.docker import GATEWAY_IMAGE, POSTGRES_IMAGE, remove_everything_named  # noqa: E402
from harness.nginx import NginxServer, nginx_binary  # noqa: E402

COLLECTIONS = REPO_ROOT / ".build" / "collections"


def ansible_env(python: Path, **extra: str) -> dict:
    """Environment of an ansible-playbook run from the venv of ``python``, with this checkout's collection."""
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO_ROOT / "ansible.cfg"), ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS))
    env["PATH"] = f"{python.parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


@dataclass
class Fleet:
    """A server named ``ident`` with ``size`` tenants; ``start()`` reserves ports and starts nginx."""

    ident: str
    size: int
    # The gateway stand-in the tenants run: the light one lets a thousand fit in memory.
    gateway_image: str = GATEWAY_IMAGE
    # Seconds between each tenant's health checks (the role's default when None): each one
    # is a docker exec, and at 30 s a thousand tenants would keep both cores busy with them.
    health_interval: int | None = None
    work: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="openclaw-bench-")))
    nginx: NginxServer | None = None

    def start(self) -> Fleet:
        self.nginx = NginxServer(binary=nginx_binary()).start()
        self.http_port, self.https_port, self.status_port, self.postgres_port, *self.tenant_ports = free_ports(4 + self.size)
        return self

    def stop(self) -> None:
        import docker  # noqa: PLC0415 - only the fleet needs the engine's SDK

        if self.nginx:
            self.nginx.stop()
        remove_everything_named(docker.from_env(timeout=300), self.ident)
        shutil.rmtree(self.work, ignore_errors=True)

    def __enter__(self) -> Fleet:
        return self.start()

    def __exit__(self, *_exc) -> None:
        self.stop()

    @property
    def tenants(self) -> list[str]:
        return [f"{self.ident}t{index:04d}" for index in range(self.size)]

    @property
    def postgres_container(self) -> str:
        return f"{self.ident}-postgres"

    @property
    def network(self) -> str:
        return f"{self.ident}-net"

    @property
    def runtime_image(self) -> str:
        return f"{self.ident}-runtime"

    @property
    def clients_dir(self) -> Path:
        return self.work / "clients"

    @property
    def secrets_dir(self) -> Path:
        return self.work / "secrets"

    @property
    def map_file(self) -> Path:
        return self.nginx.prefix / "openclaw" / "tenants.map"

    def server_vars(self) -> dict:
        certs = self.work / "certs"
        return {
            "openclaw_docker_network": self.network,
            "openclaw_docker_services_network": f"{self.ident}-svc",
            "openclaw_clients_dir": str(self.clients_dir),
            "openclaw_backup_dir": str(self.work / "backups"),
            "openclaw_secrets_dir": str(self.secrets_dir),
            "openclaw_server_lib_dir": str(self.work / "lib"),
            "openclaw_postgres_image": POSTGRES_IMAGE,
            "openclaw_postgres_container": self.postgres_container,
            "openclaw_postgres_volume": f"{self.ident}-pgdata",
            "openclaw_postgres_port": self.postgres_port,
            "openclaw_runtime_image": self.runtime_image,
            "openclaw_runtime_base_image": self.gateway_image,
            "openclaw_runtime_install": "none",
            "openclaw_runtime_pull_base": False,
            "openclaw_cert_install_packages": False,
            "openclaw_cert_dir": str(certs),
            **self.nginx.role_variables(self.http_port, self.https_port, self.status_port, certs / "fullchain.pem", certs / "privkey.pem"),
        }

    def tenant_vars(self, changed: str | None = None) -> dict:
        """Every tenant's host variables; ``changed`` gets one setting that differs from the last converge."""
        hosts = {name: {"openclaw_server": "srv1", "openclaw_port": port} for name, port in zip(self.tenants, self.tenant_ports, strict=True)}
        if changed:
            hosts[changed]["openclaw_upload_url"] = "https://uploads.bench.test/changed/"
        return hosts

    def write_inventory(self, changed: str | None = None) -> Path:
        common = {"ansible_connection": "local", "ansible_python_interpreter": "/usr/bin/python3", "openclaw_domain": "bench.test"}
        inventory = {
            "all": {"vars": common},
            "openclaw_servers": {"hosts": {"srv1": self.server_vars()}},
            "openclaw_tenants": {"hosts": self.tenant_vars(changed)},
        }
        if self.health_interval:
            inventory["openclaw_tenants"]["vars"] = {"openclaw_tenant_health_interval": self.health_interval}
        path = self.work / "hosts.json"
        path.write_text(json.dumps(inventory), encoding="utf-8")
        return path
