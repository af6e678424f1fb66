#!/usr/bin/env bash
# The seed platform's way of provisioning one tenant, step for step (database,
# schema, workspace, files, container), with this machine's offline images and
# the benchmark's names. It has no no-op: every run rotates the token and
# replaces the container, so its re-run time is its provisioning time.
#
#   create-client.sh <slug> <port>
# Environment: SEED_POSTGRES (container), SEED_NETWORK, SEED_IMAGE,
# SEED_CLIENTS_DIR, SEED_SCHEMA (SQL file), SEED_SKILLS, SEED_TEMPLATES,
# SEED_PASSWORD (the superuser password every tenant gets, as in the seed).
set -euo pipefail

slug=${1:?slug}
port=${2:-18789}
[[ $slug =~ ^[a-z0-9_-]+$ ]] || { echo "bad slug: $slug" >&2; exit 2; }
db="openclaw_${slug//-/_}"
container="openclaw-$slug"
client_dir="$SEED_CLIENTS_DIR/$slug"
state_dir="$client_dir/.openclaw"
workspace="$state_dir/workspace"
token=$(openssl rand -hex 16)

echo "[1/5] database $db"
if ! docker exec "$SEED_POSTGRES" psql -U postgres -lqt | cut -d '|' -f1 | grep -qw "$db"; then
    docker exec "$SEED_POSTGRES" createdb -U postgres "$db"
fi

echo "[2/5] schema"
docker exec -i "$SEED_POSTGRES" psql -q -U postgres -d "$db" <"$SEED_SCHEMA" >/dev/null 2>&1 || true

echo "[3/5] workspace"
mkdir -p "$workspace"
rm -rf "$workspace/skills"
cp -r "$SEED_SKILLS" "$workspace/skills"

echo "[4/5] files"
for name in CLAUDE.md TOOLS.md; do
    sed "s/{{SLUG}}/$slug/g" "$SEED_TEMPLATES/$name" >"$workspace/$name"
done
cp "$SEED_TEMPLATES/openclaw.json" "$state_dir/openclaw.json"
printf '%s\n' "$token" >"$state_dir/gateway_token"
chown -R 1001:1001 "$state_dir"

echo "[5/5] container $container"
if docker ps -a --format '{{.Names}}' | grep -qx "$container"; then
    docker rm -f "$container" >/dev/null
fi
docker run -d --name "$container" --network "$SEED_NETWORK" --restart unless-stopped \
    -p "127.0.0.1:$port:18790" \
    -e "OPENCLAW_GATEWAY_TOKEN=$token" \
    -e "OPENCLAW_DB_URL=postgresql://postgres:$SEED_PASSWORD@$SEED_POSTGRES:5432/$db" \
    -v "$state_dir:/home/openclaw/.openclaw" \
    "$SEED_IMAGE" >/dev/null
echo "tenant $slug on port $port"
