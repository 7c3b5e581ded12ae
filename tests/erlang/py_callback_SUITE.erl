%% @doc Python calls Erlang: register_function/2,3, unregister_function/1, erlang.call and
%% friends, conversion through callbacks, errors, reentrancy, Python threads, timeouts, deaths.
-module(py_callback_SUITE).

-include_lib("common_test/include/ct.hrl").

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).

-export([
    register_fun_gets_one_args_list/1,
    register_mf/1,
    register_binary_and_odd_names/1,
    register_again_replaces/1,
    unregister/1,
    unregister_unknown_is_ok/1,
    register_bad_args/1,
    register_not_started/1,
    registrations_do_not_survive_restart/1,
    python_call_forms/1,
    python_function_repr_and_name/1,
    python_unregistered_is_attribute_error/1,
    python_visibility_is_immediate_everywhere/1,
    python_introspection_and_imports/1,
    python_call_bad_args/1,
    python_function_kwargs/1,
    convert_python_args_to_erlang/1,
    convert_erlang_results_to_python/1,
    convert_pid_round_trip/1,
    callbacks_of_one_request_share_a_process/1,
    convert_handle_round_trip/1,
    convert_unconvertible_result/1,
    error_class_reason_stacktrace/1,
    error_uncaught/1,
    error_elixir_exception_without_elixir/1,
    error_unknown_name/1,
    error_undefined_mf/1,
    reentrant_depth_50/1,
    reentrant_same_namespace/1,
    reentrant_no_replay/1,
    reentrant_three_callbacks_run_once/1,
    reentrant_exec_callback_eval/1,
    reentrant_concurrent_processes/1,
    call_async_serves_callbacks_while_awaiting/1,
    thread_callbacks/1,
    thread_pool_executor_callbacks/1,
    thread_callback_fun_calls_python/1,
    thread_callback_crash/1,
    thread_callback_while_stopped/1,
    callback_slower_than_timeout/1,
    caller_killed_during_callback/1,
    concurrent_callers_with_callbacks/1
]).

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
    ok = py:register_function(cb_add, fun([A, B]) -> A + B end),
    ok = py:register_function(cb_ident, fun([X]) -> X end),
    ok = py:register_function(cb_badarith, fun(_) -> 1 / zero() end),
    py_test_util:flush(),
    Config.

-spec end_per_testcase(atom(), ct_suite:ct_config()) -> ok.
end_per_testcase(_Case, _Config) ->
    ok.

%%% ---------------------------------------------------------------- registering

%% @doc A fun/1 receives one list holding all positional arguments (none gives []).
-spec register_fun_gets_one_args_list(ct_suite:ct_config()) -> term().
register_fun_gets_one_args_list(_Config) ->
    ok = py:register_function(cb_args, fun(Args) -> {got, Args} end),
    {ok, {<<"got">>, []}} = py:eval(<<"erlang.cb_args()">>),
    {ok, {<<"got">>, [1]}} = py:eval(<<"erlang.cb_args(1)">>),
    {ok, {<<"got">>, [1, <<"two">>, 3.0]}} = py:eval(<<"erlang.cb_args(1, 'two', 3.0)">>),
    {ok, {<<"got">>, [[1, 2]]}} = py:eval(<<"erlang.cb_args([1, 2])">>),
    {ok, 7} = py:eval(<<"erlang.cb_add(3, 4)">>).

%% @doc register_function/3 calls Module:Function(ArgsList): lists:sum, erlang:length.
-spec register_mf(ct_suite:ct_config()) -> term().
register_mf(_Config) ->
    ok = py:register_function(cb_sum, lists, sum),
    ok = py:register_function(cb_length, erlang, length),
    ok = py:register_function(<<"cb_reverse">>, lists, reverse),
    {ok, 10} = py:eval(<<"erlang.cb_sum(1, 2, 3, 4)">>),
    {ok, 0} = py:eval(<<"erlang.cb_sum()">>),
    {ok, 3} = py:eval(<<"erlang.cb_length('a', None, [])">>),
    {ok, [3, 2, 1]} = py:eval(<<"erlang.cb_reverse(1, 2, 3)">>).

%% @doc Names may be binaries and need not be Python identifiers; dunder names need call().
-spec register_binary_and_odd_names(ct_suite:ct_config()) -> term().
register_binary_and_odd_names(_Config) ->
    ok = py:register_function(<<"cb_bin_name">>, fun(_) -> bin end),
    ok = py:register_function('cb-dash.dot', fun(_) -> dash end),
    ok = py:register_function(<<"cb_é"/utf8>>, fun(_) -> unicode end),
    ok = py:register_function('__cb_dunder__', fun(_) -> dunder end),
    {ok, <<"bin">>} = py:eval(<<"erlang.cb_bin_name()">>),
    {ok, <<"bin">>} = py:eval(<<"erlang.call('cb_bin_name')">>),
    {ok, <<"dash">>} = py:eval(<<"getattr(erlang, 'cb-dash.dot')()">>),
    {ok, <<"dash">>} = py:eval(<<"erlang.call('cb-dash.dot')">>),
    {ok, <<"unicode">>} = py:eval(<<"erlang.cb_é()"/utf8>>),
    {ok, <<"dunder">>} = py:eval(<<"erlang.call('__cb_dunder__')">>),
    {ok, false} = py:eval(<<"hasattr(erlang, '__cb_dunder__')">>).

