#!/usr/bin/env escript
%% -*- erlang -*-
%%! +pc unicode
%%
%% Python generators consumed from Erlang (docs/streaming.md):
%%
%%   escript examples/streaming.escript _build/py3.12/lib/erlang_python/ebin
%%
%% All at once with py:stream/3 and py:stream_eval/2, and lazily, batch by batch, with
%% py:stream_next/2: a finite generator read to its end, an endless one abandoned, and a fold
%% over a stream that is never held in memory whole.
-mode(compile).

main(Args) ->
    Dir = filename:dirname(escript:script_name()),
    {ok, example, Beam} = compile:file(filename:join(Dir, "example.erl"), [binary, report]),
    {module, example} = code:load_binary(example, "example.erl", Beam),
    example:main(Args, "streaming", [], fun run/2).

run(_Args, Dir) ->
    example:step("collect a whole stream"),
    {ok, [5, 4, 3, 2, 1]} = example:show("py:stream(streams, countdown, [5])",
                                         py:stream(streams, countdown, [5])),
    {ok, [<<"ERLANG">>, <<"PYTHON">>]} =
        example:show("py:stream_eval(<<\"(w.upper() for w in ws)\">>, ...)",
                     py:stream_eval(<<"(w.upper() for w in ws)">>,
                                    #{ws => [<<"erlang">>, <<"python">>]})),

    example:step("read lazily, 10 at a time, to the end"),
    Corpus = iolist_to_binary(filename:join([Dir, "data", "corpus.json"])),
    {ok, {generator, _} = Records} = py:call(streams, records, [Corpus]),
    Batches = read_all(Records, 10, []),
    io:format("  batches of ~w records~n", [[length(B) || B <- Batches]]),
    All = lists:append(Batches),
    [10, 10, 10, 2] = [length(B) || B <- Batches],
    Words = lists:sum([W || #{<<"words">> := W} <- All]),
    io:format("  ~b documents, ~b words~n", [length(All), Words]),
    #{<<"id">> := <<"beam-processes">>} = hd(All),

    example:step("an endless iterator, abandoned"),
    {ok, Count} = py:eval(<<"__import__('itertools').count(1)">>),
    {ok, [1, 2, 3]} = example:show("py:stream_next(Count, 3)", py:stream_next(Count, 3)),
    {ok, [4, 5]} = example:show("py:stream_next(Count, 2)", py:stream_next(Count, 2)),
    io:format("  (no more requests: Python frees the iterator when Erlang frees the handle)~n"),

    example:step("fold over a stream of a million items"),
    N = 1000000,
    {ok, Squares} = py:call(streams, squares, [N]),
    {T, Sum} = example:timed(fun() -> fold(Squares, fun(X, Acc) -> X + Acc end, 0) end),
    %% Sum of i² for i < N.
    Expected = (N - 1) * N * (2 * N - 1) div 6,
    Expected = example:show("sum of the squares below 1000000", Sum),
    {ok, N} = py:state_fetch(<<"squares_produced">>),
    io:format("  ~b items in batches of 1000 in ~.2f s (~b items/s), never all in memory~n",
              [N, T, round(example:per_second(N, T))]).

read_all(Gen, Size, Acc) ->
    case py:stream_next(Gen, Size) of
        {ok, Items} -> read_all(Gen, Size, [Items | Acc]);
        {done, []} -> lists:reverse(Acc);
        {done, Items} -> lists:reverse([Items | Acc])
    end.

fold(Gen, F, Acc) ->
    case py:stream_next(Gen, 1000) of
        {ok, Items} -> fold(Gen, F, lists:foldl(F, Acc, Items));
        {done, Items} -> lists:foldl(F, Acc, Items)
    end.
