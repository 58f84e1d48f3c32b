#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian 12 machine, and nothing twice:
# Debian packages (servers the tests start), npm packages (into .cache/npm), and this package
# in editable mode with its test extra. Safe to run again; it only installs what is missing.
set -euo pipefail

# Debian packages the tests need: git for Git storage, PostgreSQL for the shared-registry tests.
APT_PACKAGES=(git postgresql openssh-server docker.io docker-registry debootstrap)
# npm packages as name@version, installed into .cache/npm (binaries in .cache/npm/node_modules/.bin).
# Azurite is Microsoft's Azure Blob Storage emulator.
NPM_PACKAGES=(azurite@3.37.0)

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
PYTHON=${PYTHON:-python3}

say() { printf 'bootstrap: %s\n' "$*"; }
die() { printf 'bootstrap: error: %s\n' "$*" >&2; exit 1; }

# --- Debian packages -------------------------------------------------------------------------
apt_missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    # dpkg -s also knows removed packages whose config is left: check the status line.
    if ! dpkg -s "$pkg" 2>/dev/null | grep -q '^Status: install ok installed'; then
        apt_missing+=("$pkg")
    fi
done
if [ ${#apt_missing[@]} -eq 0 ]; then
    say "Debian packages present: ${APT_PACKAGES[*]}"
else
    if [ "$(id -u)" -ne 0 ]; then
        die "missing Debian packages: ${apt_missing[*]}; run as root, or: sudo apt-get install ${apt_missing[*]}"
    fi
    say "installing Debian packages: ${apt_missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # The tests start their own servers: keep apt from starting system services.
    policy=/usr/sbin/policy-rc.d
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy"
        trap 'rm -f "$policy"' EXIT
    fi
    apt-get install -y -qq --no-install-recommends "${apt_missing[@]}" >/dev/null
    [ "$(trap -p EXIT)" ] && rm -f "$policy" && trap - EXIT
fi

# --- npm packages ----------------------------------------------------------------------------
npm_installed_version() {  # prints the version installed in .cache/npm, or nothing
    local manifest="$ROOT/.cache/npm/node_modules/$1/package.json"
    [ -f "$manifest" ] && node -p "require(process.argv[1]).version" "$manifest" 2>/dev/null || true
}

if [ ${#NPM_PACKAGES[@]} -gt 0 ]; then
    npm_missing=()
    for spec in "${NPM_PACKAGES[@]}"; do
        if [[ "$spec" == ?*@* ]]; then  # name@version (a scoped name starts with @ itself)
            name=${spec%@*} want=${spec##*@}
        else
            name=$spec want=""
        fi
        have=$(npm_installed_version "$name")
        if [ -z "$have" ] || { [ -n "$want" ] && [ "$have" != "$want" ]; }; then
            npm_missing+=("$spec")
        fi
    done
    if [ ${#npm_missing[@]} -eq 0 ]; then
        say "npm packages present in .cache/npm: ${NPM_PACKAGES[*]}"
    else
        command -v npm >/dev/null || die "npm is not installed; it is needed for: ${npm_missing[*]}"
        say "installing npm packages into .cache/npm: ${npm_missing[*]}"
        mkdir -p "$ROOT/.cache/npm"
        npm install --prefix "$ROOT/.cache/npm" --no-audit --no-fund --loglevel=error \
            "${npm_missing[@]}" >/dev/null
    fi
fi

# --- Python: this package, editable, with its test extra ---------------------------------------
# Re-run pip only when the packaging files, the interpreter or the checkout changed, or when
# `prefect_storage` no longer resolves to this checkout (e.g. after a plain `pip install .`).
stamp_file="$ROOT/.cache/bootstrap/pip.stamp"
stamp=$(cat setup.py pyproject.toml <("$PYTHON" -c 'import sys; print(sys.executable, sys.version)') \
        <(printf '%s\n' "$ROOT") | sha256sum | cut -d' ' -f1)
resolves_here() {
    (cd / && "$PYTHON" - "$ROOT" <<'PY'
import importlib.metadata, importlib.util, os, sys
importlib.metadata.distribution("prefect-storage")
spec = importlib.util.find_spec("prefect_storage")
where = list(spec.submodule_search_locations or []) if spec else []
root = os.path.realpath(sys.argv[1])
sys.exit(0 if any(os.path.realpath(p).startswith(root + os.sep) for p in where) else 1)
PY
    ) >/dev/null 2>&1
}
if [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$stamp" ] && resolves_here; then
    say "prefect-storage[test] already installed (editable)"
else
    say "installing prefect-storage[test] (editable) with $PYTHON -m pip"
    "$PYTHON" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
        -e '.[test]'
    mkdir -p "$(dirname "$stamp_file")"
    printf '%s\n' "$stamp" >"$stamp_file"
fi
say "done"
