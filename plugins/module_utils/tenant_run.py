# Copyright: openclaw.standalone contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Note that this module util is **PRIVATE** to the collection. It can have
# breaking changes at any time.
"""Converging one tenant's gateway: workspace, tokens, skills, container, service registrations.

Shared by openclaw_tenant (one tenant) and openclaw_tenants (every tenant of a
server in one run). Nothing here ends the module: a failure raises
TenantFailure with what was done so far, and the caller reports it.
"""

from __future__ import annotations

import os
from http.client import HTTPException
from urllib.error import HTTPError
from urllib.parse import quote, unquote, urlsplit, urlunsplit
from urllib.request import ProxyHandler, build_opener

from ansible_collections.openclaw.standalone.plugins.module_utils.batch import ConvergeFailure
from ansible_collections.openclaw.standalone.plugins.module_utils.containers import ContainerConverger, desired_spec
from ansible_collections.openclaw.standalone.plugins.module_utils.docker_common import (
    LABEL_SERVER,
    DockerFailure,
    find_image,
)
from ansible_collections.openclaw.standalone.plugins.module_utils.secret_files import SecretFileError, load_secret_file
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


class TenantFailure(ConvergeFailure):
    """One tenant could not be converged; ``result`` holds what was done before the failure."""


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
    if params["health_interval"] < 1:
        problems.append("health_interval: %d is not a whole number of seconds of at least 1" % params["health_interval"])
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
        # Every check is a docker exec (about 60 ms of CPU on a 2-core server):
        # the engine runs tenants / interval of them each second, so a server
        # with many tenants needs a longer interval. Start-up is detected by
        # the module's own probe of the published port, not by the first check.
        healthcheck=dict(test=HEALTHCHECK, interval=params["health_interval"], timeout=10, retries=3, start_period=60),
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


def tenant_argument_spec():
    """One tenant's options; openclaw_tenant takes them at the top level, openclaw_tenants once per tenant."""
    return dict(
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
        health_interval=dict(type="int", default=30),
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


def tenant_problems(params):
    """(problems, warnings) of one tenant's options, before anything is touched."""
    problems = input_problems(params)
    risky, risk_warnings = isolation_findings(params) if params["state"] != "absent" else ([], [])
    return problems + risky, risk_warnings


def converge_tenant(params, client, check, hide, diff=False):
    """Converge one tenant as ``params`` say (already checked by tenant_problems); returns the result.

    Raises TenantFailure with the partial result. ``hide`` registers a secret
    (a token, a password) so it is masked in every output.
    """
    names = derived_names(params["slug"])
    workspace = Workspace(params["clients_dir"], params["slug"], params["uid"], params["gid"], check)
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
    converger = ContainerConverger(client, check, result)
    try:
        if params["state"] == "absent":
            converger.converge(dict(name=names["container"]), "absent", params["stop_timeout"], False, 0)
            if result["actions"]:
                result["changes"].append("remove container %s" % names["container"])
            if params["purge"] and os.path.isdir(workspace.root):
                result["changes"].append("archive and remove %s" % workspace.root)
                result["changed"] = True
                if not check:
                    result["archive"] = archive_and_remove(workspace.root, params["backup_dir"], params["slug"])
            register_with_services(params, workspace, {}, None, check)
            return finish(result, workspace, diff)

        image = find_image(client, params["image"])
        if image is None and check:
            # A plan for a new server or a new runtime image: the server play builds it first.
            image_id = "(image %s, to be built)" % params["image"]
        elif image is None:
            raise TenantFailure("image %s is not on the server; the server role builds the runtime image" % params["image"], result)
        else:
            image_id = image.id
        if params["docker_socket"] and not os.path.exists(DOCKER_SOCKET):
            raise TenantFailure("docker_socket is true but %s does not exist" % DOCKER_SOCKET, result)

        workspace.ensure_layout()
        manifest_before = _copy_manifest(workspace)
        token, created = workspace.ensure_token(params["rotate_token"])
        hide(token)
        result["token_created"] = created
        result["token_adopted"] = workspace.token_adopted
        hooks_token, result["hooks_token_created"] = workspace.ensure_hooks_token(params["rotate_hooks_token"])
        hide(hooks_token)
        tokens = dict(hooks=hooks_token)
        if params["services"].get("webhook"):
            tokens["leadgen"] = workspace.ensure_secret(LEADGEN_VERIFY_TOKEN_FILE, "Lead Ads verify token")[0]
            result["leadgen_verify_token_file"] = os.path.join(workspace.root, LEADGEN_VERIFY_TOKEN_FILE)
        if params["services"].get("upload"):
            tokens["upload"] = workspace.ensure_secret(UPLOAD_SECRET_FILE, "upload secret")[0]
        for value in tokens.values():
            hide(value)
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
                hide(db_url)
            elif params["db_password_file"]:
                if check and not os.path.exists(params["db_password_file"]):
                    # A new tenant's password is generated with its database; in check mode neither exists yet.
                    password = "(generated with the database)"  # noqa: S105 - a placeholder shown nowhere
                else:
                    password = load_secret_file(params["db_password_file"], "db_password_file")
                    hide(password)
                db_url = with_password(db_url, password)
                hide(db_url)
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
        register_with_services(params, workspace, tokens, password, check)
    except (WorkspaceError, DockerFailure, SecretFileError) as exc:
        result["changes"] = workspace.changes + result["changes"]
        raise TenantFailure(str(exc), result) from exc
    return finish(result, workspace, diff)


def _copy_manifest(workspace):
    return dict(files=dict(workspace.manifest["files"]), skills=dict(workspace.manifest["skills"]))


def finish(result, workspace, diff):
    container_diff = result.pop("diff", None)
    # Check mode can predict the same parent directory more than once.
    result["changes"] = list(dict.fromkeys(workspace.changes + result["changes"]))
    if workspace.changes:
        result["changed"] = True
    if diff and result["changed"]:
        diffs = list(workspace.diffs)
        if container_diff and result.get("actions"):
            diffs.append(container_diff)
        result["diff"] = diffs
    result.pop("actions", None)
    return result
