#!/usr/bin/env escript
%% -*- erlang -*-
%%! +pc unicode
%%
%% Work fanned out both ways (docs/scalability.md, docs/callbacks.md, docs/asyncio.md):
%%
%%   escript examples/concurrency.escript _build/py3.12/lib/erlang_python/ebin
%%
%% 1. Python fans work out to Erlang processes and collects the results: erlang.async_call
%%    gathered on an asyncio loop, and erlang.call from a pool of Python threads.
%% 2. Erlang fans work out to Python from many processes, and from one with call_async/await.
%% 3. What the GIL allows: pure-Python work against work in C that releases the GIL (timings
%%    printed, not checked).
%% That calls ran at the same time is checked with barriers, never with timings: each call waits
%% until all of its round have arrived, which happens only if they all run at once.
-mode(compile).

-define(N, 8).

main(Args) ->
    Dir = filename:dirname(escript:script_name()),
    {ok, example, Beam} = compile:file(filename:join(Dir, "example.erl"), [binary, report]),
    {module, example} = code:load_binary(example, "example.erl", Beam),
    %% ?N executors, so that ?N Python calls can run at once.
    example:main(Args, "concurrency", [{num_executors, ?N}, {max_concurrent, 4 * ?N}],
                 fun run/2).

run(_Args, _Dir) ->
    python_to_erlang(),
    erlang_to_python(),
    gil(),
    parallel().

%% --- Python fans out to Erlang ------------------------------------------------------------

