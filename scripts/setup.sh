#!/usr/bin/env bash
# Idempotent set-up behind `make test` and `make lab`: the system packages the engine drives,
# then the Python environment in .venv. A second run only checks (well under a second).
#
#   PYTHON=/path/to/python3.12 scripts/setup.sh    use that interpreter to create .venv
set -euo pipefail
cd "$(dirname "$0")/.."

# runc and crun: OCI runtimes (crun where the cgroup layout allows it, else runc); conmon: the
# monitor process; catatonit: the init of `run --init`; busybox-static: base images (images/bootstrap.py); iproute2: network
# namespaces; procps (pgrep) and zstd: used by the tests; podman and skopeo: the references that
# tests (podman's seccomp profile, from its containers-common dependency) and benchmarks compare with;
# docker-registry: the local registry the image tests push to and pull from; mmdebstrap: Debian
# base images (`workbench image bootstrap debian`); golang-github-opencontainers-image-spec-dev: the
# OCI image-spec JSON schemas the tests validate saved archives against; nftables: NAT and
# published ports of bridge networks; chromium and fonts-dejavu-core: the headless browser (driven
# by Playwright, never downloaded) and its monospace font for the widget tests in tests/browser/.
# Rootless mode: uidmap (newuidmap/newgidmap map the subordinate ids), slirp4netns (the default rootless
# network), passt and fuse-overlayfs (what rootless Podman uses too), python3 and python3-venv (an
# interpreter and kernel environment the rootless test user can run: .venv's may live in root's home).
PACKAGES=(runc crun conmon catatonit busybox-static iproute2 procps zstd podman skopeo docker-registry mmdebstrap
    golang-github-opencontainers-image-spec-dev nftables chromium fonts-dejavu-core
    uidmap slirp4netns passt fuse-overlayfs python3 python3-venv)
# Where a package cannot be checked with dpkg (not Debian): a command (or a path) each package provides.
declare -A PROVIDES=([runc]=runc [crun]=crun [conmon]=conmon [catatonit]=catatonit [busybox-static]=busybox
    [iproute2]=ip [procps]=pgrep [zstd]=zstd [podman]=podman [skopeo]=skopeo
    [docker-registry]=docker-registry [mmdebstrap]=mmdebstrap [nftables]=nft
    [golang-github-opencontainers-image-spec-dev]=/usr/share/gocode/src/github.com/opencontainers/image-spec/schema
    [chromium]=chromium [fonts-dejavu-core]=/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf
    [uidmap]=newuidmap [slirp4netns]=slirp4netns [passt]=passt [fuse-overlayfs]=fuse-overlayfs [python3]=python3
    [python3-venv]=/usr/lib/python3/dist-packages)
MIN_PYTHON=(3 11)
VENV=.venv

say() { echo "setup: $*"; }
die() { echo "setup: error: $*" >&2; exit 1; }
is_root() { [[ $(id -u) -eq 0 ]]; }
is_debian() { [[ -r /etc/debian_version ]] && command -v dpkg-query >/dev/null && command -v apt-get >/dev/null; }

