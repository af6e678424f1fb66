#!/usr/bin/env bash
# The collection as Galaxy and the documentation site see it: galaxy-importer
# on the built tarball (its ansible-test and ansible-lint steps are off, since
# `make lint` runs both itself) and antsibull-docs' lint of every plugin's and
# role's documentation. Both tools live in a venv of their own under the cache:
# they pin their own ansible-core and ansible-lint, which must not move the
# collection's toolchain. Any warning or error of either fails the check.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache="${OPENCLAW_CACHE_DIR:-$repo/.cache}"
venv="$cache/docs-check-venv"
requirements="$repo/requirements/docs-check.txt"

if [[ ! -x "$venv/bin/antsibull-docs" ]] || ! cmp -s "$requirements" "$venv/requirements.txt"; then
    rm -rf "$venv"
    /usr/bin/python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$requirements"
    cp "$requirements" "$venv/requirements.txt"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export PATH="$venv/bin:$PATH"

ansible-galaxy collection build --output-path "$work" "$repo" >/dev/null
printf '[galaxy-importer]\nRUN_ANSIBLE_TEST = False\nRUN_ANSIBLE_LINT = False\n' >"$work/galaxy-importer.cfg"
if ! GALAXY_IMPORTER_CONFIG="$work/galaxy-importer.cfg" python -m galaxy_importer.main "$work"/openclaw-standalone-*.tar.gz >"$work/import.log" 2>&1; then
    cat "$work/import.log" >&2
    echo "galaxy-importer refused the collection" >&2
    exit 1
fi
if grep -E "WARNING|ERROR" "$work/import.log" >&2; then
    echo "galaxy-importer: the findings above" >&2
    exit 1
fi
echo "galaxy-importer: $(tail -n 1 "$work/import.log")"

# antsibull-docs finds the collection where ansible-core does (make setup links it).
ANSIBLE_COLLECTIONS_PATH="$repo/.build/collections" \
    antsibull-docs lint-collection-docs --plugin-docs --skip-rstcheck "$repo/.build/collections/ansible_collections/openclaw/standalone"
echo "antsibull-docs: collection documentation lint passed"
