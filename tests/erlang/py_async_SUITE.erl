%% @doc Asyncio both ways: py:async_call/3,4, async_await/1,2, async_gather/1,2,
%% async_stream/3,4 (coroutines finished on erlang_python's event loop), the coroutines that
%% py:call, ctx_call, call_async and eval get back (awaited on the same loop), and
%% erlang.async_call (Python coroutines calling Erlang without blocking their loop).
-module(py_async_SUITE).

-include_lib("common_test/include/ct.hrl").

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).

-export([
    coroutine_result/1,
    plain_result_at_once/1,
    kwargs_and_main_namespace/1,
    coroutine_error_keeps_its_type/1,
    call_errors_before_the_coroutine/1,
    bad_arguments/1,
    coroutines_do_not_hold_executors/1,
    await_timeout_cancels_the_task/1,
    caller_death_cancels_the_task/1,
    cancel_during_handover/1,
    await_twice_and_unknown_ref/1,
    unconvertible_result/1,
    gather_in_order/1,
    gather_error_cancels_the_rest/1,
    gather_timeout/1,
    gather_bad_input/1,
    gather_many/1,
    stream_async_generator/1,
    stream_other_results/1,
    stream_error/1,
    stream_infinite_times_out/1,
    not_started/1,
    stop_with_coroutines_pending/1,
    erlang_async_call_runs_concurrently/1,
    erlang_async_call_from_executor_loop/1,
    erlang_async_call_errors/1,
    erlang_async_call_cancel_leaves_nothing/1,
    erlang_async_call_fun_killed/1,
    erlang_async_call_from_threads/1,
    erlang_async_call_reply_through_the_loop_inbox/1,
    erlang_async_call_loop_closed_with_replies_in_flight/1,
    erlang_async_call_cancel_racing_replies/1,
    erlang_async_call_one_by_one/1,
    erlang_async_call_held_reply_lets_the_loop_sleep/1,
    erlang_async_call_one_by_one_faults/1,
    call_awaits_a_coroutine/1,
    call_coroutine_error/1,
    call_coroutine_timeout_cancels_the_task/1,
    call_coroutine_caller_death_cancels_the_task/1,
    call_coroutine_cancelled_in_python/1,
    call_coroutines_do_not_hold_executors/1,
    call_coroutine_from_a_callback/1,
    call_other_results_unchanged/1,
    call_coroutine_never_unawaited/1,
    cancel_racing_hand_over_loses_nothing/1,
    async_def_needs_no_executor/1,
    redefined_async_def_runs_on_an_executor/1,
    bound_context_keeps_its_namespace/1,
    async_def_starts_in_a_fresh_context/1,
    async_def_ending_without_a_wait/1,
    async_def_call_errors/1,
    async_def_queued_for_the_loop_when_the_pool_stops/1
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

-define(DEFS, <<
    "import asyncio\n"
    "import erlang\n"
    "events = {}\n"
    "cancelled = set()\n"
    "started = set()\n"
    "def event(name):\n"
    "    return events.setdefault(name, asyncio.Event())\n"
    "async def dbl(x, delay=0):\n"
    "    await asyncio.sleep(delay)\n"
    "    return x * 2\n"
    "async def boom(msg='bad'):\n"
    "    await asyncio.sleep(0)\n"
    "    raise ValueError(msg)\n"
    "async def hang(tag):\n"
    "    started.add(tag)\n"
    "    try:\n"
    "        await asyncio.sleep(3600)\n"
    "    except asyncio.CancelledError:\n"
    "        cancelled.add(tag)\n"
    "        raise\n"
    "def hang_later(tag):\n"
    "    return hang(tag)\n"
    "async def wait_event(name, value):\n"
    "    await event(name).wait()\n"
    "    return value\n"
    "def set_event(name):\n"
    "    import erlang._aio\n"
    "    erlang._aio.loop().call_soon_threadsafe(event(name).set)\n"
    "async def agen(n, delay=0):\n"
    "    for i in range(n):\n"
    "        await asyncio.sleep(delay)\n"
    "        yield i\n"
    "async def agen_fails(n):\n"
    "    for i in range(n):\n"
    "        yield i\n"
    "    raise KeyError('late')\n"
    "async def forever():\n"
    "    i = 0\n"
    "    while True:\n"
    "        await asyncio.sleep(0.001)\n"
    "        yield i\n"
    "        i += 1\n"
    "async def returns_agen(n):\n"
    "    return agen(n)\n"
    "def sync_gen(n):\n"
    "    yield from range(n)\n"
    "async def opaque():\n"
    "    return object()\n"
    "async def cancels_itself():\n"
    "    asyncio.current_task().cancel()\n"
    "    await asyncio.sleep(1)\n"
    "async def awaits_cancelled():\n"
    "    future = asyncio.get_running_loop().create_future()\n"
    "    future.cancel()\n"
    "    await future\n"
    "def returns_future():\n"
    "    import erlang._aio\n"
    "    return asyncio.Future(loop=erlang._aio.loop())\n"
>>).

-spec init_per_testcase(atom(), ct_suite:ct_config()) -> ct_suite:ct_config().
init_per_testcase(_Case, Config) ->
    ok = py_test_util:start(),
    ok = py:exec(?DEFS),
    py_test_util:flush(),
    Config.

-spec end_per_testcase(atom(), ct_suite:ct_config()) -> ok.
end_per_testcase(_Case, _Config) ->
    ok.

%%% ---------------------------------------------------------------- py:async_call

%% @doc An async def's coroutine runs on the loop; async_await/1,2 get its result.
-spec coroutine_result(ct_suite:ct_config()) -> term().
coroutine_result(_Config) ->
    Ref = py:async_call('__main__', dbl, [21]),
    true = is_reference(Ref),
    {ok, 42} = py:async_await(Ref),
    {ok, <<"abab">>} = py:async_await(py:async_call('__main__', dbl, [<<"ab">>]), 5000),
    {ok, [1, 2, 1, 2]} = py:async_await(py:async_call(<<"__main__">>, "dbl", [[1, 2]])),
    py_test_util:assert_mailbox_empty().

%% @doc A function that returns no awaitable replies at once, as call_async does.
-spec plain_result_at_once(ct_suite:ct_config()) -> term().
plain_result_at_once(_Config) ->
    {ok, 3.0} = py:async_await(py:async_call(math, sqrt, [9])),
    {ok, none} = py:async_await(py:async_call(builtins, print, [])),
    %% A sync generator is not awaitable: it streams like any call's generator result.
    {ok, {generator, _}} = py:async_await(py:async_call('__main__', sync_gen, [3])).

%% @doc async_call/4 passes keyword arguments; '__main__' is the shared namespace.
-spec kwargs_and_main_namespace(ct_suite:ct_config()) -> term().
kwargs_and_main_namespace(_Config) ->
    {ok, 10} = py:async_await(py:async_call('__main__', dbl, [5], #{delay => 0.01})),
    ok = py:exec(<<"async def fmt(a, *, sep): return f'{a}{sep}{a}'">>),
    {ok, <<"x-x">>} = py:async_await(py:async_call('__main__', fmt, [<<"x">>], #{<<"sep">> => <<"-">>})).

%% @doc An exception in the coroutine keeps its class (1.6 lost it) and its traceback.
-spec coroutine_error_keeps_its_type(ct_suite:ct_config()) -> term().
coroutine_error_keeps_its_type(_Config) ->
    {error, {'ValueError', <<"bad">>}} = py:async_await(py:async_call('__main__', boom, [])),
    Traceback = py:last_traceback(),
    {match, _} = re:run(Traceback, <<"in boom">>),
    {error, {'ValueError', <<"é"/utf8>>}} =
        py:async_await(py:async_call('__main__', boom, [<<"é"/utf8>>])),
    py_test_util:assert_mailbox_empty().

%% @doc Import and call errors happen on the executor and come back the same way, not
%% double-wrapped.
-spec call_errors_before_the_coroutine(ct_suite:ct_config()) -> term().
call_errors_before_the_coroutine(_Config) ->
    {error, {'ModuleNotFoundError', _}} =
        py:async_await(py:async_call(no_such_module_xyz, f, [])),
    {error, {'AttributeError', _}} = py:async_await(py:async_call(math, no_such_fn, [])),
    {error, {'TypeError', _}} = py:async_await(py:async_call('__main__', dbl, [])),
    {error, {'NameError', _}} = py:async_await(py:async_call('__main__', undefined_fn, [])).

%% @doc Malformed requests fail in the caller, before anything is queued.
-spec bad_arguments(ct_suite:ct_config()) -> term().
bad_arguments(_Config) ->
    {'EXIT', {function_clause, _}} = (catch py:async_call(math, sqrt, not_a_list)),
    {'EXIT', {function_clause, _}} = (catch py:async_call(math, sqrt, [], not_a_map)),
    {'EXIT', {badarg, _}} = (catch py:async_call(42, sqrt, [])),
    {'EXIT', {function_clause, _}} = (catch py:async_await(not_a_ref)),
    {'EXIT', {function_clause, _}} = (catch py:async_await(make_ref(), -1)),
    {'EXIT', {function_clause, _}} = (catch py:async_stream(m, f, not_a_list)),
    py_test_util:assert_mailbox_empty().

%% @doc Waiting coroutines hold no executor: 20 of them wait for an event that only a later
%% py:call can set (with 2 executors held, that call could never run).
-spec coroutines_do_not_hold_executors(ct_suite:ct_config()) -> term().
coroutines_do_not_hold_executors(_Config) ->
    N = 20,
    Refs = [py:async_call('__main__', wait_event, [<<"go">>, I]) || I <- lists:seq(1, N)],
    {ok, #{pending_requests := 0}} = wait_idle(),
    {ok, none} = py:call('__main__', set_event, [<<"go">>]),
    Results = [py:async_await(Ref, 10000) || Ref <- Refs],
    Results = [{ok, I} || I <- lists:seq(1, N)].

%% @doc A timed-out await cancels the coroutine's task, and no late reply arrives.
-spec await_timeout_cancels_the_task(ct_suite:ct_config()) -> term().
await_timeout_cancels_the_task(_Config) ->
    Ref = py:async_call('__main__', hang, [<<"t1">>]),
    {error, timeout} = py:async_await(Ref, 100),
    py_test_util:wait_until(fun() -> is_cancelled(<<"t1">>) end, 5000),
    py_test_util:assert_no_message(100),
    %% Timeout 0: the job may not even have started (then its coroutine never exists).
    {error, timeout} = py:async_await(py:async_call('__main__', hang, [<<"t0">>]), 0),
    py_test_util:assert_no_message(100).

%% @doc When the caller dies, the coroutine's task is cancelled.
-spec caller_death_cancels_the_task(ct_suite:ct_config()) -> term().
caller_death_cancels_the_task(_Config) ->
    Self = self(),
    Pid = spawn(fun() ->
        _ = py:async_call('__main__', hang, [<<"dead">>]),
        Self ! started,
        receive stop -> ok end
    end),
    receive started -> ok end,
    %% The coroutine runs on the loop (an executor handed it over, or, `hang' being a known
    %% async def, the loop started it itself).
    py_test_util:wait_until(fun() -> is_started(<<"dead">>) end, 5000),
    py_test_util:kill_and_wait([Pid]),
    py_test_util:wait_until(fun() -> is_cancelled(<<"dead">>) end, 5000).

%% @doc A caller that stops waiting while its executor is still handing the coroutine to the
%% loop (the task already started, its cancel hook not registered yet) gets the coroutine
%% cancelled all the same. The hand-over is held open by wrapping the loop submission. The
%% function is a plain one returning the coroutine, so an executor always calls it.
-spec cancel_during_handover(ct_suite:ct_config()) -> term().
cancel_during_handover(_Config) ->
    ok = py:exec(<<
        "import erlang._aio, time, types\n"
        "held = False\n"
        "release = False\n"
        "real_aio_asyncio = erlang._aio.asyncio\n"
        "def held_submit(coro, loop):\n"
        "    global held\n"
        "    future = real_aio_asyncio.run_coroutine_threadsafe(coro, loop)\n"
        "    held = True\n"
        "    while not release:\n"
        "        time.sleep(0.005)\n"
        "    return future\n"
        "erlang._aio.asyncio = types.SimpleNamespace(\n"
        "    **{**vars(real_aio_asyncio), 'run_coroutine_threadsafe': held_submit})\n"
    >>),
    try
        Ref = py:async_call('__main__', hang_later, [<<"handover">>]),
        %% The task runs and the executor is inside the hand-over: cancel now.
        py_test_util:wait_until(fun() -> is_started(<<"handover">>) end, 10000),
        py_test_util:wait_until(fun() -> py:eval(<<"held">>) =:= {ok, true} end, 10000),
        {error, timeout} = py:async_await(Ref, 0),
        {ok, none} = py:eval(<<"globals().update(release=True)">>),
        py_test_util:wait_until(fun() -> is_cancelled(<<"handover">>) end, 10000),
        {ok, _} = wait_idle(),
        py_test_util:assert_mailbox_empty()
    after
        ok = py:exec(<<"erlang._aio.asyncio = real_aio_asyncio\nrelease = True\n">>)
    end.

%% @doc A ref is awaited once; awaiting it again (or a ref never returned by async_call)
%% times out.
-spec await_twice_and_unknown_ref(ct_suite:ct_config()) -> term().
await_twice_and_unknown_ref(_Config) ->
    Ref = py:async_call('__main__', dbl, [1]),
    {ok, 2} = py:async_await(Ref),
    {error, timeout} = py:async_await(Ref, 50),
    {error, timeout} = py:async_await(make_ref(), 50).

%% @doc A coroutine's result with no Erlang term comes back as an opaque handle, as for call.
-spec unconvertible_result(ct_suite:ct_config()) -> term().
unconvertible_result(_Config) ->
    {ok, Handle} = py:async_await(py:async_call('__main__', opaque, [])),
    true = is_reference(Handle),
    {ok, <<"object">>} = py:eval(<<"type(h).__name__">>, #{h => Handle}).

%%% ---------------------------------------------------------------- py:async_gather

%% @doc Results come in the order of the calls, whatever order the coroutines finish in.
-spec gather_in_order(ct_suite:ct_config()) -> term().
gather_in_order(_Config) ->
    Calls = [{'__main__', dbl, [I], #{delay => (10 - I) / 200}} || I <- lists:seq(1, 10)],
    {ok, [2, 4, 6, 8, 10, 12, 14, 16, 18, 20]} = py:async_gather(Calls),
    {ok, [6.0, 3.0]} = py:async_gather([{'__main__', dbl, [3.0]}, {math, sqrt, [9]}]),
    {ok, []} = py:async_gather([]),
    py_test_util:assert_mailbox_empty().

%% @doc The first failure is the result as soon as it happens, even with an earlier call still
%% waiting; the other coroutines are cancelled and leave nothing in the mailbox.
-spec gather_error_cancels_the_rest(ct_suite:ct_config()) -> term().
gather_error_cancels_the_rest(_Config) ->
    ok = py:exec(<<"async def boom_after(name, msg):\n    await event(name).wait()\n    raise ValueError(msg)\n">>),
    %% `first' fails only once `g1' runs, so that g1 is surely a running coroutine to cancel.
    _ = spawn_link(fun() ->
        py_test_util:wait_until(fun() -> is_started(<<"g1">>) end, 5000),
        {ok, none} = py:call('__main__', set_event, [<<"go_first">>])
    end),
    {error, {'ValueError', <<"first">>}} = py:async_gather([
        {'__main__', hang, [<<"g1">>]},
        {'__main__', dbl, [1]},
        {'__main__', boom_after, [<<"go_first">>, <<"first">>]},
        {'__main__', boom_after, [<<"never">>, <<"second">>]}
    ], infinity),
    py_test_util:wait_until(fun() -> is_cancelled(<<"g1">>) end, 5000),
    py_test_util:assert_no_message(100).

%% @doc gather/2's timeout covers all the calls; everything left is cancelled.
-spec gather_timeout(ct_suite:ct_config()) -> term().
gather_timeout(_Config) ->
    {error, timeout} =
        py:async_gather([{'__main__', dbl, [1]}, {'__main__', hang, [<<"g2">>]}], 200),
    py_test_util:wait_until(fun() -> is_cancelled(<<"g2">>) end, 5000),
    py_test_util:assert_no_message(100).

%% @doc A malformed element is reported before anything starts; a non-list is a
%% function_clause.
-spec gather_bad_input(ct_suite:ct_config()) -> term().
gather_bad_input(_Config) ->
    {error, {bad_call, {'__main__', dbl}}} = py:async_gather([{'__main__', dbl}]),
    {error, {bad_call, {m, f, notalist}}} =
        py:async_gather([{'__main__', dbl, [1]}, {m, f, notalist}]),
    {error, {bad_call, {1, f, []}}} = py:async_gather([{1, f, []}]),
    {error, {bad_call, {m, f, [], notamap}}} = py:async_gather([{m, f, [], notamap}]),
    {'EXIT', {function_clause, _}} = (catch py:async_gather(notalist)),
    {'EXIT', {function_clause, _}} = (catch py:async_gather([], -5)),
    py_test_util:assert_mailbox_empty().

%% @doc 500 coroutines at once, on 2 executors.
-spec gather_many(ct_suite:ct_config()) -> term().
gather_many(_Config) ->
    N = 500,
    {ok, Results} = py:async_gather([{'__main__', dbl, [I, 0.05]} || I <- lists:seq(1, N)]),
    Results = [2 * I || I <- lists:seq(1, N)].

%%% ---------------------------------------------------------------- py:async_stream

%% @doc An async generator's items, in order (1.6 lost them and timed out).
-spec stream_async_generator(ct_suite:ct_config()) -> term().
stream_async_generator(_Config) ->
    {ok, [0, 1, 2, 3, 4]} = py:async_stream('__main__', agen, [5]),
    {ok, []} = py:async_stream('__main__', agen, [0]),
    {ok, Items} = py:async_stream('__main__', agen, [10000]),
    Items = lists:seq(0, 9999),
    {ok, [0, 1, 2]} = py:async_stream('__main__', agen, [3], #{delay => 0.01}).

%% @doc A coroutine returning a value gives `{ok, Value}' (as in 1.6); one returning an async
%% generator gives its items; a sync generator its items; a plain value itself.
-spec stream_other_results(ct_suite:ct_config()) -> term().
stream_other_results(_Config) ->
    {ok, 10} = py:async_stream('__main__', dbl, [5]),
    {ok, [0, 1, 2]} = py:async_stream('__main__', returns_agen, [3]),
    {ok, [0, 1, 2, 3]} = py:async_stream('__main__', sync_gen, [4]),
    {ok, 3.0} = py:async_stream(math, sqrt, [9]).

%% @doc An exception part-way through the generator is the result, with its class.
-spec stream_error(ct_suite:ct_config()) -> term().
stream_error(_Config) ->
    {error, {'KeyError', <<"'late'">>}} = py:async_stream('__main__', agen_fails, [3]),
    {error, {'ValueError', <<"bad">>}} = py:async_stream('__main__', boom, []),
    {error, {'ModuleNotFoundError', _}} = py:async_stream(no_such_module_xyz, f, []).

%% @doc An endless async generator cannot be collected: the stream times out (after 30 s) and
%% its task is cancelled. Checked through async_call with stream semantics and a short
%% timeout: the same job kind async_stream uses.
-spec stream_infinite_times_out(ct_suite:ct_config()) -> term().
stream_infinite_times_out(_Config) ->
    Ref = make_ref(),
    Pool = persistent_term:get({erlang_python, pool}),
    Job = py_nif:pool_async(Pool, Ref, <<"__main__">>, <<"forever">>, [], #{}, true),
    true = is_reference(Job),
    receive {Ref, _} = Unexpected -> ct:fail({unexpected, Unexpected}) after 200 -> ok end,
    cancelled = py_nif:job_cancel(Job),
    py_test_util:assert_no_message(200).

%%% ---------------------------------------------------------------- lifecycle

%% @doc Without the application, every async function answers {error, not_started}.
-spec not_started(ct_suite:ct_config()) -> term().
not_started(_Config) ->
    ok = py_test_util:stop(),
    try
        {error, not_started} = py:async_await(py:async_call(math, sqrt, [4])),
        {error, not_started} = py:async_gather([{math, sqrt, [4]}]),
        {error, not_started} = py:async_stream('__main__', agen, [3])
    after
        ok = py_test_util:start()
    end.

%% @doc Stopping the application while coroutines wait does not hang; after a restart the
%% loop still serves new coroutines.
-spec stop_with_coroutines_pending(ct_suite:ct_config()) -> term().
stop_with_coroutines_pending(_Config) ->
    _ = [py:async_call('__main__', hang, [integer_to_binary(I)]) || I <- lists:seq(1, 10)],
    {ok, _} = wait_idle(),
    ok = py_test_util:restart(),
    ok = py:exec(?DEFS),
    {ok, 4} = py:async_await(py:async_call('__main__', dbl, [2])),
    py_test_util:flush().

%%% ---------------------------------------------------------------- erlang.async_call

%% @doc Calls from one coroutine run concurrently in Erlang: 10 functions that each wait until
%% all 10 have started complete (run one after the other, the first would wait forever).
-spec erlang_async_call_runs_concurrently(ct_suite:ct_config()) -> term().
erlang_async_call_runs_concurrently(_Config) ->
    N = 10,
    Barrier = spawn_link(fun() -> barrier(N, []) end),
    ok = py:register_function(as_barrier, fun([I]) ->
        Barrier ! {join, self()},
        receive go -> I * 10 after 5000 -> error(barrier_timeout) end
    end),
    ok = py:exec(<<
        "async def gather_barrier(n):\n"
        "    return await asyncio.gather(*(erlang.async_call('as_barrier', i) for i in range(n)))\n"
    >>),
    Expected = [I * 10 || I <- lists:seq(0, N - 1)],
    {ok, Expected} = py:async_await(py:async_call('__main__', gather_barrier, [N]), 10000),
    ok = py:unregister_function(as_barrier).

%% @doc A loop run by asyncio.run on an executor can use erlang.async_call too, and a
%% coroutine may also make a synchronous erlang.call.
-spec erlang_async_call_from_executor_loop(ct_suite:ct_config()) -> term().
erlang_async_call_from_executor_loop(_Config) ->
    ok = py:register_function(as_add, fun([A, B]) -> A + B end),
    ok = py:exec(<<
        "async def sum_via_erlang(n):\n"
        "    parts = await asyncio.gather(*(erlang.async_call('as_add', i, 1) for i in range(n)))\n"
        "    return erlang.call('as_add', sum(parts), 0)\n"
        "def run_loop(n):\n"
        "    return asyncio.run(sum_via_erlang(n))\n"
    >>),
    {ok, 55} = py:call('__main__', run_loop, [10]),
    {ok, 5050} = py:async_await(py:async_call('__main__', sum_via_erlang, [100])),
    ok = py:unregister_function(as_add).

%% @doc Failures raise erlang.ErlangError (or TypeError) in the coroutine, catchable there.
-spec erlang_async_call_errors(ct_suite:ct_config()) -> term().
erlang_async_call_errors(_Config) ->
    ok = py:register_function(as_crash, fun(_) -> error(kaboom) end),
    ok = py:register_function(as_throw, fun(_) -> throw(oops) end),
    ok = py:exec(<<
        "async def try_call(*args):\n"
        "    try:\n"
        "        return ('ok', await erlang.async_call(*args))\n"
        "    except erlang.ErlangError as e:\n"
        "        return ('erlang', e.erlang_class, e.reason)\n"
        "    except TypeError as e:\n"
        "        return ('type', str(e))\n"
    >>),
    Run = fun(Args) -> py:async_await(py:async_call('__main__', try_call, Args)) end,
    {ok, {<<"erlang">>, <<"error">>, <<"kaboom">>}} = Run([<<"as_crash">>]),
    {ok, {<<"erlang">>, <<"throw">>, <<"oops">>}} = Run([<<"as_throw">>]),
    {ok, {<<"erlang">>, <<"not_found">>, <<"as_nope">>}} = Run([<<"as_nope">>]),
    {ok, {<<"type">>, <<"Function name must be a string">>}} = Run([42]),
    {ok, {<<"type">>, _}} = py:async_await(py:async_call('__main__', try_call, [])),
    ok = py:unregister_function(as_crash),
    ok = py:unregister_function(as_throw).

%% @doc Cancelling awaits of slow Erlang functions leaves nothing waiting, at once; the
%% functions, let go afterwards, finish and their replies are dropped.
-spec erlang_async_call_cancel_leaves_nothing(ct_suite:ct_config()) -> term().
erlang_async_call_cancel_leaves_nothing(_Config) ->
    Self = self(),
    ok = py:register_function(as_slow, fun([X]) ->
                                               Self ! {as_slow, self()},
                                               receive go -> X end
                                       end),
    ok = py:exec(<<
        "async def cancel_many(n):\n"
        "    tasks = [asyncio.ensure_future(erlang.async_call('as_slow', i)) for i in range(n)]\n"
        "    while not all_slow_started:\n"
        "        await asyncio.sleep(0.005)\n"
        "    for t in tasks:\n"
        "        t.cancel()\n"
        "    results = await asyncio.gather(*tasks, return_exceptions=True)\n"
        "    return sum(isinstance(r, asyncio.CancelledError) for r in results)\n"
        "all_slow_started = False\n"
    >>),
    N = 100,
    Ref = py:async_call('__main__', cancel_many, [N]),
    %% Every function runs (in a process of its own) before the awaits are cancelled.
    Slow = [receive {as_slow, Pid} -> Pid end || _ <- lists:seq(1, N)],
    {ok, none} = py:eval(<<"globals().update(all_slow_started=True)">>),
    {ok, N} = py:async_await(Ref, 30000),
    0 = py_nif:callback_async_pending(),
    %% Let them finish: each replies (to nobody) before its process ends.
    Monitors = [erlang:monitor(process, Pid) || Pid <- Slow],
    [Pid ! go || Pid <- Slow],
    [receive {'DOWN', M, process, _, normal} -> ok end || M <- Monitors],
    0 = py_nif:callback_async_pending(),
    {ok, 2} = py:async_await(py:async_call('__main__', dbl, [1])),
    ok = py:unregister_function(as_slow).

%% @doc An Erlang function whose process is killed fails the await (an exit `killed')
%% instead of leaving it waiting.
-spec erlang_async_call_fun_killed(ct_suite:ct_config()) -> term().
erlang_async_call_fun_killed(_Config) ->
    ok = py:register_function(as_kill, fun(_) -> exit(self(), kill) end),
    ok = py:exec(<<
        "async def killed():\n"
        "    try:\n"
        "        await erlang.async_call('as_kill')\n"
        "    except erlang.ErlangError as e:\n"
        "        return (e.erlang_class, e.reason)\n"
    >>),
    {ok, {<<"exit">>, <<"killed">>}} = py:async_await(py:async_call('__main__', killed, []), 10000),
    {ok, {<<"exit">>, <<"killed">>}} = py:eval(<<"asyncio.run(killed())">>),
    0 = py_nif:callback_async_pending(),
    ok = py:unregister_function(as_kill).

%% @doc Loops in 4 Python threads, 50 calls each, all get their own results.
-spec erlang_async_call_from_threads(ct_suite:ct_config()) -> term().
erlang_async_call_from_threads(_Config) ->
    ok = py:register_function(as_ident, fun([X]) -> X end),
    ok = py:exec(<<
        "import threading\n"
        "def threads_calling(nthreads, ncalls):\n"
        "    out = {}\n"
        "    async def one(t):\n"
        "        return await asyncio.gather(*(erlang.async_call('as_ident', (t, i)) for i in range(ncalls)))\n"
        "    def run(t):\n"
        "        out[t] = asyncio.run(one(t))\n"
        "    ts = [threading.Thread(target=run, args=(t,)) for t in range(nthreads)]\n"
        "    for th in ts: th.start()\n"
        "    for th in ts: th.join()\n"
        "    return all(out[t] == [(t, i) for i in range(ncalls)] for t in range(nthreads))\n"
    >>),
    {ok, true} = py:call('__main__', threads_calling, [4, 50], #{}, 20000),
    ok = py:unregister_function(as_ident).

%% @doc The reply reaches the awaiting loop through that loop's own inbox (one thread hop):
%% erlang_python's loop, a loop of erlang.run and asyncio's own selector loop each get one on
%% their first call, distinct from the others'; 8 threads running loops at once each get only
%% their own replies (the function answers after a random pause, so replies interleave); a
%% loop's inbox waits for nothing once its calls are answered.
-spec erlang_async_call_reply_through_the_loop_inbox(ct_suite:ct_config()) -> term().
erlang_async_call_reply_through_the_loop_inbox(_Config) ->
    ok = py:register_function(as_jitter, fun([X]) -> timer:sleep(rand:uniform(3) - 1), X end),
    ok = py:exec(<<
        "import threading\n"
        "import erlang._async\n"
        "async def inbox_of_loop(n):\n"
        "    loop = asyncio.get_running_loop()\n"
        "    got = await asyncio.gather(*(erlang.async_call('as_jitter', i) for i in range(n)))\n"
        "    inbox = erlang._async._inbox_of(loop)\n"
        "    return (got == list(range(n)), type(inbox).__name__, inbox.waiting(), id(inbox))\n"
        "def inbox_in_selector_loop(n):\n"
        "    loop = asyncio.SelectorEventLoop()\n"
        "    try:\n"
        "        result = loop.run_until_complete(inbox_of_loop(n))\n"
        "        return result[:3] + (loop in erlang._async._inboxes,)\n"
        "    finally:\n"
        "        loop.close()\n"
        "def inboxes_of_threads(nthreads, ncalls):\n"
        "    out = {}\n"
        "    async def one(t):\n"
        "        got = await asyncio.gather(*(erlang.async_call('as_jitter', (t, i)) for i in range(ncalls)))\n"
        "        return got, erlang._async._inbox_of(asyncio.get_running_loop())\n"
        "    def run(t):\n"
        "        out[t] = erlang.run(one(t))\n"
        "    ts = [threading.Thread(target=run, args=(t,)) for t in range(nthreads)]\n"
        "    for th in ts: th.start()\n"
        "    for th in ts: th.join()\n"
        "    own = all(out[t][0] == [(t, i) for i in range(ncalls)] for t in range(nthreads))\n"
        "    return own, len({id(out[t][1]) for t in range(nthreads)})\n"
    >>),
    {ok, {true, <<"LoopInbox">>, 0, AioInbox}} =
        py:async_await(py:async_call('__main__', inbox_of_loop, [50]), 10000),
    {ok, {true, <<"LoopInbox">>, 0, RunInbox}} =
        py:eval(<<"erlang.run(inbox_of_loop(50))">>, #{}, 10000),
    true = AioInbox =/= RunInbox,
    {ok, {true, <<"LoopInbox">>, 0, true}} =
        py:call('__main__', inbox_in_selector_loop, [50], #{}, 10000),
    {ok, {true, 8}} = py:call('__main__', inboxes_of_threads, [8, 50], #{}, 30000),
    0 = py_nif:callback_async_pending(),
    ok = py:unregister_function(as_jitter).

%% @doc A loop closed while replies are on their way: the calls are sent, the loop is closed
%% with its tasks still waiting, then the Erlang functions reply: the replies are dropped,
%% nothing is left pending, and the next loop works.
-spec erlang_async_call_loop_closed_with_replies_in_flight(ct_suite:ct_config()) -> term().
erlang_async_call_loop_closed_with_replies_in_flight(_Config) ->
    Self = self(),
    ok = py:register_function(as_held, fun([X]) ->
                                               Self ! {as_held, self()},
                                               receive go -> X end
                                       end),
    ok = py:exec(<<
        "async def send_calls(n):\n"
        "    tasks = [asyncio.ensure_future(erlang.async_call('as_held', i)) for i in range(n)]\n"
        "    await asyncio.sleep(0)\n"
        "    return tasks\n"
        "def close_with_calls_pending(n):\n"
        "    loop = erlang.new_event_loop()\n"
        "    tasks = loop.run_until_complete(send_calls(n))\n"
        "    inbox = loop._erlang_inbox\n"
        "    waiting = inbox.waiting()\n"
        "    loop.close()\n"
        "    for task in tasks:\n"
        "        task._log_destroy_pending = False\n"
        "    return (waiting, inbox.waiting(), loop._erlang_inbox)\n"
    >>),
    N = 20,
    {ok, {N, 0, false}} = py:call('__main__', close_with_calls_pending, [N], #{}, 10000),
    Held = [receive {as_held, Pid} -> Pid after 10000 -> error(not_called) end
            || _ <- lists:seq(1, N)],
    N = py_nif:callback_async_pending(),
    Monitors = [erlang:monitor(process, Pid) || Pid <- Held],
    [Pid ! go || Pid <- Held],
    [receive {'DOWN', M, process, _, normal} -> ok end || M <- Monitors],
    0 = py_nif:callback_async_pending(),
    ok = py:register_function(as_again, fun([X]) -> X + 1 end),
    {ok, 3} = py:eval(<<"erlang.run(erlang.async_call('as_again', 2))">>),
    ok = py:unregister_function(as_again),
    ok = py:unregister_function(as_held).

%% @doc Awaits cancelled while their replies may already be queued in the loop's inbox: each
%% task ends with its own value or cancelled, never another's, and the inbox forgets every
%% call (nothing waiting, nothing pending) with the loop still answering the next call.
-spec erlang_async_call_cancel_racing_replies(ct_suite:ct_config()) -> term().
erlang_async_call_cancel_racing_replies(_Config) ->
    ok = py:register_function(as_ident, fun([X]) -> X end),
    ok = py:exec(<<
        "async def cancel_racing(n, rounds):\n"
        "    loop = asyncio.get_running_loop()\n"
        "    wrong = 0\n"
        "    for r in range(rounds):\n"
        "        tasks = [asyncio.ensure_future(erlang.async_call('as_ident', i)) for i in range(n)]\n"
        "        for _ in range(r % 3):\n"
        "            await asyncio.sleep(0)\n"
        "        for task in tasks[r % 2::2]:\n"
        "            task.cancel()\n"
        "        results = await asyncio.gather(*tasks, return_exceptions=True)\n"
        "        wrong += sum(not (isinstance(v, asyncio.CancelledError) or v == i)\n"
        "                     for i, v in enumerate(results))\n"
        "    after = await erlang.async_call('as_ident', 'after')\n"
        "    return (wrong, loop._erlang_inbox.waiting(), after)\n"
    >>),
    {ok, {0, 0, <<"after">>}} =
        py:async_await(py:async_call('__main__', cancel_racing, [50, 20]), 30000),
    {ok, {0, 0, <<"after">>}} = py:eval(<<"erlang.run(cancel_racing(50, 20))">>, #{}, 30000),
    0 = py_nif:callback_async_pending(),
    ok = py:unregister_function(as_ident).

%% @doc Calls awaited one by one (the loop waits for each reply spinning briefly before it
%% sleeps in its selector): 2000 on py:async_call's loop, on a loop of erlang.run and on an
%% ErlangEventLoop with a selector of its own (which never spins) each get their own value,
%% while another task of the same loop echoes over a socket pair and a timer fires; nothing is
%% left waiting.
-spec erlang_async_call_one_by_one(ct_suite:ct_config()) -> term().
erlang_async_call_one_by_one(_Config) ->
    ok = py:register_function(as_ident, fun([X]) -> X end),
    ok = py:exec(<<
        "import selectors, socket\n"
        "async def echo_over(sock, n):\n"
        "    loop = asyncio.get_running_loop()\n"
        "    for i in range(n):\n"
        "        data = await loop.sock_recv(sock, 16)\n"
        "        await loop.sock_sendall(sock, data)\n"
        "async def one_by_one(n):\n"
        "    loop = asyncio.get_running_loop()\n"
        "    a, b = socket.socketpair()\n"
        "    a.setblocking(False)\n"
        "    b.setblocking(False)\n"
        "    echo = asyncio.ensure_future(echo_over(b, n // 10))\n"
        "    fired = loop.create_future()\n"
        "    loop.call_later(0.001, fired.set_result, True)\n"
        "    wrong = 0\n"
        "    for i in range(n):\n"
        "        wrong += (await erlang.async_call('as_ident', i)) != i\n"
        "        if i % 10 == 0:\n"
        "            await loop.sock_sendall(a, b'%05d' % i)\n"
        "            wrong += (await loop.sock_recv(a, 16)) != b'%05d' % i\n"
        "    await echo\n"
        "    a.close()\n"
        "    b.close()\n"
        "    return (wrong, await fired, loop._erlang_inbox.waiting())\n"
        "def one_by_one_own_selector(n):\n"
        "    loop = erlang.ErlangEventLoop(selectors.SelectSelector())\n"
        "    try:\n"
        "        return loop.run_until_complete(one_by_one(n))\n"
        "    finally:\n"
        "        loop.close()\n"
    >>),
    {ok, {0, true, 0}} = py:async_await(py:async_call('__main__', one_by_one, [2000]), 30000),
    {ok, {0, true, 0}} = py:eval(<<"erlang.run(one_by_one(2000))">>, #{}, 30000),
    {ok, {0, true, 0}} = py:call('__main__', one_by_one_own_selector, [2000], #{}, 30000),
    0 = py_nif:callback_async_pending(),
    ok = py:unregister_function(as_ident).

%% @doc A loop whose call is held by its Erlang function stops waiting for it and sleeps: its
%% inbox's spin returns false (no reply can come), and meanwhile a timer fires, the same
%% loop's other calls one by one and a py:async_call get their answers; the held call gets its
%% own once let go. An idle inbox never spins.
-spec erlang_async_call_held_reply_lets_the_loop_sleep(ct_suite:ct_config()) -> term().
erlang_async_call_held_reply_lets_the_loop_sleep(_Config) ->
    Self = self(),
    ok = py:register_function(as_held, fun([X]) ->
                                               Self ! {as_held, self()},
                                               receive go -> X end
                                       end),
    ok = py:register_function(as_ident, fun([X]) -> X end),
    ok = py:exec(<<
        "import erlang._async\n"
        "async def held_while_others(owner, n):\n"
        "    loop = asyncio.get_running_loop()\n"
        "    await erlang.async_call('as_ident', 0)\n"
        "    inbox = erlang._async._inbox_of(loop)\n"
        "    idle = inbox.spin()\n"
        "    held = asyncio.ensure_future(erlang.async_call('as_held', 'held'))\n"
        "    await asyncio.sleep(0)\n"
        "    spun = inbox.spin()\n"
        "    await asyncio.sleep(0.001)\n"
        "    others = [await erlang.async_call('as_ident', i) for i in range(n)]\n"
        "    erlang.send(owner, 'others_done')\n"
        "    return (idle, spun, others == list(range(n)), await held, inbox.waiting())\n"
    >>),
    Ref = py:async_call('__main__', held_while_others, [Self, 100]),
    Held = receive {as_held, Pid} -> Pid after 10000 -> error(not_called) end,
    receive <<"others_done">> -> ok after 10000 -> error(others_not_done) end,
    %% A py:async_call while that loop still waits for the held reply.
    {ok, 42} = py:async_await(py:async_call('__main__', dbl, [21]), 10000),
    1 = py_nif:callback_async_pending(),
    Held ! go,
    {ok, {false, false, true, <<"held">>, 0}} = py:async_await(Ref, 10000),
    0 = py_nif:callback_async_pending(),
    ok = py:unregister_function(as_held),
    ok = py:unregister_function(as_ident).

%% @doc Faults one by one, on loops that may be spinning for the reply: functions killed
%% before they reply, functions that fail, and functions that call back into Python (a
%% py:call, which needs the GIL the waiting loop released) alternate with plain ones; each
%% await gets its own answer or error, and nothing is left pending.
-spec erlang_async_call_one_by_one_faults(ct_suite:ct_config()) -> term().
erlang_async_call_one_by_one_faults(_Config) ->
    ok = py:register_function(as_kill, fun(_) -> exit(self(), kill) end),
    ok = py:register_function(as_crash, fun(_) -> error(kaboom) end),
    ok = py:register_function(as_ident, fun([X]) -> X end),
    ok = py:register_function(as_py, fun([X]) -> {ok, Y} = py:call('__main__', plus_one, [X]), Y end),
    ok = py:exec(<<
        "def plus_one(x):\n"
        "    return x + 1\n"
        "async def faults_one_by_one(n):\n"
        "    wrong = 0\n"
        "    for i in range(n):\n"
        "        name = ('as_kill', 'as_crash', 'as_ident', 'as_py')[i % 4]\n"
        "        try:\n"
        "            got = ('ok', await erlang.async_call(name, i))\n"
        "        except erlang.ErlangError as e:\n"
        "            got = (e.erlang_class, e.reason)\n"
        "        expected = (('exit', 'killed'), ('error', 'kaboom'), ('ok', i), ('ok', i + 1))[i % 4]\n"
        "        wrong += got != expected\n"
        "    return wrong\n"
    >>),
    {ok, 0} = py:async_await(py:async_call('__main__', faults_one_by_one, [400]), 30000),
    {ok, 0} = py:eval(<<"erlang.run(faults_one_by_one(400))">>, #{}, 30000),
    0 = py_nif:callback_async_pending(),
    [ok = py:unregister_function(F) || F <- [as_kill, as_crash, as_ident, as_py]].

%%% ---------------------------------------------------------------- coroutines from py:call

%% @doc py:call, call_async, ctx_call, eval and stream of an async def give the coroutine's
%% result, awaited on erlang_python's loop, with arguments and keyword arguments.
-spec call_awaits_a_coroutine(ct_suite:ct_config()) -> term().
call_awaits_a_coroutine(_Config) ->
    {ok, 42} = py:call('__main__', dbl, [21]),
    {ok, 10} = py:call('__main__', dbl, [5], #{delay => 0.01}),
    {ok, <<"abab">>} = py:call('__main__', dbl, [<<"ab">>], #{}, 5000),
    {ok, 8} = py:await(py:call_async('__main__', dbl, [4])),
    {ok, 6} = py:eval(<<"dbl(x)">>, #{x => 3}),
    {ok, [14]} = py:stream('__main__', dbl, [7]),
    {ok, true} = py:call(asyncio, sleep, [0.01, true]),
    {ok, Ctx} = py:bind(new),
    try
        ok = py:ctx_exec(Ctx, <<"import asyncio\n"
                                "async def inc(x):\n"
                                "    await asyncio.sleep(0)\n"
                                "    return x + 1\n">>),
        {ok, 2} = py:ctx_call(Ctx, '__main__', inc, [1]),
        {ok, 3} = py:ctx_eval(Ctx, <<"inc(2)">>)
    after
        py:unbind(Ctx)
    end,
    py_test_util:assert_mailbox_empty().

%% @doc A coroutine that raises gives the exception's class and message, and its traceback.
-spec call_coroutine_error(ct_suite:ct_config()) -> term().
call_coroutine_error(_Config) ->
    {error, {'ValueError', <<"bad">>}} = py:call('__main__', boom, []),
    {match, _} = re:run(py:last_traceback(), <<"in boom">>),
    {error, {'ValueError', <<"é"/utf8>>}} = py:eval(<<"boom(m)">>, #{m => <<"é"/utf8>>}),
    {error, {'ValueError', <<"x">>}} = py:await(py:call_async('__main__', boom, [<<"x">>])),
    py_test_util:assert_mailbox_empty().

%% @doc A slow coroutine times out like a slow call: {error, timeout}, its task cancelled, no
%% late reply, the semaphore slot given back; eval and call_async/await time out the same way.
-spec call_coroutine_timeout_cancels_the_task(ct_suite:ct_config()) -> term().
call_coroutine_timeout_cancels_the_task(_Config) ->
    {error, timeout} = py:call('__main__', hang, [<<"c1">>], #{}, 100),
    py_test_util:wait_until(fun() -> is_cancelled(<<"c1">>) end, 5000),
    0 = py_semaphore:current(),
    {error, timeout} = py:eval(<<"hang(t)">>, #{t => <<"c2">>}, 100),
    py_test_util:wait_until(fun() -> is_cancelled(<<"c2">>) end, 5000),
    {error, timeout} = py:await(py:call_async('__main__', hang, [<<"c3">>]), 100),
    py_test_util:wait_until(fun() -> is_cancelled(<<"c3">>) end, 5000),
    {error, timeout} = py:call('__main__', hang, [<<"c0">>], #{}, 0),
    py_test_util:assert_no_message(100),
    {ok, 2} = py:call('__main__', dbl, [1]).

%% @doc When the process waiting in py:call dies, the coroutine's task is cancelled.
-spec call_coroutine_caller_death_cancels_the_task(ct_suite:ct_config()) -> term().
call_coroutine_caller_death_cancels_the_task(_Config) ->
    Pid = spawn(fun() -> py:call('__main__', hang, [<<"call-dead">>]) end),
    py_test_util:wait_until(fun() -> is_started(<<"call-dead">>) end, 5000),
    py_test_util:kill_and_wait([Pid]),
    py_test_util:wait_until(fun() -> is_cancelled(<<"call-dead">>) end, 5000),
    0 = py_semaphore:current().

%% @doc A coroutine cancelled from Python (not by its caller) fails with CancelledError.
-spec call_coroutine_cancelled_in_python(ct_suite:ct_config()) -> term().
call_coroutine_cancelled_in_python(_Config) ->
    {error, {'CancelledError', _}} = py:call('__main__', cancels_itself, []),
    {error, {'CancelledError', _}} = py:call('__main__', awaits_cancelled, []),
    {ok, 2} = py:call('__main__', dbl, [1]),
    py_test_util:assert_mailbox_empty().

%% @doc Coroutines from py:call wait on the loop, not on an executor: more callers than
%% executors (all the semaphore slots but one) wait for an event that only a later call can
%% set (with the executors held, that call could never run).
-spec call_coroutines_do_not_hold_executors(ct_suite:ct_config()) -> term().
call_coroutines_do_not_hold_executors(_Config) ->
    N = py_semaphore:max_concurrent() - 1,
    true = N > py:num_executors(),
    Call = fun(I) -> fun() -> py:call('__main__', wait_event, [<<"cgo">>, I]) end end,
    Callers = [py_test_util:spawn_call(Call(I)) || I <- lists:seq(1, N)],
    py_test_util:wait_for_value(fun() -> py_semaphore:current() end, N, 5000),
    {ok, _} = wait_idle(),
    {ok, none} = py:call('__main__', set_event, [<<"cgo">>]),
    Results = [py_test_util:await_call(C, 10000) || C <- Callers],
    Results = [{ok, I} || I <- lists:seq(1, N)].

%% @doc A py:call made by an Erlang function that Python called (nested on the waiting
%% executor) awaits its coroutine too.
-spec call_coroutine_from_a_callback(ct_suite:ct_config()) -> term().
call_coroutine_from_a_callback(_Config) ->
    ok = py:register_function(co_dbl, fun([X]) ->
        {ok, Y} = py:call('__main__', dbl, [X]),
        Y
    end),
    try
        ok = py:exec(<<"def via_erlang(x):\n    return erlang.call('co_dbl', x) + 1\n">>),
        {ok, 7} = py:call('__main__', via_erlang, [3])
    after
        ok = py:unregister_function(co_dbl)
    end.

%% @doc Only coroutines are awaited: a generator still streams, an async generator and a
%% future stay opaque handles, and async_stream still collects an async generator.
-spec call_other_results_unchanged(ct_suite:ct_config()) -> term().
call_other_results_unchanged(_Config) ->
    {ok, {generator, _}} = py:call('__main__', sync_gen, [3]),
    {ok, [0, 1, 2]} = py:stream('__main__', sync_gen, [3]),
    {ok, AsyncGen} = py:call('__main__', agen, [2]),
    {ok, <<"async_generator">>} = py:eval(<<"type(h).__name__">>, #{h => AsyncGen}),
    {ok, Future} = py:call('__main__', returns_future, []),
    {ok, <<"Future">>} = py:eval(<<"type(h).__name__">>, #{h => Future}),
    {ok, [0, 1]} = py:async_stream('__main__', agen, [2]),
    %% A coroutine inside a value is a value: it is not looked for.
    {ok, [Coro]} = py:eval(<<"[dbl(1)]">>),
    {ok, none} = py:eval(<<"h.close()">>, #{h => Coro}).

%% @doc No coroutine is left unawaited ("coroutine ... was never awaited" RuntimeWarning) by
%% calls that return, fail, time out or are given up, while a coroutine dropped unawaited is
%% seen by the same check (so the check works).
-spec call_coroutine_never_unawaited(ct_suite:ct_config()) -> term().
call_coroutine_never_unawaited(_Config) ->
    ok = py:exec(<<"import warnings\n"
                   "_catcher = warnings.catch_warnings(record=True)\n"
                   "caught = _catcher.__enter__()\n"
                   "warnings.simplefilter('always')\n"
                   "def unawaited():\n"
                   "    import gc\n"
                   "    gc.collect()\n"
                   "    texts = [str(w.message) for w in caught]\n"
                   "    return [t for t in texts if 'never awaited' in t]\n">>),
    try
        {ok, 2} = py:call('__main__', dbl, [1]),
        {ok, 4} = py:eval(<<"dbl(2)">>),
        {error, {'ValueError', _}} = py:call('__main__', boom, []),
        {error, {'CancelledError', _}} = py:call('__main__', cancels_itself, []),
        {error, timeout} = py:call('__main__', hang, [<<"w1">>], #{}, 50),
        py_test_util:wait_until(fun() -> is_cancelled(<<"w1">>) end, 5000),
        {error, timeout} = py:call('__main__', hang, [<<"w0">>], #{}, 0),
        Pid = spawn(fun() -> py:call('__main__', hang, [<<"w2">>]) end),
        py_test_util:wait_until(fun() -> is_started(<<"w2">>) end, 5000),
        py_test_util:kill_and_wait([Pid]),
        py_test_util:wait_until(fun() -> is_cancelled(<<"w2">>) end, 5000),
        {ok, []} = py:call('__main__', unawaited, []),
        %% The control: an exec drops its coroutine.
        ok = py:exec(<<"dbl(3)">>),
        {ok, [<<"coroutine 'dbl' was never awaited">>]} = py:call('__main__', unawaited, [])
    after
        ok = py:exec(<<"_catcher.__exit__(None, None, None)">>)
    end.

%% A caller that gives up at once races its executor's hand-over of the coroutine to the loop:
%% whichever way each race goes, no coroutine is left unawaited, every task that started is
%% cancelled, and no interrupt reaches a later job. Before the fixes it failed most runs on
%% 3.13t: an interrupt pending before the hand-over was raised in `erlang._aio.schedule', or in
%% the Python code that looked at the call's result (the coroutine ABC's subclass hook,
%% `erlang._aio.prepare'). (`py:eval' is left out: an interrupt may land in the evaluated
%% code right after it made the coroutine, as in any interrupted code.) `hang', a known async
%% def after its first call, races the loop's own start of the coroutine; `hang_later', a plain
%% function, the executor's hand-over.
-spec cancel_racing_hand_over_loses_nothing(ct_suite:ct_config()) -> term().
cancel_racing_hand_over_loses_nothing(_Config) ->
    ok = py:exec(<<"import warnings\n"
                   "_race_catcher = warnings.catch_warnings(record=True)\n"
                   "race_caught = _race_catcher.__enter__()\n"
                   "warnings.simplefilter('always')\n"
                   "def race_unawaited():\n"
                   "    import gc\n"
                   "    gc.collect()\n"
                   "    texts = [str(w.message) for w in race_caught]\n"
                   "    return [t for t in texts if 'never awaited' in t]\n"
                   "def race_left(prefix):\n"
                   "    return sorted(t for t in started - cancelled if t.startswith(prefix))\n">>),
    try
        Tags = [<<"race", (integer_to_binary(I))/binary>> || I <- lists:seq(1, 300)],
        lists:foreach(
            fun(Tag) ->
                {error, timeout} = py:call('__main__', hang, [Tag], #{}, 0),
                Ref = py:async_call('__main__', hang, [<<Tag/binary, "a">>]),
                {error, timeout} = py:async_await(Ref, 0),
                Later = py:async_call('__main__', hang_later, [<<Tag/binary, "b">>]),
                {error, timeout} = py:async_await(Later, 0),
                {ok, 2} = py:call('__main__', dbl, [1])
            end,
            Tags),
        {ok, _} = wait_idle(),
        py_test_util:wait_until(
            fun() -> {ok, []} =:= py:call('__main__', race_left, [<<"race">>]) end, 10000),
        {ok, []} = py:call('__main__', race_unawaited, [])
    after
        ok = py:exec(<<"_race_catcher.__exit__(None, None, None)">>)
    end.

%%% ---------------------------------------------------------------- straight to the loop

%% @doc Once an executor has seen that `dbl' is an async def, py:async_call (and py:call) of
%% it goes straight to the loop, which calls it and runs the coroutine: with every executor
%% busy it still completes, while a plain function (`math.sqrt') waits for an executor.
-spec async_def_needs_no_executor(ct_suite:ct_config()) -> term().
async_def_needs_no_executor(_Config) ->
    ok = py:exec(<<"import threading\n"
                   "held = {'warm-up': threading.Event(), 'executors': threading.Event()}\n"
                   "async def release(name):\n"
                   "    held[name].set()\n">>),
    %% Seen by an executor once: known async defs from now on.
    {ok, 2} = py:async_await(py:async_call('__main__', dbl, [1])),
    {ok, none} = py:async_await(py:async_call('__main__', release, [<<"warm-up">>])),
    ok = py:exec(<<"def hold_executor():\n    return held['executors'].wait(30)\n">>),
    Busy = [py:call_async('__main__', hold_executor, [])
            || _ <- lists:seq(1, py:num_executors())],
    try
        py_test_util:wait_until(
            fun() -> maps:get(queued, py_nif:pool_stats(pool())) =:= 0 end, 5000),
        {ok, 42} = py:async_await(py:async_call('__main__', dbl, [21]), 10000),
        %% py:call of a known async def too (an executor saw `dbl' in py:call_coroutine's way).
        {ok, 8} = py:call('__main__', dbl, [4], #{}, 10000),
        {ok, 10} = py:async_await(py:async_call('__main__', dbl, [5], #{delay => 0.01}), 10000),
        {ok, [{ok, 4}, {ok, 6}]} =
            {ok, [py:async_await(R, 10000)
                  || R <- [py:async_call('__main__', dbl, [X]) || X <- [2, 3]]]},
        Sqrt = py:async_call(math, sqrt, [4]),
        {error, timeout} = py:async_await(Sqrt, 200)
    after
        %% Straight to the loop as well: every executor is still held.
        {ok, none} = py:async_await(py:async_call('__main__', release, [<<"executors">>]), 10000)
    end,
    [{ok, true} = py:await(R, 10000) || R <- Busy],
    {ok, 3.0} = py:async_await(py:async_call(math, sqrt, [9])).

%% @doc A name that was an async def and is then bound to a plain function (or removed) is
%% called by an executor again: the loop checks before it calls anything.
-spec redefined_async_def_runs_on_an_executor(ct_suite:ct_config()) -> term().
redefined_async_def_runs_on_an_executor(_Config) ->
    ok = py:exec(<<"async def flip(x):\n    return ('async', x)\n">>),
    {ok, {<<"async">>, 1}} = py:async_await(py:async_call('__main__', flip, [1])),
    {ok, {<<"async">>, 2}} = py:async_await(py:async_call('__main__', flip, [2])),
    ok = py:exec(<<"import threading\n"
                   "def flip(x):\n    return ('sync', x, threading.current_thread().name)\n">>),
    {ok, {<<"sync">>, 3, Thread}} = py:async_await(py:async_call('__main__', flip, [3])),
    true = Thread =/= <<"erlang-asyncio">>,
    ok = py:exec(<<"del flip\n">>),
    {error, {'NameError', _}} = py:async_await(py:async_call('__main__', flip, [4])),
    ok = py:exec(<<"async def flip(x):\n    return ('async again', x)\n">>),
    {ok, {<<"async again">>, 5}} = py:async_await(py:async_call('__main__', flip, [5])),
    {ok, {<<"async again">>, 6}} = py:async_await(py:async_call('__main__', flip, [6])).

%% @doc A process bound to a context calls the function of the context's namespace, even
%% when `__main__''s function of that name is a known async def.
-spec bound_context_keeps_its_namespace(ct_suite:ct_config()) -> term().
bound_context_keeps_its_namespace(_Config) ->
    ok = py:exec(<<"async def whose():\n    return 'main'\n">>),
    {ok, <<"main">>} = py:async_await(py:async_call('__main__', whose, [])),
    {ok, <<"main">>} = py:async_await(py:async_call('__main__', whose, [])),
    Bound = py_test_util:spawn_call(fun() ->
        ok = py:bind(),
        try
            ok = py:exec(<<"async def whose():\n    return 'context'\n">>),
            [py:async_await(py:async_call('__main__', whose, [])) || _ <- [1, 2]]
        after
            ok = py:unbind()
        end
    end),
    [{ok, <<"context">>}, {ok, <<"context">>}] = py_test_util:await_call(Bound, 10000),
    {ok, <<"main">>} = py:async_await(py:async_call('__main__', whose, [])).

%% @doc A coroutine the loop starts itself runs in a fresh contextvars context: what one sets
%% is not seen by the next.
-spec async_def_starts_in_a_fresh_context(ct_suite:ct_config()) -> term().
async_def_starts_in_a_fresh_context(_Config) ->
    ok = py:exec(<<"import contextvars\n"
                   "request_var = contextvars.ContextVar('request_var')\n"
                   "async def set_var(value):\n"
                   "    before = request_var.get('unset')\n"
                   "    request_var.set(value)\n"
                   "    await asyncio.sleep(0)\n"
                   "    return (before, request_var.get())\n">>),
    Results = [py:async_await(py:async_call('__main__', set_var, [I])) || I <- lists:seq(1, 5)],
    Results = [{ok, {<<"unset">>, I}} || I <- lists:seq(1, 5)].

%% @doc A coroutine the loop starts that ends without ever waiting still runs as a task of its
%% own (`asyncio.current_task()'), in a fresh context, and its result or exception reaches the
%% caller.
-spec async_def_ending_without_a_wait(ct_suite:ct_config()) -> term().
async_def_ending_without_a_wait(_Config) ->
    ok = py:exec(<<"import contextvars\n"
                   "quick_var = contextvars.ContextVar('quick_var')\n"
                   "async def quick(value):\n"
                   "    before = quick_var.get('unset')\n"
                   "    quick_var.set(value)\n"
                   "    task = asyncio.current_task()\n"
                   "    return (before, task is not None and not task.done())\n"
                   "async def quick_boom():\n"
                   "    raise KeyError('quick')\n">>),
    Results = [py:async_await(py:async_call('__main__', quick, [I])) || I <- lists:seq(1, 4)],
    Results = [{ok, {<<"unset">>, true}} || _ <- lists:seq(1, 4)],
    [{error, {'KeyError', _}} = py:async_await(py:async_call('__main__', quick_boom, []))
     || _ <- [1, 2]],
    {ok, {<<"unset">>, true}} = py:async_await(py:async_call('__main__', quick, [5])).

%% @doc Errors of an async def started by the loop: bad arguments, an exception in the
%% coroutine, an unconvertible argument; the caller gets each as from an executor.
-spec async_def_call_errors(ct_suite:ct_config()) -> term().
async_def_call_errors(_Config) ->
    {ok, 2} = py:async_await(py:async_call('__main__', dbl, [1])),
    {ok, 2} = py:async_await(py:async_call('__main__', dbl, [1])),
    {error, {'TypeError', _}} = py:async_await(py:async_call('__main__', dbl, [])),
    {error, {'TypeError', _}} = py:async_await(py:async_call('__main__', dbl, [1], #{nope => 1})),
    {error, {'TypeError', _}} = py:async_await(py:async_call('__main__', dbl, [1, 2, 3])),
    {error, {'ValueError', <<"bad">>}} = py:async_await(py:async_call('__main__', boom, [])),
    {error, {'ValueError', <<"bad">>}} = py:async_await(py:async_call('__main__', boom, [])),
    {ok, Traceback} = {ok, py:last_traceback()},
    true = is_binary(Traceback) orelse is_list(Traceback),
    {error, {'TypeError', _}} =
        py:async_await(py:async_call('__main__', dbl, [1], #{delay => <<"x">>})),
    {ok, 4} = py:async_await(py:async_call('__main__', dbl, [2])).

%% @doc Calls of a known async def waiting in the loop's inbox (the loop is held busy by a
%% coroutine that blocks it) when the application stops get `{error, stopped}', as jobs
%% queued for an executor do; the coroutine that held the loop still replies. A Python
%% thread lets the loop go once a file appears, so nothing depends on timing.
-spec async_def_queued_for_the_loop_when_the_pool_stops(ct_suite:ct_config()) -> term().
async_def_queued_for_the_loop_when_the_pool_stops(Config) ->
    Gate = filename:join(proplists:get_value(priv_dir, Config), "loop_gate"),
    ok = py:exec(<<"import os, threading, time\n"
                   "loop_held = threading.Event()\n"
                   "async def hold_loop(gate):\n"
                   "    loop_held.set()\n"
                   "    while not os.path.exists(gate):\n"
                   "        time.sleep(0.005)\n"
                   "    return 'let go'\n">>),
    {ok, 2} = py:async_await(py:async_call('__main__', dbl, [1])),
    {ok, 2} = py:async_await(py:async_call('__main__', dbl, [1])),
    Hold = py:async_call('__main__', hold_loop, [list_to_binary(Gate)]),
    {ok, true} = py:eval(<<"loop_held.wait(10)">>),
    Queued = [py:async_call('__main__', dbl, [I]) || I <- lists:seq(1, 5)],
    ok = py_test_util:stop(),
    ok = file:write_file(Gate, <<>>),
    {ok, <<"let go">>} = py:async_await(Hold, 10000),
    [{error, stopped} = py:async_await(Ref, 10000) || Ref <- Queued],
    ok = py_test_util:start(),
    ok = py:exec(?DEFS),
    {ok, 6} = py:async_await(py:async_call('__main__', dbl, [3])),
    py_test_util:flush().

-spec pool() -> py_nif:pool().
pool() ->
    {ok, Pool} = py_request:pool(),
    Pool.

%%% ---------------------------------------------------------------- helpers

-spec is_started(binary()) -> boolean().
is_started(Tag) ->
    {ok, Result} = py:eval(<<"tag in started">>, #{tag => Tag}),
    Result.

-spec is_cancelled(binary()) -> boolean().
is_cancelled(Tag) ->
    {ok, Result} = py:eval(<<"tag in cancelled">>, #{tag => Tag}),
    Result.

%% Waits until no executor runs a job (async jobs handed to the loop count as done).
-spec wait_idle() -> {ok, map()}.
wait_idle() ->
    py_test_util:wait_until(
        fun() -> maps:get(pending_requests, py_pool:get_stats()) =:= 0 end, 5000),
    {ok, py_pool:get_stats()}.

-spec barrier(pos_integer(), [pid()]) -> ok.
barrier(N, Joined) when length(Joined) =:= N ->
    _ = [Pid ! go || Pid <- Joined],
    ok;
barrier(N, Joined) ->
    receive
        {join, Pid} -> barrier(N, [Pid | Joined])
    end.
