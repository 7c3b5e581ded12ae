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

main(Args) ->
    Dir = filename:dirname(escript:script_name()),
    {ok, example, Beam} = compile:file(filename:join(Dir, "example.erl"), [binary, report]),
    {module, example} = code:load_binary(example, "example.erl", Beam),
    %% Ten executor threads, and room for that many concurrent calls in the semaphore, so
    %% that the ten sleeps below really run side by side (the defaults follow the schedulers).
    example:main(Args, "demo", [{num_executors, 10}, {max_concurrent, 20}], fun run/2).

run(_Args, _Dir) ->
    io:format("  ~p mode~n", [py:execution_mode()]),
    calls(),
    numpy(),
    concurrency(),
    errors(),
    types().

%% --- calls -----------------------------------------------------------------------------------

calls() ->
    example:step("calls"),
    {ok, 1.4142135623730951} =
        example:show("py:call(math, sqrt, [2.0])", py:call(math, sqrt, [2.0])),

    %% An Erlang map becomes a dict (UTF-8 binaries become str), keyword arguments are a map.
    Person = #{<<"name">> => <<"Ada">>, <<"langs">> => [<<"erlang">>, <<"python">>],
               <<"born">> => 1815},
    {ok, <<"{\"born\": 1815, \"langs\": [\"erlang\", \"python\"], \"name\": \"Ada\"}">>} =
        example:show("py:call(json, dumps, [Person], #{sort_keys => true})",
             py:call(json, dumps, [Person], #{sort_keys => true})),

    {ok, 42} = example:show("py:eval(<<\"x * y\">>, #{x => 6, y => 7})",
                    py:eval(<<"x * y">>, #{x => 6, y => 7})),

    %% exec defines names in the shared __main__ namespace; call them as module '__main__'.
    ok = example:show("py:exec(<<\"def greet(name, punct='!'): ...\">>)",
              py:exec(<<"def greet(name, punct='!'):\n"
                        "    return f'hello, {name}{punct}'\n">>)),
    {ok, <<"hello, erlang!">>} =
        example:show("py:call('__main__', greet, [<<\"erlang\">>])",
             py:call('__main__', greet, [<<"erlang">>])),
    {ok, <<"hello, world?">>} =
        example:show("py:call('__main__', greet, [<<\"world\">>], #{punct => <<\"?\">>})",
             py:call('__main__', greet, [<<"world">>], #{punct => <<"?">>})).

%% --- numpy -----------------------------------------------------------------------------------

numpy() ->
    example:step("numpy"),
    ok = example:show("py:exec(<<\"import numpy as np\">>)", py:exec(<<"import numpy as np">>)),
    %% A numpy scalar comes back as a plain number, an ndarray as nested lists.
    {ok, 45} = example:show("py:eval(<<\"np.arange(10).sum()\">>)",
                            py:eval(<<"np.arange(10).sum()">>)),
    ok = py:exec(<<"def matmul(a, b):\n"
                   "    return np.array(a) @ np.array(b)\n">>),
    {ok, [[0.5, 1.0], [1.5, 2.0]]} =
        example:show("py:call('__main__', matmul, [[[1, 2], [3, 4]], [[0.5, 0], [0, 0.5]]])",
             py:call('__main__', matmul, [[[1, 2], [3, 4]], [[0.5, 0], [0, 0.5]]])).

%% --- concurrency -----------------------------------------------------------------------------

concurrency() ->
    example:step("concurrency"),
    %% time.sleep releases the GIL, so ten callers on ten executors overlap. Each call first
    %% waits at a barrier until all ten are running (else it fails after 30 s), then sleeps.
    ok = py:exec(<<"import threading, time\n"
                   "all_ten = threading.Barrier(10)\n"
                   "def nap(seconds):\n"
                   "    all_ten.wait(30)\n"
                   "    time.sleep(seconds)\n">>),
    {Micros, Results} =
        timer:tc(fun() ->
            example:pmap(fun(_) -> py:call('__main__', nap, [0.5]) end, lists:seq(1, 10))
        end),
    [{ok, none}] = lists:usort(Results),
    io:format("  ~-50ts all ten at once, in ~.2f s~n",
              ["10 processes x py:call('__main__', nap, [0.5])", Micros / 1.0e6]).

%% --- errors ----------------------------------------------------------------------------------

errors() ->
    example:step("errors"),
    {error, {'ZeroDivisionError', <<"division by zero">>}} =
        example:show("py:eval(<<\"1 / 0\">>)", py:eval(<<"1 / 0">>)),
    Traceback = py:last_traceback(),
    true = is_binary(Traceback) orelse error({no_traceback, Traceback}),
    io:format("  ~-50ts ~0tp~n", ["py:last_traceback() ends with",
              lists:last(binary:split(string:trim(Traceback), <<"\n">>, [global]))]),

    %% A timeout interrupts the running Python code, not just the wait.
    {Micros, {error, timeout}} =
        timer:tc(fun() -> py:call(time, sleep, [10], #{}, 200) end),
    io:format("  ~-50ts {error,timeout} after ~b ms~n",
              ["py:call(time, sleep, [10], #{}, 200)", Micros div 1000]),

    %% Time out as many sleeps as there are executors: if any were still sleeping, the next
    %% call would wait for them, longer than its 5 s timeout.
    N = py:num_executors(),
    [{error, timeout}] = lists:usort(example:pmap(
        fun(_) -> py:call(time, sleep, [10], #{}, 200) end, lists:seq(1, N))),
    {Micros2, {ok, 2.0}} = timer:tc(fun() -> py:call(math, sqrt, [4.0], #{}, 5000) end),
    io:format("  ~-50ts {ok,2.0} in ~.1f ms~n",
              [io_lib:format("~b more timeouts, then py:call(math, sqrt, [4.0])", [N]),
               Micros2 / 1000]),
    %% No late reply from the interrupted call reaches the mailbox.
    receive
        Late -> error({late_message, Late})
    after 100 ->
        ok
    end.

%% --- type round trips ------------------------------------------------------------------------

types() ->
    example:step("types"),
    ok = py:exec(<<"def ident(x):\n    return x\n">>),
    Big = 1 bsl 100 + 7,
    {ok, Big} = example:show("bignum 2^100 + 7 through Python", py:call('__main__', ident, [Big])),
    {ok, 1267650600228229401496703205376} = example:show("py:eval(<<\"2 ** 100\">>)",
                                                 py:eval(<<"2 ** 100">>)),

    Text = <<"héllo, wörld ☃ 日本"/utf8>>,
    {ok, Text} = example:show("UTF-8 binary through Python", py:call('__main__', ident, [Text])),
    Length = string:length(Text),
    {ok, Length} = example:show("py:call(builtins, len, [Text])", py:call(builtins, len, [Text])),
    {ok, <<"HÉLLO, WÖRLD ☃ 日本"/utf8>>} =
        example:show("py:eval(<<\"s.upper()\">>, #{s => Text})",
                     py:eval(<<"s.upper()">>, #{s => Text})),

    Self = self(),
    {ok, Self} = example:show("self() through Python", py:call('__main__', ident, [Self])),
    {ok, <<"Pid">>} = example:show("py:eval(<<\"type(p).__name__\">>, #{p => self()})",
                           py:eval(<<"type(p).__name__">>, #{p => Self})),
    Ref = make_ref(),
    {ok, Ref} = example:show("make_ref() through Python", py:call('__main__', ident, [Ref])),

    Mixed = #{<<"tuple">> => {1, 2.5, true, none}, <<"list">> => [<<"a">>, [], {}]},
    {ok, Mixed} = example:show("a map of tuples and lists", py:call('__main__', ident, [Mixed])).
