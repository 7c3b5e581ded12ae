%% What every example escript shares: starting erlang_python from the ebin given on the command
%% line, printing steps, failing with a message and a non-zero exit status, and a watchdog that
%% stops an example whose step hangs.
%%
%% Each escript compiles this module (and the other modules of examples/ it uses) when it
%% starts, with load/2, so the examples need no build step of their own.
-module(example).

-export([main/4, load/2, step/1, show/2, pmap/2, timed/1, best_of/2, per_second/2]).

%% Exit statuses: 0 when every check passed, 1 when one failed, 2 for a usage error, 3 when a
%% step made no progress for ?STEP_TIMEOUT ms.
-define(STEP_TIMEOUT, 180000).

%% @doc Runs an example: `Args' are the escript's arguments, the first the erlang_python ebin.
%% `Env' is set in the application environment before it starts; `Run' gets the remaining
%% arguments and the examples directory, and checks what it does by pattern matching.
-spec main([string()], string(), [{atom(), term()}], fun(([string()], file:filename()) -> _)) ->
    no_return().
main([Ebin | Rest], Name, Env, Run) ->
    ok = io:setopts(standard_io, [{encoding, unicode}]),
    %% Warnings and errors of the application still show; "application stopped" notices do not.
    ok = logger:set_primary_config(level, warning),
    register(example_watchdog, spawn(fun() -> watchdog("start") end)),
    try
        step("start"),
        start(Ebin, Env),
        Run(Rest, dir()),
        step("stop"),
        ok = application:stop(erlang_python),
        io:format("~n~ts: every check passed~n", [Name]),
        halt(0)
    catch
        Class:Reason:Stack ->
            io:format(standard_error, "~n~ts FAILED in step \"~ts\":~n  ~p:~tp~n  at ~p~n",
                      [Name, get(example_step), Class, Reason, lists:sublist(Stack, 3)]),
            halt(1)
    end;
main([], Name, _Env, _Run) ->
    io:format(standard_error, "usage: escript examples/~ts.escript <erlang_python ebin>~n"
              "  e.g. escript examples/~ts.escript _build/py3.12/lib/erlang_python/ebin~n",
              [Name, Name]),
    halt(2).

start(Ebin, Env) ->
    true = filelib:is_dir(Ebin) orelse error({no_such_dir, Ebin}),
    true = code:add_patha(Ebin),
    ok = application:load(erlang_python),
    [ok = application:set_env(erlang_python, K, V) || {K, V} <- Env],
    {ok, _} = application:ensure_all_started(erlang_python),
    %% numpy's BLAS (OpenBLAS) runs each matrix product on a thread per core, and the examples
    %% run products from several executors at once: on a busy 2-core machine, indexing the
    %% corpus took 14 s with OpenBLAS's threads and 0.85 s with one. The executors are the
    %% parallelism here (docs/ai-integration.md#batching). OpenBLAS reads the variable when
    %% numpy is first imported, which is later; os:putenv/2 would not reach Python.
    {ok, _} = py:eval(<<"__import__('os').environ.setdefault('OPENBLAS_NUM_THREADS', '1')">>),
    %% The examples' Python modules (examples/python) go on sys.path (docs/getting-started.md,
    %% "Your own Python modules").
    ok = py:add_python_path(filename:join(dir(), "python")),
    {ok, Version} = py:version(),
    io:format("  Python ~ts, ~b executors~n",
              [hd(binary:split(Version, <<" ">>)), py:num_executors()]).

%% The examples directory, where the running escript is.
dir() ->
    filename:absname(filename:dirname(escript:script_name())).

%% @doc Compiles and loads modules of the examples directory `Dir' (`semantic_search' is
%% `Dir/semantic_search.erl').
-spec load(file:filename(), [module()]) -> ok.
load(Dir, Modules) ->
    lists:foreach(
        fun(Module) ->
            Source = filename:join(Dir, atom_to_list(Module) ++ ".erl"),
            {ok, Module, Beam} = compile:file(Source, [binary, report, debug_info]),
            {module, Module} = code:load_binary(Module, Source, Beam)
        end,
        Modules).

%% @doc Prints a step's title; the watchdog restarts its count.
-spec step(string()) -> ok.
step(Name) ->
    put(example_step, Name),
    example_watchdog ! {step, Name},
    io:format("~n== ~ts ==~n", [Name]).

%% @doc Prints `Label' and `Value', and returns `Value' for a pattern match.
-spec show(string(), Value) -> Value.
show(Label, Value) when length(Label) =< 50 ->
    io:format("  ~-50ts ~0tp~n", [Label, Value]),
    Value;
show(Label, Value) ->
    io:format("  ~ts~n  ~50c ~0tp~n", [Label, $\s, Value]),
    Value.

%% @doc Calls `F' on each element in a process of its own, all at once; results in order. A
%% crash in `F' is re-raised here.
-spec pmap(fun((A) -> B), [A]) -> [B].
pmap(F, List) ->
    Parent = self(),
    Pids = [spawn_link(fun() -> Parent ! {pmap, self(), catch_all(F, X)} end) || X <- List],
    [receive {pmap, Pid, R} -> unwrap(R) end || Pid <- Pids].

catch_all(F, X) ->
    try {ok, F(X)} catch C:R:S -> {raised, C, R, S} end.

unwrap({ok, R}) -> R;
unwrap({raised, C, R, S}) -> erlang:raise(C, R, S).

%% @doc Runs `F', returning its time in seconds and its result.
-spec timed(fun(() -> R)) -> {float(), R}.
timed(F) ->
    {Micros, R} = timer:tc(F),
    {Micros / 1.0e6, R}.

%% @doc The shortest time of `Runs' runs of `F', in seconds: other programs on the machine only
%% ever slow a run down, so the best run is the one to compare.
-spec best_of(pos_integer(), fun(() -> _)) -> float().
best_of(Runs, F) ->
    lists:min([element(1, timed(F)) || _ <- lists:seq(1, Runs)]).

%% @doc `N' things in `Seconds', as a rate for printing.
-spec per_second(non_neg_integer(), float()) -> float().
per_second(N, Seconds) ->
    N / max(Seconds, 1.0e-6).

watchdog(Step) ->
    receive
        {step, Next} -> watchdog(Next)
    after ?STEP_TIMEOUT ->
        io:format(standard_error, "~nexample FAILED: step \"~ts\" made no progress for ~b s~n",
                  [Step, ?STEP_TIMEOUT div 1000]),
        halt(3)
    end.
