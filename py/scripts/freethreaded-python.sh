#!/usr/bin/env bash
# Prints the path of a free-threaded CPython 3.14 (python3.14t, built with --disable-gil),
# building it first if its cache does not hold a working one. Nothing else goes to stdout:
#
#   python="$(bash py/scripts/freethreaded-python.sh)"
#
# No Debian suite, PyPI or npm ships a free-threaded interpreter, so this builds one from the
# upstream tarball of Debian's python3.14 source package: a pinned version (checked by SHA-256
# with apt's own downloader), else the newest python3.14/3.15 that `apt-get source` finds in
# sid or forky through a private apt directory (the machine's apt configuration is untouched;
# apt checks the tarball against the signed Sources index). Debian's patches (multiarch layout,
# dist-packages) are not applied: a --prefix install wants upstream's layout. Not 3.13t: PyO3
# 0.30 supports the free-threaded build from 3.14 on.
#
# The build aims at a working interpreter with pip, fast (~3 minutes on 2 cores): no
# --enable-optimizations (PGO) and OPT=-O1, no test modules, no optional modules that pip and
# the tests do not need (tkinter, dbm, curses, readline, decimal's C accelerator); sqlite3 is
# kept for mypy (tests/test_typing.py).
#
# RATEWALL_FT_CACHE chooses the cache directory (default: py/.freethreaded, git-ignored); the
# interpreter lives in $RATEWALL_FT_CACHE/python. A second run reuses it (about 1 s). Running
# as root, missing build dependencies are installed with apt-get; otherwise the script says
# which are missing. Concurrent runs wait for each other (flock).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
cache="${RATEWALL_FT_CACHE:-$here/.freethreaded}"
prefix="$cache/python"
# The upstream tarball of Debian's python3.14 3.14.7-4 (its .dsc is signed by the Debian
# maintainer and lists this SHA-256). PyO3 0.30 needs 3.14t or later: it refuses 3.13t.
pool=http://deb.debian.org/debian/pool/main/p
pinned_orig=python3.14_3.14.7.orig.tar.xz
pinned_sha256=3b48dac8fb59f62eaa67ac83c1eb12bda1b7a08406dd286e252c11a66be27f81
packages=(python3.14 python3.15)
build_deps=(build-essential libssl-dev zlib1g-dev libffi-dev libsqlite3-dev xz-utils)

say() { echo "freethreaded-python: $*" >&2; }
fail() {
    say "error: $*"
    exit 1
}

