"""Parsing and editing nginx map include files."""

from __future__ import annotations

import pytest

from ansible_collections.openclaw.standalone.plugins.module_utils.nginx_map import apply, entries, token_problem

FILE = """\
# tenants of srv1 - managed entries below, hand-written notes kept
    aliya 127.0.0.1:18801;   # first tenant
    bob 127.0.0.1:18802;

# a note in the middle
    carol 127.0.0.1:18803;
"""


def test_entries_are_read_and_comments_ignored():
    assert entries(FILE) == {"aliya": "127.0.0.1:18801", "bob": "127.0.0.1:18802", "carol": "127.0.0.1:18803"}


def test_update_keeps_indent_trailing_comment_and_everything_else():
    after = apply(FILE, "aliya", "127.0.0.1:19000", "present")
    assert after == FILE.replace("aliya 127.0.0.1:18801;", "aliya 127.0.0.1:19000;")


def test_add_appends_with_the_files_indent():
    after = apply(FILE, "dave", "127.0.0.1:18804", "present")
    assert after == FILE + "    dave 127.0.0.1:18804;\n"
    assert apply(after, "dave", "127.0.0.1:18804", "present") == after


def test_remove_deletes_only_that_entry():
    assert apply(FILE, "bob", None, "absent") == FILE.replace("    bob 127.0.0.1:18802;\n", "")
    assert apply(FILE, "zed", None, "absent") == FILE


def test_duplicates_collapse_to_the_first_entry():
    text = "a 1;\nb 2;\na 3;\n"
    assert apply(text, "a", "9", "present") == "a 9;\nb 2;\n"
    assert apply(text, "a", None, "absent") == "b 2;\n"


def test_map_keywords_are_not_entries():
    text = "default 127.0.0.1:1;\nhostnames;\naliya 127.0.0.1:2;\n"
    assert entries(text) == {"aliya": "127.0.0.1:2"}
    assert apply(text, "aliya", None, "absent") == "default 127.0.0.1:1;\nhostnames;\n"


def test_empty_file():
    assert apply("", "aliya", "127.0.0.1:1", "present") == "aliya 127.0.0.1:1;\n"
    assert apply("", "aliya", None, "absent") == ""


@pytest.mark.parametrize(
    ("kind", "text"),
    [
        ("key", ""),
        ("key", "ali ya"),
        ("key", "aliya;"),
        ("key", "ali'ya"),
        ("key", 'ali"ya'),
        ("key", "ali{ya"),
        ("key", "ali}ya"),
        ("key", "ali#ya"),
        ("key", "ali\\ya"),
        ("key", "ali\tya"),
        ("key", "ali\nya"),
        ("key", "default"),
        ("key", "include"),
        ("key", "hostnames"),
        ("key", "volatile"),
        ("key", "~^ali"),
        ("value", "127.0.0.1:1; evil"),
        ("value", "$remote_addr"),
        ("value", ""),
    ],
)
def test_tokens_nginx_would_misread_are_refused(kind, text):
    assert token_problem(kind, text) is not None


@pytest.mark.parametrize(("kind", "text"), [("key", "aliya"), ("key", "acme-corp"), ("value", "127.0.0.1:18801"), ("value", "unix:/run/x.sock")])
def test_plain_tokens_pass(kind, text):
    assert token_problem(kind, text) is None
