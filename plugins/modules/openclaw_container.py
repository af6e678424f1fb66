#!/usr/bin/python
# Copyright: openclaw.standalone contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: openclaw_container
short_description: Converge one long-running container of an OpenClaw server (PostgreSQL, webhook, upload)
version_added: 0.1.0
description:
  - Ensures a named container runs from a given image with a given configuration, through the Docker SDK.
  - The container is created, or removed and created again, only when its image id or its configuration
    changed; a hash of the desired configuration is kept in a label and compared on the next run. Otherwise
    it is left running untouched.
  - Published ports are refused unless bound to a loopback address.
  - Secrets in O(secret_env) or O(env_files) are never returned; the diff names those variables, not their values.
  - The server role uses it for the shared PostgreSQL container and the webhook and upload services. Tenant
    gateways have their own module, M(openclaw.standalone.openclaw_tenant).
author: OpenClaw Standalone maintainers (@openclaw-standalone)
extends_documentation_fragment:
  - openclaw.standalone.attributes
  - openclaw.standalone.docker
  - openclaw.standalone.docker.container
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  idempotent:
    support: full
options:
  name:
    description:
      - Container name.
    type: str
    required: true
  state:
    description:
      - V(started) (or its alias V(present)) creates the container when needed and keeps it running.
      - V(stopped) creates it when needed and keeps it stopped.
      - V(absent) removes the container. Named volumes and host directories are kept.
    type: str
    choices: [started, present, stopped, absent]
    default: started
  pull:
    description:
      - V(missing) pulls O(image) when it is not on the host; V(never) fails instead (offline hosts, pinned images).
      - An image already on the host is never pulled again, so a moving registry tag does not change a converge.
    type: str
    choices: [missing, never]
    default: missing
  role:
    description:
      - Value of the C(org.openclaw.standalone.role) label, saying what the container is for.
    type: str
    default: service
"""

EXAMPLES = r"""
- name: Shared PostgreSQL, published on loopback only
  openclaw.standalone.openclaw_container:
    name: openclaw-postgres
    image: postgres:16
    role: postgres
    env:
      POSTGRES_DB: openclaw
    env_files:
      POSTGRES_PASSWORD: /etc/openclaw/secrets/postgres_password
    volumes:
      - openclaw-pgdata:/var/lib/postgresql/data
    network: openclaw-net
    ports:
      - container_port: 5432
        host_port: 5435
    healthcheck:
      test: [CMD-SHELL, "pg_isready -q -U postgres -d openclaw"]
      interval: 5

- name: Remove the upload service (its volumes stay)
  openclaw.standalone.openclaw_container:
    name: openclaw-upload
    state: absent
"""

RETURN = r"""
container:
  description: The container after the run (empty when absent). Never includes its environment.
  returned: always
  type: dict
  sample:
    id: 3f1c...
    name: openclaw-postgres
    image: sha256:9a0e...
    status: running
    health: healthy
    ports: {"5432/tcp": [{"HostIp": "127.0.0.1", "HostPort": "5435"}]}
recreated:
  description: Whether an existing container was (or in check mode would be) replaced.
  returned: always
  type: bool
actions:
  description: What was (or in check mode would be) done, in order.
  returned: always
  type: list
  elements: str
  sample: [recreate]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.openclaw.standalone.plugins.module_utils.containers import (
    ContainerConverger,
    container_argument_spec,
    desired_spec,
    spec_problems,
)
from ansible_collections.openclaw.standalone.plugins.module_utils.docker_common import (
    DockerFailure,
    connect,
    docker,
    docker_common_argument_spec,
    ensure_docker_sdk,
    find_image,
)
from ansible_collections.openclaw.standalone.plugins.module_utils.secret_files import read_secret_file


def pull_image(client, reference):
    try:
        return client.images.pull(reference)
    except docker.errors.APIError as exc:
        raise DockerFailure("image %s is not on the host and pulling it failed: %s" % (reference, exc)) from exc


def main():
    argument_spec = docker_common_argument_spec()
    argument_spec.update(container_argument_spec())
    argument_spec.update(
        name=dict(type="str", required=True),
        state=dict(type="str", default="started", choices=["started", "present", "stopped", "absent"]),
        role=dict(type="str", default="service"),
        pull=dict(type="str", default="missing", choices=["missing", "never"]),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        required_if=[("state", "started", ("image",)), ("state", "present", ("image",)), ("state", "stopped", ("image",))],
        supports_check_mode=True,
    )
    ensure_docker_sdk(module)
    params = module.params
    problems = spec_problems(params)
    if problems:
        module.fail_json(msg="invalid container settings for %s, nothing was changed: %s" % (params["name"], "; ".join(problems)))
    client = connect(module)
    result = dict(changed=False)
    converger = ContainerConverger(client, module.check_mode, result)
    identity = dict(name=params["name"], role=params["role"])
    try:
        if params["state"] == "absent":
            converger.converge(dict(name=params["name"]), "absent", params["stop_timeout"], False, 0)
        else:
            image = find_image(client, params["image"])
            if image is None and params["pull"] == "missing":
                if module.check_mode:
                    result.update(changed=True, actions=["pull", "create"], container=dict(name=params["name"], status="would be created"))
                    module.exit_json(**result)
                image = pull_image(client, params["image"])
            if image is None:
                module.fail_json(msg="image %s is not on the host and pull is never; build or load it first" % params["image"], **result)
            secrets = dict(params["secret_env"])
            for variable, path in sorted(params["env_files"].items()):
                secrets[variable] = read_secret_file(module, path, "env_files.%s" % variable)
            spec = desired_spec(params, image.id, secrets, identity)
            converger.converge(spec, params["state"], params["stop_timeout"], params["wait"], params["wait_timeout"], params["recreate"])
    except DockerFailure as exc:
        module.fail_json(msg=str(exc), **result)
    if not (module._diff and result["changed"]):
        result.pop("diff", None)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
