#!/bin/bash
# Uses erlang_python as the projects that depend on it do, and fails on the first thing that does
# not work. Run by `make test-deps` (part of `make test`).
#
# For each of: a rebar3 project (tests/deps/rebar3_app) and a mix project (tests/deps/mix_app),
# each with erlang_python as a path dependency (rebar3: _checkouts) and as a git dependency (a
# snapshot of this working tree, committed to a scratch repository), it
#   1. compiles the project, which builds the NIF with cargo through erlang_python's own build
#      (rebar.config's hook, mix.exs's compiler);
#   2. runs the project's check (sample_app:check/0, MixApp.check/0: Python runs, the `erlang`
#      package comes from erlang_python's priv/, the project's own Python module in its
#      priv/python is found through python_path, Python calls back into the project);
#   3. builds a release (relx, mix release), starts it and runs the check inside it.
# Before those, build-errors checks that a build for a Python the NIF cannot use fails, saying why.
#
# Environment: ERLANG_PYTHON_EXECUTABLE (required), the Python to build for; CARGO_TARGET_DIR
# (optional), shared with other builds so cargo compiles the crates from crates.io once.
# Arguments: which of build-errors rebar3-path rebar3-git mix-path mix-git to run (default: all).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd -P)
root=$(cd "$here/../.." && pwd -P)
: "${ERLANG_PYTHON_EXECUTABLE:?set it to the Python (or venv python) to build for}"
export ERLANG_PYTHON_EXECUTABLE
# Each dependency installs its NIF into its own priv/, as it does for a user.
unset ERLANG_PYTHON_PRIV_DIR ERLANG_PYTHON_SKIP_NIF
# Mix must not reach for hex.pm (unreachable here, and not needed: no dependency comes from it).
export MIX_ENV=dev HEX_OFFLINE=1

work=$(mktemp -d "${TMPDIR:-/tmp}/erlang_python_deps.XXXXXX")
started=()
cleanup() {
    local stop
    for stop in ${started[@]+"${started[@]}"}; do "$stop" stop >/dev/null 2>&1 || true; done
    rm -rf "$work"
}
trap cleanup EXIT

step() { printf '==> %s\n' "$*"; }

# The working tree (tracked and new files, not ignored ones), committed on branch main; made
# once, by the first git dependency, in this shell (not in a $(...) subshell).
git_url=""
make_snapshot() {
    [[ -z $git_url ]] || return 0
    local repo=$work/erlang_python.git
    mkdir -p "$repo"
    (cd "$root" && git ls-files -z --cached --others --exclude-standard \
        | xargs -0 sh -c 'for f; do [ -e "$f" ] || [ -L "$f" ] && printf "%s\0" "$f"; done' sh \
        | tar --null -T - -cf -) | tar -C "$repo" -xf -
    git -C "$repo" init -q -b main
    git -C "$repo" add -A
    git -C "$repo" -c user.name=test -c user.email=test@localhost commit -qm snapshot
    git_url=file://$repo
}

# A node name no other run on this machine uses.
node_name() { printf '%s_%s_%s' "$1" "$$" "$RANDOM"; }

rebar3_project() {
    local kind=$1 dir=$work/rebar3-$1 deps
    cp -R "$here/rebar3_app" "$dir"
    case $kind in
        path)
            mkdir -p "$dir/_checkouts"
            ln -s "$root" "$dir/_checkouts/erlang_python"
            deps='[erlang_python]'
            ;;
        git)
            make_snapshot
            deps="[{erlang_python, {git, \"$git_url\", {branch, \"main\"}}}]"
            ;;
    esac
    mkdir -p "$dir/config"
    printf -- '-sname %s\n-setcookie sample_app\n' "$(node_name sample_app)" >"$dir/config/vm.args"
    cat >"$dir/rebar.config" <<EOF
{deps, $deps}.
{relx, [
    {release, {sample_app, "0.1.0"}, [sample_app]},
    {vm_args, "config/vm.args"},
    {sys_config, "config/sys.config"},
    {dev_mode, false},
    {include_erts, false},
    {extended_start_script, true}
]}.
EOF
    step "rebar3 ($kind dependency): compile"
    (cd "$dir" && rebar3 compile)
    step "rebar3 ($kind dependency): sample_app:check() from erl -pa"
    (cd "$dir" && erl -noshell -config config/sys.config \
        -pa _build/default/lib/*/ebin _build/default/checkouts/*/ebin \
        -eval 'ok = sample_app:check(), halt().')
    step "rebar3 ($kind dependency): release"
    (cd "$dir" && rebar3 release)
    local bin=$dir/_build/default/rel/sample_app/bin/sample_app tries=0
    ls "$dir/_build/default/rel/sample_app/lib/"erlang_python-*/priv/py_nif.so \
        "$dir/_build/default/rel/sample_app/lib/"erlang_python-*/priv/python/erlang/__init__.py
    "$bin" daemon
    started+=("$bin")
    until "$bin" ping >/dev/null 2>&1; do
        tries=$((tries + 1))
        ((tries < 120)) || { echo "the release did not answer ping" >&2; return 1; }
        sleep 1
    done
    step "rebar3 ($kind dependency): sample_app:check() in the release"
    [[ $("$bin" eval 'sample_app:check().') == ok ]]
    "$bin" stop >/dev/null
}

