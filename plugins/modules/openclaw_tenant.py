#!/usr/bin/python
# Copyright: openclaw.standalone contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: openclaw_tenant
short_description: Converge one tenant's OpenClaw gateway - workspace, token, skills and a hardened container
version_added: 0.1.0
description:
  - Lays out the tenant's state directory C(<clients_dir>/<slug>/.openclaw) (owned by O(uid)/O(gid), directories
    0700, files 0600), writes the managed files given in O(files) only when their content differs (atomically),
    mirrors O(skills_src) into C(workspace/skills) as copies, keeps the gateway token and runs the container
    C(openclaw-<slug>).
  - Files the agent owns are never written or deleted - C(workspace/MEMORY.md), C(workspace/memory/),
    C(workspace/SOUL.md), C(workspace/USER.md), C(devices/), and C(workspace/AGENTS.md) once OpenClaw has written
    its own. A manifest outside the mounted directory (C(<clients_dir>/<slug>/.openclaw-managed.json)) records
    what this module placed; only those files are ever removed.
  - The gateway token is created once (32 random bytes, hex) in C(<clients_dir>/<slug>/gateway_token), owned by root,
    0600, outside the directory mounted into the container; the gateway gets it as C(OPENCLAW_GATEWAY_TOKEN). When
    that file does not exist yet, a token kept by earlier versions or the old scripts in C(.openclaw/gateway_token)
    is adopted once - only when that is a plain file of at most 4 KiB holding a token (a link, FIFO or anything else
    there is ignored and a new token is made); afterwards that file is never read again.
  - The webhook-ingress token (the gateway's C(hooks.token), which the gateway refuses to be equal to the gateway
    token) is kept the same way in C(<clients_dir>/<slug>/hooks_token) and handed over as C(OPENCLAW_HOOKS_TOKEN);
    the configuration refers to that variable, so the token is in no file the agent can edit.
  - The agent can rewrite anything under C(.openclaw), so the module never follows a link there and never opens
    anything but regular files (without blocking, up to 1 MiB). A link, FIFO, device, directory or oversized file
    where a managed file or directory belongs is replaced atomically; one on a path the agent owns is left alone.
    Owner and mode are only ever changed on what it opened itself.
  - The container is created, or replaced, only when the image id or the effective configuration (a hash kept
    in a label) changed; otherwise it is left running untouched. It is hardened - all capabilities dropped,
    C(no-new-privileges), an init process, memory/CPU/PID limits, rotated json-file logs, a health check against
    the gateway, the port published on 127.0.0.1 only, no Docker socket unless O(docker_socket=true).
  - The token, O(db_url), O(env) values and any file in O(secret_files) are never returned or shown in a diff.
author: OpenClaw Standalone maintainers (@openclaw-standalone)
extends_documentation_fragment:
  - openclaw.standalone.attributes
  - openclaw.standalone.docker
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  idempotent:
    support: full
