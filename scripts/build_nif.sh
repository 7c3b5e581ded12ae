#!/bin/sh
# Builds the NIF (rust/nif) for one Python and installs it, with the `erlang` Python package, into
# a priv directory. Every build goes through here: rebar3 (the pre-compile hook of rebar.config,
# also when erlang_python is a dependency), mix (the compiler in mix.exs) and the Makefile.
#
# Which Python, first match wins:
#   ERLANG_PYTHON_EXECUTABLE  a Python interpreter or a venv's python (path or name on PATH);
#                             the same variable picks the Python at run time (docs/getting-started.md)
#   PYO3_PYTHON               as pyo3 builds use it
#   python3                   the first on PATH (an activated venv's)
# The NIF records that interpreter as the one it starts by default, and its version: at start,
# erlang_python refuses an interpreter of another version (py_pool.erl).
#
# Where:
#   ERLANG_PYTHON_PRIV_DIR    install directory (default: priv/ beside rebar.config)
#   CARGO_TARGET_DIR          cargo's build directory (default: _build/nif/<python>/ beside it)
#   ERLANG_PYTHON_SKIP_NIF=1  do nothing (Erlang-only tooling that compiles the application)
set -eu

root=$(cd "$(dirname "$0")/.." && pwd -P)

fail() {
    printf 'erlang_python: %s\n' "$*" >&2
    exit 1
}

[ "${ERLANG_PYTHON_SKIP_NIF:-0}" = 1 ] && exit 0

python=${ERLANG_PYTHON_EXECUTABLE:-${PYO3_PYTHON:-python3}}
case $python in
    */*) ;;
    *)
        found=$(command -v "$python") || fail "no '$python' on PATH: install Python 3 or set" \
            "ERLANG_PYTHON_EXECUTABLE to the interpreter (or venv python) to build for"
        python=$found
        ;;
esac
[ -x "$python" ] && [ ! -d "$python" ] || fail "$python is not an executable file"
# Absolute, symlinks kept: a venv's python is a symlink whose path tells Python it is the venv's.
python=$(cd "$(dirname "$python")" && pwd)/$(basename "$python")

# One line: X.Y, 't' when free-threaded, whether libpython is shared.
probe='import sys, sysconfig
ft = "t" if sysconfig.get_config_var("Py_GIL_DISABLED") else ""
shared = sysconfig.get_config_var("Py_ENABLE_SHARED") or 0
print("%d.%d%s %d" % (sys.version_info[0], sys.version_info[1], ft, shared))'
info=$("$python" -I -c "$probe") || fail "$python did not run; is it a working Python?"
version=${info% *}
shared=${info#* }
if [ -n "${PYO3_PYTHON:-}" ] && [ "$PYO3_PYTHON" != "$python" ]; then
    other=$("$PYO3_PYTHON" -I -c "$probe") || fail "PYO3_PYTHON=$PYO3_PYTHON did not run"
    [ "${other% *}" = "$version" ] || fail "PYO3_PYTHON=$PYO3_PYTHON is Python ${other% *} but" \
        "$python is Python $version: the NIF would link one and start the other"
fi

# What rust/nif/build.rs accepts: keep the two lists equal.
supported="3.11 3.12 3.13"
case " $supported " in
    *" ${version%t} "*) ;;
    *) fail "Python $version ($python) is not supported; supported: $supported." \
        "Set ERLANG_PYTHON_EXECUTABLE to one of them." ;;
esac
[ "$shared" = 1 ] || fail "Python $version ($python) has no shared libpython, which the NIF" \
    "links. Use a Python built with --enable-shared (pyenv: PYTHON_CONFIGURE_OPTS=--enable-shared" \
    "pyenv install $version; Debian: the libpython$version package's interpreter)."

command -v cargo >/dev/null 2>&1 || PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
command -v cargo >/dev/null 2>&1 \
    || fail "cargo not found: install Rust (https://rustup.rs), then build again"

priv=${ERLANG_PYTHON_PRIV_DIR:-$root/priv}
target=${CARGO_TARGET_DIR:-$root/_build/nif/py$version}
case $(uname -s) in
    Darwin) built=$target/release/libpy_nif.dylib ;;
    *) built=$target/release/libpy_nif.so ;;
esac

(
    cd "$root"
    PYO3_PYTHON=${PYO3_PYTHON:-$python} ERLANG_PYTHON_DEFAULT_EXECUTABLE=$python \
        CARGO_TARGET_DIR=$target cargo build --release --quiet -p erlang-python-nif
)

# Replaced by rename, never rewritten in place: a running BEAM may have the old library mapped.
# Only what changed is copied.
mkdir -p "$priv"
if ! cmp -s "$built" "$priv/py_nif.so"; then
    cp "$built" "$priv/.py_nif.so.tmp"
    mv -f "$priv/.py_nif.so.tmp" "$priv/py_nif.so"
    echo "erlang_python: $priv/py_nif.so built for Python $version ($python)"
fi
if ! diff -rq -x __pycache__ -x '*.so' "$root/python/erlang" "$priv/python/erlang" >/dev/null 2>&1
then
    rm -rf "$priv/python/.erlang.tmp"
    mkdir -p "$priv/python"
    cp -R "$root/python/erlang" "$priv/python/.erlang.tmp"
    find "$priv/python/.erlang.tmp" -name __pycache__ -prune -exec rm -rf {} +
    find "$priv/python/.erlang.tmp" -name '*.so' -exec rm -f {} +
    rm -rf "$priv/python/erlang"
    mv "$priv/python/.erlang.tmp" "$priv/python/erlang"
fi
# erlang_python 1.6's top-level module name for the event loop (python/erlang_loop.py).
if ! cmp -s "$root/python/erlang_loop.py" "$priv/python/erlang_loop.py"; then
    cp "$root/python/erlang_loop.py" "$priv/python/.erlang_loop.py.tmp"
    mv -f "$priv/python/.erlang_loop.py.tmp" "$priv/python/erlang_loop.py"
fi
