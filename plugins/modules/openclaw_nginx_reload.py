#!/usr/bin/python
# Copyright: openclaw.standalone contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: openclaw_nginx_reload
short_description: Reload nginx only when its files changed, confirm the new configuration serves, roll back when it does not
version_added: 0.4.0
description:
  - Fingerprints the files that define what nginx should serve (O(fingerprint_files), by content) and asks nginx,
    through the loopback config-id endpoint on O(status_port), which fingerprint it is serving. When they match (and
    O(force) is not set) nothing is done - the whole no-op is one module run.
  - Otherwise writes the new fingerprint into O(status_file) (the endpoint's C(location)), tests the live
    configuration (C(nginx -t); a map hash warning fails too), reloads (or starts nginx when no master process runs),
    and waits up to O(confirm_timeout) seconds for the endpoint to report the new fingerprint - C(nginx -s reload)
    returns 0 even when the new configuration cannot be applied (a listen port in use). Then O(managed_files) are
    kept in O(good_dir) as the last good configuration.
  - On any failure the last good files come back, nginx is reloaded on them, and the module fails naming the cause.
author: OpenClaw Standalone maintainers (@openclaw-standalone)
extends_documentation_fragment:
  - openclaw.standalone.attributes
attributes:
  check_mode:
    support: full
    details: Reports whether a reload is due; writes, tests and reloads nothing.
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  command:
    description:
      - The nginx command line without its action, for example V([/usr/sbin/nginx, -c, /etc/nginx/nginx.conf]);
        C(-t) and C(-s reload) are appended to it, and it is run as it is to start nginx.
    type: list
    elements: str
    required: true
  fingerprint_files:
    description:
      - Files whose content defines what nginx should be serving (the site, the tenant map, the certificate and its
        key), in a fixed order. A missing file counts as V(missing).
    type: list
    elements: path
    required: true
  managed_files:
    description:
      - Files kept in O(good_dir) after a confirmed reload and restored from there as a set when a new
        configuration fails. The first is the one whose copy tells that a last good configuration exists.
    type: list
    elements: path
    required: true
  status_file:
    description:
      - The file included in the site that makes the config-id endpoint answer with the fingerprint.
    type: path
    required: true
  status_port:
    description:
      - Port on 127.0.0.1 of the config-id endpoint (C(/__openclaw/config)).
    type: int
    required: true
  good_dir:
    description:
      - Directory of the last good configuration.
    type: path
    required: true
  confirm_timeout:
    description:
      - Seconds to wait for the reloaded nginx to report the new fingerprint.
    type: int
    default: 15
  force:
    description:
      - Test, reload and confirm even when nginx already reports the fingerprint (for example when a route changed in
        check mode, where the files themselves are not changed).
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Reload nginx when its files changed, with confirmation and rollback
  openclaw.standalone.openclaw_nginx_reload:
    command: [/usr/sbin/nginx, -c, /etc/nginx/nginx.conf]
    fingerprint_files:
      - /etc/nginx/sites-enabled/openclaw.conf
      - /etc/nginx/openclaw/tenants.map
      - /etc/ssl/openclaw/fullchain.pem
      - /etc/ssl/openclaw/privkey.pem
    managed_files:
      - /etc/nginx/sites-enabled/openclaw.conf
      - /etc/nginx/openclaw/tenants.map
      - /etc/nginx/openclaw/config-id.conf
    status_file: /etc/nginx/openclaw/config-id.conf
    status_port: 18999
    good_dir: /etc/nginx/openclaw/last-good
"""

RETURN = r"""
config_id:
  description: Fingerprint of the files that should be serving.
  returned: always
  type: str
serving:
  description: Fingerprint nginx reported before the run (empty when it did not answer).
  returned: always
  type: str
reloaded:
  description: Whether nginx was reloaded (or started) on the new files and confirmed.
  returned: always
  type: bool
"""

import hashlib
import http.client
import os
import shutil
import tempfile
import time

from ansible.module_utils import urls
from ansible.module_utils.basic import AnsibleModule

NOT_RUNNING = ("nginx.pid", "invalid PID")
HASH_WARNING = "could not build optimal"


class ReloadFailure(Exception):
    """The new configuration was refused or did not start serving; the message says which."""


def file_checksum(path):
    """sha256 of a regular file's content, or V(missing) for anything else."""
    if not os.path.isfile(path):
        return "missing"
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def config_id(paths):
    return hashlib.sha256("-".join(file_checksum(path) for path in paths).encode("utf-8")).hexdigest()


def serving_id(port):
    """The fingerprint nginx answers on the loopback endpoint, or '' when it does not answer."""
    try:
        with urls.open_url("http://127.0.0.1:%d/__openclaw/config" % port, timeout=5, use_proxy=False) as response:
            return response.read().decode("utf-8", "replace").strip()
    except (OSError, http.client.HTTPException, urls.ConnectionError):  # URLError is an OSError; any failure to answer means "not serving it"
        return ""


def write_file(module, path, content):
    """``content`` into ``path`` (0644) through a new file renamed into place."""
    handle, candidate = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), dir=os.path.dirname(path) or ".")
    with os.fdopen(handle, "w", encoding="utf-8") as output:
        output.write(content)
    os.chmod(candidate, 0o644)
    module.atomic_move(candidate, path)


