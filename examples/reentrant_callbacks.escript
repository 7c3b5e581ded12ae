#!/usr/bin/env escript
%% -*- erlang -*-
%%! +pc unicode
%%
%% Python calls Erlang, which calls Python again, as deep as needed (docs/callbacks.md):
%%
%%   escript examples/reentrant_callbacks.escript _build/py3.12/lib/erlang_python/ebin
%%
%% A memoised Fibonacci whose memo table is in Erlang (ETS), a countdown 200 levels deep, a
%% pipeline of three callbacks, and a nested py:call that runs on the thread of the call
%% waiting for it. The Python functions count their runs: none runs twice for one call.
-mode(compile).

main(Args) ->
    Dir = filename:dirname(escript:script_name()),
    {ok, example, Beam} = compile:file(filename:join(Dir, "example.erl"), [binary, report]),
    {module, example} = code:load_binary(example, "example.erl", Beam),
    example:main(Args, "reentrant_callbacks", [], fun run/2).

run(_Args, _Dir) ->
    fibonacci(),
    deep(),
    pipeline(),
    same_thread().

fibonacci() ->
    example:step("Fibonacci with an Erlang memo table"),
    Memo = ets:new(memo, [public, set]),
    ok = py:register_function(memo_fib, fun([N]) ->
        case ets:lookup(Memo, N) of
            [{N, V}] -> V;
            [] ->
                {ok, V} = py:call(reentrant, fib, [N]),
                true = ets:insert(Memo, {N, V}),
                V
        end
    end),
    {ok, none} = py:call(reentrant, reset, []),
    {ok, 832040} = example:show("py:call(reentrant, fib, [30])", py:call(reentrant, fib, [30])),
    %% fib(30) itself, then fib(29) .. fib(0) once each through the memo table.
    {ok, 31} = example:show("Python runs of fib",
                            py:eval(<<"__import__('reentrant').calls['fib']">>)),
    io:format("  ~b values memoised in ETS~n", [ets:info(Memo, size)]).

deep() ->
    example:step("200 levels: Python -> Erlang -> Python -> ..."),
    ok = py:register_function(down, fun([N]) ->
        {ok, V} = py:call(reentrant, countdown, [N]),
        V
    end),
    {ok, 200} = example:show("py:call(reentrant, countdown, [200])",
                             py:call(reentrant, countdown, [200])).

pipeline() ->
    example:step("three callbacks in a row"),
    ok = py:register_function(split_words, fun([Text]) ->
        string:lexemes(string:lowercase(Text), " .,")
    end),
    ok = py:register_function(count_words, fun([Words]) ->
        maps:to_list(lists:foldl(fun(W, M) -> maps:update_with(W, fun(C) -> C + 1 end, 1, M) end,
                                 #{}, Words))
    end),
    ok = py:register_function(most_common, fun([Counts]) ->
        {Word, _} = hd(lists:reverse(lists:keysort(2, [{W, C} || {W, C} <- Counts]))),
        Word
    end),
    {ok, #{<<"words">> := 10, <<"top">> := <<"the">>, <<"pipeline_runs">> := 1}} =
        example:show("py:call(reentrant, pipeline, [...])",
                     py:call(reentrant, pipeline,
                             [<<"The cat saw the dog. The dog saw a cat.">>])).

same_thread() ->
    example:step("the nested request runs on the waiting executor"),
    ok = py:register_function(nested_thread, fun([]) ->
        {ok, Ident} = py:call(threading, get_ident, []),
        Ident
    end),
    {ok, {Ident, Ident}} = example:show("py:call(reentrant, same_thread, [])",
                                        py:call(reentrant, same_thread, [])).
