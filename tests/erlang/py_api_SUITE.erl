%% @doc Info, memory and GC functions, py_semaphore, py_pool:get_stats/0, application
%% lifecycle and configuration.
-module(py_api_SUITE).

-include_lib("common_test/include/ct.hrl").

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).

-export([
    version/1,
    memory_stats_shape/1,
    gc_default/1,
    gc_generations/1,
    gc_collects_cycles/1,
    gc_bad_generation/1,
    tracemalloc_start_stop/1,
    tracemalloc_start_depth/1,
    tracemalloc_bad_args/1,
    execution_mode/1,
    num_executors/1,
    subinterp_supported/1,
    semaphore_defaults/1,
    semaphore_acquire_release/1,
    semaphore_acquire_timeout/1,
    semaphore_fifo/1,
    semaphore_fair_under_load/1,
    semaphore_stop_frees_waiters/1,
    semaphore_set_max_concurrent/1,
    semaphore_bad_max/1,
    call_overloaded/1,
    call_releases_slot_on_timeout_and_error/1,
    killed_caller_releases_slot/1,
    killed_holders_give_back_slots/1,
    pool_stats_shape/1,
    pool_stats_pending_requests/1,
    app_stop_start_cycles/1,
    app_stop_during_call/1,
    num_workers_env/1,
    num_executors_env_overrides/1,
    one_executor_serialises/1,
    max_concurrent_env/1,
    max_depth_env/1,
    bad_config_fails_start/1,
    ignored_env_warns/1
]).
%% logger handler callback: forwards events to the test process.
-export([log/2]).

-define(HANDLER, py_api_suite_fwd).

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
    [{saved_max, py_semaphore:max_concurrent()} | Config].

-spec end_per_testcase(atom(), ct_suite:ct_config()) -> ok.
end_per_testcase(max_depth_env, _Config) ->
    ok = py_test_util:stop(),
    ok = application:unset_env(erlang_python, max_depth),
    ok = py_test_util:start();
end_per_testcase(Case, Config) ->
    %% Cases that change the app env, or may leave the semaphore inconsistent, end with a
    %% restart: the application creates a fresh semaphore at start.
    EnvCases = [num_workers_env, num_executors_env_overrides, one_executor_serialises,
                max_concurrent_env, killed_holders_give_back_slots, ignored_env_warns],
    case lists:member(Case, EnvCases) of
        true ->
            ok = py_test_util:stop(),
            [application:unset_env(erlang_python, K)
             || K <- [num_workers, num_executors, max_concurrent, num_async_workers,
                      num_subinterp_workers]],
            ok = py_test_util:start();
        false ->
            ok = py_test_util:start(),
            ok = py_semaphore:set_max_concurrent(?config(saved_max, Config))
    end,
    _ = py:tracemalloc_stop(),
    ok.

%%% ---------------------------------------------------------------- info

%% @doc version/0 is {ok, Bin}, the interpreter's full sys.version string.
-spec version(ct_suite:ct_config()) -> term().
version(_Config) ->
    {ok, V} = py:version(),
    <<"3.", _/binary>> = V,
    {ok, V} = py:eval(<<"__import__('sys').version">>).

