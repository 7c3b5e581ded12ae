%% @doc The type conversion table (docs/type-conversion.md), both directions, plus a
%% seeded random round-trip property.
-module(py_convert_SUITE).

-include_lib("common_test/include/ct.hrl").

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).

-export([
    erlang_to_python_types/1,
    round_trip_exact/1,
    round_trip_normalised/1,
    python_to_erlang_values/1,
    float_specials/1,
    bignums/1,
    pids_and_refs/1,
    pids_and_refs_pickle_and_copy/1,
    utf8_atoms/1,
    atoms_seen_again/1,
    invalid_utf8_binary_is_bytes/1,
    dict_key_collision_python_side/1,
    lone_surrogate/1,
    unconvertible_arguments/1,
    improper_list/1,
    fast_path_edges/1,
    big_arguments_external_format/1,
    big_arguments_keep_their_handles/1,
    big_eval_locals_external_format/1,
    repeated_map_keys/1,
    results_read_in_place/1,
    deep_nesting_erlang_side/1,
    deep_nesting_python_side/1,
    cyclic_python_structures/1,
    large_binaries/1,
    raising_dunder_methods/1,
    container_subclasses/1,
    sets_become_lists/1,
    numpy_arrays/1,
    numpy_scalars/1,
    numpy_array_layouts/1,
    array_form_to_python/1,
    array_form_from_python/1,
    array_form_every_dtype/1,
    array_form_malformed/1,
    opaque_handles/1,
    handle_methods/1,
    handles_in_containers_and_kwargs/1,
    handle_shared_with_other_process/1,
    handle_released_on_gc/1,
    generators/1,
    iterators/1,
    thousand_key_map/1,
    big_map_replies/1,
    big_map_reply_encoding/1,
    big_map_reply_errors/1,
    big_map_reply_with_handles/1,
    big_map_reply_converted_once/1,
    big_map_callback_arguments/1,
    decode_reply_bad_input/1,
    big_maps_to_erlang_call_and_send/1,
    kwargs_values/1,
    random_round_trip/1,
    map_keys_colliding_in_python/1,
    nesting_bound_same_for_call_and_eval/1
]).

