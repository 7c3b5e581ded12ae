#!/usr/bin/env escript
%% -*- erlang -*-
%%! +pc unicode
%%
%% A short tour of erlang_python: Erlang calling CPython in the same OS process.
%%
%%   escript examples/demo.escript _build/py3.12/lib/erlang_python/ebin
%%
%% Every step pattern-matches the reply it expects; anything else stops the demo with a
%% message naming the step, and a non-zero exit status. (`+pc unicode` above lets ~tp print
%% UTF-8 binaries as text.)
-mode(compile).

main([Ebin | _]) ->
    ok = io:setopts(standard_io, [{encoding, unicode}]),
    %% Warnings and errors from the application still show; "application stopped" notices do not.
    ok = logger:set_primary_config(level, warning),
    Watchdog = spawn(fun() -> watchdog("start") end),
    register(demo_watchdog, Watchdog),
    try
        start(Ebin),
        calls(),
        numpy(),
        concurrency(),
        errors(),
        types(),
        stop(),
        io:format("~nall steps behaved as expected~n"),
        halt(0)
    catch
        Class:Reason:Stack ->
            io:format(standard_error, "~ndemo FAILED in step \"~ts\":~n  ~p:~tp~n  at ~p~n",
                      [get(step), Class, Reason, hd(Stack ++ [unknown])]),
            halt(1)
    end;
main(_) ->
    io:format(standard_error, "usage: escript examples/demo.escript <erlang_python ebin>~n", []),
    halt(2).

start(Ebin) ->
    step("start"),
    true = filelib:is_dir(Ebin) orelse error({no_such_dir, Ebin}),
    true = code:add_patha(Ebin),
    %% Ten executor threads, and room for that many concurrent calls in the semaphore, so
    %% that the ten sleeps below really run side by side (the defaults follow the schedulers).
    ok = application:load(erlang_python),
    ok = application:set_env(erlang_python, num_executors, 10),
    ok = application:set_env(erlang_python, max_concurrent, 20),
    {ok, _} = application:ensure_all_started(erlang_python),
    {ok, Version} = py:version(),
    io:format("Python ~ts, ~p mode, ~b executors~n",
              [hd(binary:split(Version, <<" ">>)), py:execution_mode(), py:num_executors()]).

%% --- calls -----------------------------------------------------------------------------------

