#!/usr/bin/env bash
# Idempotent set-up for `make test` and `make lab`: system packages, then the Python environment.
# A second run with everything present only checks, and takes a few seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

# The engine: runc (crun where the cgroup layout allows), conmon, busybox-static for base images,
# iproute2 for namespaces. podman brings the reference seccomp profile the tests compare with and
# the side-by-side benchmarks; procps gives pgrep for leak checks.
PACKAGES=(runc crun conmon busybox-static iproute2 procps podman)

missing=()
for pkg in "${PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    [[ "$status" == "install ok installed" ]] || missing+=("$pkg")
done
if ((${#missing[@]})); then
    if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
        echo "setup: missing system packages: ${missing[*]}" >&2
        echo "setup: install them as root, e.g.: apt-get install ${missing[*]}" >&2
        exit 1
    fi
    echo "setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "setup: Python 3.11 or newer is required (found: $("$PYTHON" --version 2>&1 || echo none));" \
         "install python3 and python3-venv, or set PYTHON=/path/to/python3.11" >&2
    exit 1
fi
if [[ ! -x .venv/bin/python ]]; then
    echo "setup: creating .venv"
    "$PYTHON" -m venv .venv
fi
stamp=".venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
if [[ ! -f "$stamp" ]]; then
    echo "setup: installing workbench with its test and jupyter extras"
    rm -f .venv/.installed-*
    # compat mode: a plain path entry, not an import hook that every start-up would pay for
    .venv/bin/pip install -q -e '.[test,jupyter]' --config-settings editable_mode=compat
    touch "$stamp"
fi
# PYTHONDONTWRITEBYTECODE is common in sandboxes: compile once so the CLI (also conmon's exit
# command) does not recompile the package on every start.
.venv/bin/python -m compileall -q workbench
echo "setup: ready ($(.venv/bin/python --version), $(runc --version | head -1))"