%% @doc Registering a name again replaces the function, for every form.
-spec register_again_replaces(ct_suite:ct_config()) -> term().
register_again_replaces(_Config) ->
    ok = py:register_function(cb_replace, fun(_) -> first end),
    {ok, <<"first">>} = py:eval(<<"erlang.cb_replace()">>),
    ok = py:register_function(cb_replace, fun(_) -> second end),
    {ok, <<"second">>} = py:eval(<<"erlang.cb_replace()">>),
    ok = py:register_function(cb_replace, lists, sum),
    {ok, 3} = py:eval(<<"erlang.cb_replace(1, 2)">>),
    ok = py:register_function(<<"cb_replace">>, fun(Args) -> length(Args) end),
    {ok, 2} = py:eval(<<"erlang.cb_replace(1, 2)">>).

%% @doc unregister_function/1 (atom or binary) makes the name unknown to Python.
-spec unregister(ct_suite:ct_config()) -> term().
unregister(_Config) ->
    ok = py:register_function(cb_gone, fun(_) -> here end),
    ok = py:register_function(cb_gone_bin, fun(_) -> here end),
    {ok, <<"here">>} = py:eval(<<"erlang.cb_gone()">>),
    ok = py:unregister_function(cb_gone),
    ok = py:unregister_function(<<"cb_gone_bin">>),
    {ok, {false, false}} =
        py:eval(<<"(hasattr(erlang, 'cb_gone'), hasattr(erlang, 'cb_gone_bin'))">>),
    {error, {'AttributeError', <<"module 'erlang' has no attribute 'cb_gone'">>}} =
        py:eval(<<"erlang.cb_gone()">>),
    {error, {'ErlangError', <<"Function 'cb_gone' not registered">>}} =
        py:eval(<<"erlang.call('cb_gone')">>),
    ok = py:unregister_function(cb_gone).

%% @doc Unregistering a name that was never registered is ok.
-spec unregister_unknown_is_ok(ct_suite:ct_config()) -> term().
unregister_unknown_is_ok(_Config) ->
    ok = py:unregister_function(cb_never_registered),
    ok = py:unregister_function(<<"cb_never_registered_bin">>),
    {ok, false} = py:eval(<<"hasattr(erlang, 'cb_never_registered')">>).

%% @doc Bad arguments raise function_clause and register nothing.
-spec register_bad_args(ct_suite:ct_config()) -> term().
register_bad_args(_Config) ->
    Bad = [function_clause],
    Fun = fun(_) -> ok end,
    Arity2 = fun(_, _) -> ok end,
    _ = py_test_util:expect_raise(fun() -> py:register_function(cb_bad, Arity2) end, Bad),
    _ = py_test_util:expect_raise(fun() -> py:register_function(cb_bad, fun() -> ok end) end, Bad),
    _ = py_test_util:expect_raise(fun() -> py:register_function(cb_bad, not_a_fun) end, Bad),
    _ = py_test_util:expect_raise(fun() -> py:register_function(cb_bad, {lists, sum}) end, Bad),
    _ = py_test_util:expect_raise(fun() -> py:register_function("cb_bad", Fun) end, Bad),
    _ = py_test_util:expect_raise(fun() -> py:register_function(123, Fun) end, Bad),
    _ = py_test_util:expect_raise(fun() -> py:register_function(cb_bad, "lists", sum) end, Bad),
    _ = py_test_util:expect_raise(fun() -> py:register_function(cb_bad, <<"lists">>, sum) end, Bad),
    _ = py_test_util:expect_raise(fun() -> py:register_function(cb_bad, lists, "sum") end, Bad),
    _ = py_test_util:expect_raise(fun() -> py:register_function({cb_bad}, lists, sum) end, Bad),
    _ = py_test_util:expect_raise(fun() -> py:unregister_function("cb_bad") end, Bad),
    _ = py_test_util:expect_raise(fun() -> py:unregister_function(123) end, Bad),
    {ok, false} = py:eval(<<"hasattr(erlang, 'cb_bad')">>).

%% @doc With the application stopped, register and unregister return {error, not_started}.
-spec register_not_started(ct_suite:ct_config()) -> term().
register_not_started(_Config) ->
    ok = py_test_util:stop(),
    {error, not_started} = py:register_function(cb_stopped, fun(_) -> ok end),
    {error, not_started} = py:register_function(cb_stopped, lists, sum),
    {error, not_started} = py:unregister_function(cb_stopped),
    ok = py_test_util:start(),
    {ok, false} = py:eval(<<"hasattr(erlang, 'cb_stopped')">>),
    ok = py:register_function(cb_stopped, fun(_) -> started end),
    {ok, <<"started">>} = py:eval(<<"erlang.cb_stopped()">>).

%% @doc After a stop/start cycle earlier registrations are gone, in Python too.
-spec registrations_do_not_survive_restart(ct_suite:ct_config()) -> term().
registrations_do_not_survive_restart(_Config) ->
    ok = py:register_function(cb_before_restart, fun(_) -> ok end),
    {ok, true} = py:eval(<<"hasattr(erlang, 'cb_before_restart')">>),
    ok = py_test_util:restart(),
    {ok, false} = py:eval(<<"hasattr(erlang, 'cb_before_restart')">>),
    {error, {'ErlangError', <<"Function 'cb_before_restart' not registered">>}} =
        py:eval(<<"erlang.call('cb_before_restart')">>).

%%% ---------------------------------------------------------------- from Python

%% @doc erlang.call, erlang.name, `from erlang import name` and erlang.Function all call it.
-spec python_call_forms(ct_suite:ct_config()) -> term().
python_call_forms(_Config) ->
    ok = define([
        "def ep_cb_forms():",
        "    from erlang import cb_add",
        "    import erlang as e",
        "    return (erlang.call('cb_add', 1, 2), erlang.cb_add(3, 4), cb_add(5, 6),",
        "            erlang.Function('cb_add')(7, 8), e.cb_add(9, 10))"
    ]),
    {ok, {3, 7, 11, 15, 19}} = py:call('__main__', ep_cb_forms, []),
    {ok, 5} = py:call(erlang, call, [cb_add, 2, 3]),
    {ok, 5} = py:call(erlang, cb_add, [2, 3]).

