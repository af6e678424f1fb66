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

import os
from http.client import HTTPException
from urllib.error import HTTPError
from urllib.parse import quote, unquote, urlsplit, urlunsplit
from urllib.request import ProxyHandler, build_opener

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.openclaw.standalone.plugins.module_utils.containers import ContainerConverger, desired_spec
from ansible_collections.openclaw.standalone.plugins.module_utils.docker_common import (
    LABEL_SERVER,
    DockerFailure,
    connect,
    docker_common_argument_spec,
    ensure_docker_sdk,
    find_image,
)
from ansible_collections.openclaw.standalone.plugins.module_utils.secret_files import read_secret_file
from ansible_collections.openclaw.standalone.plugins.module_utils.validation import (
    DANGEROUS_SETTINGS,
    derived_names,
    port_problems,
    slug_problems,
    tenant_risk_findings,
)
from ansible_collections.openclaw.standalone.plugins.module_utils.workspace import (
    LEADGEN_VERIFY_TOKEN_FILE,
    UPLOAD_SECRET_FILE,
    Workspace,
    WorkspaceError,
    archive_and_remove,
    relative_path_problem,
    remove_registry_entry,
    sync_registry_entry,
)

CONTAINER_HOME = "/home/openclaw/.openclaw"
CONTAINER_PORTS = {"loopback": 18790, "lan": 18789}
DOCKER_SOCKET = "/var/run/docker.sock"
# Set by this module; O(env) may not override them.
RESERVED_ENV = (
    "OPENCLAW_GATEWAY_TOKEN",
    "OPENCLAW_HOOKS_TOKEN",
    "OPENCLAW_DB_URL",
    "OPENCLAW_GATEWAY_BIND",
    "OPENCLAW_UPLOAD_SECRET",
    "OPENCLAW_UPLOAD_URL",
)
# The gateway itself always listens on 18789 inside the container.
# OpenClaw 2026.2.17 has no health endpoint (/healthz came later): the gateway is
# up when it answers HTTP on its port at all, whatever the status. curl without
# -f exits 0 on any answer and non-zero when nothing listens.
HEALTHCHECK = ["CMD", "curl", "-sS", "-o", "/dev/null", "--max-time", "4", "http://127.0.0.1:18789/healthz"]


def input_problems(params):
    problems = [str(problem) for problem in slug_problems(params["slug"], variable="slug")]
    if params["state"] != "absent":
        for option in ("port", "image"):
            if params[option] is None:
                problems.append("%s is required with state %s" % (option, params["state"]))
        if params["port"] is not None:
            problems.extend(str(problem) for problem in port_problems(params["port"], variable="port"))
    for relative in params["files"]:
        problem = relative_path_problem(relative)
        if problem:
            problems.append("files: " + problem)
    for relative in params["secret_files"]:
        if relative not in params["files"]:
            problems.append("secret_files: %r is not a key of files" % relative)
    if (params["db_password_file"] or params["db_password"]) and not params["db_url"]:
        problems.append("db_password and db_password_file need db_url")
    if params["db_url"]:
        parts = urlsplit(params["db_url"])
        if parts.scheme not in ("postgresql", "postgres") or not parts.hostname:
            problems.append("db_url must be postgresql://user@host:port/database")
        elif (params["db_password_file"] or params["db_password"]) and parts.password:
            problems.append("db_url must not carry a password when db_password or db_password_file is set")
    for name in params["env"]:
        if not name or "=" in name or name in RESERVED_ENV:
            problems.append("env: %r is not allowed (empty, contains '=', or set by this module)" % name)
    if params["purge"] and params["state"] != "absent":
        problems.append("purge is only valid with state absent")
    services = {name: options for name, options in params["services"].items() if options}
    if services and params["state"] != "absent" and not params["db_url"]:
        problems.append("services: %s reach the tenant's data as its role and need db_url" % ", ".join(sorted(services)))
    upload = services.get("upload")
    if upload and urlsplit(upload["public_url"]).scheme not in ("https", "http"):
        problems.append("services.upload.public_url must be an http(s) URL")
    webhook = services.get("webhook")
    if webhook and webhook.get("default_country_code") and not webhook["default_country_code"].isdigit():
        problems.append("services.webhook.default_country_code must be digits")
    return problems


# Inventory variable (as the preflight names it) -> this module's option.
RISK_OPTIONS = {
    "openclaw_tenant_uid": "uid",
    "openclaw_tenant_gid": "gid",
    "openclaw_tenant_docker_socket": "docker_socket",
    "openclaw_tenant_memory": "resources.memory",
    "openclaw_tenant_cpus": "resources.cpus",
    "openclaw_tenant_pids": "resources.pids",
}


