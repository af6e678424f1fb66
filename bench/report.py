"""docs/benchmarks.md and its plots from a results file of bench/run.py.

python bench/report.py bench/results/2026-12-06.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt

REPO_ROOT = Path(__file__).resolve().parent.parent
DOCS = REPO_ROOT / "docs"

# Which rows are one contender on one path: path -> [(label, benchmark)].
CONVERGE_PATHS = {
    "cold": [("collection", "site_cold"), ("naive role", "naive_cold"), ("seed script", "seed_rerun")],
    "noop": [
        ("collection", "site_noop"),
        ("collection + Mitogen", "site_mitogen_noop"),
        ("naive role", "naive_noop"),
        ("seed script (re-run = re-provision)", "seed_rerun"),
        ("floor (plain script)", "floor_noop"),
        ("one-task playbook", "trivial_playbook"),
    ],
    "one_tenant_change": [
        ("collection", "site_one_tenant_change"),
        ("collection + Mitogen", "site_mitogen_one_tenant_change"),
        ("collection, no change", "site_one_tenant_noop"),
        ("naive role", "naive_one_tenant_change"),
        ("one-task playbook, same --limit", "trivial_playbook_limit"),
    ],
}
TITLES = {
    "cold": "Cold converge of a new server",
    "noop": "No-op converge (nothing changed)",
    "one_tenant_change": "One tenant changed, --limit <tenant>,<server>",
}
DESCRIPTIONS = {
    "site_cold": "collection `site.yml`, fresh server",
    "site_noop": "collection `site.yml`, nothing to change",
    "site_one_tenant_change": "collection, one tenant's setting changed, `--limit <tenant>,srv1`",
    "site_one_tenant_noop": "collection, `--limit <tenant>,srv1`, nothing to change",
    "site_mitogen_noop": "collection with Mitogen's `mitogen_linear` strategy, nothing to change",
    "site_mitogen_one_tenant_change": "collection with Mitogen, one tenant changed, `--limit`",
    "naive_cold": "naive role, fresh server",
    "naive_noop": "naive role, nothing to change",
    "naive_one_tenant_change": "naive role, one tenant changed, `--limit`",
    "seed_cold": "seed script, first provisioning (one run)",
    "seed_rerun": "seed script, re-run (it re-provisions every tenant)",
    "floor_noop": "floor: plain script reading what a no-op must check",
    "trivial_playbook": "one-task playbook (`ping`) over the same inventory",
    "trivial_playbook_limit": "one-task playbook with the same `--limit`",
    "preflight_rules": "inventory rules alone (`inventory_problems`)",
    "preflight_playbook": "`preflight.yml`, whole play",
    "migrate_cold": "`migrate.yml`, cold (create, own, migrate)",
    "migrate_one_new_migration": "`migrate.yml`, one new migration (dump + apply)",
    "migrate_noop": "`migrate.yml`, nothing pending",
    "routes_add_one_and_reload": "add one route and run the validated, confirmed reload (playbook with the nginx site's own tasks)",
    "routes_route_and_reload_plays": "add one route and run the validated, confirmed reload (the two plays a route change runs, nothing else)",
    "routes_nginx_t": "`nginx -t` alone",
    "capi_batch": "one batch call",
    "capi_one_per_request": "one request per event",
    "capi_batch_3_rejected_by_meta": "one batch with 3 events Meta rejects (split to isolate them)",
}


def series(rows: list[dict], benchmark: str, stand_in: str | None = None) -> list[tuple[int, float, float]]:
    return sorted((item["tenants"], item["seconds"], item["spread"]) for item in rows if item["benchmark"] == benchmark and item.get("stand_in") == stand_in)


def plot_converge(rows: list[dict], path_name: str, plots: Path) -> Path | None:
    figure, axes = plt.subplots(figsize=(7, 4.2))
    drawn = False
    for (label, benchmark), stand_in in ((contender, stand_in) for stand_in in (None, "light") for contender in CONVERGE_PATHS[path_name]):
        points = series(rows, benchmark, stand_in)
        if not points:
            continue
        drawn = True
        sizes, seconds, spreads = zip(*points, strict=True)
        style = {"linestyle": "--", "marker": "s", "label": f"{label}, light stand-in"} if stand_in else {"marker": "o", "label": label}
        axes.errorbar(sizes, seconds, yerr=[spread / 2 for spread in spreads], capsize=3, **style)
    if not drawn:
        plt.close(figure)
        return None
    axes.set_xlabel("tenants on the server")
    axes.set_ylabel("seconds (median; bar = spread)")
    axes.set_title(TITLES[path_name])
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=8)
    target = plots / f"converge_{path_name}.png"
    figure.tight_layout()
    figure.savefig(target, dpi=100)
    plt.close(figure)
    return target


def plot_bars(rows: list[dict], prefix: str, title: str, name: str, plots: Path) -> Path | None:
    selected = [item for item in rows if item["benchmark"].startswith(prefix)]
    if not selected:
        return None
    figure, axes = plt.subplots(figsize=(7, 3.2))
    labels = [DESCRIPTIONS.get(item["benchmark"], item["benchmark"]).replace("`", "") for item in selected]
    axes.barh(labels, [item["seconds"] for item in selected], xerr=[item["spread"] / 2 for item in selected], capsize=3)
    axes.set_xlabel("seconds (median; bar = spread)")
    axes.set_title(title)
    axes.invert_yaxis()
    target = plots / f"{name}.png"
    figure.tight_layout()
    figure.savefig(target, dpi=100)
    plt.close(figure)
    return target


def table(rows: list[dict], benchmarks: list[str], count: str = "tenants") -> list[str]:
    lines = [f"| what | {count} | median s | spread s | runs | ratios |", "|---|---:|---:|---:|---:|---|"]
    for benchmark in benchmarks:
        for item in sorted((item for item in rows if item["benchmark"] == benchmark), key=lambda item: item.get(count, 0)):
            ratios = ", ".join(f"{name.replace('vs_', 'x ')} {value}" for name, value in item.get("ratios", {}).items())
            memory = f" (largest controller process {item['controller_peak_mib']} MiB)" if "controller_peak_mib" in item else ""
            light = ", light gateway stand-in" if item.get("stand_in") == "light" else ""
            setup = f"; the converge that built this server took {item['setup_seconds']} s, one run" if "setup_seconds" in item else ""
            what = DESCRIPTIONS.get(benchmark, benchmark) + light + memory + setup
            lines.append(f"| {what} | {item.get(count, '')} | {item['seconds']} | {item['spread']} | {item['runs']} | {ratios} |")
    return lines


def render(results: dict, source: Path, plots: Path) -> str:
    """The Markdown page; the plots are written into ``plots``, which sits beside the page."""
    rows = results["rows"]
    settings, machine = results["settings"], results["machine"]
    plots.mkdir(parents=True, exist_ok=True)
    shown = source.relative_to(REPO_ROOT) if source.is_relative_to(REPO_ROOT) else source
    out = [
        "# Benchmarks",
        "",
        f"Generated by `make bench` from `{shown}` (taken {results['taken_at']}). Do not edit by hand.",
        "",
        f"Machine: {machine['cpus']} CPUs, {machine.get('memory_gib', '?')} GiB, Python {machine['python']}. "
        f"Settings: `--forks {settings['forks']}`, every figure the median of {settings['repeat']} runs "
        f"(cold converges: {settings['cold_repeat']}, each on a fresh server), spread = slowest - fastest. "
        "Every contender runs on its own throwaway server on this machine (Docker networks, PostgreSQL container, private nginx, "
        "offline images), and all of them in the same invocation, so the ratios compare runs taken minutes apart.",
        "",
        "Contenders: the collection's `site.yml` (also with Mitogen's `mitogen_linear` strategy); the seed's way "
        "(`bench/baselines/seed/create-client.sh` per tenant, which re-provisions on every run); a naive role "
        "(`bench/baselines/naive/`, one generic module per step from the `ansible` package); the floor "
        "(`bench/baselines/floor.py`, a plain script reading exactly what a no-op must check); and a one-task playbook "
        "over the same inventory (Ansible's own cost per host). Ratios are this row's median divided by the named baseline's "
        "median at the same size.",
        "",
        "Rows marked *light gateway stand-in* ran on servers of up to "
        f"{max(settings.get('light_sizes') or [0])} tenants whose containers run `openclaw-test/gateway-light` (the same "
        "configuration check as the gateway stand-in, then socat instead of a Python server: about 12 MiB per tenant with "
        "Docker's own processes) and check their health every 300 s, so that many tenants fit on this machine; the converge "
        "itself is the same. Their server is converged once (its time is given, it is not a figure), and ratios are taken "
        "against the floor and one-task playbook on that same server.",
        "",
    ]
    if not settings.get("light_sizes"):
        out = out[:-2]
    for path_name, contenders in CONVERGE_PATHS.items():
        plot = plot_converge(rows, path_name, plots)
        out += [f"## {TITLES[path_name]}", ""]
        if plot:
            out += [f"![{TITLES[path_name]}](benchmarks/{plot.name})", ""]
        benchmarks = [benchmark for _label, benchmark in contenders] + (["seed_cold"] if path_name == "cold" else [])
        out += [*table(rows, benchmarks), ""]
    for prefix, title, name, count in (
        ("migrate_", "Migrations across tenant databases", "migrations", "tenants"),
        ("routes_", "Routes: one more tenant in a large map", "routes", "tenants"),
        ("capi_", "Conversions API: events to the Graph API stand-in", "capi", "events"),
        ("preflight_", "Preflight", "preflight", "tenants"),
    ):
        selected = sorted({item["benchmark"] for item in rows if item["benchmark"].startswith(prefix)}, key=list(DESCRIPTIONS).index)
        if not selected:
            continue
        plot = plot_bars(rows, prefix, title, name, plots)
        out += [f"## {title}", ""]
        if plot:
            out += [f"![{title}](benchmarks/{plot.name})", ""]
        out += [*table(rows, selected, count), ""]
        if prefix == "capi_":
            out += [
                "Requests per figure: " + ", ".join(f"{item['benchmark']} {item.get('requests')}" for item in rows if item["benchmark"].startswith(prefix)),
                "",
            ]
    profile = DOCS / "benchmarks-profile.md"
    if profile.exists():
        out += [profile.read_text(encoding="utf-8").strip(), ""]
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("results", type=Path)
    parser.add_argument("--output", type=Path, default=DOCS / "benchmarks.md")
    args = parser.parse_args()
    results = json.loads(args.results.read_text(encoding="utf-8"))
    plots = args.output.parent / "benchmarks"
    args.output.write_text(render(results, args.results.resolve(), plots), encoding="utf-8")
    print(f"written {args.output} and the plots in {plots}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
