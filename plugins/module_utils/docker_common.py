# Copyright: openclaw.standalone contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Note that this module util is **PRIVATE** to the collection. It can have
# breaking changes at any time.
"""Docker engine access shared by the collection's container modules (Docker SDK for Python)."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import time
import traceback

from ansible.module_utils.basic import missing_required_lib

try:
    import docker
    import docker.errors
    import docker.types
except ImportError:
    HAS_DOCKER = False
    DOCKER_IMPORT_ERROR = traceback.format_exc()
    docker = None
else:
    HAS_DOCKER = True
    DOCKER_IMPORT_ERROR = None

# Labels every managed object carries. The tenant label is what the orphan
# report matches against the inventory.
LABEL_MANAGED = "org.openclaw.standalone.managed"
LABEL_ROLE = "org.openclaw.standalone.role"
LABEL_TENANT = "org.openclaw.standalone.tenant"
# The inventory server a tenant container belongs to: several inventory
# servers may share one Docker engine, and each reports only its own orphans.
LABEL_SERVER = "org.openclaw.standalone.server"
LABEL_CONFIG_HASH = "org.openclaw.standalone.config-hash"
LABEL_BUILD_HASH = "org.openclaw.standalone.build-hash"

LOG_TAIL_LINES = 30


def docker_common_argument_spec():
    """Engine options; documented in the openclaw.standalone.docker doc fragment."""
    return dict(
        docker_host=dict(type="str", default="unix:///var/run/docker.sock"),
        docker_timeout=dict(type="int", default=120),
    )


class DockerFailure(Exception):
    """A Docker engine call failed; the message says what was being done."""


def ensure_docker_sdk(module):
    if not HAS_DOCKER:
        module.fail_json(
            msg=missing_required_lib("docker", reason="to talk to the Docker engine") + " On Debian: apt-get install python3-docker.",
            exception=DOCKER_IMPORT_ERROR,
        )


def open_client(docker_host, timeout):
    """A Docker client for ``docker_host`` that answered a ping; DockerFailure naming the engine address."""
    try:
        client = docker.DockerClient(base_url=docker_host, timeout=timeout)
        client.ping()
    except docker.errors.DockerException as exc:
        raise DockerFailure("cannot reach the Docker engine at %s: %s" % (docker_host, exc)) from exc
    return client


def connect(module):
    """A Docker client for the module's docker_host, or fail_json naming the engine address."""
    ensure_docker_sdk(module)
    try:
        return open_client(module.params["docker_host"], module.params["docker_timeout"])
    except DockerFailure as exc:
        module.fail_json(msg=str(exc))


def config_hash(spec):
    """A stable digest of a desired configuration (a JSON-serialisable dict)."""
    canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def loopback_problem(field, address):
    """Why ``address`` may not be used to publish a port, or None when it is a loopback address."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return "%s must be an IP address, got %r" % (field, address)
    if not parsed.is_loopback:
        return "%s must be a loopback address (127.0.0.0/8 or ::1): a port published on %s bypasses nginx and TLS" % (field, address)
    return None


def find_container(client, name):
    """The container named ``name`` (exact name, not a prefix), or None."""
    try:
        return client.containers.get(name)
    except docker.errors.NotFound:
        return None
    except docker.errors.APIError as exc:
        raise DockerFailure("cannot inspect container %s: %s" % (name, exc)) from exc


def find_image(client, reference):
    """The local image for ``reference``, or None (never pulls)."""
    try:
        return client.images.get(reference)
    except docker.errors.ImageNotFound:
        return None
    except docker.errors.APIError as exc:
        raise DockerFailure("cannot inspect image %s: %s" % (reference, exc)) from exc


def log_tail(container, lines=LOG_TAIL_LINES):
    """The container's last log lines as text, for failure messages."""
    try:
        raw = container.logs(tail=lines, stdout=True, stderr=True)
    except docker.errors.APIError as exc:
        return "(logs unavailable: %s)" % exc
    return raw.decode("utf-8", "replace").rstrip()


def health_status(container):
    """'healthy', 'unhealthy', 'starting', or None when the container has no healthcheck."""
    health = container.attrs.get("State", {}).get("Health")
    return health.get("Status") if health else None


def wait_until_healthy(container, timeout, poll=1.0, probe=None):
    """Wait for a running container to report healthy (or just to keep running when it has no healthcheck).

    ``probe`` (a callable returning True when the service answers) ends the wait
    as soon as it succeeds: Docker's first health check only runs one interval
    after the start, and a short interval costs every container an exec that often.
    Returns None when it got there, else a sentence saying why not; the caller adds the logs.
    """
    deadline = time.monotonic() + timeout
    # Without a healthcheck, "stayed up for a few seconds" is the best signal there is.
    settle_until = time.monotonic() + min(3.0, timeout)
    while True:
        try:
            container.reload()
        except docker.errors.NotFound:
            return "container %s disappeared while starting" % container.name
        state = container.attrs.get("State", {})
        status = health_status(container)
        if not state.get("Running"):
            if state.get("Restarting"):
                pass
            else:
                return "container %s stopped (exit code %s)" % (container.name, state.get("ExitCode"))
        elif status == "healthy" or (probe is not None and status != "unhealthy" and probe()):
            return None
        elif status == "unhealthy":
            return "container %s is unhealthy" % container.name
        elif status is None and time.monotonic() >= settle_until:
            return None
        if time.monotonic() >= deadline:
            return "container %s did not become healthy within %ds (health: %s)" % (container.name, timeout, status or "none")
        time.sleep(poll)


def remove_container(container, stop_timeout):
    """Stop (gracefully, within stop_timeout seconds) and remove a container; volumes are kept."""
    try:
        if container.status in ("running", "restarting", "paused"):
            container.stop(timeout=stop_timeout)
        container.remove(v=False)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as exc:
        raise DockerFailure("cannot remove container %s: %s" % (container.name, exc)) from exc


def managed_containers(client, role=None, server=None):
    """Containers carrying the managed label (optionally of one role and server), running or not."""
    labels = [LABEL_MANAGED + "=true"]
    if role:
        labels.append(LABEL_ROLE + "=" + role)
    if server:
        labels.append(LABEL_SERVER + "=" + server)
    filters = {"label": labels}
    try:
        return client.containers.list(all=True, filters=filters)
    except docker.errors.APIError as exc:
        raise DockerFailure("cannot list containers: %s" % exc) from exc
