#!/bin/sh
# FastAPI JSON hello (bench/web/hello.py) under wrk in interleaved rounds: py_http from one or
# more builds (each an ebin, optionally with VM flags) and uvicorn with one worker (uvloop +
# httptools), each server in turn within a round, so that a machine whose load changes (other
# builds) weighs on all of them alike. Prints req/s, p50, p99 and the load average per run.
# With APP=flask in the environment: the Flask hello, py_http serving it as WSGI, and gunicorn
# with one sync worker in uvicorn's place.
#
# Usage: bench/web/rounds.sh VENV_PYTHON ROUNDS SECONDS CONNECTIONS LABEL=EBIN[@FLAGS]...
#   e.g. bench/web/rounds.sh _build/py3.12/venv/bin/python 5 5 50 \
#          main=/work/main/_build/py3.12/lib/erlang_python/ebin \
#          branch=$PWD/_build/py3.12/lib/erlang_python/ebin \
#          branch-sbwt=$PWD/_build/py3.12/lib/erlang_python/ebin@"+sbwt none +sbwtdcpu none +sbwtdio none"
# The NIF beside each ebin (../priv) runs the Python it was built for; uvicorn runs VENV_PYTHON.
set -eu
PY=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
ROUNDS=$2
SECONDS_=$3
CONNS=$4
shift 4
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
start() { # port command...
    start_server "$1" "$@"
}

# The app py_http serves, and its peer: start_peer PORT starts it and names it.
APP=${APP:-fastapi}
case $APP in
    fastapi)
        PY_HTTP_APP=hello:app; PY_HTTP_OPTS=""
        start_peer() {
            start "$1" "$PY" -m uvicorn hello:app --port "$1" --workers 1 --loop uvloop \
                --http httptools --log-level warning --no-access-log
            SERVERS="$SERVERS uvicorn:$1"
            echo "== uvicorn: 1 worker, uvloop + httptools"
        } ;;
    flask)
        PY_HTTP_APP=hello:wsgi; PY_HTTP_OPTS=", interface => wsgi"
        start_peer() {
            start "$1" "$PY" -m gunicorn -w 1 -b "127.0.0.1:$1" hello:wsgi
            SERVERS="$SERVERS gunicorn:$1"
            echo "== gunicorn: 1 sync worker"
        } ;;
    *) echo "APP is fastapi or flask, not $APP" >&2; exit 2 ;;
esac

run_wrk() { # label port
    url="http://127.0.0.1:$2/"
    wrk -t1 -c"$CONNS" -d1s "$url" >/dev/null
    out=$(wrk -t2 -c"$CONNS" -d"${SECONDS_}s" --latency "$url")
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    p50=$(echo "$out" | awk '$1 == "50%" {print $2}')
    p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
    printf '%-24s %10s req/s   p50 %8s   p99 %8s   load %s\n' "$1" "$rps" "$p50" "$p99" \
        "$(cut -d' ' -f1 /proc/loadavg)"
}

echo "== $(nproc) cores, $("$PY" -VV | head -1), $APP hello, wrk $CONNS connections, ${SECONDS_} s runs"
SERVERS=""
port=18820
for spec in "$@"; do
    label=${spec%%=*}
    rest=${spec#*=}
    ebin=${rest%%@*}
    flags=""
    [ "$rest" = "$ebin" ] || flags=${rest#*@}
    port=$((port + 1))
    # shellcheck disable=SC2086 # the flags are words for erl
    start "$port" erl -noshell $flags -pa "$ebin" -eval "
        {ok, _} = application:ensure_all_started(erlang_python),
        ok = py:add_python_path(<<\"$HERE\">>),
        {ok, _} = py_http:start(#{app => <<\"$PY_HTTP_APP\">>, port => $port$PY_HTTP_OPTS}),
        receive after infinity -> ok end."
    echo "== $label: py_http, $ebin, VM flags: ${flags:-none}"
    SERVERS="$SERVERS $label:$port"
done
port=$((port + 1))
start_peer "$port"
# The servers take turns at going first: a server run right after another one runs slower
# (measured A/A: 4,355 against 5,466 req/s in the second slot), so a fixed order would favour
# whichever comes first. Round r starts with the r-th server.
r=1
while [ $r -le "$ROUNDS" ]; do
    echo "-- round $r"
    # shellcheck disable=SC2086 # the list is words
    set -- $SERVERS
    shift_by=$(( (r - 1) % $# ))
    i=0
    while [ $i -lt "$shift_by" ]; do
        first=$1
        shift
        set -- "$@" "$first"
        i=$((i + 1))
    done
    for server in "$@"; do run_wrk "${server%%:*}" "${server##*:}"; done
    r=$((r + 1))
done
