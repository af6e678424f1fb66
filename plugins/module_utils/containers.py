# Copyright: openclaw.standalone contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Note that this module util is **PRIVATE** to the collection. It can have
# breaking changes at any time.
"""Declarative containers: a desired spec, its hash label, and create/recreate/start/stop/remove.

A container is recreated only when its image id or its configuration hash
changed. The hash is computed from the desired spec (not read back from
`docker inspect`, whose defaults vary by engine version), stored in a label at
creation, and compared on the next run. A non-secret summary of the spec is
stored next to it so a run can show what changed without printing secrets.
"""

from __future__ import annotations

import json

from ansible_collections.openclaw.standalone.plugins.module_utils.docker_common import (
    LABEL_CONFIG_HASH,
    LABEL_MANAGED,
    LABEL_ROLE,
    LABEL_TENANT,
    DockerFailure,
    config_hash,
    docker,
    find_container,
    log_tail,
    loopback_problem,
    remove_container,
    wait_until_healthy,
)

LABEL_SUMMARY = "org.openclaw.standalone.config-summary"
NANO = 1_000_000_000


def container_argument_spec():
    """Options describing a container; documented in the openclaw.standalone.container doc fragment."""
    return dict(
        image=dict(type="str"),
        command=dict(type="list", elements="str"),
        env=dict(type="dict", default={}),
        secret_env=dict(type="dict", default={}, no_log=True),
        env_files=dict(type="dict", default={}),
        ports=dict(
            type="list",
            elements="dict",
            default=[],
            options=dict(
                container_port=dict(type="int", required=True),
                host_port=dict(type="int", required=True),
                host_ip=dict(type="str", default="127.0.0.1"),
                protocol=dict(type="str", default="tcp", choices=["tcp", "udp"]),
            ),
        ),
        volumes=dict(type="list", elements="str", default=[]),
        network=dict(type="str"),
        healthcheck=dict(
            type="dict",
            options=dict(
                test=dict(type="list", elements="str", required=True),
                interval=dict(type="int", default=10),
                timeout=dict(type="int", default=5),
                retries=dict(type="int", default=5),
                start_period=dict(type="int", default=30),
            ),
        ),
        restart_policy=dict(type="str", default="unless-stopped", choices=["no", "on-failure", "always", "unless-stopped"]),
        user=dict(type="str"),
        init=dict(type="bool", default=False),
        cap_drop=dict(type="list", elements="str", default=[]),
        cap_add=dict(type="list", elements="str", default=[]),
        security_opts=dict(type="list", elements="str", default=[]),
        group_add=dict(type="list", elements="str", default=[]),
        memory=dict(type="str"),
        cpus=dict(type="float"),
        pids_limit=dict(type="int"),
        shm_size=dict(type="str"),
        log_max_size=dict(type="str", default="10m"),
        log_max_file=dict(type="int", default=3),
        labels=dict(type="dict", default={}),
        stop_timeout=dict(type="int", default=30),
        wait=dict(type="bool", default=True),
        wait_timeout=dict(type="int", default=120),
        recreate=dict(type="bool", default=False),
    )


def spec_problems(params):
    """Problems with a container spec that must stop the run before anything changes."""
    problems = []
    for index, port in enumerate(params.get("ports") or []):
        problem = loopback_problem("ports[%d].host_ip" % index, port["host_ip"])
        if problem:
            problems.append(problem)
        for field in ("container_port", "host_port"):
            if not 1 <= port[field] <= 65535:
                problems.append("ports[%d].%s must be between 1 and 65535, got %d" % (index, field, port[field]))
    for index, volume in enumerate(params.get("volumes") or []):
        parts = volume.split(":")
        if len(parts) not in (2, 3) or not parts[0] or not parts[1].startswith("/") or (len(parts) == 3 and parts[2] not in ("ro", "rw")):
            problems.append("volumes[%d] must be SOURCE:/container/path[:ro|rw], got %r" % (index, volume))
    if params.get("memory"):
        try:
            docker.utils.parse_bytes(params["memory"])
        except docker.errors.DockerException:
            problems.append("memory must be a size such as 2g or 512m, got %r" % params["memory"])
    if params.get("shm_size"):
        try:
            docker.utils.parse_bytes(params["shm_size"])
        except docker.errors.DockerException:
            problems.append("shm_size must be a size such as 256m, got %r" % params["shm_size"])
    if params.get("cpus") is not None and params["cpus"] <= 0:
        problems.append("cpus must be greater than 0, got %s" % params["cpus"])
    for name in list(params.get("env") or {}) + list(params.get("secret_env") or {}) + list(params.get("env_files") or {}):
        if not name or "=" in name:
            problems.append("environment variable names must be non-empty and contain no '=', got %r" % name)
    return problems


