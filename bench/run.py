"""Benchmarks of the collection; writes numbers to a JSON file and prints a table.

Each benchmark reports the median of several timed runs on this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / ".build" / "collections"))

from ansible_collections.openclaw.standalone.plugins.module_utils.validation import inventory_problems  # noqa: E402


def synthetic_inventory(tenants: int, servers: int):
    hostvars = {f"srv{index}": {} for index in range(servers)}
    for index in range(tenants):
        hostvars[f"tenant{index}"] = {
            "openclaw_server": f"srv{index % servers}",
            "openclaw_port": 20000 + index,
            "openclaw_domain": "agents.example.com",
        }
    groups = {"openclaw_servers": [f"srv{i}" for i in range(servers)], "openclaw_tenants": [f"tenant{i}" for i in range(tenants)]}
    return hostvars, groups


def timed(function, repeat: int) -> float:
    samples = []
    for _index in range(repeat):
        start = time.perf_counter()
        function()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def bench_preflight() -> list[dict]:
    rows = []
    for tenants in (10, 100, 1000, 5000):
        hostvars, groups = synthetic_inventory(tenants, servers=max(1, tenants // 500))
        problems = inventory_problems(hostvars, groups)
        assert problems == [], problems[:3]
        seconds = timed(lambda h=hostvars, g=groups: inventory_problems(h, g), repeat=7)
        rows.append({"benchmark": "preflight_rules", "tenants": tenants, "seconds": round(seconds, 6), "per_tenant_us": round(seconds / tenants * 1e6, 2)})
    return rows


def bench_preflight_playbook() -> list[dict]:
    """The whole preflight play, templating hostvars of a generated inventory."""
    rows = []
    venv_bin = Path(sys.executable).parent
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO_ROOT / "ansible.cfg"), ANSIBLE_COLLECTIONS_PATH=str(REPO_ROOT / ".build" / "collections"))
    for tenants in (10, 1000):
        hostvars, groups = synthetic_inventory(tenants, servers=max(1, tenants // 500))
        inventory = {
            "openclaw_servers": {"hosts": {name: {"ansible_connection": "local"} for name in groups["openclaw_servers"]}},
            "openclaw_tenants": {"hosts": {name: hostvars[name] for name in groups["openclaw_tenants"]}},
        }
        with tempfile.TemporaryDirectory() as directory:
            path = Path(directory) / "hosts.json"
            path.write_text(json.dumps(inventory), encoding="utf-8")
            command = [str(venv_bin / "ansible-playbook"), "-i", str(path), str(REPO_ROOT / "playbooks" / "preflight.yml")]

            seconds = timed(lambda c=tuple(command): subprocess.run(c, check=True, capture_output=True, env=env, cwd=REPO_ROOT), repeat=3)
        rows.append({"benchmark": "preflight_playbook", "tenants": tenants, "seconds": round(seconds, 3), "per_tenant_us": round(seconds / tenants * 1e6, 1)})
    return rows


def bench_migrate_playbook(tenants: int = 100) -> list[dict]:
    """playbooks/migrate.yml on N tenant databases of a throwaway cluster: cold, one new migration, no-op."""
    sys.path.insert(0, str(REPO_ROOT / "tests"))
    from harness.postgres import PostgresCluster, postgres_bindir  # noqa: PLC0415 - test harness, only for this benchmark

    venv_bin = Path(sys.executable).parent
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO_ROOT / "ansible.cfg"), ANSIBLE_COLLECTIONS_PATH=str(REPO_ROOT / ".build" / "collections"))
    rows = []
    with PostgresCluster(bindir=postgres_bindir()) as cluster, tempfile.TemporaryDirectory() as directory:
        work = Path(directory)
        local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
        inventory = {
            "all": {"vars": {"openclaw_domain": "bench.test", "openclaw_secrets_dir": str(work / "secrets"), "openclaw_backup_dir": str(work / "backups"),
                             "openclaw_pg_dump_path": f"{cluster.bindir}/pg_dump", **local}},
            "openclaw_servers": {"hosts": {"srv1": {"openclaw_postgres_port": cluster.port, "openclaw_postgres_password": cluster.password}}},
            "openclaw_tenants": {"hosts": {f"t{index:03d}": {"openclaw_server": "srv1", "openclaw_port": 20000 + index} for index in range(tenants)}},
        }  # fmt: skip
        path = work / "hosts.json"
        path.write_text(json.dumps(inventory), encoding="utf-8")
        migrations = work / "migrations"
        shutil.copytree(REPO_ROOT / "migrations", migrations)
        command = [
            str(venv_bin / "ansible-playbook"),
            "-i",
            str(path),
            str(REPO_ROOT / "playbooks" / "migrate.yml"),
            "-e",
            f"openclaw_migrations_dir={migrations}",
        ]

        def measure(label):
            start = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True, env=env, cwd=REPO_ROOT)
            seconds = time.perf_counter() - start
            rows.append(
                {"benchmark": f"migrate_playbook_{label}", "tenants": tenants, "seconds": round(seconds, 2), "per_tenant_us": round(seconds / tenants * 1e6)}
            )

        measure("cold")
        next_version = max(int(path.name[1:4]) for path in (migrations / "tenant").glob("V*.sql")) + 1
        (migrations / "tenant" / f"V{next_version:03d}__bench_note.sql").write_text("ALTER TABLE wa_dialogs ADD COLUMN bench_note text;\n", encoding="utf-8")
        measure("one_new_migration")
        measure("warm")
    return rows


def bench_capi(events: int = 1000) -> list[dict]:
    """1,000 events to the Graph API stand-in: one batch call vs one call per event."""
    sys.path.insert(0, str(REPO_ROOT / "tests"))
    from ansible_collections.openclaw.standalone.plugins.module_utils import capi  # noqa: PLC0415
    from harness.graph_api import GraphAPIStandin  # noqa: PLC0415 - test stand-in, only for this benchmark

    rows = []
    with GraphAPIStandin(log_requests=False) as server:
        server.add_dataset("1", "bench-token")
        now = int(time.time())
        batch = [capi.build_event("LeadSubmitted", now - index, event_id=f"e{index}", ctwa_clid=f"clid-{index}", waba_id="2")[0] for index in range(events)]
        client = capi.CapiClient(server.url, "v25.0", "1", "bench-token", verify=str(server.ca_file))
        start = time.perf_counter()
        received, rejected = client.send_batch(batch)
        seconds = time.perf_counter() - start
        assert (received, rejected) == (events, [])
        rows.append({"benchmark": "capi_batch", "events": events, "requests": client.requests_made, "seconds": round(seconds, 3)})

        single = capi.CapiClient(server.url, "v25.0", "1", "bench-token", verify=str(server.ca_file))
        start = time.perf_counter()
        for event in batch:
            single.send([event])
        seconds = time.perf_counter() - start
        rows.append({"benchmark": "capi_one_per_request", "events": events, "requests": single.requests_made, "seconds": round(seconds, 3)})

        server.reset()
        poisoned = [dict(event) for event in batch]
        for index in (10, 500, 999):
            poisoned[index]["event_name"] = "CompleteRegistration"  # sent anyway: Meta (the stand-in) rejects the batch
        bisect = capi.CapiClient(server.url, "v25.0", "1", "bench-token", verify=str(server.ca_file))
        start = time.perf_counter()
        received, rejected = bisect.send_batch(poisoned)
        seconds = time.perf_counter() - start
        assert received == events - 3 and len(rejected) == 3
        rows.append({"benchmark": "capi_batch_3_rejected_by_meta", "events": events, "requests": bisect.requests_made, "seconds": round(seconds, 3)})
    return rows


def bench_nginx(tenants: int = 1000) -> list[dict]:
    """With 1,000 tenants in the map: add one route and do the validated reload through Ansible; nginx -t alone."""
    sys.path.insert(0, str(REPO_ROOT / "tests"))
    from harness.common import free_ports  # noqa: PLC0415 - test harness, only for this benchmark
    from harness.nginx import NginxServer, nginx_binary  # noqa: PLC0415
    from harness.tls import issue_local_certificate  # noqa: PLC0415

    venv_bin = Path(sys.executable).parent
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO_ROOT / "ansible.cfg"), ANSIBLE_COLLECTIONS_PATH=str(REPO_ROOT / ".build" / "collections"))
    rows = []
    with NginxServer(binary=nginx_binary()) as nginx, tempfile.TemporaryDirectory() as directory:
        work = Path(directory)
        _ca, cert, key = issue_local_certificate(work, names=("bench.test", "*.bench.test"))
        http_port, https_port, status_port = free_ports(3)
        settings = {
            "openclaw_domain": "bench.test",
            "ansible_connection": "local",
            "ansible_python_interpreter": sys.executable,
            **nginx.role_variables(http_port, https_port, status_port, cert, key),
        }

        def inventory(slug):
            path = work / "hosts.json"
            hosts = {"openclaw_servers": {"hosts": {"srv1": {}}}, "openclaw_tenants": {"hosts": {slug: {"openclaw_server": "srv1", "openclaw_port": 30000}}}}
            path.write_text(json.dumps({"all": {"vars": settings}, **hosts}), encoding="utf-8")
            return str(path)

        command = [str(venv_bin / "ansible-playbook"), str(REPO_ROOT / "tests" / "playbooks" / "nginx_site.yml")]
        subprocess.run([*command, "-i", inventory("seed")], check=True, capture_output=True, env=env, cwd=REPO_ROOT)
        map_file = nginx.prefix / "openclaw" / "tenants.map"
        map_file.write_text(
            map_file.read_text() + "".join(f"tenant-{index:04d}-example 127.0.0.1:{20000 + index};\n" for index in range(tenants)), encoding="utf-8"
        )
        subprocess.run([*command, "-i", inventory("seed")], check=True, capture_output=True, env=env, cwd=REPO_ROOT)

        start = time.perf_counter()
        subprocess.run([*command, "-i", inventory("newcomer")], check=True, capture_output=True, env=env, cwd=REPO_ROOT)
        seconds = time.perf_counter() - start
        rows.append({"benchmark": "nginx_add_route_and_reload_playbook", "tenants": tenants + 2, "seconds": round(seconds, 2)})

        test_command = [nginx.binary, "-p", str(nginx.prefix), "-c", str(nginx.conf_file), "-e", str(nginx.error_log), "-t"]
        checked = subprocess.run(test_command, check=True, capture_output=True, text=True)
        warnings = checked.stderr.count("could not build optimal")
        seconds = timed(lambda: subprocess.run(test_command, check=True, capture_output=True), repeat=5)
        rows.append({"benchmark": "nginx_t", "tenants": tenants + 2, "seconds": round(seconds, 3), "hash_warnings": warnings})
    return rows


SITE_FORKS = 20


def timed_site_run(path, inventory, size, label, env, limit=None) -> dict:
    """One site.yml run on the inventory written to ``path``; its wall time as a result row."""
    path.write_text(json.dumps(inventory), encoding="utf-8")
    command = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(path), str(REPO_ROOT / "playbooks" / "site.yml"), "--forks", str(SITE_FORKS)]
    if limit:
        command += ["--limit", limit]
    start = time.perf_counter()
    completed = subprocess.run(command, check=False, capture_output=True, text=True, env=env, cwd=REPO_ROOT)
    seconds = time.perf_counter() - start
    if completed.returncode != 0:
        log = path.with_name(f"site-{size}-{label}.log")
        log.write_text(completed.stdout + completed.stderr, encoding="utf-8")
        failed = [line for line in completed.stdout.splitlines() if "FAILED" in line or "fatal:" in line or "[ERROR]" in line]
        summary = "\n".join(failed[:20])
        raise RuntimeError(f"site.yml {label} with {size} tenants failed ({completed.returncode}), log {log}:\n{summary}\n{completed.stdout[-3000:]}")
    return {"benchmark": f"site_{label}", "tenants": size, "seconds": round(seconds, 1), "per_tenant_us": round(seconds / size * 1e6), "forks": SITE_FORKS}


def bench_site(sizes=(1, 10, 50, 100)) -> list[dict]:
    """playbooks/site.yml on this machine with N tenants: cold, no-op, and one tenant's change with --limit.

    Every size gets its own server (PostgreSQL container, network, runtime image,
    private nginx) with the offline images, removed afterwards.
    """
    sys.path.insert(0, str(REPO_ROOT / "tests"))
    import docker  # noqa: PLC0415 - only this benchmark needs the engine

    from harness.common import free_ports  # noqa: PLC0415 - test harness, only for this benchmark
    from harness.docker import GATEWAY_IMAGE, POSTGRES_IMAGE, remove_everything_named  # noqa: PLC0415
    from harness.nginx import NginxServer, nginx_binary  # noqa: PLC0415

    client = docker.from_env(timeout=300)
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO_ROOT / "ansible.cfg"), ANSIBLE_COLLECTIONS_PATH=str(REPO_ROOT / ".build" / "collections"))
    rows = []
    for size in sizes:
        ident = f"ocb{size}x{os.getpid()}"
        nginx = NginxServer(binary=nginx_binary()).start()
        try:
            with tempfile.TemporaryDirectory() as directory:
                work = Path(directory)
                http_port, https_port, status_port, postgres_port, *tenant_ports = free_ports(4 + size)
                certs = work / "certs"
                server = {
                    "openclaw_docker_network": f"{ident}-net",
                    "openclaw_clients_dir": str(work / "clients"),
                    "openclaw_backup_dir": str(work / "backups"),
                    "openclaw_secrets_dir": str(work / "secrets"),
                    "openclaw_server_lib_dir": str(work / "lib"),
                    "openclaw_postgres_image": POSTGRES_IMAGE,
                    "openclaw_postgres_container": f"{ident}-postgres",
                    "openclaw_postgres_volume": f"{ident}-pgdata",
                    "openclaw_postgres_port": postgres_port,
                    "openclaw_runtime_image": f"{ident}-runtime",
                    "openclaw_runtime_base_image": GATEWAY_IMAGE,
                    "openclaw_runtime_install": "none",
                    "openclaw_runtime_pull_base": False,
                    "openclaw_cert_install_packages": False,
                    "openclaw_cert_dir": str(certs),
                    **nginx.role_variables(http_port, https_port, status_port, certs / "fullchain.pem", certs / "privkey.pem"),
                }
                tenants = {f"{ident}t{index:03d}": {"openclaw_server": "srv1", "openclaw_port": port} for index, port in enumerate(tenant_ports)}
                common = {"ansible_connection": "local", "ansible_python_interpreter": "/usr/bin/python3", "openclaw_domain": "bench.test"}
                path = work / "hosts.json"

                inventory = {"all": {"vars": common}, "openclaw_servers": {"hosts": {"srv1": server}}, "openclaw_tenants": {"hosts": tenants}}
                rows.append(timed_site_run(path, inventory, size, "cold", env))
                rows.append(timed_site_run(path, inventory, size, "noop", env))
                first = next(iter(tenants))
                changed = {**tenants, first: {**tenants[first], "openclaw_upload_url": "https://uploads.bench.test/changed/"}}
                inventory["openclaw_tenants"]["hosts"] = changed
                rows.append(timed_site_run(path, inventory, size, "one_tenant_limit", env, limit=f"{first},srv1"))
        finally:
            nginx.stop()
            remove_everything_named(client, ident)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--only", choices=["site"], help="run only this benchmark (the others keep their numbers from --output)")
    parser.add_argument("--site-sizes", default="1,10,50,100", help="tenant counts of the site benchmark, comma-separated")
    args = parser.parse_args()
    if args.only == "site":
        results = json.loads(args.output.read_text(encoding="utf-8")) if args.output.exists() else {"results": [], "capi": [], "nginx": []}
        sizes = tuple(int(size) for size in args.site_sizes.split(","))
        kept = [row for row in results["results"] if not (row["benchmark"].startswith("site_") and row["tenants"] in sizes)]
        results["results"] = kept + bench_site(sizes)
        capi_rows, nginx_rows = results["capi"], results["nginx"]
    else:
        capi_rows = bench_capi()
        nginx_rows = bench_nginx()
        results = {
            "capi": capi_rows,
            "nginx": nginx_rows,
            "results": bench_preflight()
            + bench_preflight_playbook()
            + bench_migrate_playbook()
            + bench_site(tuple(int(size) for size in args.site_sizes.split(","))),
        }
    results["machine"] = {"python": platform.python_version(), "processor": platform.machine(), "cpus": os.cpu_count()}
    results["taken_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print("| benchmark | tenants | median seconds | per tenant (µs) |")
    print("|---|---:|---:|---:|")
    for row in results["results"]:
        print(f"| {row['benchmark']} | {row['tenants']} | {row['seconds']} | {row['per_tenant_us']} |")
    print()
    print("| benchmark | events | requests | seconds |")
    print("|---|---:|---:|---:|")
    for row in capi_rows:
        print(f"| {row['benchmark']} | {row['events']} | {row['requests']} | {row['seconds']} |")
    print()
    for row in nginx_rows:
        print(f"| {row['benchmark']} | {row['tenants']} tenants | {row['seconds']} s | {row.get('hash_warnings', '')} |")
    print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
