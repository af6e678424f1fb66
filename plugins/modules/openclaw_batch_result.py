#!/usr/bin/python
# Copyright: openclaw.standalone contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: openclaw_batch_result
short_description: Report one tenant's share of a run made once for all the tenants of its server
version_added: 0.4.0
description:
  - Modules such as M(openclaw.standalone.openclaw_tenant_databases) converge every tenant of a server in one run,
    registered on one tenant. This action reports, on each tenant, that tenant's entry of the run - its C(changed),
    C(failed), C(msg), C(diff) and other fields - so the play recap, C(--diff) and failures stay per tenant.
  - A run that failed as a whole (or was skipped) fails every tenant that reports from it, with the run's message.
  - Runs on the controller only; nothing is sent to the server.
author: OpenClaw Standalone maintainers (@openclaw-standalone)
extends_documentation_fragment:
  - openclaw.standalone.attributes
attributes:
  action:
    support: full
    description: Indicates this has a corresponding action plugin so some parts of the options can be executed on the controller.
  check_mode:
    support: full
    details: Reports what the run reported, which in check mode is its prediction.
  diff_mode:
    support: full
    details: Reports the entry's own diff.
  idempotent:
    support: full
options:
  run:
    description:
      - The registered result of the server's run.
    type: dict
    required: true
  field:
    description:
      - The field of O(run) that holds one entry per tenant (V(databases) for
        M(openclaw.standalone.openclaw_tenant_databases)).
    type: str
    required: true
  key:
    description:
      - This tenant's key in O(field).
    type: str
    required: true
seealso:
  - module: openclaw.standalone.openclaw_tenant_databases
"""

EXAMPLES = r"""
- name: This tenant's database, from the run made for its whole server
  openclaw.standalone.openclaw_batch_result:
    run: "{{ hostvars[first_tenant_of_the_server].server_run }}"
    field: databases
    key: openclaw_aliya
"""

RETURN = r"""
changed:
  description: Whether the run changed this tenant's entry.
  returned: always
  type: bool
"""
