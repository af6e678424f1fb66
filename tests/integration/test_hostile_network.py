"""A hostile tenant on the network: what it can reach from inside its container.

site.yml converges one server (PostgreSQL container, webhook and upload
services, nginx) and two tenants once for the module. Every probe then runs
inside tenant A's container as its user (uid 1001), the way a prompt-injected
agent with a shell would, and each refused probe has a positive control that
the same probe succeeds where it should.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import subprocess
import threading
import uuid
from pathlib import Path

import psycopg2
import pytest
import yaml

from harness.ansible import recap, run
from harness.common import free_ports
from harness.docker import remove_everything_named
from harness.nginx import NginxServer, nginx_binary
from harness.servers import isolated_server, shared_services

PLAYBOOK = "playbooks/site.yml"
SERVER = "srvh"
DOMAIN = "hostile.test"
METADATA_ADDRESS = "169.254.169.254"
TENANT_UID = "1001"

# Prints "open", or the reason the connection failed, for host and port in argv.
CONNECT = """
import socket, sys
s = socket.socket()
s.settimeout(4)
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
    print("open")
except socket.timeout:
    print("timeout")
except OSError as error:
    print(type(error).__name__)
"""


class HostileSite:
    def __init__(self, client, images, nginx, root):
        self.client = client
        self.ident = "och" + uuid.uuid4().hex[:6]
        self.root = root
        http_port, https_port, status_port, self.postgres_port, self.webhook_port, self.upload_port, port_a, port_b = free_ports(8)
        self.https_port = https_port
        certs = root / "certs"
        self.server = {
            **isolated_server(self.ident, root, images, self.postgres_port),
            **shared_services(self.ident, images, self.webhook_port, self.upload_port),
            "openclaw_cert_install_packages": False,
            "openclaw_cert_dir": str(certs),
            **nginx.role_variables(http_port, https_port, status_port, certs / "fullchain.pem", certs / "privkey.pem"),
        }
        self.tenants = {
            "a": {"openclaw_server": SERVER, "openclaw_slug": self.slug("a"), "openclaw_port": port_a},
            "b": {"openclaw_server": SERVER, "openclaw_slug": self.slug("b"), "openclaw_port": port_b},
        }

    def slug(self, name):
        return f"{self.ident}{name}"

    def converge(self):
        inventory = {
            "all": {"vars": {"ansible_connection": "local", "ansible_python_interpreter": "/usr/bin/python3", "openclaw_domain": DOMAIN}},
            "openclaw_servers": {"hosts": {SERVER: self.server}},
            "openclaw_tenants": {"hosts": self.tenants},
        }
        path = self.root / "hosts.yml"
        path.write_text(yaml.safe_dump(inventory), encoding="utf-8")
        completed = run("ansible-playbook", "-i", str(path), PLAYBOOK, timeout=1200)
        assert completed.returncode == 0, completed.stdout[-8000:] + completed.stderr[-2000:]
        return recap(completed.stdout)

    def container(self, name):
        return self.client.containers.get(name)

    def tenant(self, name):
        return self.container(f"openclaw-{self.slug(name)}")

    def address(self, container_name, network):
        container = self.container(container_name)
        container.reload()
        return container.attrs["NetworkSettings"]["Networks"][network]["IPAddress"]

    @property
    def network(self):
        return self.server["openclaw_docker_network"]

    @property
    def services_network(self):
        return self.server["openclaw_docker_network"] + "-services"

    def secret(self, name):
        return (self.root / "secrets" / name).read_text(encoding="utf-8").strip()

    def exec_as_tenant(self, name, command, environment=None):
        """Runs a command in the tenant's container as its user; returns (exit code, output)."""
        code, output = self.tenant(name).exec_run(command, user=TENANT_UID, environment=environment or {}, demux=False)
        return code, output.decode(errors="replace").strip()

    def connect_from(self, name, host, port):
        return self.exec_as_tenant(name, ["python3", "-c", CONNECT, host, str(port)])[1]

    def psql_from(self, name, user, password, database):
        """A login attempt from inside the tenant's container; returns (exit code, output)."""
        return self.exec_as_tenant(
            name,
            ["psql", "-X", "-w", "-h", self.server["openclaw_postgres_container"], "-U", user, "-d", database, "-tAc", "SELECT current_user"],
            environment={"PGPASSWORD": password, "PGCONNECT_TIMEOUT": "5"},
        )

    def cleanup(self):
        # Also removes the firewall chains of the tenants' bridge.
        remove_everything_named(self.client, self.ident)