python_to_erlang() ->
    example:step("Python fans out to Erlang processes"),
    Barrier = spawn_link(fun() -> barrier(?N, []) end),
    %% Each call runs in an Erlang process of its own; it waits at the barrier for the others.
    ok = py:register_function(lookup, fun([Item]) ->
        Barrier ! {arrive, self()},
        receive go -> ok after 30000 -> error({not_all_at_once, Item}) end,
        #{item => Item, square => Item * Item, pid => self()}
    end),
    Items = lists:seq(1, ?N),
    {T1, {ok, Results}} = example:timed(fun() -> py:call(fanout, gather, [lookup, Items]) end),
    check_lookups(Items, Results),
    io:format("  fanout.gather: ~b erlang.async_call on one asyncio loop, ~b Erlang processes~n"
              "    at once, results in order, in ~.1f ms~n",
              [?N, distinct_pids(Results), T1 * 1000]),
    {T2, {ok, Results2}} =
        example:timed(fun() -> py:call(fanout, threads, [lookup, Items], #{workers => ?N}) end),
    check_lookups(Items, Results2),
    io:format("  fanout.threads: ~b Python threads blocking in erlang.call, ~b Erlang processes~n"
              "    at once, in ~.1f ms~n",
              [?N, distinct_pids(Results2), T2 * 1000]),
    ok = py:unregister_function(lookup),
    unlink(Barrier),
    exit(Barrier, kill).

check_lookups(Items, Results) ->
    [#{<<"item">> := I, <<"square">> := S} = R || {I, R} <- lists:zip(Items, Results),
                                                   S <- [I * I]],
    true = distinct_pids(Results) =:= ?N orelse error({not_one_process_each, Results}).

distinct_pids(Results) ->
    length(lists:usort([Pid || #{<<"pid">> := Pid} <- Results, is_pid(Pid)])).

%% Releases the callers in rounds of N.
barrier(N, Waiting) when length(Waiting) =:= N ->
    [Pid ! go || Pid <- Waiting],
    barrier(N, []);
barrier(N, Waiting) ->
    receive {arrive, Pid} -> barrier(N, [Pid | Waiting]) end.

%% --- Erlang fans out to Python ------------------------------------------------------------

erlang_to_python() ->
    example:step("Erlang fans out to Python"),
    %% N processes, one py:call each; the calls meet at a barrier in Python.
    Threads = example:pmap(
        fun(_) -> {ok, Ident} = py:call(fanout, meet, [<<"processes">>, ?N]), Ident end,
        lists:seq(1, ?N)),
    N = length(lists:usort(Threads)),
    io:format("  ~b processes x py:call(fanout, meet, ...): ~b executor threads at once~n",
              [?N, N]),
    true = N =:= ?N orelse error({not_all_at_once, Threads}),
    %% One process, N call_async, then awaiting each: they run at once too.
    Refs = [py:call_async(fanout, meet, [<<"one process">>, ?N]) || _ <- lists:seq(1, ?N)],
    Threads2 = [begin {ok, I} = py:await(R, 60000), I end || R <- Refs],
    N2 = length(lists:usort(Threads2)),
    io:format("  1 process x ~b py:call_async, then py:await each: ~b executor threads at once~n",
              [?N, N2]),
    true = N2 =:= ?N orelse error({not_all_at_once, Threads2}).

%% --- the GIL ------------------------------------------------------------------------------

gil() ->
    example:step("what the GIL allows (measured here, not checked)"),
    Cores = erlang:system_info(logical_processors_available),
    Ways = 4,
    lists:foreach(
        fun({Label, Function, Arg}) ->
            {ok, Expected} = py:call(fanout, Function, [Arg]),
            Alone = example:best_of(3, fun() ->
                {ok, Expected} = py:call(fanout, Function, [Arg])
            end),
            Together = example:best_of(3, fun() ->
                [{ok, Expected}] = lists:usort(example:pmap(
                    fun(_) -> py:call(fanout, Function, [Arg]) end, lists:seq(1, Ways)))
            end),
            io:format("  ~-42ts 1 call ~6.1f ms, ~b at once ~6.1f ms: ~.1fx one call's rate~n",
                      [Label, Alone * 1000, Ways, Together * 1000, Ways * Alone / Together])
        end,
        [{"fanout.spin (pure Python, holds the GIL)", spin, 1000000},
         {"fanout.hash_rounds (C, releases the GIL)", hash_rounds, 200000}]),
    io:format("  (~p cores available to the VM: C code that releases the GIL runs in parallel\n"
              "   up to that; pure Python runs one call at a time whatever the executors)~n",
              [Cores]).

%% --- py:parallel ------------------------------------------------------------------------------

parallel() ->
    example:step("py:parallel: pure Python on several cores"),
    Ways = 4,
    Calls = [{fanout, spin, [1000000]} || _ <- lists:seq(1, Ways)],
    {ok, Expected} = py:call(fanout, spin, [1000000]),
    Where = case {py:subinterp_supported(), py:execution_mode()} of
                {true, _} -> "own-GIL sub-interpreters";
                {false, free_threaded} -> "free-threaded executors";
                {false, _} -> "executors, taking turns on the GIL (3.11)"
            end,
    {ok, Results} = example:show("py:parallel([{fanout, spin, [1000000]} x 4])",
                                 py:parallel(Calls)),
    Results = lists:duplicate(Ways, {ok, Expected}),
    %% One failing call does not stop the others, and results keep the calls' order.
    {ok, [{ok, 2.0}, {error, {'ValueError', _}}, {ok, 6}]} =
        example:show("py:parallel([sqrt(4), sqrt(-1), sum([1,2,3])])",
                     py:parallel([{math, sqrt, [4]}, {math, sqrt, [-1]},
                                  {builtins, sum, [[1, 2, 3]]}])),
    Alone = example:best_of(3, fun() -> {ok, Expected} = py:call(fanout, spin, [1000000]) end),
    Together = example:best_of(3, fun() -> {ok, _} = py:parallel(Calls) end),
    io:format("  on ~ts: 1 call ~.1f ms, ~b in py:parallel ~.1f ms: ~.1fx one call's rate "
              "(measured, not checked)~n",
              [Where, Alone * 1000, Ways, Together * 1000, Ways * Alone / Together]).
