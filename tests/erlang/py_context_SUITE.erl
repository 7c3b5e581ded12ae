%% @doc Context affinity: py:bind/0,1, unbind/0,1, is_bound/0, with_context/1, ctx_call/4,5,6,
%% ctx_eval/2,3,4 and ctx_exec/2.
-module(py_context_SUITE).

-include_lib("common_test/include/ct.hrl").

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).

-export([
    bind_gives_private_namespace/1,
    bind_is_idempotent/1,
    unbind_restores_shared_namespace/1,
    unbind_when_not_bound/1,
    bind_new_contexts_are_separate/1,
    ctx_call_kwargs_and_timeout/1,
    ctx_eval_locals_persist/1,
    ctx_usable_from_other_processes/1,
    released_context_raises/1,
    dead_owner_releases_context/1,
    dead_bound_process_releases_executor/1,
    all_bound_gives_no_workers_available/1,
    with_context_0/1,
    with_context_0_keeps_outer_binding/1,
    with_context_1/1,
    with_context_no_workers_is_badmatch/1,
    stats_count_checked_out/1,
    callbacks_nest_in_the_context/1,
    unbound_requests_start_with_fresh_contextvars/1,
    bound_context_keeps_contextvars/1,
    nested_request_copies_outer_contextvars/1,
    ctx_timeout_interrupts/1,
    bad_args/1
]).

-spec all() -> [atom()].
all() -> py_test_util:cases(?MODULE).

-spec suite() -> [tuple()].
suite() -> [{timetrap, {minutes, 2}}].

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
    ok = py:unbind(),
    py_test_util:flush(),
    Config.

-spec end_per_testcase(atom(), ct_suite:ct_config()) -> ok.
end_per_testcase(_Case, _Config) ->
    ok = py:unbind().

