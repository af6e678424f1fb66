#!/usr/bin/python
# Copyright: openclaw.standalone contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: openclaw_waba_mapping
short_description: Ensure a tenant's WhatsApp Business number is routed to it in the shared database
version_added: 0.1.0
description:
  - Keeps the row of C(waba_phone_mapping) (shared database) for one WhatsApp Business phone number id - the
    tenant it belongs to and the number's app secret, which the webhook service needs to check signatures.
  - Tokens are not stored, only their fingerprints (C(sha256:) and the hex SHA-256) - C(waba_access_token)
    for the access token (the webhook only tests that there is one) and C(gateway_token_sha256) for the
    tenant's gateway token. C(gateway_token) stays NULL (shared migration V002), so nobody who can read the
    table can call a tenant's gateway or the Graph API with what it finds there.
  - The gateway token is read from the tenant's token file on the server, so it never passes through the
    controller, and a rotated token changes the fingerprint on the next converge.
  - Only changed columns are written; secrets are compared but never returned or shown in a diff.
  - A number id already mapped to another tenant is refused, not taken over.
author: OpenClaw Standalone maintainers (@openclaw-standalone)
extends_documentation_fragment:
  - openclaw.standalone.attributes
  - openclaw.standalone.postgres
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  idempotent:
    support: full
options:
  database:
    description:
      - The shared database.
    type: str
    default: openclaw
  slug:
    description:
      - The tenant the number belongs to.
    type: str
    required: true
  waba_phone_id:
    description:
      - WhatsApp Business phone number id (digits), the key of the mapping.
    type: str
    required: true
  phone_number:
    description:
      - The phone number in international format (C(+) and digits).
    type: str
  business_account_id:
    description:
      - WhatsApp Business account id.
    type: str
  access_token:
    description:
      - Access token for the number (secret); only its fingerprint is stored.
    type: str
  app_secret:
    description:
      - App secret used to check webhook signatures (secret).
    type: str
  gateway_token_file:
    description:
      - The tenant's gateway token file on the server; only the token's fingerprint is stored.
    type: path
  state:
    description:
      - V(present) keeps the row active and up to date; V(absent) deactivates it (the row is kept for the record).
    type: str
    choices: [present, absent]
    default: present
"""

EXAMPLES = r"""
- name: Route aliya's WhatsApp Business number to her gateway
  openclaw.standalone.openclaw_waba_mapping:
    slug: aliya
    waba_phone_id: "1234567890"
    phone_number: "+77011234567"
    business_account_id: "9876543210"
    access_token: "{{ vault_aliya_waba_access_token }}"
    app_secret: "{{ vault_aliya_waba_app_secret }}"
    gateway_token_file: /home/openclaw/clients/aliya/gateway_token
    login_port: 5435
    login_password_file: /etc/openclaw/secrets/postgres_password
"""

RETURN = r"""
changed_columns:
  description: Columns that were (or in check mode would be) written. Secret columns are named, never shown.
  returned: always
  type: list
  elements: str
  sample: [gateway_token_sha256, is_active]
created:
  description: Whether the row was (or would be) created.
  returned: always
  type: bool