-define(SEED, {16#1f2e, 16#3d4c, 16#5b6a}).
-define(ITERATIONS, 500).

-spec all() -> [atom()].
all() -> py_test_util:cases(?MODULE).

-spec suite() -> [tuple()].
suite() -> [{timetrap, {minutes, 3}}].

-spec init_per_suite(ct_suite:ct_config()) -> ct_suite:ct_config().
init_per_suite(Config) ->
    ok = py_test_util:start(),
    ok = define_helpers(),
    Config.

-spec end_per_suite(ct_suite:ct_config()) -> ok.
end_per_suite(_Config) ->
    ok = py_test_util:stop().

-spec init_per_testcase(atom(), ct_suite:ct_config()) -> ct_suite:ct_config().
init_per_testcase(_Case, Config) ->
    ok = py_test_util:start(),
    %% A previous suite may have restarted the app; __main__ survives that, but be safe.
    ok = define_helpers(),
    py_test_util:flush(),
    Config.

-spec end_per_testcase(atom(), ct_suite:ct_config()) -> ok.
end_per_testcase(_Case, _Config) ->
    ok.

define_helpers() ->
    py:exec(<<"def ident(x):\n    return x\n\n"
              "def typename(x):\n    return type(x).__name__\n\n"
              "def ident_kw(**kw):\n    return kw\n\n"
              "def ident_kw_len(**kw):\n    return len(kw['x'])\n">>).

ident(X) -> py:call('__main__', ident, [X]).

typename(X) ->
    {ok, T} = py:call('__main__', typename, [X]),
    T.

%%% ---------------------------------------------------------------- Erlang -> Python

%% @doc Each Erlang term kind arrives in Python as the documented type.
-spec erlang_to_python_types(ct_suite:ct_config()) -> term().
erlang_to_python_types(_Config) ->
    Table = [{true, <<"bool">>}, {false, <<"bool">>},
             {nil, <<"NoneType">>}, {none, <<"NoneType">>}, {undefined, <<"NoneType">>},
             {hello, <<"str">>}, {'é', <<"str">>}, {nan, <<"str">>},
             {0, <<"int">>}, {-7, <<"int">>}, {1 bsl 200, <<"int">>}, {-(1 bsl 200), <<"int">>},
             {1.5, <<"float">>}, {-0.0, <<"float">>},
             {<<"abc">>, <<"str">>}, {<<>>, <<"str">>}, {<<"日本"/utf8>>, <<"str">>},
             {<<255, 0>>, <<"bytes">>}, {<<16#e9>>, <<"bytes">>},
             {[], <<"list">>}, {[1, 2], <<"list">>}, {"abc", <<"list">>},
             {{}, <<"tuple">>}, {{1, a}, <<"tuple">>},
             {#{}, <<"dict">>}, {#{a => 1}, <<"dict">>},
             {self(), <<"Pid">>}, {make_ref(), <<"Ref">>}],
    [{Term, Expected} = {Term, typename(Term)} || {Term, Expected} <- Table],
    {ok, [97, 98, 99]} = ident("abc"),
    {ok, true} = py:eval(<<"ep_cl == [97, 98, 99]">>, #{ep_cl => "abc"}).

%% @doc Terms that have an exact Python equivalent come back unchanged.
-spec round_trip_exact(ct_suite:ct_config()) -> term().
round_trip_exact(_Config) ->
    Terms = [true, false, none, 0, 1, -1, 42, (1 bsl 63) - 1, -(1 bsl 63),
             1.5, -2.25, 0.1, 1.0e300, 5.0e-324, 1.7976931348623157e308,
             <<>>, <<"abc">>, <<"日本 é ✓ 🐍"/utf8>>, <<0, 1, 2>>, <<255, 254>>,
             [], [1, [2, [3]]], {}, {1, {2, <<"x">>}}, #{}, #{1 => 2},
             #{<<"k">> => [1, #{<<"n">> => {true, false, none}}]},
             #{{1, 2} => <<"tuple key">>, 3 => 4},
             [1.0, 2.0], "abc", self(), make_ref(), [self(), {make_ref()}]],
    [{Term, {ok, Term}} = {Term, ident(Term)} || Term <- Terms],
    ok.

%% @doc Terms without an exact equivalent come back in their documented normal form.
-spec round_trip_normalised(ct_suite:ct_config()) -> term().
round_trip_normalised(_Config) ->
    Table = [{nil, none}, {undefined, none}, {hello, <<"hello">>},
             {'é', <<"é"/utf8>>}, {nan, <<"nan">>}, {infinity, <<"infinity">>},
             {[a, {b}], [<<"a">>, {<<"b">>}]},
             {#{a => b}, #{<<"a">> => <<"b">>}},
             {#{a => nil, 1 => undefined}, #{<<"a">> => none, 1 => none}}],
    [{Term, {ok, Expected}} = {Term, ident(Term)} || {Term, Expected} <- Table],
    {ok, <<"hello">>} = py:call(builtins, str, [hello]).

%%% ---------------------------------------------------------------- Python -> Erlang

%% @doc Each Python value kind comes back as the documented Erlang term.
-spec python_to_erlang_values(ct_suite:ct_config()) -> term().
python_to_erlang_values(_Config) ->
    Table = [{<<"None">>, none}, {<<"True">>, true}, {<<"False">>, false},
             {<<"0">>, 0}, {<<"-12">>, -12}, {<<"1.5">>, 1.5},
             {<<"'é日本'"/utf8>>, <<"é日本"/utf8>>}, {<<"''">>, <<>>},
             {<<"b'\\xff\\x00'">>, <<255, 0>>}, {<<"bytearray(b'ab')">>, <<"ab">>},
             {<<"[1, (2, 3)]">>, [1, {2, 3}]}, {<<"()">>, {}}, {<<"(1,)">>, {1}},
             {<<"[]">>, []}, {<<"{}">>, #{}},
             {<<"{'a': 1, 2: 'b', None: 3, (1, 2): 4, b'k': 5}">>,
              #{<<"a">> => 1, 2 => <<"b">>, none => 3, {1, 2} => 4, <<"k">> => 5}},
             {<<"__import__('collections').namedtuple('P', 'x y')(1, 2)">>, {1, 2}},
             {<<"__import__('collections').OrderedDict([('a', 1)])">>, #{<<"a">> => 1}},
             {<<"True + 1">>, 2}],
    [{Code, {ok, Expected}} = {Code, py:eval(Code)} || {Code, Expected} <- Table],
    ok.

%% @doc nan, inf and -inf become atoms (also nested); the atoms go back as strings.
-spec float_specials(ct_suite:ct_config()) -> term().
float_specials(_Config) ->
    {ok, nan} = py:eval(<<"float('nan')">>),
    {ok, infinity} = py:eval(<<"float('inf')">>),
    {ok, neg_infinity} = py:eval(<<"-float('inf')">>),
    {ok, [nan, infinity, neg_infinity, 1.0]} =
        py:eval(<<"[float('nan'), float('inf'), float('-inf'), 1.0]">>),
    {ok, #{<<"x">> := infinity}} = py:eval(<<"{'x': 1e308 * 10}">>),
    {ok, <<"nan">>} = ident(nan),
    {ok, <<"str">>} = py:call('__main__', typename, [infinity]).

%% @doc Integers of any size convert exactly in both directions.
-spec bignums(ct_suite:ct_config()) -> term().
bignums(_Config) ->
    Ints = [1 bsl 200, -(1 bsl 200), 1 bsl 64, (1 bsl 64) - 1, -(1 bsl 64),
            -(1 bsl 63) - 1, 1 bsl 63, -(1 bsl 63), (1 bsl 63) - 1,
            1 bsl 1000, -(3 bsl 4000) + 17],
    [{I, {ok, I}} = {I, ident(I)} || I <- Ints],
    [{I, {ok, S}} = {I, py:call(builtins, str, [I])} || I <- Ints, S <- [integer_to_binary(I)]],
    {ok, 1606938044258990275541962092341162602522202993782792835301376} =
        py:eval(<<"2 ** 200">>),
    {ok, -18446744073709551616} = py:eval(<<"-(2 ** 64)">>),
    {ok, -9223372036854775809} = py:eval(<<"-(2 ** 63) - 1">>),
    {ok, 18446744073709551617} = py:eval(<<"ep_big + 1">>, #{ep_big => 1 bsl 64}),
    {ok, true} = py:eval(<<"ep_big2 == 2 ** 200">>, #{ep_big2 => 1 bsl 200}),
    {ok, [1 bsl 100, {-(1 bsl 100)}]} = ident([1 bsl 100, {-(1 bsl 100)}]).

%% @doc Pids and references round-trip, compare equal in Python and are hashable.
-spec pids_and_refs(ct_suite:ct_config()) -> term().
pids_and_refs(_Config) ->
    Self = self(),
    Ref = make_ref(),
    Other = spawn(fun() -> receive stop -> ok end end),
    {ok, Self} = ident(Self),
    {ok, Ref} = ident(Ref),
    {ok, Other} = ident(Other),
    {ok, #{Self := Ref}} = ident(#{Self => Ref}),
    {ok, true} = py:call(operator, eq, [Self, Self]),
    {ok, false} = py:call(operator, eq, [Self, Other]),
    {ok, true} = py:call(operator, eq, [Ref, Ref]),
    {ok, false} = py:call(operator, eq, [Ref, make_ref()]),
    {ok, false} = py:call(operator, eq, [Self, Ref]),
    {ok, 1} = py:eval(<<"len({ep_p1, ep_p2})">>, #{ep_p1 => Self, ep_p2 => Self}),
    {ok, 2} = py:eval(<<"len({ep_r1, ep_r2})">>, #{ep_r1 => Ref, ep_r2 => make_ref()}),
    {ok, true} = py:eval(<<"hash(ep_p1) == hash(ep_p2)">>, #{ep_p1 => Self, ep_p2 => Self}),
    {ok, Self} = py:eval(<<"{ep_p1: 1}.popitem()[0]">>, #{ep_p1 => Self}),
    Other ! stop.

%% @doc Real pids and references survive pickle, copy and deepcopy: the same ones come back.
-spec pids_and_refs_pickle_and_copy(ct_suite:ct_config()) -> term().
pids_and_refs_pickle_and_copy(_Config) ->
    Self = self(),
    Ref = make_ref(),
    Pickled = <<"__import__('pickle').loads(__import__('pickle').dumps(ep_v))">>,
    {ok, Self} = py:eval(Pickled, #{ep_v => Self}),
    {ok, Ref} = py:eval(Pickled, #{ep_v => Ref}),
    {ok, #{Self := [Ref, {Self}]}} = py:eval(Pickled, #{ep_v => #{Self => [Ref, {Self}]}}),
    {ok, {Self, [Ref]}} = py:eval(<<"__import__('copy').deepcopy(ep_v)">>,
                                  #{ep_v => {Self, [Ref]}}),
    {ok, [Self, Ref]} = py:eval(<<"[__import__('copy').copy(v) for v in ep_v]">>,
                                #{ep_v => [Self, Ref]}).

%% @doc Unicode atoms become str (also as dict keys).
-spec utf8_atoms(ct_suite:ct_config()) -> term().
utf8_atoms(_Config) ->
    {ok, <<"é"/utf8>>} = ident('é'),
    {ok, <<"日本"/utf8>>} = ident('日本'),
    {ok, 2} = py:call(builtins, len, ['日本']),
    {ok, 1} = py:call(builtins, len, ['é']),
    {ok, #{<<"日本"/utf8>> := <<"東京"/utf8>>}} = ident(#{'日本' => '東京'}),
    Long = list_to_atom(lists:duplicate(255, $a)),
    {ok, 255} = py:call(builtins, len, [Long]).

%% @doc Atoms converted again and again (the reader keeps the `str' of the atoms it saw last)
%% give the same values as the first time, in every place an atom is read: values, map keys,
%% keyword names, the array form's tag and dtype; `true', `false', `nil', `none' and
%% `undefined' stay True, False and None; more atoms than the cache holds, the empty atom and
%% Unicode atoms; own-GIL sub-interpreters, which convert on their own, agree.
-spec atoms_seen_again(ct_suite:ct_config()) -> term().
atoms_seen_again(_Config) ->
    Many = [list_to_atom("ep_seen_" ++ integer_to_list(I)) || I <- lists:seq(1, 700)],
    Names = [atom_to_binary(A, utf8) || A <- Many],
    Odd = ['', 'é', '日本', 'ü-ß', list_to_atom(lists:duplicate(255, $z)), nan, infinity, ok],
    OddNames = [atom_to_binary(A, utf8) || A <- Odd],
    Specials = [true, false, nil, none, undefined],
    Python = [true, false, none, none, none],
    [begin
         %% Twice in one conversion, and over three calls (the second and third find them).
         {ok, Names} = ident(Many),
         {ok, [Names, Names]} = ident([Many, Many]),
         {ok, OddNames} = ident(Odd),
         {ok, Python} = ident(Specials),
         {ok, [<<"bool">>, <<"bool">>, <<"NoneType">>, <<"NoneType">>, <<"NoneType">>]} =
             py:eval(<<"[type(x).__name__ for x in xs]">>, #{xs => Specials}),
         {ok, [<<"str">>, <<"str">>]} =
             py:eval(<<"[type(x).__name__ for x in xs]">>, #{xs => ['', nan]}),
         %% As map keys (an atom and its own name collide in Python, as before).
         {ok, #{<<>> := 1, <<"é"/utf8>> := 2, true := 3, none := 4}} =
             ident(#{'' => 1, 'é' => 2, true => 3, undefined => 4}),
         {error, {'ValueError', _}} = py:call('__main__', ident, [#{'' => 1, <<>> => 2}]),
         %% As keyword names, from a map and from a keyword list.
         {ok, #{<<"ep_seen_1">> := 1, <<"日本"/utf8>> := 2}} =
             py:call(builtins, dict, [], #{ep_seen_1 => 1, '日本' => 2}),
         {ok, #{<<"ep_seen_2">> := 1, <<"é"/utf8>> := 2}} =
             py:call(builtins, dict, [], [{ep_seen_2, 1}, {'é', 2}]),
         {error, {'TypeError', <<"keyword argument 'ep_seen_3' is given more than once">>}} =
             py:call(builtins, dict, [], [{ep_seen_3, 1}, {ep_seen_3, 2}]),
         %% The array form: its tag and dtype are atoms too.
         {ok, <<"float64 [1.5]">>} =
             py:eval(<<"f'{a.dtype} {a.tolist()}'">>,
                     #{a => {py_array, float64, [1], <<1.5:64/float-native>>}}),
         {error, {'ValueError', <<"malformed py_array: unknown dtype ep_seen_4", _/binary>>}} =
             ident({py_array, ep_seen_4, [1], <<0:64>>}),
         %% A cached atom is one object, equal to the str of its name.
         {ok, [true, true]} = py:eval(<<"[x is y, x == 'ep_seen_5']">>,
                                      #{x => ep_seen_5, y => ep_seen_5})
     end || _ <- lists:seq(1, 3)],
    case py:subinterp_supported() of
        true ->
            Sub = #{pool => subinterp},
            [begin
                 {ok, <<"ep_seen_6">>} = py:call(builtins, str, [ep_seen_6], #{}, Sub),
                 {ok, <<"{'ep_seen_6': 'é', True: None}"/utf8>>} =
                     py:call(builtins, repr, [#{ep_seen_6 => 'é', true => nil}], #{}, Sub)
             end || _ <- lists:seq(1, 3)],
            {ok, <<"ep_seen_6">>} = py:call(builtins, str, [ep_seen_6]);
        false ->
            ok
    end.

%% @doc A binary that is not valid UTF-8 becomes bytes and round-trips unchanged.
-spec invalid_utf8_binary_is_bytes(ct_suite:ct_config()) -> term().
invalid_utf8_binary_is_bytes(_Config) ->
    Bins = [<<255>>, <<16#c3>>, <<"ok", 16#80>>, <<16#ed, 16#a0, 16#80>>, <<0, 255, 0>>],
    [{B, <<"bytes">>} = {B, typename(B)} || B <- Bins],
    [{B, {ok, B}} = {B, ident(B)} || B <- Bins],
    {ok, 3} = py:call(builtins, len, [<<0, 255, 0>>]),
    {ok, [0, 255, 0]} = py:call(builtins, list, [<<0, 255, 0>>]).

%% @doc Two dict keys that convert to the same term give a ValueError.
-spec dict_key_collision_python_side(ct_suite:ct_config()) -> term().
dict_key_collision_python_side(_Config) ->
    {error, {'ValueError', Msg}} = py:eval(<<"{'a': 1, b'a': 2}">>),
    true = is_binary(Msg),
    {error, {'ValueError', _}} = py:eval(<<"[{'x': 1, b'x': 2}]">>),
    {ok, 2.0} = py:call(math, sqrt, [4]).

%% @doc A str holding a lone surrogate gives a UnicodeEncodeError.
-spec lone_surrogate(ct_suite:ct_config()) -> term().
lone_surrogate(_Config) ->
    {error, {'UnicodeEncodeError', _}} = py:eval(<<"'\\ud800'">>),
    {error, {'UnicodeEncodeError', _}} = py:eval(<<"['ok', {'k': 'a\\udfff'}]">>),
    {ok, 2.0} = py:call(math, sqrt, [4]).

%% @doc Funs, ports and odd bitstrings are TypeErrors and the function is not called.
-spec unconvertible_arguments(ct_suite:ct_config()) -> term().
unconvertible_arguments(_Config) ->
    ok = py:exec(<<"ep_called = []\n"
                   "def ep_record(*a, **k):\n"
                   "    ep_called.append(1)\n"
                   "    return len(ep_called)\n">>),
    Port = hd(erlang:ports()),
    Bad = [fun() -> ok end, fun lists:map/2, Port, <<1:3>>, <<0, 1:1>>,
           [1, fun() -> ok end], #{k => <<1:7>>}, {a, Port}],
    [{T, {error, {'TypeError', _}}} = {T, py:call('__main__', ep_record, [T])} || T <- Bad],
    [{T, {error, {'TypeError', _}}} = {T, py:call('__main__', ep_record, [], #{k => T})}
     || T <- Bad],
    {error, {'TypeError', _}} = py:eval(<<"ep_f">>, #{ep_f => fun() -> ok end}),
    {ok, 0} = py:eval(<<"len(ep_called)">>),
    {ok, 1} = py:call('__main__', ep_record, [1]).

%% @doc An improper list is a TypeError wherever it appears.
-spec improper_list(ct_suite:ct_config()) -> term().
improper_list(_Config) ->
    {error, {'TypeError', Msg}} = ident([1 | 2]),
    true = is_binary(Msg),
    {error, {'TypeError', _}} = ident(#{k => [a, b | c]}),
    {error, {'TypeError', _}} = ident({1, [2 | <<"x">>]}),
    {error, {'TypeError', _}} = py:eval(<<"ep_il">>, #{ep_il => [1 | 2]}),
    {ok, [1, 2]} = ident([1, 2]).

%% @doc The fast paths for the elements of big lists, tuples and maps (exact ints and floats,
%% lists and tuples filled in place, one dict lookup per key) give the same values and errors
%% as the general rules: bools stay bools, subclasses of int/float/str/list/tuple/dict convert
%% by value without calling their overrides, ints beyond 64 bits, -0.0, nan and infinities,
%% non-UTF-8 binaries, non-string map keys, and a duplicate key beside a bad value.
-spec fast_path_edges(ct_suite:ct_config()) -> term().
fast_path_edges(_Config) ->
    ok = py:exec(<<"import math\n"
                   "class EpLoudInt(int):\n"
                   "    def __index__(self):\n        raise RuntimeError('index called')\n"
                   "    def __int__(self):\n        raise RuntimeError('int called')\n"
                   "class EpLoudFloat(float):\n"
                   "    def __float__(self):\n        raise RuntimeError('float called')\n"
                   "class EpLoudStr(str):\n"
                   "    def __str__(self):\n        raise RuntimeError('str called')\n"
                   "def ep_types(xs):\n    return [type(x).__name__ for x in xs]\n"
                   "def ep_signs(xs):\n    return [math.copysign(1.0, x) for x in xs]\n">>),
    Big = [1 bsl 63, -(1 bsl 63) - 1, 1 bsl 64, -(1 bsl 200), (1 bsl 63) - 1, -(1 bsl 63)],
    Ints = [0, 1, -1, 255, 256, 257, -5, -6 | Big],
    {ok, Ints} = ident(Ints),
    {ok, Tuple} = ident(Tuple = list_to_tuple(Ints)),
    {ok, [true, false, 1, 0, none]} = ident([true, false, 1, 0, undefined]),
    {ok, [true, false, 1, -1, 1 bsl 64]} = py:eval(<<"[True, False, 1, -1, 2**64]">>),
    {ok, [<<"bool">>, <<"int">>, <<"int">>, <<"float">>, <<"str">>, <<"bytes">>, <<"NoneType">>]} =
        py:call('__main__', ep_types, [[true, 1, 1 bsl 70, 1.5, <<"s">>, <<255>>, nil]]),
    %% Negative zero keeps its sign both ways, in a list and in a tuple.
    {ok, [-1.0, 1.0]} = py:call('__main__', ep_signs, [[-0.0, 0.0]]),
    {ok, [-1.0, -1.0]} = py:eval(<<"ep_signs(x)">>, #{x => [-0.0, -0.0]}),
    {ok, [<<"-0.0">>]} = py:eval(<<"[repr(x) for x in (-0.0,)]">>),
    {ok, [<<"-0.0">>, <<"-0.0">>]} =
        py:eval(<<"[repr(x) for x in ep_v]">>, #{ep_v => {-0.0, -0.0}}),
    {ok, [nan, infinity, neg_infinity, 1.5]} =
        py:eval(<<"[float('nan'), float('inf'), -float('inf'), 1.5]">>),
    {ok, {nan, infinity}} = py:eval(<<"(float('nan'), float('inf'))">>),
    %% Subclasses take the general path, never their overrides.
    {ok, [7, 1180591620717411303424, 2.5, <<"s">>]} =
        py:eval(<<"[EpLoudInt(7), EpLoudInt(2**70), EpLoudFloat(2.5), EpLoudStr('s')]">>),
    {ok, #{1 := 0.5}} = py:eval(<<"{EpLoudInt(1): EpLoudFloat(0.5)}">>),
    {ok, {7}} = py:eval(<<"(EpLoudInt(7),)">>),
    %% Binaries: UTF-8 ones become str, others bytes, in lists, tuples and maps alike.
    Bins = [<<>>, <<"a">>, <<255>>, <<"é"/utf8>>, <<16#c3>>, binary:copy(<<255>>, 100)],
    {ok, Bins} = ident(Bins),
    {ok, #{<<255>> := <<254>>, <<"k">> := {<<0, 255>>}}} =
        ident(#{<<255>> => <<254>>, <<"k">> => {<<0, 255>>}}),
    %% Map keys that are not strings.
    Keys = #{1 => a, 2.5 => b, {1, 2} => c, <<255>> => d, -(1 bsl 70) => e, none => f},
    {ok, #{1 := <<"a">>, 2.5 := <<"b">>, {1, 2} := <<"c">>, <<255>> := <<"d">>,
           -(1 bsl 70) := <<"e">>, none := <<"f">>}} = ident(Keys),
    {error, {'TypeError', _}} = ident(#{[1] => x}),
    %% A key that collides in Python, beside a value that cannot convert: the error is the
    %% one of whichever comes first in the map's order, as before the fast paths.
    Fun = fun() -> ok end,
    {error, {'ValueError', _}} = ident(#{1 => a, 1.0 => Fun}),
    {error, {'TypeError', _}} = ident(#{1 => Fun, 1.0 => a}),
    {error, {'ValueError', _}} = ident(#{1 => a, true => Fun}),
    %% Improper lists inside containers, and a failure half-way through a big list.
    {error, {'TypeError', _}} = ident([[1 | 2]]),
    {error, {'TypeError', _}} = ident({1, 2, [3 | 4]}),
    {error, {'TypeError', _}} = ident(lists:seq(1, 5000) ++ [Fun]),
    {error, {'TypeError', _}} = ident(list_to_tuple(lists:seq(1, 5000) ++ [Fun])),
    {error, {'UnicodeEncodeError', _}} = py:eval(<<"list(range(5000)) + ['\\ud800']">>),
    {ok, 2.0} = py:call(math, sqrt, [4]).

%% @doc Big arguments that suit the external term format (docs/type-conversion.md, "What
%% conversion costs"), encoded by the caller (after 5,000 integers) or on a dirty scheduler
%% (after 20,000), give the values and errors of the term-by-term path: random terms and
%% faulty ones, opaque handles and keyword arguments beside them. Arguments whose first terms
%% hold big binaries or references are copied as terms instead.
-spec big_arguments_external_format(ct_suite:ct_config()) -> term().
big_arguments_external_format(_Config) ->
    ok = py:exec(<<"def ba_last(xs, **kw):\n    return (xs[-1], kw)\n"
                   "def ba_id(xs):\n    return id(xs[-1])\n">>),
    Pad = lists:seq(1, 5000),
    DirtyPad = lists:seq(1, 20000),
    {ok, Pool} = py_request:pool(),
    Submit = fun(Args) ->
                     py_nif:pool_call(Pool, make_ref(), <<"builtins">>, <<"len">>, Args, #{})
             end,
    %% Submitted there and then (the NIF encodes big arguments itself): the reply comes.
    Submitted = fun(Args) ->
                        Ref = make_ref(),
                        Job = py_nif:pool_call(Pool, Ref, <<"builtins">>, <<"len">>, Args, #{}),
                        true = is_reference(Job),
                        receive {Ref, {ok, Len}} -> Len end
                end,
    5000 = Submitted([Pad]),
    dirty = Submit([DirtyPad]),
    %% From about 500 words on (a cost of 512), below the copy budget too; small arguments
    %% are copied.
    3000 = Submitted([lists:seq(1, 3000)]),
    3 = Submitted([[1, 2, 3]]),
    200 = Submitted([lists:seq(1, 200)]),
    {ok, {3000, #{}}} = py:call('__main__', ba_last, [[lists:seq(1, 3000), 3000]]),
    %% Maps the same: 100 small maps are encoded, as a list of 600 ints is.
    100 = Submitted([[#{<<"k">> => I, <<"v">> => <<"x">>} || I <- lists:seq(1, 100)]]),
    600 = Submitted([lists:seq(1, 600)]),
    {ok, {#{<<"k">> := 100, <<"v">> := <<"x">>}, #{}}} =
        py:call('__main__', ba_last,
                [[#{<<"k">> => I, <<"v">> => <<"x">>} || I <- lists:seq(1, 100)]]),
    1000 = Submitted([[#{<<"k">> => [1.5, <<"short">>, atom]} || _ <- lists:seq(1, 1000)]]),
    %% A binary over 64 bytes (shared when copied) or a reference past the terms the walk
    %% samples: the caller encodes them with term_to_binary/1 (`etf'); within the sample, or
    %% too big for the caller to encode, they are copied on a dirty scheduler.
    LateBig = Pad ++ [binary:copy(<<"b">>, 100)],
    etf = Submit([LateBig]),
    {ok, {<<"bbbb", _/binary>>, #{}}} = py:call('__main__', ba_last, [LateBig]),
    etf = Submit([Pad ++ [make_ref()]]),
    3000 = Submitted([[binary:copy(<<"b">>, 100)] ++ lists:seq(1, 2999)]),
    dirty = Submit([[binary:copy(<<"b">>, 100) || _ <- DirtyPad]]),
    dirty = Submit([[make_ref() | DirtyPad]]),
    %% Big integers are charged their words: 60 of 40,000 bits are too big for the caller.
    Bigs = [1 bsl 40000 + I || I <- lists:seq(1, 60)],
    dirty = Submit([Bigs]),
    {ok, {LastBig, #{}}} = py:call('__main__', ba_last, [Bigs]),
    LastBig = lists:last(Bigs),
    {ok, 20000} = py:call(builtins, len, [[binary:copy(<<"b">>, 100) || _ <- DirtyPad]]),
    {ok, 20001} = py:call(builtins, len, [[make_ref() | DirtyPad]]),
    Big = fun(P, X) ->
                  case py:call('__main__', ba_last, [P ++ [X]]) of
                      {ok, {Got, #{}}} -> {ok, Got};
                      Other -> Other
                  end
          end,
    Same = fun(X) ->
                   Small = ident(X),
                   [ct:fail({paths_differ, X, Small, Other})
                    || P <- [Pad, DirtyPad], (Other = Big(P, X)) =/= Small],
                   ok
           end,
    _ = rand:seed(exsss, ?SEED),
    lists:foreach(fun(_) -> Same(gen_term(0)) end, lists:seq(1, 200)),
    Fun = fun() -> ok end,
    Port = hd(erlang:ports()),
    Faulty = [Fun, Port, <<1:3>>, [1 | 2], [Fun | 2], {1, [2 | 3]}, #{a => 1, <<"a">> => 2},
              #{1 => a, 1.0 => Fun}, #{1 => Fun, 1.0 => a}, #{[1 | 2] => 1},
              {py_array, nope, [1], <<>>}, {py_array, int8, [2], <<1, 2>>},
              -0.0, 1 bsl 100, -(1 bsl 63), 'é', nil, undefined, "charlist", <<255, 0>>,
              self(), make_ref(),
              %% What the NIF's encoder writes its own way or splices in from
              %% enif_term_to_binary: an atom that is not Latin-1, an integer of 64 bits and
              %% one past them, a tuple of more than 255 elements, maps of more and fewer
              %% than 33 keys, atom keys, an improper list inside, a sub-binary, nesting past
              %% the depth limit, a float list, an empty tuple, map and binary.
              '日本', 1 bsl 62, -(1 bsl 64), list_to_tuple(lists:seq(1, 300)),
              maps:from_list([{I, [I]} || I <- lists:seq(1, 40)]), #{a => 1, b => [true]},
              [#{true => false}, [x | y]], binary:part(<<"abcdefgh">>, 2, 3),
              lists:foldl(fun(_, Acc) -> [Acc] end, [], lists:seq(1, 1010)),
              [1.5, -2.25, 1.0e300], {}, #{}, <<>>],
    lists:foreach(Same, Faulty),
    %% py:async_call's arguments take the same ways (never `etf': its caller does not keep
    %% them), with the same results.
    AsyncRef = make_ref(),
    AsyncJob = py_nif:pool_async(Pool, AsyncRef, <<"builtins">>, <<"len">>, [Pad], #{}, false),
    true = is_reference(AsyncJob),
    receive {AsyncRef, {ok, 5000}} -> ok end,
    dirty = py_nif:pool_async(Pool, make_ref(), <<"builtins">>, <<"len">>, [DirtyPad], #{},
                              false),
    {ok, 5001} = py:async_await(py:async_call(builtins, len, [Pad ++ [make_ref()]])),
    SameAsync = fun(X) ->
                        Small = ident(X),
                        [ct:fail({async_paths_differ, X, Small, Other})
                         || P <- [Pad, DirtyPad],
                            (Other = case py:async_await(
                                            py:async_call('__main__', ba_last, [P ++ [X]])) of
                                         {ok, {Got, #{}}} -> {ok, Got};
                                         Error -> Error
                                     end) =/= Small],
                        ok
                end,
    lists:foreach(SameAsync, Faulty),
    %% Faults in the padding itself, and a list of arguments that is improper at the end.
    {error, {'TypeError', _}} = py:call('__main__', ba_last, [[Fun | Pad]]),
    {error, {'TypeError', _}} = py:call('__main__', ba_last, [Pad ++ [1 | 2]]),
    {error, {'TypeError', _}} = py:call('__main__', ba_last, [DirtyPad ++ [1 | 2]]),
    %% Keyword arguments beside big arguments.
    Kw = #{<<"key">> => <<"v">>},
    {ok, {7, Kw}} = py:call('__main__', ba_last, [Pad ++ [7]], Kw),
    {ok, {7, Kw}} = py:call('__main__', ba_last, [Pad ++ [7]], [{key, <<"v">>}]),
    {error, {'TypeError', _}} = py:call('__main__', ba_last, [Pad ++ [7]], #{1.5 => 2}),
    %% A Python error, and a nested call from an Erlang function Python called.
    {error, {'TypeError', _}} = py:call(builtins, len, [Pad, Pad]),
    {error, {'TypeError', _}} = py:call(builtins, len, [DirtyPad, DirtyPad]),
    ok = py:register_function(ba_inner, fun([N]) ->
                                                {ok, L} = py:call(builtins, len, [lists:seq(1, N)]),
                                                L
                                        end),
    {ok, 30000} = py:eval(<<"erlang.call('ba_inner', 30000)">>),
    ok = py:unregister_function(ba_inner),
    %% Opaque handles after the padding are the objects they stand for.
    {ok, Handle} = py:call(builtins, object, []),
    {ok, Id} = py:call(builtins, id, [Handle]),
    {ok, Id} = py:call('__main__', ba_id, [Pad ++ [Handle]]),
    {ok, Id} = py:call('__main__', ba_id, [DirtyPad ++ [Handle]]),
    {ok, {[{Handle2}], _}} = py:call('__main__', ba_last, [Pad ++ [[{Handle}]]]),
    {ok, Id} = py:call(builtins, id, [Handle2]).

%% @doc Big eval locals travel as big call arguments do (written in the external term format
%% by the NIF, or encoded on a dirty scheduler past 32k words) and give the same names, values
%% and errors as small ones copied as terms: each case is run alone, and beside a padding
%% local that sends it one way or the other.
-spec big_eval_locals_external_format(ct_suite:ct_config()) -> term().
big_eval_locals_external_format(_Config) ->
    Pad = lists:seq(1, 5000),
    DirtyPad = lists:seq(1, 20000),
    {ok, Pool} = py_request:pool(),
    Ref = make_ref(),
    Job = py_nif:pool_eval(Pool, Ref, <<"len(zzpad)">>, #{zzpad => Pad}),
    true = is_reference(Job),
    receive {Ref, {ok, 5000}} -> ok end,
    dirty = py_nif:pool_eval(Pool, make_ref(), <<"len(zzpad)">>, #{zzpad => DirtyPad}),
    Same = fun(Code, Locals) ->
                   Small = py:eval(Code, Locals),
                   [ct:fail({paths_differ, Locals, Small, Other})
                    || P <- [Pad, DirtyPad],
                       (Other = py:eval(Code, Locals#{zzpad => P})) =/= Small],
                   ok
           end,
    %% Values.
    Fun = fun() -> ok end,
    lists:foreach(fun(X) -> Same(<<"x">>, #{x => X}) end,
                  [1, -1 bsl 70, 1.5, <<"text">>, <<255>>, "chars", [1 | 2], {a, [b]},
                   #{<<"k">> => [#{}]}, true, nil, undefined, '日本', Fun, self(),
                   lists:foldl(fun(_, Acc) -> [Acc] end, [], lists:seq(1, 1010))]),
    %% Names: atoms, UTF-8 binaries and lists of character codes; anything else, a name
    %% given twice, and what the term reader refuses outright (an improper list, a fun, a
    %% bitstring), each with its own error.
    %% The names whose value is this case's own mark (names of earlier evals stay in the
    %% shared namespace).
    Names = fun(Keys) ->
                    Mark = integer_to_binary(erlang:unique_integer([positive])),
                    maps:from_list([{mark, Mark} | [{K, Mark} || K <- Keys]])
            end,
    NamesCode = <<"sorted(k for k, v in list(locals().items()) if v == mark)">>,
    lists:foreach(fun(Keys) -> Same(NamesCode, Names(Keys)) end,
                  [[a, '日本', <<"b">>, "c", [], [16#10FFFF]],
                   [1], [1.5], [<<255>>], [{a}], [#{}], [self()], [make_ref()],
                   [[1 | 2]], [[97, -1]], [[97, 16#110000]], [[97, 1 bsl 70]],
                   [[97, a]], [[97, <<"b">>]], [[97, [98]]], [[97, [98 | 99]]],
                   [[97, Fun]], [[97, <<1:3>>]], [[97, <<"bb">>, Fun]], [<<1:3>>], [Fun],
                   [a, <<"a">>], ["a", a], [b, "a", <<"a">>], [<<"x">>, 1]]).

%% @doc A caller that holds an opaque handle only through big arguments (sent in the
%% external term format, where the handle is a mere reference) keeps it alive until its
%% reply: a request waiting for a busy executor while its caller is garbage-collected still
%% gets the object.
-spec big_arguments_keep_their_handles(ct_suite:ct_config()) -> term().
big_arguments_keep_their_handles(_Config) ->
    ok = py:exec(<<"def bk_hold():\n    return erlang.call('bk_wait')\n"
                   "def bk_last_type(xs):\n    return type(xs[-1]).__name__\n">>),
    Self = self(),
    %% Runs in a process of its own while the executor that called it waits.
    ok = py:register_function(bk_wait, fun([]) ->
                                               Self ! {waiting, self()},
                                               receive bk_release -> held end
                                       end),
    {ok, Pool} = py_request:pool(),
    #{executors := Executors} = py_nif:pool_stats(Pool),
    Caller = spawn_link(
               fun() ->
                       {ok, Handle} = py:call(builtins, object, []),
                       Self ! {ready, self()},
                       receive go -> ok end,
                       Args = [lists:seq(1, 5000) ++ [Handle]],
                       Self ! {reply, py:call('__main__', bk_last_type, Args)}
               end),
    receive {ready, Caller} -> ok end,
    Holders = [spawn_link(fun() -> Self ! {held, self(), py:call('__main__', bk_hold, [])} end)
               || _ <- lists:seq(1, Executors)],
    Waiting = [receive {waiting, W} -> W end || _ <- Holders],
    Caller ! go,
    %% The caller's request waits for an executor; collect its garbage meanwhile.
    ok = wait_queued(Pool),
    [true = erlang:garbage_collect(Caller) || _ <- lists:seq(1, 5)],
    [W ! bk_release || W <- Waiting],
    [receive {held, H, {ok, <<"held">>}} -> ok end || H <- Holders],
    receive {reply, Reply} -> {ok, <<"object">>} = Reply end,
    ok = py:unregister_function(bk_wait).

wait_queued(Pool) ->
    case py_nif:pool_stats(Pool) of
        #{queued := Queued} when Queued >= 1 -> ok;
        _ -> timer:sleep(5), wait_queued(Pool)
    end.

%% @doc Documents repeat their keys: the keys of many maps (decoded once per distinct key on
%% the way in, made once per key object on the way out) give the same values as distinct
%% keys do, whatever the keys are: equal keys of different kinds, non-UTF-8 and long
%% binaries, str subclasses, and a key that cannot convert after the same key converted.
-spec repeated_map_keys(ct_suite:ct_config()) -> term().
repeated_map_keys(_Config) ->
    Long = binary:copy(<<"long">>, 20),
    Item = fun(I) -> #{<<"id">> => I, <<"name">> => <<"n">>, <<255>> => I, Long => I,
                       atom_k => atom_key, 7 => int_key, {<<"id">>} => tuple_key} end,
    Docs = [[Item(I) || I <- lists:seq(1, N)] || N <- [1, 40, 400, 3000]],
    lists:foreach(fun(Doc) ->
                          Expected = py_test_util:normalise(Doc),
                          {ok, Expected} = ident(Doc)
                  end, Docs),
    %% Keys that become the same str in one map still collide, cached or not.
    {error, {'ValueError', _}} = ident([#{<<"a">> => 1} || _ <- lists:seq(1, 3000)]
                                       ++ [#{<<"a">> => 1, a => 2}]),
    ok = py:exec(<<"class RkStr(str):\n    pass\n"
                   "def rk_docs(n):\n"
                   "    keys = ['k%d' % (i % 7) for i in range(n)]\n"
                   "    return [{k: i, RkStr('s'): i, ''.join(['k', '0']): -i}"
                   " for i, k in enumerate(keys)]\n">>),
    {ok, Out} = py:call('__main__', rk_docs, [500]),
    500 = length(Out),
    #{<<"k0">> := 0, <<"s">> := 0} = hd(Out),
    #{<<"k3">> := 10, <<"k0">> := -10, <<"s">> := 10} = lists:nth(11, Out),
    {error, {'UnicodeEncodeError', _}} =
        py:eval(<<"[{'k': 1} for _ in range(100)] + [{'k': 2, '\\ud800': 3}]">>).

%% @doc Results whose str/int/float elements are read in place (lists, tuples and dicts of
%% any size: flat maps and maps built key by key past 32 keys) give the same terms as ever, and
%% fail the same way halfway through: two keys that become one binary, a lone surrogate as a
%% key or a value, a dict that grows while its values convert (RuntimeError, as in Python).
-spec results_read_in_place(ct_suite:ct_config()) -> term().
results_read_in_place(_Config) ->
    ok = py:exec(<<"class RpText(str):\n    pass\n"
                   "class RpGrows:\n"
                   "    __module__ = 'numpy'\n"
                   "    def __init__(self, owner):\n        self.owner = owner\n"
                   "    def tolist(self):\n"
                   "        self.owner['added%d' % len(self.owner)] = 1\n        return 0\n"
                   "def rp_mixed(n):\n"
                   "    items = ['s', 1, 2.5, RpText('t'), True, None, 2**70, b'b', (1, 's')] * n\n"
                   "    return items, tuple(items), {'k%d' % i: x for i, x in enumerate(items)}\n"
                   "def rp_colliding(n, at):\n"
                   "    d = {'k%d' % i: i for i in range(n)}\n"
                   "    d[('k%d' % at).encode()] = -1\n"
                   "    d.update({'m%d' % i: i for i in range(n)})\n    return d\n"
                   "def rp_bad_value(n):\n"
                   "    d = {'k%d' % i: float(i) for i in range(n)}\n"
                   "    d['bad'] = '\\ud800'\n    d['last'] = 1\n    return d\n"
                   "def rp_growing(n):\n"
                   "    d = {'k%d' % i: i for i in range(n)}\n"
                   "    d['grows'] = RpGrows(d)\n    d['after'] = 1\n    return d\n">>),
    Mixed = [<<"s">>, 1, 2.5, <<"t">>, true, none, 1 bsl 70, <<"b">>, {1, <<"s">>}],
    lists:foreach(
      fun(N) ->
              Items = lists:append(lists:duplicate(N, Mixed)),
              Map = maps:from_list([{<<"k", (integer_to_binary(I - 1))/binary>>, X}
                                    || {I, X} <- lists:zip(lists:seq(1, length(Items)), Items)]),
              {ok, {Items, Tuple, Map}} = py:call('__main__', rp_mixed, [N]),
              Items = tuple_to_list(Tuple)
      end, [1, 3, 4, 500]),
    [{error, {'ValueError', _}} = py:call('__main__', rp_colliding, [N, At])
     || {N, At} <- [{10, 5}, {40, 20}, {40, 39}, {3000, 1500}]],
    [{error, {'UnicodeEncodeError', _}} = py:call('__main__', rp_bad_value, [N])
     || N <- [5, 60, 3000]],
    {error, {'UnicodeEncodeError', _}} =
        py:eval(<<"{**{'k%d' % i: i for i in range(50)}, '\\ud800': 1, 'last': 2}">>),
    {error, {'UnicodeEncodeError', _}} = py:eval(<<"['s'] * 5000 + ['\\ud800'] + ['t']">>),
    [{error, {'RuntimeError', _}} = py:call('__main__', rp_growing, [N]) || N <- [3, 100]],
    {ok, 3} = py:eval(<<"1 + 2">>).

%% @doc Erlang terms nested beyond max_depth give a ValueError, not a crash.
-spec deep_nesting_erlang_side(ct_suite:ct_config()) -> term().
deep_nesting_erlang_side(_Config) ->
    Deep = fun(Wrap, N) -> lists:foldl(fun(_, Acc) -> Wrap(Acc) end, 0, lists:seq(1, N)) end,
    InList = fun(X) -> [X] end,
    InTuple = fun(X) -> {X} end,
    InMap = fun(X) -> #{k => X} end,
    Mixed = fun(X) -> [{#{k => X}}] end,
    Ok = Deep(InList, 200),
    {ok, Ok} = ident(Ok),
    {error, {'ValueError', _}} = ident(Deep(InList, 2000)),
    {error, {'ValueError', _}} = ident(Deep(InTuple, 2000)),
    {error, {'ValueError', _}} = ident(Deep(InMap, 2000)),
    {error, {'ValueError', _}} = ident(Deep(Mixed, 1000)),
    {error, {'ValueError', _}} = ident(Deep(InList, 100000)),
    {error, {'ValueError', _}} = py:call('__main__', ident_kw, [], #{k => Deep(InList, 2000)}),
    {ok, 2.0} = py:call(math, sqrt, [4]).

%% @doc Python values nested beyond max_depth give a ValueError, not a crash.
-spec deep_nesting_python_side(ct_suite:ct_config()) -> term().
deep_nesting_python_side(_Config) ->
    ok = py:exec(<<"def ep_nest(n, kind):\n"
                   "    v = 0\n"
                   "    for _ in range(n):\n"
                   "        v = [v] if kind == 'list' else (v,) if kind == 'tuple' else {'k': v}\n"
                   "    return v\n">>),
    {ok, [[[0]]]} = py:call('__main__', ep_nest, [3, list]),
    {ok, _} = py:call('__main__', ep_nest, [200, dict]),
    {error, {'ValueError', _}} = py:call('__main__', ep_nest, [2000, list]),
    {error, {'ValueError', _}} = py:call('__main__', ep_nest, [2000, tuple]),
    {error, {'ValueError', _}} = py:call('__main__', ep_nest, [2000, dict]),
    {error, {'ValueError', _}} = py:call('__main__', ep_nest, [100000, list]),
    {ok, 2.0} = py:call(math, sqrt, [4]).

%% @doc Cyclic Python lists and dicts hit the depth bound: ValueError, not a crash.
-spec cyclic_python_structures(ct_suite:ct_config()) -> term().
cyclic_python_structures(_Config) ->
    ok = py:exec(<<"def ep_cyclic_list():\n    l = []\n    l.append(l)\n    return l\n\n"
                   "def ep_cyclic_dict():\n    d = {}\n    d['self'] = d\n    return d\n\n"
                   "def ep_cyclic_mixed():\n    l = [1]\n    l.append((l, {'x': l}))\n"
                   "    return l\n">>),
    {error, {'ValueError', _}} = py:call('__main__', ep_cyclic_list, []),
    {error, {'ValueError', _}} = py:call('__main__', ep_cyclic_dict, []),
    {error, {'ValueError', _}} = py:call('__main__', ep_cyclic_mixed, []),
    {error, {'ValueError', _}} = py:eval(<<"ep_cyclic_list()">>),
    {ok, 2.0} = py:call(math, sqrt, [4]).

%% @doc 10 MB binaries (str and bytes) cross in both directions.
-spec large_binaries(ct_suite:ct_config()) -> term().
large_binaries(_Config) ->
    Size = 10 * 1024 * 1024,
    Text = binary:copy(<<"abcdefghij">>, Size div 10),
    TextLen = byte_size(Text),
    {ok, Text} = ident(Text),
    {ok, TextLen} = py:call(builtins, len, [Text]),
    Bytes = binary:copy(<<255, 0>>, Size div 2),
    {ok, Bytes} = ident(Bytes),
    {ok, <<"bytes">>} = py:call('__main__', typename, [Bytes]),
    {ok, FromPy} = py:eval(<<"'é' * 5000000"/utf8>>),
    10000000 = byte_size(FromPy),
    {ok, FromPyBytes} = py:eval(<<"bytes(10485760)">>),
    Size = byte_size(FromPyBytes).

%% @doc Objects whose __iter__, __str__ and __repr__ raise convert without calling them.
-spec raising_dunder_methods(ct_suite:ct_config()) -> term().
raising_dunder_methods(_Config) ->
    ok = py:exec(<<"class EpBadDunder:\n"
                   "    def __iter__(self):\n        raise RuntimeError('iter called')\n"
                   "    def __str__(self):\n        raise RuntimeError('str called')\n"
                   "    def __repr__(self):\n        raise RuntimeError('repr called')\n"
                   "    def __len__(self):\n        raise RuntimeError('len called')\n\n"
                   "class EpBadStr(str):\n"
                   "    def __str__(self):\n        raise RuntimeError('str called')\n">>),
    {ok, H} = py:eval(<<"EpBadDunder()">>),
    true = is_reference(H),
    {ok, <<"EpBadDunder">>} = py:call('__main__', typename, [H]),
    {ok, [H2, 1]} = py:eval(<<"[EpBadDunder(), 1]">>),
    true = is_reference(H2),
    {ok, <<"text">>} = py:eval(<<"EpBadStr('text')">>),
    {ok, #{<<"k">> := <<"v">>}} = py:eval(<<"{EpBadStr('k'): EpBadStr('v')}">>).

%% @doc dict/list/tuple subclasses are read through their storage, not their overrides.
-spec container_subclasses(ct_suite:ct_config()) -> term().
container_subclasses(_Config) ->
    ok = py:exec(<<"class EpBadList(list):\n"
                   "    def __iter__(self):\n        raise RuntimeError('iter called')\n"
                   "    def __getitem__(self, i):\n        raise RuntimeError('getitem called')\n"
                   "    def __len__(self):\n        raise RuntimeError('len called')\n\n"
                   "class EpBadTuple(tuple):\n"
                   "    def __iter__(self):\n        raise RuntimeError('iter called')\n"
                   "    def __getitem__(self, i):\n        raise RuntimeError('getitem called')\n\n"
                   "class EpBadDict(dict):\n"
                   "    def __iter__(self):\n        raise RuntimeError('iter called')\n"
                   "    def items(self):\n        raise RuntimeError('items called')\n"
                   "    def keys(self):\n        raise RuntimeError('keys called')\n"
                   "    def __getitem__(self, k):\n"
                   "        raise RuntimeError('getitem called')\n">>),
    {ok, [1, 2, 3]} = py:eval(<<"EpBadList([1, 2, 3])">>),
    {ok, {1, 2}} = py:eval(<<"EpBadTuple((1, 2))">>),
    {ok, #{<<"a">> := 1}} = py:eval(<<"EpBadDict({'a': 1})">>),
    {ok, [#{<<"x">> := [7]}]} = py:eval(<<"[EpBadDict(x=EpBadList([7]))]">>).

%% @doc set and frozenset become lists (order unspecified).
-spec sets_become_lists(ct_suite:ct_config()) -> term().
sets_become_lists(_Config) ->
    {ok, L} = py:eval(<<"{3, 1, 2}">>),
    [1, 2, 3] = lists:sort(L),
    {ok, [1]} = py:eval(<<"frozenset([1])">>),
    {ok, []} = py:eval(<<"set()">>),
    {ok, #{<<"s">> := L2}} = py:eval(<<"{'s': {'a', 'b'}}">>),
    [<<"a">>, <<"b">>] = lists:sort(L2).

%% @doc numpy arrays become nested lists; Erlang lists are accepted by numpy.
-spec numpy_arrays(ct_suite:ct_config()) -> term().
numpy_arrays(_Config) ->
    ok = py:exec(<<"import numpy as ep_np">>),
    {ok, [[0, 1, 2], [3, 4, 5]]} = py:eval(<<"ep_np.arange(6).reshape(2, 3)">>),
    {ok, [1.5, 2.5]} = py:eval(<<"ep_np.array([1.5, 2.5])">>),
    {ok, [true, false]} = py:eval(<<"ep_np.array([True, False])">>),
    {ok, [<<"a">>, <<"bc">>]} = py:eval(<<"ep_np.array(['a', 'bc'])">>),
    {ok, []} = py:eval(<<"ep_np.array([])">>),
    {ok, [[1.0, nan]]} = py:eval(<<"ep_np.array([[1.0, float('nan')]])">>),
    {ok, 3} = py:eval(<<"ep_np.array(3)">>),
    {ok, #{<<"a">> := [1, 2]}} = py:eval(<<"{'a': ep_np.array([1, 2])}">>),
    %% The same inside a dict of more than 32 keys (its reply comes in the external term
    %% format): rows, non-finite floats, empty, Fortran order, strided views, the array form.
    ok = py:exec(<<"import erlang as ep_erl\n"
                   "def ep_np_parts():\n"
                   "    return {'arr': ep_np.arange(6.0).reshape(2, 3),\n"
                   "            'nan': ep_np.array([1.0, float('nan'), float('-inf')]),\n"
                   "            'ints': ep_np.arange(5, dtype='int32'), 'empty': ep_np.zeros((0, 3)),\n"
                   "            'fortran': ep_np.asfortranarray(ep_np.arange(6).reshape(2, 3)),\n"
                   "            'sl': ep_np.arange(10)[::3], 'b': ep_np.array([True, False]),\n"
                   "            'form': ep_erl.py_array(ep_np.arange(4.0))}\n">>),
    {ok, Parts} = py:eval(<<"ep_np_parts()">>),
    {ok, WithParts} = py:eval(<<"{**{f'k{i}': i for i in range(40)}, **ep_np_parts()}">>),
    Parts = maps:with(maps:keys(Parts), WithParts),
    48 = map_size(WithParts),
    %% Arrays of 2 to 4 axes inside one: written in the external format too (no fallback
    %% to terms), rows or elements, with the same values as on their own.
    ok = py:exec(<<"def ep_np_axes():\n"
                   "    return {'f3': ep_np.arange(24.0).reshape(2, 3, 4),\n"
                   "            'i4': ep_np.arange(48).reshape(2, 2, 3, 4),\n"
                   "            'b3': ep_np.arange(12).reshape(3, 2, 2) % 3 == 0,\n"
                   "            'u2': ep_np.arange(6, dtype='uint8').reshape(3, 2),\n"
                   "            'one': ep_np.arange(3.0).reshape(1, 1, 3)}\n">>),
    {ok, Axes} = py:eval(<<"ep_np_axes()">>),
    [[[0.0, 1.0, 2.0, 3.0] | _] | _] = maps:get(<<"f3">>, Axes),
    [[[true, false], [false, true]] | _] = maps:get(<<"b3">>, Axes),
    [[[0.0, 1.0, 2.0]]] = maps:get(<<"one">>, Axes),
    {[ok_etf], {ok, WithAxes}} =
        reply_tags(fun() -> py:eval(<<"{**{f'k{i}': i for i in range(40)}, **ep_np_axes()}">>) end),
    Axes = maps:with(maps:keys(Axes), WithAxes),
    {ok, 6} = py:call(numpy, sum, [[1, 2, 3]]),
    {ok, 2.5} = py:call(numpy, mean, [[1, 2, 3, 4]]),
    {ok, 11} = py:call(numpy, dot, [[1, 2], [3, 4]]),
    {ok, [[1, 2], [3, 4]]} = py:call(numpy, array, [[[1, 2], [3, 4]]]).

%% @doc numpy scalars become Erlang numbers (top level and nested).
-spec numpy_scalars(ct_suite:ct_config()) -> term().
numpy_scalars(_Config) ->
    ok = py:exec(<<"import numpy as ep_np">>),
    {ok, 7} = py:eval(<<"ep_np.int64(7)">>),
    {ok, -3} = py:eval(<<"ep_np.int8(-3)">>),
    {ok, 18446744073709551615} = py:eval(<<"ep_np.uint64(2**64 - 1)">>),
    {ok, 0.5} = py:eval(<<"ep_np.float32(0.5)">>),
    {ok, 1.5} = py:eval(<<"ep_np.float64(1.5)">>),
    {ok, nan} = py:eval(<<"ep_np.float64('nan')">>),
    {ok, true} = py:eval(<<"ep_np.bool_(True)">>),
    {ok, [1, 2.5]} = py:eval(<<"[ep_np.int32(1), ep_np.float64(2.5)]">>),
    {ok, #{<<"n">> := 3}} = py:eval(<<"{'n': ep_np.int16(3)}">>),
    {ok, 5} = py:eval(<<"ep_np.array([2, 3]).sum()">>).

%% @doc Arrays read from their buffers give what tolist() gives, in every layout and for the
%% dtypes that keep tolist() (non-native byte order, complex).
-spec numpy_array_layouts(ct_suite:ct_config()) -> term().
numpy_array_layouts(_Config) ->
    ok = py:exec(<<"import numpy as ep_np">>),
    Cases = [
        <<"ep_np.arange(24, dtype='f8').reshape(2, 3, 4)">>,
        <<"ep_np.asfortranarray(ep_np.arange(6, dtype='i4').reshape(2, 3))">>,
        <<"ep_np.arange(20, dtype='u2')[::3]">>,
        <<"ep_np.arange(12, dtype='i1').reshape(3, 4).T[::-1]">>,
        <<"ep_np.zeros((2, 0, 3))">>,
        <<"ep_np.array([2**64 - 1, 0], dtype='u8')">>,
        <<"ep_np.array([-0.0, float('inf'), float('-inf'), float('nan')], dtype='f4')">>,
        <<"ep_np.arange(4, dtype='>f8')">>,
        <<"ep_np.array(5, dtype='i2')">>,
        %% float64 and int64 go row by row (one list per row of the last axis).
        <<"ep_np.array([-0.0, float('inf'), float('-inf'), float('nan'), 1e308, 5e-324])">>,
        <<"ep_np.array([[1.5, float('nan')], [float('inf'), -2.0], [0.0, 3.25]])">>,
        <<"ep_np.asfortranarray(ep_np.arange(12, dtype='f8').reshape(3, 4) / 7)">>,
        <<"ep_np.arange(30, dtype='f8').reshape(2, 3, 5)[:, ::2, 1:4]">>,
        <<"ep_np.array([[-2**63, 2**63 - 1], [0, -1]], dtype='i8')">>,
        <<"ep_np.arange(60, dtype='i8').reshape(3, 4, 5)">>,
        <<"ep_np.zeros((3, 0))">>,
        <<"ep_np.zeros((0, 3), dtype='i8')">>,
        <<"ep_np.array(2.5)">>,
        <<"ep_np.array(-7, dtype='i8')">>,
        <<"ep_np.arange(200000, dtype='f8') * 0.5">>
    ],
    [
        begin
            {ok, Direct} = py:eval(Expr),
            {ok, Listed} = py:eval(<<"(", Expr/binary, ").tolist()">>),
            {Expr, Listed} = {Expr, Direct}
        end
     || Expr <- Cases
    ],
    {ok, [1.0, 2.0]} = py:eval(<<"ep_np.array([1, 2], dtype=complex).real">>).

%% @doc `{py_array, Dtype, Shape, Data}' reaches Python as a read-only numpy array.
-spec array_form_to_python(ct_suite:ct_config()) -> term().
array_form_to_python(_Config) ->
    Data = <<<<X:64/float-native>> || X <- [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]>>,
    Array = {py_array, float64, [2, 3], Data},
    {ok, {<<"float64">>, [2, 3], [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], false}} =
        py:eval(<<"(a.dtype.name, list(a.shape), a.tolist(), a.flags.writeable)">>, #{a => Array}),
    {ok, 21.0} = py:call(numpy, sum, [Array]),
    %% 0-d and empty arrays.
    {ok, {[], 7}} = py:eval(
        <<"(list(a.shape), a.item())">>, #{a => {py_array, int16, [], <<7:16/native>>}}
    ),
    {ok, [0, 3]} = py:eval(<<"list(a.shape)">>, #{a => {py_array, uint8, [0, 3], <<>>}}),
    %% 1M floats: one copy of the binary.
    Big = <<<<X:64/float-native>> || X <- lists:seq(1, 1000000)>>,
    {ok, 500000500000.0} = py:call(numpy, sum, [{py_array, float64, [1000000], Big}]),
    %% A large binary is lent to numpy, not copied: the array's base is the Erlang binary, which
    %% stays alive (and unchanged) while Python keeps the array, also after the caller let go.
    ok = py:exec(<<"def ep_owner(a):\n"
                   "    while a.base is not None and type(a.base).__name__ == 'ndarray':\n"
                   "        a = a.base\n"
                   "    return type(a.base).__name__\n">>),
    {ok, <<"ErlangBinary">>} =
        py:call('__main__', ep_owner, [{py_array, float64, [1000, 1000], Big}]),
    {ok, <<"bytes">>} = py:call('__main__', ep_owner, [Array]),
    Kept = spawn_and_keep(Big),
    {ok, 500000500000.0} = py:eval(<<"float(ep_kept.sum())">>),
    {ok, 1000000.0} = py:eval(<<"float(ep_kept[-1])">>),
    {error, {'ValueError', <<"assignment destination is read-only">>}} =
        py:exec(<<"ep_kept[0] = 1.0">>),
    false = is_process_alive(Kept),
    %% A sub-binary: the lent bytes start where it starts.
    <<_:8/binary, Tail/binary>> = Big,
    {ok, [2.0, 3.0]} = py:eval(
        <<"a[:2].tolist()">>, #{a => {py_array, float64, [999999], Tail}}
    ),
    %% Other tuples are tuples.
    {ok, [<<"tuple">>, <<"tuple">>]} = py:eval(
        <<"[type(x).__name__ for x in xs]">>,
        #{xs => [{py_array, float64}, {other, float64, [1], <<0:64>>}]}
    ).

%% A process that hands Big to Python as an array kept in the global ep_kept, then exits.
spawn_and_keep(Big) ->
    {Pid, Ref} = spawn_monitor(fun() ->
        ok = py:exec(<<"def ep_keep(a):\n    global ep_kept\n    ep_kept = a\n">>),
        {ok, none} = py:call('__main__', ep_keep, [{py_array, float64, [1000000], Big}])
    end),
    receive
        {'DOWN', Ref, process, Pid, normal} -> ok
    end,
    erlang:garbage_collect(),
    Pid.

%% @doc `erlang.py_array(a)' comes to Erlang as `{py_array, Dtype, Shape, Data}': C order, native
%% byte order, whatever the array's layout.
-spec array_form_from_python(ct_suite:ct_config()) -> term().
array_form_from_python(_Config) ->
    ok = py:exec(<<"import numpy as ep_np\nimport erlang">>),
    Expected = <<<<X:16/signed-native>> || X <- [0, 3, 1, 4, 2, 5]>>,
    {ok, {py_array, int16, [3, 2], Expected}} =
        py:eval(<<"erlang.py_array(ep_np.arange(6, dtype='>i2').reshape(2, 3).T)">>),
    {ok, {py_array, float64, [], <<2.5:64/float-native>>}} = py:eval(<<"erlang.py_array(2.5)">>),
    {ok, #{<<"v">> := {py_array, bool, [2], <<1, 0>>}}} =
        py:eval(<<"{'v': erlang.py_array([True, False])}">>),
    {ok, {py_array, float64, [1000000], Big}} =
        py:eval(<<"erlang.py_array(ep_np.ones(1000000))">>),
    8000000 = byte_size(Big),
    {error, {'TypeError', Message}} = py:eval(<<"erlang.py_array(ep_np.array([1j]))">>),
    {match, _} = re:run(Message, <<"complex128 has no Erlang array form">>).

%% @doc Every dtype of the array form round-trips, under its numpy name.
-spec array_form_every_dtype(ct_suite:ct_config()) -> term().
array_form_every_dtype(_Config) ->
    Dtypes = [float64, float32, int64, int32, int16, int8, uint64, uint32, uint16, uint8, bool],
    ok = py:exec(<<"import numpy as ep_np\nimport erlang">>),
    [
        begin
            Name = atom_to_binary(Dtype),
            {ok, {py_array, Dtype, [3], Data}} = py:eval(
                <<"erlang.py_array(ep_np.array([0, 1, 1], dtype=d))">>, #{d => Name}
            ),
            {ok, {Name, [0, 1, 1]}} = py:eval(
                <<"(a.dtype.name, a.astype(int).tolist())">>, #{a => {py_array, Dtype, [3], Data}}
            )
        end
     || Dtype <- Dtypes
    ].

%% @doc A tagged tuple that does not describe an array is an error naming what is wrong.
-spec array_form_malformed(ct_suite:ct_config()) -> term().
array_form_malformed(_Config) ->
    Bad = [
        {{py_array, float64, [2], <<0:64>>}, <<"8 bytes of data for shape [2] of float64">>},
        {{py_array, complex128, [1], <<0:128>>}, <<"unknown dtype complex128">>},
        {{py_array, <<"float64">>, [1], <<0:64>>}, <<"the dtype is an atom">>},
        {{py_array, uint8, [-1], <<>>}, <<"non-negative integers">>},
        {{py_array, uint8, {1}, <<0>>}, <<"the shape is a list">>},
        {{py_array, uint8, [1], [0]}, <<"the data is a binary">>},
        {{py_array, uint8, [1 bsl 40, 1 bsl 40], <<>>}, <<"is too large">>}
    ],
    [
        begin
            {error, {'ValueError', <<"malformed py_array: ", Message/binary>>}} = ident(Term),
            {Term, true} = {Term, binary:match(Message, Why) =/= nomatch}
        end
     || {Term, Why} <- Bad
    ].

%%% ---------------------------------------------------------------- handles

%% @doc Objects without an Erlang equivalent come back as handles that pass back unchanged.
-spec opaque_handles(ct_suite:ct_config()) -> term().
opaque_handles(_Config) ->
    {ok, H} = py:eval(<<"object()">>),
    true = is_reference(H),
    {ok, <<"object">>} = py:call('__main__', typename, [H]),
    {ok, H2} = ident(H),
    {ok, true} = py:call(operator, is_, [H, H2]),
    {ok, F} = py:eval(<<"lambda x: x * 2">>),
    true = is_reference(F),
    {ok, 42} = py:call(operator, call, [F, 21]),
    {ok, 42} = py:eval(<<"ep_lam(21)">>, #{ep_lam => F}),
    {ok, M} = py:eval(<<"__import__('math')">>),
    {ok, 2.0} = py:eval(<<"ep_mod.sqrt(4)">>, #{ep_mod => M}),
    {ok, C} = py:eval(<<"3 + 4j">>),
    true = is_reference(C),
    {ok, 5.0} = py:call(builtins, abs, [C]),
    {ok, D} = py:eval(<<"__import__('decimal').Decimal('1.5')">>),
    {ok, <<"1.5">>} = py:call(builtins, str, [D]),
    {ok, R} = py:call(builtins, range, [3]),
    {ok, [0, 1, 2]} = py:call(builtins, list, [R]),
    {ok, <<"builtin_function_or_method">>} =
        py:call('__main__', typename, [element(2, py:eval(<<"len">>))]).

%% @doc Methods and attributes of an object reached through its handle.
-spec handle_methods(ct_suite:ct_config()) -> term().
handle_methods(_Config) ->
    ok = py:exec(<<"class EpCounter:\n"
                   "    def __init__(self):\n        self.n = 0\n"
                   "    def incr(self, k=1):\n        self.n += k\n        return self.n\n">>),
    {ok, C} = py:eval(<<"EpCounter()">>),
    {ok, Incr} = py:call(builtins, getattr, [C, <<"incr">>]),
    {ok, 5} = py:call(operator, call, [Incr, 5]),
    {ok, 7} = py:call(operator, call, [Incr, 2]),
    {ok, Caller} = py:call(operator, methodcaller, [incr]),
    {ok, 8} = py:call(operator, call, [Caller, C]),
    {ok, 8} = py:call(builtins, getattr, [C, n]),
    {ok, 18} = py:eval(<<"ep_cnt.incr(10)">>, #{ep_cnt => C}),
    {ok, 18} = py:call(builtins, getattr, [C, <<"n">>]).

%% @doc Handles nested in containers and kwargs keep their identity.
-spec handles_in_containers_and_kwargs(ct_suite:ct_config()) -> term().
handles_in_containers_and_kwargs(_Config) ->
    {ok, [H1, #{<<"k">> := H2}]} = py:eval(<<"[object(), {'k': (lambda: 1)}]">>),
    true = is_reference(H1),
    {ok, 1} = py:call(operator, call, [H2]),
    {ok, #{<<"v">> := H3}} = py:call('__main__', ident_kw, [], #{v => H1}),
    {ok, true} = py:call(operator, is_, [H1, H3]),
    {ok, {H4, [H5]}} = ident({H1, [H1]}),
    {ok, true} = py:call(operator, is_, [H4, H5]),
    {ok, true} = py:call(operator, is_, [H1, H4]).

%% @doc A handle sent to another Erlang process works there.
-spec handle_shared_with_other_process(ct_suite:ct_config()) -> term().
handle_shared_with_other_process(_Config) ->
    ok = py:exec(<<"class EpBox:\n    def __init__(self, v):\n        self.v = v\n">>),
    {ok, Box} = py:call('__main__', 'EpBox', [<<"boxed">>]),
    Job = py_test_util:spawn_call(fun() -> py:call(builtins, getattr, [Box, v]) end),
    {ok, <<"boxed">>} = py_test_util:await_call(Job, 10000),
    {ok, <<"boxed">>} = py:call(builtins, getattr, [Box, v]).

%% @doc The Python object is released once Erlang garbage-collects its last handle.
-spec handle_released_on_gc(ct_suite:ct_config()) -> term().
handle_released_on_gc(_Config) ->
    ok = py:exec(<<"import weakref as ep_weakref\n"
                   "class EpTracked:\n    pass\n"
                   "ep_tracked = []\n"
                   "def ep_make_tracked():\n"
                   "    o = EpTracked()\n"
                   "    ep_tracked.append(ep_weakref.ref(o))\n"
                   "    return o\n"
                   "def ep_tracked_alive():\n"
                   "    return ep_tracked[-1]() is not None\n">>),
    Job = py_test_util:spawn_call(
            fun() ->
                    {ok, H} = py:call('__main__', ep_make_tracked, []),
                    {ok, <<"EpTracked">>} = py:call('__main__', typename, [H]),
                    py:call('__main__', ep_tracked_alive, [])
            end),
    {ok, true} = py_test_util:await_call(Job, 10000),
    %% The holder process has exited; its heap and the handle with it are gone. Release of
    %% the Python object happens on a Python thread: poll the weakref.
    ok = py_test_util:wait_until(
           fun() -> {ok, false} =:= py:call('__main__', ep_tracked_alive, []) end, 10000),
    %% Handles kept in this process stay alive across a local garbage collection.
    {ok, Kept} = py:call('__main__', ep_make_tracked, []),
    true = erlang:garbage_collect(),
    {ok, true} = py:call('__main__', ep_tracked_alive, []),
    {ok, <<"EpTracked">>} = py:call('__main__', typename, [Kept]).

%%% ---------------------------------------------------------------- generators

%% @doc A generator result is {generator, Handle}; the handle can be passed to builtins.list.
-spec generators(ct_suite:ct_config()) -> term().
generators(_Config) ->
    {ok, {generator, G}} = py:eval(<<"(i * i for i in range(4))">>),
    {ok, [0, 1, 4, 9]} = py:call(builtins, list, [G]),
    {ok, []} = py:call(builtins, list, [G]),
    ok = py:exec(<<"def ep_gen(n):\n    for i in range(n):\n        yield i\n">>),
    {ok, {generator, G2}} = py:call('__main__', ep_gen, [3]),
    {ok, 0} = py:call(builtins, next, [G2]),
    {ok, [1, 2]} = py:call(builtins, list, [G2]),
    {error, {stop_iteration, none}} = py:call(builtins, next, [G2]),
    {ok, <<"generator">>} = py:call('__main__', typename, [G2]).

%% @doc Iterators at the top level are {generator, H}; nested ones are plain handles.
-spec iterators(ct_suite:ct_config()) -> term().
iterators(_Config) ->
    {ok, {generator, I}} = py:eval(<<"iter([10, 20])">>),
    {ok, 10} = py:call(builtins, next, [I]),
    {ok, 20} = py:call(builtins, next, [I]),
    {error, {stop_iteration, none}} = py:call(builtins, next, [I]),
    {ok, {generator, M}} = py:call(builtins, map, [element(2, py:eval(<<"abs">>)), [-1, -2]]),
    {ok, [1, 2]} = py:call(builtins, list, [M]),
    {ok, {generator, Z}} = py:call(builtins, zip, [[1, 2], [a, b]]),
    {ok, [{1, <<"a">>}, {2, <<"b">>}]} = py:call(builtins, list, [Z]),
    {ok, {generator, _}} = py:call(builtins, iter, [#{a => 1}]),
    {ok, [N]} = py:eval(<<"[iter([1])]">>),
    true = is_reference(N),
    {ok, [1]} = py:call(builtins, list, [N]).

%% @doc A map of 1,000 binary keys to floats round-trips unchanged.
-spec thousand_key_map(ct_suite:ct_config()) -> term().
thousand_key_map(_Config) ->
    M = maps:from_list([{integer_to_binary(I), I * 0.5} || I <- lists:seq(1, 1000)]),
    {ok, M} = ident(M),
    {ok, 1000} = py:call(builtins, len, [M]),
    {ok, 250.0} = py:call(operator, getitem, [M, <<"500">>]).

%% Python helpers for the big-map cases: `bm_kinds(n, pid, ref)' has keys of every kind the
%% table makes (binaries, small and big ints, floats, tuples, lists, atoms, pids, references).
-define(BIG_MAP_HELPERS, <<
    "def bm_flat(n, prefix='k'):\n"
    "    return {f'{prefix}{i}': i for i in range(n)}\n"
    "def bm_kinds(n, pid, ref):\n"
    "    d = {}\n"
    "    for i in range(n):\n"
    "        m = i % 8\n"
    "        if m == 0: k = f's{i}'\n"
    "        elif m == 1: k = i + 1000000\n"
    "        elif m == 2: k = -i * 2**70\n"
    "        elif m == 3: k = (i, f't{i}', None)\n"
    "        elif m == 4: k = bytes([255, i % 256]) + str(i).encode()\n"
    "        elif m == 5: k = i + 0.5\n"
    "        elif m == 6: k = frozenset([i])\n"
    "        else: k = (pid, ref, i)\n"
    "        d[k] = [i, float(i), f'v{i}']\n"
    "    d[True] = 'true'\n"
    "    d[None] = float('inf')\n"
    "    d[False] = {j: -j for j in range(40)}\n"
    "    d[float('nan')] = (1, 2.5)\n"
    "    return d\n">>).

%% What `bm_kinds(N, Pid, Ref)' converts to.
bm_kinds(N, Pid, Ref) ->
    Pairs = [begin
                 B = integer_to_binary(I),
                 Key = case I rem 8 of
                           0 -> <<"s", B/binary>>;
                           1 -> I + 1000000;
                           2 -> -I * (1 bsl 70);
                           3 -> {I, <<"t", B/binary>>, none};
                           4 -> <<255, (I rem 256), B/binary>>;
                           5 -> I + 0.5;
                           6 -> [I];
                           7 -> {Pid, Ref, I}
                       end,
                 {Key, [I, float(I), <<"v", B/binary>>]}
             end || I <- lists:seq(0, N - 1)],
    (maps:from_list(Pairs))#{true => <<"true">>, none => infinity,
                             false => maps:from_list([{J, -J} || J <- lists:seq(0, 39)]),
                             nan => {1, 2.5}}.

bm_flat(N) -> bm_flat(N, <<"k">>).

bm_flat(N, Prefix) ->
    maps:from_list([{<<Prefix/binary, (integer_to_binary(I))/binary>>, I}
                    || I <- lists:seq(0, N - 1)]).

%% @doc Results holding big maps (which travel in the external term format) equal what the
%% table gives: flat, nested in maps, lists and tuples, keys of every kind, as call and eval
%% results, stream batches and round trips.
-spec big_map_replies(ct_suite:ct_config()) -> term().
big_map_replies(_Config) ->
    ok = py:exec(?BIG_MAP_HELPERS),
    Pid = self(),
    Ref = make_ref(),
    Locals = #{bm_pid => Pid, bm_ref => Ref},
    {ok, Flat} = py:call('__main__', bm_flat, [100000]),
    Flat = bm_flat(100000),
    Kinds = bm_kinds(6000, Pid, Ref),
    {ok, Kinds} = py:eval(<<"bm_kinds(6000, bm_pid, bm_ref)">>, Locals),
    %% Smaller ones, some decoded by the caller (under 16 KiB of bytes).
    [{N, {ok, Small}} = {N, py:eval(<<"bm_kinds(n, bm_pid, bm_ref)">>, Locals#{n => N})}
     || N <- [0, 1, 7, 8, 33, 100, 1000], Small <- [bm_kinds(N, Pid, Ref)]],
    Nested = #{<<"kinds">> => Kinds,
               <<"list">> => [bm_flat(5000), #{<<"inner">> => bm_flat(5000, <<"i">>)}],
               <<"tuple">> => {bm_flat(40), 1.5, none},
               <<"small">> => #{1 => 2}},
    {ok, Nested} = py:eval(<<"{'kinds': bm_kinds(6000, bm_pid, bm_ref),"
                             " 'list': [bm_flat(5000), {'inner': bm_flat(5000, 'i')}],"
                             " 'tuple': (bm_flat(40), 1.5, None), 'small': {1: 2}}">>, Locals),
    %% Many maps that are each below the bound but above it together.
    Many = [maps:from_list([{I * 100 + J, J} || J <- lists:seq(0, 99)]) || I <- lists:seq(0, 199)],
    {ok, Many} = py:eval(<<"[{i * 100 + j: j for j in range(100)} for i in range(200)]">>),
    %% Round trips from Erlang (no list keys: a Python dict cannot have them; no `nan' key
    %% nor `infinity' value: they come back as binaries).
    RoundTrip = maps:filter(fun(K, _) -> not is_list(K) end, maps:without([nan, none], Kinds)),
    {ok, RoundTrip} = ident(RoundTrip),
    {ok, #{<<"a">> := Flat}} = py:call('__main__', ident_kw, [], #{a => Flat}),
    %% Stream batches: `{ok, Items}' then `{done, Items}', both in the external format.
    ok = py:exec(<<"def bm_gen(n):\n"
                   "    for i in range(n):\n"
                   "        yield bm_flat(5000, str(i))\n">>),
    Batches = [bm_flat(5000, integer_to_binary(I)) || I <- lists:seq(0, 2)],
    {ok, Batches} = py:stream('__main__', bm_gen, [3]),
    {ok, {generator, Gen}} = py:call('__main__', bm_gen, [2]),
    {ok, Items} = collect_stream(Gen, []),
    Items = [bm_flat(5000, integer_to_binary(I)) || I <- lists:seq(0, 1)].

collect_stream(Gen, Acc) ->
    case py:stream_next(Gen) of
        {ok, Items} -> collect_stream(Gen, [Items | Acc]);
        {done, Items} -> {ok, lists:append(lists:reverse([Items | Acc]))};
        {error, _} = Error -> Error
    end.

%% @doc A reply holding hash maps (maps of more than 32 keys) comes in the external term
%% format, `{ok_etf, Bytes}' (`{done_etf, Bytes}' for the last stream batch), which py_request
%% decodes; with opaque handles, `{ok_etf, Bytes, Handles}'. Other replies are built as terms.
%% Seen by tracing what this process receives.
-spec big_map_reply_encoding(ct_suite:ct_config()) -> term().
big_map_reply_encoding(_Config) ->
    ok = py:exec(?BIG_MAP_HELPERS),
    Code = fun(Expr) -> fun() -> py:eval(Expr) end end,
    {[ok_etf], {ok, M4096}} = reply_tags(Code(<<"bm_flat(4096)">>)),
    M4096 = bm_flat(4096),
    {[ok_etf], {ok, M33}} = reply_tags(Code(<<"bm_flat(33)">>)),
    M33 = bm_flat(33),
    {[ok_etf], {ok, M4097}} = reply_tags(Code(<<"bm_flat(4097)">>)),
    M4097 = bm_flat(4097),
    {[ok_etf], {ok, _}} = reply_tags(Code(<<"[bm_flat(2048), bm_flat(2048)]">>)),
    {[ok_etf], {ok, [_, _]}} = reply_tags(Code(<<"[bm_flat(2048), bm_flat(2049)]">>)),
    %% Flat maps (up to 32 keys) do not count, however many.
    {[ok], {ok, _}} = reply_tags(Code(<<"[bm_flat(32) for _ in range(1000)]">>)),
    {[ok], {ok, _}} = reply_tags(Code(<<"list(range(200000))">>)),
    %% A handle travels as its resource's reference, the resource beside the bytes.
    {[ok_etf], {ok, #{<<"obj">> := Handle} = WithHandle}} =
        reply_tags(Code(<<"{**bm_flat(40), 'obj': object()}">>)),
    true = is_reference(Handle),
    41 = map_size(WithHandle),
    {ok, true} = py:eval(<<"type(h) is object">>, #{h => Handle}),
    %% Colliding keys are the same error either way.
    {error, {'ValueError', Collide}} = py:eval(<<"{**bm_flat(40), 'a': 1, b'a': 2}">>),
    {error, {'ValueError', Collide}} = py:eval(<<"{'a': 1, b'a': 2}">>),
    ok = py:exec(<<"def bm_gen3():\n    yield bm_flat(100)\n">>),
    {ok, {generator, Gen3}} = py:call('__main__', bm_gen3, []),
    {[done_etf], {done, [M100]}} = reply_tags(fun() -> py:stream_next(Gen3) end),
    M100 = bm_flat(100),
    ok = py:exec(<<"def bm_gen2():\n    yield bm_flat(5000)\n">>),
    {ok, {generator, Gen}} = py:call('__main__', bm_gen2, []),
    {[done_etf], {done, [M5000]}} = reply_tags(fun() -> py:stream_next(Gen) end),
    M5000 = bm_flat(5000).

%% The tags of the replies this process receives while `Fun' runs, and what `Fun' returned.
reply_tags(Fun) ->
    received(Fun, fun({Ref, Reply}) when is_reference(Ref), is_tuple(Reply) ->
                          {true, element(1, Reply)};
                     ({Ref, ok}) when is_reference(Ref) ->
                          {true, ok};
                     (_) ->
                          false
                  end).

%% What `Pick' keeps (`{true, X}') of the messages this process receives while `Fun' runs, in
%% order, and what `Fun' returned: the receives are traced, so the messages stay unread.
received(Fun, Pick) ->
    Self = self(),
    Tracer = spawn_link(fun() -> collect_received(Self, Pick, []) end),
    1 = erlang:trace(Self, true, ['receive', {tracer, Tracer}]),
    Result = Fun(),
    1 = erlang:trace(Self, false, ['receive']),
    Tracer ! {stop, Self},
    receive {received, Tracer, Kept} -> {Kept, Result} end.

collect_received(Self, Pick, Kept) ->
    receive
        {trace, Self, 'receive', Message} ->
            case Pick(Message) of
                {true, X} -> collect_received(Self, Pick, [X | Kept]);
                false -> collect_received(Self, Pick, Kept)
            end;
        {stop, Self} ->
            Self ! {received, self(), lists:reverse(Kept)}
    end.

%% @doc Errors in values with big maps are the errors of the table: the same reasons as for
%% the same values with small maps.
-spec big_map_reply_errors(ct_suite:ct_config()) -> term().
big_map_reply_errors(_Config) ->
    ok = py:exec(?BIG_MAP_HELPERS),
    Same = fun(Small, Big) ->
                   {error, Reason} = py:eval(Small),
                   {error, Reason} = py:eval(Big),
                   Reason
           end,
    {'ValueError', _} = Same(<<"{'a': 1, b'a': 2}">>, <<"{**bm_flat(9000), 'a': 1, b'a': 2}">>),
    {'UnicodeEncodeError', _} =
        Same(<<"['\\ud800']">>, <<"[bm_flat(9000), {**bm_flat(9000), 'x': '\\ud800'}]">>),
    ok = py:exec(<<"def bm_deep(n, inner):\n"
                   "    x = inner\n"
                   "    for _ in range(n):\n"
                   "        x = [x]\n"
                   "    return x\n">>),
    {'ValueError', _} = Same(<<"bm_deep(2000, 1)">>, <<"bm_deep(2000, bm_flat(9000))">>),
    %% A failure in Python still gives the traceback of the exception.
    {error, {'ZeroDivisionError', _}} = py:eval(<<"[bm_flat(9000), 1 / 0]">>).

%% @doc Opaque handles travel in the external term format as the references of their
%% resources, which the reply carries beside the bytes until they are decoded: the handles of a
%% reply with big maps work, are the objects Python returned, and are kept alive by nothing
%% else (decoded in this process or on a dirty scheduler, with collections in between).
-spec big_map_reply_with_handles(ct_suite:ct_config()) -> term().
big_map_reply_with_handles(_Config) ->
    ok = py:exec(?BIG_MAP_HELPERS),
    ok = py:exec(<<"class BmThing:\n"
                   "    def __init__(self, n):\n        self.n = n\n"
                   "    def get(self):\n        return self.n\n">>),
    {[ok_etf], {ok, #{<<"thing">> := Thing} = M}} =
        reply_tags(fun() -> py:eval(<<"{**bm_flat(9000), 'thing': BmThing(7)}">>) end),
    9001 = map_size(M),
    Flat = bm_flat(9000),
    Flat = maps:remove(<<"thing">>, M),
    true = is_reference(Thing),
    {ok, 7} = py:eval(<<"t.get()">>, #{t => Thing}),
    %% Nested deeper, in a stream batch too.
    ok = py:exec(<<"def bm_things():\n    yield [bm_flat(5000), BmThing(8)]\n">>),
    {ok, [[Flat5000, Thing8]]} = py:stream('__main__', bm_things, []),
    Flat5000 = bm_flat(5000),
    {ok, 8} = py:eval(<<"t.get()">>, #{t => Thing8}),
    %% A handle is the object Python returned (each occurrence a handle of its own).
    ok = py:exec(<<"import builtins\nbuiltins.BM_KEPT = BmThing(9)\n">>),
    {ok, [#{}, Kept1, Kept2]} = py:eval(<<"[bm_flat(40), BM_KEPT, BM_KEPT]">>),
    {ok, true} = py:eval(<<"a is BM_KEPT and b is BM_KEPT">>, #{a => Kept1, b => Kept2}),
    %% Many handles in a small reply (decoded here) and a big one (decoded on a dirty
    %% scheduler), each the only reference to its object, with collections meanwhile.
    lists:foreach(
      fun(N) ->
              {ok, [#{}, Things]} =
                  py:eval(<<"[bm_flat(N), [BmThing(i) for i in range(200)]]">>, #{'N' => N}),
              true = erlang:garbage_collect(),
              {ok, Ns} = py:eval(<<"[t.get() for t in ts]">>, #{ts => Things}),
              Ns = lists:seq(0, 199)
      end,
      [40, 5000]).

%% @doc A result whose big map comes after other values is converted once, straight to the
%% external term format, when a short look at the value and its elements sees that map first;
%% deeper or further, the terms built up to it are dropped and the value converted again.
%% Counted by the calls of `tolist()' on a numpy-like object (the rules call it to convert one).
-spec big_map_reply_converted_once(ct_suite:ct_config()) -> term().
big_map_reply_converted_once(_Config) ->
    ok = py:exec(?BIG_MAP_HELPERS),
    ok = py:exec(<<"class BmCounted:\n"
                   "    calls = 0\n"
                   "    def tolist(self):\n"
                   "        BmCounted.calls += 1\n"
                   "        return 1\n"
                   "BmCounted.__module__ = 'numpy'\n"
                   "def bm_counted(n, tail):\n"
                   "    BmCounted.calls = 0\n"
                   "    return [{'c': BmCounted()} for _ in range(n)] + tail\n">>),
    Calls = fun(Expr) ->
                    {[Tag], {ok, Value}} = reply_tags(fun() -> py:eval(Expr) end),
                    {ok, N} = py:eval(<<"BmCounted.calls">>),
                    {Tag, N, Value}
            end,
    Ones = lists:duplicate(50, #{<<"c">> => 1}),
    M40 = bm_flat(40),
    {ok_etf, 50, [_ | _] = L1} = Calls(<<"bm_counted(50, [bm_flat(40)])">>),
    L1 = Ones ++ [M40],
    {ok_etf, 50, [_ | _] = L2} = Calls(<<"bm_counted(50, [bm_flat(40), object()])">>),
    [M40, Handle] = lists:nthtail(50, L2),
    true = is_reference(Handle),
    {ok_etf, 50, #{<<"rows">> := Ones, <<"big">> := M40}} =
        Calls(<<"{'rows': bm_counted(50, []), 'big': bm_flat(40)}">>),
    %% One level deeper: seen by the direct build, converted again.
    {ok_etf, 100, L3} = Calls(<<"bm_counted(50, [(bm_flat(40),)])">>),
    L3 = Ones ++ [{M40}],
    %% No big map: built as terms, once.
    {ok, 50, Ones} = Calls(<<"bm_counted(50, [])">>).

%% @doc Big dicts passed to `erlang.call' and `erlang.send' (built apart from the message, so
%% that the garbage of the map inserts stays out of it) arrive whole, handles included, from
%% an executor and from a thread of Python's own.
-spec big_maps_to_erlang_call_and_send(ct_suite:ct_config()) -> term().
big_maps_to_erlang_call_and_send(_Config) ->
    ok = py:exec(?BIG_MAP_HELPERS),
    Self = self(),
    ok = py:register_function(bm_echo, fun([X]) -> X end),
    ok = py:register_function(bm_keep, fun([X]) -> Self ! {bm_kept, X}, map_size(X) end),
    ok = py:exec(<<"import erlang, threading\n"
                   "class BmObj:\n    pass\n"
                   "def bm_call(n):\n    return erlang.call('bm_echo', bm_flat(n))\n"
                   "def bm_call_handle(n):\n"
                   "    return erlang.call('bm_keep', {**bm_flat(n), 'obj': BmObj()})\n"
                   "def bm_send(pid, n):\n    erlang.send(pid, ('bm_sent', bm_flat(n)))\n"
                   "def bm_thread_call(n):\n"
                   "    out = []\n"
                   "    t = threading.Thread(target=lambda: out.append(erlang.call('bm_echo', bm_flat(n))))\n"
                   "    t.start()\n    t.join()\n    return out[0]\n">>),
    Flat = bm_flat(9000),
    {ok, Flat} = py:call('__main__', bm_call, [9000]),
    {ok, Flat} = py:call('__main__', bm_thread_call, [9000]),
    {ok, #{<<"k1">> := 1}} = py:call('__main__', bm_call, [100]),
    {ok, 9001} = py:call('__main__', bm_call_handle, [9000]),
    Kept = receive {bm_kept, K} -> K after 5000 -> ct:fail(no_bm_kept) end,
    Flat = maps:remove(<<"obj">>, Kept),
    true = is_reference(maps:get(<<"obj">>, Kept)),
    {ok, <<"BmObj">>} = py:call('__main__', typename, [maps:get(<<"obj">>, Kept)]),
    {ok, none} = py:call('__main__', bm_send, [Self, 9000]),
    receive {<<"bm_sent">>, Flat} -> ok after 5000 -> ct:fail(no_bm_sent) end,
    ok = py:unregister_function(bm_echo),
    ok = py:unregister_function(bm_keep).

%% @doc The arguments of `erlang.call' holding a map of more than 32 keys come in the external
%% term format (`{etf, Bytes, Handles}' in the callback request, seen by tracing this process),
%% which py_callback decodes before it calls the function: the function gets the same terms,
%% handles included, from an executor and from a thread of Python's own; errors are those of
%% small maps; arguments with no big map come as a list.
-spec big_map_callback_arguments(ct_suite:ct_config()) -> term().
big_map_callback_arguments(_Config) ->
    ok = py:exec(?BIG_MAP_HELPERS),
    Self = self(),
    ok = py:register_function(bm_args, fun(Args) -> Self ! {bm_args, Args}, length(Args) end),
    ok = py:exec(<<"import erlang, threading\n"
                   "class BmArg:\n    pass\n"
                   "BM_ARG = BmArg()\n"
                   "def bm_thread(*args):\n"
                   "    out = []\n"
                   "    t = threading.Thread(target=lambda: out.append(erlang.call('bm_args', *args)))\n"
                   "    t.start()\n    t.join()\n    return out[0]\n">>),
    Got = fun() -> receive {bm_args, A} -> A after 5000 -> ct:fail(no_bm_args) end end,
    M40 = bm_flat(40),
    Smalls = [#{<<"a">> => I} || I <- lists:seq(0, 49)],
    %% From an executor: the request's arguments, as this process received them.
    {[{etf, _, []}], {ok, 2}} =
        callback_args(fun() -> py:eval(<<"erlang.call('bm_args', 1, bm_flat(40))">>) end),
    [1, M40] = Got(),
    {[{etf, _, [_]}], {ok, 2}} =
        callback_args(fun() -> py:eval(<<"erlang.call('bm_args', BM_ARG, [bm_flat(40)])">>) end),
    [Handle, [M40]] = Got(),
    {ok, true} = py:eval(<<"h is BM_ARG">>, #{h => Handle}),
    %% A big map the short look does not see: found by the build, same bytes.
    {[{etf, _, []}], {ok, 1}} =
        callback_args(fun() ->
                              py:eval(<<"erlang.call('bm_args', [{'a': i} for i in range(50)] + "
                                        "[[bm_flat(40)]])">>)
                      end),
    [L] = Got(),
    L = Smalls ++ [[M40]],
    {[L2], {ok, 1}} = callback_args(fun() -> py:eval(<<"erlang.call('bm_args', [1, {'a': 2}])">>) end),
    [[1, #{<<"a">> := 2}]] = L2,
    [[1, #{<<"a">> := 2}]] = Got(),
    {[[]], {ok, 0}} = callback_args(fun() -> py:eval(<<"erlang.call('bm_args')">>) end),
    [] = Got(),
    %% From a thread of Python's own (through the router), a big one decoded on a dirty
    %% scheduler.
    {ok, 2} = py:eval(<<"bm_thread(BM_ARG, bm_flat(9000))">>),
    [Handle2, M9000] = Got(),
    M9000 = bm_flat(9000),
    {ok, true} = py:eval(<<"h is BM_ARG">>, #{h => Handle2}),
    %% Errors are the errors of small maps, raised in Python; the function is not called.
    {error, {'ValueError', Collide}} =
        py:eval(<<"erlang.call('bm_args', {**bm_flat(40), 'a': 1, b'a': 2})">>),
    {error, {'ValueError', Collide}} = py:eval(<<"erlang.call('bm_args', {'a': 1, b'a': 2})">>),
    {error, {'UnicodeEncodeError', _}} =
        py:eval(<<"erlang.call('bm_args', {**bm_flat(40), 'x': '\\ud800'})">>),
    receive {bm_args, Unexpected} -> ct:fail({called, Unexpected}) after 0 -> ok end,
    ok = py:unregister_function(bm_args).

%% The arguments of the callback requests this process receives while `Fun' runs (as they come:
%% a list, or `{etf, Bytes, Handles}'), and what `Fun' returned.
callback_args(Fun) ->
    received(Fun, fun({_, {'$py_callback', _, _, Args}}) -> {true, Args};
                     (_) -> false
                  end).

%% @doc `py_nif:job_decode_reply/1' decodes one whole term in the external format, with no
%% new atoms; anything else is `badarg'.
-spec decode_reply_bad_input(ct_suite:ct_config()) -> term().
decode_reply_bad_input(_Config) ->
    Term = #{<<"a">> => [1, 2.5, {x, self()}], 7 => bm_flat(100)},
    Term = py_nif:job_decode_reply(term_to_binary(Term)),
    Bad = [<<>>, <<131>>, <<131, 1, 2>>, <<(term_to_binary(a))/binary, 0>>,
           %% An atom that does not exist.
           <<131, 119, 13, "bm_no_such_at">>,
           binary:part(term_to_binary(Term), 0, 40)],
    [{'EXIT', {badarg, _}} = catch py_nif:job_decode_reply(B) || B <- Bad],
    {'EXIT', {badarg, _}} = catch py_nif:job_decode_reply(not_a_binary),
    ok.

%% @doc Kwargs values follow the same table as positional arguments.
-spec kwargs_values(ct_suite:ct_config()) -> term().
kwargs_values(_Config) ->
    V = #{list => [1, 2.5, <<"s">>], tuple => {none, true}, big => 1 bsl 100,
          bytes => <<255>>, pid => self()},
    Expected = maps:from_list([{atom_to_binary(K, utf8), X} || {K, X} <- maps:to_list(V)]),
    {ok, Expected} = py:call('__main__', ident_kw, [], V),
    {ok, #{<<"a">> := none}} = py:call('__main__', ident_kw, [], #{a => undefined}).

%%% ---------------------------------------------------------------- property

%% @doc Keys distinct in Erlang that become the same Python dict key (an atom and a binary of
%% the same name; 1, 1.0 and true) give `{error, {'ValueError', _}}' instead of losing an
%% entry, as dict keys that become one term do the other way.
-spec map_keys_colliding_in_python(ct_suite:ct_config()) -> term().
map_keys_colliding_in_python(_Config) ->
    [{error, {'ValueError', _}} = ident(M)
     || M <- [#{a => 1, <<"a">> => 2}, #{1 => x, 1.0 => y}, #{1 => x, true => y},
              [#{nested => #{0 => a, false => b}}]]],
    {error, {'ValueError', _}} = py:eval(<<"m">>, #{m => #{a => 1, <<"a">> => 2}}),
    {error, {'ValueError', _}} = py:call(builtins, dict, [], #{a => 1, <<"a">> => 2}),
    {ok, #{<<"a">> := 1, 2 := 2}} = ident(#{a => 1, 2 => 2}).

%% @doc A value nests as deep through eval's locals or keyword arguments as through a
%% positional argument: the map around them is not a level.
-spec nesting_bound_same_for_call_and_eval(ct_suite:ct_config()) -> term().
nesting_bound_same_for_call_and_eval(_Config) ->
    Deep = fun(N) -> lists:foldl(fun(_, Acc) -> [Acc] end, 0, lists:seq(1, N)) end,
    {ok, 1} = py:call(builtins, len, [Deep(1000)]),
    {ok, 1} = py:eval(<<"len(x)">>, #{x => Deep(1000)}),
    {ok, 1} = py:call('__main__', ident_kw_len, [], #{x => Deep(1000)}),
    {error, {'ValueError', _}} = py:call(builtins, len, [Deep(1001)]),
    {error, {'ValueError', _}} = py:eval(<<"len(x)">>, #{x => Deep(1001)}),
    {error, {'ValueError', _}} = py:call('__main__', ident_kw_len, [], #{x => Deep(1001)}).

%% @doc 500 random nested terms (seed in the log) round-trip through ident as normalised.
-spec random_round_trip(ct_suite:ct_config()) -> term().
random_round_trip(_Config) ->
    ct:pal("random_round_trip seed: ~p (exsss), ~p iterations", [?SEED, ?ITERATIONS]),
    _ = rand:seed(exsss, ?SEED),
    lists:foreach(
      fun(I) ->
              Term = gen_term(0),
              Expected = py_test_util:normalise(Term),
              case ident(Term) of
                  {ok, Got} when Got =:= Expected ->
                      ok;
                  Other ->
                      ct:fail({round_trip_mismatch, #{iteration => I, seed => ?SEED,
                                                      term => Term, expected => Expected,
                                                      got => Other}})
              end
      end, lists:seq(1, ?ITERATIONS)).

gen_term(Depth) when Depth >= 4 ->
    gen_leaf();
gen_term(Depth) ->
    case rand:uniform(10) of
        N when N =< 5 -> gen_leaf();
        6 -> [gen_term(Depth + 1) || _ <- lists:seq(1, rand:uniform(5) - 1)];
        7 -> list_to_tuple([gen_term(Depth + 1) || _ <- lists:seq(1, rand:uniform(5) - 1)]);
        8 -> maps:from_list([{gen_key(), gen_term(Depth + 1)}
                             || _ <- lists:seq(1, rand:uniform(5) - 1)]);
        9 -> [gen_leaf(), gen_term(Depth + 1)];
        10 -> {gen_key(), gen_term(Depth + 1)}
    end.

gen_leaf() ->
    case rand:uniform(14) of
        1 -> rand:uniform(2001) - 1001;
        2 -> rand:uniform(1 bsl 64) - (1 bsl 63) - 1;
        3 -> sign() * rand:uniform(1 bsl (64 + rand:uniform(300)));
        4 -> (rand:uniform() - 0.5) * math:pow(10, rand:uniform(600) - 300);
        5 -> random_bits_float();
        6 -> gen_utf8();
        7 -> list_to_binary([rand:uniform(256) - 1 || _ <- lists:seq(1, rand:uniform(8))]);
        8 -> true;
        9 -> false;
        10 -> none;
        11 -> lists:nth(rand:uniform(6), [nil, undefined, hello, 'é', '日本', 'with space']);
        12 -> self();
        13 -> make_ref();
        14 -> lists:nth(rand:uniform(4), [<<>>, [], {}, #{}])
    end.

%% Keys never collide after conversion: binaries start with "k", atoms do not, integers
%% avoid 0 and 1 (equal to False/True in a dict), tuples hold only those.
gen_key() ->
    case rand:uniform(6) of
        1 -> <<"k", (gen_utf8())/binary>>;
        2 -> lists:nth(rand:uniform(3), [alpha, beta, 'ключ']);
        3 -> sign() * (rand:uniform(1000) + 1);
        4 -> sign() * rand:uniform(1 bsl 100) + (1 bsl 101);
        5 -> {rand:uniform(100) + 1, <<"k", (gen_utf8())/binary>>};
        6 -> self()
    end.

sign() ->
    case rand:uniform(2) of
        1 -> 1;
        2 -> -1
    end.

random_bits_float() ->
    case <<(rand:uniform(1 bsl 64) - 1):64>> of
        <<F:64/float>> -> F;
        _ -> 0.0   % nan and infinity bit patterns do not match a float segment
    end.

gen_utf8() ->
    Ranges = [{32, 126}, {160, 255}, {16#400, 16#4ff}, {16#4e00, 16#9fff},
              {16#1f300, 16#1f64f}, {0, 31}],
    Chars = [begin
                 {Lo, Hi} = lists:nth(rand:uniform(length(Ranges)), Ranges),
                 Lo + rand:uniform(Hi - Lo + 1) - 1
             end || _ <- lists:seq(1, rand:uniform(9) - 1)],
    unicode:characters_to_binary(Chars).
