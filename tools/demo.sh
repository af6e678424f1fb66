#!/usr/bin/env bash
# Converges inventories/local (this machine as the server, two demo tenants)
# and prints how to reach each tenant. On a machine that cannot get the real
# base images (no registry), the offline test images are used instead, and the
# gateway inside the tenants is a stand-in: said loudly, before and after.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
INVENTORY=inventories/local
EXTRA=()

have_image() {
    docker image inspect "$1" >/dev/null 2>&1 || timeout 120 docker pull --quiet "$1" >/dev/null 2>&1
}

banner() {
    printf '\n%s\n%s\n%s\n\n' "==================================================================" "$1" "=================================================================="
}

OFFLINE=0
if ! have_image node:22-slim || ! have_image postgres:16 || ! have_image debian:bookworm-slim; then
    OFFLINE=1
    EXTRA=(-e "@inventories/offline-demo.yml")
    banner "offline demo: gateway stand-in (no registry: node:22-slim / postgres:16 / debian:bookworm-slim unavailable)"
fi

ansible-playbook -i "$INVENTORY" playbooks/site.yml "${EXTRA[@]}" "$@"

port="$(ansible-inventory -i "$INVENTORY" --host local 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin).get("openclaw_nginx_https_port", 443))')"
domain="$(ansible-inventory -i "$INVENTORY" --host local 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["openclaw_domain"])')"
echo
echo "Tenants (self-signed certificate, hence -k):"
for slug in $(ansible-inventory -i "$INVENTORY" --list 2>/dev/null | python3 -c 'import json,sys; print(" ".join(json.load(sys.stdin)["openclaw_tenants"]["hosts"]))'); do
    echo "  curl -k --resolve $slug.$domain:$port:127.0.0.1 https://$slug.$domain:$port/   (401 without the token: the gateway answers)"
done
echo "A tenant's URL with its token: ansible-playbook -i $INVENTORY playbooks/show_access.yml -e tenant=demo"
echo "Shared services: curl -k --resolve $domain:$port:127.0.0.1 https://$domain:$port/openclaw/upload/demo/"
echo "  (Meta webhook settings of a tenant: ansible-playbook -i $INVENTORY playbooks/show_access.yml -e tenant=demo -e show=meta)"
if [[ $OFFLINE -eq 1 ]]; then
    banner "offline demo: gateway stand-in - the tenants run a stand-in, not OpenClaw"
fi
