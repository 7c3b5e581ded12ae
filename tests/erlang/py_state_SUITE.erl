%% @doc Shared state: py_state and py:state_*, erlang.state_* from Python, both directions,
%% atomic counters under concurrency, the key bound, bad inputs and the table's lifetime.
-module(py_state_SUITE).

-include_lib("common_test/include/ct.hrl").

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).

-export([
    erlang_fetch_store_remove/1,
    erlang_keys_and_clear/1,
    erlang_incr_decr/1,
    erlang_any_term_keys/1,
    py_state_module_api/1,
    table_owned_by_supervised_process/1,
    init_tab_and_register_callbacks_idempotent/1,
    empty_keys_is_empty_list/1,
    erlang_to_python/1,
    python_to_erlang/1,
    python_call_forms/1,
    python_get_default/1,
    python_delete_keys_clear/1,
    python_incr_decr/1,
    python_incr_bignum/1,
    counters_100_processes/1,
    counters_100_processes_new_key/1,
    counters_8_python_threads/1,
    counters_python_and_erlang_together/1,
    incr_on_non_integer_value/1,
    incr_bad_amount/1,
    unknown_keys/1,
    python_bad_arguments/1,
    bound_store_and_incr/1,
    bound_python_raises/1,
    bound_exact_under_concurrency/1,
    state_survives_across_calls/1,
    cleared_on_restart/1,
    not_running_not_started/1,
    not_running_raises_badarg/1,
    foreign_table_blocks_start/1
]).

-define(MAX_ENV, state_max_keys).

-spec all() -> [atom()].
all() -> py_test_util:cases(?MODULE).

-spec suite() -> [tuple()].
suite() -> [{timetrap, {minutes, 3}}].

-spec init_per_suite(ct_suite:ct_config()) -> ct_suite:ct_config().
init_per_suite(Config) ->
    ok = py_test_util:start(),
    Config.

-spec end_per_suite(ct_suite:ct_config()) -> ok.
end_per_suite(_Config) ->
    ok = py_test_util:stop().

-spec init_per_testcase(atom(), ct_suite:ct_config()) -> ct_suite:ct_config().
init_per_testcase(_Case, Config) ->
    ok = py_test_util:start(),
    ok = py:state_clear(),
    py_test_util:flush(),
    Config.

-spec end_per_testcase(atom(), ct_suite:ct_config()) -> ok.
end_per_testcase(Case, _Config) when Case =:= bound_store_and_incr;
                                     Case =:= bound_python_raises;
                                     Case =:= bound_exact_under_concurrency ->
    ok = application:unset_env(erlang_python, ?MAX_ENV),
    ok = py_test_util:restart();
end_per_testcase(_Case, _Config) ->
    ok.

%%% ---------------------------------------------------------------- Erlang API

