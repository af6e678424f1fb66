#!/usr/bin/python
# Copyright: openclaw.standalone contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: openclaw_route_probe
short_description: Probe every tenant of a server through nginx, by host name, in one module run
version_added: 0.4.0
description:
  - Sends one HTTPS request per tenant to nginx with the tenant's host name (C(<slug>.<domain>)) and retries each
    tenant until its gateway answers or the retries are used up; tenants are probed concurrently.
  - Any HTTP answer of the gateway counts as up (OpenClaw 2026.2.17 has no health endpoint); nginx's own
    C(421) (no route for the name) and C(502), C(503), C(504) (gateway not answering) do not, nor does a failed
    connection.
  - Reads only; it never changes anything, so it reports C(changed=false).
author: OpenClaw Standalone maintainers (@openclaw-standalone)
extends_documentation_fragment:
  - openclaw.standalone.attributes
attributes:
  check_mode:
    support: full
    details: Probes in check mode too; the site play skips it there, since a planned route does not answer yet.
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  address:
    description: Address nginx listens on for HTTPS.
    type: str
    default: 127.0.0.1
  port:
    description: nginx's HTTPS port.
    type: int
    default: 443
  domain:
    description: The platform domain; each tenant is reached as C(<slug>.<domain>).
    type: str
    required: true
  tenants:
    description: Slugs of the tenants to probe.
    type: list
    elements: str
    required: true
  path:
    description: Path requested from each gateway.
    type: str
    default: /healthz
  timeout:
    description: Seconds one request may take.
    type: int
    default: 10
  retries:
    description: Further attempts for a tenant that does not answer yet.
    type: int
    default: 10
  delay:
    description: Seconds between two attempts of one tenant.
    type: int
    default: 2
  parallel:
    description: Tenants probed at the same time.
    type: int
    default: 16
"""

EXAMPLES = r"""
- name: Every running tenant of this server answers through nginx
  openclaw.standalone.openclaw_route_probe:
    port: 443
    domain: agents.example.com
    tenants: [aliya, marat]
"""

RETURN = r"""
probes:
  description: One entry per tenant, in the order given.
  returned: always
  type: list
  elements: dict
  sample: [{tenant: aliya, status: 200, attempts: 1, up: true}]
down:
  description: Slugs of the tenants that did not answer.
  returned: always
  type: list
  elements: str
"""

import http.client
import socket
import ssl
import time
from concurrent.futures import ThreadPoolExecutor

from ansible.module_utils.basic import AnsibleModule

# nginx's own answers when it has no route for the name or the gateway behind it does not answer.
NOT_THE_GATEWAY = frozenset((421, 502, 503, 504))


def probe_once(params, tenant):
    """HTTP status nginx returned for ``tenant``'s host name, or None when there was no HTTP answer."""
    # The certificate is the server's own (ACME or self-signed): this asks whether a route serves, not who signed it.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    host = "%s.%s" % (tenant, params["domain"])
    connection = http.client.HTTPSConnection(params["address"], params["port"], timeout=params["timeout"], context=context)
    try:
        connection.request("GET", params["path"], headers={"Host": host})
        return connection.getresponse().status
    except (OSError, http.client.HTTPException, socket.timeout):
        return None
    finally:
        connection.close()


def probe(params, tenant):
    attempts = 0
    while True:
        attempts += 1
        status = probe_once(params, tenant)
        up = status is not None and status < 500 and status not in NOT_THE_GATEWAY
        if up or attempts > params["retries"]:
            return dict(tenant=tenant, status=status, attempts=attempts, up=up)
        time.sleep(params["delay"])


def main():
    module = AnsibleModule(
        argument_spec=dict(
            address=dict(type="str", default="127.0.0.1"),
            port=dict(type="int", default=443),
            domain=dict(type="str", required=True),
            tenants=dict(type="list", elements="str", required=True),
            path=dict(type="str", default="/healthz"),
            timeout=dict(type="int", default=10),
            retries=dict(type="int", default=10),
            delay=dict(type="int", default=2),
            parallel=dict(type="int", default=16),
        ),
        supports_check_mode=True,
    )
    params = module.params
    tenants = params["tenants"]
    probes = []
    if tenants:
        with ThreadPoolExecutor(max_workers=max(1, min(params["parallel"], len(tenants)))) as pool:
            probes = list(pool.map(lambda tenant: probe(params, tenant), tenants))
    down = [entry["tenant"] for entry in probes if not entry["up"]]
    result = dict(changed=False, probes=probes, down=down)
    if down:
        shown = ", ".join("%s (%s)" % (entry["tenant"], entry["status"] or "no answer") for entry in probes if not entry["up"])
        module.fail_json(msg="tenants not answering through nginx on port %d: %s" % (params["port"], shown), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