%% @doc erlang.name is an erlang.Function with a name attribute and a readable repr.
-spec python_function_repr_and_name(ct_suite:ct_config()) -> term().
python_function_repr_and_name(_Config) ->
    {ok, <<"<erlang function 'cb_add'>">>} = py:eval(<<"repr(erlang.cb_add)">>),
    {ok, <<"cb_add">>} = py:eval(<<"erlang.cb_add.name">>),
    {ok, true} = py:eval(<<"isinstance(erlang.cb_add, erlang.Function)">>),
    {ok, true} = py:eval(<<"callable(erlang.cb_add)">>),
    {ok, <<"anything">>} = py:eval(<<"erlang.Function('anything').name">>),
    {ok, <<"<erlang function 'anything'>">>} = py:eval(<<"repr(erlang.Function('anything'))">>).

%% @doc An unregistered name raises AttributeError (hasattr is False, import fails).
-spec python_unregistered_is_attribute_error(ct_suite:ct_config()) -> term().
python_unregistered_is_attribute_error(_Config) ->
    {error, {'AttributeError', <<"module 'erlang' has no attribute 'cb_nosuch'">>}} =
        py:eval(<<"erlang.cb_nosuch">>),
    {ok, false} = py:eval(<<"hasattr(erlang, 'cb_nosuch')">>),
    {ok, <<"default">>} = py:eval(<<"getattr(erlang, 'cb_nosuch', 'default')">>),
    {error, {'ImportError', _}} = py:exec(<<"from erlang import cb_nosuch\n">>),
    {error, {'AttributeError', _}} = py:call(erlang, cb_nosuch, []).

%% @doc register/unregister are visible at once, from every process and executor.
-spec python_visibility_is_immediate_everywhere(ct_suite:ct_config()) -> term().
python_visibility_is_immediate_everywhere(_Config) ->
    Check = fun(_) -> py:eval(<<"hasattr(erlang, 'cb_flip')">>) end,
    N = 4 * py:num_executors(),
    {ok, false} = Check(0),
    ok = py:register_function(cb_flip, fun(_) -> flipped end),
    {ok, true} = Check(0),
    {ok, <<"flipped">>} = py:eval(<<"erlang.cb_flip()">>),
    true = lists:all(fun(R) -> R =:= {ok, true} end, py_test_util:pmap(Check, lists:seq(1, N))),
    ok = py:unregister_function(cb_flip),
    {ok, false} = Check(0),
    true = lists:all(fun(R) -> R =:= {ok, false} end, py_test_util:pmap(Check, lists:seq(1, N))).

%% @doc Introspection of the erlang module works, so importing json and numpy still works.
-spec python_introspection_and_imports(ct_suite:ct_config()) -> term().
python_introspection_and_imports(_Config) ->
    ok = py:exec(<<"import json, numpy, inspect\n">>),
    {ok, true} = py:eval(<<"hasattr(erlang, '__path__')">>),
    {ok, false} = py:eval(<<"hasattr(erlang, '__wrapped__')">>),
    {ok, false} = py:eval(<<"hasattr(erlang, '_fields')">>),
    {ok, true} = py:eval(<<"'call' in dir(erlang) and 'Function' in dir(erlang)">>),
    {ok, N} = py:eval(<<"len(inspect.getmembers(erlang))">>),
    true = N > 0,
    {ok, <<"[1]">>} = py:eval(<<"json.dumps(erlang.cb_ident([1]))">>),
    {ok, 6} = py:eval(<<"int(numpy.array([erlang.cb_add(1, 2), 3]).sum())">>).

%% @doc erlang.call with no name, a non-str name or keyword arguments raises TypeError.
-spec python_call_bad_args(ct_suite:ct_config()) -> term().
python_call_bad_args(_Config) ->
    {error, {'TypeError', <<"call() missing 1 required positional argument: 'name'">>}} =
        py:eval(<<"erlang.call()">>),
    {error, {'TypeError', <<"Function name must be a string">>}} =
        py:eval(<<"erlang.call(1)">>),
    {error, {'TypeError', <<"Function name must be a string">>}} =
        py:eval(<<"erlang.call(b'cb_add', 1, 2)">>),
    {error, {'TypeError', <<"Function name must be a string">>}} =
        py:eval(<<"erlang.call(None)">>),
    {error, {'TypeError', <<"call() got an unexpected keyword argument 'b'">>}} =
        py:eval(<<"erlang.call('cb_add', 1, b=2)">>),
    {error, {'TypeError', _}} = py:eval(<<"erlang.call(name='cb_add')">>),
    {ok, 3} = py:eval(<<"erlang.call('cb_add', 1, 2, **{})">>),
    ok = define([
        "def ep_cb_call_type_error():",
        "    try:",
        "        erlang.call()",
        "    except TypeError:",
        "        return 'caught'"
    ]),
    {ok, <<"caught">>} = py:call('__main__', ep_cb_call_type_error, []).

%% @doc An erlang.Function called with keyword arguments raises TypeError.
-spec python_function_kwargs(ct_suite:ct_config()) -> term().
python_function_kwargs(_Config) ->
    {error, {'TypeError', <<"Function.__call__() got an unexpected keyword argument 'b'">>}} =
        py:eval(<<"erlang.cb_add(1, b=2)">>),
    {error, {'TypeError', _}} = py:eval(<<"erlang.Function('cb_add')(a=1)">>),
    {ok, 3} = py:eval(<<"erlang.cb_add(1, 2, **{})">>).

%%% ---------------------------------------------------------------- conversion

