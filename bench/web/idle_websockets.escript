#!/usr/bin/env escript
%%! -noshell +Q 65536
%% 1,000 idle websockets: memory per connection, py_http against uvicorn. Opens N websockets
%% (default 1000) to the FastAPI echo of bench/web/hello.py served by py_http in this BEAM, and
%% then by uvicorn (1 worker), with bench/web/idle_ws_client.py, and reports the BEAM's memory
%% (erlang:memory(total)), its process count and the OS process's resident memory before and
%% while they are open. Numbers go into docs/web-frameworks.md, never into tests.
%%
%% Usage: idle_websockets.escript EBIN VENV_PYTHON [N]
-mode(compile).

main([Ebin, Py0 | Rest]) ->
    N = case Rest of [] -> 1000; [A] -> list_to_integer(A) end,
    %% The ports below run in bench/web: a relative path to the venv's python would not
    %% resolve there (uvicorn then never starts).
    Py = case lists:member($/, Py0) of
             true -> filename:absname(Py0);
             false -> os:find_executable(Py0)
         end,
    true = code:add_patha(Ebin),
    Here = filename:dirname(filename:absname(escript:script_name())),
    {ok, _} = application:ensure_all_started(erlang_python),
    ok = py:add_python_path(list_to_binary(Here)),
    {ok, Server} = py_http:start(#{app => <<"hello:app">>, port => 0}),
    Port = py_http:port(Server),
    io:format("== ~b idle websockets to the FastAPI echo (bench/web/hello.py)~n", [N]),
    %% The app imported and its lifespan run first: not part of the connections' cost.
    {ok, _} = py_asgi:run(hello, app, #{path => <<"/">>}, <<>>),
    ours(Py, Here, Port, N),
    ok = py_http:stop(Server),
    theirs(Py, Here, N),
    halt(0);
main(_) ->
    io:format(standard_error, "usage: idle_websockets.escript EBIN VENV_PYTHON [N]~n", []),
    halt(2).

ours(Py, Here, Port, N) ->
    settle(),
    Before = {erlang:memory(total), erlang:system_info(process_count), rss(os:getpid())},
    Client = client(Py, Here, Port, N),
    settle(),
    Open = {erlang:memory(total), erlang:system_info(process_count), rss(os:getpid())},
    %% Quiet for 2 s: each connection has parked its permessage-deflate zlib streams (the
    %% client's one message was compressed), as a really idle websocket has.
    timer:sleep(2000),
    settle(),
    Quiet = {erlang:memory(total), erlang:system_info(process_count), rss(os:getpid())},
    close(Client),
    report("py_http   (just opened)", Before, Open, N),
    report("py_http   (quiet 2 s)  ", Before, Quiet, N).

report(What, {M0, P0, R0}, {M1, P1, R1}, N) ->
    io:format("~s BEAM memory ~6.1f -> ~6.1f MiB (~5.1f KiB per websocket), "
              "~b processes per websocket~n"
              "                         OS RSS      ~6.1f -> ~6.1f MiB (~5.1f KiB per websocket)~n",
              [What, M0 / 1048576, M1 / 1048576, (M1 - M0) / 1024 / N, (P1 - P0) div N,
               R0 / 1048576, R1 / 1048576, (R1 - R0) / 1024 / N]).

theirs(Py, Here, N) ->
    Port = 18899,
    Uvicorn = open_port({spawn_executable, Py},
                        [{args, ["-m", "uvicorn", "hello:app", "--port", integer_to_list(Port),
                                 "--workers", "1", "--log-level", "warning",
                                 "--no-access-log", "--ws-ping-interval", "0"]},
                         {cd, Here}, exit_status, stderr_to_stdout, binary]),
    {os_pid, OsPid} = erlang:port_info(Uvicorn, os_pid),
    wait_port(Port, 600),
    Pid = integer_to_list(OsPid),
    R0 = rss(Pid),
    Client = client(Py, Here, Port, N),
    R1 = rss(Pid),
    close(Client),
    os:cmd("kill " ++ Pid),
    io:format("uvicorn                  OS RSS      ~6.1f -> ~6.1f MiB (~5.1f KiB per websocket)~n",
              [R0 / 1048576, R1 / 1048576, (R1 - R0) / 1024 / N]).

%% Starts the client and waits until its N websockets are open.
client(Py, Here, Port, N) ->
    Url = "ws://127.0.0.1:" ++ integer_to_list(Port) ++ "/ws",
    P = open_port({spawn_executable, Py},
                  [{args, [filename:join(Here, "idle_ws_client.py"), Url, integer_to_list(N)]},
                   exit_status, stderr_to_stdout, binary, {line, 1000}]),
    await_line(P, <<"open">>, 600000),
    P.

close(P) ->
    true = port_command(P, <<"\n">>),
    await_line(P, <<"closed">>, 120000).

await_line(P, Line, Timeout) ->
    receive
        {P, {data, {eol, Line}}} -> ok;
        {P, {data, {_, Other}}} -> io:format("client: ~s~n", [Other]), await_line(P, Line, Timeout);
        {P, {exit_status, S}} -> io:format("client exited with ~b~n", [S]), halt(1)
    after Timeout ->
        io:format("the client did not say ~s~n", [Line]), halt(1)
    end.

%% Garbage-collects every process, so that the measures compare live data.
settle() ->
    [erlang:garbage_collect(P) || P <- processes()],
    _ = py:gc(),
    ok.

rss(OsPid) ->
    {ok, Status} = file:read_file("/proc/" ++ OsPid ++ "/status"),
    {match, [Kb]} = re:run(Status, <<"VmRSS:\\s+(\\d+) kB">>, [{capture, all_but_first, binary}]),
    binary_to_integer(Kb) * 1024.

wait_port(Port, 0) ->
    io:format("port ~b never opened~n", [Port]), halt(1);
wait_port(Port, Tries) ->
    case gen_tcp:connect({127, 0, 0, 1}, Port, [], 200) of
        {ok, S} -> gen_tcp:close(S);
        {error, _} -> timer:sleep(200), wait_port(Port, Tries - 1)
    end.