def copy_file(module, source, destination):
    handle, candidate = tempfile.mkstemp(prefix=".%s." % os.path.basename(destination), dir=os.path.dirname(destination) or ".")
    os.close(handle)
    shutil.copyfile(source, candidate)
    os.chmod(candidate, 0o644)
    module.atomic_move(candidate, destination)


class Reload:
    def __init__(self, module):
        self.module = module
        self.params = module.params

    def nginx(self, *args):
        return self.module.run_command(self.params["command"] + list(args))

    def apply(self, wanted):
        """Write the fingerprint, test, reload (or start), confirm; ReloadFailure naming the cause."""
        write_file(self.module, self.params["status_file"], 'location = /__openclaw/config { return 200 "%s\\n"; }\n' % wanted)
        rc, _out, err = self.nginx("-t")
        if rc != 0 or HASH_WARNING in err or "[emerg]" in err:
            raise ReloadFailure("failed nginx -t: " + err.strip())
        rc, _out, err = self.nginx("-s", "reload")
        if rc != 0:
            if not any(marker in err for marker in NOT_RUNNING):
                raise ReloadFailure("nginx -s reload failed (%d): %s" % (rc, err.strip()))
            # No master process to signal (a host without an init system, or nginx stopped): start it.
            rc, _out, err = self.nginx()
            if rc != 0:
                raise ReloadFailure("nginx did not start (%d): %s" % (rc, err.strip()))
        deadline = time.monotonic() + self.params["confirm_timeout"]
        while serving_id(self.params["status_port"]) != wanted:
            if time.monotonic() >= deadline:
                raise ReloadFailure("did not start serving within %ds (a listen port in use? see the nginx error log)" % self.params["confirm_timeout"])
            time.sleep(1)

    def keep_as_good(self):
        os.makedirs(self.params["good_dir"], mode=0o755, exist_ok=True)
        for path in self.params["managed_files"]:
            copy_file(self.module, path, os.path.join(self.params["good_dir"], os.path.basename(path)))

    def restore(self):
        """Put the last good files back and reload them; False when there is no last good copy yet."""
        good = [os.path.join(self.params["good_dir"], os.path.basename(path)) for path in self.params["managed_files"]]
        if not os.path.isfile(good[0]):
            return False
        for source, destination in zip(good, self.params["managed_files"]):
            if os.path.isfile(source):
                copy_file(self.module, source, destination)
        self.nginx("-s", "reload")
        return True


def main():
    module = AnsibleModule(
        argument_spec=dict(
            command=dict(type="list", elements="str", required=True),
            fingerprint_files=dict(type="list", elements="path", required=True),
            managed_files=dict(type="list", elements="path", required=True),
            status_file=dict(type="path", required=True),
            status_port=dict(type="int", required=True),
            good_dir=dict(type="path", required=True),
            confirm_timeout=dict(type="int", default=15),
            force=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if not params["command"] or not params["managed_files"]:
        module.fail_json(msg="command and managed_files must not be empty")
    wanted = config_id(params["fingerprint_files"])
    result = dict(changed=False, config_id=wanted, serving=serving_id(params["status_port"]), reloaded=False)
    if result["serving"] == wanted and not params["force"]:
        module.exit_json(**result)
    result["changed"] = True
    if module.check_mode:
        result["msg"] = "The routes or the site changed; nginx would be tested, reloaded and confirmed."
        module.exit_json(**result)
    run = Reload(module)
    try:
        run.apply(wanted)
    except (ReloadFailure, OSError) as exc:
        restored = run.restore()
        module.fail_json(
            msg="nginx was not changed: the new configuration %s. %s"
            % (
                exc,
                "The last good files were restored and reloaded."
                if restored
                else "No last good copy existed yet; the files are left as written and nginx serves what it served before.",
            ),
            **result,
        )
    run.keep_as_good()
    result["reloaded"] = True
    module.exit_json(**result)


if __name__ == "__main__":
    main()
