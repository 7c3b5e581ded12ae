%% @doc Fair turns at the GIL (GIL builds): the executors' turnstile and the queue order. The
%% GIL is held on purpose by a request blocked in `read(2)' through `ctypes.PyDLL' (which keeps
%% the GIL), so that other requests line up deterministically; a byte written to its FIFO lets
%% it go. Nothing here measures time: the speed is bench/'s `fairness' section.
-module(py_fair_SUITE).

-include_lib("common_test/include/ct.hrl").

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).

-export([
    light_calls_wait_in_line_and_the_line_drains/1,
    context_call_waits_in_line/1,
    cpu_bound_callers_and_light_callers_all_finish/1,
    nested_callback_while_the_line_is_engaged/1,
    timeout_in_line_sends_no_late_reply/1,
    killed_caller_in_line_frees_its_executor/1,
    interrupt_while_light_callers_contend/1,
    stats_are_counters/1
]).

-define(EXECUTORS, 8).
-define(HOLDER, <<
    "import ctypes as _fair_ctypes, os as _fair_os\n"
    "_fair_libc = _fair_ctypes.PyDLL(None)\n"
    "def _fair_hold_gil(path):\n"
    "    fd = _fair_os.open(path, _fair_os.O_RDONLY)\n"
    "    try:\n"
    "        buf = _fair_ctypes.create_string_buffer(1)\n"
    "        return _fair_libc.read(fd, buf, 1)\n"
    "    finally:\n"
    "        _fair_os.close(fd)\n"
>>).

-spec all() -> [atom()].
all() -> py_test_util:cases(?MODULE).

-spec suite() -> [tuple()].
suite() -> [{timetrap, {minutes, 3}}].

-spec init_per_suite(ct_suite:ct_config()) -> ct_suite:ct_config().
init_per_suite(Config) ->
    ok = py_test_util:stop(),
    ok = application:set_env(erlang_python, num_executors, ?EXECUTORS),
    ok = py_test_util:start(),
    Config.

-spec end_per_suite(ct_suite:ct_config()) -> ok.
end_per_suite(_Config) ->
    ok = py_test_util:stop(),
    ok = application:unset_env(erlang_python, num_executors).

-spec init_per_testcase(atom(), ct_suite:ct_config()) -> ct_suite:ct_config().
init_per_testcase(Case, Config) ->
    ok = py_test_util:start(),
    py_test_util:flush(),
    ok = py:exec(?HOLDER),
    Fifo = filename:join(?config(priv_dir, Config), atom_to_list(Case) ++ ".fifo"),
    _ = file:delete(Fifo),
    {ok, none} = py:call(os, mkfifo, [list_to_binary(Fifo)]),
    %% Asked now: after a failure the GIL may be held, and Python would not answer.
    {ok, Python} = py:eval(<<"__import__('sys').executable">>),
    [{fifo, Fifo}, {python, binary_to_list(Python)} | Config].

-spec end_per_testcase(atom(), ct_suite:ct_config()) -> ok.
end_per_testcase(_Case, Config) ->
    Fifo = ?config(fifo, Config),
    %% A case that failed half-way may have left its holder blocked with the GIL, which would
    %% stall every later case: a byte for it, from another OS process (no reader: ENXIO).
    Unblock = "import os, sys\n"
              "try:\n"
              "    os.write(os.open(sys.argv[1], os.O_WRONLY | os.O_NONBLOCK), b'x')\n"
              "except OSError:\n"
              "    pass\n",
    Port = open_port({spawn_executable, ?config(python, Config)},
                     [{args, ["-c", Unblock, Fifo]}, exit_status]),
    receive {Port, {exit_status, _}} -> ok end,
    _ = file:delete(Fifo),
    ok.

%%% ---------------------------------------------------------------- helpers

