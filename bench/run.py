"""Benchmarks of the collection against its baselines, on this machine, in one invocation.

Every figure is the median of ``--repeat`` runs (at least 3 unless
``--quick``) with its spread (max - min). The converge is measured against,
in the same invocation:

- the seed's way (``baselines/seed/create-client.sh`` per tenant), whose
  re-run is its provisioning time;
- a naive role (``baselines/naive``): one generic module per step, from the
  ``ansible`` package;
- the floor (``baselines/floor.py``): a plain script reading exactly what a
  no-op must check;
- a one-task playbook over the same inventory (Ansible's own floor).

Rows go to ``--output`` (JSON); ``bench/report.py`` turns them into
docs/benchmarks.md and its plots.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fleet import COLLECTIONS, REPO_ROOT, Fleet, ansible_env

from harness.docker import GATEWAY_IMAGE, GATEWAY_LIGHT_IMAGE, POSTGRES_IMAGE

sys.path.insert(0, str(COLLECTIONS))

from ansible_collections.openclaw.standalone.plugins.module_utils.validation import inventory_problems

PYTHON = Path(sys.executable)
PLAYBOOK = str(PYTHON.parent / "ansible-playbook")
BASELINES = Path(__file__).resolve().parent / "baselines"
SITE_FORKS = 20
SYSTEM_PYTHON = "/usr/bin/python3"
# Fleets of hundreds of tenants: the light gateway stand-in, and health checks every
# 5 minutes (about 3 docker execs a second at 1,000 tenants instead of 33).
LIGHT_FLEET = {"gateway_image": GATEWAY_LIGHT_IMAGE, "health_interval": 300}


# -- measuring ---------------------------------------------------------------------


def run_measured(command: list[str], env: dict | None, log: Path) -> tuple[float, float]:
    """Run ``command``; (wall seconds, the largest resident size of any of its processes in MiB). A failure raises with the log."""
    start = time.perf_counter()
    with log.open("w", encoding="utf-8") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env, cwd=REPO_ROOT)
        # wait4's rusage covers the child and the descendants it reaped; ru_maxrss is the largest single one (KiB).
        _pid, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        text = log.read_text(encoding="utf-8", errors="replace")
        failed = [line for line in text.splitlines() if "FAILED" in line or "fatal:" in line or "[ERROR]" in line]
        raise RuntimeError(f"{' '.join(command[:4])} failed ({code}), log {log}:\n" + "\n".join(failed[:20]) + "\n" + text[-3000:])
    return seconds, usage.ru_maxrss / 1024


def row(benchmark: str, samples: list[float], **fields) -> dict:
    median = statistics.median(samples)
    return {
        "benchmark": benchmark,
        **fields,
        "seconds": round(median, 3),
        "spread": round(max(samples) - min(samples), 3),
        "runs": len(samples),
        "samples": [round(sample, 3) for sample in samples],
    }


def repeated(benchmark: str, repeat: int, action, **fields) -> dict:
    """``action(run_index)`` returns seconds or (seconds, peak MiB); one row of ``repeat`` runs."""
    samples, memory = [], []
    for index in range(repeat):
        result = action(index)
        seconds, peak = result if isinstance(result, tuple) else (result, None)
        samples.append(seconds)
        if peak is not None:
            memory.append(peak)
    extra = {"controller_peak_mib": round(max(memory), 1)} if memory else {}
    return row(benchmark, samples, **fields, **extra)


# -- the converge and its baselines -------------------------------------------------


def site_command(fleet: Fleet, inventory: Path, limit: str | None = None) -> list[str]:
    command = [PLAYBOOK, "-i", str(inventory), str(REPO_ROOT / "playbooks" / "site.yml"), "--forks", str(SITE_FORKS)]
    return [*command, "--limit", limit] if limit else command


def mitogen_env() -> dict:
    import ansible_mitogen  # noqa: PLC0415 - only in the benchmark venv

    strategies = Path(ansible_mitogen.__file__).parent / "plugins" / "strategy"
    return ansible_env(PYTHON, ANSIBLE_STRATEGY_PLUGINS=str(strategies), ANSIBLE_STRATEGY="mitogen_linear")


def floor_command(fleet: Fleet) -> list[str]:
    nginx = fleet.nginx
    test = [nginx.binary, "-p", str(nginx.prefix), "-c", str(nginx.conf_file), "-e", str(nginx.error_log), "-t"]
    return [
        SYSTEM_PYTHON,
        str(BASELINES / "floor.py"),
        "--tenants", ",".join(fleet.tenants),
        "--clients-dir", str(fleet.clients_dir),
        "--lib-dir", str(fleet.work / "lib"),
        "--postgres-port", str(fleet.postgres_port),
        "--postgres-password-file", str(fleet.secrets_dir / "postgres_password"),
        "--map-file", str(fleet.map_file),
        "--nginx-test", json.dumps(test),
    ]  # fmt: skip


def trivial_playbook(work: Path) -> Path:
    path = work / "trivial.yml"
    path.write_text("- name: One task\n  hosts: all\n  gather_facts: false\n  tasks:\n    - name: Ping\n      ansible.builtin.ping:\n", encoding="utf-8")
    return path


def cold_runs(benchmark: str, tag: str, size: int, cold_repeat: int, command_for, **fleet_settings) -> tuple[dict, Fleet]:
    """``cold_repeat`` runs of ``command_for(fleet)``, each on a fresh server; the row, and the last server, still up."""
    samples = []
    for index in range(cold_repeat):
        fleet = Fleet(ident=f"ocb{size}{tag}{index}x{os.getpid()}", size=size, **fleet_settings).start()
        fleet.secrets_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            samples.append(run_measured(command_for(fleet), ansible_env(PYTHON), fleet.work / "cold.log"))
        except BaseException:
            fleet.stop()
            raise
        if index < cold_repeat - 1:
            fleet.stop()
    return repeated(benchmark, cold_repeat, lambda i: samples[i], tenants=size), fleet


def bench_ours(size: int, repeat: int, cold_repeat: int, mitogen: bool, light: bool = False) -> list[dict]:
    """The collection's site.yml: cold (fresh server each run), no-op, one tenant's change and no-op with --limit.

    The floor and a one-task playbook run on the same converged state. With ``light`` the tenants run the
    light gateway stand-in (same config check, socat instead of Python) so a thousand fit on this machine;
    then the server is converged once (its time is kept as ``setup_seconds``, not as a figure) and Mitogen is
    not run.
    """
    env = ansible_env(PYTHON)
    fields = {"tenants": size, "stand_in": "light"} if light else {"tenants": size}
    cold, fleet = cold_runs(
        "site_cold", "l" if light else "o", size, 1 if light else cold_repeat,
        lambda fleet: site_command(fleet, fleet.write_inventory()),
        **(LIGHT_FLEET if light else {}),
    )  # fmt: skip
    rows = [] if light else [cold]
    inventory = fleet.write_inventory()
    try:
        first = fleet.tenants[0]
        limit = f"{first},srv1"
        log = fleet.work / "run.log"
        noop = repeated("site_noop", repeat, lambda _i: run_measured(site_command(fleet, inventory), env, log), **fields)
        if light:
            noop["setup_seconds"] = cold["seconds"]
        rows.append(noop)

        def one_tenant(index: int, run_env: dict | None = None):
            # Alternates the tenant's setting, so every run has exactly one real change.
            changed_inventory = fleet.write_inventory(changed=first if index % 2 == 0 else None)
            return run_measured(site_command(fleet, changed_inventory, limit), run_env or env, log)

        rows.append(repeated("site_one_tenant_change", repeat, one_tenant, **fields))
        inventory = fleet.write_inventory(changed=first if repeat % 2 == 1 else None)
        rows.append(repeated("site_one_tenant_noop", repeat, lambda _i: run_measured(site_command(fleet, inventory, limit), env, log), **fields))
        if mitogen and not light:
            rows.append(repeated("site_mitogen_noop", repeat, lambda _i: run_measured(site_command(fleet, inventory), mitogen_env(), log), tenants=size))
            rows.append(repeated("site_mitogen_one_tenant_change", repeat, lambda i: one_tenant(i + repeat % 2, mitogen_env()), tenants=size))
        trivial = [PLAYBOOK, "-i", str(inventory), str(trivial_playbook(fleet.work)), "--forks", str(SITE_FORKS)]
        rows.append(repeated("trivial_playbook", repeat, lambda _i: run_measured(trivial, env, log), **fields))
        rows.append(repeated("trivial_playbook_limit", repeat, lambda _i: run_measured([*trivial, "--limit", limit], env, log), **fields))
        rows.append(repeated("floor_noop", repeat, lambda _i: run_measured(floor_command(fleet), None, log)[0], **fields))
    finally:
        fleet.stop()
    return rows


def naive_inventory(fleet: Fleet, changed: str | None = None) -> Path:
    nginx = fleet.nginx
    reload = [nginx.binary, "-p", str(nginx.prefix), "-c", str(nginx.conf_file), "-e", str(nginx.error_log), "-s", "reload"]
    schema = fleet.work / "schema.sql"
    if not schema.exists():
        schema.write_text(
            "\n".join(path.read_text(encoding="utf-8") for path in sorted((REPO_ROOT / "migrations" / "tenant").glob("V*.sql"))), encoding="utf-8"
        )
    server = {
        "naive_prefix": fleet.ident,
        "naive_network": fleet.network,
        "naive_postgres_container": fleet.postgres_container,
        "naive_postgres_image": POSTGRES_IMAGE,
        "naive_postgres_port": fleet.postgres_port,
        "naive_postgres_password": "naive-bench-password",
        "naive_gateway_image": GATEWAY_IMAGE,
        "naive_clients_dir": str(fleet.clients_dir),
        "naive_lib_dir": str(fleet.work / "lib"),
        "naive_secrets_dir": str(fleet.secrets_dir),
        "naive_nginx_dir": str(nginx.conf_d),
        "naive_https_port": fleet.https_port,
        "naive_nginx_reload": " ".join(reload),
        "naive_skills_src": str(REPO_ROOT / "skills"),
        "naive_schema": str(schema),
    }
    tenants = {name: {"openclaw_server": "srv1", "openclaw_port": port} for name, port in zip(fleet.tenants, fleet.tenant_ports, strict=True)}
    if changed:
        tenants[changed]["openclaw_upload_url"] = "https://uploads.bench.test/changed/"
    common = {"ansible_connection": "local", "ansible_python_interpreter": SYSTEM_PYTHON, "openclaw_domain": "bench.test"}
    path = fleet.work / "naive.json"
    path.write_text(
        json.dumps({"all": {"vars": common}, "openclaw_servers": {"hosts": {"srv1": server}}, "openclaw_tenants": {"hosts": tenants}}), encoding="utf-8"
    )
    return path


def bench_naive(size: int, repeat: int, cold_repeat: int) -> list[dict]:
    """The naive role: cold (fresh server each run), no-op, one tenant's change with --limit."""
    env = ansible_env(PYTHON)
    playbook = str(BASELINES / "naive" / "site.yml")

    def naive_command(fleet: Fleet) -> list[str]:
        return [PLAYBOOK, "-i", str(naive_inventory(fleet)), playbook, "--forks", str(SITE_FORKS)]

    cold, fleet = cold_runs("naive_cold", "n", size, cold_repeat, naive_command)
    rows = [cold]
    try:
        first = fleet.tenants[0]
        log = fleet.work / "run.log"
        command = naive_command(fleet)
        rows.append(repeated("naive_noop", repeat, lambda _i: run_measured(command, env, log), tenants=size))

        def one_tenant(index: int):
            inventory = naive_inventory(fleet, changed=first if index % 2 == 0 else None)
            return run_measured([PLAYBOOK, "-i", str(inventory), playbook, "--forks", str(SITE_FORKS), "--limit", f"{first},srv1"], env, log)

        rows.append(repeated("naive_one_tenant_change", repeat, one_tenant, tenants=size))
    finally:
        fleet.stop()
    return rows


