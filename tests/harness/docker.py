"""The running Docker engine and the offline test images from tests/images/."""

from __future__ import annotations

import subprocess
from pathlib import Path

IMAGES_DIR = Path(__file__).resolve().parent.parent / "images"
GATEWAY_IMAGE = "openclaw-test/gateway:latest"
# Same config check, socat instead of the Python server: for fleet-size benchmarks only.
GATEWAY_LIGHT_IMAGE = "openclaw-test/gateway-light:latest"
POSTGRES_IMAGE = "openclaw-test/postgres:16"
BASE_IMAGE = "openclaw-test/base:bookworm"

# Every container a test starts carries this label so a crashed run can be swept.
TEST_LABEL = "org.openclaw.standalone.test"


def docker_client():
    """A Docker SDK client, or None when the engine cannot be reached."""
    try:
        import docker
    except ImportError:
        return None
    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except Exception:  # noqa: BLE001 - any failure means "no engine"
        return None
    return client


def build_test_images() -> str:
    """Build (or reuse) the offline images; returns the build script's summary."""
    result = subprocess.run(
        ["bash", str(IMAGES_DIR / "build.sh")],
        check=False,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if result.returncode != 0:
        raise RuntimeError(f"tests/images/build.sh failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result.stdout


def remove_test_containers(client) -> None:
    for container in client.containers.list(all=True, filters={"label": TEST_LABEL}):
        container.remove(force=True, v=True)


def remove_firewall_chains(bridge: str) -> None:
    """Remove the server role's iptables chains of a tenants' bridge (and their jumps), if any."""
    for chain, parent in ((f"OPENCLAW-F-{bridge}", "DOCKER-USER"), (f"OPENCLAW-I-{bridge}", "INPUT")):
        for args in (["-D", parent, "-i", bridge, "-j", chain], ["-F", chain], ["-X", chain]):
            subprocess.run(["iptables", "-w", *args], capture_output=True, check=False)


def remove_everything_named(client, ident: str) -> None:
    """Remove the containers, volumes and networks whose names contain ``ident``, and untag its images.

    Images are removed by tag, not id: an identical build (same inputs) may
    share its id with an image something else on this machine uses.
    """
    for container in client.containers.list(all=True, filters={"name": ident}):
        container.remove(force=True, v=True)
    for volume in client.volumes.list(filters={"name": ident}):
        volume.remove(force=True)
    for network in client.networks.list(names=[ident]):
        remove_firewall_chains("br-" + network.id[:12])
        network.remove()
    for image in client.images.list():
        for tag in image.tags:
            if tag.startswith(ident):
                client.images.remove(tag)
