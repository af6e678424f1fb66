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

# Slugs whose derived container, network or volume name would collide with the
# server's own components (openclaw-postgres, openclaw-net, ...).
SERVER_COMPONENT_NAMES = frozenset(("postgres", "pgdata", "net", "runtime", "webhook", "upload", "nginx", "backup"))

RESERVED_SLUGS = NGINX_MAP_KEYWORDS | SERVER_COMPONENT_NAMES

TENANT_STATES = ("present", "started", "stopped", "absent")

PORT_MIN = 1024
POSTGRES_PUBLISHED_PORT = 5435
PORT_MAX = 65535

_SLUG_CHARS = re.compile(r"[a-z0-9-]+")
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
        if slug in NGINX_MAP_KEYWORDS:
            why = "an nginx map keyword"
        elif slug in SERVER_COMPONENT_NAMES:
            why = "the name of a server component (%s)" % CONTAINER_NAME.format(slug=slug)
        else:
            why = "listed in openclaw_reserved_slugs"
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


def port_problems(port, variable="openclaw_port", host=None):
    """A host TCP port for a tenant gateway: an unprivileged port number."""
    if isinstance(port, bool) or not isinstance(port, (int, str)):
        return [Problem(host, variable, "port-type", "must be an integer, got %s %s" % (type(port).__name__, _show(port)))]
    if isinstance(port, str):
        if not _DIGITS.fullmatch(port):
            return [Problem(host, variable, "port-type", "must be an integer, got %s" % _show(port))]
        port = int(port)
    if not PORT_MIN <= port <= PORT_MAX:
        return [Problem(host, variable, "port-range", "%d is outside %d-%d" % (port, PORT_MIN, PORT_MAX))]
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
GATEWAY_BINDS = ("loopback", "lan")
# Secrets a shared service cannot run safely without (the seed shipped guessable defaults).
SERVICE_SECRETS = {
    "webhook": ("openclaw_fb_webhook_verify_token", "openclaw_waba_verify_token", "openclaw_waba_app_secret"),
    "upload": (),
}
CERT_PROVIDERS = {
    # provider: settings it cannot work without
    "self_signed": (),
    "hook": ("openclaw_cert_auth_hook", "openclaw_cert_cleanup_hook"),
    "rfc2136": ("openclaw_cert_rfc2136_server", "openclaw_cert_rfc2136_name", "openclaw_cert_rfc2136_secret"),
    "cloudflare": ("openclaw_cert_cloudflare_api_token",),
}


def server_setting_problems(hostvars, server):
    """Server settings whose absence would only show half-way through a converge."""
    problems = []
    mode = _get(hostvars, server, "openclaw_postgres_mode", "container")
    if mode not in POSTGRES_MODES:
        problems.append(Problem(server, "openclaw_postgres_mode", "postgres-mode", "%s is not one of %s" % (_show(mode), ", ".join(POSTGRES_MODES))))
    elif mode == "external" and _get(hostvars, server, "openclaw_postgres_host", None) in (None, ""):
        problems.append(Problem(server, "openclaw_postgres_host", "postgres-external", "is required with openclaw_postgres_mode external"))
    if mode == "external" and _get(hostvars, server, "openclaw_postgres_password", None) in (None, ""):
        problems.append(
            Problem(server, "openclaw_postgres_password", "postgres-external", "is required with openclaw_postgres_mode external (set it from the vault)")
        )
    bind = _get(hostvars, server, "openclaw_runtime_gateway_bind", "loopback")
    if bind not in GATEWAY_BINDS:
        problems.append(Problem(server, "openclaw_runtime_gateway_bind", "gateway-bind", "%s is not one of %s" % (_show(bind), ", ".join(GATEWAY_BINDS))))
    for service, secrets in SERVICE_SECRETS.items():
        if _get(hostvars, server, "openclaw_%s_port" % service, None) is None:
            continue
        if not (_get(hostvars, server, "openclaw_%s_image" % service, "") or _get(hostvars, server, "openclaw_%s_build_context" % service, "")):
            problems.append(
                Problem(
                    server,
                    "openclaw_%s_image" % service,
                    "service-source",
                    "openclaw_%s_port is set, so the %s service runs: set openclaw_%s_image or openclaw_%s_build_context"
                    % (service, service, service, service),
                )
            )
        for name in secrets:
            if _get(hostvars, server, name, None) in (None, ""):
                problems.append(Problem(server, name, "service-secret", "is required when the %s service runs (openclaw_%s_port is set)" % (service, service)))
    provider = _get(hostvars, server, "openclaw_cert_provider", "self_signed")
    if provider not in CERT_PROVIDERS:
        problems.append(
            Problem(server, "openclaw_cert_provider", "cert-provider", "%s is not one of %s" % (_show(provider), ", ".join(sorted(CERT_PROVIDERS))))
        )
    else:
        for name in CERT_PROVIDERS[provider]:
            if _get(hostvars, server, name, None) in (None, ""):
                problems.append(Problem(server, name, "cert-provider-setting", "is required with openclaw_cert_provider %s" % provider))
    return problems


