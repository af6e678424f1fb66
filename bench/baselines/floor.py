"""The floor: read exactly the state a no-op converge of one server must check, with no Ansible.

For every tenant of the server: its container (one listing, one inspect
each), its database (one connection and one query of the migration history
each), its managed files (read and hashed, as listed in its manifest) and its
token file; once per server: the roles, the skills tree, the nginx tenant map
and nginx's answer to a configuration test. Prints what it read; the time it
takes is the least any converge that checks the same things can cost.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import docker
import psycopg2

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / ".build" / "collections"))
from ansible_collections.openclaw.standalone.plugins.module_utils.validation import derived_names


def hash_tree(root: Path) -> dict:
    return {str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(root.rglob("*")) if path.is_file()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tenants", required=True, help="comma-separated slugs")
    parser.add_argument("--clients-dir", type=Path, required=True)
    parser.add_argument("--lib-dir", type=Path, required=True)
    parser.add_argument("--postgres-port", type=int, required=True)
    parser.add_argument("--postgres-password-file", type=Path, required=True)
    parser.add_argument("--map-file", type=Path, required=True)
    parser.add_argument("--nginx-test", required=True, help="the nginx -t command line, JSON list")
    args = parser.parse_args()
    tenants = args.tenants.split(",")
    read = {"containers": 0, "databases": 0, "files": 0, "routes": 0}

    client = docker.APIClient()
    listed = {item["Names"][0].lstrip("/"): item["Id"] for item in client.containers(all=True)}
    for slug in tenants:
        container = listed.get(derived_names(slug)["container"])
        if container:
            client.inspect_container(container)
            read["containers"] += 1

    password = args.postgres_password_file.read_text(encoding="utf-8").strip()
    connect = {"host": "127.0.0.1", "port": args.postgres_port, "user": "postgres", "password": password}
    with psycopg2.connect(dbname="postgres", **connect) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT rolname, rolcanlogin, rolconnlimit FROM pg_roles")
        cursor.fetchall()
        cursor.execute("SELECT datname, pg_get_userbyid(datdba) FROM pg_database")
        databases = dict(cursor.fetchall())
    for slug in tenants:
        name = derived_names(slug)["database"]
        if name in databases:
            connection = psycopg2.connect(dbname=name, **connect)
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT max(version) FROM openclaw_meta.schema_history")
                    cursor.fetchone()
            finally:
                connection.close()
            read["databases"] += 1

    hash_tree(args.lib_dir / "skills")
    for slug in tenants:
        root = args.clients_dir / slug
        manifest = json.loads((root / ".openclaw-managed.json").read_text(encoding="utf-8"))
        for relative in list(manifest.get("files", {})) + [f"workspace/skills/{name}" for name in manifest.get("skills", {})]:
            path = root / ".openclaw" / relative
            if path.is_file():
                hashlib.sha256(path.read_bytes()).hexdigest()
                read["files"] += 1
        (root / "gateway_token").read_bytes()

    routes = dict(line.split(None, 1) for line in args.map_file.read_text(encoding="utf-8").splitlines() if line.strip() and not line.startswith("#"))
    read["routes"] = len(routes)
    subprocess.run(json.loads(args.nginx_test), check=True, capture_output=True)
    print(json.dumps(read))
    return 0


if __name__ == "__main__":
    sys.exit(main())
