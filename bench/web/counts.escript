#!/usr/bin/env escript
%%! -noshell
%% What py_http's BEAM side does per request, counted rather than timed: Erlang function calls,
%% the messages its processes receive, their minor garbage collections and how often they are
%% scheduled in, while wrk loads the FastAPI hello of bench/web/hello.py. Counts do not move
%% with the machine's load the way requests per second do (other builds, other benchmarks), so
%% two builds can be compared on a busy machine. Tracing slows the server down: the rate it
%% prints is not the server's.
%%
%% Usage: counts.escript EBIN [CONNECTIONS] [SECONDS]   (defaults 4 and 3); APP=flask in the
%% environment counts the Flask hello (py_http serving it as WSGI) instead.
-mode(compile).

main([Ebin | Rest]) ->
    {Conns, Seconds} = case Rest of
                           [] -> {4, 3};
                           [C] -> {list_to_integer(C), 3};
                           [C, S] -> {list_to_integer(C), list_to_integer(S)}
                       end,
    true = code:add_patha(Ebin),
    Here = filename:dirname(filename:absname(escript:script_name())),
    {ok, _} = application:ensure_all_started(erlang_python),
    ok = py:add_python_path(list_to_binary(Here)),
    %% APP=flask in the environment: the Flask hello, served as WSGI.
    Opts = case os:getenv("APP", "fastapi") of
               "fastapi" -> #{app => <<"hello:app">>};
               "flask" -> #{app => <<"hello:wsgi">>, interface => wsgi};
               Other ->
                   io:format(standard_error, "APP is fastapi or flask, not ~s~n", [Other]),
                   halt(2)
           end,
    {ok, Server} = py_http:start(Opts#{port => 0}),
    Url = "http://127.0.0.1:" ++ integer_to_list(py_http:port(Server)) ++ "/",
    %% Warm: the app imported, the connections' code loaded, the runner's caches filled.
    _ = wrk(Conns, 1, Url),
    Tracer = spawn(fun() -> tracer([]) end),
    _ = erlang:trace_pattern({'_', '_', '_'}, true, [call_count]),
    _ = erlang:trace(all, true, ['receive', running, garbage_collection, call,
                                 {tracer, Tracer}]),
    _ = erlang:trace(Tracer, false, [all]),
    Out = wrk(Conns, Seconds, Url),
    _ = erlang:trace(all, false, [all]),
    {match, [N0]} = re:run(Out, "([0-9]+) requests in", [{capture, all_but_first, list}]),
    N = list_to_integer(N0),
    Calls = [{MFA, C} || {M, _} <- code:all_loaded(), M =/= ?MODULE,
                         {F, A} <- M:module_info(functions), MFA <- [{M, F, A}],
                         {call_count, C} <- [erlang:trace_info(MFA, call_count)],
                         is_integer(C), C > 0],
    _ = erlang:trace_pattern({'_', '_', '_'}, false, [call_count]),
    Tracer ! {done, self()},
    Events = receive {events, E} -> count(E) end,
    io:format("== ~b requests over ~b connections (~s): per request~n",
              [N, Conns, ebin_label(Ebin)]),
    io:format("~8.1f Erlang function calls~n", [lists:sum([C || {_, C} <- Calls]) / N]),
    [io:format("~8.2f ~s~n", [C / N, What])
     || {What, C} <- lists:reverse(lists:keysort(2, maps:to_list(Events))), C / N >= 0.01],
    io:format("-- the most called functions~n"),
    [io:format("~8.2f ~p~n", [C / N, MFA])
     || {MFA, C} <- lists:sublist(lists:reverse(lists:keysort(2, Calls)), 25)],
    ok = py_http:stop(Server);
main(_) ->
    io:format(standard_error, "usage: counts.escript EBIN [CONNECTIONS] [SECONDS]~n", []),
    halt(2).

ebin_label(Ebin) ->
    filename:absname(Ebin).

wrk(Conns, Seconds, Url) ->
    os:cmd(io_lib:format("wrk -t1 -c~b -d~bs ~s", [Conns, Seconds, Url])).

%% Keeps the trace events, doing nothing else: call counting counts the calls of every
%% process, this one's too (only calls of this module, left out of the count, happen here).
tracer(Events) ->
    receive
        {done, From} ->
            From ! {events, Events};
        Event when element(1, Event) =:= trace ->
            tracer([Event | Events])
    end.

%% The events by kind: messages by their shape, garbage collections, and the times processes
%% are scheduled in.
count(Events) ->
    lists:foldl(fun(Event, Counts) ->
                        case kind(Event) of
                            skip -> Counts;
                            Kind -> maps:update_with(Kind, fun(C) -> C + 1 end, 1, Counts)
                        end
                end, #{}, Events).

kind({trace, Pid, 'receive', Message}) when is_pid(Pid) ->
    lists:flatten(["message received: ", shape(Message)]);
kind({trace, Pid, in, {M, F, A}}) when is_pid(Pid) ->
    io_lib:format("scheduled in, in ~s:~s/~b", [M, F, A]);
kind({trace, _, gc_minor_start, _}) -> "minor garbage collection";
kind({trace, _, gc_major_start, _}) -> "major garbage collection";
kind(_) -> skip.

%% A message's outline: its tag, or `{Ref, Reply}' for a reference-tagged one, `timeout' for a
%% receive that timed out.
shape(timeout) -> "(receive ... after timed out)";
shape(Message) when is_tuple(Message), tuple_size(Message) > 0 ->
    case element(1, Message) of
        Tag when is_atom(Tag) -> io_lib:format("{~p, ...}", [Tag]);
        Tag when is_reference(Tag) -> "{Ref, ...}";
        _ -> "other tuple"
    end;
shape(Message) when is_atom(Message) -> atom_to_list(Message);
shape(_) -> "other".
