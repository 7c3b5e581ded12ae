%% The query API of the semantic-search and RAG examples (examples/semantic_search.escript,
%% examples/rag.escript, docs/ai-integration.md).
%%
%% The model and the index live in Python, in the interpreter the node shares: the numpy
%% encoder of all-MiniLM-L6-v2 (examples/python/minilm.py), loaded once, and a matrix of
%% document embeddings (examples/python/search_index.py). Any Erlang process may call this
%% module at any time; each call runs on a free executor thread, so queries from many processes
%% are embedded concurrently.
-module(semantic_search).

-export([check_model/1, build/1, search/2, embed/1, search_vectors/2, answer/2, answer/3]).
-export_type([hit/0, embeddings/0]).

-type hit() :: #{id := binary(), title := binary(), score := float()}.
%% N embeddings of 384 float32, one binary in the array form (docs/type-conversion.md).
-type embeddings() :: {py_array, float32, [non_neg_integer()], binary()}.

%% Loading the weights and embedding a corpus take seconds on a busy machine: more than
%% py:call's default 30 s is never needed, but the default is not ours to rely on.
-define(TIMEOUT, 120000).

%% @doc Checks the numpy encoder against embeddings computed by the model's own loader
%% (sentence-transformers and torch), pinned in `ReferenceFile': the largest differences of an
%% embedding component and of a cosine similarity, both at most 1e-4.
-spec check_model(file:filename()) -> {ok, #{binary() => number()}} | {error, term()}.
check_model(ReferenceFile) ->
    call(minilm, check_reference, [iolist_to_binary(ReferenceFile)]).

%% @doc Embeds the documents of a JSON corpus (a list of `{id, title, text}') into the index.
-spec build(file:filename()) -> {ok, #{binary() => number()}} | {error, term()}.
build(CorpusFile) ->
    call(search_index, build, [iolist_to_binary(CorpusFile)]).

%% @doc The `K' documents closest in meaning to `Query', best first.
-spec search(unicode:unicode_binary(), pos_integer()) -> {ok, [hit()]} | {error, term()}.
search(Query, K) ->
    hits(call(search_index, search, [Query, K])).

%% @doc The embeddings of `Texts', as one binary: row I is bytes `I * 1536' to `I * 1536 + 1535'
%% (384 native-endian float32). Such a binary can be stored, sent to another node, or given
%% back to search_vectors/2, without a list of floats ever being built.
-spec embed([unicode:unicode_binary()]) -> {ok, embeddings()} | {error, term()}.
embed(Texts) ->
    call(search_index, embed, [Texts]).

%% @doc The `K' closest documents for each embedding (from embed/1), in one matrix product.
-spec search_vectors(embeddings(), pos_integer()) -> {ok, [[hit()]]} | {error, term()}.
search_vectors({py_array, float32, _, _} = Embeddings, K) ->
    case call(search_index, search_vectors, [Embeddings, K]) of
        {ok, Lists} -> {ok, [hits_of(L) || L <- Lists]};
        Error -> Error
    end.

%% @doc Retrieves the `K' best passages for `Question' and answers from them (extractive: the
%% closest sentences, citing their passages).
-spec answer(unicode:unicode_binary(), pos_integer()) -> {ok, map()} | {error, term()}.
answer(Question, K) ->
    answer(Question, K, #{}).

%% @doc As answer/2; `Opts' are rag.answer's keyword arguments: `min_score' (hits below it are
%% not used) and `generator', the name of a registered Erlang function that receives the prompt
%% and returns the answer (where a generative model plugs in).
-spec answer(unicode:unicode_binary(), pos_integer(), map()) -> {ok, map()} | {error, term()}.
answer(Question, K, Opts) ->
    case search(Question, K) of
        {ok, Hits} -> call(rag, answer, [Question, Hits], Opts);
        Error -> Error
    end.

call(Module, Function, Args) ->
    call(Module, Function, Args, #{}).

call(Module, Function, Args, Kwargs) ->
    py:call(Module, Function, Args, Kwargs, ?TIMEOUT).

hits({ok, List}) -> {ok, hits_of(List)};
hits(Error) -> Error.

hits_of(List) ->
    [#{id => Id, title => Title, score => Score}
     || #{<<"id">> := Id, <<"title">> := Title, <<"score">> := Score} <- List].
