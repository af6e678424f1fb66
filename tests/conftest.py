"""Shared fixtures: real PostgreSQL, nginx, Pebble and Docker, each owned by the run.

A fixture whose dependency is missing skips its tests with the reason; under
CI=true such a skip is turned into a failure, so CI never hides a missing
dependency.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / ".build" / "collections"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import docker as docker_harness  # noqa: E402
from harness.nginx import NginxServer, nginx_binary  # noqa: E402
from harness.pebble import PebbleACME, pebble_binaries  # noqa: E402
from harness.postgres import PostgresCluster, postgres_bindir  # noqa: E402

IN_CI = os.environ.get("CI", "").lower() in ("true", "1", "yes")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true (a skip there means a missing dependency): {reason}"


@pytest.fixture(scope="session")
def pg_cluster():
    bindir = postgres_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries not found under /usr/lib/postgresql (apt-get install postgresql)")
    with PostgresCluster(bindir=bindir) as cluster:
        yield cluster


@pytest.fixture
def nginx_factory():
    binary = nginx_binary()
    if binary is None:
        pytest.skip("nginx not found (apt-get install nginx)")
    started = []

    def start() -> NginxServer:
        server = NginxServer(binary=binary).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def nginx_server(nginx_factory):
    return nginx_factory()


@pytest.fixture(scope="session")
def pebble():
    binaries = pebble_binaries()
    if binaries is None:
        pytest.skip("pebble and pebble-challtestsrv not found (apt-get install pebble)")
    with PebbleACME(*binaries) as acme:
        yield acme


@pytest.fixture(scope="session")
def docker_client():
    client = docker_harness.docker_client()
    if client is None:
        pytest.skip("Docker engine not reachable (or the docker SDK is missing)")
    yield client
    docker_harness.remove_test_containers(client)


@pytest.fixture(scope="session")
def test_images(docker_client):
    """Names of the offline test images, built or reused from the cache."""
    docker_harness.build_test_images()
    return {
        "base": docker_harness.BASE_IMAGE,
        "gateway": docker_harness.GATEWAY_IMAGE,
        "postgres": docker_harness.POSTGRES_IMAGE,
    }


@pytest.fixture(scope="session")
def graph_api_server():
    from harness.graph_api import GraphAPIStandin

    with GraphAPIStandin() as server:
        yield server


@pytest.fixture
def graph_api(graph_api_server):
    """The Graph API stand-in, with no recorded requests or queued faults."""
    graph_api_server.reset()
    yield graph_api_server
    graph_api_server.reset()
