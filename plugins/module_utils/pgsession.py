# Copyright: openclaw.standalone contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Note that this module util is **PRIVATE** to the collection. It can have
# breaking changes at any time.
"""PostgreSQL session rules shared by the modules and the tenant runtime's commands.

Imports nothing but the standard library: the commands in the tenant's image
(``openclaw-lead``, ``openclaw-capi``) run without ansible.
"""

from __future__ import annotations

# Session setting for every connection that runs as an administrator inside a
# database a tenant owns: only the system catalog is searched (pg_temp last, and
# never for functions or operators), so no tenant object in "public" or a schema
# named after a role can shadow a name the connection uses. Sent in the startup
# packet, it takes precedence over ALTER DATABASE/ROLE ... SET search_path.
PINNED_SEARCH_PATH = "-c search_path=pg_catalog,pg_temp"


def error_text(exc):
    """PostgreSQL's own message for an error, without the client's decoration."""
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    return primary or str(exc).strip()