def desired_spec(params, image_id, secrets, identity):
    """The whole desired configuration (secrets included), ready for hashing and creation.

    ``secrets`` maps the secret environment variables to their values;
    ``identity`` holds the name, the role label value and the tenant (or None).
    """
    healthcheck = params.get("healthcheck")
    spec = dict(
        name=identity["name"],
        image=params["image"],
        image_id=image_id,
        command=params.get("command"),
        env={str(key): str(value) for key, value in sorted((params.get("env") or {}).items())},
        secret_env={str(key): str(value) for key, value in sorted(secrets.items())},
        ports=sorted((_port(p) for p in params.get("ports") or []), key=lambda p: (p["container_port"], p["protocol"], p["host_ip"])),
        volumes=list(params.get("volumes") or []),
        network=params.get("network"),
        healthcheck=dict(healthcheck) if healthcheck else None,
        restart_policy=params["restart_policy"],
        user=params.get("user"),
        init=params["init"],
        cap_drop=sorted(params.get("cap_drop") or []),
        cap_add=sorted(params.get("cap_add") or []),
        security_opts=sorted(params.get("security_opts") or []),
        group_add=list(params.get("group_add") or []),
        memory=params.get("memory"),
        cpus=params.get("cpus"),
        pids_limit=params.get("pids_limit"),
        shm_size=params.get("shm_size"),
        log=dict(max_size=params["log_max_size"], max_file=params["log_max_file"]),
        labels=dict(sorted((params.get("labels") or {}).items())),
        role=identity["role"],
        tenant=identity.get("tenant"),
    )
    return spec


def _port(port):
    return dict(container_port=port["container_port"], host_port=port["host_port"], host_ip=port["host_ip"], protocol=port["protocol"])


def summary(spec):
    """The spec with secret values replaced by one digest: safe to store in a label and to show in a diff."""
    shown = dict(spec)
    shown["secret_env"] = sorted(spec["secret_env"])
    shown["secret_env_digest"] = config_hash(spec["secret_env"])[:16]
    return shown


def labels_for(spec):
    labels = dict(spec["labels"])
    labels[LABEL_MANAGED] = "true"
    labels[LABEL_ROLE] = spec["role"]
    if spec.get("tenant"):
        labels[LABEL_TENANT] = spec["tenant"]
    labels[LABEL_CONFIG_HASH] = config_hash(spec)
    labels[LABEL_SUMMARY] = json.dumps(summary(spec), sort_keys=True, separators=(",", ":"))
    return labels


def create_arguments(spec):
    """Keyword arguments for docker's containers.create (Docker SDK 5 and later)."""
    kwargs = dict(
        image=spec["image_id"],
        name=spec["name"],
        command=spec["command"],
        environment={**spec["env"], **spec["secret_env"]},
        ports={"%d/%s" % (p["container_port"], p["protocol"]): (p["host_ip"], p["host_port"]) for p in spec["ports"]},
        volumes=spec["volumes"],
        network=spec["network"],
        restart_policy={"Name": spec["restart_policy"]},
        init=spec["init"] or None,
        cap_drop=spec["cap_drop"] or None,
        cap_add=spec["cap_add"] or None,
        security_opt=spec["security_opts"] or None,
        group_add=spec["group_add"] or None,
        log_config=docker.types.LogConfig(type="json-file", config={"max-size": spec["log"]["max_size"], "max-file": str(spec["log"]["max_file"])}),
        labels=labels_for(spec),
        detach=True,
    )
    if spec["user"]:
        kwargs["user"] = spec["user"]
    if spec["memory"]:
        kwargs["mem_limit"] = spec["memory"]
    if spec["cpus"]:
        kwargs["nano_cpus"] = int(spec["cpus"] * NANO)
    if spec["pids_limit"]:
        kwargs["pids_limit"] = spec["pids_limit"]
    if spec.get("shm_size"):
        kwargs["shm_size"] = spec["shm_size"]
    if spec["healthcheck"]:
        check = spec["healthcheck"]
        kwargs["healthcheck"] = dict(
            test=check["test"],
            interval=check["interval"] * NANO,
            timeout=check["timeout"] * NANO,
            retries=check["retries"],
            start_period=check["start_period"] * NANO,
        )
    return kwargs


