# Copyright: openclaw.standalone contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Note that this module util is **PRIVATE** to the collection. It can have
# breaking changes at any time.
"""Input rules shared by the preflight filter and the modules.

Everything a tenant's slug turns into (database, role, container, nginx map key,
host name) is derived here, so one set of rules guarantees that every derived
name is valid where it is used. Functions return lists of problems instead of
raising, so callers can report every problem at once.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
from collections.abc import Mapping

# Names derived from a slug. The longest one bounds the slug length.
DATABASE_NAME = "openclaw_{slug}"
ROLE_NAME = "openclaw_{slug}"
CONTAINER_NAME = "openclaw-{slug}"

POSTGRES_IDENTIFIER_MAX = 63  # NAMEDATALEN - 1, in bytes
DNS_LABEL_MAX = 63
DNS_NAME_MAX = 253

SLUG_MAX = POSTGRES_IDENTIFIER_MAX - max(len(template.format(slug="")) for template in (DATABASE_NAME, ROLE_NAME, CONTAINER_NAME))

# nginx treats these words specially as the first token of a `map` entry.
NGINX_MAP_KEYWORDS = frozenset(("default", "hostnames", "include", "volatile"))

# Server-level settings a tenant's derived names can collide with, and their
# defaults (roles/server, roles/nginx and roles/certificates defaults; a unit
# test keeps the two in step). The reserved slugs of a server are derived from
# the values it is actually configured with, so a renamed component stays protected.
SERVER_DEFAULTS = {
    "openclaw_postgres_container": "openclaw-postgres",
    "openclaw_postgres_volume": "openclaw-pgdata",
    "openclaw_docker_network": "openclaw-net",
    "openclaw_webhook_container": "openclaw-webhook",
    "openclaw_upload_container": "openclaw-upload",
    "openclaw_runtime_image": "openclaw-runtime",
    "openclaw_shared_database": "openclaw",
    "openclaw_postgres_superuser": "postgres",
    "openclaw_webhook_db_role": "openclaw_service_webhook",
    "openclaw_upload_db_role": "openclaw_service_upload",
    "openclaw_clients_dir": "/home/openclaw/clients",
    "openclaw_backup_dir": "/var/backups/openclaw",
    "openclaw_secrets_dir": "/etc/openclaw/secrets",
    "openclaw_server_lib_dir": "/opt/openclaw",
    "openclaw_nginx_site_dir": "/etc/nginx/conf.d",
    "openclaw_nginx_openclaw_dir": "/etc/nginx/openclaw",
    "openclaw_cert_dir": "/etc/openclaw/certs",
    "openclaw_certbot_dir": "/etc/letsencrypt",
}
# Docker object names on a server; a tenant container is openclaw-<slug>.
DOCKER_NAME_SETTINGS = (
    "openclaw_postgres_container",
    "openclaw_postgres_volume",
    "openclaw_docker_network",
    "openclaw_webhook_container",
    "openclaw_upload_container",
)
# PostgreSQL objects of a server; a tenant database and role are openclaw_<slug>.
POSTGRES_NAME_SETTINGS = ("openclaw_shared_database", "openclaw_postgres_superuser", "openclaw_webhook_db_role", "openclaw_upload_db_role")
# Directories of a server; a tenant's workspace is <openclaw_clients_dir>/<slug>.
DIRECTORY_SETTINGS = (
    "openclaw_clients_dir",
    "openclaw_backup_dir",
    "openclaw_secrets_dir",
    "openclaw_server_lib_dir",
    "openclaw_nginx_site_dir",
    "openclaw_nginx_openclaw_dir",
    "openclaw_cert_dir",
    "openclaw_certbot_dir",
)
# Directories the tenants' workspaces must stay apart from (root-owned, or secret).
SEPARATE_DIRECTORIES = ("openclaw_clients_dir", "openclaw_backup_dir", "openclaw_secrets_dir", "openclaw_server_lib_dir")

# Always reserved, whatever the configuration: names of the platform's own
# host services that operators recognise in `docker ps` and the workspace tree.
FIXED_COMPONENT_NAMES = frozenset(("nginx", "backup"))

_SLUG_CHARS = re.compile(r"[a-z0-9-]+")


def component_reservations(settings):
    """{slug: reason} for every slug whose derived names are taken by a server setting.

    ``settings`` maps setting name to value as the server is configured (missing
    names are not checked). A tenant slug S derives the container openclaw-S,
    the database and role openclaw_S and the workspace <openclaw_clients_dir>/S.
    """
    reserved = {}
    container_prefix = CONTAINER_NAME.format(slug="")
    postgres_prefixes = sorted({DATABASE_NAME.format(slug=""), ROLE_NAME.format(slug="")})

    def claim(slug, why):
        # A candidate that is no valid slug anyway (openclaw_service_webhook) needs no entry.
        if _SLUG_CHARS.fullmatch(slug) and slug not in reserved:
            reserved[slug] = why

    for name in DOCKER_NAME_SETTINGS:
        value = settings.get(name)
        if isinstance(value, str) and value.startswith(container_prefix):
            claim(value[len(container_prefix) :], "%s is the server's %s" % (value, name))
    image = settings.get("openclaw_runtime_image")
    if isinstance(image, str):
        repository = image.rsplit("/", 1)[-1]
        if repository.startswith(container_prefix):
            claim(repository[len(container_prefix) :], "%s is the server's openclaw_runtime_image" % repository)
    for name in POSTGRES_NAME_SETTINGS:
        value = settings.get(name)
        for prefix in postgres_prefixes:
            if isinstance(value, str) and value.startswith(prefix):
                claim(value[len(prefix) :], "%s is the server's %s (PostgreSQL)" % (value, name))
    clients = settings.get("openclaw_clients_dir")
    if isinstance(clients, str) and clients.startswith("/"):
        base = posixpath.normpath(clients).rstrip("/") + "/"
        for name in DIRECTORY_SETTINGS:
            value = settings.get(name)
            if name == "openclaw_clients_dir" or not isinstance(value, str) or not value.startswith("/"):
                continue
            path = posixpath.normpath(value)
            if path.startswith(base):
                first = path[len(base) :].split("/", 1)[0]
                claim(first, "the workspace %s%s would be (or hold) the server's %s %s" % (base, first, name, path))
    return reserved


# Reasons for the slugs every server reserves with its default configuration.
_RESERVED_REASONS = {
    **{slug: "the name of a server component (%s)" % CONTAINER_NAME.format(slug=slug) for slug in FIXED_COMPONENT_NAMES},
    **{slug: "the name of a server component (%s)" % why for slug, why in component_reservations(SERVER_DEFAULTS).items()},
    **{word: "an nginx map keyword" for word in NGINX_MAP_KEYWORDS},
}
SERVER_COMPONENT_NAMES = frozenset(FIXED_COMPONENT_NAMES | set(component_reservations(SERVER_DEFAULTS)))
RESERVED_SLUGS = NGINX_MAP_KEYWORDS | SERVER_COMPONENT_NAMES

TENANT_STATES = ("present", "started", "stopped", "absent")

PORT_MIN = 1024
POSTGRES_PUBLISHED_PORT = 5435
PORT_MAX = 65535

_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?")
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_DIGITS = re.compile(r"[0-9]+")


class Problem:
    """One broken rule: where it is (host, variable), which rule, and why."""

    __slots__ = ("detail", "host", "rule", "variable")

    def __init__(self, host, variable, rule, detail):
        self.host = host
        self.variable = variable
        self.rule = rule
        self.detail = detail

    def as_dict(self):
        return {"host": self.host, "variable": self.variable, "rule": self.rule, "detail": self.detail}

    def __str__(self):
        where = self.variable if self.host is None else "%s: %s" % (self.host, self.variable)
        return "%s: %s (rule: %s)" % (where, self.detail, self.rule)

    def __repr__(self):
        return "Problem(%r, %r, %r, %r)" % (self.host, self.variable, self.rule, self.detail)

    def __eq__(self, other):
        return isinstance(other, Problem) and self.as_dict() == other.as_dict()

    def __hash__(self):
        return hash((self.host, self.variable, self.rule, self.detail))


def _show(value):
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def slug_problems(slug, variable="openclaw_slug", host=None, reserved=RESERVED_SLUGS):
    """Rules for a tenant slug.

    A slug is a DNS label that is also usable, unquoted and unambiguously, as
    part of a PostgreSQL identifier, a Docker container name and an nginx map key.
    """
    problems = []

    def bad(rule, detail):
        problems.append(Problem(host, variable, rule, detail))

    if not isinstance(slug, str):
        bad("slug-type", "must be a string, got %s %s" % (type(slug).__name__, _show(slug)))
        return problems
    if not slug:
        bad("slug-empty", "must not be empty")
        return problems
    if len(slug) > SLUG_MAX:
        bad(
            "slug-length",
            "%s is %d characters; at most %d so that %s fits PostgreSQL's %d-byte identifier limit"
            % (_show(slug), len(slug), SLUG_MAX, DATABASE_NAME.format(slug="<slug>"), POSTGRES_IDENTIFIER_MAX),
        )
    if not _SLUG_CHARS.fullmatch(slug):
        bad(
            "slug-charset",
            "%s may contain only lowercase letters a-z, digits and '-' (no upper case, '_', '.', spaces or quotes)" % _show(slug),
        )
        return problems
    if not slug[0].isalpha():
        bad("slug-start", "%s must start with a letter a-z" % _show(slug))
    if slug.endswith("-"):
        bad("slug-end", "%s must end with a letter or digit (DNS label)" % _show(slug))
    if "--" in slug:
        bad("slug-double-hyphen", "%s must not contain '--' (reserved for IDNA labels, starts an SQL comment)" % _show(slug))
    if slug in reserved:
        why = reserved[slug] if isinstance(reserved, Mapping) and reserved[slug] else _RESERVED_REASONS.get(slug, "listed in openclaw_reserved_slugs")
        bad("slug-reserved", "%s is reserved: %s" % (_show(slug), why))
    return problems


def derived_names(slug):
    """Names the collection derives from a (valid) slug."""
    return {
        "slug": slug,
        "database": DATABASE_NAME.format(slug=slug),
        "role": ROLE_NAME.format(slug=slug),
        "container": CONTAINER_NAME.format(slug=slug),
    }


def port_problems(port, variable="openclaw_port", host=None, minimum=PORT_MIN):
    """A host TCP port: by default, for a tenant gateway, an unprivileged port number."""
    if isinstance(port, bool) or not isinstance(port, (int, str)):
        return [Problem(host, variable, "port-type", "must be an integer, got %s %s" % (type(port).__name__, _show(port)))]
    if isinstance(port, str):
        if not _DIGITS.fullmatch(port):
            return [Problem(host, variable, "port-type", "must be an integer, got %s" % _show(port))]
        port = int(port)
    if not minimum <= port <= PORT_MAX:
        return [Problem(host, variable, "port-range", "%d is outside %d-%d" % (port, minimum, PORT_MAX))]
    return []


def as_port(port):
    """The integer value of a port that passed port_problems()."""
    return int(port)


def domain_problems(domain, variable="openclaw_domain", host=None, longest_slug=0):
    """A DNS name under which tenants are served as <slug>.<domain>."""
    problems = []

    def bad(rule, detail):
        problems.append(Problem(host, variable, rule, detail))

    if not isinstance(domain, str):
        bad("domain-type", "must be a string, got %s %s" % (type(domain).__name__, _show(domain)))
        return problems
    if not domain:
        bad("domain-empty", "must not be empty")
        return problems
    if domain != domain.lower():
        bad("domain-case", "%s must be lower case" % _show(domain))
        domain = domain.lower()
    if domain.endswith("."):
        bad("domain-trailing-dot", "%s must not end with '.'" % _show(domain))
        return problems
    labels = domain.split(".")
    if len(labels) < 2:
        bad("domain-labels", "%s needs at least two labels (for example example.com)" % _show(domain))
    for label in labels:
        if not label:
            bad("domain-label-empty", "%s has an empty label" % _show(domain))
        elif len(label) > DNS_LABEL_MAX:
            bad("domain-label-length", "label %s is longer than %d characters" % (_show(label), DNS_LABEL_MAX))
        elif not _LABEL.fullmatch(label):
            bad(
                "domain-label-charset",
                "label %s may contain only a-z, 0-9 and '-', not at the start or end" % _show(label),
            )
    if labels[-1] and _DIGITS.fullmatch(labels[-1]):
        bad("domain-tld", "%s: the last label must not be numeric" % _show(domain))
    full = len(domain) + (longest_slug + 1 if longest_slug else 0)
    if full > DNS_NAME_MAX:
        bad(
            "domain-length",
            "%s is too long: <slug>.<domain> would be %d characters, at most %d" % (_show(domain), full, DNS_NAME_MAX),
        )
    return problems


def phone_problems(phone, variable="phone", host=None):
    """A phone number in E.164 form: '+', country code, subscriber number, 7-15 digits."""
    if not isinstance(phone, str):
        return [Problem(host, variable, "phone-type", "must be a string, got %s %s" % (type(phone).__name__, _show(phone)))]
    if not _E164.fullmatch(phone):
        return [
            Problem(
                host,
                variable,
                "phone-e164",
                "%s is not E.164: '+' followed by 7-15 digits, the first not 0, no spaces" % _show(phone),
            )
        ]
    return []


def state_problems(state, variable="openclaw_tenant_state", host=None):
    if state not in TENANT_STATES:
        return [Problem(host, variable, "state-choice", "%s is not one of %s" % (_show(state), ", ".join(TENANT_STATES)))]
    return []


def _get(hostvars, host, name, default=None):
    host_vars = hostvars.get(host) if isinstance(hostvars, Mapping) else None
    if host_vars is None:
        return default
    try:
        return host_vars.get(name, default) if isinstance(host_vars, Mapping) else default
    except Exception:  # noqa: BLE001  # pylint: disable=broad-exception-caught
        # An undefined template inside an inventory value surfaces when read.
        return default


class _Unset:
    def __repr__(self):
        return "<unset>"


UNSET = _Unset()


POSTGRES_MODES = ("container", "external")
# libpq's sslmode values; the two that check the server's certificate need its CA.
POSTGRES_SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
POSTGRES_SSL_VERIFYING = ("verify-ca", "verify-full")
GATEWAY_BINDS = ("loopback", "lan")
# Secrets a shared service cannot run safely without (the seed shipped guessable defaults).
SERVICE_SECRETS = {
    "webhook": ("openclaw_waba_verify_token", "openclaw_waba_app_secret"),
    "upload": (),
}
CERT_PROVIDERS = {
    # provider: settings it cannot work without
    "self_signed": (),
    "hook": ("openclaw_cert_auth_hook", "openclaw_cert_cleanup_hook"),
    "rfc2136": ("openclaw_cert_rfc2136_server", "openclaw_cert_rfc2136_name", "openclaw_cert_rfc2136_secret"),
    "cloudflare": ("openclaw_cert_cloudflare_api_token",),
}


def server_setting_problems(hostvars, server, secrets=True):
    """Server settings whose absence would only show half-way through a converge."""
    problems = []

    def missing(name):
        return secrets or name not in SECRET_SETTINGS

    mode = _get(hostvars, server, "openclaw_postgres_mode", "container")
    if mode not in POSTGRES_MODES:
        problems.append(Problem(server, "openclaw_postgres_mode", "postgres-mode", "%s is not one of %s" % (_show(mode), ", ".join(POSTGRES_MODES))))
    elif mode == "external" and _get(hostvars, server, "openclaw_postgres_host", None) in (None, ""):
        problems.append(Problem(server, "openclaw_postgres_host", "postgres-external", "is required with openclaw_postgres_mode external"))
    if mode == "external" and missing("openclaw_postgres_password") and _get(hostvars, server, "openclaw_postgres_password", None) in (None, ""):
        problems.append(
            Problem(server, "openclaw_postgres_password", "postgres-external", "is required with openclaw_postgres_mode external (set it from the vault)")
        )
    sslmode = _get(hostvars, server, "openclaw_postgres_sslmode", "verify-full" if mode == "external" else "disable")
    if sslmode not in POSTGRES_SSL_MODES:
        problems.append(
            Problem(server, "openclaw_postgres_sslmode", "postgres-sslmode", "%s is not one of %s" % (_show(sslmode), ", ".join(POSTGRES_SSL_MODES)))
        )
    elif sslmode in POSTGRES_SSL_VERIFYING and _get(hostvars, server, "openclaw_postgres_ssl_rootcert", None) in (None, ""):
        problems.append(
            Problem(
                server,
                "openclaw_postgres_ssl_rootcert",
                "postgres-ssl-rootcert",
                "is required with openclaw_postgres_sslmode %s: the CA file on the server that signed PostgreSQL's certificate" % sslmode,
            )
        )
    bind = _get(hostvars, server, "openclaw_runtime_gateway_bind", "loopback")
    if bind not in GATEWAY_BINDS:
        problems.append(Problem(server, "openclaw_runtime_gateway_bind", "gateway-bind", "%s is not one of %s" % (_show(bind), ", ".join(GATEWAY_BINDS))))
    for service, names in SERVICE_SECRETS.items():
        if _get(hostvars, server, "openclaw_%s_port" % service, None) is None:
            continue
        for name in names:
            if missing(name) and _get(hostvars, server, name, None) in (None, ""):
                problems.append(Problem(server, name, "service-secret", "is required when the %s service runs (openclaw_%s_port is set)" % (service, service)))
    provider = _get(hostvars, server, "openclaw_cert_provider", "self_signed")
    if provider not in CERT_PROVIDERS:
        problems.append(
            Problem(server, "openclaw_cert_provider", "cert-provider", "%s is not one of %s" % (_show(provider), ", ".join(sorted(CERT_PROVIDERS))))
        )
    else:
        for name in CERT_PROVIDERS[provider]:
            if missing(name) and _get(hostvars, server, name, None) in (None, ""):
                problems.append(Problem(server, name, "cert-provider-setting", "is required with openclaw_cert_provider %s" % provider))
    return problems


# --- Server-level values that end up in shell scripts, config files and Docker calls.

_DOCKER_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}")
_PATH_CHARS = re.compile(r"[A-Za-z0-9._/-]+")
_IMAGE_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE_REGISTRY = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]{1,5})?/)"
_IMAGE_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_IMAGE_REPOSITORY = re.compile(r"%s?%s(?:/%s)*" % (_IMAGE_REGISTRY, _IMAGE_COMPONENT, _IMAGE_COMPONENT))
_IMAGE_REFERENCE = re.compile(r"%s?%s(?:/%s)*(?::%s)?(?:@sha256:[a-f0-9]{64})?" % (_IMAGE_REGISTRY, _IMAGE_COMPONENT, _IMAGE_COMPONENT, _IMAGE_TAG))
_TAG = re.compile(_IMAGE_TAG)
_VERSION = re.compile(r"[0-9]+(?:\.[0-9]+){1,3}(?:-[0-9A-Za-z][0-9A-Za-z.]*)?")
_HOST_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")
_DOCKER_HOST = re.compile(r"unix://(/[A-Za-z0-9._/-]+)|(?:tcp|ssh)://(?:[A-Za-z0-9._-]+@)?[A-Za-z0-9.-]+(?::[0-9]{1,5})?")
_DOCKER_SIZE = re.compile(r"[1-9][0-9]*[bkmgBKMG]?")
_NGINX_SIZE = re.compile(r"[0-9]+[kKmMgG]?")
_API_VERSION = re.compile(r"v[0-9]{1,3}\.[0-9]{1,3}")


def _string(value, rule, variable, host):
    if isinstance(value, str):
        return []
    return [Problem(host, variable, rule, "must be a string, got %s %s" % (type(value).__name__, _show(value)))]


def _matching(pattern, rule, explanation, allow_empty=False):
    def check(value, variable, host):
        if allow_empty and value in ("", None):
            return []
        found = _string(value, rule, variable, host)
        if found:
            return found
        if not pattern.fullmatch(value):
            return [Problem(host, variable, rule, "%s %s" % (_show(value), explanation))]
        return []

    return check


def absolute_path_problems(value, variable, host=None):
    """A directory or file on the server: absolute, normalised, no characters a shell or config file treats specially."""
    found = _string(value, "path", variable, host)
    if found:
        return found
    if not value.startswith("/") or value.startswith("//"):
        return [Problem(host, variable, "path-absolute", "%s must be an absolute path" % _show(value))]
    if value == "/" or posixpath.normpath(value) != value:
        return [Problem(host, variable, "path-normalised", "%s must be a normalised path below / (no '.', '..', '//' or trailing '/')" % _show(value))]
    if not _PATH_CHARS.fullmatch(value) or len(value) > 1024:
        return [
            Problem(
                host, variable, "path-charset", "%s may contain only A-Z, a-z, 0-9, '.', '_', '-' and '/' (no spaces, quotes, '$' or newlines)" % _show(value)
            )
        ]
    return []


def _port_from(minimum):
    def check(value, variable, host):
        return port_problems(value, variable=variable, host=host, minimum=minimum)

    return check


def _positive_int(value, variable, host):
    if isinstance(value, bool) or not isinstance(value, (int, str)) or (isinstance(value, str) and not _DIGITS.fullmatch(value)) or int(value) < 1:
        return [Problem(host, variable, "positive-integer", "%s must be a whole number of at least 1" % _show(value))]
    return []


def _listen_address(value, variable, host):
    if value in ("", None):
        return []
    found = _string(value, "listen-address", variable, host)
    if found:
        return found
    text = value[1:-1] if value.startswith("[") and value.endswith("]") else value
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return [Problem(host, variable, "listen-address", "%s is not an IP address (or empty for every interface)" % _show(value))]
    if address.version == 6 and text == value:
        return [Problem(host, variable, "listen-address", "%s: write an IPv6 address in brackets, as nginx expects ([%s])" % (_show(value), text))]
    return []


def _postgres_host(allow_empty):
    def check(value, variable, host):
        if allow_empty and value in ("", None):
            return []
        found = _string(value, "postgres-host", variable, host)
        if found:
            return found
        try:
            ipaddress.ip_address(value)
            return []
        except ValueError:
            pass
        if not _HOST_NAME.fullmatch(value) or ".." in value:
            return [Problem(host, variable, "postgres-host", "%s is not a host name or IP address" % _show(value))]
        return []

    return check


def _domain(value, variable, host):
    return domain_problems(value, variable=variable, host=host)


def _database(value, variable, host):
    return [Problem(host, variable, problem.rule, problem.detail) for problem in database_name_problems(value, "shared", variable=variable)]


def _role(value, variable, host):
    return [Problem(host, variable, problem.rule, problem.detail) for problem in role_name_problems(value, variable=variable)]


_docker_name = _matching(
    _DOCKER_NAME, "docker-name", "is not a Docker name: 1-63 characters of a-z, A-Z, 0-9, '_', '.' and '-', starting with a letter or digit"
)
_image_reference = _matching(_IMAGE_REFERENCE, "image-reference", "is not a Docker image reference ([registry/]name[:tag][@sha256:digest], lower case)")

# Setting name -> rule. A setting is checked wherever the inventory sets it
# (server, tenant or group_vars/all); a role default is valid by construction.
SETTING_RULES = {
    "openclaw_domain": _domain,
    **{name: _docker_name for name in DOCKER_NAME_SETTINGS},
    **{name: absolute_path_problems for name in DIRECTORY_SETTINGS},
    "openclaw_nginx_binary": absolute_path_problems,
    "openclaw_nginx_main_conf": absolute_path_problems,
    "openclaw_nginx_certificate": absolute_path_problems,
    "openclaw_nginx_certificate_key": absolute_path_problems,
    "openclaw_cert_deploy_hook_path": absolute_path_problems,
    "openclaw_runtime_image": _matching(_IMAGE_REPOSITORY, "image-repository", "is not a Docker image repository ([registry/]name, lower case, without a tag)"),
    "openclaw_runtime_tag": _matching(_TAG, "image-tag", "is not a Docker tag (1-128 characters of A-Z, a-z, 0-9, '_', '.' and '-')"),
    "openclaw_version": _matching(_VERSION, "version", "is not a release version such as 2026.2.17 (quote it in YAML)"),
    "openclaw_postgres_image": _image_reference,
    "openclaw_runtime_base_image": _image_reference,
    "openclaw_webhook_image": _matching(_IMAGE_REFERENCE, "image-reference", "is not a Docker image reference", allow_empty=True),
    "openclaw_upload_image": _matching(_IMAGE_REFERENCE, "image-reference", "is not a Docker image reference", allow_empty=True),
    "openclaw_shared_database": _database,
    "openclaw_postgres_superuser": _role,
    "openclaw_webhook_db_role": _role,
    "openclaw_upload_db_role": _role,
    "openclaw_postgres_host": _postgres_host(allow_empty=False),
    "openclaw_postgres_tenant_host": _postgres_host(allow_empty=True),
    "openclaw_postgres_tenant_port": _port_from(1),
    "openclaw_nginx_http_port": _port_from(1),
    "openclaw_nginx_https_port": _port_from(1),
    "openclaw_nginx_status_port": _port_from(1),
    "openclaw_nginx_listen_address": _listen_address,
    "openclaw_docker_host": _matching(_DOCKER_HOST, "docker-host", "is not unix:///<absolute path>, tcp://<host>:<port> or ssh://[user@]<host>"),
    "openclaw_postgres_shm_size": _matching(_DOCKER_SIZE, "size", "is not a Docker size such as 256m"),
    "openclaw_nginx_upload_max_body": _matching(_NGINX_SIZE, "size", "is not an nginx size such as 500M"),
    "openclaw_nginx_proxy_read_timeout": _positive_int,
    "openclaw_nginx_map_hash_bucket_size": _positive_int,
    "openclaw_nginx_map_hash_max_size": _positive_int,
    "openclaw_meta_graph_api_version": _matching(_API_VERSION, "api-version", "is not a Graph API version such as v21.0"),
    "openclaw_graph_api_version": _matching(_API_VERSION, "api-version", "is not a Graph API version such as v21.0"),
}
# Ports a server listens on besides the tenant gateways (nginx's public ones only matter when equal).
NGINX_PORT_DEFAULTS = {"openclaw_nginx_http_port": 80, "openclaw_nginx_https_port": 443, "openclaw_nginx_status_port": 18999}


def setting_problems(name, value, host=None):
    """Problems of one server-level setting (an unknown name has none)."""
    rule = SETTING_RULES.get(name)
    return rule(value, name, host) if rule else []


def _effective(hostvars, server, tenant=None):
    """Server settings as the server role sees them; with ``tenant``, as that tenant's role sees them."""
    settings = {}
    for name, default in SERVER_DEFAULTS.items():
        value = _get(hostvars, server, name, UNSET) if server is not None else UNSET
        if value is UNSET and tenant is not None:
            value = _get(hostvars, tenant, name, UNSET)
        settings[name] = default if value is UNSET else value
    return settings


