"""The certificates role: a wildcard certificate from Pebble over DNS-01, served by nginx, renewed only when due."""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys

import pytest
import yaml
from cryptography import x509

from harness.ansible import REPO_ROOT, recap, run
from harness.bind import BindServer, named_binary
from harness.common import free_ports, stop_process, wait_for_port
from harness.pebble import HOOK, PebbleACME, pebble_binaries

DOMAIN = "tls.test"
STANDIN = REPO_ROOT / "tests" / "images" / "gateway" / "gateway_standin.py"
PLAYBOOK = "tests/playbooks/tls_site.yml"


@pytest.fixture
def tls_site(pebble, nginx_server, tmp_path):
    http_port, https_port, status_port, gateway_port = free_ports(4)
    gateway = subprocess.Popen(
        [sys.executable, str(STANDIN), "gateway", "--bind", "loopback", "--port", str(gateway_port), "--token", "t", "--allow-unconfigured"]
    )
    wait_for_port(gateway_port, 15, "gateway stand-in", process=gateway)
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    certs = tmp_path / "certs"
    settings = {
        "openclaw_domain": DOMAIN,
        "openclaw_cert_provider": "hook",
        "openclaw_cert_install_packages": False,
        "openclaw_cert_dir": str(certs),
        "openclaw_certbot_dir": str(tmp_path / "certbot"),
        "openclaw_cert_deploy_hook_path": str(tmp_path / "deploy-hook"),
        "openclaw_cert_reload_command": [
            nginx_server.binary,
            "-p",
            str(nginx_server.prefix),
            "-c",
            str(nginx_server.conf_file),
            "-e",
            str(nginx_server.error_log),
        ],
        "openclaw_acme_directory": pebble.directory_url,
        "openclaw_cert_auth_hook": f"{sys.executable} {HOOK} set",
        "openclaw_cert_cleanup_hook": f"{sys.executable} {HOOK} clear",
        "openclaw_cert_environment": {"REQUESTS_CA_BUNDLE": str(pebble.listener_ca), "OPENCLAW_CHALLTESTSRV_URL": pebble.challtestsrv_url},
        **nginx_server.role_variables(http_port, https_port, status_port, certs / "fullchain.pem", certs / "privkey.pem"),
    }
    inventory = {
        "all": {"vars": {**local, **settings}},
        "openclaw_servers": {"hosts": {"srv1": {}}},
        "openclaw_tenants": {"hosts": {"alpha": {"openclaw_server": "srv1", "openclaw_port": gateway_port}}},
    }
    path = tmp_path / "hosts.yml"
    path.write_text(yaml.safe_dump(inventory), encoding="utf-8")
    yield {"inventory": path, "certs": certs, "https_port": https_port, "pebble": pebble}
    stop_process(gateway)


def file_certificate(tls_site):
    return x509.load_pem_x509_certificate((tls_site["certs"] / "fullchain.pem").read_bytes())


def served_certificate(tls_site, name):
    context = ssl.create_default_context(cafile=str(tls_site["pebble"].root_ca))
    # Pebble's chain ends in an intermediate signed by the root fetched from /roots/0.
    with socket.create_connection(("127.0.0.1", tls_site["https_port"]), timeout=10) as raw, context.wrap_socket(raw, server_hostname=name) as tls:
        return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))


def test_wildcard_certificate_is_issued_served_and_renewed_only_when_due(tls_site):
    first = run("ansible-playbook", "-i", str(tls_site["inventory"]), PLAYBOOK)
    assert first.returncode == 0, first.stdout[-4000:]
    issued = file_certificate(tls_site)
    names = issued.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert sorted(names) == [f"*.{DOMAIN}", DOMAIN]
    assert (tls_site["certs"] / "privkey.pem").stat().st_mode & 0o777 == 0o600
    # The TLS handshake verifies the served chain against Pebble's root, for a tenant name under the wildcard.
    assert served_certificate(tls_site, f"alpha.{DOMAIN}").serial_number == issued.serial_number

    second = run("ansible-playbook", "-i", str(tls_site["inventory"]), PLAYBOOK)
    assert second.returncode == 0
    assert all(counters["changed"] == 0 for counters in recap(second.stdout).values()), second.stdout
    assert file_certificate(tls_site).serial_number == issued.serial_number

    # Pebble's certificates are valid for about five years: a 4000-day window forces a renewal.
    renewed = run("ansible-playbook", "-i", str(tls_site["inventory"]), PLAYBOOK, "-e", "openclaw_cert_renew_days=4000")
    assert renewed.returncode == 0, renewed.stdout[-4000:]
    new = file_certificate(tls_site)
    assert new.serial_number != issued.serial_number
    assert served_certificate(tls_site, f"beta.{DOMAIN}").serial_number == new.serial_number