%% @doc Python arguments reach the fun by the conversion table.
-spec convert_python_args_to_erlang(ct_suite:ct_config()) -> term().
convert_python_args_to_erlang(_Config) ->
    Self = self(),
    ok = py:register_function(cb_capture, fun(Args) -> Self ! {captured, Args}, ok end),
    {ok, <<"ok">>} = py:eval(<<"erlang.cb_capture([], (), (1, 'a'), {'k': [1.5]}, 2 ** 100, "
                               "-2 ** 70, 1.5, None, True, False, b'\\xff', 'h\\u00e9', "
                               "bytearray(b'ab'), [[]], {}, float('inf'), float('-inf'), "
                               "float('nan'))">>),
    Big = 1 bsl 100,
    NegBig = -(1 bsl 70),
    receive
        {captured, [[], {}, {1, <<"a">>}, #{<<"k">> := [1.5]}, Big, NegBig, 1.5, none, true,
                    false, <<255>>, <<"hé"/utf8>>, <<"ab">>, [[]], Empty, infinity,
                    neg_infinity, nan]} ->
            0 = map_size(Empty)
    end,
    ok = py_test_util:assert_mailbox_empty().

%% @doc Erlang results reach Python by the conversion table (an empty list is []).
-spec convert_erlang_results_to_python(ct_suite:ct_config()) -> term().
convert_erlang_results_to_python(_Config) ->
    Values = [[], {}, {1, two}, #{<<"key">> => [1]}, 1 bsl 100, -(1 bsl 70), 1.5, none, nil,
              undefined, <<"bin">>, <<255, 0>>, true, atom, [<<"a">>, [[]]]],
    ok = py:register_function(cb_values, fun([]) -> Values end),
    ok = define([
        "def ep_cb_types():",
        "    return [type(v).__name__ for v in erlang.cb_values()]"
    ]),
    {ok, [<<"list">>, <<"tuple">>, <<"tuple">>, <<"dict">>, <<"int">>, <<"int">>, <<"float">>,
          <<"NoneType">>, <<"NoneType">>, <<"NoneType">>, <<"str">>, <<"bytes">>, <<"bool">>,
          <<"str">>, <<"list">>]} = py:call('__main__', ep_cb_types, []),
    {ok, true} = py:eval(<<"erlang.cb_values() == [[], (), (1, 'two'), {'key': [1]}, 2 ** 100, "
                           "-2 ** 70, 1.5, None, None, None, 'bin', b'\\xff\\x00', True, "
                           "'atom', ['a', [[]]]]">>),
    {ok, true} = py:eval(<<"erlang.cb_ident([]) == [] and type(erlang.cb_ident([])) is list">>),
    {ok, true} = py:eval(<<"list(erlang.cb_ident({'s': 1}).keys()) == ['s']">>),
    {ok, 3.25} = py:eval(<<"erlang.cb_ident(3.25)">>).

%% @doc A pid crosses the callback both ways as erlang.Pid and comes back the same pid.
-spec convert_pid_round_trip(ct_suite:ct_config()) -> term().
convert_pid_round_trip(_Config) ->
    Self = self(),
    ok = py:register_function(cb_self, fun([]) -> self() end),
    ok = py:register_function(cb_caller, fun([]) -> Self end),
    ok = define([
        "def ep_cb_pid(p):",
        "    caller = erlang.cb_caller()",
        "    mine = erlang.cb_self()",
        "    return (type(caller).__name__, caller == p, mine == p, mine, erlang.cb_ident(p))"
    ]),
    %% The fun runs in a process of its own (as in 1.6): its self() is not the caller.
    {ok, {<<"Pid">>, true, false, Mine, Self}} = py:call('__main__', ep_cb_pid, [Self]),
    true = is_pid(Mine).

%% @doc The callbacks of one request run one after another in one process of their own,
%% which ends when the request has replied; another request gets another process.
-spec callbacks_of_one_request_share_a_process(ct_suite:ct_config()) -> term().
callbacks_of_one_request_share_a_process(_Config) ->
    ok = py:register_function(cb_self, fun([]) -> self() end),
    {ok, [P1, P1, P1]} = py:eval(<<"[erlang.cb_self() for _ in range(3)]">>),
    {ok, [P2]} = py:eval(<<"[erlang.cb_self()]">>),
    true = P1 =/= P2 andalso P1 =/= self(),
    ok = py_test_util:wait_until(
           fun() -> not is_process_alive(P1) andalso not is_process_alive(P2) end, 5000).

%% @doc A Python object with no Erlang equivalent makes the round trip as a handle.
-spec convert_handle_round_trip(ct_suite:ct_config()) -> term().
convert_handle_round_trip(_Config) ->
    ok = define([
        "def ep_cb_handle():",
        "    o = object()",
        "    return erlang.cb_ident(o) is o"
    ]),
    {ok, true} = py:call('__main__', ep_cb_handle, []).

%% @doc A fun returning a fun or a port raises TypeError in Python (catchable).
-spec convert_unconvertible_result(ct_suite:ct_config()) -> term().
convert_unconvertible_result(_Config) ->
    Port = hd(erlang:ports()),
    ok = py:register_function(cb_fun_result, fun([]) -> fun() -> ok end end),
    ok = py:register_function(cb_port_result, fun([]) -> [1, Port] end),
    {error, {'TypeError', _}} = py:eval(<<"erlang.cb_fun_result()">>),
    {error, {'TypeError', _}} = py:eval(<<"erlang.cb_port_result()">>),
    ok = define([
        "def ep_cb_catch_type_error(name):",
        "    try:",
        "        erlang.call(name)",
        "    except TypeError:",
        "        return 'caught'"
    ]),
    {ok, <<"caught">>} = py:call('__main__', ep_cb_catch_type_error, [cb_fun_result]),
    {ok, <<"caught">>} = py:call('__main__', ep_cb_catch_type_error, [cb_port_result]),
    {ok, 3} = py:eval(<<"erlang.cb_add(1, 2)">>).

