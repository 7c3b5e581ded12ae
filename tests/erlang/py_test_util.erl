%% @doc Helpers shared by the Common Test suites of erlang_python.
-module(py_test_util).

-export([
    cases/1,
    start/0,
    stop/0,
    restart/0,
    timed/1,
    assert_no_message/1,
    assert_mailbox_empty/0,
    flush/0,
    wait_until/2,
    wait_for_value/3,
    wait_pool_idle/0,
    pmap/2,
    pmap/3,
    spawn_call/1,
    await_call/2,
    expect_raise/2,
    run_bounded/2,
    kill_and_wait/1,
    unique_name/1,
    normalise/1,
    default_num_executors/0,
    repo_root/0,
    quickcheck/2,
    proper_seed/0
]).

%% @doc Test cases of a suite: its exported functions of arity 1 except CT callbacks.
-spec cases(module()) -> [atom()].
cases(Module) ->
    Callbacks = [init_per_suite, end_per_suite, module_info, group],
    [F || {F, 1} <- Module:module_info(exports), not lists:member(F, Callbacks)].

%% @doc Start the application (and its dependencies) if it is not running.
-spec start() -> ok.
start() ->
    {ok, _} = application:ensure_all_started(erlang_python),
    ok.

%% @doc Stop the application; fails the test if the stop takes more than 15 s.
-spec stop() -> ok.
stop() ->
    case run_bounded(fun() -> application:stop(erlang_python) end, 15000) of
        ok -> ok;
        {error, {not_started, erlang_python}} -> ok
    end.

%% @doc Stop then start the application.
-spec restart() -> ok.
restart() ->
    ok = stop(),
    start().

%% @doc Run Fun and return {ElapsedMilliseconds, Result}.
-spec timed(fun(() -> T)) -> {integer(), T}.
timed(Fun) ->
    T0 = erlang:monotonic_time(millisecond),
    R = Fun(),
    {erlang:monotonic_time(millisecond) - T0, R}.

%% @doc Fail if any message arrives in the caller's mailbox within Ms milliseconds.
-spec assert_no_message(non_neg_integer()) -> ok.
assert_no_message(Ms) ->
    receive
        M -> ct:fail({late, M})
    after Ms -> ok
    end.

%% @doc Fail unless the caller's mailbox is empty right now.
-spec assert_mailbox_empty() -> ok.
assert_mailbox_empty() ->
    case process_info(self(), messages) of
        {messages, []} -> ok;
        {messages, Ms} -> ct:fail({unexpected_messages, Ms})
    end.

%% @doc Drop every message in the caller's mailbox.
-spec flush() -> ok.
flush() ->
    receive
        _ -> flush()
    after 0 -> ok
    end.

%% @doc Poll Fun every 10 ms until it returns true; fail after TimeoutMs.
%% Used only for states that cannot be awaited (pool counters, Python-side GC).
-spec wait_until(fun(() -> boolean()), non_neg_integer()) -> ok.
wait_until(Fun, TimeoutMs) ->
    Deadline = erlang:monotonic_time(millisecond) + TimeoutMs,
    wait_until_loop(Fun, Deadline).

wait_until_loop(Fun, Deadline) ->
    case Fun() of
        true ->
            ok;
        false ->
            case erlang:monotonic_time(millisecond) > Deadline of
                true ->
                    ct:fail({wait_until_timed_out, erlang:fun_info(Fun, name)});
                false ->
                    receive after 10 -> ok end,
                    wait_until_loop(Fun, Deadline)
            end
    end.

%% @doc Poll Fun every 10 ms until it returns Expected; fail with the last value after
%% TimeoutMs. For counters that cannot be awaited.
-spec wait_for_value(fun(() -> T), T, non_neg_integer()) -> ok.
wait_for_value(Fun, Expected, TimeoutMs) ->
    Deadline = erlang:monotonic_time(millisecond) + TimeoutMs,
    wait_for_value_loop(Fun, Expected, Deadline).