def directory_overlap_problems(settings, host=None):
    """Tenant workspaces, backups, secrets and the server's own files live in separate trees."""
    problems = []
    paths = {}
    for name in SEPARATE_DIRECTORIES:
        value = settings.get(name)
        if isinstance(value, str) and not absolute_path_problems(value, name):
            paths[name] = value
    names = sorted(paths)
    for index, first in enumerate(names):
        for second in names[index + 1 :]:
            a, b = paths[first], paths[second]
            if a == b or b.startswith(a + "/") or a.startswith(b + "/"):
                problems.append(
                    Problem(
                        host, second, "directory-overlap", "%s and %s (%s) must not be the same directory or inside each other" % (_show(b), first, _show(a))
                    )
                )
    return problems


# --- Tenant settings that remove the isolation of a tenant: refused unless opted into by name.

DANGEROUS_OPT_IN = "openclaw_tenant_allow_dangerous"
DANGEROUS_SETTINGS = {
    "root_uid": "the gateway runs as root (uid or gid 0): a prompt-injected agent is root in its container",
    "docker_socket": "the host's Docker socket is mounted: the agent is root on the server and sees every tenant",
    "unlimited_resources": "no (or an absurdly high) memory, CPU or process limit: one agent can starve every tenant on the server",
}
TENANT_DEFAULTS = {
    "openclaw_tenant_uid": 1001,
    "openclaw_tenant_gid": 1001,
    "openclaw_tenant_docker_socket": False,
    "openclaw_tenant_memory": "2g",
    "openclaw_tenant_cpus": 1.0,
    "openclaw_tenant_pids": 512,
}
# Limits above these are treated as no limit at all.
MEMORY_MIN = 6 * 1024**2  # Docker refuses less
MEMORY_MAX = 256 * 1024**3
CPUS_MAX = 64.0
PIDS_MAX = 32768
ID_MAX = 2**31 - 1