# Prints the packages of "$@" that are not installed, one per line.
missing_packages() {
    if is_debian; then
        local installed
        installed=$(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "$@" 2>/dev/null | awk '$2 == "ii" {print $1}' || true)
        local pkg
        for pkg in "$@"; do
            grep -qxF "$pkg" <<<"$installed" || echo "$pkg"
        done
    else
        local pkg
        for pkg in "$@"; do
            local provides=${PROVIDES[$pkg]:-$pkg}
            if [[ $provides == /* ]]; then
                [[ -e $provides ]] || echo "$pkg"
            else
                PATH="$PATH:/usr/sbin:/sbin:/usr/libexec/podman" command -v "$provides" >/dev/null || echo "$pkg"
            fi
        done
    fi
}

# Installs Debian packages "$@" as root, or explains what to install and exits.
apt_install() {
    if ! is_debian; then
        die "missing: $* (the names are Debian's; install your distribution's equivalents and run this again)"
    fi
    if ! is_root; then
        die "missing Debian packages: $*
setup: install them as root and run this again:
setup:     sudo apt-get install -y $*"
    fi
    say "installing Debian packages: $*"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# 1. System packages.
mapfile -t missing < <(missing_packages "${PACKAGES[@]}")
if ((${#missing[@]})); then
    apt_install "${missing[@]}"
    mapfile -t missing < <(missing_packages "${PACKAGES[@]}")
    ((${#missing[@]} == 0)) || die "still missing after apt-get install: ${missing[*]}"
fi
say "system packages present: ${PACKAGES[*]}"

# The user the rootless tests run as (tests/rootless), with subordinate ids (useradd gives a
# range when it creates the user; an older user without one gets the next free range).
ROOTLESS_USER=${ROOTLESS_USER:-wbtest}
if is_root; then
    if ! id -u "$ROOTLESS_USER" >/dev/null 2>&1; then
        say "creating user $ROOTLESS_USER for the rootless tests"
        useradd --create-home --shell /bin/sh "$ROOTLESS_USER"
    fi
    for kind in uid gid; do
        if ! grep -q "^$ROOTLESS_USER:" "/etc/sub$kind" 2>/dev/null; then
            start=$(awk -F: 'BEGIN {end = 100000} $2 + $3 > end {end = $2 + $3} END {print end}' "/etc/sub$kind" 2>/dev/null || echo 100000)
            usermod "--add-sub${kind}s" "$start-$((start + 65535))" "$ROOTLESS_USER"
        fi
    done
    # slirp4netns opens /dev/net/tun and fuse-overlayfs (--userns=keep-id) /dev/fuse as the user:
    # Debian's udev rules make both 0666, some VMs do not
    for dev in /dev/net/tun /dev/fuse; do
        if [[ -c $dev && $(stat -c %a "$dev") != 666 ]]; then
            chmod 0666 "$dev"
        fi
    done
    # A kernel environment (pyproject's [kernel] extra, not the package) on /usr/bin/python3 that
    # every user can run: the rootless tests run notebooks as the test user with it.
    ROOTLESS_ENV=${ROOTLESS_ENV:-/opt/workbench-rootless-kernel}
    kernel_deps=$(/usr/bin/python3 -c "import tomllib; print(' '.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']['kernel']))")
    kernel_stamp="$ROOTLESS_ENV/.installed-$(sha256sum <<<"$kernel_deps" | cut -c1-16)"
    if [[ ! -f $kernel_stamp ]]; then
        say "creating $ROOTLESS_ENV (a kernel environment for the rootless tests' user)"
        rm -rf "$ROOTLESS_ENV"
        /usr/bin/python3 -m venv "$ROOTLESS_ENV"
        # shellcheck disable=SC2086 # one argument per requirement
        "$ROOTLESS_ENV/bin/python" -m pip install -q --disable-pip-version-check $kernel_deps 2>&1 \
            | grep -v "^WARNING: Location" || true
        "$ROOTLESS_ENV/bin/python" -c "import ipykernel, nbclient, pandas, anywidget" \
            || die "$ROOTLESS_ENV: the kernel packages did not install"
        chmod -R a+rX "$ROOTLESS_ENV"
        touch "$kernel_stamp"
    fi
fi

# 2. The Python environment.
version_ok() {  # the interpreter "$1" is at least MIN_PYTHON
    "$1" -c "import sys; sys.exit(sys.version_info < (${MIN_PYTHON[0]}, ${MIN_PYTHON[1]}))" 2>/dev/null
}

# Without $PYTHON, Debian's own python3 comes first: it is built with profile-guided and link-time
# optimisation, and starts and imports ~25% faster here than a plain source build (pyenv's default)
# found earlier on PATH. Every CLI command, the exit command and the kernel pay that start.
find_python() {  # prints the first suitable interpreter: $PYTHON, else Debian's, else python3 on PATH, else python3.N
    local candidates=("${PYTHON:-}")
    [[ -n "${PYTHON:-}" ]] || candidates=(python3 python3.14 python3.13 python3.12 python3.11)
    if [[ -z "${PYTHON:-}" ]] && is_debian; then
        candidates=(/usr/bin/python3 "${candidates[@]}")
    fi
    local py
    for py in "${candidates[@]}"; do
        if command -v "$py" >/dev/null && version_ok "$py"; then
            command -v "$py"
            return 0
        fi
    done
    return 1
}

if ! { [[ -x $VENV/bin/python ]] && version_ok "$VENV/bin/python"; }; then
    if ! python=$(find_python); then
        found=$( (command -v "${PYTHON:-python3}" >/dev/null && "${PYTHON:-python3}" --version) 2>&1 || echo "none")
        die "Python ${MIN_PYTHON[0]}.${MIN_PYTHON[1]} or newer is needed as python3 on PATH (found: ${found});
setup: install it (Debian 12: apt-get install python3 python3-venv) or point PYTHON=/path/to/python3.11 at one"
    fi
    if ! "$python" -c 'import ensurepip, venv' 2>/dev/null; then
        if is_debian && [[ $python == /usr/bin/* ]]; then
            apt_install python3-venv
        else
            die "$python cannot create virtual environments (no ensurepip/venv module); install its venv support"
        fi
    fi
    say "creating $VENV with $python ($("$python" --version 2>&1))"
    rm -f "$VENV"/.installed-*
    "$python" -m venv --clear "$VENV"
fi

stamp="$VENV/.installed-$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [[ ! -f $stamp ]]; then
    say "installing workbench and its [test,jupyter] extras into $VENV (pyproject.toml changed or first run)"
    rm -f "$VENV"/.installed-*
    # compat mode: a plain path entry instead of an import hook that every interpreter start pays for
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e '.[test,jupyter]' \
        --config-settings editable_mode=compat
    touch "$stamp"
fi
# An editable install leaves out data files: the Jupyter server config that enables
# workbench.widgets.server (kernel WebSockets with TCP_NODELAY, for the console) goes in here.
server_conf=jupyter-config/jupyter_server_config.d/workbench.json
if ! cmp -s "$server_conf" "$VENV/etc/jupyter/jupyter_server_config.d/workbench.json"; then
    install -D -m 0644 "$server_conf" "$VENV/etc/jupyter/jupyter_server_config.d/workbench.json"
fi
# 3. The console widget's front-end bundle (committed): rebuilt with node and npm only when it is
# missing or js/ changed since it was built (its bundle.inputs hashes no longer match).
if ! sha256sum --status -c workbench/widgets/static/bundle.inputs 2>/dev/null \
        || [[ ! -s workbench/widgets/static/console.js ]]; then
    if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
        apt_install nodejs npm
    fi
    say "bundling xterm.js for the console widget (js/ -> workbench/widgets/static/)"
    make -s bundle >/dev/null
fi

# PYTHONDONTWRITEBYTECODE is common in sandboxes: compile once (only what changed) so the CLI,
# which conmon also runs as the exit command, does not recompile the package on every start.
"$VENV/bin/python" -m compileall -q workbench >/dev/null
say "ready: $VENV ($("$VENV/bin/python" --version 2>&1))"