%% @doc state_store/2 then state_fetch/1 gives the value; state_remove/1 removes it.
-spec erlang_fetch_store_remove(ct_suite:ct_config()) -> term().
erlang_fetch_store_remove(_Config) ->
    {error, not_found} = py:state_fetch(<<"k">>),
    ok = py:state_store(<<"k">>, #{a => [1, 2.5, <<"x">>]}),
    {ok, #{a := [1, 2.5, <<"x">>]}} = py:state_fetch(<<"k">>),
    ok = py:state_store(<<"k">>, replaced),
    {ok, replaced} = py:state_fetch(<<"k">>),
    ok = py:state_remove(<<"k">>),
    {error, not_found} = py:state_fetch(<<"k">>),
    ok = py:state_remove(<<"k">>).

%% @doc state_keys/0 lists every key; state_clear/0 removes them all.
-spec erlang_keys_and_clear(ct_suite:ct_config()) -> term().
erlang_keys_and_clear(_Config) ->
    [] = py:state_keys(),
    Keys = [<<"a">>, <<"b">>, <<"c">>],
    [ok = py:state_store(K, 1) || K <- Keys],
    Keys = lists:sort(py:state_keys()),
    ok = py:state_clear(),
    [] = py:state_keys(),
    ok = py:state_clear(),
    %% The key count follows clear: the keys can be created again.
    [ok = py:state_store(K, 2) || K <- Keys],
    3 = length(py:state_keys()).

%% @doc state_incr/1,2 and state_decr/1,2: a missing key counts from 0.
-spec erlang_incr_decr(ct_suite:ct_config()) -> term().
erlang_incr_decr(_Config) ->
    1 = py:state_incr(<<"n">>),
    11 = py:state_incr(<<"n">>, 10),
    10 = py:state_decr(<<"n">>),
    5 = py:state_decr(<<"n">>, 5),
    -2 = py:state_incr(<<"n">>, -7),
    {ok, -2} = py:state_fetch(<<"n">>),
    -1 = py:state_decr(<<"fresh">>),
    -3 = py:state_decr(<<"fresh2">>, 3),
    7 = py:state_incr(<<"fresh3">>, 7),
    Big = 1 bsl 80,
    Big = py:state_incr(<<"big">>, Big),
    0 = py:state_decr(<<"big">>, Big),
    ok = py:state_store(<<"set">>, 41),
    42 = py:state_incr(<<"set">>).

%% @doc Erlang may use any term as a key; only binary keys are shared with Python's str keys.
-spec erlang_any_term_keys(ct_suite:ct_config()) -> term().
erlang_any_term_keys(_Config) ->
    ok = py:state_store({user, 1}, alice),
    ok = py:state_store(atom_key, 1),
    ok = py:state_store("list", 2),
    {ok, alice} = py:state_fetch({user, 1}),
    1 = py:state_incr({counter, make_ref()}),
    {ok, none} = py:eval(<<"erlang.state_get('atom_key')">>),
    ok = py:state_store(<<"atom_key">>, 3),
    {ok, 3} = py:eval(<<"erlang.state_get('atom_key')">>).

%% @doc py_state's own exports (1.6 API) behave as the py:state_* wrappers.
-spec py_state_module_api(ct_suite:ct_config()) -> term().
py_state_module_api(_Config) ->
    [] = py_state:keys(),
    ok = py_state:store(<<"m">>, v),
    {ok, v} = py_state:fetch(<<"m">>),
    [<<"m">>] = py_state:keys(),
    ok = py_state:remove(<<"m">>),
    {error, not_found} = py_state:fetch(<<"m">>),
    1 = py_state:incr(<<"c">>),
    4 = py_state:incr(<<"c">>, 3),
    3 = py_state:decr(<<"c">>),
    1 = py_state:decr(<<"c">>, 2),
    ok = py_state:clear(),
    [] = py_state:keys().

%% @doc The table is the named public set `py_state', owned by the supervised `py_state'.
-spec table_owned_by_supervised_process(ct_suite:ct_config()) -> term().
table_owned_by_supervised_process(_Config) ->
    Owner = whereis(py_state),
    true = is_pid(Owner),
    Owner = ets:info(py_state, owner),
    set = ets:info(py_state, type),
    public = ets:info(py_state, protection),
    true = ets:info(py_state, named_table),
    true = ets:info(py_state, read_concurrency),
    true = ets:info(py_state, write_concurrency),
    {py_state, Owner, worker, [py_state]} =
        lists:keyfind(py_state, 1, supervisor:which_children(erlang_python_sup)),
    %% Started after py_callback (whose registry it fills) and before py_pool.
    {ok, {#{strategy := rest_for_one}, Specs}} = erlang_python_sup:init([]),
    Ids = [Id || #{id := Id} <- Specs],
    true = index(py_callback, Ids) < index(py_state, Ids),
    true = index(py_state, Ids) < index(py_pool, Ids).

%% @doc init_tab/0 and register_callbacks/0 are harmless while the application runs.
-spec init_tab_and_register_callbacks_idempotent(ct_suite:ct_config()) -> term().
init_tab_and_register_callbacks_idempotent(_Config) ->
    ok = py:state_store(<<"keep">>, 1),
    ok = py_state:init_tab(),
    ok = py_state:init_tab(),
    ok = py_state:register_callbacks(),
    ok = py_state:register_callbacks(),
    {ok, 1} = py:state_fetch(<<"keep">>),
    {ok, 1} = py:eval(<<"erlang.state_get('keep')">>),
    Owner = whereis(py_state),
    Owner = ets:info(py_state, owner).

%%% ---------------------------------------------------------------- Erlang <-> Python

%% @doc The keys of an empty store are [] on both sides (1.6 gave '' in Python).
-spec empty_keys_is_empty_list(ct_suite:ct_config()) -> term().
empty_keys_is_empty_list(_Config) ->
    [] = py:state_keys(),
    [] = py_state:keys(),
    {ok, []} = py:eval(<<"erlang.state_keys()">>),
    {ok, true} = py:eval(<<"erlang.state_keys() == [] and type(erlang.state_keys()) is list">>),
    {ok, []} = py:eval(<<"erlang.call('state_keys')">>).

%% @doc Values stored from Erlang under binary keys are read in Python by str keys.
-spec erlang_to_python(ct_suite:ct_config()) -> term().
erlang_to_python(_Config) ->
    ok = py:state_store(<<"int">>, 42),
    ok = py:state_store(<<"float">>, 2.5),
    ok = py:state_store(<<"str">>, <<"héllo"/utf8>>),
    ok = py:state_store(<<"map">>, #{<<"a">> => [1, 2], b => {x, 3}}),
    ok = py:state_store(<<"list">>, []),
    ok = py:state_store(<<"bool">>, true),
    ok = py:state_store(<<"none">>, none),
    ok = py:state_store(<<"pid">>, self()),
    {ok, 42} = py:eval(<<"erlang.state_get('int')">>),
    {ok, true} = py:eval(<<"erlang.state_get('float') == 2.5">>),
    {ok, true} = py:eval(<<"erlang.state_get('str') == 'h\\u00e9llo'">>),
    {ok, true} = py:eval(<<"erlang.state_get('map') == {'a': [1, 2], 'b': ('x', 3)}">>),
    {ok, true} = py:eval(<<"erlang.state_get('list') == []">>),
    {ok, true} = py:eval(<<"erlang.state_get('bool') is True">>),
    {ok, true} = py:eval(<<"erlang.state_get('none') is None">>),
    {ok, true} = py:eval(<<"isinstance(erlang.state_get('pid'), erlang.Pid)">>),
    Self = self(),
    {ok, Self} = py:eval(<<"erlang.state_get('pid')">>),
    {ok, Keys} = py:eval(<<"sorted(erlang.state_keys())">>),
    [<<"bool">>, <<"float">>, <<"int">>, <<"list">>, <<"map">>, <<"none">>, <<"pid">>,
     <<"str">>] = Keys.

%% @doc Values stored from Python are read in Erlang under binary keys, and back in Python.
-spec python_to_erlang(ct_suite:ct_config()) -> term().
python_to_erlang(_Config) ->
    ok = define([
        "def ep_st_store():",
        "    erlang.state_set('config', {'debug': True, 'ratio': 0.5, 'tags': ['a', 'b']})",
        "    erlang.state_set('tuple', (1, 'two', None))",
        "    erlang.state_set('bytes', b'\\xff\\x00')",
        "    erlang.state_set('big', 2 ** 100)",
        "    return None"
    ]),
    {ok, none} = py:call('__main__', ep_st_store, []),
    {ok, #{<<"debug">> := true, <<"ratio">> := 0.5, <<"tags">> := [<<"a">>, <<"b">>]}} =
        py:state_fetch(<<"config">>),
    {ok, {1, <<"two">>, none}} = py:state_fetch(<<"tuple">>),
    {ok, <<255, 0>>} = py:state_fetch(<<"bytes">>),
    Big = 1 bsl 100,
    {ok, Big} = py:state_fetch(<<"big">>),
    {ok, true} = py:eval(<<"erlang.state_get('bytes') == b'\\xff\\x00'">>),
    {ok, true} = py:eval(<<"erlang.state_get('big') == 2 ** 100">>),
    %% And Erlang updates what Python stored.
    ok = py:state_store(<<"config">>, updated),
    {ok, <<"updated">>} = py:eval(<<"erlang.state_get('config')">>).

%% @doc Every Python form works: erlang.state_*, `from erlang import', erlang.call, Function.
-spec python_call_forms(ct_suite:ct_config()) -> term().
python_call_forms(_Config) ->
    ok = define([
        "def ep_st_forms():",
        "    from erlang import state_get, state_set, state_incr",
        "    import erlang.state",
        "    state_set('f', 1)",
        "    erlang.state_set('g', 2)",
        "    erlang.call('state_set', 'h', 3)",
        "    erlang.Function('state_set')('i', 4)",
        "    erlang.state.state_set('j', 5)",
        "    return (state_get('f'), erlang.state_get('g'), erlang.call('state_get', 'h'),",
        "            erlang.Function('state_get')('i'), erlang.state.state_get('j'),",
        "            state_incr('f'), erlang.call('state_incr', 'g', 5))"
    ]),
    {ok, {1, 2, 3, 4, 5, 2, 7}} = py:call('__main__', ep_st_forms, []),
    {ok, true} = py:eval(<<"all(hasattr(erlang, n) for n in ('state_get', 'state_set', "
                           "'state_delete', 'state_keys', 'state_clear', 'state_incr', "
                           "'state_decr'))">>),
    {ok, true} = py:eval(<<"all(n in erlang.__all__ for n in ('state_get', 'state_set', "
                           "'state_delete', 'state_keys', 'state_clear', 'state_incr', "
                           "'state_decr'))">>),
    {ok, 7} = py:call(erlang, state_get, [<<"g">>]).

%% @doc state_get(key, default) gives default only when the key is missing (a stored None
%% stays None).
-spec python_get_default(ct_suite:ct_config()) -> term().
python_get_default(_Config) ->
    {ok, none} = py:eval(<<"erlang.state_get('missing')">>),
    {ok, 5} = py:eval(<<"erlang.state_get('missing', 5)">>),
    {ok, [1]} = py:eval(<<"erlang.state_get('missing', default=[1])">>),
    {ok, true} = py:eval(<<"erlang.state_get('missing', {'a': 1}) == {'a': 1}">>),
    ok = py:state_store(<<"nothing">>, none),
    {ok, none} = py:eval(<<"erlang.state_get('nothing', 5)">>),
    ok = py:state_store(<<"zero">>, 0),
    {ok, 0} = py:eval(<<"erlang.state_get('zero', 5)">>).

%% @doc state_delete, state_keys and state_clear from Python; keys come back as str.
-spec python_delete_keys_clear(ct_suite:ct_config()) -> term().
python_delete_keys_clear(_Config) ->
    ok = define([
        "def ep_st_dkc():",
        "    for k in ('x', 'y', 'z'):",
        "        erlang.state_set(k, k.upper())",
        "    keys = sorted(erlang.state_keys())",
        "    types = {type(k).__name__ for k in erlang.state_keys()}",
        "    erlang.state_delete('y')",
        "    erlang.state_delete('never-there')",
        "    after_delete = sorted(erlang.state_keys())",
        "    erlang.state_clear()",
        "    return (keys, sorted(types), after_delete, erlang.state_keys())"
    ]),
    {ok, {[<<"x">>, <<"y">>, <<"z">>], [<<"str">>], [<<"x">>, <<"z">>], []}} =
        py:call('__main__', ep_st_dkc, []),
    [] = py:state_keys().

%% @doc state_incr/state_decr from Python, with and without n; shared with Erlang's counters.
-spec python_incr_decr(ct_suite:ct_config()) -> term().
python_incr_decr(_Config) ->
    {ok, {1, 11, 10, 5, -1}} =
        py:eval(<<"(erlang.state_incr('pc'), erlang.state_incr('pc', 10), "
                  "erlang.state_decr('pc'), erlang.state_decr('pc', n=5), "
                  "erlang.state_decr('pc_new'))">>),
    6 = py:state_incr(<<"pc">>),
    {ok, 8} = py:eval(<<"erlang.state_incr('pc', 2)">>),
    {ok, 8} = py:state_fetch(<<"pc">>).

%% @doc Counters are arbitrary-precision integers from Python too.
-spec python_incr_bignum(ct_suite:ct_config()) -> term().
python_incr_bignum(_Config) ->
    {ok, true} = py:eval(<<"erlang.state_incr('pb', 2 ** 70) == 2 ** 70">>),
    {ok, true} = py:eval(<<"erlang.state_incr('pb', 2 ** 70) == 2 ** 71">>),
    Expected = 1 bsl 71,
    {ok, Expected} = py:state_fetch(<<"pb">>).

%%% ---------------------------------------------------------------- atomic counters

%% @doc 100 processes x 100 state_incr on one existing key: exactly 10000.
-spec counters_100_processes(ct_suite:ct_config()) -> term().
counters_100_processes(_Config) ->
    ok = py:state_store(<<"hits">>, 0),
    ok = all_distinct(incr_concurrently(<<"hits">>, 100, 100)),
    {ok, 10000} = py:state_fetch(<<"hits">>).

%% @doc 100 processes x 100 incr on a key that does not exist yet: the creation races too.
-spec counters_100_processes_new_key(ct_suite:ct_config()) -> term().
counters_100_processes_new_key(_Config) ->
    [begin
         Key = {race, Round},
         ok = all_distinct(incr_concurrently(Key, 100, 100)),
         {ok, 10000} = py:state_fetch(Key)
     end || Round <- lists:seq(1, 5)],
    5 = length(py:state_keys()).

%% @doc 8 Python threads (ThreadPoolExecutor) x 1000 state_incr: exactly 8000; the results
%% each thread saw are distinct.
-spec counters_8_python_threads(ct_suite:ct_config()) -> term().
counters_8_python_threads(_Config) ->
    ok = define([
        "from concurrent.futures import ThreadPoolExecutor",
        "def ep_st_work(key):",
        "    return [erlang.state_incr(key) for _ in range(1000)]",
        "def ep_st_threads(key):",
        "    with ThreadPoolExecutor(max_workers=8) as ex:",
        "        seen = [v for vs in ex.map(ep_st_work, [key] * 8) for v in vs]",
        "    return (len(seen), len(set(seen)), min(seen), max(seen))"
    ]),
    {ok, {8000, 8000, 1, 8000}} = py:call('__main__', ep_st_threads, [<<"py_hits">>], #{},
                                          120000),
    {ok, 8000} = py:state_fetch(<<"py_hits">>).

%% @doc Python threads and Erlang processes increment the same key at once: no lost update.
-spec counters_python_and_erlang_together(ct_suite:ct_config()) -> term().
counters_python_and_erlang_together(_Config) ->
    ok = define([
        "from concurrent.futures import ThreadPoolExecutor",
        "def ep_st_mixed(key):",
        "    def work(_):",
        "        for _ in range(500):",
        "            erlang.state_incr(key, 2)",
        "            erlang.state_decr(key)",
        "    with ThreadPoolExecutor(max_workers=8) as ex:",
        "        list(ex.map(work, range(8)))",
        "    return None"
    ]),
    Python = py_test_util:spawn_call(
               fun() -> py:call('__main__', ep_st_mixed, [<<"mixed">>], #{}, 120000) end),
    _ = incr_concurrently(<<"mixed">>, 50, 100),
    {ok, none} = py_test_util:await_call(Python, 120000),
    %% Python: 8 x 500 x (+2 - 1); Erlang: 50 x 100.
    {ok, 9000} = py:state_fetch(<<"mixed">>).

%%% ---------------------------------------------------------------- bad inputs

%% @doc Counting on a value that is not an integer raises badarg (Erlang) or ErlangError
%% (Python), and leaves the value alone.
-spec incr_on_non_integer_value(ct_suite:ct_config()) -> term().
incr_on_non_integer_value(_Config) ->
    ok = py:state_store(<<"bin">>, <<"text">>),
    ok = py:state_store(<<"float">>, 1.5),
    badarg = py_test_util:expect_raise(fun() -> py:state_incr(<<"bin">>) end, [badarg]),
    badarg = py_test_util:expect_raise(fun() -> py:state_decr(<<"bin">>, 2) end, [badarg]),
    badarg = py_test_util:expect_raise(fun() -> py_state:incr(<<"float">>, 1) end, [badarg]),
    {ok, <<"text">>} = py:state_fetch(<<"bin">>),
    {ok, 1.5} = py:state_fetch(<<"float">>),
    ok = define([
        "def ep_st_catch(f, *args):",
        "    try:",
        "        return ('ok', f(*args))",
        "    except erlang.ErlangError as e:",
        "        return ('ErlangError', e.erlang_class, e.reason)",
        "    except Exception as e:",
        "        return (type(e).__name__, str(e))"
    ]),
    {ok, {<<"ErlangError">>, <<"error">>, <<"badarg">>}} =
        py:eval(<<"ep_st_catch(erlang.state_incr, 'bin')">>),
    {ok, {<<"ErlangError">>, <<"error">>, <<"badarg">>}} =
        py:eval(<<"ep_st_catch(erlang.state_decr, 'float', 3)">>),
    {ok, <<"text">>} = py:state_fetch(<<"bin">>).

%% @doc A non-integer amount: function_clause in Erlang, TypeError in Python.
-spec incr_bad_amount(ct_suite:ct_config()) -> term().
incr_bad_amount(_Config) ->
    function_clause =
        py_test_util:expect_raise(fun() -> py:state_incr(<<"a">>, 1.0) end, [function_clause]),
    function_clause =
        py_test_util:expect_raise(fun() -> py:state_decr(<<"a">>, x) end, [function_clause]),
    {error, not_found} = py:state_fetch(<<"a">>),
    {error, {'TypeError', <<"n must be an int, not float">>}} =
        py:eval(<<"erlang.state_incr('a', 1.5)">>),
    {error, {'TypeError', <<"n must be an int, not bool">>}} =
        py:eval(<<"erlang.state_decr('a', True)">>),
    {error, {'ErlangError', <<"error: function_clause">>}} =
        py:eval(<<"erlang.call('state_incr', 'a', 1.5)">>),
    {error, not_found} = py:state_fetch(<<"a">>).

%% @doc Unknown keys: fetch gives not_found, remove is ok; Python gets None and no error.
-spec unknown_keys(ct_suite:ct_config()) -> term().
unknown_keys(_Config) ->
    {error, not_found} = py:state_fetch(<<"nope">>),
    {error, not_found} = py:state_fetch(nope),
    ok = py:state_remove(<<"nope">>),
    {ok, none} = py:eval(<<"erlang.state_get('nope')">>),
    {ok, none} = py:eval(<<"erlang.state_delete('nope')">>),
    [] = py:state_keys().

%% @doc Wrong Python arities raise (TypeError from the wrapper, ErlangError through call).
-spec python_bad_arguments(ct_suite:ct_config()) -> term().
python_bad_arguments(_Config) ->
    {error, {'TypeError', _}} = py:eval(<<"erlang.state_set('only_key')">>),
    {error, {'TypeError', _}} = py:eval(<<"erlang.state_get()">>),
    {error, {'ErlangError', <<"error: function_clause">>}} =
        py:eval(<<"erlang.call('state_set', 'only_key')">>),
    {error, {'ErlangError', <<"error: function_clause">>}} =
        py:eval(<<"erlang.call('state_keys', 'extra')">>),
    [] = py:state_keys().

%%% ---------------------------------------------------------------- the key bound

%% @doc Past state_max_keys, creating a key gives {error, {state_full, Max}}; existing keys are
%% still updated, and removing keys makes room again.
-spec bound_store_and_incr(ct_suite:ct_config()) -> term().
bound_store_and_incr(_Config) ->
    ok = restart_with_max(3),
    ok = py:state_store(<<"a">>, 1),
    ok = py:state_store(<<"b">>, 2),
    1 = py:state_incr(<<"c">>),
    {error, {state_full, 3}} = py:state_store(<<"d">>, 4),
    {error, {state_full, 3}} = py:state_incr(<<"d">>),
    {error, {state_full, 3}} = py:state_decr(<<"d">>, 2),
    {error, {state_full, 3}} = py_state:store(<<"d">>, 4),
    {error, not_found} = py:state_fetch(<<"d">>),
    ok = py:state_store(<<"a">>, updated),
    {ok, updated} = py:state_fetch(<<"a">>),
    2 = py:state_incr(<<"c">>),
    ok = py:state_remove(<<"a">>),
    ok = py:state_remove(<<"a">>),
    ok = py:state_store(<<"d">>, 4),
    {error, {state_full, 3}} = py:state_store(<<"e">>, 5),
    ok = py:state_clear(),
    [ok = py:state_store(K, 0) || K <- [<<"x">>, <<"y">>, <<"z">>]],
    {error, {state_full, 3}} = py:state_store(<<"w">>, 0).

%% @doc Past the bound, Python's state_set/state_incr of a new key raise ErlangError.
-spec bound_python_raises(ct_suite:ct_config()) -> term().
bound_python_raises(_Config) ->
    ok = restart_with_max(2),
    ok = define([
        "def ep_st_full():",
        "    erlang.state_set('a', 1)",
        "    erlang.state_incr('b')",
        "    out = []",
        "    for f, args in ((erlang.state_set, ('c', 3)), (erlang.state_incr, ('c',))):",
        "        try:",
        "            f(*args)",
        "            out.append('no error')",
        "        except erlang.ErlangError as e:",
        "            out.append((e.erlang_class, e.reason, str(e)))",
        "    erlang.state_set('a', 'updated')",
        "    return (out, erlang.state_incr('b'), sorted(erlang.state_keys()))"
    ]),
    {ok, {[{<<"error">>, <<"{state_full,2}">>, <<"error: {state_full,2}">>},
           {<<"error">>, <<"{state_full,2}">>, <<"error: {state_full,2}">>}],
          2, [<<"a">>, <<"b">>]}} = py:call('__main__', ep_st_full, []),
    {ok, <<"updated">>} = py:state_fetch(<<"a">>),
    {error, {'ErlangError', <<"error: {state_full,2}">>}} =
        py:eval(<<"erlang.state_set('c', 3)">>).

%% @doc The bound is exact under concurrency: 200 processes creating distinct keys with room
%% for 50 give exactly 50 ok.
-spec bound_exact_under_concurrency(ct_suite:ct_config()) -> term().
bound_exact_under_concurrency(_Config) ->
    ok = restart_with_max(50),
    [begin
         ok = py:state_clear(),
         Results = py_test_util:pmap(
                     fun(I) ->
                             case I rem 2 of
                                 0 -> py:state_store({k, I}, I);
                                 1 -> py:state_incr({k, I})
                             end
                     end,
                     lists:seq(1, 200)),
         Ok = [R || R <- Results, R =:= ok orelse R =:= 1],
         Full = [R || R <- Results, R =:= {error, {state_full, 50}}],
         {50, 150} = {length(Ok), length(Full)},
         50 = length(py:state_keys())
     end || _Round <- lists:seq(1, 5)].

%%% ---------------------------------------------------------------- lifetime

%% @doc The state outlives the requests and processes that wrote it.
-spec state_survives_across_calls(ct_suite:ct_config()) -> term().
state_survives_across_calls(_Config) ->
    {ok, none} = py:eval(<<"erlang.state_set('session', {'user': 'ann'})">>),
    Writer = py_test_util:spawn_call(fun() -> py:state_store(<<"from_proc">>, 1) end),
    ok = py_test_util:await_call(Writer, 10000),
    {ok, true} = py:eval(<<"erlang.state_get('session') == {'user': 'ann'}">>),
    {ok, 1} = py:eval(<<"erlang.state_get('from_proc')">>),
    Reader = py_test_util:spawn_call(fun() -> py:state_fetch(<<"session">>) end),
    {ok, #{<<"user">> := <<"ann">>}} = py_test_util:await_call(Reader, 10000),
    ok = py:exec(<<"erlang.state_incr('execs')\nerlang.state_incr('execs')\n">>),
    {ok, 3} = py:eval(<<"erlang.state_incr('execs')">>).

%% @doc The state lives as long as the application: a restart starts with an empty store, and
%% the Python callbacks are registered again.
-spec cleared_on_restart(ct_suite:ct_config()) -> term().
cleared_on_restart(_Config) ->
    ok = py:state_store(<<"before">>, 1),
    {ok, none} = py:eval(<<"erlang.state_set('py_before', 2)">>),
    Owner = whereis(py_state),
    ok = py_test_util:restart(),
    false = whereis(py_state) =:= Owner,
    {error, not_found} = py:state_fetch(<<"before">>),
    [] = py:state_keys(),
    {ok, []} = py:eval(<<"erlang.state_keys()">>),
    {ok, none} = py:eval(<<"erlang.state_get('py_before')">>),
    {ok, 1} = py:eval(<<"erlang.state_incr('after')">>).

%% @doc While the application is stopped every py:state_* function returns
%% {error, not_started}, as the rest of py does; bad arguments still raise.
-spec not_running_not_started(ct_suite:ct_config()) -> term().
not_running_not_started(_Config) ->
    ok = py_test_util:stop(),
    try
        {error, not_started} = py:state_fetch(<<"k">>),
        {error, not_started} = py:state_store(<<"k">>, 1),
        {error, not_started} = py:state_remove(<<"k">>),
        {error, not_started} = py:state_keys(),
        {error, not_started} = py:state_clear(),
        {error, not_started} = py:state_incr(<<"k">>),
        {error, not_started} = py:state_incr(<<"k">>, 3),
        {error, not_started} = py:state_decr(<<"k">>),
        {error, not_started} = py:state_decr(<<"k">>, 2),
        function_clause =
            py_test_util:expect_raise(fun() -> py:state_incr(<<"k">>, one) end,
                                      [function_clause])
    after
        ok = py_test_util:start()
    end.

%% @doc While the application is stopped every py_state function raises badarg (no table), as
%% in 1.6.
-spec not_running_raises_badarg(ct_suite:ct_config()) -> term().
not_running_raises_badarg(_Config) ->
    ok = py_test_util:stop(),
    try
        Calls = [fun() -> py_state:fetch(<<"k">>) end,
                 fun() -> py_state:store(<<"k">>, 1) end,
                 fun() -> py_state:remove(<<"k">>) end,
                 fun() -> py_state:keys() end,
                 fun() -> py_state:clear() end,
                 fun() -> py_state:incr(<<"k">>) end,
                 fun() -> py_state:decr(<<"k">>, 2) end],
        [badarg = py_test_util:expect_raise(F, [badarg]) || F <- Calls],
        {error, not_started} = py_state:register_callbacks()
    after
        ok = py_test_util:start()
    end.

%% @doc A table made by init_tab/0 outside the application stops it from starting, with a
%% clear reason, until its owner goes away.
-spec foreign_table_blocks_start(ct_suite:ct_config()) -> term().
foreign_table_blocks_start(_Config) ->
    ok = py_test_util:stop(),
    Parent = self(),
    Owner = spawn(fun() ->
                          ok = py_state:init_tab(),
                          ok = py_state:init_tab(),
                          Parent ! {self(), made},
                          receive stop -> ok end
                  end),
    receive {Owner, made} -> ok end,
    ok = py_state:store(<<"k">>, 1),
    {ok, 1} = py_state:fetch(<<"k">>),
    try
        {error, {{shutdown, {failed_to_start_child, py_state,
                             {table_exists, py_state, Owner}}}, _}} =
            application:start(erlang_python)
    after
        ok = py_test_util:kill_and_wait([Owner])
    end,
    ok = py_test_util:start(),
    [] = py:state_keys().

%%% ---------------------------------------------------------------- helpers

%% Processes x Times incr(Key), in parallel; returns every value the increments returned.
incr_concurrently(Key, Processes, Times) ->
    Seen = py_test_util:pmap(fun(_) -> [py:state_incr(Key) || _ <- lists:seq(1, Times)] end,
                             lists:seq(1, Processes)),
    All = lists:append(Seen),
    true = lists:all(fun erlang:is_integer/1, All),
    All.

%% Each increment by 1 saw a value of its own: 1..N, each once.
all_distinct(Values) ->
    Expected = lists:seq(1, length(Values)),
    Expected = lists:sort(Values),
    ok.

restart_with_max(Max) ->
    ok = application:set_env(erlang_python, ?MAX_ENV, Max),
    py_test_util:restart().

define(Lines) ->
    py:exec(iolist_to_binary([[L, $\n] || L <- Lines])).

index(X, List) ->
    length(lists:takewhile(fun(Y) -> Y =/= X end, List)).