"""

import hashlib
import re

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.openclaw.standalone.plugins.module_utils.postgres import (
    POSTGRES_MUTUALLY_EXCLUSIVE,
    ConnectionFailure,
    connect,
    ensure_psycopg2,
    error_text,
    postgres_common_argument_spec,
    psycopg2,
    resolve_login_password,
    sql,
)
from ansible_collections.openclaw.standalone.plugins.module_utils.secret_files import read_secret_file
from ansible_collections.openclaw.standalone.plugins.module_utils.validation import phone_problems, slug_problems

SECRET_COLUMNS = ("waba_access_token", "waba_app_secret", "gateway_token_sha256")
COLUMNS = ("slug", "phone_number", "waba_business_account_id", "waba_access_token", "waba_app_secret", "gateway_token_sha256", "is_active")
DIGITS = re.compile(r"[0-9]{5,32}")


def input_problems(params):
    problems = [str(problem) for problem in slug_problems(params["slug"], variable="slug")]
    if not DIGITS.fullmatch(params["waba_phone_id"] or ""):
        problems.append("waba_phone_id must be 5-32 digits, got %r" % params["waba_phone_id"])
    if params["phone_number"]:
        problems.extend(str(problem) for problem in phone_problems(params["phone_number"], variable="phone_number"))
    if params["business_account_id"] and not DIGITS.fullmatch(params["business_account_id"]):
        problems.append("business_account_id must be 5-32 digits, got %r" % params["business_account_id"])
    return problems


def fingerprint(secret):
    """What the shared database keeps of a token: enough to see that it is there and when it changes."""
    return None if secret is None else "sha256:" + hashlib.sha256(secret.encode("utf-8")).hexdigest()


def desired_row(module):
    params = module.params
    row = dict(slug=params["slug"], is_active=params["state"] == "present")
    if params["state"] == "present":
        row.update(
            phone_number=params["phone_number"],
            waba_business_account_id=params["business_account_id"],
            waba_access_token=fingerprint(params["access_token"]),
            waba_app_secret=params["app_secret"],
        )
        if params["gateway_token_file"]:
            row["gateway_token_sha256"] = fingerprint(read_secret_file(module, params["gateway_token_file"], "gateway_token_file"))
    return row


def identifiers(columns):
    return sql.SQL(", ").join(sql.Identifier(column) for column in columns)


def shown(column, value):
    if value is None:
        return "null"
    return "(secret)" if column in SECRET_COLUMNS else str(value)


def main():
    argument_spec = postgres_common_argument_spec()
    argument_spec.update(
        database=dict(type="str", default="openclaw"),
        slug=dict(type="str", required=True),
        waba_phone_id=dict(type="str", required=True),
        phone_number=dict(type="str"),
        business_account_id=dict(type="str"),
        access_token=dict(type="str", no_log=True),
        app_secret=dict(type="str", no_log=True),
        gateway_token_file=dict(type="path", no_log=False),
        state=dict(type="str", default="present", choices=["present", "absent"]),
    )
    module = AnsibleModule(argument_spec=argument_spec, mutually_exclusive=POSTGRES_MUTUALLY_EXCLUSIVE, supports_check_mode=True)
    problems = input_problems(module.params)
    if problems:
        module.fail_json(msg="invalid WABA mapping, nothing was changed: " + "; ".join(problems))
    ensure_psycopg2(module)
    resolve_login_password(module)
    params = module.params
    wanted = desired_row(module)
    result = dict(changed=False, changed_columns=[], created=False)
    try:
        conn = connect(params, dbname=params["database"])
    except ConnectionFailure as exc:
        module.fail_json(msg=str(exc), **result)
    try:
        with conn, conn.cursor() as cur:
            # Row lock: two converges of one tenant must not interleave their updates.
            cur.execute(
                sql.SQL("SELECT {} FROM public.waba_phone_mapping WHERE waba_phone_id = %s FOR UPDATE").format(identifiers(COLUMNS)),
                (params["waba_phone_id"],),
            )
            found = cur.fetchone()
            current = dict(zip(COLUMNS, found)) if found else None
            if current is None:
                if params["state"] == "absent":
                    module.exit_json(**result)
                result.update(changed=True, created=True, changed_columns=sorted(column for column, value in wanted.items() if value is not None))
                if not module.check_mode:
                    columns = ["waba_phone_id", *list(wanted)]
                    cur.execute(
                        sql.SQL("INSERT INTO public.waba_phone_mapping ({}) VALUES ({})").format(
                            identifiers(columns), sql.SQL(", ").join(sql.Placeholder() * len(columns))
                        ),
                        [params["waba_phone_id"], *list(wanted.values())],
                    )
            else:
                if current["slug"] != params["slug"] and current["is_active"]:
                    module.fail_json(
                        msg="waba_phone_id %s is mapped to tenant %s; deactivate it there first (state=absent) before mapping it to %s"
                        % (params["waba_phone_id"], current["slug"], params["slug"]),
                        **result,
                    )
                changes = {column: value for column, value in wanted.items() if current.get(column) != value}
                result["changed_columns"] = sorted(changes)
                if changes:
                    result["changed"] = True
                    if module._diff:
                        result["diff"] = dict(
                            before="".join("%s: %s\n" % (column, shown(column, current[column])) for column in sorted(changes)),
                            after="".join("%s: %s\n" % (column, shown(column, changes[column])) for column in sorted(changes)),
                            before_header="waba_phone_mapping %s" % params["waba_phone_id"],
                            after_header="waba_phone_mapping %s" % params["waba_phone_id"],
                        )
                    if not module.check_mode:
                        assignments = sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(column)) for column in changes)
                        cur.execute(
                            sql.SQL("UPDATE public.waba_phone_mapping SET {}, updated_at = now() WHERE waba_phone_id = %s").format(assignments),
                            [*list(changes.values()), params["waba_phone_id"]],
                        )
            if module.check_mode:
                conn.rollback()
    except psycopg2.Error as exc:
        module.fail_json(msg="cannot update waba_phone_mapping in %s: %s" % (params["database"], error_text(exc)), **result)
    finally:
        conn.close()
    module.exit_json(**result)


if __name__ == "__main__":
    main()