_MEMORY = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*([bkmg]?)b?", re.IGNORECASE)
_MEMORY_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
_TRUE = (True, 1, "true", "True", "TRUE", "yes", "Yes", "on", "1")
_FALSE = (False, 0, "false", "False", "FALSE", "no", "No", "off", "0", None, "")


def _number(value):
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def tenant_risk_findings(values, host=None):
    """(problems, risks) of a tenant's isolation settings.

    ``values`` maps setting name to value (role defaults where unset). Problems
    are malformed values; risks are (opt-in name, variable, detail) of settings
    that are valid but remove part of the tenant's isolation.
    """
    problems, risks = [], []
    for name in ("openclaw_tenant_uid", "openclaw_tenant_gid"):
        value = values[name]
        number = _number(value)
        if number is None or number != int(number) or not 0 <= number <= ID_MAX:
            problems.append(Problem(host, name, "id-range", "%s must be a whole number in 0-%d" % (_show(value), ID_MAX)))
        elif number == 0:
            risks.append(("root_uid", name, "is 0 (root)"))
    socket = values["openclaw_tenant_docker_socket"]
    if socket in _TRUE:
        risks.append(("docker_socket", "openclaw_tenant_docker_socket", "is true"))
    elif socket not in _FALSE:
        problems.append(Problem(host, "openclaw_tenant_docker_socket", "boolean", "%s must be true or false" % _show(socket)))

    memory = values["openclaw_tenant_memory"]
    match = _MEMORY.fullmatch(memory.strip()) if isinstance(memory, str) else None
    if isinstance(memory, (int, float)) and not isinstance(memory, bool):
        size = memory
    elif match:
        size = float(match.group(1)) * _MEMORY_UNITS[match.group(2).lower()]
    else:
        size = None
    if memory in (None, "") or (size is not None and size <= 0) or (isinstance(memory, str) and memory.strip().startswith("-")):
        risks.append(("unlimited_resources", "openclaw_tenant_memory", "%s means no memory limit" % _show(memory)))
    elif size is None:
        problems.append(Problem(host, "openclaw_tenant_memory", "memory-format", "%s is not a size such as 2g or 512m" % _show(memory)))
    elif size < MEMORY_MIN:
        problems.append(Problem(host, "openclaw_tenant_memory", "memory-range", "%s is below Docker's minimum of 6m" % _show(memory)))
    elif size > MEMORY_MAX:
        risks.append(("unlimited_resources", "openclaw_tenant_memory", "%s is above %dg, which is no limit" % (_show(memory), MEMORY_MAX // 1024**3)))

    cpus = values["openclaw_tenant_cpus"]
    number = _number(cpus)
    if cpus in (None, "") or (number is not None and number <= 0):
        risks.append(("unlimited_resources", "openclaw_tenant_cpus", "%s means no CPU limit" % _show(cpus)))
    elif number is None:
        problems.append(Problem(host, "openclaw_tenant_cpus", "cpus-format", "%s is not a number of CPUs such as 1.0" % _show(cpus)))
    elif number > CPUS_MAX:
        risks.append(("unlimited_resources", "openclaw_tenant_cpus", "%s is above %d, which is no limit" % (_show(cpus), CPUS_MAX)))

    pids = values["openclaw_tenant_pids"]
    number = _number(pids)
    if pids in (None, "") or (number is not None and number <= 0):
        risks.append(("unlimited_resources", "openclaw_tenant_pids", "%s means no process limit" % _show(pids)))
    elif number is None or number != int(number):
        problems.append(Problem(host, "openclaw_tenant_pids", "pids-format", "%s is not a whole number of processes such as 512" % _show(pids)))
    elif number > PIDS_MAX:
        risks.append(("unlimited_resources", "openclaw_tenant_pids", "%s is above %d, which is no limit" % (_show(pids), PIDS_MAX)))
    return problems, risks


def dangerous_findings(hostvars, tenant):
    """(problems, warnings) of one tenant's isolation settings and its opt-ins."""
    values = {name: _get(hostvars, tenant, name, default) for name, default in TENANT_DEFAULTS.items()}
    problems, risks = tenant_risk_findings(values, host=tenant)
    warnings = []
    allowed = _get(hostvars, tenant, DANGEROUS_OPT_IN, None)
    if allowed in (None, ""):
        allowed = []
    if not isinstance(allowed, (list, tuple)) or not all(isinstance(item, str) for item in allowed):
        problems.append(Problem(tenant, DANGEROUS_OPT_IN, "dangerous-opt-in", "must be a list of %s, got %s" % (", ".join(DANGEROUS_SETTINGS), _show(allowed))))
        allowed = []
    for item in allowed:
        if item not in DANGEROUS_SETTINGS:
            problems.append(Problem(tenant, DANGEROUS_OPT_IN, "dangerous-opt-in", "%s is not one of %s" % (_show(item), ", ".join(DANGEROUS_SETTINGS))))
    for opt_in, variable, detail in risks:
        what = "%s: %s" % (detail, DANGEROUS_SETTINGS[opt_in])
        if opt_in in allowed:
            warnings.append(Problem(tenant, variable, "dangerous-" + opt_in.replace("_", "-"), "%s; allowed by %s" % (what, DANGEROUS_OPT_IN)))
        else:
            problems.append(
                Problem(tenant, variable, "dangerous-" + opt_in.replace("_", "-"), "%s; refused unless %s lists %s" % (what, DANGEROUS_OPT_IN, opt_in))
            )
    return problems, warnings


# A tenant's agent can read its own environment, so a secret there is the
# tenant's. Ansible cannot tell where a value was set; one value on two or
# more tenants is what a group-level setting (or a copy-paste) looks like,
# and is refused unless each of those tenants opts in.
TENANT_OWN_SECRETS = ("openclaw_anthropic_api_key", "openclaw_telegram_bot_token")
SHARE_SECRETS_OPT_IN = "openclaw_tenant_share_group_secrets"
PLATFORM_SECRETS = {"openclaw_platform_anthropic_api_key": "openclaw_anthropic_api_key"}


def shared_secret_findings(hostvars, tenants):
    """(problems, warnings): tenant secrets several tenants hold, and platform secrets a tenant gets."""
    problems, warnings = [], []
    opted_in = {tenant: _get(hostvars, tenant, SHARE_SECRETS_OPT_IN, False) in (True, "true", "True", "yes", 1) for tenant in tenants}
    for name in TENANT_OWN_SECRETS:
        holders = {}
        for tenant in tenants:
            value = _get(hostvars, tenant, name, None)
            if isinstance(value, str) and value:
                holders.setdefault(value, []).append(tenant)
        for owners in holders.values():
            if len(owners) < 2:
                continue
            for owner in owners:
                others = ", ".join(other for other in owners if other != owner)
                detail = "the same value is set for %s (a group-level setting?); each tenant's agent can read and spend it" % others
                if opted_in[owner]:
                    warnings.append(Problem(owner, name, "tenant-secret-shared", "%s; allowed by %s" % (detail, SHARE_SECRETS_OPT_IN)))
                else:
                    problems.append(
                        Problem(owner, name, "tenant-secret-shared", "%s; set it per tenant in host_vars, or set %s: true" % (detail, SHARE_SECRETS_OPT_IN))
                    )
    for tenant in tenants:
        for platform, own in PLATFORM_SECRETS.items():
            if not opted_in[tenant] or _get(hostvars, tenant, own, None) not in (None, "") or _get(hostvars, tenant, platform, None) in (None, ""):
                continue
            detail = "the platform's key is passed to this tenant's agent, which can read and spend it (%s)" % SHARE_SECRETS_OPT_IN
            warnings.append(Problem(tenant, platform, "tenant-secret-shared", detail))
    return problems, warnings


# Secrets: with secrets=False (a plan without the vault) their presence is not checked.
SECRET_SETTINGS = frozenset(
    (
        "openclaw_postgres_password",
        "openclaw_cert_rfc2136_secret",
        "openclaw_cert_cloudflare_api_token",
        *(name for names in SERVICE_SECRETS.values() for name in names),
    )
)


def inventory_findings(hostvars, groups, server_group="openclaw_servers", tenant_group="openclaw_tenants", secrets=True):
    """(problems, warnings) of a whole inventory, each in a stable order.

    ``hostvars`` maps host name to its variables; ``groups`` maps group name to
    host names (Ansible's ``hostvars`` and ``groups``). Warnings are dangerous
    settings a tenant opted into. With ``secrets=False`` (a plan run without
    the vault) the presence of secrets is not checked.
    """
    problems, warnings = [], []
    servers = list(groups.get(server_group) or [])
    tenants = list(groups.get(tenant_group) or [])

    if not servers:
        problems.append(Problem(None, "groups.%s" % server_group, "servers-empty", "the inventory defines no server"))

    for host in sorted(set(servers) & set(tenants)):
        problems.append(Problem(host, "groups", "host-role", "is in both %s and %s; a host is a server or a tenant" % (server_group, tenant_group)))

    ports_by_server = {}
    slug_owner = {}
    server_values = {}
    server_reserved = {}

    def publish(server, port, host, variable):
        ports_by_server.setdefault(server, {}).setdefault(as_port(port), []).append((host, variable))

    for server in servers:
        problems.extend(server_setting_problems(hostvars, server, secrets=secrets))
        values = server_values[server] = {}
        for name in SETTING_RULES:
            value = _get(hostvars, server, name, UNSET)
            if value is not UNSET:
                values[name] = value
                problems.extend(setting_problems(name, value, host=server))
        settings = _effective(hostvars, server)
        problems.extend(directory_overlap_problems(settings, host=server))
        server_reserved[server] = component_reservations(settings)
        for name in ("openclaw_postgres_port", "openclaw_webhook_port", "openclaw_upload_port", *NGINX_PORT_DEFAULTS):
            value = _get(hostvars, server, name, NGINX_PORT_DEFAULTS.get(name, UNSET))
            if value is UNSET and name == "openclaw_postgres_port" and _get(hostvars, server, "openclaw_postgres_mode", "container") == "container":
                value = POSTGRES_PUBLISHED_PORT  # the server role's default, published on this host
            if value is UNSET:
                continue
            found = port_problems(value, variable=name, host=server, minimum=1 if name in NGINX_PORT_DEFAULTS else PORT_MIN)
            if name not in NGINX_PORT_DEFAULTS:
                problems.extend(found)  # the nginx ports are checked with the settings
            if not found:
                publish(server, value, server, name)

    for tenant in tenants:
        server = _get(hostvars, tenant, "openclaw_server", UNSET)
        known_server = server if server in servers else None

        # Server-level settings a tenant sets itself (or group_vars/all sets for
        # every host): reported on the server when it has the same value.
        for name in SETTING_RULES:
            if name == "openclaw_domain":
                continue
            value = _get(hostvars, tenant, name, UNSET)
            if value is UNSET or (known_server is not None and server_values[known_server].get(name, UNSET) == value):
                continue
            problems.extend(setting_problems(name, value, host=tenant))

        slug = _get(hostvars, tenant, "openclaw_slug", tenant)
        reserved = dict(_RESERVED_REASONS)
        if known_server is not None:
            reserved.update(server_reserved[known_server])
            reserved.update(component_reservations(_effective(hostvars, known_server, tenant)))
        for word in _get(hostvars, tenant, "openclaw_reserved_slugs", ()) or ():
            reserved.setdefault(word, "listed in openclaw_reserved_slugs")
        found = slug_problems(slug, host=tenant, reserved=reserved)
        problems.extend(found)
        if not found:
            slug_owner.setdefault(slug, []).append(tenant)

        state = _get(hostvars, tenant, "openclaw_tenant_state", "present")
        problems.extend(state_problems(state, host=tenant))

        if server is UNSET or server in (None, ""):
            problems.append(Problem(tenant, "openclaw_server", "server-required", "is not set; name the server host in %s" % server_group))
        elif known_server is None:
            problems.append(Problem(tenant, "openclaw_server", "server-unknown", "%s is not a host in group %s" % (_show(server), server_group)))

        port = _get(hostvars, tenant, "openclaw_port", UNSET)
        if port is UNSET:
            problems.append(Problem(tenant, "openclaw_port", "port-required", "is not set; every tenant needs a gateway host port"))
        else:
            found = port_problems(port, host=tenant)
            problems.extend(found)
            if not found and known_server is not None:
                publish(known_server, port, tenant, "openclaw_port")

        domain = _get(hostvars, tenant, "openclaw_domain", UNSET)
        if domain is UNSET:
            problems.append(Problem(tenant, "openclaw_domain", "domain-required", "is not set; tenants are served as <slug>.<domain>"))
        else:
            problems.extend(domain_problems(domain, host=tenant, longest_slug=len(slug) if isinstance(slug, str) else 0))

        phone = _get(hostvars, tenant, "openclaw_waba_phone_number", UNSET)
        if phone not in (UNSET, None, ""):
            problems.extend(phone_problems(phone, variable="openclaw_waba_phone_number", host=tenant))

        found, warned = dangerous_findings(hostvars, tenant)
        problems.extend(found)
        warnings.extend(warned)

    if secrets:  # compares the secrets' values, which a plan without the vault does not have
        found, warned = shared_secret_findings(hostvars, tenants)
        problems.extend(found)
        warnings.extend(warned)

    for slug, owners in sorted(slug_owner.items()):
        if len(owners) > 1:
            for owner in owners:
                others = ", ".join(o for o in owners if o != owner)
                problems.append(Problem(owner, "openclaw_slug", "slug-unique", "%s is also the slug of %s" % (_show(slug), others)))

    for server in sorted(ports_by_server):
        for port, users in sorted(ports_by_server[server].items()):
            if len(users) > 1:
                for host, variable in users:
                    others = ", ".join("%s (%s)" % user for user in users if user != (host, variable))
                    problems.append(Problem(host, variable, "port-unique", "%d on server %s is also used by %s" % (port, server, others)))

    return problems, warnings


def inventory_problems(hostvars, groups, server_group="openclaw_servers", tenant_group="openclaw_tenants", secrets=True):
    """Every problem of a whole inventory, in a stable order (see inventory_findings)."""
    return inventory_findings(hostvars, groups, server_group=server_group, tenant_group=tenant_group, secrets=secrets)[0]


def inventory_warnings(hostvars, groups, server_group="openclaw_servers", tenant_group="openclaw_tenants", secrets=True):
    """Dangerous settings tenants opted into (see inventory_findings)."""
    return inventory_findings(hostvars, groups, server_group=server_group, tenant_group=tenant_group, secrets=secrets)[1]


_PLAIN_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")
_ROLE_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_-]*")


def database_name_problems(name, schema, variable="name"):
    """Tenant databases are openclaw_<valid slug>; the shared one is a plain lower-case identifier."""
    if not isinstance(name, str) or not name:
        return [Problem(None, variable, "database-name", "must be a non-empty string, got %s" % _show(name))]
    if schema == "tenant":
        prefix = DATABASE_NAME.format(slug="")
        if not name.startswith(prefix):
            return [Problem(None, variable, "database-name", "%s: a tenant database is named %s" % (_show(name), DATABASE_NAME.format(slug="<slug>")))]
        return [
            Problem(None, variable, problem.rule, "%s: the slug %s" % (_show(name), problem.detail))
            for problem in slug_problems(name[len(prefix) :], variable=variable, reserved=NGINX_MAP_KEYWORDS)
        ]
    if len(name.encode("utf-8")) > POSTGRES_IDENTIFIER_MAX or not _PLAIN_IDENTIFIER.fullmatch(name):
        return [
            Problem(
                None,
                variable,
                "database-name",
                "%s must be 1-%d characters of a-z, 0-9 and '_', not starting with a digit" % (_show(name), POSTGRES_IDENTIFIER_MAX),
            )
        ]
    return []


def role_name_problems(name, variable="owner"):
    """A PostgreSQL role the collection creates: lower case, no quotes, not pg_*."""
    if not isinstance(name, str) or not name:
        return [Problem(None, variable, "role-name", "must be a non-empty string, got %s" % _show(name))]
    if len(name.encode("utf-8")) > POSTGRES_IDENTIFIER_MAX or not _ROLE_IDENTIFIER.fullmatch(name) or "--" in name:
        return [
            Problem(
                None,
                variable,
                "role-name",
                "%s must be 1-%d characters of a-z, 0-9, '_' and '-', starting with a letter or '_'" % (_show(name), POSTGRES_IDENTIFIER_MAX),
            )
        ]
    if name.startswith("pg_"):
        return [Problem(None, variable, "role-name", "%s: names starting with pg_ are reserved by PostgreSQL" % _show(name))]
    return []
