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
    signal_handler_error/1,
    send_to_a_process/1,
    send_from_threads_and_coroutines/1,
    send_to_a_dead_process_is_silent/1,
    send_to_another_node/1,
    send_bad_arguments/1,
    mailbox_receives_erlang_messages/1,
    mailbox_big_message/1,
    mailbox_close_ends_the_process/1,
    mailbox_killed_process_raises/1,
    mailbox_closed_when_router_ends/1,
    mailbox_open_times_out/1,
    mailbox_file_descriptors/1
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
    ok = py:exec(<<
        "import erlang, threading\n"
        "def send_to(pid, message):\n"
        "    return erlang.send(pid, message)\n"
        "def send_from_thread(pid, n):\n"
        "    def run():\n"
        "        for i in range(n):\n"
        "            erlang.send(pid, ('thread', i))\n"
        "    t = threading.Thread(target=run)\n"
        "    t.start()\n"
        "    t.join()\n"
        "async def mailbox_collect(owner, n):\n"
        "    async with await erlang.open_mailbox() as mailbox:\n"
        "        erlang.send(owner, ('mailbox', mailbox.pid))\n"
        "        return [await mailbox.receive(timeout=30) for _ in range(n)]\n"
        "async def mailbox_until_closed(owner):\n"
        "    mailbox = await erlang.open_mailbox()\n"
        "    erlang.send(owner, ('mailbox', mailbox.pid))\n"
        "    try:\n"
        "        return await mailbox.receive(timeout=30)\n"
        "    finally:\n"
        "        mailbox.close()\n"
        "async def mailbox_open_quick():\n"
        "    try:\n"
        "        await erlang.open_mailbox(timeout=0.3)\n"
        "    except erlang.MailboxClosedError as e:\n"
        "        return ('closed', str(e))\n"
        "    return 'opened'\n"
        "async def mailboxes_fds(owner, n):\n"
        "    import os\n"
        "    def fds():\n"
        "        return len(os.listdir('/proc/self/fd'))\n"
        "    before = fds()\n"
        "    boxes = [await erlang.open_mailbox() for _ in range(n)]\n"
        "    opened = fds()\n"
        "    for box in boxes[: n // 2]:\n"
        "        box.close()\n"
        "    erlang.send(owner, ('kill', [box.pid for box in boxes[n // 2 :]]))\n"
        "    for box in boxes[n // 2 :]:\n"
        "        try:\n"
        "            await box.receive(timeout=30)\n"
        "        except erlang.MailboxClosedError:\n"
        "            pass\n"
        "    boxes.clear()\n"
        "    # Forgotten without close(): collected, its process ends.\n"
        "    forgotten = [await erlang.open_mailbox() for _ in range(n)]\n"
        "    erlang.send(owner, ('forgotten', [box.pid for box in forgotten]))\n"
        "    forgotten.clear()\n"
        "    return before, opened\n"
        "async def send_from_coroutine(pid, n):\n"
        "    for i in range(n):\n"
        "        erlang.send(pid, ('coroutine', i))\n"
        "        await asyncio.sleep(0)\n"
        "    return n\n"
    >>),
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

