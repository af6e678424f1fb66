# Copyright: openclaw.standalone contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Note that this module util is **PRIVATE** to the collection. It can have
# breaking changes at any time.
"""Secrets kept in files on the managed host, read there so they never travel to the controller."""

from __future__ import annotations


class SecretFileError(Exception):
    """A secret file that cannot be read or is empty; the message names the option and the path."""


def load_secret_file(path, option):
    """The secret kept in ``path`` on the managed host, for code that reports failures itself."""
    try:
        with open(path, encoding="utf-8") as handle:
            secret = handle.read().strip()
    except OSError as exc:
        raise SecretFileError("cannot read %s %s: %s" % (option, path, exc.strerror)) from exc
    if not secret:
        raise SecretFileError("%s %s is empty" % (option, path))
    return secret


def read_secret_file(module, path, option):
    """A secret kept in a file on the managed host; registered so it is masked in every output."""
    try:
        secret = load_secret_file(path, option)
    except SecretFileError as exc:
        module.fail_json(msg=str(exc))
    module.no_log_values.add(secret)
    return secret