%% @doc memory_stats/0 has gc_stats (3 maps with binary keys), gc_count and gc_threshold.
-spec memory_stats_shape(ct_suite:ct_config()) -> term().
memory_stats_shape(_Config) ->
    {ok, #{gc_stats := GcStats, gc_count := {_, _, _}, gc_threshold := {T0, _, _}} = Stats} =
        py:memory_stats(),
    3 = length(GcStats),
    lists:foreach(
      fun(#{<<"collections">> := C, <<"collected">> := D, <<"uncollectable">> := U})
            when is_integer(C), is_integer(D), is_integer(U) ->
              ok
      end, GcStats),
    true = is_integer(T0),
    false = maps:is_key(traced_memory_current, Stats),
    false = maps:is_key(traced_memory_peak, Stats).

%% @doc gc/0 runs a full collection and returns {ok, N}.
-spec gc_default(ct_suite:ct_config()) -> term().
gc_default(_Config) ->
    {ok, N} = py:gc(),
    true = is_integer(N) andalso N >= 0.

%% @doc gc/1 accepts generations 0, 1 and 2.
-spec gc_generations(ct_suite:ct_config()) -> term().
gc_generations(_Config) ->
    lists:foreach(fun(Gen) ->
                          {ok, N} = py:gc(Gen),
                          true = is_integer(N) andalso N >= 0
                  end, [0, 1, 2]).

%% @doc gc/0 reports the reference cycles it frees.
-spec gc_collects_cycles(ct_suite:ct_config()) -> term().
gc_collects_cycles(_Config) ->
    ok = py:exec(<<"import gc as ep_gc\n"
                   "class EpCycle:\n    pass\n"
                   "def ep_make_cycles(n):\n"
                   "    ep_gc.disable()\n"
                   "    for _ in range(n):\n"
                   "        a = EpCycle()\n"
                   "        a.me = a\n">>),
    {ok, none} = py:call('__main__', ep_make_cycles, [100]),
    {ok, N} = py:gc(),
    ok = py:exec(<<"ep_gc.enable()">>),
    {_, true} = {N, N >= 100}.

%% @doc gc/1 outside 0..2 raises function_clause.
-spec gc_bad_generation(ct_suite:ct_config()) -> term().
gc_bad_generation(_Config) ->
    function_clause = py_test_util:expect_raise(fun() -> py:gc(3) end, [function_clause]),
    function_clause = py_test_util:expect_raise(fun() -> py:gc(-1) end, [function_clause]),
    function_clause = py_test_util:expect_raise(fun() -> py:gc(a) end, [function_clause]),
    {ok, _} = py:gc(0).

%% @doc tracemalloc_start/0 adds traced_memory_* keys to memory_stats/0; stop removes them.
-spec tracemalloc_start_stop(ct_suite:ct_config()) -> term().
tracemalloc_start_stop(_Config) ->
    ok = py:tracemalloc_start(),
    {ok, true} = py:eval(<<"__import__('tracemalloc').is_tracing()">>),
    {ok, _} = py:eval(<<"[str(i) for i in range(1000)]">>),
    {ok, #{traced_memory_current := Cur, traced_memory_peak := Peak}} = py:memory_stats(),
    true = is_integer(Cur) andalso is_integer(Peak) andalso Peak >= Cur andalso Peak > 0,
    ok = py:tracemalloc_stop(),
    {ok, false} = py:eval(<<"__import__('tracemalloc').is_tracing()">>),
    {ok, Stats} = py:memory_stats(),
    false = maps:is_key(traced_memory_current, Stats),
    ok = py:tracemalloc_stop().

%% @doc tracemalloc_start/1 sets the number of frames kept.
-spec tracemalloc_start_depth(ct_suite:ct_config()) -> term().
tracemalloc_start_depth(_Config) ->
    ok = py:tracemalloc_start(5),
    {ok, 5} = py:eval(<<"__import__('tracemalloc').get_traceback_limit()">>),
    ok = py:tracemalloc_stop(),
    ok = py:tracemalloc_start(),
    {ok, 1} = py:eval(<<"__import__('tracemalloc').get_traceback_limit()">>),
    ok = py:tracemalloc_stop().

%% @doc tracemalloc_start/1 with a non-positive or non-integer count raises function_clause.
-spec tracemalloc_bad_args(ct_suite:ct_config()) -> term().
tracemalloc_bad_args(_Config) ->
    Bad = [function_clause, badarg],
    _ = py_test_util:expect_raise(fun() -> py:tracemalloc_start(0) end, Bad),
    _ = py_test_util:expect_raise(fun() -> py:tracemalloc_start(-1) end, Bad),
    _ = py_test_util:expect_raise(fun() -> py:tracemalloc_start(a) end, Bad),
    {ok, false} = py:eval(<<"__import__('tracemalloc').is_tracing()">>).

%% @doc execution_mode/0 matches the interpreter: multi_executor with a GIL, else free_threaded.
-spec execution_mode(ct_suite:ct_config()) -> term().
execution_mode(_Config) ->
    Mode = py:execution_mode(),
    {ok, Gil} = py:eval(<<"getattr(__import__('sys'), '_is_gil_enabled', lambda: True)()">>),
    Mode = case Gil of
               true -> multi_executor;
               false -> free_threaded
           end.

%% @doc num_executors/0 is the configured pool size (default max(2, schedulers)).
-spec num_executors(ct_suite:ct_config()) -> term().
num_executors(_Config) ->
    N = py:num_executors(),
    N = py_test_util:default_num_executors(),
    #{num_workers := N} = py_pool:get_stats().

%% @doc subinterp_supported/0 is true exactly on CPython >= 3.12 with the GIL (own-GIL
%% sub-interpreters; a free-threaded build has none).
-spec subinterp_supported(ct_suite:ct_config()) -> term().
subinterp_supported(_Config) ->
    Supported = py:subinterp_supported(),
    {ok, Supported} = py:eval(<<"__import__('sys').version_info >= (3, 12) and "
                                "not __import__('sysconfig').get_config_var('Py_GIL_DISABLED')">>).

%%% ---------------------------------------------------------------- py_semaphore

%% @doc The default limit is schedulers * 2 + 1 (or max_concurrent); nothing is in flight at rest.
-spec semaphore_defaults(ct_suite:ct_config()) -> term().
semaphore_defaults(_Config) ->
    Expected = case application:get_env(erlang_python, max_concurrent) of
                   {ok, M} when is_integer(M), M > 0 -> M;
                   _ -> erlang:system_info(schedulers) * 2 + 1
               end,
    Expected = py_semaphore:max_concurrent(),
    0 = py_semaphore:current().

%% @doc acquire/1 and release/0 move current/0; release never goes below 0.
-spec semaphore_acquire_release(ct_suite:ct_config()) -> term().
semaphore_acquire_release(_Config) ->
    0 = py_semaphore:current(),
    ok = py_semaphore:acquire(1000),
    1 = py_semaphore:current(),
    ok = py_semaphore:acquire(infinity),
    2 = py_semaphore:current(),
    ok = py_semaphore:release(),
    ok = py_semaphore:release(),
    0 = py_semaphore:current(),
    ok = py_semaphore:release(),
    0 = py_semaphore:current().

%% @doc acquire/1 gives {error, max_concurrent} after its timeout when the limit is reached.
-spec semaphore_acquire_timeout(ct_suite:ct_config()) -> term().
semaphore_acquire_timeout(_Config) ->
    ok = py_semaphore:set_max_concurrent(1),
    ok = py_semaphore:acquire(1000),
    %% It waited for its timeout (a timer never fires early).
    {Ms, {error, max_concurrent}} = py_test_util:timed(fun() -> py_semaphore:acquire(100) end),
    {_, true} = {Ms, Ms >= 100},
    1 = py_semaphore:current(),
    ok = py_semaphore:release(),
    ok = py_semaphore:acquire(100),
    ok = py_semaphore:release().

%% @doc Waiters get slots in the order they started waiting, each the moment one is given
%% back; a try (timeout 0) does not jump the line.
-spec semaphore_fifo(ct_suite:ct_config()) -> term().
semaphore_fifo(_Config) ->
    ok = py_semaphore:set_max_concurrent(1),
    Self = self(),
    ok = py_semaphore:acquire(1000),
    Waiter = fun(I) ->
                     spawn_link(fun() ->
                                        Self ! {waiting, I},
                                        ok = py_semaphore:acquire(10000),
                                        Self ! {got, I},
                                        receive release -> ok = py_semaphore:release() end
                                end)
             end,
    %% Each waiter is in line before the next one starts.
    Waiters = [begin
                   Pid = Waiter(I),
                   receive {waiting, I} -> ok end,
                   ok = py_test_util:wait_until(
                          fun() -> {status, waiting} =:= process_info(Pid, status) end, 5000),
                   Pid
               end || I <- lists:seq(1, 5)],
    {error, max_concurrent} = py_semaphore:acquire(0),
    ok = py_semaphore:release(),
    Order = [begin
                 receive {got, I} -> ok after 5000 -> ct:fail({no_slot, I}) end,
                 Pid ! release,
                 I
             end || {I, Pid} <- lists:zip(lists:seq(1, 5), Waiters)],
    [1, 2, 3, 4, 5] = Order,
    ok = py_test_util:wait_for_value(fun py_semaphore:current/0, 0, 5000).

%% @doc 8 callers looping short calls over 5 slots all make progress, none is told the
%% semaphore is overloaded while slots keep coming free, and none gets far fewer calls done
%% than another (the polling semaphore let 3 of 8 starve). They share a budget of 400 calls,
%% so that how many each makes depends on the order slots are handed out, not on the speed
%% of the machine.
-spec semaphore_fair_under_load(ct_suite:ct_config()) -> term().
semaphore_fair_under_load(_Config) ->
    ok = py_semaphore:set_max_concurrent(5),
    Budget = atomics:new(1, []),
    ok = atomics:put(Budget, 1, 400),
    Loop = fun Loop(Done, Errors) ->
                   case atomics:sub_get(Budget, 1, 1) >= 0 of
                       false -> {Done, Errors};
                       true ->
                           case py:call(time, sleep, [0.02], #{}, 5000) of
                               {ok, none} -> Loop(Done + 1, Errors);
                               Error -> Loop(Done, [Error | Errors])
                           end
                   end
           end,
    Results = py_test_util:pmap(fun(_) -> Loop(0, []) end, lists:seq(1, 8), 60000),
    [] = lists:append([Errors || {_, Errors} <- Results]),
    Counts = [Done || {Done, _} <- Results],
    {_, true} = {Counts, lists:min(Counts) > 0 andalso lists:min(Counts) * 2 >= lists:max(Counts)}.

%% @doc Callers waiting in line when the application stops go on at once (and get
%% `{error, not_started}'), instead of waiting out their timeouts.
-spec semaphore_stop_frees_waiters(ct_suite:ct_config()) -> term().
semaphore_stop_frees_waiters(_Config) ->
    ok = py_semaphore:set_max_concurrent(1),
    ok = py_semaphore:acquire(1000),
    Self = self(),
    Pid = spawn(fun() -> Self ! {self(), py:call(math, sqrt, [4.0], #{}, 60000)} end),
    ok = py_test_util:wait_until(fun() -> {status, waiting} =:= process_info(Pid, status) end,
                                 5000),
    ok = py_test_util:stop(),
    {error, not_started} = receive {Pid, R} -> R after 10000 -> ct:fail(still_waiting) end,
    ok = py_test_util:start().

%% @doc set_max_concurrent/1 takes effect at once.
-spec semaphore_set_max_concurrent(ct_suite:ct_config()) -> term().
semaphore_set_max_concurrent(_Config) ->
    ok = py_semaphore:set_max_concurrent(2),
    2 = py_semaphore:max_concurrent(),
    ok = py_semaphore:acquire(100),
    ok = py_semaphore:acquire(100),
    {error, max_concurrent} = py_semaphore:acquire(50),
    ok = py_semaphore:set_max_concurrent(3),
    ok = py_semaphore:acquire(100),
    [ok = py_semaphore:release() || _ <- [1, 2, 3]],
    0 = py_semaphore:current().

%% @doc set_max_concurrent/1 rejects non-positive and non-integer limits.
-spec semaphore_bad_max(ct_suite:ct_config()) -> term().
semaphore_bad_max(_Config) ->
    Max = py_semaphore:max_concurrent(),
    Bad = [function_clause, badarg],
    _ = py_test_util:expect_raise(fun() -> py_semaphore:set_max_concurrent(0) end, Bad),
    _ = py_test_util:expect_raise(fun() -> py_semaphore:set_max_concurrent(-1) end, Bad),
    _ = py_test_util:expect_raise(fun() -> py_semaphore:set_max_concurrent(a) end, Bad),
    Max = py_semaphore:max_concurrent().

%% @doc With max_concurrent 1 and a call holding the slot (until the test lets it go), call
%% gives {overloaded, 1, 1}.
-spec call_overloaded(ct_suite:ct_config()) -> term().
call_overloaded(_Config) ->
    ok = py_semaphore:set_max_concurrent(1),
    ok = py:exec(<<"import threading\nep_gate = threading.Event()\n">>),
    Holder = py_test_util:spawn_call(fun() -> py:call('__main__', 'ep_gate.wait', [60]) end),
    ok = py_test_util:wait_for_value(fun py_semaphore:current/0, 1, 5000),
    {error, {overloaded, 1, 1}} = py:call(math, sqrt, [4], #{}, 100),
    %% eval/exec/call_async are not rate limited.
    {ok, 2} = py:eval(<<"1 + 1">>),
    {ok, 2.0} = py:await(py:call_async(math, sqrt, [4])),
    {ok, none} = py:eval(<<"ep_gate.set()">>),
    {ok, true} = py_test_util:await_call(Holder, 30000),
    0 = py_semaphore:current(),
    {ok, 2.0} = py:call(math, sqrt, [4]).

%% @doc The slot is released after a timeout and after a Python exception.
-spec call_releases_slot_on_timeout_and_error(ct_suite:ct_config()) -> term().
call_releases_slot_on_timeout_and_error(_Config) ->
    ok = py_semaphore:set_max_concurrent(1),
    {error, timeout} = py:call(time, sleep, [100], #{}, 200),
    0 = py_semaphore:current(),
    {error, {'ZeroDivisionError', _}} = py:call(operator, truediv, [1, 0]),
    0 = py_semaphore:current(),
    {error, {'TypeError', _}} = py:call(math, sqrt, [[1 | 2]]),
    0 = py_semaphore:current(),
    {ok, 2.0} = py:call(math, sqrt, [4]).

%% @doc A caller killed during a call does not keep its semaphore slot forever.
-spec killed_caller_releases_slot(ct_suite:ct_config()) -> term().
killed_caller_releases_slot(_Config) ->
    ok = py_semaphore:set_max_concurrent(1),
    Pid = spawn(fun() -> py:call(time, sleep, [100]) end),
    %% Kill it once the job is queued or running, i.e. mid-call.
    ok = py_test_util:wait_until(
           fun() -> maps:get(pending_requests, py_pool:get_stats()) >= 1 end, 5000),
    1 = py_semaphore:current(),
    ok = py_test_util:kill_and_wait([Pid]),
    ok = py_test_util:wait_for_value(fun py_semaphore:current/0, 0, 5000),
    {ok, 2.0} = py:call(math, sqrt, [4]).

%% @doc Holders killed at any point of acquire/release loops leave no slot taken.
-spec killed_holders_give_back_slots(ct_suite:ct_config()) -> term().
killed_holders_give_back_slots(_Config) ->
    ok = py_semaphore:set_max_concurrent(100000),
    Loop = fun Loop() ->
                   ok = py_semaphore:acquire(infinity),
                   ok = py_semaphore:release(),
                   Loop()
           end,
    [begin
         Pids = [spawn(Loop) || _ <- lists:seq(1, 200)],
         %% Let them run a while so that the kills land at arbitrary points.
         receive after 50 -> ok end,
         ok = py_test_util:kill_and_wait(Pids),
         ok = py_test_util:wait_for_value(fun py_semaphore:current/0, 0, 5000)
     end || _ <- lists:seq(1, 5)],
    ok.

%%% ---------------------------------------------------------------- py_pool

%% @doc get_stats/0 has the 1.6 keys; at rest nothing is pending or checked out.
-spec pool_stats_shape(ct_suite:ct_config()) -> term().
pool_stats_shape(_Config) ->
    N = py:num_executors(),
    #{num_workers := N, pending_requests := 0, available_workers := A, checked_out := 0} =
        py_pool:get_stats(),
    true = is_integer(A) andalso A >= 0.

%% @doc pending_requests rises during a call (held until the test lets it go) and returns to
%% 0 after it.
-spec pool_stats_pending_requests(ct_suite:ct_config()) -> term().
pool_stats_pending_requests(_Config) ->
    #{pending_requests := 0} = py_pool:get_stats(),
    ok = py:exec(<<"import threading\nep_gate = threading.Event()\n">>),
    Job = py_test_util:spawn_call(fun() -> py:call('__main__', 'ep_gate.wait', [60]) end),
    ok = py_test_util:wait_for_value(
           fun() -> maps:get(pending_requests, py_pool:get_stats()) end, 1, 5000),
    {ok, none} = py:eval(<<"ep_gate.set()">>),
    {ok, true} = py_test_util:await_call(Job, 30000),
    ok = py_test_util:wait_pool_idle(),
    %% Many quick calls leave nothing behind (1.6's counter only ever grew).
    _ = py_test_util:pmap(fun(I) -> {ok, _} = py:call(math, sqrt, [I]) end, lists:seq(1, 100)),
    ok = py_test_util:wait_pool_idle(),
    %% A caller that has its reply no longer counts as pending: the executor stops counting
    %% the job before it replies, not after.
    lists:foreach(
      fun(I) ->
              {ok, _} = py:call(math, sqrt, [I]),
              #{pending_requests := 0} = py_pool:get_stats()
      end, lists:seq(1, 2000)).

%%% ---------------------------------------------------------------- lifecycle

%% @doc Repeated stop/start cycles in one VM never hang and the pool works after each.
-spec app_stop_start_cycles(ct_suite:ct_config()) -> term().
app_stop_start_cycles(_Config) ->
    [begin
         %% stop/0 fails the case if stopping hangs.
         ok = py_test_util:stop(),
         {error, not_started} = py:call(math, sqrt, [4]),
         ok = py_test_util:start(),
         {ok, 2.0} = py:call(math, sqrt, [4]),
         {ok, 2} = py:eval(<<"1 + 1">>)
     end || _ <- lists:seq(1, 4)],
    ok = py_test_util:stop(),
    ok = py_test_util:stop(),
    ok = py_test_util:start().

%% @doc Stopping the application while calls run does not hang, and the callers get an answer.
-spec app_stop_during_call(ct_suite:ct_config()) -> term().
app_stop_during_call(_Config) ->
    N = py:num_executors(),
    Jobs = [py_test_util:spawn_call(fun() -> py:call(time, sleep, [100], #{}, 20000) end)
            || _ <- lists:seq(1, N + 1)],
    ok = py_test_util:wait_until(
           fun() -> maps:get(pending_requests, py_pool:get_stats()) >= N + 1 end, 5000),
    ok = py_test_util:stop(),
    %% Each waiting caller gets an error: at the latest its own 20 s timeout.
    {WaitMs, Results} = py_test_util:timed(
                          fun() -> [py_test_util:await_call(J, 25000) || J <- Jobs] end),
    ct:pal("callers' results ~p ms after stop: ~p", [WaitMs, Results]),
    [{error, _} = R || R <- Results],
    ok = py_test_util:start(),
    {ok, 2.0} = py:call(math, sqrt, [4]).

%% @doc The num_workers app env sets the executor count.
-spec num_workers_env(ct_suite:ct_config()) -> term().
num_workers_env(_Config) ->
    ok = py_test_util:stop(),
    ok = application:set_env(erlang_python, num_workers, 3),
    ok = application:unset_env(erlang_python, num_executors),
    ok = py_test_util:start(),
    3 = py:num_executors(),
    #{num_workers := 3} = py_pool:get_stats(),
    {ok, 2.0} = py:call(math, sqrt, [4]).

%% @doc num_executors overrides num_workers, and 5 executors run 5 calls at once (they meet
%% at a barrier that lets them through only once all 5 wait at it).
-spec num_executors_env_overrides(ct_suite:ct_config()) -> term().
num_executors_env_overrides(_Config) ->
    ok = py_test_util:stop(),
    ok = application:set_env(erlang_python, num_workers, 2),
    ok = application:set_env(erlang_python, num_executors, 5),
    ok = py_test_util:start(),
    5 = py:num_executors(),
    #{num_workers := 5} = py_pool:get_stats(),
    {ok, 4} = py:call(math, floor, [4.5]),
    ok = py:exec(<<"import threading\nep_meet = threading.Barrier(5)\n">>),
    Results = py_test_util:pmap(fun(_) -> py:call('__main__', 'ep_meet.wait', [30]) end,
                                lists:seq(1, 5)),
    [0, 1, 2, 3, 4] = lists:sort([I || {ok, I} <- Results]).

%% @doc With num_executors 1, two 0.5 s sleeps run one after the other.
-spec one_executor_serialises(ct_suite:ct_config()) -> term().
one_executor_serialises(_Config) ->
    ok = py_test_util:stop(),
    ok = application:set_env(erlang_python, num_executors, 1),
    ok = py_test_util:start(),
    1 = py:num_executors(),
    {Ms, [{ok, none}, {ok, none}]} =
        py_test_util:timed(
          fun() -> py_test_util:pmap(fun(_) -> py:call(time, sleep, [0.5]) end, [1, 2]) end),
    {_, true} = {Ms, Ms >= 950}.

%% @doc The max_concurrent app env sets the semaphore limit at start.
-spec max_concurrent_env(ct_suite:ct_config()) -> term().
max_concurrent_env(_Config) ->
    ok = py_test_util:stop(),
    ok = application:set_env(erlang_python, max_concurrent, 7),
    ok = py_test_util:start(),
    7 = py_semaphore:max_concurrent(),
    {ok, 2.0} = py:call(math, sqrt, [4]).

%% @doc The max_depth app env sets the conversion bound at start.
-spec max_depth_env(ct_suite:ct_config()) -> term().
max_depth_env(_Config) ->
    ok = py_test_util:stop(),
    ok = application:set_env(erlang_python, max_depth, 50),
    ok = py_test_util:start(),
    Deep = fun(N) -> lists:foldl(fun(_, Acc) -> [Acc] end, 0, lists:seq(1, N)) end,
    {ok, _} = py:call(builtins, len, [Deep(40)]),
    {error, {'ValueError', _}} = py:call(builtins, len, [Deep(60)]),
    %% Unset again, the next start goes back to the default bound (1000).
    ok = py_test_util:stop(),
    ok = application:unset_env(erlang_python, max_depth),
    ok = py_test_util:start(),
    {ok, _} = py:call(builtins, len, [Deep(900)]).

%% @doc A bad value of an application variable makes the start fail with a reason that holds
%% `{bad_config, {Key, Value}}' (docs/getting-started.md, Configuration); a `max_concurrent' or
%% `state_max_keys' that is not a positive integer is ignored: its default holds.
-spec bad_config_fails_start(ct_suite:ct_config()) -> term().
bad_config_fails_start(_Config) ->
    Bad = [{num_workers, 0}, {num_executors, -1}, {python_executable, 42}, {max_depth, 0},
           {malloc_pad, -1}, {log_level, loud}, {log_max_in_flight, 0},
           {nif_log_level, verbose}, {trace_max_spans, 0}, {trace_max_in_flight, many},
           {allow_process_exit, maybe}, {asyncio_policy, sometimes}],
    ok = py_test_util:stop(),
    Default = py_config:default(max_concurrent),
    try
        [begin
             ok = application:set_env(erlang_python, Key, Value),
             {error, Reason} = application:ensure_all_started(erlang_python),
             {_, true} = {Reason, holds(Reason, {bad_config, {Key, Value}})},
             ok = application:unset_env(erlang_python, Key)
         end || {Key, Value} <- Bad],
        ok = application:set_env(erlang_python, max_concurrent, 0),
        ok = application:set_env(erlang_python, state_max_keys, -3),
        ok = py_test_util:start(),
        Default = py_semaphore:max_concurrent(),
        ok = py:state_store(<<"bad_config_key">>, 1),
        ok = py:state_remove(<<"bad_config_key">>)
    after
        ok = py_test_util:stop(),
        [application:unset_env(erlang_python, K)
         || K <- [max_concurrent, state_max_keys | [K || {K, _} <- Bad]]],
        ok = py_test_util:start()
    end.

-spec holds(term(), term()) -> boolean().
holds(Part, Part) -> true;
holds(Term, Part) when is_tuple(Term) -> holds(tuple_to_list(Term), Part);
holds([H | T], Part) -> holds(H, Part) orelse holds(T, Part);
holds(_, _) -> false.

%% @doc The erlang_python 1.6 variable num_async_workers is ignored: the start logs one
%% warning, naming num_executors instead. num_subinterp_workers sizes the sub-interpreter
%% pool (docs/parallelism.md) and is not warned about.
-spec ignored_env_warns(ct_suite:ct_config()) -> term().
ignored_env_warns(_Config) ->
    ok = py_test_util:stop(),
    ok = application:set_env(erlang_python, num_async_workers, 4),
    ok = application:set_env(erlang_python, num_subinterp_workers, 4),
    py_test_util:flush(),
    ok = logger:add_handler(?HANDLER, ?MODULE, #{
        config => #{pid => self()},
        filter_default => stop,
        filters => [{app, {fun logger_filters:domain/2, {log, equal, [erlang_python]}}}]
    }),
    try
        %% Handlers run in the process that logs: the events are here when start/0 returns.
        ok = py_test_util:start(),
        {messages, Messages} = process_info(self(), messages),
        [<<"erlang_python: application variable num_async_workers ", Async/binary>>] =
            lists:sort([warning_text(Event) || {logged, Event} <- Messages]),
        {match, _} = re:run(Async, "use num_executors"),
        {ok, 2.0} = py:call(math, sqrt, [4])
    after
        _ = logger:remove_handler(?HANDLER),
        py_test_util:flush()
    end.

%% @private
-spec log(logger:log_event(), logger:handler_config()) -> ok.
log(Event, #{config := #{pid := Pid}}) ->
    Pid ! {logged, Event},
    ok.

-spec warning_text(logger:log_event()) -> binary().
warning_text(#{level := warning, msg := {Format, Args}}) ->
    unicode:characters_to_binary(io_lib:format(Format, Args)).