wait_for_value_loop(Fun, Expected, Deadline) ->
    case Fun() of
        Expected ->
            ok;
        Got ->
            case erlang:monotonic_time(millisecond) > Deadline of
                true ->
                    ct:fail({wait_for_value_timed_out, #{expected => Expected, got => Got}});
                false ->
                    receive after 10 -> ok end,
                    wait_for_value_loop(Fun, Expected, Deadline)
            end
    end.

%% @doc Wait until the pool runs and queues no job (`pending_requests' 0): a job that was
%% stopped (timeout, dead caller) has left its executor. Polled: a NIF-side counter.
-spec wait_pool_idle() -> ok.
wait_pool_idle() ->
    wait_for_value(fun() -> maps:get(pending_requests, py_pool:get_stats()) end, 0, 20000).

%% @doc Run Fun(X) for every X, each in its own process, results in input order (60 s max).
-spec pmap(fun((A) -> B), [A]) -> [B].
pmap(Fun, List) ->
    pmap(Fun, List, 60000).

%% @doc As pmap/2 with an overall timeout in milliseconds.
-spec pmap(fun((A) -> B), [A], non_neg_integer()) -> [B].
pmap(Fun, List, TimeoutMs) ->
    Parent = self(),
    Tagged = [begin
                  Tag = make_ref(),
                  {Pid, MRef} = spawn_monitor(fun() -> Parent ! {Tag, Fun(X)} end),
                  {Tag, Pid, MRef}
              end || X <- List],
    Deadline = erlang:monotonic_time(millisecond) + TimeoutMs,
    [pmap_collect(T, Deadline) || T <- Tagged].

pmap_collect({Tag, Pid, MRef}, Deadline) ->
    Left = max(0, Deadline - erlang:monotonic_time(millisecond)),
    receive
        {Tag, R} ->
            erlang:demonitor(MRef, [flush]),
            R;
        {'DOWN', MRef, process, Pid, Reason} ->
            ct:fail({pmap_worker_died, Reason})
    after Left ->
        ct:fail(pmap_timeout)
    end.

%% @doc Run Fun in a new process; its result is later collected with await_call/2.
-spec spawn_call(fun(() -> term())) -> {pid(), reference()}.
spawn_call(Fun) ->
    Parent = self(),
    Tag = make_ref(),
    Pid = spawn(fun() -> Parent ! {Tag, Fun()} end),
    {Pid, Tag}.

%% @doc Wait for the result of a spawn_call/1 process.
-spec await_call({pid(), reference()}, timeout()) -> term().
await_call({_Pid, Tag}, Timeout) ->
    receive
        {Tag, R} -> R
    after Timeout ->
        ct:fail({await_call_timeout, Timeout})
    end.

%% @doc Run Fun; it must raise error:E with E one of Reasons. Returns E.
-spec expect_raise(fun(() -> term()), [atom()]) -> atom().
expect_raise(Fun, Reasons) ->
    try Fun() of
        R -> ct:fail({no_exception, R})
    catch
        error:E ->
            case lists:member(E, Reasons) of
                true -> E;
                false -> ct:fail({unexpected_exception, E, Reasons})
            end
    end.

%% @doc Run Fun in a helper process; fail (instead of hanging) after TimeoutMs.
-spec run_bounded(fun(() -> T), non_neg_integer()) -> T.
run_bounded(Fun, TimeoutMs) ->
    Parent = self(),
    Tag = make_ref(),
    {Pid, MRef} = spawn_monitor(fun() -> Parent ! {Tag, Fun()} end),
    receive
        {Tag, R} ->
            erlang:demonitor(MRef, [flush]),
            R;
        {'DOWN', MRef, process, Pid, Reason} ->
            ct:fail({run_bounded_crashed, Reason})
    after TimeoutMs ->
        exit(Pid, kill),
        ct:fail({hung, TimeoutMs})
    end.

%% @doc Kill the given processes and wait until all of them are dead.
-spec kill_and_wait([pid()]) -> ok.
kill_and_wait(Pids) ->
    MRefs = [{P, erlang:monitor(process, P)} || P <- Pids],
    [exit(P, kill) || P <- Pids],
    [receive {'DOWN', M, process, P, _} -> ok end || {P, M} <- MRefs],
    ok.

%% @doc A name that no atom or Python object in this VM has had before.
-spec unique_name(string()) -> string().
unique_name(Prefix) ->
    Prefix ++ integer_to_list(erlang:unique_integer([positive]))
        ++ "x" ++ integer_to_list(erlang:system_time(microsecond)).

%% @doc The executor count the application should use given its environment.
-spec default_num_executors() -> pos_integer().
default_num_executors() ->
    case application:get_env(erlang_python, num_executors) of
        {ok, N} when is_integer(N), N > 0 ->
            N;
        _ ->
            case application:get_env(erlang_python, num_workers) of
                {ok, W} when is_integer(W), W > 0 -> W;
                _ -> max(2, erlang:system_info(schedulers))
            end
    end.

%% @doc The checkout this application was built from: the first parent directory of the test
%% suites or of the application's priv dir (symlinks resolved) that holds tests/python/conftest.py.
-spec repo_root() -> string() | undefined.
repo_root() ->
    Starts = [filename:dirname(code:which(?MODULE)), resolve(code:priv_dir(erlang_python))],
    find_root([filename:absname(S) || S <- Starts, is_list(S)]).

-spec find_root([string()]) -> string() | undefined.
find_root([]) ->
    undefined;
find_root([Dir | Rest]) ->
    case filelib:is_regular(filename:join([Dir, "tests", "python", "conftest.py"])) of
        true ->
            Dir;
        false ->
            case filename:dirname(Dir) of
                Dir -> find_root(Rest);
                Parent -> find_root([Parent | Rest])
            end
    end.

-spec resolve(string() | {error, bad_name}) -> string() | undefined.
resolve({error, _}) ->
    undefined;
resolve(Path) ->
    case file:read_link_all(Path) of
        {ok, Target} -> filename:absname(Target, filename:dirname(Path));
        {error, _} -> Path
    end.

%% @doc The documented normal form of a term after Erlang -> Python -> Erlang
%% (docs/type-conversion.md): `nil' and `undefined' become `none', other atoms binaries.
-spec normalise(term()) -> term().
normalise(true) -> true;
normalise(false) -> false;
normalise(none) -> none;
normalise(nil) -> none;
normalise(undefined) -> none;
normalise(A) when is_atom(A) -> atom_to_binary(A, utf8);
normalise(L) when is_list(L) -> [normalise(X) || X <- L];
normalise(T) when is_tuple(T) -> list_to_tuple([normalise(X) || X <- tuple_to_list(T)]);
normalise(M) when is_map(M) ->
    maps:from_list([{normalise(K), normalise(V)} || {K, V} <- maps:to_list(M)]);
normalise(X) -> X.

%% @doc PropEr's quickcheck of Property over N cases, with PropEr's random generator seeded by
%% proper_seed/0 (the Debian PropEr 1.2 has no seed option, and seeds from the clock unless the
%% calling process has seeded `rand' itself, which is what this does). Prints the seed; returns
%% true or the counterexample, as proper:quickcheck/2.
-spec quickcheck(term(), pos_integer()) -> term().
quickcheck(Property, N) ->
    Seed = proper_seed(),
    ct:pal("PropEr: ~p cases, seed ~w (PROPER_SEED=~s replays it)",
           [N, Seed, string:join([integer_to_list(I) || I <- tuple_to_list(Seed)], ",")]),
    _ = rand:seed(exsplus, Seed),
    proper:quickcheck(Property, [{numtests, N}, {to_file, user}, long_result]).

%% @doc The seed of property runs: fixed unless the OS variable PROPER_SEED says otherwise, so
%% that a test run's outcome depends on the code alone. PROPER_SEED=random picks one from the
%% clock (`make fuzz'); PROPER_SEED=A,B,C (three integers) replays a printed one.
-spec proper_seed() -> {integer(), integer(), integer()}.
proper_seed() ->
    case os:getenv("PROPER_SEED") of
        false -> {20261208, 1, 1};
        "random" -> os:timestamp();
        Text ->
            case [list_to_integer(string:trim(I)) || I <- string:split(Text, ",", all)] of
                [A, B, C] -> {A, B, C};
                _ -> error({bad_proper_seed, Text})
            end
    end.
