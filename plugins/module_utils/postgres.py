# Copyright: openclaw.standalone contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Note that this module util is **PRIVATE** to the collection. It can have
# breaking changes at any time.
"""PostgreSQL connection options and helpers shared by the collection's modules."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import traceback

from ansible.module_utils.basic import missing_required_lib

# PINNED_SEARCH_PATH and error_text live where the tenant runtime's commands,
# which run without ansible, can import them; re-exported for the modules.
from ansible_collections.openclaw.standalone.plugins.module_utils.pgsession import PINNED_SEARCH_PATH, error_text  # noqa: F401  # pylint: disable=unused-import
from ansible_collections.openclaw.standalone.plugins.module_utils.secret_files import read_secret_file  # re-exported

try:
    import psycopg2
    import psycopg2.errors
    import psycopg2.extensions
    import psycopg2.extras
    from psycopg2 import sql  # pylint: disable=unused-import  # re-exported to the other module utils
except ImportError:
    HAS_PSYCOPG2 = False
    PSYCOPG2_IMPORT_ERROR = traceback.format_exc()
    psycopg2 = None
    sql = None
else:
    HAS_PSYCOPG2 = True
    PSYCOPG2_IMPORT_ERROR = None


# libpq's sslmode values, weakest first.
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


def postgres_common_argument_spec():
    """Connection options; documented in the openclaw.standalone.postgres doc fragment."""
    return dict(
        login_host=dict(type="str", default="127.0.0.1"),
        login_port=dict(type="int", default=5432),
        login_user=dict(type="str", default="postgres"),
        login_password=dict(type="str", no_log=True),
        login_password_file=dict(type="path", no_log=False),
        login_db=dict(type="str", default="postgres"),
        connect_timeout=dict(type="int", default=10),
        ssl_mode=dict(type="str", default="prefer", choices=list(SSL_MODES)),
        ssl_rootcert=dict(type="path"),
    )


POSTGRES_MUTUALLY_EXCLUSIVE = [("login_password", "login_password_file")]


def resolve_login_password(module):
    """Fill login_password from login_password_file, so the secret never leaves the managed host."""
    if module.params.get("login_password_file"):
        module.params["login_password"] = read_secret_file(module, module.params["login_password_file"], "login_password_file")


def ensure_psycopg2(module):
    if not HAS_PSYCOPG2:
        module.fail_json(
            msg=missing_required_lib("psycopg2", reason="to talk to PostgreSQL") + " On Debian: apt-get install python3-psycopg2.",
            exception=PSYCOPG2_IMPORT_ERROR,
        )


class ConnectionFailure(Exception):
    """The server could not be reached or refused the login; the message says which."""


def connect(params, dbname=None, autocommit=False, user=None, password=None, options=None):
    """A psycopg2 connection from the module's login_* options; ``options`` are libpq's (e.g. PINNED_SEARCH_PATH)."""
    kwargs = dict(
        host=params["login_host"],
        port=params["login_port"],
        user=user or params["login_user"],
        dbname=dbname or params["login_db"],
        connect_timeout=params["connect_timeout"],
        sslmode=params.get("ssl_mode") or "prefer",
        application_name="openclaw.standalone",
    )
    if params.get("ssl_rootcert"):
        kwargs["sslrootcert"] = params["ssl_rootcert"]
    if options:
        kwargs["options"] = options
    secret = params.get("login_password") if password is None else password
    if secret:
        kwargs["password"] = secret
    try:
        conn = psycopg2.connect(**kwargs)
    except psycopg2.OperationalError as exc:
        raise ConnectionFailure(
            "unable to connect to database %s on %s:%s as %s (%s): %s"
            % (kwargs["dbname"], kwargs["host"], kwargs["port"], kwargs["user"], tls_settings(kwargs), str(exc).strip())
        ) from exc
    conn.autocommit = autocommit
    return conn


def tls_settings(kwargs):
    """The TLS settings of a connection attempt, for its failure message: a refused certificate names its CA file."""
    text = "sslmode %s" % kwargs["sslmode"]
    if kwargs.get("sslrootcert"):
        text += ", CA file %s" % kwargs["sslrootcert"]
    return text


# psycopg2 can produce password verifiers but not check one; the SCRAM-SHA-256
# check below follows RFC 5802/7677 so the modules can tell whether a role's
# password already matches without logging in as that role (which pg_hba.conf
# may not even allow from here) and without ever reading the password back.
def scram_verifier_matches(verifier, password):
    try:
        method, rest = verifier.split("$", 1)
        iterations_salt, keys = rest.split("$", 1)
        iterations, salt_b64 = iterations_salt.split(":", 1)
        stored_key_b64, server_key_b64 = keys.split(":", 1)
    except (AttributeError, ValueError):
        return False
    if method != "SCRAM-SHA-256":
        return False
    salted = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), base64.b64decode(salt_b64), int(iterations))
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    return hmac.compare_digest(stored_key, base64.b64decode(stored_key_b64)) and hmac.compare_digest(server_key, base64.b64decode(server_key_b64))


def scram_verifier(password, iterations=4096, salt=None):
    """A SCRAM-SHA-256 verifier for ``password``, in pg_authid's format.

    Sending the verifier instead of the password keeps the password out of
    pg_stat_activity and the server log (log_statement=ddl).
    """
    salt = os.urandom(16) if salt is None else salt
    salted = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    stored_key = hashlib.sha256(hmac.new(salted, b"Client Key", hashlib.sha256).digest()).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    salt_b64, stored_b64, server_b64 = (base64.b64encode(raw).decode("ascii") for raw in (salt, stored_key, server_key))
    return "SCRAM-SHA-256$%d:%s$%s:%s" % (iterations, salt_b64, stored_b64, server_b64)


def password_verifier_matches(verifier, role, password):
    """Whether pg_authid.rolpassword ``verifier`` is for ``password`` (SCRAM or md5)."""
    if not verifier:
        return False
    if verifier.startswith("md5"):
        expected = "md5" + hashlib.md5((password + role).encode("utf-8")).hexdigest()  # noqa: S324 - PostgreSQL's md5 format
        return hmac.compare_digest(expected, verifier)
    return scram_verifier_matches(verifier, password)
