#!/usr/bin/env bash
# Builds a free-threaded CPython (3.13.Nt: no GIL, shared libpython) into pyenv's versions
# directory, where the Makefile's PYTHON=3.13t finds it. `make deps PYTHON=3.13t` (and every target
# that needs the interpreter) runs this when no 3.13.Nt is installed; about 3 minutes on 2 cores.
#
# pyenv cannot download from python.org on the build machines, so the source comes from Debian's
# python3.X source package (its .orig tarball is the upstream release, byte for byte), fetched
# through the Debian mirror apt already uses, with apt's lists and cache in a temporary directory:
# nothing is installed into the system and the system's apt state is not touched. pyenv's
# python-build then checks the tarball against the checksum of its own definition of the same
# release and builds it (`X.Y.Nt` definitions configure --disable-gil).
#
# Usage: scripts/build_python_ft.sh [MINOR]      MINOR: the X.Y to build, default 3.13
# Environment: PYENV_ROOT (default: `pyenv root`, else ~/.pyenv); MAKE_OPTS (default -j<cores>);
#   PYTHON_FT_SUITE, the Debian suite whose source package to use (default trixie).
set -euo pipefail

minor=${1:-3.13}
suite=${PYTHON_FT_SUITE:-trixie}

fail() {
    printf 'build_python_ft: %s\n' "$*" >&2
    exit 1
}

[[ $minor =~ ^3\.[0-9]+$ ]] || fail "MINOR must look like 3.13, not '$minor'"
root=${PYENV_ROOT:-$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")}
# python-build: on PATH, in the root's plugins, or beside the pyenv on PATH (whose root may differ).
build=$(command -v python-build || echo "$root/plugins/python-build/bin/python-build")
if [[ ! -x $build ]] && pyenv=$(command -v pyenv); then
    build=$(dirname "$(readlink -f "$pyenv")")/../plugins/python-build/bin/python-build
fi
[[ -x $build ]] || fail "pyenv's python-build not found (on PATH, in $root/plugins or beside pyenv)"

# Already there: any X.Y.Nt that runs.
for python in "$root"/versions/"$minor".*t/bin/python"$minor"t; do
    if [[ -x $python ]] && "$python" -c 'import sys; assert not sys._is_gil_enabled()' 2>/dev/null
    then
        echo "build_python_ft: $(dirname "$(dirname "$python")") is already built"
        exit 0
    fi
done

work=$(mktemp -d "${TMPDIR:-/tmp}/python-ft.XXXXXX")
trap 'rm -rf "$work"' EXIT

# The mirror this machine's apt uses (deb822 .sources first, then the one-line format).
uri=$(grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2; exit}') || true
if [[ -z $uri ]]; then
    uri=$(grep -hoE '^deb +(\[[^]]*\] +)?https?://[^ ]+' /etc/apt/sources.list 2>/dev/null \
        | awk '{print $NF; exit}') || true
fi
[[ -n $uri ]] || fail "no Debian mirror found in /etc/apt/sources.list{,.d}"

mkdir -p "$work/etc/sources.list.d" "$work/etc/preferences.d" "$work/lists/partial" \
    "$work/cache/archives/partial" "$work/src" "$work/cache-python"
echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri $suite main" \
    >"$work/etc/sources.list"
apt_opts=(
    -o Dir::Etc::sourcelist="$work/etc/sources.list"
    -o Dir::Etc::sourceparts="$work/etc/sources.list.d"
    -o Dir::Etc::preferencesparts="$work/etc/preferences.d"
    -o Dir::State::Lists="$work/lists"
    -o Dir::Cache="$work/cache"
    -o APT::Get::Only-Source=true
)
# apt drops to the _apt user to download, which cannot enter our private temporary directory.
[[ $(id -u) != 0 ]] || apt_opts+=(-o APT::Sandbox::User=root)
echo "build_python_ft: fetching the python$minor source package from $uri ($suite)"
apt-get -qq "${apt_opts[@]}" update || fail "apt-get update of $suite's sources failed"
(cd "$work/src" && apt-get -qq "${apt_opts[@]}" source --download-only "python$minor") \
    || fail "Debian $suite has no python$minor source package on $uri"

tarball=$(ls "$work"/src/python"$minor"_"$minor".*.orig.tar.xz 2>/dev/null | head -n 1) \
    || fail "no upstream tarball in Debian's python$minor source package"
version=$(basename "$tarball")
version=${version#python"$minor"_}
version=${version%.orig.tar.xz}
[[ $version =~ ^$minor\.[0-9]+$ ]] || fail "unexpected upstream version '$version' in $tarball"
"$build" --definitions | grep -xF "${version}t" >/dev/null \
    || fail "pyenv's python-build has no definition of ${version}t: update pyenv"
cp "$tarball" "$work/cache-python/Python-$version.tar.xz"

prefix=$root/versions/${version}t
echo "build_python_ft: building CPython ${version}t into $prefix"
PYTHON_BUILD_CACHE_PATH="$work/cache-python" \
    PYTHON_CONFIGURE_OPTS="--enable-shared ${PYTHON_CONFIGURE_OPTS:-}" \
    MAKE_OPTS=${MAKE_OPTS:--j$(nproc 2>/dev/null || echo 2)} \
    "$build" "${version}t" "$prefix"
"$prefix/bin/python${minor}t" -c \
    'import sys; assert not sys._is_gil_enabled(), "the GIL is on"; print(sys.version)' \
    || { rm -rf "$prefix"; fail "the build in $prefix is not a working free-threaded Python"; }