# A working free-threaded interpreter with pip and ssl, if $prefix holds one.
existing() {
    local p
    for p in "$prefix"/bin/python3.1[4-9]t; do
        [ -x "$p" ] || continue
        if env -u PYTHON_GIL "$p" -c 'import sys, sysconfig, ssl, zlib
assert sysconfig.get_config_var("Py_GIL_DISABLED") == 1
assert not sys._is_gil_enabled()' >/dev/null 2>&1 &&
            "$p" -m pip --version >/dev/null 2>&1; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9

if p="$(existing)"; then
    echo "$p"
    exit 0
fi

command -v apt-get >/dev/null 2>&1 ||
    fail "needs apt-get (Debian or Ubuntu) to fetch Debian's CPython source package"

missing=()
for dep in "${build_deps[@]}"; do
    dpkg-query -W -f='${Status}' "$dep" 2>/dev/null | grep -q 'install ok installed' ||
        missing+=("$dep")
done
if [ "${#missing[@]}" -gt 0 ]; then
    [ "$(id -u)" = 0 ] ||
        fail "missing build dependencies: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})"
    say "installing ${missing[*]}"
    apt-get update -qq >/dev/null ||
        fail "apt-get update failed (needs the Debian archive)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null ||
        fail "apt-get install ${missing[*]} failed"
fi

# The source: the pinned tarball when the archive still has it (every run builds the same
# interpreter), else the newest python3.14/3.15 in the signed deb-src index of sid and forky.
src_dir="$cache/src"
rm -rf "$src_dir"
mkdir -p "$src_dir"
orig="$src_dir/$pinned_orig"
if ! /usr/lib/apt/apt-helper -o "APT::Sandbox::User=root" download-file \
    "$pool/${pinned_orig%%_*}/$pinned_orig" "$orig" "SHA256:$pinned_sha256" \
    >"$cache/download.log" 2>&1; then
    say "$pinned_orig: not downloadable or not matching its SHA-256; looking for another version"
    rm -f "$orig"
    orig=""
    # A private apt: deb-src entries, its own lists and cache; the machine's apt is untouched.
    apt_dir="$cache/apt"
    mkdir -p "$apt_dir/sources.list.d" "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
    cat >"$apt_dir/sources.list.d/debian-src.sources" <<'SOURCES'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: sid forky
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
    apt_opts=(
        -o "Dir::Etc::SourceList=/dev/null"
        -o "Dir::Etc::SourceParts=$apt_dir/sources.list.d"
        -o "Dir::State::Lists=$apt_dir/lists"
        -o "Dir::Cache=$apt_dir/cache"
        -o "Dir::Cache::pkgcache="
        -o "Dir::Cache::srcpkgcache="
        -o "APT::Sandbox::User=root"
    )
    apt-get "${apt_opts[@]}" update -qq >"$cache/apt-update.log" 2>&1 ||
        fail "apt-get update of the deb-src index failed: $(tail -3 "$cache/apt-update.log")"
    # The newest version the archive still serves (a mirror can lag its own index).
    for pkg in "${packages[@]}"; do
        versions="$(apt-cache "${apt_opts[@]}" showsrc "$pkg" 2>/dev/null |
            awk '/^Version:/ { print $2 }' | sort -u -r -V)"
        for version in $versions; do
            if (cd "$src_dir" && apt-get "${apt_opts[@]}" source --download-only -qq "$pkg=$version") \
                >>"$cache/download.log" 2>&1; then
                orig="$(ls "$src_dir/${pkg}_${version%%-*}".orig.tar.* 2>/dev/null | head -1)"
                [ -n "$orig" ] && break 2
            fi
            say "$pkg $version: not downloadable, trying an older version"
            rm -f "$src_dir"/*
        done
    done
    [ -n "$orig" ] ||
        fail "no source package of ${packages[*]} could be downloaded from deb.debian.org (see $cache/download.log)"
fi
say "building $(basename "$orig") with --disable-gil into $prefix"

build_dir="$cache/build"
rm -rf "$build_dir" "$prefix"
mkdir -p "$build_dir"
tar -xf "$orig" -C "$build_dir"
tree="$(find "$build_dir" -mindepth 1 -maxdepth 1 -type d -name 'Python-*' | head -1)"
[ -n "$tree" ] || fail "$orig holds no Python-* directory"

# Optional modules neither pip nor the tests need: marking them n/a skips their compilation.
for module in _tkinter _dbm _gdbm _curses _curses_panel readline _decimal nis spwd \
    xxlimited xxlimited_35; do
    export "py_cv_module_${module}=n/a"
done
jobs=$(($(nproc) + 1))
step() {
    local name="$1"
    shift
    if ! (cd "$tree" && "$@") >"$cache/$name.log" 2>&1; then
        tail -30 "$cache/$name.log" >&2
        fail "$name failed (full log: $cache/$name.log)"
    fi
}
step configure env OPT=-O1 ./configure --disable-gil --prefix="$prefix" \
    --disable-test-modules --with-ensurepip=install
step make make -j"$jobs"
step install make install

p="$(existing)" ||
    fail "the build finished but $prefix/bin holds no working free-threaded python3.Xt with pip"
rm -rf "$build_dir" "$src_dir"
say "built $("$p" -VV | head -1)"
echo "$p"