%%% ---------------------------------------------------------------- errors

%% @doc error/exit/throw raise erlang.ErlangError (a RuntimeError) with class, reason, stack.
-spec error_class_reason_stacktrace(ct_suite:ct_config()) -> term().
error_class_reason_stacktrace(_Config) ->
    ok = py:register_function(cb_error, fun(_) -> error({my_error, 1}) end),
    ok = py:register_function(cb_exit, fun(_) -> exit(my_exit) end),
    ok = py:register_function(cb_throw, fun(_) -> throw(<<"thrown">>) end),
    ok = define([
        "def ep_cb_catch(name):",
        "    try:",
        "        erlang.call(name)",
        "    except erlang.ErlangError as e:",
        "        return (e.erlang_class, e.reason, str(e), isinstance(e, RuntimeError),",
        "                e.stacktrace)",
        "",
        "def ep_cb_catch_runtime_error(name):",
        "    try:",
        "        erlang.call(name)",
        "    except RuntimeError as e:",
        "        return type(e).__name__"
    ]),
    {ok, {<<"error">>, <<"{my_error,1}">>, <<"error: {my_error,1}">>, true, Stack}} =
        py:call('__main__', ep_cb_catch, [cb_error]),
    {match, _} = re:run(Stack, <<"py_callback_SUITE">>),
    {ok, {<<"exit">>, <<"my_exit">>, <<"exit: my_exit">>, true, _}} =
        py:call('__main__', ep_cb_catch, [cb_exit]),
    {ok, {<<"throw">>, <<"<<\"thrown\">>">>, <<"throw: <<\"thrown\">>">>, true, _}} =
        py:call('__main__', ep_cb_catch, [cb_throw]),
    {ok, {<<"error">>, <<"badarith">>, <<"error: badarith">>, true, _}} =
        py:call('__main__', ep_cb_catch, [cb_badarith]),
    {ok, <<"ErlangError">>} = py:call('__main__', ep_cb_catch_runtime_error, [cb_error]),
    {ok, true} = py:eval(<<"issubclass(erlang.ErlangError, RuntimeError)">>).

%% @doc An uncaught ErlangError comes back as {error, {'ErlangError', Msg}}; executors go on.
-spec error_uncaught(ct_suite:ct_config()) -> term().
error_uncaught(_Config) ->
    ok = py:register_function(cb_exit2, fun(_) -> exit(bye) end),
    {error, {'ErlangError', <<"error: badarith">>}} = py:eval(<<"erlang.cb_badarith()">>),
    {error, {'ErlangError', <<"error: badarith">>}} = py:call(erlang, call, [cb_badarith]),
    {error, {'ErlangError', <<"exit: bye">>}} = py:eval(<<"erlang.cb_exit2()">>),
    ok = define(["def ep_cb_uncaught():", "    return erlang.cb_badarith()"]),
    {error, {'ErlangError', <<"error: badarith">>}} = py:call('__main__', ep_cb_uncaught, []),
    {error, {'ErlangError', <<"error: badarith">>}} = py:exec(<<"erlang.cb_badarith()\n">>),
    Tb = py:last_traceback(),
    {match, _} = re:run(Tb, <<"ErlangError">>),
    {ok, 3} = py:eval(<<"erlang.cb_add(1, 2)">>),
    ok = py_test_util:assert_mailbox_empty().

