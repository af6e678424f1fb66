# Copyright: openclaw.standalone contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checks a rendered openclaw.json against the gateway's schema on the controller.

The gateway refuses to start on a configuration that does not match its
schema exactly, and every tenant restarts into the same refusal. Checking the
rendered file here turns that crash loop into a failed preflight that names
the key and the rule, before anything changed.
"""

from __future__ import annotations

import json
import re
import traceback

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_native

try:
    import jsonschema
except ImportError:
    jsonschema = None
    JSONSCHEMA_IMPORT_ERROR = traceback.format_exc()
else:
    JSONSCHEMA_IMPORT_ERROR = None

# The gateway substitutes ${NAME} (upper-case names only) in every string of
# its configuration and refuses to load it when NAME is unset or empty.
ENV_REFERENCE = re.compile(r"(?<!\$)\$\{([^}]*)\}")
ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")

_SCHEMAS = {}


def _schema(path):
    if path not in _SCHEMAS:
        try:
            with open(path, encoding="utf-8") as handle:
                _SCHEMAS[path] = json.load(handle)
        except (OSError, ValueError) as exc:
            raise AnsibleFilterError("cannot read the gateway schema %s: %s" % (path, to_native(exc))) from exc
    return _SCHEMAS[path]


def _resolve(root, reference):
    node = root
    for part in reference.lstrip("#/").split("/"):
        node = node[part]
    return node


def _rule(root, schema_path):
    """The x-message of the rule an error comes from: cross-field rules (if/then) say it better than the keyword."""
    node, rule = root, None
    for part in schema_path:
        while isinstance(node, dict) and "$ref" in node and part not in node:
            node = _resolve(root, node["$ref"])
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            break
        if isinstance(node, dict) and "x-message" in node:
            rule = node["x-message"]
    return rule


def _dotted(path):
    text = ""
    for part in path:
        text += "[%d]" % part if isinstance(part, int) else ("." if text else "") + str(part)
    return text or "(root)"


def _strings(value, path=()):
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, (*path, index))


def gateway_config_problems(config, schema_file, env_names=None):
    """Every reason the gateway would refuse ``config``, as 'openclaw.json: <key>: <rule>' lines.

    ``config`` is the rendered file (text) or its data; ``env_names``, when
    given, are the variables the container's environment will hold, so a
    ${NAME} reference to anything else is reported too.
    """
    if jsonschema is None:
        raise AnsibleFilterError("gateway_config_problems needs the jsonschema library on the controller: %s" % JSONSCHEMA_IMPORT_ERROR)
    if isinstance(config, str):
        try:
            config = json.loads(config)
        except ValueError as exc:
            return ["openclaw.json: not valid JSON (%s)" % to_native(exc)]
    schema = _schema(schema_file)
    validator = jsonschema.Draft7Validator(schema)
    problems = []
    for error in sorted(validator.iter_errors(config), key=lambda item: list(map(str, item.absolute_path))):
        rule = _rule(schema, error.absolute_schema_path)
        problems.append("openclaw.json: %s: %s" % (_dotted(error.absolute_path), rule or error.message))
    for path, text in _strings(config):
        for name in ENV_REFERENCE.findall(text):
            if not ENV_NAME.fullmatch(name):
                problems.append("openclaw.json: %s: ${%s} is not substituted (names are upper case: [A-Z_][A-Z0-9_]*)" % (_dotted(path), name))
            elif env_names is not None and name not in env_names:
                problems.append("openclaw.json: %s: ${%s} is not set in the container, so the gateway would refuse the file" % (_dotted(path), name))
    if isinstance(config, dict):
        gateway_token = ((config.get("gateway") or {}).get("auth") or {}).get("token")
        hooks_token = (config.get("hooks") or {}).get("token")
        if hooks_token and hooks_token == gateway_token:
            problems.append("openclaw.json: hooks.token: must not be the gateway token (gateway.auth.token)")
    return problems


class FilterModule:
    def filters(self):
        return {"gateway_config_problems": gateway_config_problems}
