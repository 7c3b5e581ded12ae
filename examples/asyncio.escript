#!/usr/bin/env escript
%% -*- erlang -*-
%%! +pc unicode
%%
%% Coroutines from Erlang, and Erlang from coroutines (docs/asyncio.md):
%%
%%   escript examples/asyncio.escript _build/py3.12/lib/erlang_python/ebin
%%
%% 200 coroutines wait together on erlang_python's event loop while holding no executor; an
%% async generator is collected; a coroutine gathers calls into Erlang; a timed-out await
%% cancels its coroutine.
-mode(compile).

-define(N, 200).

main(Args) ->
    Dir = filename:dirname(escript:script_name()),
    {ok, example, Beam} = compile:file(filename:join(Dir, "example.erl"), [binary, report]),
    {module, example} = code:load_binary(example, "example.erl", Beam),
    example:main(Args, "asyncio", [], fun run/2).

run(_Args, _Dir) ->
    example:step("Erlang runs coroutines"),
    Ref = py:async_call(coroutines, price, [<<"tea">>]),
    {ok, #{<<"item">> := <<"tea">>, <<"eur">> := 3.75}} =
        example:show("py:async_await(py:async_call(coroutines, price, [<<\"tea\">>]))",
                     py:async_await(Ref)),
    %% py:call of an async def awaits it too.
    {ok, #{<<"eur">> := 3.75}} = example:show("py:call(coroutines, price, [<<\"ink\">>])",
                                              py:call(coroutines, price, [<<"ink">>])),
    Items = [integer_to_binary(I) || I <- lists:seq(1, ?N)],
    %% Each coroutine also waits until all ?N are waiting: they ran at once, on a pool of
    %% py:num_executors() executors.
    {T, {ok, Prices}} = example:timed(fun() ->
        py:async_gather([{coroutines, price, [I], #{parties => ?N}} || I <- Items], 30000)
    end),
    Items = [I || #{<<"item">> := I} <- Prices],
    io:format("  py:async_gather of ~b coroutines, each sleeping 50 ms and all waiting~n"
              "  together: ~b results, in order, in ~b ms, with ~b executors~n",
              [?N, length(Prices), round(T * 1000), py:num_executors()]),

    example:step("an async generator"),
    {ok, [0, 1, 2, 3, 4]} = example:show("py:async_stream(coroutines, ticker, [5])",
                                         py:async_stream(coroutines, ticker, [5])),

    example:step("coroutines call Erlang"),
    Stock = #{<<"tea">> => 7, <<"ink">> => 2},
    ok = py:register_function(stock, fun([Item]) -> maps:get(Item, Stock, 0) end),
    {ok, [7, 2, 0]} = example:show("py:call(coroutines, stock_levels, [...])",
                                   py:call(coroutines, stock_levels,
                                           [[<<"tea">>, <<"ink">>, <<"pen">>]])),

    example:step("a timed-out await cancels the coroutine"),
    Self = self(),
    ok = py:register_function(cancelled, fun([Tag]) -> Self ! {cancelled, Tag}, ok end),
    Slow = py:async_call(coroutines, slow, [<<"slow-1">>]),
    {error, timeout} = example:show("py:async_await(Slow, 100)", py:async_await(Slow, 100)),
    receive
        {cancelled, <<"slow-1">>} -> io:format("  the coroutine saw CancelledError~n")
    after 10000 ->
        error(not_cancelled)
    end.
