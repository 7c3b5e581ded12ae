%% @doc PropEr generators of terms of every kind the conversion table knows
%% (docs/type-conversion.md), nested, shared by the suites that check conversions on generated
%% terms (py_prop_SUITE, py_parallel_SUITE).
-module(py_term_gen).

-export([term/2, leaf/1]).

-type opts() :: #{key := proper_types:type(), bitstrings := boolean()}.
%% `key': the generator of map keys; `bitstrings': whether leaves include bitstrings that are
%% not binaries (they have no Python equivalent).

%% @doc Terms nested up to `Depth' levels: lists, tuples, maps (some of more than 32 keys) and
%% improper lists of `leaf/1's.
-spec term(non_neg_integer(), opts()) -> proper_types:type().
term(0, #{bitstrings := Bits}) ->
    leaf(Bits);
term(Depth, Opts = #{key := Key, bitstrings := Bits}) ->
    Sub = term(Depth - 1, Opts),
    proper_types:frequency([
        {6, leaf(Bits)},
        {2, proper_types:list(Sub)},
        {1, proper_types:bind(proper_types:list(Sub), fun list_to_tuple/1, false)},
        {1, proper_types:bind(proper_types:list(proper_types:tuple([Key, Sub])),
                              fun maps:from_list/1, false)},
        %% Maps of more than 32 keys (hash maps) come back another way (in the external
        %% term format, docs/type-conversion.md).
        {1, proper_types:bind(proper_types:tuple([proper_types:list(proper_types:tuple([Key, Sub])),
                                                  proper_types:vector(33, proper_types:tuple(
                                                                            [Key, leaf(Bits)]))]),
                              fun({Some, More}) -> maps:from_list(Some ++ More) end, false)},
        {1, proper_types:bind(proper_types:tuple([leaf(Bits), leaf(Bits)]),
                              fun({A, B}) -> [A | B] end, false)}
    ]).

%% @doc One non-container term: integers (small, big, past 300 bits), floats, UTF-8 and other
%% binaries, atoms, pids, references, empty containers and funs; bitstrings when asked for.
-spec leaf(boolean()) -> proper_types:type().
leaf(Bitstrings) ->
    proper_types:oneof([
        proper_types:integer(),
        proper_types:largeint(),
        proper_types:bind(proper_types:integer(0, 1000),
                          fun(N) -> (N - 500) * (1 bsl 300) + N end, false),
        proper_types:float(),
        proper_unicode:utf8(),
        proper_types:binary()]
        ++ [proper_types:bitstring() || Bitstrings] ++
        [proper_types:elements([true, false, none, nil, undefined, hello, 'é', '日本', '']),
         proper_types:lazy(fun() -> self() end),
         proper_types:lazy(fun() -> make_ref() end),
         proper_types:elements([<<>>, [], {}, #{}]),
         proper_types:lazy(fun() -> fun() -> ok end end)
    ]).
