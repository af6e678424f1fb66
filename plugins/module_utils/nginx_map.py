# Copyright: openclaw.standalone contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Note that this module util is **PRIVATE** to the collection. It can have
# breaking changes at any time.
"""Entries of an nginx `map` block file: parse, change one entry, render back.

Only lines of the form `key value;` (with an optional trailing comment) are
entries; every other line - comments, blank lines, other directives - is kept
byte for byte, so hand-written parts of the file survive.
"""

from __future__ import annotations

import re

from ansible_collections.openclaw.standalone.plugins.module_utils.validation import NGINX_MAP_KEYWORDS

_ENTRY = re.compile(r"^(?P<indent>[ \t]*)(?P<key>[^\s;#]+)[ \t]+(?P<value>[^\s;#]+)[ \t]*;(?P<trailer>[ \t]*(#.*)?)$")
# Characters nginx's tokenizer treats specially, or that would end or split a token.
_FORBIDDEN = re.compile(r"[\s;'\"{}#\\$]")


def token_problem(kind, text):
    """Why ``text`` cannot be written as a map key or value, or None."""
    if not isinstance(text, str) or not text:
        return "%s must be a non-empty string" % kind
    match = _FORBIDDEN.search(text)
    if match:
        return "%s %r contains %r; whitespace, ';', quotes, braces, '#', '\\\\' and '$' would change how nginx reads the map" % (kind, text, match.group())
    if kind == "key":
        if text in NGINX_MAP_KEYWORDS:
            return "key %r is a map keyword (%s)" % (text, ", ".join(sorted(NGINX_MAP_KEYWORDS)))
        if text.startswith("~"):
            return "key %r would be read as a regular expression" % text
    return None


def parse(text):
    """Lines of the file, each ('entry', key, value, line) or ('other', None, None, line)."""
    lines = []
    for line in text.splitlines():
        match = _ENTRY.match(line)
        if match and match.group("key") not in NGINX_MAP_KEYWORDS:
            lines.append(("entry", match.group("key"), match.group("value"), line))
        else:
            lines.append(("other", None, None, line))
    return lines


def entries(text):
    return {key: value for kind, key, value, _line in parse(text) if kind == "entry"}


def apply(text, key, value, state):
    """The new file text with ``key`` set to ``value`` (present) or removed (absent).

    The first entry of ``key`` is updated in place (keeping its indent and
    trailing comment); later duplicates are dropped, since nginx refuses a map
    with the same key twice. A new key is appended at the end.
    """
    out = []
    found = False
    for kind, entry_key, _entry_value, line in parse(text):
        if kind == "entry" and entry_key == key:
            if state == "present" and not found:
                match = _ENTRY.match(line)
                out.append("%s%s %s;%s" % (match.group("indent"), key, value, match.group("trailer")))
            found = True
            continue
        out.append(line)
    if state == "present" and not found:
        indent = ""
        for kind, _key, _value, line in parse(text):
            if kind == "entry":
                indent = _ENTRY.match(line).group("indent")
        out.append("%s%s %s;" % (indent, key, value))
    return "\n".join(out) + "\n" if out else ""
