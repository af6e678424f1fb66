#!/usr/bin/env bash
# ansible-test only runs inside .../ansible_collections/<namespace>/<name>/, so
# the checkout's files (tracked and new, not ignored) are copied to such a
# path under .build/ and tested there. The tests run in a venv of their own
# (--local with --requirements): ansible-test's --venv mode bootstraps pip from
# a download site outside the package registries, which is not reachable here.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dest="$repo/.build/sanity/ansible_collections/openclaw/standalone"
cache="${OPENCLAW_CACHE_DIR:-$repo/.cache}"
sanity_venv="$cache/sanity-venv"
ansible_core=$(grep -E '^ansible-core==' "$repo/requirements/controller.txt")

if [[ ! -x "$sanity_venv/bin/ansible-test" ]] || ! "$sanity_venv/bin/pip" show -q "${ansible_core%%==*}" 2>/dev/null | grep -q . ||
    [[ "$("$sanity_venv/bin/python" -c 'import ansible; print(ansible.__version__)')" != "${ansible_core##*==}" ]]; then
    rm -rf "$sanity_venv"
    /usr/bin/python3 -m venv "$sanity_venv"
    "$sanity_venv/bin/pip" install -q --disable-pip-version-check "$ansible_core"
fi
# The pip bootstrap ansible-test would download; see the script for why.
pip_version=$("$sanity_venv/bin/python" -c 'from ansible_test._internal.python_requirements import get_venv_packages as g; print(g(type("P", (), {"version": ""})())["pip"])')
get_pip_cache="$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"
mkdir -p "$(dirname "$get_pip_cache")"
cp "$repo/tools/ansible-test-get-pip.py" "$get_pip_cache"

python_version=$("$sanity_venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')

rm -rf "$dest"
mkdir -p "$dest"
cd "$repo"
git ls-files -z --cached --others --exclude-standard |
    while IFS= read -r -d '' path; do [[ -e "$path" ]] && printf '%s\0' "$path"; done |
    tar --null --files-from=- -cf - | tar -xf - -C "$dest"

cd "$dest"
# ansible-test lists a collection's files with git; without a repository of its
# own, the copy would be listed through (and ignored by) the checkout's.
git init -q .
git add -A
exec "$sanity_venv/bin/ansible-test" sanity --local --requirements --python "$python_version" --color no "$@"