class Listener:
    """A TCP server on the host that accepts and closes connections: something real to reach (or not)."""

    def __init__(self, address, port):
        self.socket = socket.socket()
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind((address, port))
        self.socket.listen(16)
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while True:
            try:
                connection, _peer = self.socket.accept()
            except OSError:
                return
            connection.close()

    def close(self):
        self.socket.close()


@pytest.fixture(scope="module")
def site(docker_client, test_images, tmp_path_factory):
    binary = nginx_binary()
    if binary is None:
        pytest.skip("nginx not found (apt-get install nginx)")
    nginx = NginxServer(binary=binary).start()
    built = HostileSite(docker_client, test_images, nginx, tmp_path_factory.mktemp("hostile"))
    try:
        built.recap = built.converge()
        yield built
    finally:
        built.cleanup()
        nginx.stop()


@pytest.fixture(scope="module")
def metadata_address():
    """169.254.169.254 on the host (this machine has no metadata service), with listeners on port 80 and the Docker API ports."""
    subprocess.run(["ip", "addr", "add", f"{METADATA_ADDRESS}/32", "dev", "lo"], check=True)
    try:
        # On every interface, like a Docker API exposed by mistake.
        everywhere = "0.0.0.0"  # noqa: S104
        listeners = [Listener(METADATA_ADDRESS, 80), Listener(everywhere, 2375), Listener(everywhere, 2376)]
        try:
            yield METADATA_ADDRESS
        finally:
            for listener in listeners:
                listener.close()
    finally:
        subprocess.run(["ip", "addr", "del", f"{METADATA_ADDRESS}/32", "dev", "lo"], check=False)


def host_can_connect(host, port):
    with socket.create_connection((host, port), timeout=4):
        return True


def test_tenant_cannot_reach_another_tenant(site):
    address_b = site.address(f"openclaw-{site.slug('b')}", site.network)
    address_a = site.address(f"openclaw-{site.slug('a')}", site.network)
    # Positive controls: both gateways listen on the network address, and the
    # probe crosses the bridge to an allowed container (PostgreSQL).
    assert site.connect_from("b", address_b, 18790) == "open"
    assert site.connect_from("a", address_a, 18790) == "open"
    assert site.connect_from("a", site.server["openclaw_postgres_container"], 5432) == "open"
    # The attack: tenant A opens tenant B's gateway directly, bypassing nginx and TLS.
    assert site.connect_from("a", address_b, 18790) != "open"
    assert site.connect_from("a", address_b, 18789) != "open"
    assert site.connect_from("b", address_a, 18790) != "open"


def test_tenant_cannot_reach_the_shared_services(site):
    webhook = site.server["openclaw_webhook_container"]
    upload = site.server["openclaw_upload_container"]
    # Positive control: the services answer where they should (their loopback-published ports).
    assert host_can_connect("127.0.0.1", site.webhook_port)
    assert host_can_connect("127.0.0.1", site.upload_port)
    targets = [
        (site.address(webhook, site.services_network), 3000),
        (site.address(webhook, site.network), 3000),
        (site.address(upload, site.services_network), 3001),
        (webhook, 3000),
        # PostgreSQL's address on the services' network (where the superuser is accepted).
        (site.address(site.server["openclaw_postgres_container"], site.services_network), 5432),
    ]
    for host, port in targets:
        assert site.connect_from("a", host, port) != "open", (host, port)