def isolation_findings(params):
    """(problems, warnings) of the settings that remove isolation, by the preflight's own rules."""
    resources = params["resources"]
    values = dict(
        openclaw_tenant_uid=params["uid"],
        openclaw_tenant_gid=params["gid"],
        openclaw_tenant_docker_socket=params["docker_socket"],
        openclaw_tenant_memory=resources.get("memory"),
        openclaw_tenant_cpus=resources.get("cpus"),
        openclaw_tenant_pids=resources.get("pids"),
    )
    malformed, risks = tenant_risk_findings(values)
    problems = ["%s: %s" % (RISK_OPTIONS[problem.variable], problem.detail) for problem in malformed]
    warnings = []
    for opt_in, variable, detail in risks:
        what = "%s %s: %s" % (RISK_OPTIONS[variable], detail, DANGEROUS_SETTINGS[opt_in])
        if opt_in in params["allow_dangerous"]:
            warnings.append("tenant %s: %s (allowed by allow_dangerous)" % (params["slug"], what))
        else:
            problems.append("%s; refused unless allow_dangerous lists %s" % (what, opt_in))
    return problems, warnings


def with_password(url, password):
    parts = urlsplit(url)
    netloc = "%s:%s@%s" % (quote(parts.username or "", safe=""), quote(password, safe=""), parts.hostname)
    if parts.port:
        netloc += ":%d" % parts.port
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def container_params(params, gateway_bind):
    resources = params["resources"]
    container_port = params["container_port"] or CONTAINER_PORTS[gateway_bind]
    volumes = ["%s:%s" % (os.path.join(params["clients_dir"], params["slug"], ".openclaw"), CONTAINER_HOME)]
    group_add = []
    if params["docker_socket"]:
        volumes.append("%s:%s" % (DOCKER_SOCKET, DOCKER_SOCKET))
        group_add.append(str(os.stat(DOCKER_SOCKET).st_gid))
    return dict(
        image=params["image"],
        command=None,
        env={"OPENCLAW_GATEWAY_BIND": gateway_bind},
        ports=[dict(container_port=container_port, host_port=params["port"], host_ip="127.0.0.1", protocol="tcp")],
        volumes=volumes,
        network=params["network"],
        # Every check is a docker exec: with a hundred tenants on a server a
        # short interval saturates the CPU. Start-up is detected by the module's
        # own probe of the published port, not by the first check.
        healthcheck=dict(test=HEALTHCHECK, interval=30, timeout=10, retries=3, start_period=60),
        restart_policy="unless-stopped",
        user="%d:%d" % (params["uid"], params["gid"]),
        init=True,
        cap_drop=["ALL"],
        cap_add=[],
        security_opts=["no-new-privileges:true"],
        group_add=group_add,
        memory=resources.get("memory") or "2g",
        cpus=resources.get("cpus") or 1.0,
        pids_limit=resources.get("pids") or 512,
        log_max_size=params["log_max_size"],
        log_max_file=params["log_max_file"],
        labels={LABEL_SERVER: params["server"]} if params["server"] else {},
    )


def gateway_probe(port):
    """A callable that is True once the gateway answers HTTP (any status, see HEALTHCHECK) on its published loopback port."""

    # No proxy from the environment may sit between the server and its own loopback.
    opener = build_opener(ProxyHandler({}))

    def answers():
        try:
            with opener.open("http://127.0.0.1:%d/healthz" % port, timeout=2) as response:
                return response.status < 500
        except HTTPError as error:
            return error.code < 500
        except (OSError, ValueError, HTTPException):
            return False

    return answers


def register_with_services(params, workspace, tokens, db_password, check):
    """Write (or with state absent remove) the tenant's entry in each shared service's registry."""
    names = derived_names(params["slug"])
    for service in ("webhook", "upload"):
        options = params["services"].get(service)
        if not options:
            continue
        if params["state"] == "absent":
            change = remove_registry_entry(options["registry_dir"], params["slug"], check)
            if change:
                workspace.changes.append(change)
            continue
        entry = dict(slug=params["slug"], database=names["database"], db_user=names["role"], db_password=db_password)
        if service == "webhook":
            container_port = params["container_port"] or CONTAINER_PORTS[params["gateway_bind"]]
            entry.update(
                gateway_url=options["gateway_url"] or "http://%s:%d" % (names["container"], container_port),
                hooks_token=tokens["hooks"],
                leadgen_verify_token=tokens["leadgen"],
            )
            entry.update((key, options[key]) for key in ("app_secret", "default_country_code") if options.get(key))
        else:
            entry["upload_secret"] = tokens["upload"]
        change, diff = sync_registry_entry(options["registry_dir"], params["slug"], entry, options["group"], check)
        if change:
            workspace.changes.append(change)
        if diff:
            workspace.diffs.append(diff)