%% @doc A reason shaped like an Elixir exception, in a VM without Elixir, reads as any other
%% map (tests/elixir checks the `** (ArgumentError) bad' form with Elixir loaded).
-spec error_elixir_exception_without_elixir(ct_suite:ct_config()) -> term().
error_elixir_exception_without_elixir(_Config) ->
    false = code:is_loaded('Elixir.Exception'),
    Exception = #{'__exception__' => true, '__struct__' => 'Elixir.ArgumentError',
                  message => <<"bad">>},
    ok = py:register_function(cb_elixir_error, fun(_) -> error(Exception) end),
    {error, {'ErlangError', <<"error: #{", _/binary>> = Msg}} =
        py:eval(<<"erlang.cb_elixir_error()">>),
    {match, _} = re:run(Msg, <<"message => <<\"bad\">>">>),
    %% Thrown, it is a value like any other, never formatted as an exception.
    ok = py:register_function(cb_elixir_throw, fun(_) -> throw(Exception) end),
    {error, {'ErlangError', <<"throw: #{", _/binary>>}} = py:eval(<<"erlang.cb_elixir_throw()">>).

%% @doc Calling a name that is not registered raises ErlangError "Function 'x' not registered".
-spec error_unknown_name(ct_suite:ct_config()) -> term().
error_unknown_name(_Config) ->
    {error, {'ErlangError', <<"Function 'x' not registered">>}} =
        py:eval(<<"erlang.call('x')">>),
    {error, {'ErlangError', <<"Function 'cb_nothing' not registered">>}} =
        py:eval(<<"erlang.Function('cb_nothing')(1)">>),
    ok = define([
        "def ep_cb_unknown():",
        "    try:",
        "        erlang.call('cb_nothing')",
        "    except erlang.ErlangError as e:",
        "        return (e.erlang_class, e.reason)"
    ]),
    {ok, {<<"not_found">>, <<"cb_nothing">>}} = py:call('__main__', ep_cb_unknown, []),
    %% A Function kept across an unregister fails the same way.
    ok = py:register_function(cb_kept, fun(_) -> ok end),
    ok = py:exec(<<"ep_cb_kept = erlang.cb_kept\n">>),
    ok = py:unregister_function(cb_kept),
    {error, {'ErlangError', <<"Function 'cb_kept' not registered">>}} =
        py:eval(<<"ep_cb_kept()">>).

%% @doc A {M, F} whose function does not exist raises ErlangError with reason undef.
-spec error_undefined_mf(ct_suite:ct_config()) -> term().
error_undefined_mf(_Config) ->
    ok = py:register_function(cb_undef_mod, cb_no_such_module, f),
    ok = py:register_function(cb_undef_fun, lists, cb_no_such_function),
    {error, {'ErlangError', <<"error: undef">>}} = py:eval(<<"erlang.cb_undef_mod(1)">>),
    {error, {'ErlangError', <<"error: undef">>}} = py:eval(<<"erlang.cb_undef_fun(1)">>).

%%% ---------------------------------------------------------------- reentrancy

%% @doc Python -> Erlang -> Python ... 50 levels deep, on one executor, with the default pool.
-spec reentrant_depth_50(ct_suite:ct_config()) -> term().
reentrant_depth_50(_Config) ->
    ok = py:register_function(cb_down, fun([N]) ->
                                               {ok, V} = py:call('__main__', ep_cb_depth, [N]),
                                               V
                                       end),
    ok = define([
        "import threading",
        "def ep_cb_depth(n):",
        "    me = threading.get_ident()",
        "    if n == 0:",
        "        return [0, [me]]",
        "    depth, threads = erlang.cb_down(n - 1)",
        "    return [depth + 1, threads + [me]]"
    ]),
    {ok, [50, Threads]} = py:call('__main__', ep_cb_depth, [50], #{}, 60000),
    51 = length(Threads),
    1 = length(lists:usort(Threads)),
    {ok, [0, _]} = py:call('__main__', ep_cb_depth, [0]).

%% @doc Nested calls run in the same namespace: globals flow in and out of the callback.
-spec reentrant_same_namespace(ct_suite:ct_config()) -> term().
reentrant_same_namespace(_Config) ->
    ok = py:register_function(cb_inner, fun([]) ->
                                                {ok, V} = py:eval(<<"ep_cb_shared">>),
                                                ok = py:exec(<<"ep_cb_shared = 'inner'\n">>),
                                                V
                                        end),
    ok = define([
        "def ep_cb_outer():",
        "    global ep_cb_shared",
        "    ep_cb_shared = 'outer'",
        "    seen = erlang.cb_inner()",
        "    return (seen, ep_cb_shared)"
    ]),
    {ok, {<<"outer">>, <<"inner">>}} = py:call('__main__', ep_cb_outer, []).

%% @doc A side effect before the callback happens exactly once (no replay).
-spec reentrant_no_replay(ct_suite:ct_config()) -> term().
reentrant_no_replay(_Config) ->
    Self = self(),
    ok = py:register_function(cb_seen, fun([X]) -> Self ! {seen, X}, X * 2 end),
    ok = define([
        "ep_cb_effects = []",
        "def ep_cb_effect(x):",
        "    ep_cb_effects.append(x)",
        "    return erlang.cb_seen(x)"
    ]),
    {ok, 42} = py:call('__main__', ep_cb_effect, [21]),
    {ok, [21]} = py:eval(<<"ep_cb_effects">>),
    {ok, 10} = py:call('__main__', ep_cb_effect, [5]),
    {ok, [21, 5]} = py:eval(<<"ep_cb_effects">>),
    receive {seen, 21} -> ok end,
    receive {seen, 5} -> ok end,
    ok = py_test_util:assert_mailbox_empty().

%% @doc A function making 3 sequential callbacks runs once and each call gets its own result.
-spec reentrant_three_callbacks_run_once(ct_suite:ct_config()) -> term().
reentrant_three_callbacks_run_once(_Config) ->
    Self = self(),
    ok = py:register_function(cb_tick, fun([I]) -> Self ! {tick, I}, I * 10 end),
    ok = define([
        "ep_cb_runs = 0",
        "def ep_cb_three():",
        "    global ep_cb_runs",
        "    ep_cb_runs += 1",
        "    a = erlang.cb_tick(1)",
        "    b = erlang.cb_tick(2)",
        "    c = erlang.cb_tick(3)",
        "    return [a, b, c, ep_cb_runs]"
    ]),
    {ok, [10, 20, 30, 1]} = py:call('__main__', ep_cb_three, []),
    {ok, 1} = py:eval(<<"ep_cb_runs">>),
    receive {tick, 1} -> ok end,
    receive {tick, 2} -> ok end,
    receive {tick, 3} -> ok end,
    ok = py_test_util:assert_mailbox_empty().

%% @doc py:exec -> callback -> py:eval works (and the exec'd assignment sees the result).
-spec reentrant_exec_callback_eval(ct_suite:ct_config()) -> term().
reentrant_exec_callback_eval(_Config) ->
    ok = py:register_function(cb_eval_inside, fun([X]) ->
                                                      {ok, V} = py:eval(<<"ep_cb_base * 2">>),
                                                      V + X
                                              end),
    ok = py:exec(<<"ep_cb_base = 20\nep_cb_exec_result = erlang.cb_eval_inside(2)\n">>),
    {ok, 42} = py:eval(<<"ep_cb_exec_result">>).

%% @doc 100 processes doing reentrant calls at once each get their own answer, each level served
%% by a process of its own.
-spec reentrant_concurrent_processes(ct_suite:ct_config()) -> term().
reentrant_concurrent_processes(_Config) ->
    ok = py:register_function(cb_whoami, fun([]) -> self() end),
    ok = py:register_function(cb_chain, fun([I, N]) ->
                                                {ok, V} = py:call('__main__', ep_cb_chain, [I, N]),
                                                V
                                        end),
    ok = define([
        "def ep_cb_chain(i, n):",
        "    if n == 0:",
        "        return (i, erlang.cb_whoami())",
        "    return erlang.cb_chain(i, n - 1)"
    ]),
    Results = py_test_util:pmap(
                fun(I) -> {I, self(), py:call('__main__', ep_cb_chain, [I, 5], #{}, 60000)} end,
                lists:seq(1, 100), 120000),
    [] = [R || {I, Pid, Result} = R <- Results,
               not (is_tuple(Result) andalso element(1, Result) =:= ok
                    andalso element(1, element(2, Result)) =:= I
                    andalso element(2, element(2, Result)) =/= Pid)].

%% @doc A call_async caller serves the callbacks of its job while it awaits.
-spec call_async_serves_callbacks_while_awaiting(ct_suite:ct_config()) -> term().
call_async_serves_callbacks_while_awaiting(_Config) ->
    Ref = py:call_async(erlang, call, [cb_add, 20, 22]),
    {ok, 42} = py:await(Ref, 10000),
    Refs = [{I, py:call_async(erlang, cb_add, [I, I])} || I <- lists:seq(1, 20)],
    [] = [I || {I, R} <- Refs, py:await(R, 10000) =/= {ok, 2 * I}],
    ok = py_test_util:assert_mailbox_empty().

%%% ---------------------------------------------------------------- Python threads

%% @doc Callbacks from threading.Thread threads each get their own result.
-spec thread_callbacks(ct_suite:ct_config()) -> term().
thread_callbacks(_Config) ->
    ok = define([
        "import threading",
        "def ep_cb_threads(n):",
        "    results = [None] * n",
        "    def work(i):",
        "        results[i] = erlang.cb_add(i, i)",
        "    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]",
        "    for t in threads:",
        "        t.start()",
        "    for t in threads:",
        "        t.join()",
        "    return results"
    ]),
    {ok, Results} = py:call('__main__', ep_cb_threads, [50]),
    Results = [2 * I || I <- lists:seq(0, 49)].

%% @doc A ThreadPoolExecutor with 8 workers making 1,000 calls each: every result is right.
-spec thread_pool_executor_callbacks(ct_suite:ct_config()) -> term().
thread_pool_executor_callbacks(_Config) ->
    ok = define([
        "from concurrent.futures import ThreadPoolExecutor",
        "def ep_cb_pool_work(w):",
        "    return sum(1 for i in range(1000) if erlang.cb_add(w * 1000, i) != w * 1000 + i)",
        "def ep_cb_pool():",
        "    with ThreadPoolExecutor(max_workers=8) as ex:",
        "        return list(ex.map(ep_cb_pool_work, range(8)))"
    ]),
    {ok, [0, 0, 0, 0, 0, 0, 0, 0]} = py:call('__main__', ep_cb_pool, [], #{}, 120000).

%% @doc A fun called from a Python thread can itself call Python (py:call, py:eval).
-spec thread_callback_fun_calls_python(ct_suite:ct_config()) -> term().
thread_callback_fun_calls_python(_Config) ->
    ok = py:register_function(cb_thread_nested, fun([X]) ->
                                                        {ok, R} = py:call(math, sqrt, [X]),
                                                        {ok, D} = py:eval(<<"ep_cb_t_base">>),
                                                        R + D
                                                end),
    ok = define([
        "import threading",
        "ep_cb_t_base = 100",
        "def ep_cb_thread_nested():",
        "    out = []",
        "    t = threading.Thread(target=lambda: out.append(erlang.cb_thread_nested(16)))",
        "    t.start()",
        "    t.join()",
        "    return out"
    ]),
    {ok, [104.0]} = py:call('__main__', ep_cb_thread_nested, [], #{}, 20000).

%% @doc A fun crashing (or killed) in a thread callback raises ErlangError in that thread.
-spec thread_callback_crash(ct_suite:ct_config()) -> term().
thread_callback_crash(_Config) ->
    ok = define([
        "import threading",
        "def ep_cb_thread_crash(name):",
        "    out = []",
        "    def work():",
        "        try:",
        "            erlang.call(name)",
        "        except erlang.ErlangError as e:",
        "            out.append((e.erlang_class, e.reason, str(e)))",
        "    t = threading.Thread(target=work)",
        "    t.start()",
        "    t.join()",
        "    return out"
    ]),
    {ok, [{<<"error">>, <<"badarith">>, <<"error: badarith">>}]} =
        py:call('__main__', ep_cb_thread_crash, [cb_badarith]),
    {ok, [{<<"not_found">>, <<"cb_thread_nosuch">>, _}]} =
        py:call('__main__', ep_cb_thread_crash, [cb_thread_nosuch]),
    {ok, 3} = py:eval(<<"erlang.cb_add(1, 2)">>),
    %% A function whose process is killed before it replies: the thread does not wait forever.
    ok = py:register_function(cb_killed, fun(_) -> exit(self(), kill) end),
    {ok, [{<<"exit">>, <<"killed">>, <<"exit: killed">>}]} =
        py:call('__main__', ep_cb_thread_crash, [cb_killed], #{}, 10000).

%% @doc A Python thread that calls Erlang while the application is stopped gets the
%% `erlang.ErlangError' of `{error, not_started}' (not `NotInBeamError': this is the BEAM), and
%% so does `erlang.async_call'.
-spec thread_callback_while_stopped(ct_suite:ct_config()) -> term().
thread_callback_while_stopped(Config) ->
    Done = filename:join(?config(priv_dir, Config), "thread_callback_while_stopped.txt"),
    ok = py:register_function(ep_probe, fun(_) -> ok end),
    ok = define([
        "import threading, time, asyncio",
        "def ep_stopped_work(done):",
        "    # Stopping the application forgets the registered names after it clears the",
        "    # router: once the name is gone, calls find no router.",
        "    while erlang._native._is_registered('ep_probe'):",
        "        time.sleep(0.005)",
        "    out = []",
        "    for attempt in (lambda: erlang.call('ep_probe'),",
        "                    lambda: asyncio.run(erlang.async_call('ep_probe'))):",
        "        try:",
        "            attempt()",
        "        except Exception as e:",
        "            out.append(f'{type(e).__name__} {getattr(e, \"reason\", None)}')",
        "    with open(done + '.tmp', 'w') as f:",
        "        f.write('\\n'.join(out))",
        "    __import__('os').rename(done + '.tmp', done)"
    ]),
    {ok, _} = py:eval(<<"threading.Thread(target=ep_stopped_work, args=(done,), daemon=True)"
                        ".start()">>, #{done => list_to_binary(Done)}),
    ok = py_test_util:stop(),
    %% The application stays stopped until the thread has written what it got.
    ok = py_test_util:wait_until(fun() -> filelib:is_regular(Done) end, 10000),
    {ok, <<"ErlangError not_started\nErlangError not_started">>} = file:read_file(Done),
    ok = py_test_util:start().

%%% ---------------------------------------------------------------- timeouts and deaths

%% @doc A fun slower than the call's timeout gives {error, timeout}, also for a caller with a
%% long mailbox; no late message, and every executor is usable at once.
-spec callback_slower_than_timeout(ct_suite:ct_config()) -> term().
callback_slower_than_timeout(_Config) ->
    ok = py:register_function(cb_slow, fun([Ms]) -> receive after Ms -> slept end end),
    %% A busy caller: the reply the job sends once the fun returns arrives while the caller
    %% still scans its mailbox, and must not be returned after the deadline passed.
    ok = py:register_function(cb_slow_busy, fun([Ms]) ->
                                                    [self() ! junk || _ <- lists:seq(1, 100000)],
                                                    receive after Ms -> slept end
                                            end),
    ok = define(["def ep_cb_call_slow(name, ms):", "    return erlang.call(name, ms)"]),
    {error, timeout} = py:call('__main__', ep_cb_call_slow, [cb_slow, 300], #{}, 50),
    {error, timeout} = py:eval(<<"erlang.cb_slow(300)">>, #{}, 50),
    Busy = fun() ->
                   {py:call('__main__', ep_cb_call_slow, [cb_slow_busy, 30], #{}, 10),
                    py:eval(<<"erlang.cb_slow_busy(30)">>, #{}, 10)}
           end,
    {{error, timeout}, {error, timeout}} = py_test_util:run_bounded(Busy, 30000),
    %% Longer than anything the cancelled jobs could still send.
    ok = py_test_util:assert_no_message(300),
    ok = all_executors_usable().

%% @doc A caller killed while its callback runs frees the executor; all executors work after.
-spec caller_killed_during_callback(ct_suite:ct_config()) -> term().
caller_killed_during_callback(_Config) ->
    Self = self(),
    ok = py:register_function(cb_block, fun([]) ->
                                                Self ! {blocked, self()},
                                                receive after infinity -> ok end
                                        end),
    N = py:num_executors(),
    Pids = [spawn(fun() -> Self ! {returned, self(), py:eval(<<"erlang.cb_block()">>)} end)
            || _ <- lists:seq(1, N)],
    Functions = [receive
                     {blocked, Function} -> Function;
                     {returned, _, R} -> ct:fail({returned, R})
                 end || _ <- Pids],
    ok = py_test_util:kill_and_wait(Pids),
    %% The functions' processes die with their callers (linked).
    ok = py_test_util:wait_until(
           fun() -> not lists:any(fun erlang:is_process_alive/1, Functions) end, 5000),
    ok = all_executors_usable(),
    %% Occupancy is a NIF-side counter: polling is the only way to observe it.
    ok = py_test_util:wait_for_value(
           fun() -> maps:get(pending_requests, py_pool:get_stats()) end, 0, 5000).

%% @doc 200 concurrent processes each eval code calling erlang.cb_add(I, I): all right.
-spec concurrent_callers_with_callbacks(ct_suite:ct_config()) -> term().
concurrent_callers_with_callbacks(_Config) ->
    Results = py_test_util:pmap(
                fun(I) ->
                        Code = iolist_to_binary(io_lib:format("erlang.cb_add(~b, ~b)", [I, I])),
                        {I, py:eval(Code, #{}, 60000)}
                end, lists:seq(1, 200), 120000),
    [] = [R || {I, Got} = R <- Results, Got =/= {ok, 2 * I}],
    %% A NIF-side counter, decremented after the reply is sent: poll it.
    ok = py_test_util:wait_for_value(
           fun() -> maps:get(pending_requests, py_pool:get_stats()) end, 0, 5000).

%%% ---------------------------------------------------------------- helpers

%% Runs Python source given as lines in the shared namespace.
define(Lines) ->
    py:exec(iolist_to_binary([[L, $\n] || L <- Lines])).

%% Every executor runs a job at the same time: N calls meet at an N-party barrier.
all_executors_usable() ->
    N = py:num_executors(),
    ok = py:exec(iolist_to_binary(
                   io_lib:format("import threading\nep_cb_barrier = threading.Barrier(~b)\n",
                                 [N]))),
    Results = py_test_util:pmap(fun(_) -> py:eval(<<"ep_cb_barrier.wait(5)">>, #{}, 10000) end,
                                lists:seq(1, N), 20000),
    true = lists:all(fun({ok, I}) -> is_integer(I); (_) -> false end, Results),
    ok.

%% Zero that the compiler cannot see through.
zero() ->
    erlang:phash2(self()) * 0.