options:
  slug:
    description:
      - The tenant slug (a DNS label that is also a safe database, role, container and nginx map key).
    type: str
    required: true
  state:
    description:
      - V(present) or V(started) - everything converged and the container running (and healthy).
      - V(stopped) - converged, container stopped.
      - V(absent) - container removed. The workspace stays unless O(purge=true).
    type: str
    choices: [present, started, stopped, absent]
    default: present
  port:
    description:
      - Host port the gateway is published on, on 127.0.0.1 only (nginx proxies to it). Required unless O(state=absent).
    type: int
  container_port:
    description:
      - Port inside the container - V(18790) (socat in front of a loopback gateway, O(gateway_bind=loopback)) or
        V(18789) (O(gateway_bind=lan)). Defaults to the one matching O(gateway_bind).
    type: int
  gateway_bind:
    description:
      - How the runtime image starts the gateway (C(OPENCLAW_GATEWAY_BIND)).
    type: str
    choices: [loopback, lan]
    default: loopback
  image:
    description:
      - Runtime image (local; never pulled). Required unless O(state=absent).
    type: str
  network:
    description:
      - Docker network the container joins (PostgreSQL and the shared services are reachable on it by name).
    type: str
    default: openclaw-net
  clients_dir:
    description:
      - Parent directory of the tenant workspaces on the server.
    type: path
    default: /home/openclaw/clients
  files:
    description:
      - Managed files, path relative to C(.openclaw) to content (rendered on the controller), for example
        C(openclaw.json) or C(workspace/TOOLS.md). Paths the agent owns and C(workspace/skills) are refused.
    type: dict
    default: {}
  secret_files:
    description:
      - Keys of O(files) whose content is secret - their diff shows a digest instead of the content.
    type: list
    elements: str
    default: []
  skills_src:
    description:
      - Directory on the server whose tree is mirrored into C(workspace/skills) (copies; symlinks are skipped).
        Files it no longer has are removed from the workspace when they are still the copies placed here.
    type: path
  env:
    description:
      - Extra environment of the gateway. Values are secret - never logged or returned.
    type: dict
    default: {}
  db_url:
    description:
      - C(OPENCLAW_DB_URL) of the gateway (the tenant's own role, never the superuser). Secret.
      - Give it without a password and set O(db_password_file) to have the password read on the server.
    type: str
  db_password:
    description:
      - Password inserted (URL-encoded) into O(db_url), for a password from the vault. Secret.
      - Mutually exclusive with O(db_password_file).
    type: str
  db_password_file:
    description:
      - File on the server holding the password inserted into O(db_url), so the password never reaches the controller.
    type: path
  resources:
    description:
      - Container limits. Defaults fit one OpenClaw gateway (about 1.5-2 GiB of memory under load).
    type: dict
    default: {}
    suboptions:
      memory:
        description: Memory limit.
        type: str
        default: 2g
      cpus:
        description: CPU limit in cores.
        type: float
        default: 1.0
      pids:
        description: Process limit.
        type: int
        default: 512
  uid:
    description:
      - UID the gateway runs as and that owns the workspace.
    type: int
    default: 1001
  gid:
    description:
      - GID the gateway runs as and that owns the workspace.
    type: int
    default: 1001
  docker_socket:
    description:
      - Mount the host's Docker socket into the container. This hands the agent root on the host; only for
        trusted setups, and refused unless O(allow_dangerous) lists C(docker_socket). A warning is emitted.
    type: bool
    default: false
  allow_dangerous:
    description:
      - Settings that remove part of the tenant's isolation and are refused unless named here, so a playbook that
        does not run the preflight cannot apply them by mistake either.
      - V(root_uid) allows O(uid) or O(gid) 0, V(docker_socket) allows O(docker_socket=true), V(unlimited_resources)
        allows a missing, zero, negative or absurdly high O(resources) limit.
      - Each allowed risk that is used is reported as a warning on every run.
    type: list
    elements: str
    choices: [docker_socket, root_uid, unlimited_resources]
    default: []
  server:
    description:
      - Inventory name of the server, stored in a label so the orphan report of that server finds the container.
    type: str
  rotate_token:
    description:
      - Replace the gateway token with a new one and recreate the container. Browsers and integrations using the
        old token must be given the new one.
    type: bool
    default: false
  rotate_hooks_token:
    description:
      - Replace the webhook-ingress token with a new one and recreate the container. Senders of C(/hooks/*)
        requests (the webhook service) must be given the new one.
    type: bool
    default: false
  purge:
    description:
      - With O(state=absent), archive the workspace (tar.gz in O(backup_dir)) and then remove it.
    type: bool
    default: false
  backup_dir:
    description:
      - Where O(purge) archives the workspace.
    type: path
    default: /var/backups/openclaw
  log_max_size:
    description: Size at which the container log is rotated.
    type: str
    default: 10m
  log_max_file:
    description: Rotated container logs kept.
    type: int
    default: 3
  wait_timeout:
    description:
      - Seconds to wait for the gateway to become healthy. A gateway that does not fails the task with its last
        log lines.
    type: int
    default: 120
  stop_timeout:
    description: Seconds a stop waits for the gateway to exit before it is killed.
    type: int
    default: 30
  health_interval:
    description:
      - Seconds between the container's health checks. Each check is a C(docker exec) in the container, so a server
        runs about (tenants / O(health_interval)) of them every second; raise it on a server with hundreds of tenants.
    type: int
    default: 30
  services:
    description:
      - The platform's shared services that act for this tenant. Each gets the tenant's entry in its registry,
        C(<registry_dir>/<slug>.json) (C(root:<group>), mode C(0640), written atomically) with the tenant's own
        database role and password (a service reaches the tenant's data as the tenant, never as a role of its own)
        and the tokens it needs. With O(state=absent) the entries are removed.
      - Secrets a service needs for this tenant are generated once on the server, C(0600) root next to the gateway token.
    type: dict
    default: {}
    suboptions:
      webhook:
        description: The webhook service (Lead Ads and WhatsApp Business). Needs O(db_url).
        type: dict
        suboptions:
          registry_dir:
            description: The webhook service's registry directory (made by the server role).
            type: path
            required: true
          group:
            description: The group the services run as; the only one that can read the entry.
            type: int
            required: true
          gateway_url:
            description:
              - Where the service forwards WhatsApp Business messages (C(<gateway_url>/hooks/agent), with the hooks token).
              - Default C(http://<container>:<container port>) on the tenants' network.
            type: str
          app_secret:
            description: The Meta app secret that signs this tenant's Lead Ads posts, when not the platform's.
            type: str
          default_country_code:
            description: Country calling code for this tenant's national phone numbers (digits).
            type: str
      upload:
        description:
          - The upload service. The container gets C(OPENCLAW_UPLOAD_SECRET) and C(OPENCLAW_UPLOAD_URL), which
            C(openclaw-upload-link) signs the client's links with. Needs O(db_url).
        type: dict
        suboptions:
          registry_dir:
            description: The upload service's registry directory (made by the server role).
            type: path
            required: true
          group:
            description: The group the services run as; the only one that can read the entry.
            type: int
            required: true
          public_url:
            description: The tenant's upload page as the client opens it, C(https://<domain>/openclaw/upload/<slug>/).
            type: str
            required: true
"""

EXAMPLES = r"""
- name: Tenant aliya on its server
  openclaw.standalone.openclaw_tenant:
    slug: aliya
    port: 18801
    image: openclaw-runtime:2026.2.17
    server: srv1
    files:
      openclaw.json: "{{ lookup('template', 'openclaw.json.j2') }}"
      workspace/TOOLS.md: "{{ lookup('template', 'TOOLS.md.j2') }}"
    skills_src: /opt/openclaw/skills
    db_url: postgresql://openclaw_aliya@openclaw-postgres:5432/openclaw_aliya
    db_password_file: /etc/openclaw/secrets/db-aliya.password

- name: Give aliya a new gateway token
  openclaw.standalone.openclaw_tenant:
    slug: aliya
    port: 18801
    image: openclaw-runtime:2026.2.17
    rotate_token: true

- name: Tenant aliya, registered with the shared webhook and upload services
  openclaw.standalone.openclaw_tenant:
    slug: aliya
    port: 18801
    image: openclaw-runtime:2026.2.17
    db_url: postgresql://openclaw_aliya@openclaw-postgres:5432/openclaw_aliya
    db_password_file: /etc/openclaw/secrets/db-aliya.password
    services:
      webhook:
        registry_dir: /var/lib/openclaw/services/webhook/tenants
        group: 10001
      upload:
        registry_dir: /var/lib/openclaw/services/upload/tenants
        group: 10001
        public_url: https://agents.example.com/openclaw/upload/aliya/

- name: Remove bob, keeping an archive of the workspace
  openclaw.standalone.openclaw_tenant:
    slug: bob
    state: absent
    purge: true
"""

RETURN = r"""
container:
  description: The container after the run (empty when absent). Never its environment.
  returned: always
  type: dict
  sample: {id: 3f1c..., name: openclaw-aliya, status: running, health: healthy}
port:
  description: The published host port (on 127.0.0.1).
  returned: always
  type: int
state:
  description: The state asked for.
  returned: always
  type: str
recreated:
  description: Whether an existing container was (or in check mode would be) replaced.
  returned: always
  type: bool
token_created:
  description: Whether a gateway token was (or would be) created or rotated. The token itself is never returned.
  returned: always
  type: bool
token_adopted:
  description: Whether the token of C(.openclaw/gateway_token) was (or would be) adopted into the token file.
  returned: always
  type: bool
token_file:
  description: The root-owned file holding the gateway token (C(<clients_dir>/<slug>/gateway_token)).
  returned: always
  type: str
hooks_token_created:
  description: Whether a hooks token was (or would be) created or rotated. The token itself is never returned.
  returned: always
  type: bool
hooks_token_file:
  description: The root-owned file holding the webhook-ingress token (C(<clients_dir>/<slug>/hooks_token)).
  returned: always
  type: str
changes:
  description: What was (or in check mode would be) changed, one line each.
  returned: always
  type: list
  elements: str
  sample: [update workspace/TOOLS.md, recreate container]
workspace:
  description: The tenant's state directory on the server.
  returned: always
  type: str
leadgen_verify_token_file:
  description: The root-owned file holding the tenant's Lead Ads subscribe token (the verify token to enter in Meta's app).
  returned: when O(services.webhook) is set
  type: str
archive:
  description: The workspace archive written by O(purge).
  returned: when a purge archived the workspace
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.openclaw.standalone.plugins.module_utils.docker_common import connect, docker_common_argument_spec, ensure_docker_sdk
from ansible_collections.openclaw.standalone.plugins.module_utils.tenant_run import (
    TenantFailure,
    converge_tenant,
    tenant_argument_spec,
    tenant_problems,
)


def main():
    argument_spec = docker_common_argument_spec()
    argument_spec.update(tenant_argument_spec())
    module = AnsibleModule(argument_spec=argument_spec, mutually_exclusive=[("db_password", "db_password_file")], supports_check_mode=True)
    params = module.params
    problems, warnings = tenant_problems(params)
    if problems:
        module.fail_json(msg="invalid tenant %s, nothing was changed: %s" % (params["slug"], "; ".join(problems)))
    for warning in warnings:
        module.warn(warning)
    ensure_docker_sdk(module)
    client = connect(module)
    try:
        result = converge_tenant(params, client, module.check_mode, module.no_log_values.add, diff=module._diff)
    except TenantFailure as exc:
        module.fail_json(msg=exc.msg, **exc.result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
