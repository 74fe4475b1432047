#!/usr/bin/env bash
# Prints the path of a Python with sys.monitoring (3.12 or later), building
# one when the machine has none: the coverage agent's sys.monitoring path
# can only be tested under such a Python, and Debian 12 ships 3.11.
#
# The build is CPython 3.13 from Debian 13's source package (the same
# Debian archive the machine installs from), configured without
# optimisations, into a cache directory that later runs reuse. Needs the
# usual build dependencies (gcc, make, libssl-dev, zlib1g-dev, libffi-dev,
# libsqlite3-dev); progress goes to stderr, the path alone to stdout.
set -euo pipefail

for candidate in python3.14 python3.13 python3.12; do
    if command -v "$candidate" >/dev/null 2>&1 &&
        "$candidate" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
        command -v "$candidate"
        exit 0
    fi
done

cache=${RECPLAY_PYTHON_CACHE:-/var/cache/recplay/python3.13}
python=$cache/bin/python3.13
if [ -x "$python" ] && "$python" -c 'import ssl, sqlite3, zlib, ensurepip' 2>/dev/null; then
    echo "$python"
    exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# A private apt state, so the machine's own sources and lists stay as they are.
mkdir -p "$work/lists/partial"
echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" \
    >"$work/sources.list"
apt_opts=(-o "Dir::Etc::SourceList=$work/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o "Dir::State::Lists=$work/lists" -o APT::Sandbox::User=root)
echo "building CPython 3.13 from Debian's source package into $cache (a few minutes)" >&2
apt-get "${apt_opts[@]}" update -qq >&2
(cd "$work" && apt-get "${apt_opts[@]}" source --download-only -qq python3.13 >&2)
tar -xf "$work"/python3.13_*.orig.tar.xz -C "$work"
src=$(find "$work" -maxdepth 1 -type d -name 'Python-3.13*' | head -n 1)
(
    cd "$src"
    ./configure --prefix="$cache" >"$work/configure.log" 2>&1 ||
        { tail -n 30 "$work/configure.log" >&2; exit 1; }
    make -j"$(nproc)" >"$work/make.log" 2>&1 || { tail -n 30 "$work/make.log" >&2; exit 1; }
    make install >"$work/install.log" 2>&1 || { tail -n 30 "$work/install.log" >&2; exit 1; }
)
"$python" -c 'import ssl, sqlite3, zlib, ensurepip' >&2
echo "$python"