def bench_seed(size: int, repeat: int) -> list[dict]:
    """The seed's create-client.sh for every tenant; it rotates tokens and replaces containers on every run."""
    import docker  # noqa: PLC0415

    client = docker.from_env(timeout=300)
    fleet = Fleet(ident=f"ocb{size}s{os.getpid()}", size=size).start()
    try:
        password = "seed-bench-password"  # noqa: S105 - a throwaway cluster of the benchmark
        client.networks.create(fleet.network)
        postgres = client.containers.run(
            POSTGRES_IMAGE, name=fleet.postgres_container, network=fleet.network, environment={"POSTGRES_PASSWORD": password}, detach=True
        )
        deadline = time.monotonic() + 120
        while postgres.exec_run(["pg_isready", "-U", "postgres"]).exit_code != 0:
            if time.monotonic() > deadline:
                raise RuntimeError("the seed's PostgreSQL did not start")
            time.sleep(1)
        schema = fleet.work / "schema.sql"
        schema.write_text(
            "\n".join(path.read_text(encoding="utf-8") for path in sorted((REPO_ROOT / "migrations" / "tenant").glob("V*.sql"))), encoding="utf-8"
        )
        env = dict(
            os.environ,
            SEED_POSTGRES=fleet.postgres_container,
            SEED_NETWORK=fleet.network,
            SEED_IMAGE=GATEWAY_IMAGE,
            SEED_CLIENTS_DIR=str(fleet.clients_dir),
            SEED_SCHEMA=str(schema),
            SEED_SKILLS=str(REPO_ROOT / "skills"),
            SEED_TEMPLATES=str(BASELINES / "seed"),
            SEED_PASSWORD=password,
        )
        script = fleet.work / "provision.sh"
        script.write_text(
            "set -e\n"
            + "".join(f"{BASELINES / 'seed' / 'create-client.sh'} {slug} {port}\n" for slug, port in zip(fleet.tenants, fleet.tenant_ports, strict=True)),
            encoding="utf-8",
        )
        log = fleet.work / "seed.log"
        # The first run creates, every later one re-provisions: that is the seed's "converge".
        cold = run_measured(["bash", str(script)], env, log)[0]
        rows = [row("seed_cold", [cold], tenants=size)]
        rows.append(repeated("seed_rerun", repeat, lambda _i: run_measured(["bash", str(script)], env, log)[0], tenants=size))
        return rows
    finally:
        fleet.stop()


