# Shared by bench/web/run.sh and bench/web/rounds.sh (sourced, after PY is set): a scratch
# directory, the servers started so far (killed on exit), and starting a server and waiting
# for its port.
TMP=$(mktemp -d)
PIDS=""
cleanup() {
    for pid in $PIDS; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

# wait_port PORT: until something accepts on 127.0.0.1:PORT (30 s at most).
wait_port() {
    i=0
    until "$PY" -c "import socket; socket.create_connection(('127.0.0.1', $1), 0.2).close()" 2>/dev/null; do
        i=$((i + 1))
        [ $i -lt 150 ] || { echo "port $1 never opened" >&2; exit 1; }
        sleep 0.2
    done
}

# start_server LOGNAME PORT COMMAND...: runs COMMAND in bench/web, its output in
# $TMP/LOGNAME.log, and waits for PORT.
start_server() {
    log=$1; port=$2; shift 2
    (cd "$HERE" && exec "$@") >"$TMP/$log.log" 2>&1 &
    PIDS="$PIDS $!"
    wait_port "$port"
}
