"""Inventory variables of a server that shares nothing with the rest of this machine.

Integration tests converge real servers on the one Docker engine here, next
to each other and to the demo: every name carries the test's ``ident``, every
directory sits under the test's ``root``, and images come from the offline
builds (tests/images), so nothing is pulled and nothing collides.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from harness.ansible import REPO_ROOT

# The webhook and upload services run the same stand-in image, answering /health.
SERVICE_CONTEXT = REPO_ROOT / "tests" / "images" / "service"
SERVICE_HEALTHCHECK = ["CMD", "curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:{port}/health"]


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


def stand_in_services(ident: str, webhook_port: int, upload_port: int) -> dict:
    """The webhook and upload services on the stand-in image, with throwaway verification secrets."""
    return {
        "openclaw_webhook_container": f"{ident}-webhook",
        "openclaw_upload_container": f"{ident}-upload",
        "openclaw_webhook_port": webhook_port,
        "openclaw_webhook_image": f"{ident}-webhook:local",
        "openclaw_webhook_build_context": str(SERVICE_CONTEXT),
        "openclaw_webhook_healthcheck": [part.format(port=3000) for part in SERVICE_HEALTHCHECK],
        "openclaw_upload_port": upload_port,
        "openclaw_upload_image": f"{ident}-upload:local",
        "openclaw_upload_build_context": str(SERVICE_CONTEXT),
        "openclaw_upload_healthcheck": [part.format(port=3001) for part in SERVICE_HEALTHCHECK],
        "openclaw_fb_webhook_verify_token": "fbverify-" + uuid.uuid4().hex,
        "openclaw_waba_verify_token": "wabaverify-" + uuid.uuid4().hex,
        "openclaw_waba_app_secret": "wabasecret-" + uuid.uuid4().hex,
    }
