#!/usr/bin/env escript
%% -*- erlang -*-
%%! +pc unicode
%%
%% Semantic search with a real sentence-embedding model, all-MiniLM-L6-v2, run in numpy inside
%% the BEAM (docs/ai-integration.md). Needs the examples' packages (`make examples-deps`):
%%
%%   escript examples/semantic_search.escript _build/py3.12/lib/erlang_python/ebin
%%
%% 1. The numpy encoder is checked against embeddings the model's own loader computed.
%% 2. The bundled corpus (examples/data/corpus.json) is embedded into an index in Python.
%% 3. Erlang processes search concurrently, one query each, through semantic_search.erl.
%% 4. Embeddings travel as one binary each way (the array form) and are searched in a batch.
%% 5. Throughput: one process, many processes, one batched call (printed, not checked).
%% Every step checks its results; the exit status is non-zero when one is wrong.
-mode(compile).

%% A query and the document it must find first. The queries share few words with the
%% documents: the match is on meaning.
-define(QUERIES, [
    {<<"Why does a day on one planet last longer than its year?">>, <<"venus">>},
    {<<"my wet dough sticks to everything, how do I handle it">>, <<"sourdough">>},
    {<<"who restarts a failed process">>, <<"supervision">>},
    {<<"what pulls the sea up and down twice a day">>, <<"moon-tides">>},
    {<<"running a call on another machine in the cluster">>, <<"distribution">>},
    {<<"insects telling each other where the food is">>, <<"bees">>},
    {<<"keeping my files safe if the disk dies">>, <<"backups">>},
    {<<"which thread may execute Python code at any moment">>, <<"gil">>}
]).

main(Args) ->
    Dir = filename:dirname(escript:script_name()),
    {ok, example, Beam} = compile:file(filename:join(Dir, "example.erl"), [binary, report]),
    {module, example} = code:load_binary(example, "example.erl", Beam),
    %% Four executors: four queries embedded at once (numpy releases the GIL in its kernels).
    example:main(Args, "semantic_search", [{num_executors, 4}, {max_concurrent, 64}],
                 fun run/2).

run(_Args, Dir) ->
    ok = example:load(Dir, [semantic_search]),
    check_model(Dir),
    build_index(Dir),
    concurrent_queries(),
    array_form(),
    throughput().