# -- the other paths ----------------------------------------------------------------


def synthetic_inventory(tenants: int, servers: int):
    hostvars = {f"srv{index}": {} for index in range(servers)}
    for index in range(tenants):
        hostvars[f"tenant{index}"] = {"openclaw_server": f"srv{index % servers}", "openclaw_port": 20000 + index, "openclaw_domain": "agents.example.com"}
    groups = {"openclaw_servers": [f"srv{i}" for i in range(servers)], "openclaw_tenants": [f"tenant{i}" for i in range(tenants)]}
    return hostvars, groups


def bench_preflight(repeat: int, sizes=(10, 1000)) -> list[dict]:
    """The inventory rules alone, and the whole preflight play."""
    rows = []
    for tenants in sizes:
        hostvars, groups = synthetic_inventory(tenants, servers=max(1, tenants // 500))
        assert inventory_problems(hostvars, groups) == []

        def rules(_index, checked=(hostvars, groups)):
            start = time.perf_counter()
            inventory_problems(*checked)
            return time.perf_counter() - start

        rows.append(repeated("preflight_rules", max(repeat, 5), rules, tenants=tenants))
        inventory = {
            "openclaw_servers": {"hosts": {name: {"ansible_connection": "local"} for name in groups["openclaw_servers"]}},
            "openclaw_tenants": {"hosts": {name: hostvars[name] for name in groups["openclaw_tenants"]}},
        }
        with tempfile.TemporaryDirectory() as directory:
            path = Path(directory) / "hosts.json"
            path.write_text(json.dumps(inventory), encoding="utf-8")
            command = [PLAYBOOK, "-i", str(path), str(REPO_ROOT / "playbooks" / "preflight.yml")]
            log = Path(directory) / "preflight.log"
            rows.append(repeated("preflight_playbook", repeat, lambda _i, c=command, lg=log: run_measured(c, ansible_env(PYTHON), lg), tenants=tenants))
    return rows


def bench_migrate(repeat: int, tenants: int) -> list[dict]:
    """playbooks/migrate.yml on N tenant databases: cold (fresh cluster each run), one new migration, nothing pending."""
    from harness.postgres import PostgresCluster, postgres_bindir  # noqa: PLC0415

    env = ansible_env(PYTHON)
    rows, cold = [], []

    def prepare(cluster, work: Path) -> list[str]:
        local = {"ansible_connection": "local", "ansible_python_interpreter": PYTHON.as_posix()}
        inventory = {
            "all": {"vars": {"openclaw_domain": "bench.test", "openclaw_secrets_dir": str(work / "secrets"), "openclaw_backup_dir": str(work / "backups"),
                             "openclaw_pg_dump_path": f"{cluster.bindir}/pg_dump", **local}},
            "openclaw_servers": {"hosts": {"srv1": {"openclaw_postgres_port": cluster.port, "openclaw_postgres_password": cluster.password}}},
            "openclaw_tenants": {"hosts": {f"t{index:04d}": {"openclaw_server": "srv1", "openclaw_port": 20000 + index} for index in range(tenants)}},
        }  # fmt: skip
        path = work / "hosts.json"
        path.write_text(json.dumps(inventory), encoding="utf-8")
        shutil.copytree(REPO_ROOT / "migrations", work / "migrations", dirs_exist_ok=True)
        return [PLAYBOOK, "-i", str(path), str(REPO_ROOT / "playbooks" / "migrate.yml"), "-e", f"openclaw_migrations_dir={work / 'migrations'}"]

    def warm_paths(command: list[str], work: Path) -> list[dict]:
        migrations = work / "migrations" / "tenant"

        def one_new(_index):
            version = max(int(path.name[1:4]) for path in migrations.glob("V*.sql")) + 1
            (migrations / f"V{version:03d}__bench_note_{version}.sql").write_text(
                f"ALTER TABLE wa_dialogs ADD COLUMN bench_note_{version} text;\n", encoding="utf-8"
            )
            return run_measured(command, env, work / "run.log")

        return [
            repeated("migrate_one_new_migration", repeat, one_new, tenants=tenants),
            repeated("migrate_noop", repeat, lambda _i: run_measured(command, env, work / "run.log"), tenants=tenants),
        ]

    # Every cold run on a fresh cluster; the last cluster then takes the warm paths.
    for index in range(repeat):
        with PostgresCluster(bindir=postgres_bindir()) as cluster, tempfile.TemporaryDirectory() as directory:
            work = Path(directory)
            command = prepare(cluster, work)
            cold.append(run_measured(command, env, work / "cold.log"))
            if index == repeat - 1:
                rows.append(repeated("migrate_cold", repeat, lambda i: cold[i], tenants=tenants))
                rows += warm_paths(command, work)
    return rows


def bench_capi(repeat: int, events: int = 1000) -> list[dict]:
    """1,000 events to the Graph API stand-in: one batch call, one call per event, a batch with 3 events Meta rejects."""
    from ansible_collections.openclaw.standalone.plugins.module_utils import capi  # noqa: PLC0415
    from harness.graph_api import GraphAPIStandin  # noqa: PLC0415

    rows = []
    with GraphAPIStandin(log_requests=False) as server:
        server.add_dataset("1", "bench-token")
        now = int(time.time())
        batch = [capi.build_event("LeadSubmitted", now - index, event_id=f"e{index}", ctwa_clid=f"clid-{index}", waba_id="2")[0] for index in range(events)]
        poisoned = [dict(event) for event in batch]
        for index in (events // 100, events // 2, events - 1):
            poisoned[index]["event_name"] = "CompleteRegistration"  # sent anyway: Meta (the stand-in) rejects the batch

        def sender(events_to_send, one_by_one=False, expect_rejected=0):
            def send(_index):
                server.reset()
                client = capi.CapiClient(server.url, "v25.0", "1", "bench-token", verify=str(server.ca_file))
                start = time.perf_counter()
                if one_by_one:
                    for event in events_to_send:
                        client.send([event])
                else:
                    received, rejected = client.send_batch(events_to_send)
                    assert (received, len(rejected)) == (events - expect_rejected, expect_rejected)
                sender.requests = client.requests_made
                return time.perf_counter() - start

            return send

        for name, send in (
            ("capi_batch", sender(batch)),
            ("capi_one_per_request", sender(batch, one_by_one=True)),
            ("capi_batch_3_rejected_by_meta", sender(poisoned, expect_rejected=3)),
        ):
            measured = repeated(name, repeat, send, events=events)
            measured["requests"] = sender.requests
            rows.append(measured)
    return rows


def bench_routes(repeat: int, tenants: int) -> list[dict]:
    """With N tenants in the map: add one route and run the validated reload through Ansible; nginx -t alone."""
    from harness.common import free_ports  # noqa: PLC0415
    from harness.nginx import NginxServer, nginx_binary  # noqa: PLC0415
    from harness.tls import issue_local_certificate  # noqa: PLC0415

    env = ansible_env(PYTHON)
    rows = []
    with NginxServer(binary=nginx_binary()) as nginx, tempfile.TemporaryDirectory() as directory:
        work = Path(directory)
        _ca, cert, key = issue_local_certificate(work, names=("bench.test", "*.bench.test"))
        http_port, https_port, status_port = free_ports(3)
        settings = {
            "openclaw_domain": "bench.test",
            "ansible_connection": "local",
            "ansible_python_interpreter": PYTHON.as_posix(),
            **nginx.role_variables(http_port, https_port, status_port, cert, key),
        }

        def inventory(slug):
            path = work / "hosts.json"
            hosts = {"openclaw_servers": {"hosts": {"srv1": {}}}, "openclaw_tenants": {"hosts": {slug: {"openclaw_server": "srv1", "openclaw_port": 30000}}}}
            path.write_text(json.dumps({"all": {"vars": settings}, **hosts}), encoding="utf-8")
            return str(path)

        command = [PLAYBOOK, str(REPO_ROOT / "tests" / "playbooks" / "nginx_site.yml")]
        log = work / "run.log"
        run_measured([*command, "-i", inventory("seed")], env, log)
        map_file = nginx.prefix / "openclaw" / "tenants.map"
        map_file.write_text(
            map_file.read_text() + "".join(f"tenant-{index:04d}-example 127.0.0.1:{20000 + index};\n" for index in range(tenants)), encoding="utf-8"
        )
        run_measured([*command, "-i", inventory("seed")], env, log)
        rows.append(
            repeated("routes_add_one_and_reload", repeat, lambda i: run_measured([*command, "-i", inventory(f"newcomer{i}")], env, log), tenants=tenants)
        )
        # The path of a route change alone: the tenant's route and the reload, without the site's own tasks.
        routes_only = [PLAYBOOK, str(Path(__file__).resolve().parent / "playbooks" / "route_and_reload.yml")]
        rows.append(
            repeated(
                "routes_route_and_reload_plays", repeat, lambda i: run_measured([*routes_only, "-i", inventory(f"latecomer{i}")], env, log), tenants=tenants
            )
        )
        test_command = [nginx.binary, "-p", str(nginx.prefix), "-c", str(nginx.conf_file), "-e", str(nginx.error_log), "-t"]
        checked = subprocess.run(test_command, check=True, capture_output=True, text=True)
        measured = repeated("routes_nginx_t", max(repeat, 5), lambda _i: run_measured(test_command, None, log)[0], tenants=tenants)
        measured["hash_warnings"] = checked.stderr.count("could not build optimal")
        rows.append(measured)
    return rows


# -- ratios and output ------------------------------------------------------------------

RATIOS = {
    # row: {ratio name: the row it is divided by}
    "site_noop": {"vs_naive": "naive_noop", "vs_floor": "floor_noop", "vs_trivial": "trivial_playbook", "vs_seed": "seed_rerun"},
    "site_mitogen_noop": {"vs_naive": "naive_noop", "vs_floor": "floor_noop", "vs_trivial": "trivial_playbook"},
    "site_cold": {"vs_naive": "naive_cold", "vs_seed": "seed_rerun"},
    "site_one_tenant_change": {"vs_naive": "naive_one_tenant_change", "vs_trivial": "trivial_playbook_limit"},
    "site_one_tenant_noop": {"vs_trivial": "trivial_playbook_limit"},
    "site_mitogen_one_tenant_change": {"vs_naive": "naive_one_tenant_change", "vs_trivial": "trivial_playbook_limit"},
}


def add_ratios(rows: list[dict]) -> None:
    """Ratios between rows of the same invocation and tenant count."""
    seconds = {(item["benchmark"], item.get("tenants"), item.get("stand_in")): item["seconds"] for item in rows}
    for item in rows:
        for name, other in RATIOS.get(item["benchmark"], {}).items():
            divisor = seconds.get((other, item.get("tenants"), item.get("stand_in")))
            if divisor:
                item.setdefault("ratios", {})[name] = round(item["seconds"] / divisor, 2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", type=Path, required=True, help="results JSON")
    parser.add_argument("--sizes", default="1,10,50,100", help="tenant counts of the converge benchmarks, comma-separated")
    parser.add_argument("--light-sizes", default="50,100", help="tenant counts of the converge on the light gateway stand-in, comma-separated ('' for none)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (the median is reported)")
    parser.add_argument("--cold-repeat", type=int, help="cold converges per size, each on a fresh server (default: --repeat)")
    parser.add_argument(
        "--only", action="append", choices=["converge", "naive", "seed", "preflight", "migrate", "capi", "routes"], help="run only these (repeatable)"
    )
    parser.add_argument("--no-mitogen", action="store_true", help="skip the Mitogen strategy runs")
    parser.add_argument("--migrate-tenants", type=int, default=100)
    parser.add_argument("--routes-tenants", type=int, default=1000)
    parser.add_argument("--merge", action="store_true", help="keep the rows of --output that this invocation does not measure again")
    parser.add_argument("--quick", action="store_true", help="a check that the harness runs: one run of everything on a tiny size")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.light_sizes, args.repeat, args.cold_repeat, args.migrate_tenants, args.routes_tenants = "1", "2", 1, 1, 2, 10
    elif args.repeat < 3:
        parser.error("--repeat must be at least 3 (a median of fewer runs is not reported); --quick only checks the harness")
    sizes = [int(size) for size in args.sizes.split(",") if size]
    light_sizes = [int(size) for size in args.light_sizes.split(",") if size]
    cold_repeat = args.cold_repeat or args.repeat
    only = set(args.only or ["converge", "naive", "seed", "preflight", "migrate", "capi", "routes"])
    rows: list[dict] = []
    for size in sizes:
        if "converge" in only:
            rows += bench_ours(size, args.repeat, cold_repeat, mitogen=not args.no_mitogen)
        if "naive" in only:
            rows += bench_naive(size, args.repeat, cold_repeat)
        if "seed" in only:
            rows += bench_seed(size, args.repeat)
    if "converge" in only:
        for size in light_sizes:
            rows += bench_ours(size, args.repeat, cold_repeat, mitogen=False, light=True)
    if "preflight" in only:
        rows += bench_preflight(args.repeat, sizes=(10,) if args.quick else (10, 1000))
    if "migrate" in only:
        rows += bench_migrate(args.repeat, args.migrate_tenants)
    if "routes" in only:
        rows += bench_routes(args.repeat, args.routes_tenants)
    if "capi" in only:
        rows += bench_capi(args.repeat, events=20 if args.quick else 1000)
    add_ratios(rows)

    def measurement(item: dict) -> tuple:
        return item["benchmark"], item.get("tenants"), item.get("events"), item.get("stand_in")

    measured_now = {measurement(item) for item in rows}
    kept, previous_sizes, previous_light_sizes = [], set(), set()
    if args.merge and args.output.exists():
        # Ratios stay those of the invocation that took a row; another invocation's rows are never divided by these.
        previous = json.loads(args.output.read_text(encoding="utf-8"))
        previous_sizes = set(previous["settings"]["sizes"])
        previous_light_sizes = set(previous["settings"].get("light_sizes", []))
        kept = [item for item in previous["rows"] if measurement(item) not in measured_now]
    for item in rows:
        ratios = " ".join(f"{name}={value}" for name, value in item.get("ratios", {}).items())
        print(f"{item['benchmark']:<32} {item.get('tenants', item.get('events', '')):>6} {item['seconds']:>9.3f} s ±{item['spread']:<8.3f} {ratios}")
    missing = sorted(expected_benchmarks(only, mitogen=not args.no_mitogen, full_converge=bool(sizes)) - {item["benchmark"] for item in rows})
    if missing:
        print(f"benchmarks that produced no figure: {', '.join(missing)}", file=sys.stderr)
        return 1
    results = {
        "taken_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"python": platform.python_version(), "processor": platform.machine(), "cpus": os.cpu_count(), "memory_gib": memory_gib()},
        "settings": {
            "forks": SITE_FORKS,
            "repeat": args.repeat,
            "cold_repeat": cold_repeat,
            "sizes": sorted(set(sizes) | previous_sizes),
            "light_sizes": sorted(set(light_sizes) | previous_light_sizes),
            "quick": args.quick,
        },
        "rows": kept + rows,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"written to {args.output}")
    return 0


def expected_benchmarks(only: set[str], mitogen: bool, full_converge: bool = True) -> set[str]:
    """Every row name the selected benchmarks must produce (light fleets alone have no cold or Mitogen row)."""
    converge = {"site_noop", "site_one_tenant_change", "site_one_tenant_noop", "trivial_playbook", "trivial_playbook_limit", "floor_noop"}
    if full_converge:
        converge |= {"site_cold"} | ({"site_mitogen_noop", "site_mitogen_one_tenant_change"} if mitogen else set())
    names = {
        "converge": converge,
        "naive": {"naive_cold", "naive_noop", "naive_one_tenant_change"},
        "seed": {"seed_cold", "seed_rerun"},
        "preflight": {"preflight_rules", "preflight_playbook"},
        "migrate": {"migrate_cold", "migrate_one_new_migration", "migrate_noop"},
        "routes": {"routes_add_one_and_reload", "routes_route_and_reload_plays", "routes_nginx_t"},
        "capi": {"capi_batch", "capi_one_per_request", "capi_batch_3_rejected_by_meta"},
    }
    return set().union(*(names[name] for name in only))


def memory_gib() -> float:
    with open("/proc/meminfo", encoding="ascii") as handle:
        kib = int(next(line for line in handle if line.startswith("MemTotal:")).split()[1])
    return round(kib / 1024 / 1024, 1)


if __name__ == "__main__":
    sys.exit(main())