%% Waits until the pool has `N' executors checked out (released asynchronously on death).
-spec wait_checked_out(non_neg_integer()) -> ok.
wait_checked_out(N) ->
    py_test_util:wait_until(fun() -> maps:get(checked_out, py_pool:get_stats()) =:= N end, 5000).

%% @doc A bound process has its own namespace: it does not see __main__'s names, nor others its.
-spec bind_gives_private_namespace(ct_suite:ct_config()) -> term().
bind_gives_private_namespace(_Config) ->
    ok = py:exec(<<"cx_shared = 'main'">>),
    ok = py:bind(),
    true = py:is_bound(),
    {ok, false} = py:eval(<<"'cx_shared' in globals()">>),
    ok = py:exec(<<"cx_mine = 42\ndef cx_f(a): return a + cx_mine\n">>),
    {ok, 42} = py:eval(<<"cx_mine">>),
    {ok, 43} = py:call('__main__', cx_f, [1]),
    {ok, <<"__main__">>} = py:eval(<<"__name__">>),
    {ok, true} = py:eval(<<"erlang.Pid is not None">>),
    Self = self(),
    spawn_link(fun() -> Self ! {other, py:eval(<<"cx_mine">>)} end),
    receive {other, {error, {'NameError', _}}} -> ok end.

%% @doc bind/0 twice keeps the same context.
-spec bind_is_idempotent(ct_suite:ct_config()) -> term().
bind_is_idempotent(_Config) ->
    ok = py:bind(),
    ok = py:exec(<<"cx_kept = 1">>),
    ok = py:bind(),
    {ok, 1} = py:eval(<<"cx_kept">>),
    #{checked_out := 1} = py_pool:get_stats().

%% @doc After unbind/0 the process is back in the shared namespace and the executor in the pool.
-spec unbind_restores_shared_namespace(ct_suite:ct_config()) -> term().
unbind_restores_shared_namespace(_Config) ->
    ok = py:exec(<<"cx_back = 'shared'">>),
    ok = py:bind(),
    ok = py:unbind(),
    false = py:is_bound(),
    {ok, <<"shared">>} = py:eval(<<"cx_back">>),
    #{checked_out := 0} = py_pool:get_stats().

%% @doc unbind/0 without a binding is ok; is_bound/0 is false.
-spec unbind_when_not_bound(ct_suite:ct_config()) -> term().
unbind_when_not_bound(_Config) ->
    false = py:is_bound(),
    ok = py:unbind(),
    ok = py:unbind().

%% @doc Contexts made by bind(new) each have their own namespace.
-spec bind_new_contexts_are_separate(ct_suite:ct_config()) -> term().
bind_new_contexts_are_separate(_Config) ->
    {ok, C1} = py:bind(new),
    {ok, C2} = py:bind(new),
    ok = py:ctx_exec(C1, <<"x = 1">>),
    ok = py:ctx_exec(C2, <<"x = 2">>),
    {ok, 1} = py:ctx_eval(C1, <<"x">>),
    {ok, 2} = py:ctx_eval(C2, <<"x">>),
    ok = py:ctx_exec(C1, <<"def add_x(a, b=0): return a + b + x">>),
    {ok, 11} = py:ctx_call(C1, '__main__', add_x, [10]),
    {error, {'NameError', _}} = py:ctx_call(C2, '__main__', add_x, [10]),
    {ok, 2.0} = py:ctx_call(C2, math, sqrt, [4]),
    ok = py:unbind(C1),
    ok = py:unbind(C2).

%% @doc ctx_call/5,6 pass kwargs and honour the timeout (and the context stays usable).
-spec ctx_call_kwargs_and_timeout(ct_suite:ct_config()) -> term().
ctx_call_kwargs_and_timeout(_Config) ->
    {ok, C} = py:bind(new),
    ok = py:ctx_exec(C, <<"def kw(a, b=1): return a * b">>),
    {ok, 12} = py:ctx_call(C, '__main__', kw, [3], #{b => 4}),
    {ok, 3} = py:ctx_call(C, '__main__', kw, [3], #{}, 5000),
    {error, timeout} = py:ctx_call(C, time, sleep, [10], #{}, 100),
    {ok, 6} = py:ctx_call(C, '__main__', kw, [3], #{b => 2}),
    ok = py_test_util:assert_no_message(200),
    ok = py:unbind(C).

%% @doc ctx_eval/3,4 merge locals into the context's namespace, where they persist.
-spec ctx_eval_locals_persist(ct_suite:ct_config()) -> term().
ctx_eval_locals_persist(_Config) ->
    {ok, C} = py:bind(new),
    {ok, 7} = py:ctx_eval(C, <<"a + b">>, #{a => 3, b => 4}),
    {ok, 3} = py:ctx_eval(C, <<"a">>, #{}, 5000),
    {error, {'NameError', _}} = py:eval(<<"cx_never_defined_a">>),
    ok = py:unbind(C).

%% @doc A context made by one process may be used by another.
-spec ctx_usable_from_other_processes(ct_suite:ct_config()) -> term().
ctx_usable_from_other_processes(_Config) ->
    {ok, C} = py:bind(new),
    ok = py:ctx_exec(C, <<"n = 5">>),
    Self = self(),
    spawn_link(fun() -> Self ! {other, py:ctx_eval(C, <<"n * 2">>)} end),
    receive {other, {ok, 10}} -> ok end,
    ok = py:unbind(C).

%% @doc A released context raises error(context_not_bound); unbind/1 again is ok.
-spec released_context_raises(ct_suite:ct_config()) -> term().
released_context_raises(_Config) ->
    {ok, C} = py:bind(new),
    ok = py:unbind(C),
    ok = py:unbind(C),
    {'EXIT', {context_not_bound, _}} = (catch py:ctx_eval(C, <<"1">>)),
    {'EXIT', {context_not_bound, _}} = (catch py:ctx_exec(C, <<"x = 1">>)),
    {'EXIT', {context_not_bound, _}} = (catch py:ctx_call(C, math, sqrt, [4])),
    0 = py_semaphore:current().

%% @doc When the process that made a context dies, the context is released.
-spec dead_owner_releases_context(ct_suite:ct_config()) -> term().
dead_owner_releases_context(_Config) ->
    Self = self(),
    Pid = spawn(fun() -> {ok, C} = py:bind(new), Self ! {ctx, C}, receive stop -> ok end end),
    C = receive {ctx, Ctx} -> Ctx end,
    ok = wait_checked_out(1),
    {ok, 1} = py:ctx_eval(C, <<"1">>),
    exit(Pid, kill),
    ok = wait_checked_out(0),
    {'EXIT', {context_not_bound, _}} = (catch py:ctx_eval(C, <<"1">>)),
    ok.

%% @doc When a bound process dies, its executor goes back to the pool.
-spec dead_bound_process_releases_executor(ct_suite:ct_config()) -> term().
dead_bound_process_releases_executor(_Config) ->
    Self = self(),
    Pid = spawn(fun() -> ok = py:bind(), Self ! bound, receive stop -> ok end end),
    receive bound -> ok end,
    ok = wait_checked_out(1),
    exit(Pid, kill),
    ok = wait_checked_out(0),
    {ok, 2} = py:eval(<<"1 + 1">>).

%% @doc With every executor bound, bind and unbound requests get {error, no_workers_available}
%% (no crash, no hang); they work again once a context is released.
-spec all_bound_gives_no_workers_available(ct_suite:ct_config()) -> term().
all_bound_gives_no_workers_available(_Config) ->
    N = py:num_executors(),
    Contexts = [begin {ok, C} = py:bind(new), C end || _ <- lists:seq(1, N)],
    {error, no_workers_available} = py:bind(new),
    {error, no_workers_available} = py:bind(),
    {error, no_workers_available} = py:eval(<<"1">>),
    {error, no_workers_available} = py:call(math, sqrt, [4]),
    {error, no_workers_available} = py:await(py:call_async(math, sqrt, [4])),
    0 = py_semaphore:current(),
    [{ok, 1} = py:ctx_eval(C, <<"1">>) || C <- Contexts],
    [ok = py:unbind(C) || C <- Contexts],
    {ok, 2.0} = py:call(math, sqrt, [4]).

%% @doc with_context/1 with a fun/0 binds the process while the fun runs, then unbinds it.
-spec with_context_0(ct_suite:ct_config()) -> term().
with_context_0(_Config) ->
    {ok, 5} = py:with_context(fun() ->
                                      true = py:is_bound(),
                                      ok = py:exec(<<"y = 5">>),
                                      py:eval(<<"y">>)
                              end),
    false = py:is_bound(),
    {error, {'NameError', _}} = py:eval(<<"cx_y_never_defined">>).

%% @doc with_context/1 inside a bound process keeps (and does not release) the outer binding.
-spec with_context_0_keeps_outer_binding(ct_suite:ct_config()) -> term().
with_context_0_keeps_outer_binding(_Config) ->
    ok = py:bind(),
    ok = py:exec(<<"outer = 1">>),
    {ok, 1} = py:with_context(fun() -> py:eval(<<"outer">>) end),
    true = py:is_bound(),
    {ok, 1} = py:eval(<<"outer">>).

%% @doc with_context/1 with a fun/1 gives it a new context, released afterwards.
-spec with_context_1(ct_suite:ct_config()) -> term().
with_context_1(_Config) ->
    {C, {ok, 9}} = py:with_context(fun(C) -> {C, py:ctx_eval(C, <<"3 * 3">>)} end),
    {'EXIT', {context_not_bound, _}} = (catch py:ctx_eval(C, <<"1">>)),
    ok = wait_checked_out(0).

%% @doc with_context/1 raises badmatch when no context can be had (as 1.6).
-spec with_context_no_workers_is_badmatch(ct_suite:ct_config()) -> term().
with_context_no_workers_is_badmatch(_Config) ->
    Contexts = [begin {ok, C} = py:bind(new), C end || _ <- lists:seq(1, py:num_executors())],
    {'EXIT', {{badmatch, {error, no_workers_available}}, _}} =
        (catch py:with_context(fun(_) -> ok end)),
    {'EXIT', {{badmatch, {error, no_workers_available}}, _}} =
        (catch py:with_context(fun() -> ok end)),
    [ok = py:unbind(C) || C <- Contexts].

%% @doc py_pool:get_stats/0 counts checked-out executors.
-spec stats_count_checked_out(ct_suite:ct_config()) -> term().
stats_count_checked_out(_Config) ->
    #{checked_out := 0, num_workers := N} = py_pool:get_stats(),
    {ok, C} = py:bind(new),
    #{checked_out := 1, available_workers := A} = py_pool:get_stats(),
    true = A =< N - 1,
    ok = py:unbind(C),
    #{checked_out := 0} = py_pool:get_stats().

%% @doc A callback made from a context runs nested requests in that same context.
-spec callbacks_nest_in_the_context(ct_suite:ct_config()) -> term().
callbacks_nest_in_the_context(_Config) ->
    ok = py:register_function(cx_peek, fun([]) -> {ok, V} = py:eval(<<"z">>), V end),
    {ok, C} = py:bind(new),
    ok = py:ctx_exec(C, <<"z = 'in context'">>),
    {ok, <<"in context">>} = py:ctx_eval(C, <<"erlang.cx_peek()">>),
    ok = py:bind(),
    ok = py:exec(<<"z = 'bound process'">>),
    {ok, <<"bound process">>} = py:eval(<<"erlang.cx_peek()">>),
    ok = py:unbind(C).

%% Defines, in the namespace of whoever runs it, a context variable and functions that set it
%% and read it; `cx_wait' holds the executor until as many jobs as there are executors wait,
%% so N jobs run on N different executors.
-define(CX_VARS, <<"
import contextvars, threading
cx_var = contextvars.ContextVar('cx_var', default='unset')
def cx_set(v):
    cx_var.set(v)
    return cx_var.get()
def cx_get():
    return cx_var.get()
def cx_barrier(n):
    global cx_gate
    cx_gate = threading.Barrier(n)
def cx_wait_set(v):
    cx_gate.wait(60)
    return cx_set(v)
def cx_wait_get():
    cx_gate.wait(60)
    return cx_get()
def cx_outer():
    cx_var.set('outer')
    inner = erlang.cx_inner()
    return (inner, cx_var.get())
def cx_inner_body():
    seen = cx_var.get()
    cx_var.set('inner')
    return seen
">>).

%% @doc An unbound request starts with a fresh copy of its executor's base contextvars context:
%% what one request set is gone for the next, on every executor (each executor runs one
%% setter, then one reader).
-spec unbound_requests_start_with_fresh_contextvars(ct_suite:ct_config()) -> term().
unbound_requests_start_with_fresh_contextvars(_Config) ->
    ok = py:exec(?CX_VARS),
    N = py:num_executors(),
    {ok, none} = py:call('__main__', cx_barrier, [N]),
    Set = py_test_util:pmap(fun(I) -> py:call('__main__', cx_wait_set, [I]) end,
                            lists:seq(1, N)),
    Set = [{ok, I} || I <- lists:seq(1, N)],
    {ok, none} = py:call('__main__', cx_barrier, [N]),
    Got = py_test_util:pmap(fun(_) -> py:call('__main__', cx_wait_get, []) end,
                            lists:seq(1, N)),
    Got = lists:duplicate(N, {ok, <<"unset">>}),
    {ok, <<"unset">>} = py:eval(<<"cx_var.get()">>).

%% @doc A bound context keeps one contextvars context for its whole life; others never see it.
-spec bound_context_keeps_contextvars(ct_suite:ct_config()) -> term().
bound_context_keeps_contextvars(_Config) ->
    ok = py:exec(?CX_VARS),
    {ok, C} = py:bind(new),
    ok = py:ctx_exec(C, ?CX_VARS),
    {ok, 7} = py:ctx_call(C, '__main__', cx_set, [7], #{}),
    {ok, 7} = py:ctx_call(C, '__main__', cx_get, [], #{}),
    {ok, 7} = py:ctx_eval(C, <<"cx_var.get()">>),
    {ok, <<"unset">>} = py:call('__main__', cx_get, []),
    {ok, C2} = py:bind(new),
    ok = py:ctx_exec(C2, ?CX_VARS),
    {ok, <<"unset">>} = py:ctx_call(C2, '__main__', cx_get, [], #{}),
    ok = py:unbind(C2),
    ok = py:unbind(C).

%% @doc A request nested in a callback starts from a copy of the outer request's context: it
%% sees what the outer one set, and what it sets stays in it. In a bound context, nested
%% requests are the context's own: they share its one contextvars context.
-spec nested_request_copies_outer_contextvars(ct_suite:ct_config()) -> term().
nested_request_copies_outer_contextvars(_Config) ->
    ok = py:exec(?CX_VARS),
    ok = py:register_function(cx_inner,
                              fun([]) -> {ok, Seen} = py:call('__main__', cx_inner_body, []),
                                         Seen end),
    {ok, {<<"outer">>, <<"outer">>}} = py:call('__main__', cx_outer, []),
    {ok, <<"unset">>} = py:call('__main__', cx_get, []),
    {ok, C} = py:bind(new),
    ok = py:ctx_exec(C, ?CX_VARS),
    {ok, {<<"outer">>, <<"inner">>}} = py:ctx_call(C, '__main__', cx_outer, [], #{}),
    {ok, <<"inner">>} = py:ctx_call(C, '__main__', cx_get, [], #{}),
    ok = py:unbind(C),
    ok = py:unregister_function(cx_inner).

%% @doc A timed-out job in a context is interrupted and the context is usable at once.
-spec ctx_timeout_interrupts(ct_suite:ct_config()) -> term().
ctx_timeout_interrupts(_Config) ->
    {ok, C} = py:bind(new),
    ok = py:ctx_exec(C, <<"def spin():\n    while True:\n        pass\n">>),
    {error, timeout} = py:ctx_call(C, '__main__', spin, [], #{}, 100),
    {ok, 1} = py:ctx_eval(C, <<"1">>, #{}, 2000),
    ok = py:unbind(C).

%% @doc Bad arguments raise function_clause.
-spec bad_args(ct_suite:ct_config()) -> term().
bad_args(_Config) ->
    {'EXIT', {function_clause, _}} = (catch py:bind(old)),
    {'EXIT', {function_clause, _}} = (catch py:unbind(not_a_context)),
    {'EXIT', {function_clause, _}} = (catch py:with_context(fun(_, _) -> ok end)),
    {ok, C} = py:bind(new),
    {'EXIT', {function_clause, _}} = (catch py:ctx_call(C, math, sqrt, not_a_list)),
    {'EXIT', {function_clause, _}} = (catch py:ctx_eval(C, <<"1">>, not_a_map)),
    {'EXIT', {function_clause, _}} = (catch py:ctx_eval(C, <<"1">>, #{}, -5)),
    ok = py:unbind(C).
