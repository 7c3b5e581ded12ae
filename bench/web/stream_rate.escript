#!/usr/bin/env escript
%%! -noshell
%% How many requests per second py_asgi:stream/6 serves with no HTTP and no sockets: CONC
%% Erlang processes each call it in a loop for SECONDS with py_http's scope of a wrk request,
%% for an app of bench/web/hello.py (`hello:app', the FastAPI hello, or `hello:raw', the same
%% response from a bare ASGI app: what the runner costs by itself). The asyncio loop thread that
%% runs the app is the bottleneck, so this compares runner builds without wrk's own CPU and
%% the kernel's loopback in the way; run builds in alternation, several times each, as the
%% machine's speed drifts.
%%
%% Usage: stream_rate.escript EBIN [APP] [CONC] [SECONDS]   (defaults hello:app 50 4)
-mode(compile).

main([Ebin | Rest]) ->
    {App, Conc, Secs} = case Rest of
                            [] -> {"hello:app", 50, 4};
                            [A] -> {A, 50, 4};
                            [A, C] -> {A, list_to_integer(C), 4};
                            [A, C, S | _] -> {A, list_to_integer(C), list_to_integer(S)}
                        end,
    true = code:add_patha(Ebin),
    Here = filename:dirname(filename:absname(escript:script_name())),
    {ok, _} = application:ensure_all_started(erlang_python),
    ok = py:add_python_path(list_to_binary(Here)),
    [M, C0] = string:split(App, ":"),
    Module = list_to_binary(M),
    Callable = list_to_binary(C0),
    ok = py_asgi:startup(Module, Callable),
    Scope = #{type => <<"http">>, http_version => <<"1.1">>, method => <<"GET">>,
              scheme => <<"http">>, path => <<"/">>, raw_path => <<"/">>,
              query_string => <<>>, root_path => <<>>,
              headers => [{<<"host">>, <<"127.0.0.1:8000">>}, {<<"user-agent">>, <<"wrk">>}],
              server => {<<"127.0.0.1">>, 8000}, client => {<<"127.0.0.1">>, 50000}},
    Handler = fun(_Event, Events) -> {ok, Events + 1} end,
    One = fun() -> {ok, 2} = py_asgi:stream(Module, Callable, Scope, Handler, 0, #{}) end,
    [One() || _ <- lists:seq(1, 500)],
    Self = self(),
    Stop = erlang:monotonic_time(millisecond) + Secs * 1000,
    Loop = fun L(N) ->
                   case erlang:monotonic_time(millisecond) < Stop of
                       true -> One(), L(N + 1);
                       false -> N
                   end
           end,
    T0 = erlang:monotonic_time(microsecond),
    [spawn_link(fun() -> Self ! {served, Loop(0)} end) || _ <- lists:seq(1, Conc)],
    N = lists:sum([receive {served, K} -> K end || _ <- lists:seq(1, Conc)]),
    T = erlang:monotonic_time(microsecond) - T0,
    io:format("~s ~s: ~b req/s (~b callers, ~b s)~n",
              [filename:absname(Ebin), App, round(N * 1.0e6 / T), Conc, Secs]);
main(_) ->
    io:format(standard_error, "usage: stream_rate.escript EBIN [APP] [CONC] [SECONDS]~n", []),
    halt(2).