def test_self_signed_certificate_for_offline_use(tmp_path):
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    settings = {"openclaw_domain": "openclaw.localhost", "openclaw_cert_install_packages": False, "openclaw_cert_dir": str(tmp_path / "certs")}
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump({"openclaw_servers": {"hosts": {"srv1": {**local, **settings}}}}), encoding="utf-8")
    play = [{"name": "Certificate", "hosts": "openclaw_servers", "gather_facts": False, "roles": [{"role": "openclaw.standalone.certificates"}]}]
    (tmp_path / "play.yml").write_text(yaml.safe_dump(play), encoding="utf-8")

    checked = run("ansible-playbook", "-i", str(tmp_path / "hosts.yml"), str(tmp_path / "play.yml"), "--check")
    assert checked.returncode == 0, checked.stdout[-3000:]
    assert recap(checked.stdout)["srv1"]["changed"] >= 1
    assert not (tmp_path / "certs" / "fullchain.pem").exists()

    first = run("ansible-playbook", "-i", str(tmp_path / "hosts.yml"), str(tmp_path / "play.yml"))
    assert first.returncode == 0, first.stdout[-3000:]
    certificate = x509.load_pem_x509_certificate((tmp_path / "certs" / "fullchain.pem").read_bytes())
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert sorted(names) == ["*.openclaw.localhost", "openclaw.localhost"]
    second = run("ansible-playbook", "-i", str(tmp_path / "hosts.yml"), str(tmp_path / "play.yml"))
    assert recap(second.stdout)["srv1"]["changed"] == 0


@pytest.fixture
def bind_and_pebble():
    """A BIND taking TSIG-signed updates for the zone, and a Pebble that validates DNS-01 against it."""
    named = named_binary()
    binaries = pebble_binaries()
    if named is None or binaries is None:
        pytest.skip("named (apt-get install bind9) or pebble not installed")
    with BindServer(binary=named, zone="rfc.test") as bind, PebbleACME(*binaries, dns_server=f"{bind.host}:{bind.port}") as acme:
        yield bind, acme


def test_rfc2136_provider_updates_a_real_dns_server(bind_and_pebble, tmp_path):
    bind, acme = bind_and_pebble
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    settings = {
        "openclaw_domain": "rfc.test",
        "openclaw_cert_provider": "rfc2136",
        "openclaw_cert_install_packages": False,
        "openclaw_cert_dir": str(tmp_path / "certs"),
        "openclaw_certbot_dir": str(tmp_path / "certbot"),
        "openclaw_cert_deploy_hook_path": str(tmp_path / "deploy-hook"),
        "openclaw_cert_reload_command": [],
        "openclaw_acme_directory": acme.directory_url,
        "openclaw_cert_environment": {"REQUESTS_CA_BUNDLE": str(acme.listener_ca)},
        "openclaw_cert_rfc2136_server": bind.host,
        "openclaw_cert_rfc2136_port": bind.port,
        "openclaw_cert_rfc2136_name": bind.key_name,
        "openclaw_cert_rfc2136_secret": bind.secret,
        "openclaw_cert_dns_propagation_seconds": 1,
    }
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump({"openclaw_servers": {"hosts": {"srv1": {**local, **settings}}}}), encoding="utf-8")
    play = [{"name": "Certificate", "hosts": "openclaw_servers", "gather_facts": False, "roles": [{"role": "openclaw.standalone.certificates"}]}]
    (tmp_path / "play.yml").write_text(yaml.safe_dump(play), encoding="utf-8")

    issued = run("ansible-playbook", "-i", str(tmp_path / "hosts.yml"), str(tmp_path / "play.yml"), "-v")
    assert issued.returncode == 0, issued.stdout[-4000:]
    assert bind.secret not in issued.stdout + issued.stderr
    credentials = tmp_path / "certbot" / "rfc2136.ini"
    assert credentials.stat().st_mode & 0o777 == 0o600
    certificate = x509.load_pem_x509_certificate((tmp_path / "certs" / "fullchain.pem").read_bytes())
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert sorted(names) == ["*.rfc.test", "rfc.test"]
    chain = x509.load_pem_x509_certificates((tmp_path / "certs" / "fullchain.pem").read_bytes())
    chain[-1].verify_directly_issued_by(x509.load_pem_x509_certificate(acme.root_ca.read_bytes()))


def test_changing_the_provider_replaces_the_certificate(tls_site):
    inventory = yaml.safe_load(tls_site["inventory"].read_text())
    inventory["all"]["vars"]["openclaw_cert_provider"] = "self_signed"
    tls_site["inventory"].write_text(yaml.safe_dump(inventory), encoding="utf-8")
    assert run("ansible-playbook", "-i", str(tls_site["inventory"]), PLAYBOOK).returncode == 0
    self_signed = file_certificate(tls_site)
    assert self_signed.issuer == self_signed.subject

    inventory["all"]["vars"]["openclaw_cert_provider"] = "hook"
    tls_site["inventory"].write_text(yaml.safe_dump(inventory), encoding="utf-8")
    switched = run("ansible-playbook", "-i", str(tls_site["inventory"]), PLAYBOOK)
    assert switched.returncode == 0, switched.stdout[-3000:]
    issued = file_certificate(tls_site)
    assert issued.issuer != issued.subject  # now from Pebble's intermediate
    assert served_certificate(tls_site, f"alpha.{DOMAIN}").serial_number == issued.serial_number
