#!/bin/sh
# The web benchmark: the same FastAPI and Flask hellos (bench/web/hello.py) served by py_http
# and by uvicorn, granian and gunicorn, on loopback, loaded by wrk in turn. Numbers go into issue
# notes and docs/web-frameworks.md, never into tests.
#
# Usage: bench/web/run.sh EBIN VENV_PYTHON [SECONDS] [CONNECTIONS]
set -eu
EBIN=$1
PY=$2
SECONDS_=${3:-10}
CONNS=${4:-50}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"

start() { # name port command...
    start_server "$@"
}

run_wrk() { # label port [path]
    url="http://127.0.0.1:$2${3:-/}"
    # One warm-up second, then the measured run.
    wrk -t1 -c"$CONNS" -d1s "$url" >/dev/null
    out=$(wrk -t2 -c"$CONNS" -d"${SECONDS_}s" --latency "$url")
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    p50=$(echo "$out" | awk '$1 == "50%" {print $2}')
    p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
    errors=$(echo "$out" | awk '/Non-2xx|Socket errors/ {printf "%s ", $0}')
    printf '%-34s %10s req/s   p50 %8s   p99 %8s   %s\n' "$1" "$rps" "$p50" "$p99" "$errors"
}

echo "== $(uname -m), $(nproc) cores, $("$PY" -VV | head -1), $(erl -noshell -eval 'io:format("OTP ~s", [erlang:system_info(otp_release)]), halt().')"
echo "== wrk: $CONNS connections, ${SECONDS_} s per server, loopback"
# erl reads ERL_FLAGS from the environment (e.g. ERL_FLAGS="+sbwt none" make bench-web).
echo "== py_http's VM flags: ${ERL_FLAGS:-none (the VM's defaults, schedulers busy-wait as usual)}"

start py_http 18801 erl -noshell -pa "$EBIN" -eval "
    {ok, _} = application:ensure_all_started(erlang_python),
    ok = py:add_python_path(<<\"$HERE\">>),
    {ok, _} = py_http:start(#{app => <<\"hello:app\">>, port => 18801}),
    {ok, _} = py_http:start(#{app => <<\"hello:wsgi\">>, interface => wsgi, port => 18802}),
    receive after infinity -> ok end."
wait_port 18802
start uvicorn1 18803 "$PY" -m uvicorn hello:app --port 18803 --workers 1 --loop uvloop --http httptools --log-level warning --no-access-log
start uvicorn2 18804 "$PY" -m uvicorn hello:app --port 18804 --workers 2 --loop uvloop --http httptools --log-level warning --no-access-log
start granian 18805 "$PY" -m granian --interface asgi --port 18805 --workers 1 --log-level warning hello:app
start gunicorn1 18806 "$PY" -m gunicorn -w 1 -b 127.0.0.1:18806 hello:wsgi
start gunicorn2 18807 "$PY" -m gunicorn -w 2 -b 127.0.0.1:18807 hello:wsgi

echo "-- FastAPI JSON hello"
run_wrk "py_http (erlang_python)" 18801
run_wrk "uvicorn, 1 worker (uvloop+httptools)" 18803
run_wrk "uvicorn, 2 workers" 18804
run_wrk "granian, 1 worker" 18805
echo "-- Flask JSON hello"
run_wrk "py_http (erlang_python)" 18802
run_wrk "gunicorn, 1 sync worker" 18806
run_wrk "gunicorn, 2 sync workers" 18807

# A 100 MiB streamed response read by a slow-ish client (curl, limited to 50 MB/s): the
# server's resident memory is sampled while it streams.
stream_rss() { # label port pid
    base=$(ps -o rss= -p "$3")
    curl -s --limit-rate 50M -o /dev/null "http://127.0.0.1:$2/big?mb=100" &
    curl_pid=$!
    peak=$base
    while kill -0 "$curl_pid" 2>/dev/null; do
        now=$(ps -o rss= -p "$3")
        [ "$now" -gt "$peak" ] && peak=$now
        sleep 0.1
    done
    printf '%-34s RSS before %6d MiB, peak while streaming %6d MiB (+%d MiB)\n' "$1" \
        $((base / 1024)) $((peak / 1024)) $(((peak - base) / 1024))
}
echo "-- 100 MiB streaming response (FastAPI StreamingResponse)"
stream_rss "py_http (erlang_python)" 18801 "$(echo $PIDS | cut -d' ' -f1)"
stream_rss "uvicorn, 1 worker" 18803 "$(pgrep -f 'uvicorn hello:app --port 18803' | head -1)"

# The Erlang HTTP servers one could put in front of the app instead of py_http (OTP's inets
# httpd; yaws and mochiweb from Debian), each calling py_wsgi:run/4 for the Flask hello in one
# more VM (bench/web/fronts.erl), then `/raw`: the same JSON without Python, each server's own
# ceiling. docs/web-frameworks.md, "Why py_http".
YAWS_EBIN=$(ls -d /usr/lib/yaws-*/ebin 2>/dev/null | head -1)
erlc -o "$TMP" ${YAWS_EBIN:+-pa "$YAWS_EBIN"} "$HERE/fronts.erl"
start fronts 18814 erl -noshell -pa "$EBIN" -pa "$TMP" ${YAWS_EBIN:+-pa "$YAWS_EBIN"} -eval "
    {ok, _} = application:ensure_all_started(erlang_python),
    ok = py:add_python_path(<<\"$HERE\">>),
    Started = fronts:start(18811),
    ok = file:write_file(\"$TMP/fronts\", [[atom_to_list(N), \" \", integer_to_list(P), \"\n\"]
                                          || {N, P} <- Started]),
    receive after infinity -> ok end."
echo "-- Flask JSON hello behind Erlang HTTP servers, each calling py_wsgi:run/4 (one VM)"
while read -r name port; do run_wrk "$name" "$port"; done <"$TMP/fronts"
echo "-- the same JSON without Python (/raw): each server's own ceiling"
while read -r name port; do
    [ "$name" = py_http ] || run_wrk "$name" "$port" /raw
done <"$TMP/fronts"

# 1,000 idle websockets: memory per connection, py_http (in a BEAM of its own) and uvicorn.
echo "-- 1,000 idle websockets (FastAPI echo)"
escript "$HERE/idle_websockets.escript" "$EBIN" "$PY" 1000 | tail -n +2