calls() ->
    step("calls"),
    {ok, 1.4142135623730951} = show("py:call(math, sqrt, [2.0])", py:call(math, sqrt, [2.0])),

    %% An Erlang map becomes a dict (UTF-8 binaries become str), keyword arguments are a map.
    Person = #{<<"name">> => <<"Ada">>, <<"langs">> => [<<"erlang">>, <<"python">>],
               <<"born">> => 1815},
    {ok, <<"{\"born\": 1815, \"langs\": [\"erlang\", \"python\"], \"name\": \"Ada\"}">>} =
        show("py:call(json, dumps, [Person], #{sort_keys => true})",
             py:call(json, dumps, [Person], #{sort_keys => true})),

    {ok, 42} = show("py:eval(<<\"x * y\">>, #{x => 6, y => 7})",
                    py:eval(<<"x * y">>, #{x => 6, y => 7})),

    %% exec defines names in the shared __main__ namespace; call them as module '__main__'.
    ok = show("py:exec(<<\"def greet(name, punct='!'): ...\">>)",
              py:exec(<<"def greet(name, punct='!'):\n"
                        "    return f'hello, {name}{punct}'\n">>)),
    {ok, <<"hello, erlang!">>} =
        show("py:call('__main__', greet, [<<\"erlang\">>])",
             py:call('__main__', greet, [<<"erlang">>])),
    {ok, <<"hello, world?">>} =
        show("py:call('__main__', greet, [<<\"world\">>], #{punct => <<\"?\">>})",
             py:call('__main__', greet, [<<"world">>], #{punct => <<"?">>})).

%% --- numpy -----------------------------------------------------------------------------------

numpy() ->
    step("numpy"),
    ok = show("py:exec(<<\"import numpy as np\">>)", py:exec(<<"import numpy as np">>)),
    %% A numpy scalar comes back as a plain number, an ndarray as nested lists.
    {ok, 45} = show("py:eval(<<\"np.arange(10).sum()\">>)", py:eval(<<"np.arange(10).sum()">>)),
    ok = py:exec(<<"def matmul(a, b):\n"
                   "    return np.array(a) @ np.array(b)\n">>),
    {ok, [[0.5, 1.0], [1.5, 2.0]]} =
        show("py:call('__main__', matmul, [[[1, 2], [3, 4]], [[0.5, 0], [0, 0.5]]])",
             py:call('__main__', matmul, [[[1, 2], [3, 4]], [[0.5, 0], [0, 0.5]]])).

%% --- concurrency -----------------------------------------------------------------------------

concurrency() ->
    step("concurrency"),
    %% time.sleep releases the GIL, so ten callers on ten executors overlap.
    {Micros, Results} =
        timer:tc(fun() -> pmap(fun(_) -> py:call(time, sleep, [0.5]) end, lists:seq(1, 10)) end),
    [{ok, none}] = lists:usort(Results),
    io:format("  ~-50ts finished in ~.2f s~n",
              ["10 processes x py:call(time, sleep, [0.5])", Micros / 1.0e6]),
    true = Micros < 1000000 orelse error({sleeps_did_not_overlap, Micros div 1000, ms}).

%% --- errors ----------------------------------------------------------------------------------

errors() ->
    step("errors"),
    {error, {'ZeroDivisionError', <<"division by zero">>}} =
        show("py:eval(<<\"1 / 0\">>)", py:eval(<<"1 / 0">>)),
    Traceback = py:last_traceback(),
    true = is_binary(Traceback) orelse error({no_traceback, Traceback}),
    io:format("  ~-50ts ~0tp~n", ["py:last_traceback() ends with",
              lists:last(binary:split(string:trim(Traceback), <<"\n">>, [global]))]),

    %% A timeout interrupts the running Python code, not just the wait.
    {Micros, {error, timeout}} =
        timer:tc(fun() -> py:call(time, sleep, [10], #{}, 200) end),
    io:format("  ~-50ts {error,timeout} after ~b ms~n",
              ["py:call(time, sleep, [10], #{}, 200)", Micros div 1000]),
    true = Micros < 1000000 orelse error({timeout_too_late, Micros div 1000, ms}),

    %% Time out as many sleeps as there are executors: if any were still sleeping, the next
    %% call would wait for them.
    N = py:num_executors(),
    [{error, timeout}] = lists:usort(pmap(fun(_) -> py:call(time, sleep, [10], #{}, 200) end,
                                          lists:seq(1, N))),
    {Micros2, {ok, 2.0}} = timer:tc(fun() -> py:call(math, sqrt, [4.0], #{}, 5000) end),
    io:format("  ~-50ts {ok,2.0} in ~.1f ms~n",
              [io_lib:format("~b more timeouts, then py:call(math, sqrt, [4.0])", [N]),
               Micros2 / 1000]),
    true = Micros2 < 2000000 orelse error({pool_still_busy, Micros2 div 1000, ms}),
    %% No late reply from the interrupted call reaches the mailbox.
    receive
        Late -> error({late_message, Late})
    after 100 ->
        ok
    end.

%% --- type round trips ------------------------------------------------------------------------

types() ->
    step("types"),
    ok = py:exec(<<"def ident(x):\n    return x\n">>),
    Big = 1 bsl 100 + 7,
    {ok, Big} = show("bignum 2^100 + 7 through Python", py:call('__main__', ident, [Big])),
    {ok, 1267650600228229401496703205376} = show("py:eval(<<\"2 ** 100\">>)",
                                                 py:eval(<<"2 ** 100">>)),

    Text = <<"héllo, wörld ☃ 日本"/utf8>>,
    {ok, Text} = show("UTF-8 binary through Python", py:call('__main__', ident, [Text])),
    Length = string:length(Text),
    {ok, Length} = show("py:call(builtins, len, [Text])", py:call(builtins, len, [Text])),
    {ok, <<"HÉLLO, WÖRLD ☃ 日本"/utf8>>} =
        show("py:eval(<<\"s.upper()\">>, #{s => Text})", py:eval(<<"s.upper()">>, #{s => Text})),

    Self = self(),
    {ok, Self} = show("self() through Python", py:call('__main__', ident, [Self])),
    {ok, <<"Pid">>} = show("py:eval(<<\"type(p).__name__\">>, #{p => self()})",
                           py:eval(<<"type(p).__name__">>, #{p => Self})),
    Ref = make_ref(),
    {ok, Ref} = show("make_ref() through Python", py:call('__main__', ident, [Ref])),

    Mixed = #{<<"tuple">> => {1, 2.5, true, none}, <<"list">> => [<<"a">>, [], {}]},
    {ok, Mixed} = show("a map of tuples and lists", py:call('__main__', ident, [Mixed])).

stop() ->
    step("stop"),
    ok = show("application:stop(erlang_python)", application:stop(erlang_python)).

%% --- helpers ---------------------------------------------------------------------------------

step(Name) ->
    put(step, Name),
    demo_watchdog ! {step, Name},
    io:format("~n== ~ts ==~n", [Name]).

show(Label, Value) when length(Label) =< 50 ->
    io:format("  ~-50ts ~0tp~n", [Label, Value]),
    Value;
show(Label, Value) ->
    io:format("  ~ts~n  ~50c ~0tp~n", [Label, $\s, Value]),
    Value.

%% Calls F on each element in its own process; results in order.
pmap(F, List) ->
    Parent = self(),
    Pids = [spawn_link(fun() -> Parent ! {pmap, self(), F(X)} end) || X <- List],
    [receive {pmap, Pid, R} -> R end || Pid <- Pids].

%% Stops the demo if one step takes more than 30 s (a hung call would otherwise wait forever).
watchdog(Step) ->
    receive
        {step, Next} -> watchdog(Next)
    after 30000 ->
        io:format(standard_error, "~ndemo FAILED: step \"~ts\" made no progress for 30 s~n",
                  [Step]),
        halt(3)
    end.