def test_postgresql_accepts_a_tenant_only_as_its_own_role_on_its_own_database(site):
    role_a = database_a = f"openclaw_{site.slug('a')}"
    role_b = database_b = f"openclaw_{site.slug('b')}"
    password_a = site.secret(f"db-{site.slug('a')}.password")
    password_b = site.secret(f"db-{site.slug('b')}.password")
    superuser_password = site.secret("postgres_password")

    # Positive control: the tenant's own role on its own database, with the
    # URL its gateway gets, and with psql's separate options.
    code, output = site.exec_as_tenant("a", ["sh", "-c", 'psql -X -w "$OPENCLAW_DB_URL" -tAc "SELECT current_user"'])
    assert (code, output) == (0, role_a)
    assert site.psql_from("a", role_a, password_a, database_a) == (0, role_a)

    attempts = [
        ("postgres", superuser_password, "postgres"),
        ("postgres", superuser_password, database_a),
        ("postgres", superuser_password, "openclaw"),
        (role_a, password_a, "postgres"),
        (role_a, password_a, "template1"),
        (role_a, password_a, "openclaw"),
        (role_a, password_a, database_b),
        # Even with B's password: not from A's side onto anything but B's own database.
        (role_b, password_b, database_a),
        (role_b, password_b, "postgres"),
        (role_b, password_b, "template1"),
    ]
    for user, password, database in attempts:
        code, output = site.psql_from("a", user, password, database)
        assert code != 0, (user, database, output)
        # Refused by the rules themselves, before any password is checked.
        assert "pg_hba.conf rejects connection" in output, (user, database, output)

    # The superuser is accepted from the host (its loopback-published port) ...
    connection = psycopg2.connect(host="127.0.0.1", port=site.postgres_port, user="postgres", password=superuser_password, dbname="postgres")
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_user")
            assert cursor.fetchone() == ("postgres",)
    finally:
        connection.close()
    # ... and not from the shared services' containers.
    upload = site.container(site.server["openclaw_upload_container"])
    psql = ["psql", "-X", "-w", "-h", site.server["openclaw_postgres_container"], "-U", "postgres", "-d", "postgres", "-tAc", "SELECT 1"]
    code, output = upload.exec_run(psql, environment={"PGPASSWORD": superuser_password, "PGCONNECT_TIMEOUT": "5"})
    assert code != 0 and "pg_hba.conf rejects connection" in output.decode(), output


def test_no_link_local_metadata_and_no_docker_api(site, metadata_address):
    network = next(n for n in site.client.networks.list(names=[site.network]) if n.name == site.network)
    gateway = network.attrs["IPAM"]["Config"][0]["Gateway"]
    # Positive controls: the listeners are real and reachable from the host,
    # and the same probe code reaches an allowed target from the tenant.
    assert host_can_connect(metadata_address, 80)
    assert host_can_connect(gateway, 2375)
    assert host_can_connect(gateway, 2376)
    assert site.connect_from("a", site.server["openclaw_postgres_container"], 5432) == "open"
    # ... and a container outside the tenants' network (the upload service) reaches them with the same probe.
    upload = site.container(site.server["openclaw_upload_container"])
    services_gateway = next(n for n in site.client.networks.list(names=[site.services_network]) if n.name == site.services_network)
    services_gateway = services_gateway.attrs["IPAM"]["Config"][0]["Gateway"]
    assert upload.exec_run(["python3", "-c", CONNECT, metadata_address, "80"])[1].decode().strip() == "open"
    assert upload.exec_run(["python3", "-c", CONNECT, services_gateway, "2375"])[1].decode().strip() == "open"
    # The attacks.
    assert site.connect_from("a", metadata_address, 80) != "open"
    for port in (2375, 2376):
        assert site.connect_from("a", gateway, port) != "open"
    # No Docker socket in the container (a regular file is seen: the probe works).
    assert site.exec_as_tenant("a", ["test", "-e", "/var/run/docker.sock"])[0] != 0
    assert site.exec_as_tenant("a", ["test", "-e", "/etc/hostname"])[0] == 0


def https_request(site, host, path, headers):
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", site.https_port), timeout=10) as raw, context.wrap_socket(raw, server_hostname=host) as tls:
        connection = http.client.HTTPConnection(host)
        connection.sock = tls
        connection.request("GET", path, headers={"Host": host, **headers})
        response = connection.getresponse()
        return response.status, response.read().decode()