%% @doc erlang.send delivers a converted term to a process, as Pid ! Msg does.
-spec send_to_a_process(ct_suite:ct_config()) -> term().
send_to_a_process(_Config) ->
    Self = self(),
    {ok, none} = py:call('__main__', send_to, [Self, {<<"hello">>, [1, 2.5, #{k => v}]}]),
    receive
        {<<"hello">>, [1, 2.5, #{<<"k">> := <<"v">>}]} -> ok
    after 5000 -> ct:fail(no_message)
    end,
    %% A pid inside the message stays a pid (an atom becomes a binary, as for any result).
    {ok, none} = py:call('__main__', send_to, [Self, {pid, Self}]),
    receive {<<"pid">>, Self} -> ok after 5000 -> ct:fail(no_pid_message) end.

%% @doc From a Python thread and from coroutines on the loop, in order per sender.
-spec send_from_threads_and_coroutines(ct_suite:ct_config()) -> term().
send_from_threads_and_coroutines(_Config) ->
    Self = self(),
    {ok, none} = py:call('__main__', send_from_thread, [Self, 50]),
    [receive {<<"thread">>, I} -> ok after 5000 -> ct:fail({missing, thread, I}) end
     || I <- lists:seq(0, 49)],
    {ok, 20} = py:async_await(py:async_call('__main__', send_from_coroutine, [Self, 20])),
    [receive {<<"coroutine">>, I} -> ok after 5000 -> ct:fail({missing, coroutine, I}) end
     || I <- lists:seq(0, 19)],
    ok = py_test_util:assert_mailbox_empty().

%% @doc A dead process: nothing happens, as with Pid ! Msg.
-spec send_to_a_dead_process_is_silent(ct_suite:ct_config()) -> term().
send_to_a_dead_process_is_silent(_Config) ->
    {Pid, Ref} = spawn_monitor(fun() -> ok end),
    receive {'DOWN', Ref, process, Pid, _} -> ok end,
    {ok, none} = py:call('__main__', send_to, [Pid, hello]).

%% @doc A pid of another node goes through the router, which sends it on (here to a node that
%% does not exist: silently dropped, as by Pid ! Msg); the router stays up.
-spec send_to_another_node(ct_suite:ct_config()) -> term().
send_to_another_node(_Config) ->
    Router = whereis(py_callback),
    Remote = remote_pid('nowhere@nohost'),
    false = node(Remote) =:= node(),
    {ok, none} = py:call('__main__', send_to, [Remote, hello]),
    {ok, none} = py:call('__main__', send_to, [self(), after_remote]),
    receive <<"after_remote">> -> ok after 5000 -> ct:fail(no_message) end,
    Router = whereis(py_callback),
    true = is_process_alive(Router).

%% @doc A pid that is not an erlang.Pid is a TypeError; a message deeper than max_depth a
%% ValueError.
-spec send_bad_arguments(ct_suite:ct_config()) -> term().
send_bad_arguments(_Config) ->
    {error, {'TypeError', _}} = py:call('__main__', send_to, [<<"<0.1.0>">>, hello]),
    {error, {'TypeError', _}} = py:call('__main__', send_to, [make_ref(), hello]),
    {error, {'TypeError', _}} = py:eval(<<"erlang.send()">>),
    Deep = lists:foldl(fun(_, Acc) -> [Acc] end, [], lists:seq(1, 900)),
    ok = py:exec(<<"def deep_list(n):\n    x = []\n    for _ in range(n):\n        x = [x]\n    return x\n">>),
    {error, {'ValueError', _}} = py:eval(<<"erlang.send(me, deep_list(2000))">>, #{me => self()}),
    {ok, none} = py:call('__main__', send_to, [self(), Deep]),
    receive Deep -> ok after 5000 -> ct:fail(no_deep_message) end.

%% A pid of node Node, built in the external term format (NEW_PID_EXT).
-spec remote_pid(atom()) -> pid().
remote_pid(Node) ->
    Name = atom_to_binary(Node, utf8),
    binary_to_term(<<131, 88, 119, (byte_size(Name)), Name/binary, 1:32, 0:32, 1:32>>).

%% Starts Fun (a py:async_call of a coroutine that sends {<<"mailbox">>, Pid} first) and
%% returns the mailbox's pid and the call's reference.
-spec start_mailbox(atom(), list()) -> {pid(), reference()}.
start_mailbox(Function, Args) ->
    Ref = py:async_call('__main__', Function, Args),
    receive
        {<<"mailbox">>, Pid} when is_pid(Pid) -> {Pid, Ref}
    after 10000 -> ct:fail(no_mailbox)
    end.

%% @doc Pid ! Msg from Erlang reaches the coroutine's await mailbox.receive(), in order, with
%% the normal conversion; the mailbox's pid is a live local process.
-spec mailbox_receives_erlang_messages(ct_suite:ct_config()) -> term().
mailbox_receives_erlang_messages(_Config) ->
    {Pid, Ref} = start_mailbox(mailbox_collect, [self(), 4]),
    Monitor = monitor(process, Pid),
    true = is_process_alive(Pid),
    true = node() =:= node(Pid),
    Pid ! {hello, [1, 2]},
    Pid ! #{key => <<"value">>},
    Pid ! self(),
    Pid ! <<255>>,
    Self = self(),
    {ok, [{<<"hello">>, [1, 2]}, #{<<"key">> := <<"value">>}, Self, <<255>>]} =
        py:async_await(Ref, 30000),
    %% The mailbox was closed on the way out: its process ended normally.
    receive {'DOWN', Monitor, process, Pid, normal} -> ok after 10000 -> ct:fail(no_down) end.

%% @doc A message too big to copy on a normal scheduler takes the dirty path.
-spec mailbox_big_message(ct_suite:ct_config()) -> term().
mailbox_big_message(_Config) ->
    {Pid, Ref} = start_mailbox(mailbox_collect, [self(), 1]),
    Big = binary:copy(<<"x">>, 4 * 1024 * 1024),
    Pid ! {big, Big},
    {ok, [{<<"big">>, Big}]} = py:async_await(Ref, 30000).

%% @doc Erlang can monitor and link the mailbox's process; closing the mailbox ends it
%% normally (a linked process is not taken down), and later sends are silent.
-spec mailbox_close_ends_the_process(ct_suite:ct_config()) -> term().
mailbox_close_ends_the_process(_Config) ->
    {Pid, Ref} = start_mailbox(mailbox_until_closed, [self()]),
    Monitor = monitor(process, Pid),
    Self = self(),
    Linked = spawn(fun() -> link(Pid), Self ! linked, receive stop -> ok end end),
    receive linked -> ok after 10000 -> ct:fail(not_linked) end,
    Pid ! first,
    {ok, <<"first">>} = py:async_await(Ref, 30000),
    receive {'DOWN', Monitor, process, Pid, normal} -> ok after 10000 -> ct:fail(no_down) end,
    true = is_process_alive(Linked),
    Pid ! too_late,
    Linked ! stop.

%% @doc A mailbox whose process is killed: the coroutine's receive raises MailboxClosedError
%% with the exit reason.
-spec mailbox_killed_process_raises(ct_suite:ct_config()) -> term().
mailbox_killed_process_raises(_Config) ->
    {Pid, Ref} = start_mailbox(mailbox_collect, [self(), 2]),
    Pid ! one,
    exit(Pid, kill),
    {error, {'MailboxClosedError', Message}} = py:async_await(Ref, 30000),
    {match, _} = re:run(Message, <<"killed">>).

%% @doc When erlang_python stops, its router (py_callback, which watches mailbox processes for
%% Python) ends, and each mailbox's process closes its mailbox and ends normally instead of
%% living on unwatched; the coroutine is stopped or sees MailboxClosedError, whichever the stop
%% reaches first.
-spec mailbox_closed_when_router_ends(ct_suite:ct_config()) -> term().
mailbox_closed_when_router_ends(_Config) ->
    {Pid, Ref} = start_mailbox(mailbox_collect, [self(), 2]),
    Monitor = monitor(process, Pid),
    ok = application:stop(erlang_python),
    try
        receive {'DOWN', Monitor, process, Pid, normal} -> ok after 10000 -> ct:fail(no_down) end,
        case py:async_await(Ref, 1000) of
            {error, {'MailboxClosedError', Message}} ->
                {match, _} = re:run(Message, <<"erlang_python stopped">>);
            {error, _Stopped} ->
                ok
        end
    after
        ok = py_test_util:start()
    end,
    {Pid2, Ref2} = start_mailbox(mailbox_collect, [self(), 1]),
    Pid2 ! again,
    {ok, [<<"again">>]} = py:async_await(Ref2, 30000).

%% @doc Each mailbox holds one file descriptor (its eventfd), and mailboxes that end in each
%% way (closed, their process killed, forgotten and collected) leave none behind once their
%% processes are gone.
-spec mailbox_file_descriptors(ct_suite:ct_config()) -> term().
mailbox_file_descriptors(_Config) ->
    Fds = fun() -> {ok, Names} = file:list_dir("/proc/self/fd"), length(Names) end,
    Baseline = Fds(),
    Ref = py:async_call('__main__', mailboxes_fds, [self(), 100]),
    Killed = receive {<<"kill">>, Pids} -> Pids after 30000 -> ct:fail(no_kill) end,
    [exit(Pid, kill) || Pid <- Killed],
    Forgotten = receive {<<"forgotten">>, Pids2} -> Pids2 after 30000 -> ct:fail(no_forgotten) end,
    {ok, {Before, Opened}} = py:async_await(Ref, 60000),
    %% One each, give or take the process's other fds opening or closing meanwhile (two each
    %% before: a socket pair).
    true = Opened - Before >= 90 andalso Opened - Before =< 110,
    {ok, _} = py:eval(<<"__import__('gc').collect()">>),
    py_test_util:wait_until(fun() ->
        not lists:any(fun erlang:is_process_alive/1, Forgotten ++ Killed)
    end, 20000),
    %% The eventfds close as the inboxes' last holders let go (the processes' terms too).
    py_test_util:wait_until(fun() ->
        [erlang:garbage_collect(P) || P <- processes()],
        Fds() =< Baseline
    end, 20000).

%% @doc open_mailbox(timeout=...) gives up with MailboxClosedError when no process comes (the
%% router held up here); a bad timeout is a ValueError.
-spec mailbox_open_times_out(ct_suite:ct_config()) -> term().
mailbox_open_times_out(_Config) ->
    ok = py_test_util:start(),
    Router = whereis(py_callback),
    ok = sys:suspend(Router),
    try
        {ok, {<<"closed">>, Message}} =
            py:async_await(py:async_call('__main__', mailbox_open_quick, []), 30000),
        {match, _} = re:run(Message, <<"within 0.3 s">>)
    after
        ok = sys:resume(Router)
    end,
    {error, {'ValueError', _}} =
        py:eval(<<"__import__('asyncio').run(erlang.open_mailbox(timeout=0))">>),
    %% The late request finds the mailbox closed: its process ends at once, nothing is left.
    ok = py_test_util:wait_pool_idle(),
    {Pid, Ref} = start_mailbox(mailbox_collect, [self(), 1]),
    Pid ! fine,
    {ok, [<<"fine">>]} = py:async_await(Ref, 30000).