%% Starts a request that holds the GIL until release/1 (on a free-threaded build it holds
%% nothing and only blocks its executor). Returns once it has opened its FIFO.
hold_gil(Config) ->
    Fifo = ?config(fifo, Config),
    Holder = py_test_util:spawn_call(
        fun() -> py:call('__main__', '_fair_hold_gil', [list_to_binary(Fifo)], #{}, 60000) end),
    %% Opening the write end waits for the holder to open the read end.
    {ok, Writer} = file:open(Fifo, [write, raw, binary]),
    {Holder, Writer}.

release({Holder, Writer}) ->
    ok = file:write(Writer, <<"x">>),
    ok = file:close(Writer),
    {ok, 1} = py_test_util:await_call(Holder, 60000),
    ok.

gil_build() ->
    py:execution_mode() =/= free_threaded.

py_fair_stats() ->
    py_pool:fairness_stats().

%% Light callers, started one at a time until one waits in the turnstile's line (while the GIL
%% is held, the first may still slip through before the holder takes the GIL, or go to the
%% gate: the line needs two). Returns the callers.
line_up(Fun) ->
    line_up(Fun, [], 50).

line_up(_Fun, Callers, 0) ->
    ct:fail({no_line, length(Callers), py_fair_stats()});
line_up(Fun, Callers, Tries) ->
    Caller = py_test_util:spawn_call(Fun),
    All = [Caller | Callers],
    case wait_line(1, 20) of
        true -> lists:reverse(All);
        false -> line_up(Fun, All, Tries - 1)
    end.

%% True once `line' is at least N, polled every 10 ms up to Polls times.
wait_line(_N, 0) ->
    false;
wait_line(N, Polls) ->
    case maps:get(line, py_fair_stats()) >= N of
        true ->
            true;
        false ->
            receive after 10 -> ok end,
            wait_line(N, Polls - 1)
    end.

%% `not_yet' unless the spawn_call/1 caller has replied.
replied({_Pid, Tag}) ->
    receive {Tag, R} -> {replied, R} after 0 -> not_yet end.

sqrt2() ->
    py:call(math, sqrt, [2.0]).

%% The turnstile is idle again: nobody in line, nobody at the gate.
wait_disengaged() ->
    py_test_util:wait_for_value(
        fun() -> maps:with([line, gate_taken], py_fair_stats()) end,
        #{line => 0, gate_taken => false}, 20000).

%%% ---------------------------------------------------------------- cases

%% @doc While a request holds the GIL, light calls line up in the turnstile (one at the gate,
%% the rest in line), all complete once it lets go, and the turnstile is idle again after. On a
%% free-threaded build nothing lines up: the calls complete while the holder still blocks.
-spec light_calls_wait_in_line_and_the_line_drains(ct_suite:ct_config()) -> term().
light_calls_wait_in_line_and_the_line_drains(Config) ->
    Before = py_fair_stats(),
    Held = hold_gil(Config),
    case gil_build() of
        true ->
            Callers = line_up(fun sqrt2/0),
            #{gate_taken := true, waited := Waited} = py_fair_stats(),
            true = Waited > maps:get(waited, Before),
            %% A first caller may have slipped through before the holder took the GIL (see
            %% line_up/1); the one at the gate and the ones in line still wait: nothing ran
            %% while the GIL was held.
            States = [{C, replied(C)} || C <- Callers],
            Waiting = [C || {C, not_yet} <- States],
            true = length(Waiting) >= 2,
            [{ok, 1.4142135623730951} = R || {_, {replied, R}} <- States],
            ok = release(Held),
            [{ok, 1.4142135623730951} = py_test_util:await_call(C, 30000) || C <- Waiting];
        false ->
            Callers = [py_test_util:spawn_call(fun sqrt2/0) || _ <- lists:seq(1, 4)],
            [{ok, 1.4142135623730951} = py_test_util:await_call(C, 30000) || C <- Callers],
            ok = release(Held),
            #{line := 0, gate_taken := false, waited := 0, yielded := 0} = py_fair_stats()
    end,
    wait_disengaged(),
    {ok, 1.4142135623730951} = sqrt2().

%% @doc A bound context's request takes its turn in the same line, and its executor serves the
%% context again afterwards.
-spec context_call_waits_in_line(ct_suite:ct_config()) -> term().
context_call_waits_in_line(Config) ->
    {ok, Ctx} = py:bind(new),
    ok = py:ctx_exec(Ctx, <<"n = 1">>),
    Held = hold_gil(Config),
    Callers = [py_test_util:spawn_call(fun() -> py:ctx_eval(Ctx, <<"n + 1">>) end)
               | case gil_build() of
                     true -> line_up(fun sqrt2/0);
                     false -> []
                 end],
    ok = release(Held),
    [{ok, 2} | Rest] = [py_test_util:await_call(C, 30000) || C <- Callers],
    [{ok, 1.4142135623730951} = R || R <- Rest],
    {ok, 2} = py:ctx_eval(Ctx, <<"n + 1">>),
    ok = py:unbind(Ctx),
    wait_disengaged().

%% @doc Four callers running CPU-bound requests in a loop (a C call that never lets the GIL go,
%% and a Python loop the switch interval preempts) and light callers beside them: every caller
%% finishes all its calls (none starves), every result is right, and the turnstile ends idle.
-spec cpu_bound_callers_and_light_callers_all_finish(ct_suite:ct_config()) -> term().
cpu_bound_callers_and_light_callers_all_finish(_Config) ->
    Heavy = [<<"sum(range(200000))">>, <<"sum(i for i in range(100000))">>],
    Busy = [py_test_util:spawn_call(
                fun() ->
                        [{ok, _} = py:eval(lists:nth(1 + I rem 2, Heavy)) || _ <- lists:seq(1, 15)],
                        done
                end)
            || I <- lists:seq(1, 4)],
    Light = [py_test_util:spawn_call(
                 fun() ->
                         [{ok, 1.4142135623730951} = sqrt2() || _ <- lists:seq(1, 40)],
                         done
                 end)
             || _ <- lists:seq(1, 2)],
    [done = py_test_util:await_call(C, 120000) || C <- Busy ++ Light],
    wait_disengaged().

%% @doc An executor waiting for an Erlang callback holds no GIL and no place in the line: with
%% one request in a callback, another holding the GIL and light calls in line, the callback's
%% function makes a nested request (run on the waiting executor) once the holder lets go, and
%% everything completes.
-spec nested_callback_while_the_line_is_engaged(ct_suite:ct_config()) -> term().
nested_callback_while_the_line_is_engaged(Config) ->
    Self = self(),
    ok = py:register_function(fair_nested, fun([X]) ->
                                                   Self ! {in_callback, self()},
                                                   receive go -> ok end,
                                                   {ok, Y} = py:eval(<<"x * 2">>, #{x => X}),
                                                   Y + 1
                                           end),
    try
        Outer = py_test_util:spawn_call(
            fun() -> py:eval(<<"__import__('erlang').call('fair_nested', 20)">>) end),
        Fun = receive {in_callback, Pid} -> Pid after 30000 -> ct:fail(no_callback) end,
        Held = hold_gil(Config),
        Callers = case gil_build() of
                      true -> line_up(fun sqrt2/0);
                      false -> []
                  end,
        Fun ! go,
        ok = release(Held),
        {ok, 41} = py_test_util:await_call(Outer, 30000),
        [{ok, 1.4142135623730951} = py_test_util:await_call(C, 30000) || C <- Callers]
    after
        py:unregister_function(fair_nested)
    end,
    wait_disengaged().

%% @doc A call that times out while it waits in line gets `{error, timeout}', never a late
%% reply when its turn comes, and does not hold up the others.
-spec timeout_in_line_sends_no_late_reply(ct_suite:ct_config()) -> term().
timeout_in_line_sends_no_late_reply(Config) ->
    Held = hold_gil(Config),
    Callers = case gil_build() of
                  true -> line_up(fun sqrt2/0);
                  false -> []
              end,
    Late = case gil_build() of
               true -> py:call(math, sqrt, [4.0], #{}, 100);
               false -> {error, timeout}
           end,
    {error, timeout} = Late,
    ok = release(Held),
    [{ok, 1.4142135623730951} = py_test_util:await_call(C, 30000) || C <- Callers],
    py_test_util:wait_pool_idle(),
    wait_disengaged(),
    {ok, 1.4142135623730951} = sqrt2(),
    py_test_util:assert_mailbox_empty().

%% @doc A caller killed while its request waits in line: the request is cancelled, its
%% executor is free again, and the line drains.
-spec killed_caller_in_line_frees_its_executor(ct_suite:ct_config()) -> term().
killed_caller_in_line_frees_its_executor(Config) ->
    Held = hold_gil(Config),
    Callers = case gil_build() of
                  true -> line_up(fun sqrt2/0);
                  false -> []
              end,
    {Victim, _} = py_test_util:spawn_call(fun sqrt2/0),
    ok = py_test_util:kill_and_wait([Victim]),
    ok = release(Held),
    [{ok, 1.4142135623730951} = py_test_util:await_call(C, 30000) || C <- Callers],
    py_test_util:wait_pool_idle(),
    wait_disengaged(),
    %% Every executor serves requests again.
    Many = [py_test_util:spawn_call(fun sqrt2/0) || _ <- lists:seq(1, 2 * ?EXECUTORS)],
    [{ok, 1.4142135623730951} = py_test_util:await_call(C, 30000) || C <- Many].

%% @doc A running Python loop is interrupted by its timeout while light callers contend for the
%% GIL through the turnstile (python-main takes the GIL outside it); the light calls all
%% complete and the turnstile ends idle.
-spec interrupt_while_light_callers_contend(ct_suite:ct_config()) -> term().
interrupt_while_light_callers_contend(_Config) ->
    Light = [py_test_util:spawn_call(
                 fun() ->
                         [{ok, 1.4142135623730951} = sqrt2() || _ <- lists:seq(1, 30)],
                         done
                 end)
             || _ <- lists:seq(1, 3)],
    {error, timeout} = py:exec(<<"while True: pass">>, 300),
    [done = py_test_util:await_call(C, 60000) || C <- Light],
    py_test_util:wait_pool_idle(),
    wait_disengaged(),
    {ok, 1.4142135623730951} = sqrt2().

%% @doc fairness_stats/0 is a map of non-negative counters and a boolean.
-spec stats_are_counters(ct_suite:ct_config()) -> term().
stats_are_counters(_Config) ->
    #{line := Line, gate_taken := Gate, waited := Waited, yielded := Yielded} = py_fair_stats(),
    true = is_integer(Line) andalso Line >= 0,
    true = is_boolean(Gate),
    true = is_integer(Waited) andalso Waited >= 0,
    true = is_integer(Yielded) andalso Yielded >= 0,
    4 = map_size(py_fair_stats()).