def test_forwarded_for_cannot_be_forged(site):
    slug_a = site.slug("a")
    environment = dict(entry.split("=", 1) for entry in site.tenant("a").attrs["Config"]["Env"])
    token_a = environment["OPENCLAW_GATEWAY_TOKEN"]
    config = json.loads((site.root / "clients" / slug_a / ".openclaw" / "openclaw.json").read_text(encoding="utf-8"))
    # Trusted: only where nginx's traffic arrives from (the relay in the container), no range other containers sit in.
    assert config["gateway"]["trustedProxies"] == ["127.0.0.1"]

    status, body = https_request(site, f"{slug_a}.{DOMAIN}", "/__standin/request", {"Authorization": f"Bearer {token_a}", "X-Forwarded-For": "6.6.6.6"})
    assert status == 200, body
    seen = json.loads(body)
    # The gateway's peer is the trusted relay, and the forwarded address is
    # nginx's client (this test, on loopback), not the forged one.
    assert seen["client"]["host"] == "127.0.0.1"
    assert seen["headers"]["x-forwarded-for"] == "127.0.0.1"
    assert "6.6.6.6" not in body

    # Another container cannot even open the connection that would carry a forged header.
    address_a = site.address(f"openclaw-{slug_a}", site.network)
    # Any HTTP status (the gateway refuses a request without its token) means it answered.
    forged = (
        "import sys, urllib.error, urllib.request\n"
        "request = urllib.request.Request(sys.argv[1], headers={'X-Forwarded-For': '127.0.0.1'})\n"
        "try:\n"
        "    urllib.request.urlopen(request, timeout=4)\n"
        "    print('answered')\n"
        "except urllib.error.HTTPError:\n"
        "    print('answered')\n"
        "except Exception as error:\n"
        "    print(type(error).__name__)\n"
    )
    assert site.exec_as_tenant("b", ["python3", "-c", forged, f"http://{address_a}:18790/healthz"])[1] != "answered"
    # Positive control: the same request from A's own container is answered.
    assert site.exec_as_tenant("a", ["python3", "-c", forged, f"http://{address_a}:18790/healthz"])[1] == "answered"


def test_converge_wrote_the_isolation(site):
    network = next(n for n in site.client.networks.list(names=[site.network]) if n.name == site.network)
    assert network.attrs["Options"].get("com.docker.network.bridge.enable_icc") == "false"
    bridge = "br-" + network.id[:12]
    rules = subprocess.run(["iptables", "-w", "-S", f"OPENCLAW-F-{bridge}"], capture_output=True, text=True, check=True).stdout
    assert "-d 169.254.0.0/16 -j REJECT" in rules
    hba = Path(site.server["openclaw_server_lib_dir"], "postgres", "pg_hba.conf").read_text(encoding="utf-8")
    assert "sameuser" in hba


def test_the_services_answer_through_nginx_each_tenant_with_its_own_secrets(site):
    """Meta's and the client's way in (nginx on the bare domain); a tenant's own secrets open nothing of another's."""
    from ansible_collections.openclaw.standalone.plugins.module_utils import upload_links

    slug_a, slug_b = site.slug("a"), site.slug("b")
    verify_a = (site.root / "clients" / slug_a / "leadgen_verify_token").read_text(encoding="utf-8").strip()
    subscribe = "/openclaw/webhook/{slug}?hub.mode=subscribe&hub.challenge=31337&hub.verify_token={token}"
    assert https_request(site, DOMAIN, subscribe.format(slug=slug_a, token=verify_a), {}) == (200, "31337")
    # Attack: tenant A's verify token (which its operator knows) on tenant B's webhook.
    assert https_request(site, DOMAIN, subscribe.format(slug=slug_b, token=verify_a), {})[0] == 403

    # The link the agent hands out, made inside tenant A's container.
    code, link = site.exec_as_tenant("a", ["openclaw-upload-link"])
    assert code == 0 and link.startswith(f"https://{DOMAIN}/openclaw/upload/{slug_a}/#"), link
    token = link.split("#", 1)[1]
    status, body = https_request(site, DOMAIN, f"/openclaw/upload/{slug_a}/directions", {"Authorization": f"Bearer {token}"})
    assert (status, json.loads(body)) == (200, [])
    # Attack: tenant A signs a link for tenant B with the upload key in its own environment.
    environment = dict(entry.split("=", 1) for entry in site.tenant("a").attrs["Config"]["Env"])
    forged = upload_links.make_token(environment["OPENCLAW_UPLOAD_SECRET"], slug_b)
    assert https_request(site, DOMAIN, f"/openclaw/upload/{slug_b}/directions", {"Authorization": f"Bearer {forged}"})[0] == 401
    # Positive control: the same key signs a link for A's own slug that the service accepts.
    own = upload_links.make_token(environment["OPENCLAW_UPLOAD_SECRET"], slug_a)
    assert https_request(site, DOMAIN, f"/openclaw/upload/{slug_a}/directions", {"Authorization": f"Bearer {own}"})[0] == 200
    # The page itself carries no tenant data and loads without a token.
    status, page = https_request(site, DOMAIN, f"/openclaw/upload/{slug_a}/", {})
    assert status == 200 and 'id="file"' in page and 'src="app.js"' in page