def inventory_problems(hostvars, groups, server_group="openclaw_servers", tenant_group="openclaw_tenants"):
    """Every problem of a whole inventory, in a stable order.

    ``hostvars`` maps host name to its variables; ``groups`` maps group name to
    host names (Ansible's ``hostvars`` and ``groups``).
    """
    problems = []
    servers = list(groups.get(server_group) or [])
    tenants = list(groups.get(tenant_group) or [])

    if not servers:
        problems.append(Problem(None, "groups.%s" % server_group, "servers-empty", "the inventory defines no server"))

    for host in sorted(set(servers) & set(tenants)):
        problems.append(Problem(host, "groups", "host-role", "is in both %s and %s; a host is a server or a tenant" % (server_group, tenant_group)))

    ports_by_server = {}
    slug_owner = {}
    valid_slugs = []

    for server in servers:
        problems.extend(server_setting_problems(hostvars, server))
        for name in ("openclaw_postgres_port", "openclaw_webhook_port", "openclaw_upload_port"):
            value = _get(hostvars, server, name, UNSET)
            if value is UNSET and name == "openclaw_postgres_port" and _get(hostvars, server, "openclaw_postgres_mode", "container") == "container":
                value = POSTGRES_PUBLISHED_PORT  # the server role's default, published on this host
            if value is UNSET:
                continue
            found = port_problems(value, variable=name, host=server)
            problems.extend(found)
            if not found:
                ports_by_server.setdefault(server, {}).setdefault(as_port(value), []).append((server, name))

    for tenant in tenants:
        slug = _get(hostvars, tenant, "openclaw_slug", tenant)
        found = slug_problems(slug, host=tenant, reserved=RESERVED_SLUGS | frozenset(_get(hostvars, tenant, "openclaw_reserved_slugs", ()) or ()))
        problems.extend(found)
        if not found:
            valid_slugs.append(slug)
            slug_owner.setdefault(slug, []).append(tenant)

        state = _get(hostvars, tenant, "openclaw_tenant_state", "present")
        problems.extend(state_problems(state, host=tenant))

        server = _get(hostvars, tenant, "openclaw_server", UNSET)
        if server is UNSET or server in (None, ""):
            problems.append(Problem(tenant, "openclaw_server", "server-required", "is not set; name the server host in %s" % server_group))
        elif server not in servers:
            problems.append(Problem(tenant, "openclaw_server", "server-unknown", "%s is not a host in group %s" % (_show(server), server_group)))

        port = _get(hostvars, tenant, "openclaw_port", UNSET)
        if port is UNSET:
            problems.append(Problem(tenant, "openclaw_port", "port-required", "is not set; every tenant needs a gateway host port"))
        else:
            found = port_problems(port, host=tenant)
            problems.extend(found)
            if not found and server in servers:
                ports_by_server.setdefault(server, {}).setdefault(as_port(port), []).append((tenant, "openclaw_port"))

        domain = _get(hostvars, tenant, "openclaw_domain", UNSET)
        if domain is UNSET:
            problems.append(Problem(tenant, "openclaw_domain", "domain-required", "is not set; tenants are served as <slug>.<domain>"))
        else:
            problems.extend(domain_problems(domain, host=tenant, longest_slug=len(slug) if isinstance(slug, str) else 0))

        phone = _get(hostvars, tenant, "openclaw_waba_phone_number", UNSET)
        if phone not in (UNSET, None, ""):
            problems.extend(phone_problems(phone, variable="openclaw_waba_phone_number", host=tenant))

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

    return problems


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
