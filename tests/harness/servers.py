"""Inventory variables of a server that shares nothing with the rest of this machine.

Integration tests converge real servers on the one Docker engine here, next
to each other and to the demo: every name carries the test's ``ident``, every
directory sits under the test's ``root``, and images come from the offline
builds (tests/images), so nothing is pulled and nothing collides.
"""

from __future__ import annotations

import uuid
from pathlib import Path


def isolated_server(ident: str, root: Path, images: dict, postgres_port: int) -> dict:
    """A container-mode server: PostgreSQL, runtime image and private directories of its own."""
    return {
        "openclaw_docker_network": f"{ident}-net",
        "openclaw_clients_dir": str(root / "clients"),
        "openclaw_backup_dir": str(root / "backups"),
        "openclaw_secrets_dir": str(root / "secrets"),
        "openclaw_server_lib_dir": str(root / "lib"),
        "openclaw_postgres_image": images["postgres"],
        "openclaw_postgres_container": f"{ident}-postgres",
        "openclaw_postgres_volume": f"{ident}-pgdata",
        "openclaw_postgres_port": postgres_port,
        "openclaw_runtime_image": f"{ident}-runtime",
        "openclaw_runtime_base_image": images["gateway"],
        "openclaw_runtime_install": "none",
        "openclaw_runtime_pull_base": False,
    }


def shared_services(ident: str, images: dict, webhook_port: int, upload_port: int) -> dict:
    """The webhook and upload services on the collection's own services image, built offline, with throwaway secrets."""
    return {
        "openclaw_webhook_container": f"{ident}-webhook",
        "openclaw_upload_container": f"{ident}-upload",
        "openclaw_webhook_port": webhook_port,
        "openclaw_upload_port": upload_port,
        "openclaw_services_image": f"{ident}-services:local",
        "openclaw_services_base_image": images["base"],
        "openclaw_services_install": "none",
        "openclaw_services_pull_base": False,
        "openclaw_waba_verify_token": "wabaverify-" + uuid.uuid4().hex,
        "openclaw_waba_app_secret": "wabasecret-" + uuid.uuid4().hex,
    }