def main():
    argument_spec = docker_common_argument_spec()
    argument_spec.update(
        slug=dict(type="str", required=True),
        state=dict(type="str", default="present", choices=["present", "started", "stopped", "absent"]),
        port=dict(type="int"),
        container_port=dict(type="int"),
        gateway_bind=dict(type="str", default="loopback", choices=["loopback", "lan"]),
        image=dict(type="str"),
        network=dict(type="str", default="openclaw-net"),
        clients_dir=dict(type="path", default="/home/openclaw/clients"),
        files=dict(type="dict", default={}),
        secret_files=dict(type="list", elements="str", default=[], no_log=False),
        skills_src=dict(type="path"),
        env=dict(type="dict", default={}, no_log=True),
        db_url=dict(type="str", no_log=True),
        db_password=dict(type="str", no_log=True),
        db_password_file=dict(type="path", no_log=False),
        resources=dict(
            type="dict",
            default={},
            options=dict(memory=dict(type="str", default="2g"), cpus=dict(type="float", default=1.0), pids=dict(type="int", default=512)),
        ),
        uid=dict(type="int", default=1001),
        gid=dict(type="int", default=1001),
        docker_socket=dict(type="bool", default=False),
        allow_dangerous=dict(type="list", elements="str", default=[], choices=sorted(DANGEROUS_SETTINGS)),
        server=dict(type="str"),
        rotate_token=dict(type="bool", default=False, no_log=False),
        rotate_hooks_token=dict(type="bool", default=False, no_log=False),
        purge=dict(type="bool", default=False),
        backup_dir=dict(type="path", default="/var/backups/openclaw"),
        log_max_size=dict(type="str", default="10m"),
        log_max_file=dict(type="int", default=3),
        wait_timeout=dict(type="int", default=120),
        stop_timeout=dict(type="int", default=30),
        services=dict(
            type="dict",
            default={},
            options=dict(
                webhook=dict(
                    type="dict",
                    options=dict(
                        registry_dir=dict(type="path", required=True),
                        group=dict(type="int", required=True),
                        gateway_url=dict(type="str"),
                        app_secret=dict(type="str", no_log=True),
                        default_country_code=dict(type="str"),
                    ),
                ),
                upload=dict(
                    type="dict",
                    options=dict(
                        registry_dir=dict(type="path", required=True),
                        group=dict(type="int", required=True),
                        public_url=dict(type="str", required=True),
                    ),
                ),
            ),
        ),
    )
    module = AnsibleModule(argument_spec=argument_spec, mutually_exclusive=[("db_password", "db_password_file")], supports_check_mode=True)
    params = module.params
    problems = input_problems(params)
    risky, risk_warnings = isolation_findings(params) if params["state"] != "absent" else ([], [])
    problems += risky
    if problems:
        module.fail_json(msg="invalid tenant %s, nothing was changed: %s" % (params["slug"], "; ".join(problems)))
    for warning in risk_warnings:
        module.warn(warning)
    ensure_docker_sdk(module)
    names = derived_names(params["slug"])
    workspace = Workspace(params["clients_dir"], params["slug"], params["uid"], params["gid"], module.check_mode)
    result = dict(
        changed=False,
        state=params["state"],
        port=params["port"],
        recreated=False,
        token_created=False,
        token_adopted=False,
        token_file=workspace.token_path,
        hooks_token_created=False,
        hooks_token_file=workspace.hooks_token_path,
        changes=[],
        workspace=workspace.state,
        container={},
    )
    client = connect(module)
    converger = ContainerConverger(client, module.check_mode, result)
    try:
        if params["state"] == "absent":
            converger.converge(dict(name=names["container"]), "absent", params["stop_timeout"], False, 0)
            if result["actions"]:
                result["changes"].append("remove container %s" % names["container"])
            if params["purge"] and os.path.isdir(workspace.root):
                result["changes"].append("archive and remove %s" % workspace.root)
                result["changed"] = True
                if not module.check_mode:
                    result["archive"] = archive_and_remove(workspace.root, params["backup_dir"], params["slug"])
            register_with_services(params, workspace, {}, None, module.check_mode)
            finish(module, result, workspace)

        image = find_image(client, params["image"])
        if image is None and module.check_mode:
            # A plan for a new server or a new runtime image: the server play builds it first.
            image_id = "(image %s, to be built)" % params["image"]
        elif image is None:
            module.fail_json(msg="image %s is not on the server; the server role builds the runtime image" % params["image"], **result)
        else:
            image_id = image.id
        if params["docker_socket"] and not os.path.exists(DOCKER_SOCKET):
            module.fail_json(msg="docker_socket is true but %s does not exist" % DOCKER_SOCKET, **result)

        workspace.ensure_layout()
        manifest_before = _copy_manifest(workspace)
        token, created = workspace.ensure_token(params["rotate_token"])
        module.no_log_values.add(token)
        result["token_created"] = created
        result["token_adopted"] = workspace.token_adopted
        hooks_token, result["hooks_token_created"] = workspace.ensure_hooks_token(params["rotate_hooks_token"])
        module.no_log_values.add(hooks_token)
        tokens = dict(hooks=hooks_token)
        if params["services"].get("webhook"):
            tokens["leadgen"] = workspace.ensure_secret(LEADGEN_VERIFY_TOKEN_FILE, "Lead Ads verify token")[0]
            result["leadgen_verify_token_file"] = os.path.join(workspace.root, LEADGEN_VERIFY_TOKEN_FILE)
        if params["services"].get("upload"):
            tokens["upload"] = workspace.ensure_secret(UPLOAD_SECRET_FILE, "upload secret")[0]
        module.no_log_values.update(tokens.values())
        workspace.sync_files(params["files"], set(params["secret_files"]))
        if params["skills_src"]:
            workspace.sync_skills(params["skills_src"])
        workspace.save_manifest(manifest_before)

        secrets = dict(params["env"])
        secrets["OPENCLAW_GATEWAY_TOKEN"] = token
        secrets["OPENCLAW_HOOKS_TOKEN"] = hooks_token
        if "upload" in tokens:
            # openclaw-upload-link signs the client's links with the tenant's own key.
            secrets["OPENCLAW_UPLOAD_SECRET"] = tokens["upload"]
            secrets["OPENCLAW_UPLOAD_URL"] = params["services"]["upload"]["public_url"]
        password = None
        if params["db_url"]:
            db_url = params["db_url"]
            if params["db_password"]:
                password = params["db_password"]
                db_url = with_password(db_url, password)
                module.no_log_values.add(db_url)
            elif params["db_password_file"]:
                if module.check_mode and not os.path.exists(params["db_password_file"]):
                    # A new tenant's password is generated with its database; in check mode neither exists yet.
                    password = "(generated with the database)"  # noqa: S105 - a placeholder shown nowhere
                else:
                    password = read_secret_file(module, params["db_password_file"], "db_password_file")
                db_url = with_password(db_url, password)
                module.no_log_values.add(db_url)
            secrets["OPENCLAW_DB_URL"] = db_url
            if password is None and urlsplit(db_url).password:
                password = unquote(urlsplit(db_url).password)
        options = container_params(params, params["gateway_bind"])
        spec = desired_spec(options, image_id, secrets, dict(name=names["container"], role="tenant", tenant=params["slug"]))
        container_state = "stopped" if params["state"] == "stopped" else "started"
        # The token is part of the configuration hash: a new one recreates the container.
        converger.converge(spec, container_state, params["stop_timeout"], True, params["wait_timeout"], probe=gateway_probe(params["port"]))
        result["changes"].extend("%s container %s" % (action, names["container"]) for action in result["actions"])
        # After the container: the services get the tokens the running gateway holds.
        register_with_services(params, workspace, tokens, password, module.check_mode)
    except (WorkspaceError, DockerFailure) as exc:
        result["changes"] = workspace.changes + result["changes"]
        module.fail_json(msg=str(exc), **result)
    finish(module, result, workspace)


def _copy_manifest(workspace):
    return dict(files=dict(workspace.manifest["files"]), skills=dict(workspace.manifest["skills"]))


def finish(module, result, workspace):
    container_diff = result.pop("diff", None)
    # Check mode can predict the same parent directory more than once.
    result["changes"] = list(dict.fromkeys(workspace.changes + result["changes"]))
    if workspace.changes:
        result["changed"] = True
    if module._diff and result["changed"]:
        diffs = list(workspace.diffs)
        if container_diff and result.get("actions"):
            diffs.append(container_diff)
        result["diff"] = diffs
    result.pop("actions", None)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
