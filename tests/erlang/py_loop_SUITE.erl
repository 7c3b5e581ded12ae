%% @doc `erlang.ErlangEventLoop' inside the BEAM: the loop of py:async_call, asyncio's policy
%% (the `asyncio_policy' application variable), the 1.6 module `erlang_loop', child processes'
%% exit statuses, and the clear error of a signal handler (docs/asyncio.md). The loop's own
%% behaviour is tested by tests/python/test_loop.py (in both worlds) and by CPython's asyncio
%% tests (py_asyncio_conformance_SUITE).
-module(py_loop_SUITE).

-include_lib("common_test/include/ct.hrl").

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1]).

-export([
    async_call_runs_on_erlang_loop/1,
    call_of_coroutine_runs_on_erlang_loop/1,
    asyncio_run_uses_the_policy/1,
    asyncio_policy_false_keeps_asyncio_loop/1,
    erlang_loop_module_of_1_6/1,
    erlang_run_in_a_call/1,
    child_exit_status/1,
    signal_handler_error/1
]).

-define(KIND, <<
    "import asyncio, sys\n"
    "async def loop_kind():\n"
    "    await asyncio.sleep(0)\n"
    "    return type(asyncio.get_running_loop()).__name__\n"
    "def run_kind():\n"
    "    return asyncio.run(loop_kind())\n"
>>).

-spec all() -> [atom()].
all() -> py_test_util:cases(?MODULE).

-spec suite() -> [tuple()].
suite() -> [{timetrap, {minutes, 2}}].

-spec init_per_suite(ct_suite:ct_config()) -> ct_suite:ct_config().
init_per_suite(Config) ->
    ok = py_test_util:start(),
    ok = py:exec(?KIND),
    Config.

-spec end_per_suite(ct_suite:ct_config()) -> ok.
end_per_suite(_Config) ->
    ok = py_test_util:stop().

%% @doc py:async_call's coroutines run on an erlang.ErlangEventLoop.
-spec async_call_runs_on_erlang_loop(ct_suite:ct_config()) -> term().
async_call_runs_on_erlang_loop(_Config) ->
    Ref = py:async_call('__main__', loop_kind, []),
    {ok, <<"ErlangEventLoop">>} = py:async_await(Ref, 10000).

%% @doc py:call of an async def awaits it on the same loop.
-spec call_of_coroutine_runs_on_erlang_loop(ct_suite:ct_config()) -> term().
call_of_coroutine_runs_on_erlang_loop(_Config) ->
    {ok, <<"ErlangEventLoop">>} = py:call('__main__', loop_kind, []).

%% @doc By default (asyncio_policy = true) asyncio.run in code called from Erlang runs on an
%% erlang.ErlangEventLoop, as in erlang_python 1.6.
-spec asyncio_run_uses_the_policy(ct_suite:ct_config()) -> term().
asyncio_run_uses_the_policy(_Config) ->
    {ok, <<"ErlangEventLoop">>} = py:call('__main__', run_kind, []),
    {ok, true} = py:eval(<<"__import__('erlang._loop', fromlist=['_']).policy_installed()">>).

%% @doc asyncio_policy = false leaves asyncio's own policy (read at every start), and true
%% puts ours back at the next start.
-spec asyncio_policy_false_keeps_asyncio_loop(ct_suite:ct_config()) -> term().
asyncio_policy_false_keeps_asyncio_loop(_Config) ->
    ok = py_test_util:stop(),
    ok = application:set_env(erlang_python, asyncio_policy, false),
    try
        ok = py_test_util:start(),
        ok = py:exec(?KIND),
        {ok, <<"_UnixSelectorEventLoop">>} = py:call('__main__', run_kind, []),
        %% py:async_call keeps its own ErlangEventLoop whatever the policy.
        {ok, <<"ErlangEventLoop">>} = py:async_await(py:async_call('__main__', loop_kind, []))
    after
        ok = py_test_util:stop(),
        ok = application:unset_env(erlang_python, asyncio_policy),
        ok = py_test_util:start(),
        ok = py:exec(?KIND)
    end,
    {ok, <<"ErlangEventLoop">>} = py:call('__main__', run_kind, []).

%% @doc The erlang_python 1.6 spellings: erlang_loop.ErlangEventLoop and
%% erlang_loop.get_event_loop_policy().
-spec erlang_loop_module_of_1_6(ct_suite:ct_config()) -> term().
erlang_loop_module_of_1_6(_Config) ->
    ok = py:exec(<<
        "import asyncio, erlang, erlang_loop\n"
        "def loop_1_6():\n"
        "    policy = erlang_loop.get_event_loop_policy()\n"
        "    loop = policy.new_event_loop()\n"
        "    try:\n"
        "        return (erlang_loop.ErlangEventLoop is erlang.ErlangEventLoop,\n"
        "                loop.run_until_complete(loop_kind()))\n"
        "    finally:\n"
        "        loop.close()\n"
    >>),
    {ok, {true, <<"ErlangEventLoop">>}} = py:call('__main__', loop_1_6, []).

%% @doc erlang.run in a call from Erlang returns the coroutine's result.
-spec erlang_run_in_a_call(ct_suite:ct_config()) -> term().
erlang_run_in_a_call(_Config) ->
    {ok, <<"ErlangEventLoop">>} =
        py:eval(<<"__import__('erlang').run(loop_kind())">>).

%% @doc Python reads its child processes' exit statuses (the BEAM ignores SIGCHLD, and the
%% kernel then reaps children before anyone can wait for them): with subprocess and on the
%% loop.
-spec child_exit_status(ct_suite:ct_config()) -> term().
child_exit_status(_Config) ->
    {ok, 3} = py:eval(<<"__import__('subprocess').run(['sh', '-c', 'exit 3']).returncode">>),
    ok = py:exec(<<
        "async def child_status():\n"
        "    proc = await asyncio.create_subprocess_exec('sh', '-c', 'exit 7')\n"
        "    return await proc.wait()\n"
    >>),
    {ok, 7} = py:eval(<<"__import__('erlang').run(child_status())">>),
    %% Erlang's own ports still work.
    "ok\n" = os:cmd("echo ok").

%% @doc add_signal_handler raises a RuntimeError that says why (no Python code runs on the
%% main thread inside the BEAM).
-spec signal_handler_error(ct_suite:ct_config()) -> term().
signal_handler_error(_Config) ->
    ok = py:exec(<<
        "def add_handler():\n"
        "    loop = __import__('erlang').new_event_loop()\n"
        "    try:\n"
        "        loop.add_signal_handler(2, print)\n"
        "    finally:\n"
        "        loop.close()\n"
    >>),
    {error, {'RuntimeError', Message}} = py:call('__main__', add_handler, []),
    {match, _} = re:run(Message, <<"main thread">>),
    {match, _} = re:run(Message, <<"BEAM">>).
