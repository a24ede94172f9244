#!/usr/bin/env bash
# Installs what building and running the edgewise firmware needs, on Debian bookworm, as root.
# Idempotent: installs only what is missing, and runs `apt-get update` only if something is.
#
#   lld                 ld.lld (fallback linker for the bare-metal targets)
#   qemu-system-arm     Cortex-M3 / Cortex-M4F (mps2-an385 / mps2-an386)
#   qemu-system-misc    qemu-system-riscv32 (virt)
#   rustc-web cargo-web rust-web-src rust-web-llvm (+ the lld-NN its rust-lld points at)
#                       Debian's Rust (/usr/bin/rustc, /usr/bin/cargo) with the standard
#                       library's source, so `core` can be built for targets that rustup cannot
#                       add here (-Z build-std). A rustup toolchain stays first on PATH for host
#                       builds; if it already has the firmware targets this is unused but harmless.
#
# Usage: sudo scripts/setup-toolchain.sh        (EDGEWISE_SETUP_VERBOSE=1 shows apt's output)
set -euo pipefail

say() { echo "setup-toolchain: $*"; }
die() { echo "setup-toolchain: ERROR: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (apt-get install)"
command -v apt-get >/dev/null && command -v dpkg-query >/dev/null || die "needs a Debian system (apt-get, dpkg)"
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-unknown}")
[ "$codename" = bookworm ] || say "warning: written for Debian bookworm, this is '$codename'; trying anyway"

export DEBIAN_FRONTEND=noninteractive
LOG=$(mktemp /tmp/setup-toolchain.XXXXXX.log)
trap 'rm -f "$LOG"' EXIT

# run CMD...: runs quietly; on failure prints the command and the tail of its output, returns 1.
run() {
    if [ "${EDGEWISE_SETUP_VERBOSE:-0}" = 1 ]; then "$@" && return 0
    elif "$@" >"$LOG" 2>&1; then return 0
    else sed 's/^/    /' "$LOG" | tail -n 25 >&2
    fi
    echo "setup-toolchain: command failed: $*" >&2
    return 1
}

updated=0
apt_update() {
    [ "$updated" = 1 ] && return 0
    say "apt-get update"
    run apt-get update -q || die "apt-get update failed (network? sources?)"
    updated=1
}

# apt_install [apt options] PKG...: installs without recommends.
apt_install() {
    apt_update
    say "installing: $*"
    run apt-get install -y -q -o Dpkg::Use-Pty=0 --no-install-recommends "$@"
}

pkg_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
pkg_version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || true; }
candidate() { apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ { print $2; exit }'; }

# --- lld ---------------------------------------------------------------------------------------
if ! command -v ld.lld >/dev/null; then
    apt_install lld || die "could not install lld"
fi

# --- QEMU --------------------------------------------------------------------------------------
# Quirk: some images ship a newer qemu-utils (e.g. 10.x from backports) that bookworm's
# qemu-system-* 7.2 cannot be installed beside. Then qemu-utils is moved to the version that
# matches qemu-system (a downgrade), either straight away when the installed one is newer, or
# as a retry when the plain install fails.
qemu=()
command -v qemu-system-arm >/dev/null || qemu+=(qemu-system-arm)
command -v qemu-system-riscv32 >/dev/null || qemu+=(qemu-system-misc)
if [ ${#qemu[@]} -gt 0 ]; then
    apt_update
    want=$(candidate qemu-system-arm)
    [ -n "$want" ] && [ "$want" != "(none)" ] || die "no qemu-system-arm package in the apt sources"
    have=$(pkg_version qemu-utils)
    downgrade=(--allow-downgrades "${qemu[@]}" "qemu-utils=$want")
    if [ -n "$have" ] && dpkg --compare-versions "$have" gt "$want"; then
        say "qemu-utils $have is newer than qemu-system $want: installing qemu-utils $want with it"
        apt_install "${downgrade[@]}" || die "could not install ${qemu[*]} (with qemu-utils=$want)"
    elif ! apt_install "${qemu[@]}"; then
        say "plain install failed; retrying with qemu-utils=$want"
        apt_install "${downgrade[@]}" || die "could not install ${qemu[*]}, even with qemu-utils=$want"
    fi
fi

# --- Debian's Rust with the standard library's source ------------------------------------------
rust=()
for p in rustc-web cargo-web rust-web-src rust-web-llvm; do
    pkg_installed "$p" || rust+=("$p")
done
if [ ${#rust[@]} -gt 0 ]; then
    apt_update
    # The newest rustc-web for bookworm is in bookworm-security.
    release=()
    if apt-cache policy 2>/dev/null | grep -q 'n=bookworm-security'; then release=(-t bookworm-security); fi
    apt_install "${release[@]}" "${rust[@]}" || die "could not install Debian's Rust (${rust[*]})"
fi
# rust-web-llvm's /usr/bin/rust-lld is a symlink to lld-NN, which it does not depend on.
if [ -L /usr/bin/rust-lld ] && [ ! -e /usr/bin/rust-lld ]; then
    lld_pkg=$(basename "$(readlink /usr/bin/rust-lld)")      # e.g. lld-22
    apt_install "$lld_pkg" || die "could not install $lld_pkg (for /usr/bin/rust-lld)"
fi

# --- check ---------------------------------------------------------------------------------------
for tool in ld.lld qemu-system-arm qemu-system-riscv32 /usr/bin/rustc /usr/bin/cargo; do
    command -v "$tool" >/dev/null || die "$tool is still missing"
done
[ -e /usr/bin/rust-lld ] || die "/usr/bin/rust-lld is missing or dangling"
[ -f /usr/lib/rustlib/src/rust/library/core/src/lib.rs ] || die "the standard library's source (rust-web-src) is missing"
say "ok: $(/usr/bin/rustc --version | cut -d' ' -f1-2) (Debian), $(qemu-system-arm --version | head -n1 | cut -d' ' -f1-4), $(ld.lld --version | head -n1 | sed "s/ (compatible.*//"), rust-lld -> $(readlink -f /usr/bin/rust-lld)"
