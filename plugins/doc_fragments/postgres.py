# Copyright: openclaw.standalone contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Note that this doc fragment is **PRIVATE** to the collection. It can have
# breaking changes at any time.

from __future__ import annotations


class ModuleDocFragment:
    # Connection options shared by every module that talks to PostgreSQL.
    DOCUMENTATION = r"""
options:
  login_host:
    description:
      - Host of the PostgreSQL server. A path starting with V(/) is a Unix socket directory.
    type: str
    default: 127.0.0.1
  login_port:
    description:
      - Port of the PostgreSQL server. The server role publishes the shared server on V(5435).
    type: int
    default: 5432
  login_user:
    description:
      - Role to connect as. It must be a superuser - managing role passwords reads C(pg_authid), and
        migrations create extensions such as C(pgcrypto).
    type: str
    default: postgres
  login_password:
    description:
      - Password of O(login_user).
      - Mutually exclusive with O(login_password_file).
    type: str
  login_password_file:
    description:
      - File on the managed host holding the password of O(login_user) (for example one the server role
        generated). The password is read there and never passes through the controller.
      - Mutually exclusive with O(login_password).
    type: path
  login_db:
    description:
      - Database to connect to for server-wide work (creating or dropping the target database).
    type: str
    default: postgres
  connect_timeout:
    description:
      - Seconds to wait for a connection before failing.
    type: int
    default: 10
  ssl_mode:
    description:
      - libpq C(sslmode) for the connection.
      - V(verify-full) encrypts and checks that the server's certificate is signed by the CA in O(ssl_rootcert)
        and names O(login_host); use it for any server reached over a network. V(verify-ca) checks the CA only.
      - V(require) encrypts without checking who answers, so it does not stop an active man in the middle.
      - V(prefer) and V(allow) fall back to plain text without saying so; V(disable) never encrypts (for a
        server on the loopback interface, such as the server role's PostgreSQL container).
      - The collection's roles always pass this from C(openclaw_postgres_sslmode).
    type: str
    default: prefer
    choices: [disable, allow, prefer, require, verify-ca, verify-full]
  ssl_rootcert:
    description:
      - File on the managed host with the CA certificate(s) the server's certificate must be signed by
        (libpq C(sslrootcert)), for O(ssl_mode=verify-ca) and O(ssl_mode=verify-full).
      - Unset - libpq's default, C(~/.postgresql/root.crt) of the user the module runs as.
    type: path
requirements:
  - psycopg2 on the managed host (Debian package C(python3-psycopg2)).
notes:
  - Passwords are sent to PostgreSQL as SCRAM-SHA-256 verifiers computed on the managed host, never as plain
    text, so they do not show in C(pg_stat_activity) or the server log.
  - Identifiers are always quoted with C(psycopg2.sql.Identifier) and values passed as
    query parameters; names that break the collection's naming rules are refused before
    connecting.
"""