mix_project() {
    local kind=$1 dir=$work/mix-$1
    cp -R "$here/mix_app" "$dir"
    case $kind in
        path) export ERLANG_PYTHON_DEP=$root ;;
        git)
            make_snapshot
            export ERLANG_PYTHON_DEP=git:$git_url
            ;;
    esac
    step "mix ($kind dependency): deps.get, compile, test"
    (cd "$dir" && mix deps.get && mix compile && mix test)
    step "mix ($kind dependency): release"
    (cd "$dir" && MIX_ENV=prod mix release --overwrite --quiet)
    local rel=$dir/_build/prod/rel/mix_app
    ls "$rel/lib/"erlang_python-*/priv/py_nif.so "$rel/lib/"erlang_python-*/priv/python/erlang/__init__.py
    step "mix ($kind dependency): MixApp.check() in the release"
    "$rel/bin/mix_app" eval 'MixApp.check()'
}

# A build for a Python it cannot use fails before cargo runs, saying why and what to do instead.
build_errors() {
    local fake=$work/fake-python out
    expect_failure() {
        local want=$1
        shift
        if out=$(env "$@" sh "$root/scripts/build_nif.sh" 2>&1); then
            echo "build_nif.sh succeeded with $*" >&2
            return 1
        fi
        [[ $out == *"$want"* ]] || { printf 'expected "%s" in:\n%s\n' "$want" "$out" >&2; return 1; }
        printf '    refused as expected: %s\n' "$out"
    }
    step "build errors: unsupported, static or missing Python"
    mkdir -p "$work/errors-priv"
    printf '#!/bin/sh\necho "3.10 1"\n' >"$fake" && chmod +x "$fake"
    expect_failure "supported: 3.11 3.12 3.13" ERLANG_PYTHON_EXECUTABLE="$fake" PYO3_PYTHON=
    printf '#!/bin/sh\necho "3.12 0"\n' >"$fake"
    expect_failure "no shared libpython" ERLANG_PYTHON_EXECUTABLE="$fake" PYO3_PYTHON=
    expect_failure "is not an executable file" ERLANG_PYTHON_EXECUTABLE=/nonexistent/python3 \
        PYO3_PYTHON=
    expect_failure "no 'no-such-python' on PATH" ERLANG_PYTHON_EXECUTABLE=no-such-python PYO3_PYTHON=
    printf '#!/bin/sh\necho "3.13 1"\n' >"$fake"
    expect_failure "the NIF would link one and start the other" \
        ERLANG_PYTHON_EXECUTABLE="$ERLANG_PYTHON_EXECUTABLE" PYO3_PYTHON="$fake"
    # Nothing was installed by the refused builds.
    [[ -z $(ls -A "$work/errors-priv") ]]
}

for what in ${@:-build-errors rebar3-path rebar3-git mix-path mix-git}; do
    case $what in
        build-errors) ERLANG_PYTHON_PRIV_DIR=$work/errors-priv build_errors ;;
        rebar3-path) rebar3_project path ;;
        rebar3-git) rebar3_project git ;;
        mix-path) mix_project path ;;
        mix-git) mix_project git ;;
        *)
            echo "unknown: $what (build-errors rebar3-path rebar3-git mix-path mix-git)" >&2
            exit 2
            ;;
    esac
done
step "passed: ${*:-build-errors rebar3-path rebar3-git mix-path mix-git}"