def current_summary(container):
    """The summary stored on an existing container, or None when it was not made by this collection."""
    stored = (container.labels or {}).get(LABEL_SUMMARY)
    if not stored:
        return None
    try:
        return json.loads(stored)
    except ValueError:
        return None


def describe(container):
    """What a run returns about a container: never its environment."""
    if container is None:
        return {}
    state = container.attrs.get("State", {})
    return dict(
        id=container.id,
        name=container.name,
        image=container.attrs.get("Image"),
        status=state.get("Status"),
        health=(state.get("Health") or {}).get("Status"),
        ports=container.attrs.get("HostConfig", {}).get("PortBindings") or {},
    )


class ContainerConverger:
    """Brings one named container to a desired spec and state, reporting what it did.

    ``check`` predicts without touching anything. Results go into ``result``:
    changed, recreated, actions (what was or would be done), container, diff.
    """

    def __init__(self, client, check, result):
        self.client = client
        self.check = check
        self.result = result
        self.result.setdefault("actions", [])
        self.result.setdefault("recreated", False)

    def act(self, action):
        self.result["actions"].append(action)
        self.result["changed"] = True

    def converge(self, spec, state, stop_timeout, wait, wait_timeout, force_recreate=False, probe=None):
        name = spec["name"]
        existing = find_container(self.client, name)
        before = current_summary(existing) if existing is not None else None
        after = summary(spec) if state != "absent" else None
        if existing is not None and before is None:
            # Not ours (for example started by hand with docker run): show what we know.
            before = dict(name=name, image_id=existing.attrs.get("Image"), adopted_from="unmanaged container")
        self.result["diff"] = dict(
            before=_render(before),
            after=_render(after),
            before_header="container %s" % name,
            after_header="container %s" % name,
        )
        if state == "absent":
            if existing is not None:
                self.act("remove")
                if not self.check:
                    remove_container(existing, stop_timeout)
            self.result["container"] = {}
            return None

        outdated = existing is not None and (
            force_recreate or existing.labels.get(LABEL_CONFIG_HASH) != config_hash(spec) or existing.attrs.get("Image") != spec["image_id"]
        )
        container = existing
        if existing is None or outdated:
            self.act("create" if existing is None else "recreate")
            if existing is not None:
                self.result["recreated"] = True
            if self.check:
                self.result["container"] = dict(name=name, status="would be " + ("recreated" if existing is not None else "created"))
                return None
            if existing is not None:
                remove_container(existing, stop_timeout)
            try:
                container = self.client.containers.create(**create_arguments(spec))
            except docker.errors.APIError as exc:
                raise DockerFailure("cannot create container %s: %s" % (name, exc)) from exc
        want_running = state in ("started", "present")
        running = container.status in ("running", "restarting")
        if want_running and not running:
            if existing is not None and not outdated:
                self.act("start")
            if not self.check:
                try:
                    container.start()
                except docker.errors.APIError as exc:
                    raise DockerFailure("cannot start container %s: %s\n%s" % (name, exc, log_tail(container))) from exc
        elif not want_running and running:
            self.act("stop")
            if not self.check:
                try:
                    container.stop(timeout=stop_timeout)
                except docker.errors.APIError as exc:
                    raise DockerFailure("cannot stop container %s: %s" % (name, exc)) from exc
        if self.check:
            self.result["container"] = describe(container)
            return container
        # Only a container this run created or started is waited for; one left
        # untouched is reported as it is (the site's finalize probes every tenant).
        if want_running and wait and self.result["actions"]:
            problem = wait_until_healthy(container, wait_timeout, probe=probe)
            if problem:
                raise DockerFailure("%s; last log lines:\n%s" % (problem, log_tail(container)))
        container.reload()
        self.result["container"] = describe(container)
        return container


def _render(summary_dict):
    if summary_dict is None:
        return ""
    return json.dumps(summary_dict, indent=2, sort_keys=True) + "\n"
