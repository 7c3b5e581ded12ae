#!/usr/bin/env escript
%% -*- erlang -*-
%%! +pc unicode
%%
%% Retrieval-augmented answers (docs/ai-integration.md): the passages come from the semantic
%% search of examples/semantic_search.escript, the answer is assembled from them. Needs the
%% examples' packages (`make examples-deps`):
%%
%%   escript examples/rag.escript _build/py3.12/lib/erlang_python/ebin
%%
%% No generative language model runs offline here, so the answer is extractive: the sentences
%% of the retrieved passages closest to the question, each citing its passage. The last step
%% shows where a generative model plugs in: rag.answer hands the prompt to an Erlang function
%% (here one that only checks what it receives; a real one would call a model's HTTP API).
-mode(compile).

main(Args) ->
    Dir = filename:dirname(escript:script_name()),
    {ok, example, Beam} = compile:file(filename:join(Dir, "example.erl"), [binary, report]),
    {module, example} = code:load_binary(example, "example.erl", Beam),
    example:main(Args, "rag", [], fun run/2).

run(_Args, Dir) ->
    ok = example:load(Dir, [semantic_search]),
    example:step("index the corpus"),
    {ok, #{<<"documents">> := Docs}} =
        semantic_search:build(filename:join([Dir, "data", "corpus.json"])),
    io:format("  ~b documents~n", [Docs]),
    answers(),
    nothing_found(),
    generator().

%% A question, the passage the answer must cite first, and a phrase the answer must contain.
answers() ->
    example:step("answers from retrieved passages"),
    lists:foreach(
        fun({Question, Source, Phrase}) ->
            {ok, #{<<"answer">> := Answer, <<"sources">> := [#{<<"id">> := First} | _] = Sources,
                   <<"generator">> := <<"extractive">>}} =
                semantic_search:answer(Question, 3),
            io:format("  Q: ~ts~n  A: ~ts~n     sources: ~ts~n~n",
                      [Question, Answer, format_sources(Sources)]),
            Source =:= First orelse error({wrong_source, Question, Source, Sources}),
            nomatch =/= binary:match(Answer, Phrase) orelse error({no_phrase, Phrase, Answer}),
            nomatch =/= binary:match(Answer, <<"[1]">>) orelse error({no_citation, Answer})
        end,
        [{<<"How long is a day on Venus?">>, <<"venus">>, <<"243 Earth days">>},
         {<<"Why does sourdough rise without baker's yeast?">>, <<"sourdough">>,
          <<"wild yeast">>},
         {<<"How do I find the hole in a punctured bike tube?">>, <<"bicycle">>,
          <<"listening">>},
         {<<"What happens when an Erlang process crashes?">>, <<"beam-processes">>,
          <<"never corrupts">>}]).

%% No passage is close enough: the answer says so instead of citing unrelated text.
nothing_found() ->
    example:step("a question the documents cannot answer"),
    Question = <<"Who won the football world cup in 1998?">>,
    {ok, #{<<"answer">> := Answer, <<"sources">> := []}} = semantic_search:answer(Question, 3),
    io:format("  Q: ~ts~n  A: ~ts~n", [Question, Answer]),
    <<"The documents say nothing about that.">> = Answer.

%% Where a generative model plugs in: the prompt goes to a registered Erlang function.
generator() ->
    example:step("plugging in a generator"),
    Self = self(),
    ok = py:register_function(rag_generator, fun([Prompt]) ->
        Self ! {prompt, Prompt},
        <<"(a generative model's answer to the prompt would be here)">>
    end),
    Question = <<"What causes spring tides?">>,
    {ok, #{<<"answer">> := Answer, <<"generator">> := <<"rag_generator">>,
           <<"prompt">> := Prompt}} =
        semantic_search:answer(Question, 3, #{generator => rag_generator}),
    receive {prompt, Prompt} -> ok after 5000 -> error(no_prompt) end,
    io:format("  the prompt rag_generator received:~n~ts~n~n  its answer: ~ts~n",
              [indent(Prompt), Answer]),
    [nomatch =/= binary:match(Prompt, P) orelse error({not_in_prompt, P})
     || P <- [<<"Question: ", Question/binary>>, <<"[1] Tides:">>]],
    ok = py:unregister_function(rag_generator).

format_sources(Sources) ->
    lists:join(", ", [io_lib:format("[~b] ~ts ~.2f", [N, Id, S])
                      || #{<<"n">> := N, <<"id">> := Id, <<"score">> := S} <- Sources]).

indent(Text) ->
    [["    ", Line, "\n"] || Line <- binary:split(Text, <<"\n">>, [global])].
