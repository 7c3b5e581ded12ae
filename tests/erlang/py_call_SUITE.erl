%% @doc py:call/3,4,5, call_async/await, errors, timeouts and concurrency.
-module(py_call_SUITE).

-include_lib("common_test/include/ct.hrl").

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).

-export([
    call_math_sqrt/1,
    call_json_dumps_loads/1,
    call_kwargs/1,
    call_kwargs_key_types/1,
    call_kwargs_bad_key/1,
    call_kwargs_keyword_list/1,
    call_kwargs_keyword_list_everywhere/1,
    call_kwargs_keyword_list_bad/1,
    call_with_timeout_arg/1,
    call_name_types/1,
    call_dotted_module/1,
    call_module_being_imported/1,
    call_main_after_exec_from_other_process/1,
    call_main_unknown_name/1,
    call_unknown_module/1,
    call_unknown_function/1,
    call_timeout_sleep/1,
    call_timeout_busy_loop/1,
    call_timeout_not_caught_by_except_exception/1,
    call_timeout_no_late_reply/1,
    killed_callers_free_executors/1,
    killed_busy_callers_free_executors/1,
    concurrent_sleeps_overlap/1,
    thousand_concurrent_callers/1,
    call_async_await/1,
    call_async_kwargs/1,
    call_async_error/1,
    call_async_many_out_of_order/1,
    await_timeout/1,
    await_unknown_ref/1,
    error_user_defined_class_is_binary/1,
    error_existing_atom_class/1,
    error_fake_builtin_class_is_binary/1,
    error_lone_surrogates/1,
    error_module_class_existing_atom/1,
    error_builtin_classes/1,
    error_utf8_message/1,
    last_traceback/1,
    last_traceback_per_process/1,
    stop_iteration/1,
    rust_panic_is_internal_error/1,
    bad_args_not_list/1,
    bad_kwargs_not_map_or_list/1,
    bad_timeout/1,
    bad_names/1,
    improper_args_list/1,
    arguments_freed_after_the_reply/1,
    not_started_after_stop/1
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
    py_test_util:flush(),
    Config.

-spec end_per_testcase(atom(), ct_suite:ct_config()) -> ok.
end_per_testcase(_Case, _Config) ->
    ok.

%%% ---------------------------------------------------------------- happy paths

%% @doc call/3 runs math.sqrt and returns a float.
-spec call_math_sqrt(ct_suite:ct_config()) -> term().
call_math_sqrt(_Config) ->
    {ok, 4.0} = py:call(math, sqrt, [16]),
    {ok, 1.4142135623730951} = py:call(math, sqrt, [2]),
    {ok, 3} = py:call(builtins, len, [[a, b, c]]),
    {ok, none} = py:call(time, sleep, [0]).

%% @doc json.dumps/json.loads convert maps, lists, floats, null and booleans both ways.
-spec call_json_dumps_loads(ct_suite:ct_config()) -> term().
call_json_dumps_loads(_Config) ->
    {ok, <<"{\"a\": [1, 2.5, null, true]}">>} =
        py:call(json, dumps, [#{<<"a">> => [1, 2.5, none, true]}]),
    {ok, #{<<"a">> := [1, 2.5, none, true], <<"b">> := #{<<"c">> := <<"d">>}}} =
        py:call(json, loads, [<<"{\"a\": [1, 2.5, null, true], \"b\": {\"c\": \"d\"}}">>]),
    {ok, <<"\"\\u00e9\"">>} = py:call(json, dumps, [<<"é"/utf8>>]).

%% @doc call/4 passes keyword arguments.
-spec call_kwargs(ct_suite:ct_config()) -> term().
call_kwargs(_Config) ->
    {ok, <<"[1,2]">>} = py:call(json, dumps, [[1, 2]], #{separators => {<<",">>, <<":">>}}),
    {ok, <<"{\"a\": 1, \"b\": 2}">>} =
        py:call(json, dumps, [#{b => 2, a => 1}], #{sort_keys => true}),
    {ok, 3} = py:call(builtins, int, [<<"11">>], #{base => 2}),
    {ok, 11} = py:call(builtins, int, [<<"11">>], #{}).

%% @doc Kwargs keys may be atoms, binaries or strings.
-spec call_kwargs_key_types(ct_suite:ct_config()) -> term().
call_kwargs_key_types(_Config) ->
    {ok, <<"{\n\"a\": 1\n}">>} =
        py:call(json, dumps, [#{a => 1}], #{<<"indent">> => 0, "sort_keys" => true}),
    {ok, 5} = py:call(builtins, int, [<<"101">>], #{"base" => 2}),
    {ok, 5} = py:call(builtins, int, [<<"101">>], #{<<"base">> => 2}).

%% @doc A kwargs key that is not an atom/binary/string gives a TypeError, never a crash.
-spec call_kwargs_bad_key(ct_suite:ct_config()) -> term().
call_kwargs_bad_key(_Config) ->
    {error, {'TypeError', Msg}} = py:call(json, dumps, [1], #{1 => 2}),
    true = is_binary(Msg),
    {error, {'TypeError', _}} = py:call(json, dumps, [1], #{{a} => 2}),
    {ok, 2.0} = py:call(math, sqrt, [4]).

%% @doc Kwargs may be a keyword list, `[{Name, Value}]' with atom names (Elixir's
%% `base: 16'), passed in order; `[]' means none.
-spec call_kwargs_keyword_list(ct_suite:ct_config()) -> term().
call_kwargs_keyword_list(_Config) ->
    {ok, 255} = py:call(builtins, int, [<<"ff">>], [{base, 16}]),
    {ok, 11} = py:call(builtins, int, [<<"11">>], []),
    {ok, 5} = py:call(builtins, int, [<<"101">>], [{base, 2}], 5000),
    {ok, <<"{\n\"a\": 1\n}">>} =
        py:call(json, dumps, [#{a => 1}], [{indent, 0}, {sort_keys, true}]),
    %% Keyword arguments reach Python in the list's order.
    ok = py:exec(<<"def kw_order(**kw): return list(kw)">>),
    {ok, [<<"b">>, <<"a">>, <<"c">>]} =
        py:call('__main__', kw_order, [], [{b, 1}, {a, 2}, {c, 3}]),
    %% Values follow the conversion table, as in a map.
    {ok, #{<<"v">> := [1, <<"x">>, none, {1, 2}]}} =
        py:call(builtins, dict, [], [{v, [1, <<"x">>, undefined, {1, 2}]}]).

%% @doc Every function that takes keyword arguments takes a keyword list.
-spec call_kwargs_keyword_list_everywhere(ct_suite:ct_config()) -> term().
call_kwargs_keyword_list_everywhere(_Config) ->
    ok = py:exec(<<"def kw_gen(n, *, step):\n    yield from range(0, n * step, step)\n"
                   "async def kw_agen(n, *, step):\n"
                   "    for i in range(n):\n        yield i * step\n">>),
    {ok, 255} = py:await(py:call_async(builtins, int, [<<"ff">>], [{base, 16}])),
    {ok, 5} = py:async_await(py:async_call(asyncio, sleep, [0], [{result, 5}])),
    {ok, [0, 3, 6]} = py:async_stream('__main__', kw_agen, [3], [{step, 3}]),
    {ok, [5, 255]} =
        py:async_gather([{asyncio, sleep, [0], [{result, 5}]},
                         {builtins, int, [<<"ff">>], [{base, 16}]}]),
    {ok, [0, 2, 4]} = py:stream('__main__', kw_gen, [3], [{step, 2}]),
    {ok, Ctx} = py:bind(new),
    {ok, 255} = py:ctx_call(Ctx, builtins, int, [<<"ff">>], [{base, 16}]),
    {ok, 7} = py:ctx_call(Ctx, builtins, int, [<<"111">>], [{base, 2}], 5000),
    ok = py:unbind(Ctx).

%% @doc A keyword list that is improper, holds anything but `{atom(), Value}' pairs, or names
%% one argument twice gives a TypeError naming the problem, and the function is not called.
-spec call_kwargs_keyword_list_bad(ct_suite:ct_config()) -> term().
call_kwargs_keyword_list_bad(_Config) ->
    ok = py:exec(<<"kw_calls = []\ndef kw_record(**kw):\n    kw_calls.append(kw)\n">>),
    Pairs = <<"a keyword argument list holds {Name, Value} pairs whose Name is an atom">>,
    Bad = [
        {[{base, 16} | 2], <<"cannot convert an improper Erlang list to Python">>},
        {[{base, 16}, base], Pairs},
        {[{<<"base">>, 16}], Pairs},
        {[{"base", 16}], Pairs},
        {[{base, 16, 1}], Pairs},
        {[{base}], Pairs},
        {[16], Pairs},
        {[{base, 16}, {base, 10}], <<"keyword argument 'base' is given more than once">>}
    ],
    lists:foreach(
        fun({Kwargs, Msg}) ->
            {error, {'TypeError', Msg}} = py:call('__main__', kw_record, [], Kwargs),
            {error, {'TypeError', Msg}} =
                py:await(py:call_async('__main__', kw_record, [], Kwargs)),
            {error, {'TypeError', Msg}} =
                py:async_await(py:async_call('__main__', kw_record, [], Kwargs))
        end,
        Bad),
    {ok, []} = py:eval(<<"kw_calls">>),
    %% A value with no Python equivalent, as in a map.
    {error, {'TypeError', _}} = py:call('__main__', kw_record, [], [{f, fun() -> ok end}]),
    {ok, []} = py:eval(<<"kw_calls">>),
    ok = py_test_util:assert_mailbox_empty().

%% @doc call/5 accepts an integer timeout and infinity.
-spec call_with_timeout_arg(ct_suite:ct_config()) -> term().
call_with_timeout_arg(_Config) ->
    {ok, 2.0} = py:call(math, sqrt, [4], #{}, 5000),
    {ok, 3.0} = py:call(math, sqrt, [9], #{}, infinity),
    {ok, <<"[1,2]">>} =
        py:call(json, dumps, [[1, 2]], #{separators => {<<",">>, <<":">>}}, 5000).

%% @doc Module and function names can be atoms, binaries or strings (mixed too).
-spec call_name_types(ct_suite:ct_config()) -> term().
call_name_types(_Config) ->
    {ok, 3.0} = py:call(math, sqrt, [9]),
    {ok, 3.0} = py:call(<<"math">>, <<"sqrt">>, [9]),
    {ok, 3.0} = py:call("math", "sqrt", [9]),
    {ok, 3.0} = py:call(<<"math">>, sqrt, [9]),
    {ok, 3.0} = py:call("math", <<"sqrt">>, [9]),
    {ok, 3.0} = py:call(math, "sqrt", [9], #{}),
    {ok, 3.0} = py:call(math, "sqrt", [9], #{}, 5000).

%% @doc A dotted module name imports the submodule.
-spec call_dotted_module(ct_suite:ct_config()) -> term().
call_dotted_module(_Config) ->
    {ok, <<"a/b">>} = py:call('os.path', join, [<<"a">>, <<"b">>]),
    {ok, <<"c">>} = py:call(<<"os.path">>, basename, [<<"/a/b/c">>]).

%% @doc A function exec'd by one process is reachable as '__main__' from another.
-spec call_main_after_exec_from_other_process(ct_suite:ct_config()) -> term().
call_main_after_exec_from_other_process(_Config) ->
    Code = <<"def ep_call_add(a, b=0):\n    return a + b\n">>,
    Job = py_test_util:spawn_call(fun() -> py:exec(Code) end),
    ok = py_test_util:await_call(Job, 10000),
    {ok, 3} = py:call('__main__', ep_call_add, [1, 2]),
    {ok, 6} = py:call('__main__', ep_call_add, [1], #{b => 5}),
    {ok, 6} = py:call(<<"__main__">>, <<"ep_call_add">>, [1], #{b => 5}),
    [{ok, 11}, {ok, 12}] =
        py_test_util:pmap(fun(I) -> py:call('__main__', ep_call_add, [10, I]) end, [1, 2]).

%% @doc A call into a module that another call is still importing waits until the import is
%% done, as Python's `import` does, instead of finding the module half built in sys.modules.
-spec call_module_being_imported(ct_suite:ct_config()) -> term().
call_module_being_imported(Config) ->
    Dir = unicode:characters_to_binary(
            filename:join(?config(priv_dir, Config), py_test_util:unique_name("mods"))),
    Mod = list_to_atom(py_test_util:unique_name("ep_slow_import")),
    ok = filelib:ensure_path(Dir),
    %% The module's body waits, half run, until the test lets it finish.
    ok = file:write_file(filename:join(Dir, atom_to_list(Mod) ++ ".py"),
                         ["import erlang\n",
                          "erlang.call('ep_importing')\n",
                          "def value():\n",
                          "    return 'ready'\n"]),
    Parent = self(),
    ok = py:register_function(ep_importing, fun([]) ->
                                                    Parent ! {importing, self()},
                                                    receive go -> none end
                                            end),
    {ok, none} = py:call(sys, 'path.insert', [0, Dir]),
    try
        Importer = py_test_util:spawn_call(fun() -> py:call(Mod, value, []) end),
        Body = receive {importing, Pid} -> Pid after 5000 -> ct:fail(no_import) end,
        {CallerPid, _} = Caller = py_test_util:spawn_call(fun() -> py:call(Mod, value, []) end),
        %% The second job runs, finding the module in sys.modules while its body waits (or it
        %% has already replied, which it must not have done with a half-built module).
        ok = py_test_util:wait_until(
               fun() ->
                       #{num_workers := N, available_workers := Free} = py_pool:get_stats(),
                       N - Free =:= 2 orelse not is_process_alive(CallerPid)
               end, 5000),
        Body ! go,
        {ok, <<"ready">>} = py_test_util:await_call(Importer, 5000),
        {ok, <<"ready">>} = py_test_util:await_call(Caller, 5000)
    after
        {ok, none} = py:call(sys, 'path.remove', [Dir]),
        ok = py:unregister_function(ep_importing)
    end.

%% @doc An unknown name in '__main__' is a NameError.
-spec call_main_unknown_name(ct_suite:ct_config()) -> term().
call_main_unknown_name(_Config) ->
    {error, {'NameError', Msg}} = py:call('__main__', ep_no_such_function_xyz, []),
    {match, _} = re:run(Msg, <<"ep_no_such_function_xyz">>).

%% @doc An unknown module is a ModuleNotFoundError.
-spec call_unknown_module(ct_suite:ct_config()) -> term().
call_unknown_module(_Config) ->
    {error, {'ModuleNotFoundError', <<"No module named 'ep_no_such_module_xyz'">>}} =
        py:call(ep_no_such_module_xyz, f, []),
    {error, {'ModuleNotFoundError', _}} = py:call(<<"ep_no_such_module_xyz.sub">>, f, []).

%% @doc An unknown function is an AttributeError.
-spec call_unknown_function(ct_suite:ct_config()) -> term().
call_unknown_function(_Config) ->
    {error, {'AttributeError', <<"module 'math' has no attribute 'nosuch'">>}} =
        py:call(math, nosuch, [1]).

%%% ---------------------------------------------------------------- timeouts

%% @doc A timed-out time.sleep(100) returns {error, timeout} and frees its executor.
-spec call_timeout_sleep(ct_suite:ct_config()) -> term().
call_timeout_sleep(_Config) ->
    N = py:num_executors(),
    [{error, timeout} = py:call(time, sleep, [100], #{}, 300) || _ <- lists:seq(1, N)],
    %% Had a timed-out sleep kept its executor, N of them would leave none free for 100 s.
    ok = py_test_util:wait_pool_idle(),
    {ok, 2.0} = py:call(math, sqrt, [4]),
    ok = py_test_util:assert_no_message(200),
    ok = py_test_util:assert_mailbox_empty().

%% @doc A timed-out `while True: pass` (holding the GIL) is stopped and frees its executor.
-spec call_timeout_busy_loop(ct_suite:ct_config()) -> term().
call_timeout_busy_loop(_Config) ->
    ok = py:exec(<<"def ep_spin():\n    while True:\n        pass\n">>),
    N = py:num_executors(),
    [{error, timeout} = py:call('__main__', ep_spin, [], #{}, 300) || _ <- lists:seq(1, N)],
    ok = py_test_util:wait_pool_idle(),
    {ok, 2.0} = py:call(math, sqrt, [4]),
    ok = py_test_util:assert_no_message(200),
    ok = py_test_util:assert_mailbox_empty().

%% @doc The interruption is a BaseException: `except Exception` in a loop does not swallow it.
-spec call_timeout_not_caught_by_except_exception(ct_suite:ct_config()) -> term().
call_timeout_not_caught_by_except_exception(_Config) ->
    Code = <<"def ep_spin_catching():\n"
             "    while True:\n"
             "        try:\n"
             "            while True:\n"
             "                pass\n"
             "        except Exception:\n"
             "            pass\n">>,
    ok = py:exec(Code),
    N = py:num_executors(),
    [{error, timeout} = py:call('__main__', ep_spin_catching, [], #{}, 300)
     || _ <- lists:seq(1, N)],
    ok = py_test_util:wait_pool_idle(),
    {ok, 2.0} = py:call(math, sqrt, [4]),
    ok = py_test_util:assert_no_message(200).

%% @doc A job that finishes just around its timeout never leaves a reply in the mailbox. Which
%% one wins the race is up to the schedulers (a caller scheduled late finds the reply already
%% there and returns it, as documented): either outcome is right, a stray reply never is.
-spec call_timeout_no_late_reply(ct_suite:ct_config()) -> term().
call_timeout_no_late_reply(_Config) ->
    [timeout_or(none, py:call(time, sleep, [0.3], #{}, 250)) || _ <- lists:seq(1, 5)],
    timeout_or(none, py:call(time, sleep, [0.5], #{}, 100)),
    %% Longer than the sleep: a reply that escaped cancellation would be here by now.
    ok = py_test_util:assert_no_message(700),
    ok = py_test_util:assert_mailbox_empty(),
    {ok, 2.0} = py:call(math, sqrt, [4]).

%% @doc Callers killed during time.sleep(100) on every executor release them all.
-spec killed_callers_free_executors(ct_suite:ct_config()) -> term().
killed_callers_free_executors(_Config) ->
    killed_callers(fun() -> py:call(time, sleep, [100]) end).

%% @doc Callers killed during a busy loop on every executor release them all.
-spec killed_busy_callers_free_executors(ct_suite:ct_config()) -> term().
killed_busy_callers_free_executors(_Config) ->
    ok = py:exec(<<"def ep_spin_killed():\n    while True:\n        pass\n">>),
    killed_callers(fun() -> py:call('__main__', ep_spin_killed, []) end).

killed_callers(CallFun) ->
    N = py:num_executors(),
    Pids = [spawn(CallFun) || _ <- lists:seq(1, N)],
    %% Occupancy is a NIF-side counter: polling is the only way to observe it.
    ok = py_test_util:wait_until(
           fun() -> maps:get(pending_requests, py_pool:get_stats()) >= N end, 5000),
    ok = py_test_util:kill_and_wait(Pids),
    ok = py_test_util:wait_pool_idle(),
    {ok, 3.0} = py:call(math, sqrt, [9]).

%%% ---------------------------------------------------------------- concurrency

%% @doc Calls that wait with the GIL released overlap: two calls from two processes meet at a
%% barrier (each waits until the other is there), and Python keeps running beside a long
%% time.sleep.
-spec concurrent_sleeps_overlap(ct_suite:ct_config()) -> term().
concurrent_sleeps_overlap(_Config) ->
    ok = py:exec(<<"import threading\nep_meet = threading.Barrier(2)\n">>),
    Meet = fun(_) -> py:call('__main__', 'ep_meet.wait', [30]) end,
    [{ok, A}, {ok, B}] = py_test_util:pmap(Meet, [1, 2]),
    [0, 1] = lists:sort([A, B]),
    %% A sleep that held the GIL would keep the other executor from running any Python.
    Sleeper = py_test_util:spawn_call(fun() -> py:call(time, sleep, [100], #{}, infinity) end),
    ok = py_test_util:wait_for_value(
           fun() -> maps:get(pending_requests, py_pool:get_stats()) end, 1, 10000),
    {ok, 2} = py:eval(<<"1 + 1">>),
    ok = py_test_util:kill_and_wait([element(1, Sleeper)]),
    ok = py_test_util:wait_pool_idle().

%% @doc 1,000 concurrent callers each get their own correct result.
-spec thousand_concurrent_callers(ct_suite:ct_config()) -> term().
thousand_concurrent_callers(_Config) ->
    Is = lists:seq(1, 1000),
    Results = py_test_util:pmap(
                fun(I) ->
                        {py:call(operator, mul, [I, 3]),
                         py:call(builtins, str, [I], #{}, 60000)}
                end, Is, 120000),
    Expected = [{{ok, I * 3}, {ok, integer_to_binary(I)}} || I <- Is],
    Expected = Results,
    #{pending_requests := 0} = py_pool:get_stats().

%% @doc call_async/3 returns a reference at once and await/1 gets the result.
-spec call_async_await(ct_suite:ct_config()) -> term().
call_async_await(_Config) ->
    Ref = py:call_async(math, sqrt, [25]),
    true = is_reference(Ref),
    {ok, 5.0} = py:await(Ref),
    Ref2 = py:call_async(<<"math">>, "pow", [2, 10]),
    {ok, 1024.0} = py:await(Ref2, 5000),
    ok = py_test_util:assert_mailbox_empty().

%% @doc call_async/4 passes keyword arguments.
-spec call_async_kwargs(ct_suite:ct_config()) -> term().
call_async_kwargs(_Config) ->
    Ref = py:call_async(json, dumps, [[1, 2]], #{separators => {<<",">>, <<":">>}}),
    {ok, <<"[1,2]">>} = py:await(Ref, 5000).

%% @doc An exception in an async call comes back from await as {error, {Type, Msg}}.
-spec call_async_error(ct_suite:ct_config()) -> term().
call_async_error(_Config) ->
    Ref = py:call_async(math, sqrt, [-1]),
    {error, {'ValueError', <<"math domain error">>}} = py:await(Ref, 5000),
    Ref2 = py:call_async(ep_no_such_module_xyz, f, []),
    {error, {'ModuleNotFoundError', _}} = py:await(Ref2, 5000).

%% @doc Several async calls in flight are awaited in any order, each with its own result.
-spec call_async_many_out_of_order(ct_suite:ct_config()) -> term().
call_async_many_out_of_order(_Config) ->
    Refs = [{I, py:call_async(operator, add, [I, 1000])} || I <- lists:seq(1, 50)],
    [{ok, Expected} = py:await(Ref, 10000) || {I, Ref} <- lists:reverse(Refs),
                                               Expected <- [I + 1000]],
    ok = py_test_util:assert_mailbox_empty().

%% @doc await/2 times out, stops the job, and no late reply lands in the mailbox.
-spec await_timeout(ct_suite:ct_config()) -> term().
await_timeout(_Config) ->
    Ref = py:call_async(time, sleep, [100]),
    {error, timeout} = py:await(Ref, 200),
    Ref2 = py:call_async(time, sleep, [0.3]),
    timeout_or(none, py:await(Ref2, 100)),
    ok = py_test_util:assert_no_message(500),
    ok = py_test_util:assert_mailbox_empty(),
    N = py:num_executors(),
    [{error, timeout} = py:await(py:call_async(time, sleep, [100]), 100) || _ <- lists:seq(1, N)],
    ok = py_test_util:wait_pool_idle(),
    {ok, 2.0} = py:call(math, sqrt, [4]).

%% @doc await/2 of a reference that is not an async call times out.
-spec await_unknown_ref(ct_suite:ct_config()) -> term().
await_unknown_ref(_Config) ->
    {error, timeout} = py:await(make_ref(), 50).

%%% ---------------------------------------------------------------- errors

%% @doc A user-defined exception class name that is not an atom comes back as a binary.
-spec error_user_defined_class_is_binary(ct_suite:ct_config()) -> term().
error_user_defined_class_is_binary(_Config) ->
    Name = py_test_util:unique_name("EpUserErr"),
    NameBin = list_to_binary(Name),
    Code = iolist_to_binary(
             ["class ", Name, "(Exception):\n    pass\n\n",
              "def ep_raise_user():\n    raise ", Name, "('boom')\n"]),
    ok = py:exec(Code),
    {error, {NameBin, <<"boom">>}} = py:call('__main__', ep_raise_user, []),
    %% Converting the error must not have minted the atom.
    badarg = try binary_to_existing_atom(NameBin, utf8) catch error:E -> E end.

%% @doc A user-defined exception class whose name is an existing atom comes back as that atom.
-spec error_existing_atom_class(ct_suite:ct_config()) -> term().
error_existing_atom_class(_Config) ->
    Code = <<"class ep_known_error(Exception):\n    pass\n\n"
             "def ep_raise_known():\n    raise ep_known_error('known')\n">>,
    ok = py:exec(Code),
    {error, {ep_known_error, <<"known">>}} = py:call('__main__', ep_raise_known, []).

%% @doc A class that claims to be builtin (`__module__ = "builtins"`) but is not one of the
%% builtin exceptions comes back as a binary, and no atom is minted from its name.
-spec error_fake_builtin_class_is_binary(ct_suite:ct_config()) -> term().
error_fake_builtin_class_is_binary(_Config) ->
    Name = py_test_util:unique_name("EpFakeBuiltin"),
    NameBin = list_to_binary(Name),
    Code = iolist_to_binary(
             ["class ", Name, "(Exception):\n    pass\n\n",
              Name, ".__module__ = 'builtins'\n\n",
              "def ep_raise_fake():\n    raise ", Name, "('fake')\n"]),
    ok = py:exec(Code),
    {error, {NameBin, <<"fake">>}} = py:call('__main__', ep_raise_fake, []),
    badarg = try binary_to_existing_atom(NameBin, utf8) catch error:E -> E end,
    %% A real builtin subclassed under a builtin's name is not the builtin either.
    ok = py:exec(<<"class ep_shadow(ValueError):\n    pass\n\n"
                   "ep_shadow.__module__ = 'builtins'\nep_shadow.__name__ = 'ValueError'\n\n"
                   "def ep_raise_shadow():\n    raise ep_shadow('shadow')\n">>),
    %% 'ValueError' exists as an atom, so it may be used; what matters is that the name of a
    %% class that is not builtin is never minted (above).
    {error, {'ValueError', <<"shadow">>}} = py:call('__main__', ep_raise_shadow, []).

%% @doc Lone surrogates (which UTF-8 cannot encode) in an exception's message or module name
%% come back replaced by U+FFFD, and the traceback is still the full formatted one.
-spec error_lone_surrogates(ct_suite:ct_config()) -> term().
error_lone_surrogates(_Config) ->
    Code = <<"class EpSurrogate(Exception):\n    pass\n"
             "EpSurrogate.__module__ = 'mod\\ud800'\n"
             "raise EpSurrogate('bad \\udc00 text')\n">>,
    {error, {<<"EpSurrogate">>, <<"bad ", Rest/binary>> = Msg}} = py:exec(Code),
    %% Valid UTF-8, with the replacement character where the surrogate was.
    Msg = unicode:characters_to_binary(Msg),
    {_, _} = binary:match(Rest, <<"\xef\xbf\xbd">>),
    {_, _} = binary:match(Rest, <<" text">>),
    <<"Traceback (most recent call last):", _/binary>> = Traceback = py:last_traceback(),
    {_, _} = binary:match(Traceback, <<".EpSurrogate: bad ">>).

%% @doc A non-builtin class from a module (json.JSONDecodeError) is an atom when it exists.
-spec error_module_class_existing_atom(ct_suite:ct_config()) -> term().
error_module_class_existing_atom(_Config) ->
    {error, {'JSONDecodeError', Msg}} = py:call(json, loads, [<<"{">>]),
    true = is_binary(Msg).

%% @doc Builtin exception classes come back as atoms with str(exc) as a binary.
-spec error_builtin_classes(ct_suite:ct_config()) -> term().
error_builtin_classes(_Config) ->
    {error, {'ZeroDivisionError', <<"division by zero">>}} =
        py:call(operator, truediv, [1, 0]),
    {error, {'KeyError', <<"'k'">>}} = py:call(operator, getitem, [#{}, <<"k">>]),
    {error, {'ValueError', <<"math domain error">>}} = py:call(math, sqrt, [-1]),
    {error, {'TypeError', _}} = py:call(math, sqrt, [<<"x">>]),
    {error, {'FileNotFoundError', _}} = py:call(builtins, open, [<<"/nonexistent/ep/x">>]),
    {error, {'OverflowError', _}} = py:call(math, exp, [1000]).

%% @doc Exception messages are UTF-8 binaries.
-spec error_utf8_message(ct_suite:ct_config()) -> term().
error_utf8_message(_Config) ->
    ok = py:exec(<<"def ep_raise_utf8():\n    raise ValueError('héllo 日本 ✓')\n"/utf8>>),
    {error, {'ValueError', <<"héllo 日本 ✓"/utf8>>}} = py:call('__main__', ep_raise_utf8, []).

%% @doc last_traceback/0 returns the traceback of the caller's latest Python exception.
-spec last_traceback(ct_suite:ct_config()) -> term().
last_traceback(_Config) ->
    undefined = py_test_util:await_call(
                  py_test_util:spawn_call(fun() -> py:last_traceback() end), 5000),
    ok = py:exec(<<"def ep_tb_inner():\n    return 1 / 0\n\n"
                   "def ep_tb_outer():\n    return ep_tb_inner()\n">>),
    {error, {'ZeroDivisionError', _}} = py:call('__main__', ep_tb_outer, []),
    Tb = py:last_traceback(),
    true = is_binary(Tb),
    {match, _} = re:run(Tb, <<"ZeroDivisionError">>),
    {match, _} = re:run(Tb, <<"ep_tb_inner">>),
    {match, _} = re:run(Tb, <<"ep_tb_outer">>),
    %% A later success does not clear it.
    {ok, 2.0} = py:call(math, sqrt, [4]),
    Tb = py:last_traceback(),
    {error, {'ValueError', _}} = py:call(math, sqrt, [-1]),
    Tb2 = py:last_traceback(),
    {match, _} = re:run(Tb2, <<"ValueError">>).

%% @doc The stored traceback belongs to the process that got the exception.
-spec last_traceback_per_process(ct_suite:ct_config()) -> term().
last_traceback_per_process(_Config) ->
    {error, {'ZeroDivisionError', _}} = py:call(operator, truediv, [1, 0]),
    undefined = py_test_util:await_call(
                  py_test_util:spawn_call(fun() -> py:last_traceback() end), 5000),
    true = is_binary(py:last_traceback()).

%% @doc An escaping StopIteration gives {error, {stop_iteration, none}}.
-spec stop_iteration(ct_suite:ct_config()) -> term().
stop_iteration(_Config) ->
    ok = py:exec(<<"def ep_stop():\n    raise StopIteration\n\n"
                   "def ep_next_empty():\n    return next(iter([]))\n">>),
    {error, {stop_iteration, none}} = py:call('__main__', ep_stop, []),
    {error, {stop_iteration, none}} = py:call('__main__', ep_next_empty, []),
    {error, {stop_iteration, none}} = py:eval(<<"next(iter([]))">>).

%% @doc A panic in the NIF's Rust code becomes {error, {internal, Msg}} and the executor lives on.
%% (A result set that its own conversion mutates makes pyo3's set iterator panic; a dict
%% mutated that way is a RuntimeError, py_convert_SUITE:results_read_in_place.)
-spec rust_panic_is_internal_error(ct_suite:ct_config()) -> ok.
rust_panic_is_internal_error(_Config) ->
    ok = py:exec(<<"class EpEvil:\n"
                   "    def tolist(self):\n"
                   "        ep_evil_dict.add(len(ep_evil_dict))\n"
                   "        return 1\n"
                   "EpEvil.__module__ = 'numpy'\n"
                   "ep_evil_dict = {EpEvil(), 'b'}\n">>),
    Executors = py:num_executors(),
    Results = [py:eval(<<"ep_evil_dict">>) || _ <- lists:seq(1, Executors * 2)],
    [{error, {internal, Msg}}] = lists:usort(Results),
    true = is_binary(Msg),
    [{ok, 2} = py:eval(<<"1 + 1">>) || _ <- lists:seq(1, Executors * 2)],
    ok.

%%% ---------------------------------------------------------------- bad arguments

%% @doc Args that is not a list raises badarg or function_clause.
-spec bad_args_not_list(ct_suite:ct_config()) -> term().
bad_args_not_list(_Config) ->
    Bad = [badarg, function_clause],
    _ = py_test_util:expect_raise(fun() -> py:call(math, sqrt, 4) end, Bad),
    _ = py_test_util:expect_raise(fun() -> py:call(math, sqrt, {4}) end, Bad),
    _ = py_test_util:expect_raise(fun() -> py:call(math, sqrt, #{}, #{}) end, Bad),
    _ = py_test_util:expect_raise(fun() -> py:call(math, sqrt, 4, #{}, 1000) end, Bad),
    _ = py_test_util:expect_raise(fun() -> py:call_async(math, sqrt, 4) end, Bad),
    {ok, 2.0} = py:call(math, sqrt, [4]).

%% @doc Kwargs that is neither a map nor a list raises badarg or function_clause.
-spec bad_kwargs_not_map_or_list(ct_suite:ct_config()) -> term().
bad_kwargs_not_map_or_list(_Config) ->
    Bad = [badarg, function_clause],
    _ = py_test_util:expect_raise(fun() -> py:call(math, sqrt, [4], {a, 1}) end, Bad),
    _ = py_test_util:expect_raise(fun() -> py:call(math, sqrt, [4], a, 1000) end, Bad),
    _ = py_test_util:expect_raise(fun() -> py:call(math, sqrt, [4], <<"a">>) end, Bad),
    _ = py_test_util:expect_raise(fun() -> py:call_async(math, sqrt, [4], {a, 1}) end, Bad),
    _ = py_test_util:expect_raise(fun() -> py:async_call(math, sqrt, [4], 1) end, Bad),
    {error, {bad_call, {math, sqrt, [4], a}}} = py:async_gather([{math, sqrt, [4], a}]).

%% @doc A timeout that is neither an integer nor infinity raises badarg or function_clause.
-spec bad_timeout(ct_suite:ct_config()) -> term().
bad_timeout(_Config) ->
    Bad = [badarg, function_clause],
    _ = py_test_util:expect_raise(fun() -> py:call(math, sqrt, [4], #{}, <<"1">>) end, Bad),
    _ = py_test_util:expect_raise(fun() -> py:call(math, sqrt, [4], #{}, 1.5) end, Bad),
    _ = py_test_util:expect_raise(fun() -> py:call(math, sqrt, [4], #{}, forever) end, Bad).

%% @doc Module or function names that are not atom/binary/string raise badarg or function_clause.
-spec bad_names(ct_suite:ct_config()) -> term().
bad_names(_Config) ->
    Bad = [badarg, function_clause],
    _ = py_test_util:expect_raise(fun() -> py:call(123, sqrt, [4]) end, Bad),
    _ = py_test_util:expect_raise(fun() -> py:call(math, {sqrt}, [4]) end, Bad),
    _ = py_test_util:expect_raise(fun() -> py:call(math, 1.5, [4]) end, Bad),
    _ = py_test_util:expect_raise(fun() -> py:call(self(), sqrt, [4]) end, Bad),
    {ok, 2.0} = py:call(math, sqrt, [4]).

%% @doc An improper Args list is rejected (raise or TypeError), never a crash.
-spec improper_args_list(ct_suite:ct_config()) -> term().
improper_args_list(_Config) ->
    Result = try py:call(math, sqrt, [4 | 5]) catch error:E -> {raised, E} end,
    ok = case Result of
             {raised, badarg} -> ok;
             {raised, function_clause} -> ok;
             {error, {'TypeError', _}} -> ok;
             Other -> ct:fail({unexpected, Other})
         end,
    {ok, 2.0} = py:call(math, sqrt, [4]).

%% @doc A call's arguments are freed once its caller has the reply, before the executor's next
%% request, and a finalizer among them may still call Erlang. Bound, so that both calls run on
%% one executor, one after the other (with or without a GIL).
-spec arguments_freed_after_the_reply(ct_suite:ct_config()) -> term().
arguments_freed_after_the_reply(_Config) ->
    ok = py:bind(),
    try
        Self = self(),
        ok = py:register_function(af_note, fun([X]) -> Self ! {af_noted, X}, ok end),
        ok = py:exec(<<"import erlang, gc\n"
                       "class AfFinal:\n"
                       "    def __del__(self):\n"
                       "        erlang.call('af_note', 'finalized')\n"
                       "def af_grow(xs):\n"
                       "    xs.append(AfFinal())\n"
                       "    return len(xs)\n"
                       "def af_alive():\n"
                       "    return sum(1 for o in gc.get_objects()\n"
                       "               if type(o) is dict and o.get('af') == 'spent')\n">>),
        Big = [#{<<"af">> => <<"spent">>, <<"i">> => I} || I <- lists:seq(1, 3000)],
        {ok, 3000} = py:call(builtins, len, [Big]),
        {ok, 0} = py:call('__main__', af_alive, []),
        {ok, 4} = py:call('__main__', af_grow, [[1, 2, 3]]),
        receive {af_noted, <<"finalized">>} -> ok end,
        {ok, 2} = py:call('__main__', af_grow, [[1]], #{}, 5000),
        receive {af_noted, <<"finalized">>} -> ok end
    after
        py:unregister_function(af_note),
        py:unbind()
    end.

%% @doc After application:stop, calls return {error, not_started}; start makes them work again.
-spec not_started_after_stop(ct_suite:ct_config()) -> term().
not_started_after_stop(_Config) ->
    ok = py_test_util:stop(),
    {error, not_started} = py:call(math, sqrt, [4]),
    {error, not_started} = py:call(math, sqrt, [4], #{}),
    {error, not_started} = py:call(math, sqrt, [4], #{}, 1000),
    {error, not_started} = py:eval(<<"1 + 1">>),
    {error, not_started} = py:exec(<<"x = 1">>),
    {error, not_started} = py:await(py:call_async(math, sqrt, [4]), 1000),
    ok = py_test_util:start(),
    {ok, 2.0} = py:call(math, sqrt, [4]).

%% A call racing its own timeout: `{error, timeout}', or the reply that was already there when
%% the caller looked (`{ok, Value}').
-spec timeout_or(term(), py:py_result()) -> ok.
timeout_or(_Value, {error, timeout}) -> ok;
timeout_or(Value, {ok, Value}) -> ok.
