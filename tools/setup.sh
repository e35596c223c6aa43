#!/usr/bin/env bash
# Installs the Debian packages Keel builds against, only when something is missing.
set -euo pipefail

packages=(pkg-config libopenblas-dev libprotobuf-c-dev protobuf-c-compiler libpng-dev libjpeg62-turbo-dev)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done

if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]}"
    sudo_cmd=()
    [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
    export DEBIAN_FRONTEND=noninteractive
    "${sudo_cmd[@]}" apt-get update -qq
    "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

pkg-config --exists openblas libprotobuf-c || {
    echo "setup: pkg-config cannot find openblas or libprotobuf-c after installing" >&2
    exit 1
}
