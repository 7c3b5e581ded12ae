%% @doc Faults an operator meets: interrupts that land at bad moments, callers that give up.
%% Each case fails without the fix it guards.
-module(py_fault_SUITE).

-include_lib("common_test/include/ct.hrl").

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1]).
-export([
    timeout_during_first_import_leaves_module_whole/1,
    timeout_waits_for_exit_and_del/1,
    timeout_holds_while_callback_hangs/1,
    nested_callback_errors_stay_bounded/1,
    logger_or_tracer_crash_keeps_pool/1,
    swallowed_interrupt_neither_spins_nor_shrinks_pool/1,
    process_exit_refused/1,
    process_exit_allowed_by_config/1,
    multiprocessing_spawns/1,
    big_terms_copied_on_dirty_schedulers/1
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

%% @doc A timeout that lands while a package is first imported (in the import machinery, or in
%% the body of a module being imported) waits until the import is over: the module is whole in
%% `sys.modules' afterwards, instead of half-built or missing for the life of the VM. The
%% package's body goes on (a busy loop) until the test, having seen the timeout, lets it end.
-spec timeout_during_first_import_leaves_module_whole(ct_suite:ct_config()) -> term().
timeout_during_first_import_leaves_module_whole(Config) ->
    Dir = filename:join(?config(priv_dir, Config), "import_fault"),
    Pkg = py_test_util:unique_name("ep_slowpkg"),
    PkgDir = filename:join(Dir, Pkg),
    Started = filename:join(Dir, Pkg ++ ".started"),
    Release = filename:join(Dir, Pkg ++ ".release"),
    ok = filelib:ensure_dir(filename:join(PkgDir, "x")),
    %% Much of the import runs inside importlib (200 submodules), then the body of the package
    %% keeps the import going until it is released.
    [ok = file:write_file(filename:join(PkgDir, "m" ++ integer_to_list(I) ++ ".py"),
                          <<"VALUE = 1\n">>)
     || I <- lists:seq(1, 200)],
    ok = file:write_file(filename:join(PkgDir, "__init__.py"), [
        "import importlib, os\n"
        "open(", io_lib:format("~p", [Started]), ", 'w').close()\n"
        "for _i in range(1, 201):\n"
        "    importlib.import_module(f'{__name__}.m{_i}')\n"
        "while not os.path.exists(", io_lib:format("~p", [Release]), "):\n"
        "    pass\n"
        "complete = True\n"]),
    ok = py:bind(),
    try
        ok = py:exec(iolist_to_binary(
            ["import sys\nsys.path.insert(0, ", io_lib:format("~p", [Dir]), ")\n"])),
        Ref = py:call_async(builtins, '__import__', [list_to_binary(Pkg)]),
        ok = py_test_util:wait_until(fun() -> filelib:is_regular(Started) end, 30000),
        {error, timeout} = py:await(Ref, 0),
        ok = file:write_file(Release, <<>>),
        %% The context's executor runs this once the interrupted job has ended.
        Whole = iolist_to_binary(
            ["getattr(__import__('sys').modules.get('", Pkg, "'), 'complete', False)"]),
        {ok, true} = py:eval(Whole),
        {ok, 200} = py:eval(iolist_to_binary(
            ["sum(1 for m in __import__('sys').modules if m.startswith('", Pkg, ".m'))"]))
    after
        ok = file:write_file(Release, <<>>),
        py:unbind()
    end.

%% @doc A timeout holds while the Python code waits in a callback whose Erlang function never
%% returns: the caller gets `{error, timeout}' on time, the function's process is killed, and
%% the executor is free again.
-spec timeout_holds_while_callback_hangs(ct_suite:ct_config()) -> term().
timeout_holds_while_callback_hangs(_Config) ->
    Self = self(),
    ok = py:register_function(ep_hang, fun(_) ->
                                              Self ! {hanging, self()},
                                              receive after infinity -> ok end
                                      end),
    try
        Eval = fun() -> py:eval(<<"__import__('erlang').call('ep_hang')">>, #{}, 200) end,
        {error, timeout} = py_test_util:run_bounded(Eval, 10000),
        Function = receive {hanging, Pid} -> Pid after 5000 -> ct:fail(no_callback) end,
        ok = py_test_util:wait_until(fun() -> not is_process_alive(Function) end, 5000),
        ok = py_test_util:wait_for_value(
               fun() -> maps:get(pending_requests, py_pool:get_stats()) end, 0, 5000),
        %% Nested in a callback too: the inner call's own timeout holds.
        ok = py:register_function(ep_nest, fun(_) ->
                                                  py:eval(<<"erlang.call('ep_hang')">>, #{}, 100)
                                          end),
        {ok, {<<"error">>, <<"timeout">>}} = py_test_util:run_bounded(
            fun() -> py:eval(<<"erlang.call('ep_nest')">>, #{}, 10000) end, 20000),
        {ok, 4.0} = py:call(math, sqrt, [16.0])
    after
        ok = py:unregister_function(ep_hang),
        ok = py:unregister_function(ep_nest)
    end.

%% @doc An error raised 22 callbacks deep, each level matching `{ok, V} = py:call(...)', comes
%% back with a message within its cap (each level used to double it: 8.4 MB), the original
%% cause still in it.
-spec nested_callback_errors_stay_bounded(ct_suite:ct_config()) -> term().
nested_callback_errors_stay_bounded(_Config) ->
    ok = py:exec(<<"def ep_nest_err(n):\n"
                   "    if n == 0:\n"
                   "        raise ValueError('the \"original\" cause')\n"
                   "    return erlang.call('ep_nest_err', n - 1)\n">>),
    ok = py:register_function(ep_nest_err, fun([N]) ->
                                                   {ok, V} = py:call('__main__', ep_nest_err, [N]),
                                                   V
                                           end),
    try
        {error, {Type, Msg}} = py:call('__main__', ep_nest_err, [22], #{}, 60000),
        true = Type =:= 'ErlangError' orelse Type =:= <<"ErlangError">>,
        true = byte_size(Msg) =< 16 * 1024,
        Traceback = py:last_traceback(),
        true = byte_size(Traceback) =< 64 * 1024,
        %% The innermost frames stay: the original exception is at the head of the reason.
        {_, _} = binary:match(Msg, <<"original">>)
    after
        ok = py:unregister_function(ep_nest_err)
    end.

%% @doc A crash of `py_logger' or `py_tracer' restarts only that process: the pool, the
%% interpreter's executors and a call in flight carry on.
-spec logger_or_tracer_crash_keeps_pool(ct_suite:ct_config()) -> term().
logger_or_tracer_crash_keeps_pool(_Config) ->
    lists:foreach(
      fun(Name) ->
              Pool = whereis(py_pool),
              Other = whereis(other(Name)),
              Old = whereis(Name),
              InFlight = py_test_util:spawn_call(fun() -> py:call(time, sleep, [0.5]) end),
              ok = py_test_util:wait_until(
                     fun() -> maps:get(pending_requests, py_pool:get_stats()) >= 1 end, 5000),
              exit(Old, kill),
              ok = py_test_util:wait_until(
                     fun() -> is_pid(whereis(Name)) andalso whereis(Name) =/= Old end, 5000),
              {ok, none} = py_test_util:await_call(InFlight, 10000),
              Pool = whereis(py_pool),
              Other = whereis(other(Name)),
              {ok, 2.0} = py:call(math, sqrt, [4.0])
      end, [py_logger, py_tracer]),
    %% The restarted receivers work.
    ok = py:enable_tracing(),
    {ok, _} = py:eval(<<"erlang.Span('after-restart').__enter__().__exit__(None, None, None)">>),
    ok = py:disable_tracing(),
    #{} = py:logging_stats().

-spec other(py_logger | py_tracer) -> py_logger | py_tracer.
other(py_logger) -> py_tracer;
other(py_tracer) -> py_logger.

%% @doc Code that catches `BaseException' around its sleeps and goes on after its caller timed
%% out sleeps as asked (no busy loop), and its executor is replaced so that the pool keeps its
%% size; the thread leaves once the code returns.
-spec swallowed_interrupt_neither_spins_nor_shrinks_pool(ct_suite:ct_config()) -> term().
swallowed_interrupt_neither_spins_nor_shrinks_pool(_Config) ->
    %% Each turn notes whether its sleep ended before its time (it raised, or did not sleep).
    ok = py:exec(<<"import time\n"
                   "ep_swallow = {'turns': 0, 'early': 0, 'stop': False}\n"
                   "def ep_swallower():\n"
                   "    while not ep_swallow['stop']:\n"
                   "        ep_swallow['turns'] += 1\n"
                   "        start = time.monotonic()\n"
                   "        try:\n"
                   "            time.sleep(0.01)\n"
                   "        except BaseException:\n"
                   "            pass\n"
                   "        if time.monotonic() - start < 0.009:\n"
                   "            ep_swallow['early'] += 1\n">>),
    try
        {error, timeout} = py:call('__main__', ep_swallower, [], #{}, 100),
        %% 50 turns after the timeout, at most the interrupt and the one of the give-up (2 s
        %% later) cut a sleep short: every other sleep slept as asked, so no busy loop.
        {ok, T0} = py:eval(<<"ep_swallow['turns']">>),
        ok = py_test_util:wait_until(
               fun() -> {ok, T} = py:eval(<<"ep_swallow['turns']">>), T >= T0 + 50 end, 30000),
        {ok, Early} = py:eval(<<"ep_swallow['early']">>),
        {_, true} = {Early, Early =< 2},
        %% Every executor of the pool's size serves requests at once, the stuck one aside:
        %% a replacement has joined (within a few seconds of the interrupt).
        N = py:num_executors(),
        ok = py:exec(iolist_to_binary(
               io_lib:format("import threading\nep_swallow_barrier = threading.Barrier(~b)\n",
                             [N]))),
        Results = py_test_util:pmap(
                    fun(_) -> py:eval(<<"ep_swallow_barrier.wait(20)">>, #{}, 30000) end,
                    lists:seq(1, N), 40000),
        [] = [R || R <- Results, not is_tuple(R) orelse element(1, R) =/= ok],
        #{num_workers := N} = py_pool:get_stats()
    after
        {ok, _} = py:eval(<<"ep_swallow.__setitem__('stop', True)">>)
    end,
    ok = py_test_util:wait_for_value(
           fun() -> maps:get(pending_requests, py_pool:get_stats()) end, 0, 5000).

%% @doc Calls that would end the OS process (the node) raise ProcessExitRefusedError, and the
%% node lives on; harmless ones (signal 0, other processes) go through.
-spec process_exit_refused(ct_suite:ct_config()) -> term().
process_exit_refused(_Config) ->
    Refused = [<<"import os\nos._exit(3)">>,
               <<"import os\nos.abort()">>,
               <<"import os, signal\nos.kill(os.getpid(), signal.SIGKILL)">>,
               <<"import os, signal\nos.kill(0, signal.SIGTERM)">>,
               <<"import os, signal\nos.killpg(os.getpgrp(), signal.SIGTERM)">>,
               <<"import signal\nsignal.raise_signal(signal.SIGTERM)">>,
               <<"import signal, threading\n"
                 "signal.pthread_kill(threading.get_ident(), signal.SIGUSR1)">>,
               <<"import os\nos.execv('/bin/true', ['true'])">>,
               <<"import os\nos.execl('/bin/true', 'true')">>],
    [{Code, {error, {<<"ProcessExitRefusedError">>, _}}} =
         {Code, py:exec(Code)} || Code <- Refused],
    ok = py:exec(<<"import os\nos.kill(os.getpid(), 0)">>),
    {ok, 0} = py:eval(<<"__import__('subprocess').call(['true'])">>),
    {ok, 2.0} = py:call(math, sqrt, [4.0]).

%% @doc The application variable allow_process_exit lets them through (checked with SIGWINCH,
%% which a process ignores by default).
-spec process_exit_allowed_by_config(ct_suite:ct_config()) -> term().
process_exit_allowed_by_config(_Config) ->
    Winch = <<"import os, signal\nos.kill(os.getpid(), signal.SIGWINCH)">>,
    {error, {<<"ProcessExitRefusedError">>, _}} = py:exec(Winch),
    ok = application:set_env(erlang_python, allow_process_exit, true),
    try
        ok = py_test_util:restart(),
        ok = py:exec(Winch)
    after
        ok = application:unset_env(erlang_python, allow_process_exit),
        ok = py_test_util:restart()
    end,
    {error, {<<"ProcessExitRefusedError">>, _}} = py:exec(Winch).

%% @doc multiprocessing starts its workers with `spawn' (not a fork of the VM), and a process
%% pool works.
-spec multiprocessing_spawns(ct_suite:ct_config()) -> term().
multiprocessing_spawns(_Config) ->
    {ok, <<"spawn">>} = py:eval(<<"__import__('multiprocessing').get_start_method()">>),
    ok = py:exec(<<"import concurrent.futures, math\n"
                   "with concurrent.futures.ProcessPoolExecutor(1) as ep_ex:\n"
                   "    ep_mp = ep_ex.submit(math.sqrt, 16.0).result(timeout=60)\n">>),
    {ok, 4.0} = py:eval(<<"ep_mp">>).

%% @doc Terms too big to copy within a normal scheduler's budget are declined there (`dirty')
%% and copied by the NIFs' dirty twins, or, for call arguments that suit it, sent in the
%% external term format the NIF writes; every path that copies an Erlang term for
%% Python works with them: call arguments, eval locals, async calls, and the results of
%% callbacks from executors, Python threads and coroutines. Small terms stay on the normal
%% scheduler.
-spec big_terms_copied_on_dirty_schedulers(ct_suite:ct_config()) -> term().
big_terms_copied_on_dirty_schedulers(_Config) ->
    Big = lists:seq(1, 200000),
    N = length(Big),
    {ok, Pool} = py_request:pool(),
    dirty = py_nif:pool_call(Pool, make_ref(), <<"builtins">>, <<"len">>, [Big], #{}),
    %% Encoded by the NIF itself, there and then.
    Encoded = py_nif:pool_call(Pool, make_ref(), <<"builtins">>, <<"len">>,
                               [lists:seq(1, 5000)], #{}),
    true = is_reference(Encoded),
    BigBins = [binary:copy(<<"b">>, 100) || _ <- Big],
    dirty = py_nif:pool_call(Pool, make_ref(), <<"builtins">>, <<"len">>, [BigBins], #{}),
    {ok, N} = py:call(builtins, len, [BigBins]),
    dirty = py_nif:pool_eval(Pool, make_ref(), <<"len(x)">>, #{x => Big}),
    Small = py_nif:pool_call(Pool, make_ref(), <<"builtins">>, <<"len">>, [[1, 2]], #{}),
    true = is_reference(Small),
    py_test_util:flush(),
    {ok, N} = py:call(builtins, len, [Big]),
    {ok, N} = py:eval(<<"len(x)">>, #{x => Big}),
    {ok, N} = py:async_await(py:async_call(builtins, len, [Big])),
    %% 5000 pairs: a map over the budget.
    BigMap = maps:from_list([{I, I} || I <- lists:seq(1, 5000)]),
    {ok, 5000} = py:call(builtins, len, [BigMap]),
    ok = py:register_function(ep_big, fun(_) -> lists:seq(1, 200000) end),
    try
        {ok, N} = py:eval(<<"len(erlang.ep_big())">>),
        ok = py:exec(<<"import threading\n"
                       "ep_big_out = []\n"
                       "ep_t = threading.Thread(target=lambda: ep_big_out.append("
                       "len(erlang.ep_big())))\n"
                       "ep_t.start()\n"
                       "ep_t.join()\n">>),
        {ok, [N]} = py:eval(<<"ep_big_out">>),
        {ok, N} = py:eval(<<"len(__import__('asyncio').run(erlang.async_call('ep_big')))">>)
    after
        ok = py:unregister_function(ep_big)
    end.

%% @doc A timeout that lands while a context manager's `__exit__' or a `__del__' runs waits
%% until it returns: cleanup code is not cut in half (and a finalizer's exception would only be
%% printed as ignored, the interrupt lost).
-spec timeout_waits_for_exit_and_del(ct_suite:ct_config()) -> term().
timeout_waits_for_exit_and_del(_Config) ->
    {ok, Ctx} = py:bind(new),
    %% The cleanup code runs bytecode until the test lets it end (through the shared __main__,
    %% from another executor), which is after the call has timed out however slow the machine.
    ok = py:ctx_exec(Ctx, <<"import threading, __main__\n"
                   "ep_cleanup = {}\n"
                   "ep_release = {'exit': threading.Event(), 'del': threading.Event()}\n"
                   "__main__.ep_release = ep_release\n"
                   "def ep_busy(what):\n"
                   "    while not ep_release[what].is_set():\n"
                   "        pass\n"
                   "class EpManager:\n"
                   "    def __enter__(self):\n"
                   "        return self\n"
                   "    def __exit__(self, *exc):\n"
                   "        ep_busy('exit')\n"
                   "        ep_cleanup['exit'] = True\n"
                   "class EpFinal:\n"
                   "    def __del__(self):\n"
                   "        ep_busy('del')\n"
                   "        ep_cleanup['del'] = True\n"
                   "def ep_with():\n"
                   "    with EpManager():\n"
                   "        pass\n"
                   "    return 'after'\n"
                   "def ep_del():\n"
                   "    o = EpFinal()\n"
                   "    del o\n"
                   "    return 'after'\n">>),
    try
        {error, timeout} = py:ctx_call(Ctx, '__main__', ep_with, [], #{}, 50),
        {ok, none} = py:eval(<<"ep_release['exit'].set()">>),
        %% Runs once the interrupted job has ended (the context has one executor), so that
        %% the next call starts, rather than times out, in the queue.
        {ok, true} = py:ctx_eval(Ctx, <<"ep_cleanup.get('exit', False)">>, #{}, 30000),
        {error, timeout} = py:ctx_call(Ctx, '__main__', ep_del, [], #{}, 50),
        {ok, none} = py:eval(<<"ep_release['del'].set()">>),
        %% The context's executor runs this once both interrupted jobs have ended.
        {ok, #{<<"exit">> := true, <<"del">> := true}} =
            py:ctx_eval(Ctx, <<"ep_cleanup">>, #{}, 30000)
    after
        _ = py:eval(<<"[e.set() for e in ep_release.values()]">>),
        ok = py:exec(<<"del ep_release">>),
        py:unbind(Ctx)
    end.
