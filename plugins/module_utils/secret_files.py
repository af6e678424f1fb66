# Copyright: openclaw.standalone contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Note that this module util is **PRIVATE** to the collection. It can have
# breaking changes at any time.
"""Secrets kept in files on the managed host, read there so they never travel to the controller."""

from __future__ import annotations


def read_secret_file(module, path, option):
    """A secret kept in a file on the managed host; registered so it is masked in every output."""
    try:
        with open(path, encoding="utf-8") as handle:
            secret = handle.read().strip()
    except OSError as exc:
        module.fail_json(msg="cannot read %s %s: %s" % (option, path, exc.strerror))
    if not secret:
        module.fail_json(msg="%s %s is empty" % (option, path))
    module.no_log_values.add(secret)
    return secret
