"""certbot --manual hook: publish or remove the DNS-01 TXT record in pebble-challtestsrv.

certbot passes CERTBOT_DOMAIN (with '*.' already stripped) and
CERTBOT_VALIDATION; the harness passes the challtestsrv management URL.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.request


def main() -> int:
    action = sys.argv[1]
    base = os.environ["OPENCLAW_CHALLTESTSRV_URL"]
    record = {"host": f"_acme-challenge.{os.environ['CERTBOT_DOMAIN']}."}
    if action == "set":
        record["value"] = os.environ["CERTBOT_VALIDATION"]
    request = urllib.request.Request(  # noqa: S310 - loopback URL from the harness
        f"{base}/{'set-txt' if action == 'set' else 'clear-txt'}",
        data=json.dumps(record).encode(),
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback URL from the harness
        return 0 if response.status == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
