#!/usr/bin/env escript
%% -*- erlang -*-
%%! +pc unicode
%%
%% The key-value store Erlang and Python share (docs/state.md):
%%
%%   escript examples/shared_state.escript _build/py3.12/lib/erlang_python/ebin
%%
%% Erlang stores a configuration that Python reads; Erlang processes and Python threads count
%% on one counter at the same time without losing an update; keys are listed and removed.
-mode(compile).

-define(PROCESSES, 10).
-define(THREADS, 4).
-define(TIMES, 200).

main(Args) ->
    Dir = filename:dirname(escript:script_name()),
    {ok, example, Beam} = compile:file(filename:join(Dir, "example.erl"), [binary, report]),
    {module, example} = code:load_binary(example, "example.erl", Beam),
    example:main(Args, "shared_state", [], fun run/2).

run(_Args, _Dir) ->
    example:step("Erlang stores, Python reads"),
    %% Binary keys: Python's str keys arrive as binaries (docs/state.md).
    ok = py:state_store(<<"config">>, #{<<"service">> => <<"search">>, <<"version">> => 3,
                                       <<"features">> => [<<"embed">>, <<"rank">>]}),
    {ok, <<"search v3 with 2 features">>} =
        example:show("py:call(counters, describe, [])", py:call(counters, describe, [])),
    {ok, 3} = example:show("py:eval(<<\"erlang.state_get('config')['version']\">>)",
                           py:eval(<<"erlang.state_get('config')['version']">>)),

    example:step("one counter, Erlang processes and Python threads at once"),
    Python = spawn_monitor(fun() ->
        exit({ok, py:call(counters, bump, [<<"hits">>, ?THREADS, ?TIMES])})
    end),
    example:pmap(fun(_) -> [py:state_incr(<<"hits">>) || _ <- lists:seq(1, ?TIMES)] end,
                 lists:seq(1, ?PROCESSES)),
    {_, MRef} = Python,
    {ok, _} = receive {'DOWN', MRef, process, _, Result} -> Result end,
    Total = (?PROCESSES + ?THREADS) * ?TIMES,
    {ok, Total} = example:show("py:state_fetch(<<\"hits\">>)", py:state_fetch(<<"hits">>)),
    io:format("  ~b Erlang processes and ~b Python threads x ~b increments: none lost~n",
              [?PROCESSES, ?THREADS, ?TIMES]),

    example:step("errors, keys, removal"),
    {ok, <<"ErlangError error: badarg">>} =
        example:show("py:call(counters, count_on_a_text, [])",
                     py:call(counters, count_on_a_text, [])),
    {ok, <<"erlang_python">>} = py:state_fetch(<<"name">>),
    [<<"config">>, <<"hits">>, <<"name">>] =
        example:show("lists:sort(py:state_keys())", lists:sort(py:state_keys())),
    ok = py:state_remove(<<"name">>),
    {error, not_found} = example:show("py:state_fetch(<<\"name\">>) after removal",
                                      py:state_fetch(<<"name">>)),
    {ok, none} = example:show("py:eval(<<\"erlang.state_get('name')\">>)",
                              py:eval(<<"erlang.state_get('name')">>)),
    ok = py:state_clear(),
    [] = example:show("py:state_keys() after py:state_clear()", py:state_keys()).
