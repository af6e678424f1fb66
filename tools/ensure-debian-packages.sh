#!/usr/bin/env bash
# Installs the Debian packages the collection's demo and tests need, only when
# one is missing (a second run does nothing). Services are not started by the
# packages: the tests start their own on 127.0.0.1.
set -euo pipefail

packages=("$@")
missing=()
for package in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
    [[ "$status" == "install ok installed" ]] || missing+=("$package")
done
if ((${#missing[@]} == 0)); then
    echo "Debian packages: all ${#packages[@]} present"
    exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
    sudo=(sudo)
else
    sudo=()
fi
echo "Debian packages: installing ${missing[*]}"
# Keep package maintainer scripts from starting nginx, PostgreSQL, ... on
# public interfaces; only installs that we start ourselves should listen.
remove_policy=false
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee /usr/sbin/policy-rc.d >/dev/null
    "${sudo[@]}" chmod 0755 /usr/sbin/policy-rc.d
    remove_policy=true
fi
trap '[[ $remove_policy == true ]] && "${sudo[@]}" rm -f /usr/sbin/policy-rc.d' EXIT
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "Debian packages: installed ${#missing[@]}"