check_model(Dir) ->
    example:step("the numpy encoder is all-MiniLM-L6-v2"),
    {ok, Info} = py:call(minilm, info, []),
    io:format("  ~b layers, ~b heads, ~b dimensions, ~.1f M parameters, from~n    ~ts~n",
              [maps:get(<<"layers">>, Info), maps:get(<<"heads">>, Info),
               maps:get(<<"dim">>, Info), maps:get(<<"parameters">>, Info) / 1.0e6,
               maps:get(<<"model_dir">>, Info)]),
    {ok, #{<<"texts">> := N, <<"max_embedding_diff">> := E, <<"max_cosine_diff">> := C}} =
        semantic_search:check_model(filename:join([Dir, "data", "minilm_reference.json"])),
    io:format("  ~b reference texts (sentence-transformers + torch): largest difference~n"
              "    ~.2e in an embedding component, ~.2e in a cosine similarity (limit 1e-4)~n",
              [N, E, C]).

build_index(Dir) ->
    example:step("index the corpus"),
    {ok, #{<<"documents">> := Docs, <<"dim">> := 384, <<"seconds">> := Seconds}} =
        semantic_search:build(filename:join([Dir, "data", "corpus.json"])),
    io:format("  ~b documents embedded in ~.2f s (~b documents/s), kept in Python as a~n"
              "  ~b x 384 float32 matrix~n", [Docs, Seconds, round(Docs / Seconds), Docs]),
    true = Docs >= 30 orelse error({corpus_too_small, Docs}).

%% One Erlang process per query, all at once.
concurrent_queries() ->
    example:step("queries from " ++ integer_to_list(length(?QUERIES)) ++ " processes at once"),
    Results = example:pmap(
        fun({Query, _}) -> {ok, Hits} = semantic_search:search(Query, 3), Hits end,
        ?QUERIES),
    lists:foreach(
        fun({{Query, Expected}, [#{id := Top, score := Score} | _] = Hits}) ->
            io:format("  ~ts~n    -> ~ts~n", [Query, format_hits(Hits)]),
            Expected =:= Top orelse error({wrong_document, Query, Expected, Hits}),
            true = Score > 0.3 orelse error({weak_match, Query, Hits})
        end,
        lists:zip(?QUERIES, Results)).

%% Embeddings as one binary each way: the texts are embedded in one call, and the rows go back
%% to Python (all at once, or one slice) without becoming lists of floats.
array_form() ->
    example:step("embeddings as binaries (the array form)"),
    Texts = [Q || {Q, _} <- ?QUERIES],
    N = length(Texts),
    {ok, {py_array, float32, [N, 384], Bin} = Embeddings} = semantic_search:embed(Texts),
    io:format("  ~-50ts {py_array,float32,[~b,384],<<~b bytes>>}~n",
              [io_lib:format("semantic_search:embed(~b texts)", [N]), N, byte_size(Bin)]),
    true = byte_size(Bin) =:= N * 384 * 4,
    %% The bytes are native-endian float32: Erlang can read them too.
    Rows = [binary:part(Bin, I * 1536, 1536) || I <- lists:seq(0, N - 1)],
    Norm = math:sqrt(dot(hd(Rows), hd(Rows))),
    io:format("  ~-50ts ~.6f~n", ["norm of row 0, computed in Erlang", Norm]),
    true = abs(Norm - 1.0) < 1.0e-5 orelse error({not_unit_length, Norm}),
    %% All the queries searched in one matrix product, from their embeddings.
    {ok, Batched} = semantic_search:search_vectors(Embeddings, 3),
    [true = Top =:= Expected orelse error({wrong_document, Q, Expected, Top})
     || {{Q, Expected}, [#{id := Top} | _]} <- lists:zip(?QUERIES, Batched)],
    io:format("  ~-50ts ~b hit lists, the same first hits~n",
              ["search_vectors(Embeddings, 3)", length(Batched)]),
    %% One row, sliced from the binary in Erlang, is an array of shape [384].
    {ok, [[#{id := Venus, score := Score} | _]]} =
        semantic_search:search_vectors({py_array, float32, [384], hd(Rows)}, 1),
    <<"venus">> = example:show("search_vectors(row 0 as [384], 1)", Venus),
    %% The same score computed in Erlang, from the document's embedding.
    {ok, [#{<<"title">> := Title, <<"text">> := Text}]} =
        py:call(search_index, passages, [[Venus]]),
    {ok, {py_array, float32, [1, 384], Doc}} =
        semantic_search:embed([<<Title/binary, ". ", Text/binary>>]),
    Cosine = dot(hd(Rows), Doc),
    io:format("  ~-50ts ~.4f (Python: ~.4f)~n",
              ["cosine of row 0 and venus, in Erlang", Cosine, Score]),
    true = abs(Cosine - Score) < 1.0e-5 orelse error({scores_differ, Cosine, Score}).

dot(<<X:32/float-native, A/binary>>, <<Y:32/float-native, B/binary>>) ->
    X * Y + dot(A, B);
dot(<<>>, <<>>) ->
    0.0.

%% Printed, never checked: timings depend on the machine and its load. The best of three runs:
%% other programs on the machine only ever slow a run down.
throughput() ->
    example:step("throughput (measured here, not checked)"),
    Texts = [iolist_to_binary([Q, <<" #">>, integer_to_binary(I)])
             || I <- lists:seq(1, 4), {Q, _} <- ?QUERIES],
    N = length(Texts),
    Embed = fun(Batch) -> {ok, {py_array, float32, [_, 384], _}} = semantic_search:embed(Batch) end,
    lists:foreach(
        fun({Label, F}) ->
            Seconds = example:best_of(3, F),
            io:format("  ~-50ts ~6.1f queries/s~n", [Label, example:per_second(N, Seconds)])
        end,
        [{io_lib:format("~b queries, one call each, from 1 process", [N]),
          fun() -> lists:foreach(fun(T) -> Embed([T]) end, Texts) end},
         {io_lib:format("~b queries, one call each, from ~b processes", [N, N]),
          fun() -> example:pmap(fun(T) -> Embed([T]) end, Texts) end},
         {io_lib:format("~b queries in one call", [N]),
          fun() -> Embed(Texts) end}]).

format_hits(Hits) ->
    lists:join(", ", [io_lib:format("~ts ~.3f", [Id, S]) || #{id := Id, score := S} <- Hits]).
