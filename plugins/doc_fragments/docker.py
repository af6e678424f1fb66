# Copyright: openclaw.standalone contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Note that this doc fragment is **PRIVATE** to the collection. It can have
# breaking changes at any time.

from __future__ import annotations


class ModuleDocFragment:
    # Engine options shared by every module that talks to Docker.
    DOCUMENTATION = r"""
options:
  docker_host:
    description:
      - Address of the Docker engine API on the managed host.
    type: str
    default: unix:///var/run/docker.sock
  docker_timeout:
    description:
      - Seconds one engine API call may take (image builds and container stops get this long per call).
    type: int
    default: 120
requirements:
  - Docker SDK for Python 5.0 or later on the managed host (Debian package C(python3-docker)).
"""

    # The container options of openclaw_container (and of every module that
    # manages a container through the same code).
    CONTAINER = r"""
options:
  image:
    description:
      - Image reference (C(name:tag)) or id.
      - Required unless O(state=absent).
    type: str
  command:
    description:
      - Command (arguments after the image's entrypoint). Omitted - the image's C(CMD).
    type: list
    elements: str
  env:
    description:
      - Environment variables that are not secret (shown in the diff). A change recreates the container.
    type: dict
    default: {}
  secret_env:
    description:
      - Secret environment variables - values are never logged or returned, the diff names only the variables.
        A change of any value recreates the container.
    type: dict
    default: {}
  env_files:
    description:
      - Environment variables read from files on the managed host (variable name to path), for secrets
        generated on the server that must never travel to the controller. Trailing whitespace is stripped.
    type: dict
    default: {}
  ports:
    description:
      - Published ports. Only loopback host addresses are accepted - anything reachable from outside goes
        through nginx and TLS.
    type: list
    elements: dict
    default: []
    suboptions:
      container_port:
        description: Port inside the container.
        type: int
        required: true
      host_port:
        description: Port on the host.
        type: int
        required: true
      host_ip:
        description: Host address to bind; a loopback address.
        type: str
        default: 127.0.0.1
      protocol:
        description: Protocol.
        type: str
        choices: [tcp, udp]
        default: tcp
  volumes:
    description:
      - Mounts as C(SOURCE:/path/in/container[:ro|rw]); SOURCE is a named volume (created when missing, never
        removed by this module) or an absolute host path.
    type: list
    elements: str
    default: []
  network:
    description:
      - User-defined network the container joins. Its name resolves to the container on that network.
    type: str
  healthcheck:
    description:
      - Health check replacing the image's. Durations are in seconds.
    type: dict
    suboptions:
      test:
        description: Check command, Docker style (V([CMD, ...]) or V([CMD-SHELL, "..."])).
        type: list
        elements: str
        required: true
      interval:
        description: Seconds between checks.
        type: int
        default: 10
      timeout:
        description: Seconds one check may take.
        type: int
        default: 5
      retries:
        description: Consecutive failures before the container is unhealthy.
        type: int
        default: 5
      start_period:
        description: Seconds after start in which failures do not count.
        type: int
        default: 30
  restart_policy:
    description:
      - Restart policy.
    type: str
    choices: ["no", on-failure, always, unless-stopped]
    default: unless-stopped
  user:
    description:
      - User (C(uid[:gid]) or name) the main process runs as. Omitted - the image's.
    type: str
  init:
    description:
      - Run an init process as PID 1 that forwards signals and reaps zombies.
    type: bool
    default: false
  cap_drop:
    description: Capabilities to drop (V(ALL) for all).
    type: list
    elements: str
    default: []
  cap_add:
    description: Capabilities to add back after O(cap_drop).
    type: list
    elements: str
    default: []
  security_opts:
    description: Security options, for example V(no-new-privileges:true).
    type: list
    elements: str
    default: []
  group_add:
    description: Additional groups of the main process.
    type: list
    elements: str
    default: []
  memory:
    description: Memory limit (V(2g), V(512m)). Omitted - unlimited.
    type: str
  cpus:
    description: CPU limit in cores. Omitted - unlimited.
    type: float
  pids_limit:
    description: Maximum number of processes. Omitted - the engine default.
    type: int
  shm_size:
    description:
      - Size of C(/dev/shm) (V(256m)). Omitted - the engine default of 64 MiB, too small for a PostgreSQL server
        with many busy connections.
    type: str
  log_max_size:
    description: Size at which the json-file log is rotated.
    type: str
    default: 10m
  log_max_file:
    description: Rotated json-file logs kept.
    type: int
    default: 3
  labels:
    description:
      - Extra labels. The module adds its own (managed, role, configuration hash and summary).
    type: dict
    default: {}
  stop_timeout:
    description: Seconds a stop waits for the process to exit before it is killed.
    type: int
    default: 30
  wait:
    description:
      - After creating or starting, wait until the container is healthy (or, without a health check, stays
        running for a few seconds). A container that does not get there fails the task with its last log lines.
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait for O(wait).
    type: int
    default: 120
  recreate:
    description: Recreate the container even when nothing changed.
    type: bool
    default: false
"""
