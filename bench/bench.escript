#!/usr/bin/env escript
%% -*- erlang -*-
%%
%% Benchmark harness for the `py` Erlang API (erlang_python).
%%
%% It measures only through the public `py` API, so the same run can be pointed at any
%% implementation of that API (this project, or the reference erlang_python 1.6) by code path.
%% One BEAM holds one Python, so every implementation is measured in its own OS process; the
%% `--impl` mode starts one child BEAM per implementation and prints the results side by side.
%%
%%   escript bench/bench.escript <ebin dir> [<more code paths>...] [options]
%%   escript bench/bench.escript --impl NAME=PATH[:PATH...] --impl NAME2=PATH... [options]
%%
%% Emulator flags (scheduler counts and so on) go in ERL_FLAGS, e.g. ERL_FLAGS="+S 4": nothing
%% is hard-coded here. See bench/README.md for what each number means.
-mode(compile).

-define(DEFAULT_CALLERS, [1, 2, 4, 16, 100]).
%% memory runs first: later sections allocate (1 MiB binaries...) memory that the allocators
%% hand back to the OS slowly, which would make its RSS delta look negative.
-define(SECTIONS, [memory, call, subinterp_call, eval, throughput, cpu, fairness, convert,
                   callback, stream, async, state, logging, tracing, readiness]).
%% Sections run only when asked for with `--only': faults kills thousands of callers, restarts
%% the application and runs a long mixed load (`--duration', default 10 minutes).
-define(EXTRA_SECTIONS, [faults]).
-define(CALL_TIMEOUT, 30000).

%% ---------------------------------------------------------------------------------------------
%% Entry point and options
%% ---------------------------------------------------------------------------------------------

main(Args) ->
    Opts = parse_args(Args, default_opts()),
    case maps:get(impls, Opts) of
        [] when map_get(rounds, Opts) > 1 -> usage("--rounds needs --impl");
        [] -> run_single(Opts);
        _ -> run_compare(Opts)
    end.

default_opts() ->
    #{paths => [], app => erlang_python, quick => false, only => all, json => undefined,
      terms => undefined, env => [], impls => [], label => undefined,
      callers => ?DEFAULT_CALLERS, duration_ms => undefined, rounds => 1}.

parse_args([], Opts) ->
    Opts#{paths := lists:reverse(maps:get(paths, Opts)),
          env := lists:reverse(maps:get(env, Opts)),
          impls := lists:reverse(maps:get(impls, Opts))};
parse_args(["--quick" | T], O) -> parse_args(T, O#{quick := true});
parse_args(["--only", Names | T], O) -> parse_args(T, O#{only := string:lexemes(Names, ",")});
parse_args(["--app", App | T], O) -> parse_args(T, O#{app := list_to_atom(App)});
parse_args(["--json", File | T], O) -> parse_args(T, O#{json := File});
parse_args(["--terms", File | T], O) -> parse_args(T, O#{terms := File});
parse_args(["--label", L | T], O) -> parse_args(T, O#{label := L});
parse_args(["--callers", Cs | T], O) ->
    parse_args(T, O#{callers := [pos_int(C, "--callers") || C <- string:lexemes(Cs, ",")]});
parse_args(["--duration", Ms | T], O) ->
    parse_args(T, O#{duration_ms := pos_int(Ms, "--duration")});
parse_args(["--env", KV | T], O = #{env := Env}) ->
    parse_args(T, O#{env := [parse_env(KV) | Env]});
parse_args(["--rounds", N | T], O) -> parse_args(T, O#{rounds := pos_int(N, "--rounds")});
parse_args(["--impl", Spec | T], O = #{impls := Impls}) ->
    case string:split(Spec, "=") of
        [Name, Paths] when Name =/= "", Paths =/= "" ->
            parse_args(T, O#{impls := [{Name, string:lexemes(Paths, ":")} | Impls]});
        _ ->
            usage("--impl wants NAME=PATH[:PATH...], got " ++ Spec)
    end;
parse_args([H | _], _) when H =:= "-h"; H =:= "--help" -> usage(none);
parse_args(["-" ++ _ = Opt | _], _) -> usage("unknown option (or missing value): " ++ Opt);
parse_args([Path | T], O = #{paths := Ps}) -> parse_args(T, O#{paths := [Path | Ps]}).

pos_int(S, What) ->
    try list_to_integer(S) of
        N when N > 0 -> N;
        _ -> usage(What ++ " wants positive integers")
    catch
        error:badarg -> usage(What ++ " wants positive integers, got " ++ S)
    end.

%% `--env num_executors=4` sets an application env key of the app under test before it starts;
%% the value is read as an Erlang term (`--env python_executable='"/x/bin/python"'`).
parse_env(KV) ->
    case string:split(KV, "=") of
        [K, V] when K =/= "" ->
            {ok, Toks, _} = erl_scan:string(V ++ "."),
            case erl_parse:parse_term(Toks) of
                {ok, Term} -> {list_to_atom(K), Term};
                {error, _} -> usage("--env value is not an Erlang term: " ++ V)
            end;
        _ ->
            usage("--env wants KEY=TERM, got " ++ KV)
    end.

usage(Error) ->
    Text =
        "usage: escript bench/bench.escript <ebin dir> [<code path>...] [options]\n"
        "       escript bench/bench.escript --impl NAME=PATH[:PATH...] [--impl ...] [options]\n"
        "options:\n"
        "  --quick                 10x smaller counts (smoke run)\n"
        "  --only NAME,...         run only these: call, subinterp_call, eval, throughput,\n"
        "                          cpu, fairness, convert, convert.<case>, callback, stream,\n"
        "                          async, state, logging,\n"
        "                          tracing, memory\n"
        "  --app APP               application to start (default erlang_python)\n"
        "  --env KEY=TERM          set an env key of APP before it starts (repeatable)\n"
        "  --callers N,...         concurrency levels for throughput and cpu (default 1,2,4,16,100)\n"
        "  --duration MS           time per throughput level (default 3000, quick 300)\n"
        "  --json FILE             write machine-readable results\n"
        "  --label NAME            name of this implementation in the output\n"
        "  --impl NAME=PATHS       measure several implementations, each in its own BEAM,\n"
        "                          and print them side by side (':'-separated code paths)\n"
        "  --rounds N              with --impl: N rounds, the implementations taking turns\n"
        "                          (each goes first as often); medians, ranges, wins\n",
    case Error of
        none ->
            io:put_chars(Text),
            halt(0);
        _ ->
            io:format(standard_error, "bench: ~ts~n~ts", [Error, Text]),
            halt(2)
    end.

die(Fmt, Args) ->
    io:format(standard_error, "bench: " ++ Fmt ++ "~n", Args),
    halt(1).

%% ---------------------------------------------------------------------------------------------
%% One implementation in this BEAM
%% ---------------------------------------------------------------------------------------------

run_single(Opts = #{paths := [], impls := []}) ->
    _ = Opts,
    usage("give the code path (ebin dir) of the implementation to measure");
run_single(Opts = #{paths := Paths, app := App}) ->
    lists:foreach(fun add_path/1, Paths),
    start_app(App, maps:get(env, Opts)),
    Info = collect_info(App, Opts),
    print_info(Info),
    Scale = case maps:get(quick, Opts) of true -> 10; false -> 1 end,
    Ctx = #{scale => Scale, opts => Opts},
    print_header(),
    Results = lists:append([run_section(S, Ctx) || S <- ?SECTIONS ++ ?EXTRA_SECTIONS,
                                                   section_selected(S, Opts)]),
    print_summary(Results),
    write_outputs(Opts, Info, Results),
    Bad = [R || R = #{status := S} <- Results, S =:= error],
    halt(case Bad of [] -> 0; _ -> 1 end).

add_path(P) ->
    case filelib:is_dir(P) of
        true -> true = code:add_patha(filename:absname(P));
        false -> die("code path ~ts does not exist (build the implementation first)", [P])
    end.

start_app(App, Env) ->
    case Env of
        [] ->
            ok;
        _ ->
            case application:load(App) of
                ok -> ok;
                {error, {already_loaded, App}} -> ok;
                {error, LoadErr} -> die("cannot load application ~p: ~p", [App, LoadErr])
            end,
            [ok = application:set_env(App, K, V) || {K, V} <- Env]
    end,
    case application:ensure_all_started(App) of
        {ok, _} -> ok;
        {error, Reason} -> die("cannot start application ~p: ~p", [App, Reason])
    end.

section_selected(Section, #{only := all}) ->
    not lists:member(Section, ?EXTRA_SECTIONS);
section_selected(Section, #{only := Only}) ->
    S = atom_to_list(Section),
    lists:any(fun(N) -> N =:= S orelse lists:prefix(S ++ ".", N) end, Only).

case_selected(_Id, #{only := all}) ->
    true;
case_selected(Id, #{only := Only}) ->
    lists:any(fun(N) -> N =:= Id orelse lists:prefix(N ++ ".", Id) end, Only).

%% Every section returns a list of result maps; a crash in one section is reported as a result
%% and the others still run.
run_section(Section, Ctx) ->
    erlang:garbage_collect(),
    try
        section(Section, Ctx)
    catch
        Class:Reason:Stack ->
            R = #{id => atom_to_binary(Section), label => atom_to_binary(Section),
                  status => error, metrics => #{},
                  error => iolist_to_binary(io_lib:format("~p:~p ~p",
                                                          [Class, Reason, hd(Stack ++ [none])])),
                  target => <<>>},
            print_row(R),
            [R]
    end.

%% ---------------------------------------------------------------------------------------------
%% Sections
%% ---------------------------------------------------------------------------------------------

section(call, #{scale := Scale}) ->
    [latency_case(<<"call">>, <<"py:call(math, sqrt, [2.0])">>,
                  fun() -> py:call(math, sqrt, [2.0]) end, expect({ok, 1.4142135623730951}),
                  100000 div Scale, {p50_us, '=<', 10})];
section(eval, #{scale := Scale}) ->
    [latency_case(<<"eval">>, <<"py:eval(<<\"1+1\">>)">>,
                  fun() -> py:eval(<<"1+1">>) end, expect({ok, 2}),
                  100000 div Scale, {p50_us, '=<', 15})];
section(throughput, #{scale := Scale, opts := Opts}) ->
    F = fun() ->
                case py:call(operator, add, [1, 2]) of
                    {ok, 3} -> ok;
                    Other -> {bad, Other}
                end
        end,
    Duration = case maps:get(duration_ms, Opts) of
                   undefined -> 3000 div Scale;
                   D -> D
               end,
    Callers = maps:get(callers, Opts),
    %% Warm up at the highest concurrency so every executor and caller path is hot.
    _ = throughput(lists:max(Callers), max(100, Duration div 5), F),
    [throughput_case(N, Duration, F) || N <- Callers];
section(cpu, #{scale := Scale, opts := Opts}) ->
    %% Pure-Python CPU work (a few ms a call): calls overlap only where Python runs in
    %% parallel (a free-threaded build), else they take turns on the GIL.
    F = fun() ->
                case py:eval(<<"sum(range(200000))">>) of
                    {ok, 19999900000} -> ok;
                    Other -> {bad, Other}
                end
        end,
    Duration = case maps:get(duration_ms, Opts) of
                   undefined -> 3000 div Scale;
                   D -> D
               end,
    Callers = maps:get(callers, Opts),
    _ = throughput(lists:max(Callers), max(100, Duration div 5), F),
    Gil = [cpu_case(<<"cpu.">>, <<>>, N, Duration, F) || N <- Callers],
    %% The same work on the own-GIL sub-interpreters (docs/parallelism.md), where this build
    %% has them (not the reference, whose parallel/1 does not work).
    case has_subinterp_pool() of
        true ->
            Sub = fun() ->
                          case py:eval(<<"sum(range(200000))">>, #{}, #{pool => subinterp}) of
                              {ok, 19999900000} -> ok;
                              Other -> {bad, Other}
                          end
                  end,
            _ = throughput(lists:max(Callers), max(100, Duration div 5), Sub),
            Gil ++ [cpu_case(<<"cpu.subinterp.">>, <<" #{pool => subinterp}">>, N, Duration, Sub)
                    || N <- Callers];
        false ->
            Gil
    end;
section(subinterp_call, #{scale := Scale}) ->
    %% The per-call cost of the sub-interpreter path (ETF both ways, a thread hop), beside
    %% section `call'.
    case has_subinterp_pool() of
        true ->
            [latency_case(<<"subinterp_call">>,
                          <<"py:call(math, sqrt, [2.0], #{}, #{pool => subinterp})">>,
                          fun() -> py:call(math, sqrt, [2.0], #{}, #{pool => subinterp}) end,
                          expect({ok, 1.4142135623730951}), 100000 div Scale, none)];
        false ->
            []
    end;
section(fairness, #{scale := Scale}) ->
    %% A light call while 4 callers keep CPU-bound calls (3-5 ms each) running: on a GIL build
    %% it waits for an executor and for the GIL; its p99 says how long a light request can be
    %% stuck behind heavy ones. Two kinds of heavy call: one C call that keeps the GIL to its
    %% end, and a loop of bytecode that CPython makes let go every switch interval.
    fairness_cases(<<"fairness.light_p99">>, <<"sum(range(200000))">>, 19999900000,
                   4, 500 div Scale)
    ++ fairness_cases(<<"fairness.light_p99_py">>, <<"sum([i for i in range(100000)])">>,
                      4999950000, 4, 500 div Scale);
section(convert, #{scale := Scale, opts := Opts}) ->
    define_ident(),
    Text = binary:copy(<<"0123456789abcdef">>, 65536),
    Cases = [{<<"convert.list_10k">>, <<"10k-int list">>, lists:seq(1, 10000), 2000, none},
             {<<"convert.map_1k">>, <<"1k-key map binary => float">>, map_1k(), 2000,
              round_trips},
             {<<"convert.bin_1mb">>, <<"1 MiB binary (UTF-8 -> str)">>, Text, 500,
              {p50_us, '=<', 400}},
             {<<"convert.bytes_1mb">>, <<"1 MiB binary (not UTF-8 -> bytes)">>,
              <<255, (rand:bytes(1048575))/binary>>, 500, {p50_us, '=<', 400}},
             {<<"convert.nested">>, <<"depth-10 tree of maps/lists/tuples">>, tree(10), 1000,
              none},
             {<<"convert.doc">>, <<"150-item document of maps/lists">>, doc(150), 2000, none}],
    RoundTrips = [convert_case(Id, Label, Term, N div Scale, Target)
                  || {Id, Label, Term, N, Target} <- Cases,
                     case_selected(binary_to_list(Id), Opts)],
    %% The floor beside each structured row: term_to_binary + binary_to_term of the same term
    %% in the calling process (a copy each way, no Python).
    Floors = [latency_case(<<Id/binary, "_floor">>,
                           <<"floor, ttb+btt: ", Label/binary>>,
                           fun() -> {ok, binary_to_term(term_to_binary(Term))} end,
                           expect({ok, Term}), N div Scale, none)
              || {Id, Label, Term, N, _} <- Cases,
                 lists:member(Id, [<<"convert.list_10k">>, <<"convert.map_1k">>,
                                   <<"convert.nested">>, <<"convert.doc">>]),
                 case_selected(binary_to_list(Id), Opts)],
    %% The two halves of the 1 MiB str round trip, to see where its time goes.
    [ok = py:exec(<<"BENCH_TEXT = '0123456789abcdef' * 65536">>) || _ <- lists:seq(1, 32)],
    OneWay = [{<<"convert.bin_1mb_in">>, <<"one way: 1 MiB binary -> str (len)">>,
               fun() -> py:call(builtins, len, [Text]) end, expect({ok, 1048576})},
              {<<"convert.bin_1mb_out">>, <<"one way: 1 MiB str -> binary (eval)">>,
               fun() -> py:eval(<<"BENCH_TEXT">>) end, expect({ok, Text})}],
    RoundTrips ++ Floors ++ [latency_case(Id, Label, F, Check, 500 div Scale, none)
                   || {Id, Label, F, Check} <- OneWay, case_selected(binary_to_list(Id), Opts)]
        ++ [big_map_case(max(5, 60 div Scale)) || case_selected("convert.map_100k_out", Opts)]
        ++ numpy_cases(Scale, Opts);
section(callback, #{scale := Scale}) ->
    callback_case(20000 div Scale);
section(state, #{scale := Scale}) ->
    %% The shared-state counter from both sides: one py:state_incr from Erlang, and 1000
    %% state_incr calls in a Python loop (each one a callback into Erlang).
    ok = py:exec(<<"import erlang\n"
                   "def bench_state_loop(n):\n"
                   "    for i in range(n):\n"
                   "        erlang.state_incr('bench_counter')\n"
                   "    return n\n">>),
    [latency_case(<<"state.incr_erlang">>, <<"py:state_incr(<<\"bench_counter\">>)">>,
                  fun() -> py:state_incr(<<"bench_counter">>) end,
                  fun(N) -> is_integer(N) end, 100000 div Scale, none),
     latency_case(<<"state.incr_python">>,
                  <<"1000 x erlang.state_incr in Python (p50/1000 = each)">>,
                  fun() -> py:call('__main__', bench_state_loop, [1000]) end,
                  expect({ok, 1000}), max(10, 200 div Scale), none)];
section(stream, #{scale := Scale}) ->
    %% 10,000 items at the target rate of 500,000 items/s take 20 ms.
    Expected = {ok, lists:seq(0, 9999)},
    [latency_case(<<"stream.10k">>, <<"py:stream_eval of a 10k-item generator">>,
                  fun() -> py:stream_eval(<<"(i for i in range(10000))">>) end,
                  expect(Expected), max(10, 300 div Scale), {p50_us, '=<', 20000})];
section(async, #{scale := Scale}) ->
    async_cases(Scale) ++ mailbox_cases(Scale);
section(readiness, #{scale := Scale}) ->
    %% How an fd's readiness reaches code: asyncio's way on ErlangEventLoop (the loop thread
    %% polls its own fds), beside the BEAM's enif_select (OTP's `socket' module), the way the
    %% seed's loop was driven. A loop driven by enif_select pays the BEAM's notification and a
    %% hop from the notified process to the loop thread for each readiness event, so its
    %% round trip is at least socket_udp's plus the mailbox round trip (two hops).
    readiness_cases(max(200, 20000 div Scale));
section(logging, #{scale := Scale}) ->
    logging_cases(max(10, 2000 div Scale));
section(tracing, #{scale := Scale}) ->
    tracing_cases(max(10, 2000 div Scale));
section(memory, #{scale := Scale}) ->
    [memory_case(100000 div Scale, 1000000 div Scale)];
section(faults, #{scale := Scale, opts := Opts}) ->
    Mixed = case maps:get(duration_ms, Opts) of
                undefined -> 600000 div Scale;
                Ms -> Ms
            end,
    [kill_storm_case(10000 div Scale), restart_cycles_case(100 div Scale, 20),
     mixed_load_case(100, Mixed)].

%% --- latency ---------------------------------------------------------------------------------

latency_case(Id, Label, F, Check, N, Target) ->
    {_, WarmErrs, _} = timed_loop(max(1, N div 10), F, Check),
    {Lats, Errs, FirstErr} = timed_loop(N, F, Check),
    Metrics = lat_metrics(Lats),
    finish(#{id => Id, label => Label, metrics => Metrics#{calls => N},
             errors => Errs + WarmErrs, first_error => FirstErr}, Target).

%% Runs F N times sequentially, timing each call with the monotonic clock. The reply is checked
%% outside the timed region (comparing a 1 MiB reply takes tens of microseconds).
%% Returns {LatenciesNs, ErrorCount, FirstBadReply}.
timed_loop(N, F, Check) ->
    erlang:garbage_collect(),
    timed_loop(N, F, Check, [], 0, none).

timed_loop(0, _F, _Check, Acc, Errs, First) ->
    {Acc, Errs, First};
timed_loop(N, F, Check, Acc, Errs, First) ->
    T0 = erlang:monotonic_time(nanosecond),
    R = F(),
    T1 = erlang:monotonic_time(nanosecond),
    case Check(R) of
        true -> timed_loop(N - 1, F, Check, [T1 - T0 | Acc], Errs, First);
        false -> timed_loop(N - 1, F, Check, [T1 - T0 | Acc], Errs + 1, first(First, R))
    end.

%% A check that the reply is exactly Expected.
expect(Expected) ->
    fun(Reply) -> Reply =:= Expected end.

first(none, Reply) -> Reply;
first(First, _) -> First.

lat_metrics([]) ->
    #{};
lat_metrics(LatsNs) ->
    Sorted = list_to_tuple(lists:sort(LatsNs)),
    N = tuple_size(Sorted),
    Us = fun(Ns) -> Ns / 1000 end,
    #{p50_us => Us(pct(Sorted, 50)), p90_us => Us(pct(Sorted, 90)),
      p99_us => Us(pct(Sorted, 99)), p999_us => Us(pct(Sorted, 99.9)),
      min_us => Us(element(1, Sorted)), max_us => Us(element(N, Sorted)),
      mean_us => Us(lists:sum(LatsNs) / N)}.

%% Nearest-rank percentile of a sorted tuple.
pct(Sorted, P) ->
    N = tuple_size(Sorted),
    element(min(N, max(1, ceil(P * N / 100))), Sorted).

%% --- throughput ------------------------------------------------------------------------------

throughput_case(NCallers, DurationMs, F) ->
    #{ok := Ok, errors := Errs, first_error := FirstErr, elapsed_ns := Elapsed, lats := Lats} =
        throughput(NCallers, DurationMs, F),
    Rate = Ok / (Elapsed / 1.0e9),
    Metrics = maps:with([p50_us, p99_us], lat_metrics(Lats)),
    Target = case NCallers of
                 4 -> {calls_per_s, '>=', 100000};
                 _ -> none
             end,
    Id = iolist_to_binary(["throughput.", integer_to_list(NCallers)]),
    Label = iolist_to_binary(io_lib:format("~b caller~s, py:call(operator, add, [1, 2])",
                                           [NCallers, plural(NCallers)])),
    finish(#{id => Id, label => Label,
             metrics => Metrics#{calls_per_s => Rate, calls => Ok, callers => NCallers,
                                 seconds => Elapsed / 1.0e9},
             errors => Errs, first_error => FirstErr}, Target).

%% True when this implementation has a pool of own-GIL sub-interpreters on this build.
has_subinterp_pool() ->
    code:which(py_subinterp) =/= non_existing andalso py:subinterp_supported().

cpu_case(Prefix, Opts, NCallers, DurationMs, F) ->
    #{ok := Ok, errors := Errs, first_error := FirstErr, elapsed_ns := Elapsed, lats := Lats} =
        throughput(NCallers, DurationMs, F),
    Metrics = maps:with([p50_us, p99_us], lat_metrics(Lats)),
    Id = iolist_to_binary([Prefix, integer_to_list(NCallers)]),
    Label = iolist_to_binary(io_lib:format("~b caller~s, py:eval(<<\"sum(range(200000))\">>~s)",
                                           [NCallers, plural(NCallers), Opts])),
    finish(#{id => Id, label => Label,
             metrics => Metrics#{calls_per_s => Ok / (Elapsed / 1.0e9), calls => Ok,
                                 callers => NCallers, seconds => Elapsed / 1.0e9},
             errors => Errs, first_error => FirstErr}, none).

fairness_cases(Id, Code, Expected, NBusy, N) ->
    Busy = fun() ->
                   case py:eval(Code) of
                       {ok, Expected} -> ok;
                       Other -> {bad, Other}
                   end
           end,
    {ok, Interval} = py:eval(<<"__import__('sys').getswitchinterval()">>),
    Parent = self(),
    Stop = make_ref(),
    Workers = [spawn_monitor(fun() -> busy_loop(Busy, Parent, Stop, 0) end)
               || _ <- lists:seq(1, NBusy)],
    %% Let every busy caller get going before measuring.
    [receive {busy_started, Pid} -> ok after ?CALL_TIMEOUT -> ok end || {Pid, _} <- Workers],
    Light = fun() -> py:call(math, sqrt, [2.0]) end,
    T0 = erlang:monotonic_time(nanosecond),
    {Lats, Errs, FirstErr} = paced_loop(N, Light, expect({ok, 1.4142135623730951})),
    [Pid ! Stop || {Pid, _} <- Workers],
    Done = [receive
                {busy_done, Pid, Count} -> erlang:demonitor(MRef, [flush]), Count;
                {'DOWN', MRef, process, Pid, _} -> 0
            end
            || {Pid, MRef} <- Workers],
    Seconds = (erlang:monotonic_time(nanosecond) - T0) / 1.0e9,
    Metrics = maps:with([p50_us, p90_us, p99_us, max_us], lat_metrics(Lats)),
    Label = iolist_to_binary(io_lib:format("py:call(math, sqrt, [2.0]) while ~b callers run "
                                           "~ts", [NBusy, Code])),
    [finish(#{id => Id, label => Label,
              metrics => Metrics#{calls => N, busy_calls => lists:sum(Done),
                                  %% The busy callers' rate: fairness must not cost them.
                                  busy_calls_per_s => lists:sum(Done) / Seconds,
                                  switch_interval_us => Interval * 1.0e6},
              errors => Errs, first_error => FirstErr}, none)].

%% A busy caller: F in a loop until told to stop; says when its first call is done.
busy_loop(F, Parent, Stop, Count) ->
    _ = F(),
    Count =:= 0 andalso (Parent ! {busy_started, self()}),
    receive
        Stop -> Parent ! {busy_done, self(), Count + 1}
    after 0 -> busy_loop(F, Parent, Stop, Count + 1)
    end.

%% As timed_loop/3, with a pause of 1-3 ms before each call, so the calls land at every point
%% of the busy calls' runs rather than right after the previous light call.
paced_loop(N, F, Check) ->
    paced_loop(N, F, Check, [], 0, none).

paced_loop(0, _F, _Check, Acc, Errs, First) ->
    {Acc, Errs, First};
paced_loop(N, F, Check, Acc, Errs, First) ->
    timer:sleep(rand:uniform(3)),
    T0 = erlang:monotonic_time(nanosecond),
    R = F(),
    T1 = erlang:monotonic_time(nanosecond),
    case Check(R) of
        true -> paced_loop(N - 1, F, Check, [T1 - T0 | Acc], Errs, First);
        false -> paced_loop(N - 1, F, Check, [T1 - T0 | Acc], Errs + 1, first(First, R))
    end.

plural(1) -> "";
plural(_) -> "s".

%% NCallers processes call F in a loop until a common deadline; the rate is the number of good
%% replies over the time from the start signal until the last caller is done.
throughput(NCallers, DurationMs, F) ->
    Parent = self(),
    Workers = [spawn_monitor(fun() ->
                                     receive {go, Deadline} -> ok end,
                                     Parent ! {tp_done, self(), tp_loop(F, Deadline)}
                             end)
               || _ <- lists:seq(1, NCallers)],
    T0 = erlang:monotonic_time(nanosecond),
    Deadline = T0 + DurationMs * 1000000,
    [Pid ! {go, Deadline} || {Pid, _} <- Workers],
    Results = [receive
                   {tp_done, Pid, Res} ->
                       erlang:demonitor(MRef, [flush]),
                       Res;
                   {'DOWN', MRef, process, Pid, Why} ->
                       {0, 1, {caller_crashed, Why}, []}
               end
               || {Pid, MRef} <- Workers],
    T1 = erlang:monotonic_time(nanosecond),
    lists:foldl(fun({Ok, Errs, First, Lats}, Acc = #{ok := O, errors := E, first_error := FE,
                                                     lats := L}) ->
                        Acc#{ok := O + Ok, errors := E + Errs, first_error := first(FE, First),
                             lats := Lats ++ L}
                end,
                #{ok => 0, errors => 0, first_error => none, lats => [], elapsed_ns => T1 - T0},
                Results).

tp_loop(F, Deadline) ->
    tp_loop(F, Deadline, 0, 0, none, []).

tp_loop(F, Deadline, Ok, Errs, First, Lats) ->
    T0 = erlang:monotonic_time(nanosecond),
    case T0 >= Deadline of
        true ->
            {Ok, Errs, First, Lats};
        false ->
            R = F(),
            T1 = erlang:monotonic_time(nanosecond),
            case R of
                ok -> tp_loop(F, Deadline, Ok + 1, Errs, First, [T1 - T0 | Lats]);
                {bad, Reply} -> tp_loop(F, Deadline, Ok, Errs + 1, first(First, Reply), Lats)
            end
    end.

%% --- conversion round trips ------------------------------------------------------------------

%% The identity function lives in the `__main__` namespace. Implementations whose workers keep
%% separate namespaces (erlang_python 1.6 gives each pool worker its own globals and picks
%% workers round-robin) need it defined on every worker, so define it a few times over.
define_ident() ->
    [ok = py:exec(<<"def ident(x): return x">>) || _ <- lists:seq(1, 32)],
    [{ok, 1} = py:call('__main__', ident, [1]) || _ <- lists:seq(1, 32)],
    ok.

map_1k() ->
    maps:from_list([{<<"key_", (integer_to_binary(I))/binary>>, I + 0.25}
                    || I <- lists:seq(1, 1000)]).

%% A JSON-like document: a map holding a small map and a list of N items, each a map of six
%% keys (an int, a string, a float, a bool, a list of two strings, a map of two ints). With
%% N = 150 (9.8k words, 20 KB of external term format) its term_to_binary round trip costs
%% 0.6-0.7 times the 10k-int list's: the ratio of the two floors the issue quotes (67 and
%% 117 us) for its "nested map/list document", which the depth-10 tree is not (its floor is
%% about 2.5 times the list's).
doc(N) ->
    #{<<"meta">> => #{<<"version">> => 3, <<"source">> => <<"bench">>,
                      <<"tags">> => [<<"a">>, <<"b">>, <<"c">>]},
      <<"items">> => [#{<<"id">> => I, <<"name">> => <<"item-", (integer_to_binary(I))/binary>>,
                        <<"price">> => I * 1.25, <<"active">> => I rem 2 =:= 0,
                        <<"tags">> => [<<"x">>, <<"y">>],
                        <<"dims">> => #{<<"w">> => I, <<"h">> => I * 2}}
                      || I <- lists:seq(1, N)]}.

%% A complete binary tree of depth 10 whose levels alternate map / list / tuple; leaves are
%% small maps of an int, a float, a string and a bool.
tree(0) ->
    #{<<"i">> => 42, <<"f">> => 1.5, <<"s">> => <<"leaf">>, <<"b">> => true};
tree(D) ->
    case D rem 3 of
        0 -> #{<<"left">> => tree(D - 1), <<"right">> => tree(D - 1)};
        1 -> [tree(D - 1), tree(D - 1)];
        2 -> {tree(D - 1), tree(D - 1)}
    end.

convert_case(Id, Label, Term, N, Target) ->
    F = fun() -> py:call('__main__', ident, [Term]) end,
    Check = expect({ok, Term}),
    {_, WarmErrs, _} = timed_loop(max(1, N div 10), F, Check),
    {Lats, Errs, FirstErr} = timed_loop(N, F, Check),
    Metrics = lat_metrics(Lats),
    Bytes = byte_size(term_to_binary(Term)),
    finish(#{id => Id, label => <<"round trip ", Label/binary>>,
             metrics => (maps:with([p50_us, p99_us, mean_us], Metrics))#{
                           calls => N, round_trips => Errs + WarmErrs =:= 0,
                           external_term_bytes => Bytes,
                           heap_words => erts_debug:flat_size(Term)},
             errors => Errs + WarmErrs, first_error => abbreviate(FirstErr)}, Target).

%% A 100k-key dict returned to Erlang: its latency, and how long the caller ran on a normal
%% scheduler without a break (what a big reply costs the other processes of that scheduler).
%% Each call runs in a process of its own, which does nothing else, watched with
%% erlang:system_monitor(long_schedule) (1 ms resolution: 0 means under 1 ms).
big_map_case(N) ->
    [ok = py:exec(<<"BENCH_MAP_100K = {f'k{i}': i for i in range(100000)}">>)
     || _ <- lists:seq(1, 32)],
    Call = fun() -> py:eval(<<"BENCH_MAP_100K">>) end,
    Check = fun({ok, M}) -> is_map(M) andalso map_size(M) =:= 100000; (_) -> false end,
    _ = [stretch_call(Call, Check) || _ <- lists:seq(1, max(1, N div 10))],
    Runs = [stretch_call(Call, Check) || _ <- lists:seq(1, N)],
    Lats = [Ns || {Ns, _, _} <- Runs],
    Stretches = [Ms || {_, Ms, _} <- Runs],
    Errs = length([bad || {_, _, false} <- Runs]),
    finish(#{id => <<"convert.map_100k_out">>,
             label => <<"100k-key dict -> map (eval reply)">>,
             metrics => (maps:with([p50_us, p99_us, mean_us], lat_metrics(Lats)))#{
                           calls => N, max_stretch_ms => lists:max(Stretches),
                           p50_stretch_ms => lists:nth((N + 1) div 2, lists:sort(Stretches)),
                           stretched_calls => length([S || S <- Stretches, S > 0])},
             errors => Errs, first_error => none}, none).

%% {LatencyNs, LongestStretchMs, ReplyOk} of one call of F in a new process.
stretch_call(F, Check) ->
    Self = self(),
    erlang:system_monitor(Self, [{long_schedule, 1}]),
    {Pid, MRef} = spawn_monitor(fun() ->
                                        T0 = erlang:monotonic_time(nanosecond),
                                        R = F(),
                                        T1 = erlang:monotonic_time(nanosecond),
                                        Self ! {stretch_call, self(), T1 - T0, Check(R)}
                                end),
    {Ns, Ok} = receive {stretch_call, Pid, T, C} -> {T, C} end,
    receive {'DOWN', MRef, process, Pid, _} -> ok end,
    %% The report of the process's last stretch is sent when it is scheduled out, which may
    %% come after its 'DOWN'.
    timer:sleep(5),
    erlang:system_monitor(undefined),
    {Ns, longest_schedule(Pid, 0), Ok}.

longest_schedule(Pid, Max) ->
    receive
        {monitor, Pid, long_schedule, Info} ->
            longest_schedule(Pid, max(Max, proplists:get_value(timeout, Info, 0)))
    after 0 ->
        Max
    end.

%% numpy arrays to Erlang lists and back, the array form `{py_array, Dtype, Shape, Data}' both
%% ways (only where the implementation has it), and the floors beside them: copying the 8 MB of
%% a 1M float64 binary, and term_to_binary/binary_to_term of the 1M-float list.
numpy_cases(Scale, Opts) ->
    N = max(3, 30 div Scale),
    Setup = <<"import numpy as np\n"
              "BENCH_F64 = np.arange(1000000, dtype=np.float64)\n"
              "BENCH_2D = np.ones((1000, 1000))\n"
              "BENCH_I64 = np.arange(1000000, dtype=np.int64)\n"
              "BENCH_SLICE = BENCH_F64[::2]\n">>,
    case catch py:exec(Setup) of
        ok ->
            [ok = py:exec(Setup) || _ <- lists:seq(1, 31)],
            Floats = [float(X) || X <- lists:seq(0, 999999)],
            Bin = << <<X:64/float-native>> || X <- Floats >>,
            Len = fun(L) -> fun({ok, V}) -> length(V) =:= L; (_) -> false end end,
            Lists = [
                {<<"convert.np_f64_out">>, <<"1M float64 array -> list">>,
                 fun() -> py:eval(<<"BENCH_F64">>) end, Len(1000000)},
                {<<"convert.np_2d_out">>, <<"1000x1000 float64 array -> lists">>,
                 fun() -> py:eval(<<"BENCH_2D">>) end, Len(1000)},
                {<<"convert.np_i64_out">>, <<"1M int64 array -> list">>,
                 fun() -> py:eval(<<"BENCH_I64">>) end, Len(1000000)},
                {<<"convert.np_slice_out">>, <<"500k strided slice a[::2] -> list">>,
                 fun() -> py:eval(<<"BENCH_SLICE">>) end, Len(500000)},
                {<<"convert.np_list_in">>, <<"1M-float list -> numpy.sum">>,
                 fun() -> py:call(numpy, sum, [Floats]) end, expect({ok, 499999500000.0})}
            ],
            Floors = [
                {<<"convert.floor_memcpy">>, <<"floor: copy an 8 MB binary (binary:copy)">>,
                 fun() -> {ok, binary:copy(Bin)} end, fun({ok, _}) -> true end},
                {<<"convert.floor_ttb">>,
                 <<"floor: 1M-float list term_to_binary + binary_to_term">>,
                 fun() -> {ok, binary_to_term(term_to_binary(Floats))} end,
                 fun({ok, _}) -> true end}
            ],
            Rows = [latency_case(Id, Label, F, Check, N, none)
                    || {Id, Label, F, Check} <- Lists ++ Floors,
                       case_selected(binary_to_list(Id), Opts)],
            Rows ++ array_form_cases(N, Bin, Opts);
        Other ->
            [skipped(<<"convert.numpy">>, <<"numpy arrays">>, Other)]
    end.

array_form_cases(N, Bin, Opts) ->
    Id = <<"convert.array_form">>,
    case catch py:eval(<<"erlang.py_array(BENCH_F64[:1])">>, #{}) of
        {ok, {py_array, float64, [1], _}} ->
            Cases = [
                {<<"convert.array_form_out">>,
                 <<"1M float64 array -> {py_array, ...} (erlang.py_array)">>,
                 fun() -> py:eval(<<"erlang.py_array(BENCH_F64)">>) end,
                 fun({ok, {py_array, float64, [1000000], B}}) -> byte_size(B) =:= 8000000;
                    (_) -> false end},
                {<<"convert.array_form_in">>,
                 <<"{py_array, float64, [1000000], Bin} -> numpy array (len)">>,
                 fun() -> py:call(builtins, len, [{py_array, float64, [1000000], Bin}]) end,
                 expect({ok, 1000000})}
            ],
            [latency_case(CaseId, Label, F, Check, N, none)
             || {CaseId, Label, F, Check} <- Cases, case_selected(binary_to_list(CaseId), Opts)];
        Other ->
            [skipped(Id, <<"the array form {py_array, ...}">>, Other)]
    end.

%% A mismatching 1 MiB reply would flood the table and the JSON.
abbreviate(none) -> none;
abbreviate(Term) ->
    case erts_debug:flat_size(Term) > 200 of
        true -> {too_large_to_print, erts_debug:flat_size(Term), element_hint(Term)};
        false -> Term
    end.

element_hint(T) when is_tuple(T), tuple_size(T) > 0 -> element(1, T);
element_hint(T) when is_map(T) -> map_size(T);
element_hint(T) when is_list(T) -> length(T);
element_hint(T) when is_binary(T) -> byte_size(T);
element_hint(T) -> T.

%% --- Python -> Erlang callback round trip (optional feature) -----------------------------------

%% --- asyncio ---------------------------------------------------------------------------------
%%
%% py:async_call of a coroutine (the executor hands it to the event loop, which replies), 500
%% coroutines sleeping 50 ms gathered (all should wait at once: p50 a little over 50 ms), and
%% erlang.async_call from a coroutine: 1000 awaited one after the other per measured call (p50
%% in us = ns per call) and 1000 gathered at once.
async_cases(Scale) ->
    Probe =
        try
            ok = py:register_function(bench_async_echo, fun([X]) -> X end),
            ok = py:exec(<<"import asyncio\n"
                           "import erlang\n"
                           "async def bench_async_ident(x):\n"
                           "    return x\n"
                           "async def bench_async_sleep(x, d):\n"
                           "    await asyncio.sleep(d)\n"
                           "    return x\n"
                           "async def bench_erlang_seq(n):\n"
                           "    for i in range(n):\n"
                           "        await erlang.async_call('bench_async_echo', i)\n"
                           "    return n\n"
                           "async def bench_erlang_gather(n):\n"
                           "    r = await asyncio.gather(*(erlang.async_call('bench_async_echo', i)\n"
                           "                               for i in range(n)))\n"
                           "    return len(r)\n">>),
            py:async_await(py:async_call('__main__', bench_async_ident, [7]), 5000)
        catch
            Class:Reason -> {Class, Reason}
        end,
    case Probe of
        {ok, 7} ->
            N = max(100, 20000 div Scale),
            Gathered = 500,
            GatherCalls = [{'__main__', bench_async_sleep, [I, 0.05]} || I <- lists:seq(1, Gathered)],
            [latency_case(<<"async.call">>, <<"py:async_call + async_await of an async def">>,
                          fun() ->
                              py:async_await(py:async_call('__main__', bench_async_ident, [7]))
                          end,
                          expect({ok, 7}), N, none),
             latency_case(<<"async.gather_500x50ms">>,
                          <<"py:async_gather of 500 coroutines sleeping 50 ms">>,
                          fun() -> py:async_gather(GatherCalls) end,
                          expect({ok, lists:seq(1, Gathered)}), max(5, 50 div Scale), none),
             latency_case(<<"async.erlang_seq">>,
                          <<"1000 awaited erlang.async_call (p50/1000 = each)">>,
                          fun() -> py:async_await(py:async_call('__main__', bench_erlang_seq, [1000])) end,
                          expect({ok, 1000}), max(5, 100 div Scale), none),
             latency_case(<<"async.erlang_gather">>,
                          <<"1000 erlang.async_call gathered (p50/1000 = each)">>,
                          fun() ->
                              py:async_await(py:async_call('__main__', bench_erlang_gather, [1000]))
                          end,
                          expect({ok, 1000}), max(5, 100 div Scale), none)];
        Other ->
            [skipped(<<"async">>, <<"py:async_call and erlang.async_call">>, Other)]
    end.

%% UDP ping-pong round trips on loopback: both ends on one ErlangEventLoop (epoll in the loop
%% thread), then both ends Erlang processes using OTP's `socket' module (enif_select), then
%% the lower bound of a loop driven by enif_select (see section(readiness, _)).
readiness_cases(N) ->
    Loop =
        try
            ok = py:exec(<<"import asyncio, time, erlang\n"
                           "class _BenchEcho(asyncio.DatagramProtocol):\n"
                           "    def connection_made(self, transport):\n"
                           "        self.transport = transport\n"
                           "    def datagram_received(self, data, addr):\n"
                           "        self.transport.sendto(data, addr)\n"
                           "class _BenchPing(asyncio.DatagramProtocol):\n"
                           "    waiter = None\n"
                           "    def datagram_received(self, data, addr):\n"
                           "        self.waiter.set_result(data)\n"
                           "async def _bench_udp(n):\n"
                           "    loop = asyncio.get_running_loop()\n"
                           "    echo, _ = await loop.create_datagram_endpoint(\n"
                           "        _BenchEcho, local_addr=('127.0.0.1', 0))\n"
                           "    ping = _BenchPing()\n"
                           "    out, _ = await loop.create_datagram_endpoint(\n"
                           "        lambda: ping, remote_addr=echo.get_extra_info('sockname'))\n"
                           "    lats = []\n"
                           "    for _ in range(n):\n"
                           "        ping.waiter = loop.create_future()\n"
                           "        t0 = time.perf_counter_ns()\n"
                           "        out.sendto(b'x')\n"
                           "        await ping.waiter\n"
                           "        lats.append(time.perf_counter_ns() - t0)\n"
                           "    out.close()\n"
                           "    echo.close()\n"
                           "    return type(loop).__name__, lats[n // 10:]\n"
                           "def bench_udp_rtts(n):\n"
                           "    return erlang.run(_bench_udp(n))\n">>),
            {ok, {<<"ErlangEventLoop">>, Lats}} =
                py:call('__main__', bench_udp_rtts, [N + N div 9], #{}, ?CALL_TIMEOUT),
            {ok, Lats}
        catch
            Class:Reason -> {Class, Reason}
        end,
    LoopRow = case Loop of
                  {ok, LoopLats} ->
                      finish(#{id => <<"readiness.loop_udp">>,
                               label => <<"UDP round trip, both ends on one ErlangEventLoop "
                                          "(epoll in the loop thread)">>,
                               metrics => (lat_metrics(LoopLats))#{calls => length(LoopLats)},
                               errors => 0, first_error => none}, none);
                  Other -> skipped(<<"readiness.loop_udp">>, <<"ErlangEventLoop UDP">>, Other)
              end,
    SocketRow = socket_udp_case(N),
    Hop = [R || R = #{id := <<"async.mailbox">>} <- mailbox_cases(10)],
    Bound = case {SocketRow, Hop} of
                {#{metrics := #{p50_us := P50, p99_us := P99}},
                 [#{metrics := #{p50_us := HopP50, p99_us := HopP99}}]} ->
                    [finish(#{id => <<"readiness.select_bound">>,
                              label => <<"enif_select-driven loop, UDP round trip at least: "
                                         "socket_udp + async.mailbox">>,
                              metrics => #{p50_us => P50 + HopP50, p99_us => P99 + HopP99},
                              errors => 0, first_error => none}, none)];
                _ ->
                    []
            end,
    [LoopRow, SocketRow | Bound].

%% Two Erlang processes ping-pong a datagram with OTP's `socket' module, whose waits are
%% enif_select's.
socket_udp_case(N) ->
    Open = fun() ->
                   {ok, S} = socket:open(inet, dgram, udp),
                   ok = socket:bind(S, #{family => inet, addr => loopback, port => 0}),
                   {ok, Addr} = socket:sockname(S),
                   {S, Addr}
           end,
    try
        {Echo, EchoAddr} = Open(),
        {Ping, _} = Open(),
        Echoer = spawn_link(fun() -> socket_echo(Echo) end),
        ok = socket:setopt(Echo, otp, controlling_process, Echoer),
        Round = fun() ->
                        ok = socket:sendto(Ping, <<"x">>, EchoAddr),
                        {ok, {_, <<"x">>}} = socket:recvfrom(Ping, 0, 5000),
                        ok
                end,
        Row = latency_case(<<"readiness.socket_udp">>,
                           <<"UDP round trip, both ends Erlang processes on OTP socket "
                             "(enif_select)">>,
                           Round, expect(ok), N, none),
        unlink(Echoer),
        exit(Echoer, kill),
        socket:close(Ping),
        socket:close(Echo),
        Row
    catch
        Class:Reason ->
            skipped(<<"readiness.socket_udp">>, <<"OTP socket UDP">>, {Class, Reason})
    end.

socket_echo(S) ->
    case socket:recvfrom(S, 0, infinity) of
        {ok, {From, Data}} ->
            ok = socket:sendto(S, Data, From),
            socket_echo(S);
        {error, _} ->
            ok
    end.

%% Erlang `Pid ! N' to a coroutine awaiting its mailbox (erlang.open_mailbox()), which sends N
%% back with erlang.send: the round trip (an upper bound of the one-way latency). Skipped
%% where the implementation has no mailboxes.
mailbox_cases(Scale) ->
    Self = self(),
    Probe =
        try
            ok = py:exec(<<"import erlang\n"
                           "async def bench_mailbox_echo(owner):\n"
                           "    async with await erlang.open_mailbox() as mailbox:\n"
                           "        erlang.send(owner, ('bench_mailbox', mailbox.pid))\n"
                           "        async for message in mailbox:\n"
                           "            if message == 'stop':\n"
                           "                return 0\n"
                           "            erlang.send(owner, message)\n">>),
            Ref0 = py:async_call('__main__', bench_mailbox_echo, [Self]),
            receive
                {<<"bench_mailbox">>, Pid0} -> {ok, Ref0, Pid0}
            after 5000 -> {no_mailbox, py:async_await(Ref0, 1000)}
            end
        catch
            Class:Reason -> {Class, Reason}
        end,
    case Probe of
        {ok, Ref, Pid} ->
            Case = latency_case(<<"async.mailbox">>,
                                <<"Pid ! N -> mailbox.receive() -> erlang.send back">>,
                                fun() -> Pid ! 7, receive 7 -> ok after 5000 -> timeout end end,
                                expect(ok), max(100, 20000 div Scale), none),
            Pid ! stop,
            {ok, 0} = py:async_await(Ref, 5000),
            [Case];
        Other ->
            [skipped(<<"async.mailbox">>, <<"erlang.open_mailbox">>, Other)]
    end.

callback_case(N) ->
    Id = <<"callback">>,
    Label = <<"py:call -> erlang.call('bench_echo', x) -> fun">>,
    Probe =
        try
            ok = py:register_function(bench_echo, fun([X]) -> X end),
            [ok = py:exec(<<"import erlang\n"
                            "def bench_cb(x):\n"
                            "    return erlang.call('bench_echo', x)\n"
                            "def bench_cb_loop(n):\n"
                            "    f = erlang.bench_echo\n"
                            "    for i in range(n):\n"
                            "        f(i)\n"
                            "    return n\n">>)
             || _ <- lists:seq(1, 32)],
            py:call('__main__', bench_cb, [7], #{}, 5000)
        catch
            Class:Reason -> {Class, Reason}
        end,
    case Probe of
        {ok, 7} ->
            [latency_case(Id, Label, fun() -> py:call('__main__', bench_cb, [7]) end,
                          expect({ok, 7}), N, none),
             latency_case(<<"callback.eval">>, <<"py:eval of code making one callback">>,
                          fun() -> py:eval(<<"erlang.bench_echo(7)">>) end,
                          expect({ok, 7}), N, {p50_us, '=<', 30}),
             %% 1000 callbacks per measured call: the p50 in us is the per-callback cost in ns.
             latency_case(<<"callback.loop">>,
                          <<"1000 callbacks in a Python loop (p50/1000 = per callback)">>,
                          fun() -> py:call('__main__', bench_cb_loop, [1000]) end,
                          expect({ok, 1000}), max(10, N div 100), {p50_us, '=<', 10000})];
        Other ->
            [skipped(Id, Label, Other)]
    end.

%% The row of a case the implementation cannot run (its probe returned `Other').
skipped(Id, Label, Other) ->
    R = #{id => Id, label => Label, status => skipped, metrics => #{}, target => <<>>,
          error => iolist_to_binary(io_lib:format("not available: ~0p", [Other]))},
    print_row(R),
    R.

%% --- Python logging ----------------------------------------------------------------------------

%% Each measured call logs 1000 records from a Python loop, so p50 in us is the per-record cost
%% in ns. `plain` is Python logging with no handler (the baseline), `filtered` a record below
%% the level given to configure_logging, `forwarded` a record that goes to OTP logger (whose
%% primary level then drops it, as `notice` does for `info`). `native_filtered` (where the
%% implementation has `erlang._native._log_threshold`) is a handler-enabled logger whose
%% records the native threshold drops, and `log_call_filtered` one direct `_log` call below it.
logging_cases(N) ->
    Code = <<"import logging, erlang\n"
             "def bench_log(name, n):\n"
             "    log = logging.getLogger(name)\n"
             "    for i in range(n):\n"
             "        log.info('record %d', i)\n"
             "    return n\n"
             "def bench_log_plain(n):\n"
             "    log = logging.getLogger('bench.plain')\n"
             "    log.propagate = False\n"
             "    log.setLevel(logging.DEBUG)\n"
             "    return bench_log('bench.plain', n)\n"
             "def bench_native_setup():\n"
             "    from erlang import _native\n"
             "    if not hasattr(_native, '_log_threshold'):\n"
             "        return False\n"
             "    logging.getLogger('bench.native').setLevel(logging.DEBUG)\n"
             "    return True\n"
             "def bench_log_call(n):\n"
             "    from erlang._native import _log\n"
             "    meta = {}\n"
             "    for i in range(n):\n"
             "        _log(20, 'bench', 'record', meta)\n"
             "    return n\n">>,
    [ok = py:exec(Code) || _ <- lists:seq(1, 32)],
    Loop = fun(F, Args) -> fun() -> py:call('__main__', F, Args) end end,
    Case = fun(Id, Label, F, Args) ->
                   latency_case(Id, Label, Loop(F, Args), expect({ok, 1000}), N, none)
           end,
    Plain = Case(<<"logging.plain">>, <<"1000 x logger.info, no handler (baseline)">>,
                 bench_log_plain, [1000]),
    ok = py:configure_logging(#{level => warning}),
    Filtered = Case(<<"logging.filtered">>,
                    <<"1000 x logger.info below configure_logging's level">>,
                    bench_log, [<<"bench.filtered">>, 1000]),
    Native = case py:call('__main__', bench_native_setup, []) of
                 {ok, true} ->
                     [Case(<<"logging.native_filtered">>,
                           <<"1000 x logger.info, handler reached, native threshold drops">>,
                           bench_log, [<<"bench.native">>, 1000]),
                      Case(<<"logging.log_call_filtered">>,
                           <<"1000 x erlang._native._log below the threshold">>,
                           bench_log_call, [1000])];
                 _ ->
                     []
             end,
    ok = py:configure_logging(#{level => debug}),
    Forwarded = Case(<<"logging.forwarded">>, <<"1000 x logger.info forwarded to logger">>,
                     bench_log, [<<"bench.forwarded">>, 1000]),
    [Plain, Filtered | Native] ++ [Forwarded].

%% 1000 spans per measured call, in the same run as 1000 records of plain Python logging with no
%% handler: with tracing off, on (each span sent to py_tracer), and on with two attributes and
%% one event per span. py_tracer's store is emptied between cases.
tracing_cases(N) ->
    Code = <<"import logging, erlang\n"
             "def bench_trace_log_plain(n):\n"
             "    log = logging.getLogger('bench.trace.plain')\n"
             "    log.propagate = False\n"
             "    log.setLevel(logging.DEBUG)\n"
             "    for i in range(n):\n"
             "        log.info('record %d', i)\n"
             "    return n\n"
             "def bench_span(n):\n"
             "    Span = erlang.Span\n"
             "    for i in range(n):\n"
             "        with Span('bench'):\n"
             "            pass\n"
             "    return n\n"
             "def bench_span_event(n):\n"
             "    Span = erlang.Span\n"
             "    for i in range(n):\n"
             "        with Span('bench', user='bob', n=i) as span:\n"
             "            span.event('step', k=1)\n"
             "    return n\n">>,
    [ok = py:exec(Code) || _ <- lists:seq(1, 32)],
    Loop = fun(F) -> fun() -> py:call('__main__', F, [1000]) end end,
    Case = fun(Id, Label, F) ->
                   Result = latency_case(Id, Label, Loop(F), expect({ok, 1000}), N, none),
                   _ = py:clear_traces(),
                   Result
           end,
    _ = py:disable_tracing(),
    Plain = Case(<<"tracing.plain_logging">>, <<"1000 x logger.info, no handler (baseline)">>,
                 bench_trace_log_plain),
    Off = Case(<<"tracing.off">>, <<"1000 x with erlang.Span, tracing off">>, bench_span),
    ok = py:enable_tracing(),
    On = Case(<<"tracing.on">>, <<"1000 x with erlang.Span, tracing on">>, bench_span),
    Events = Case(<<"tracing.on_attrs_event">>,
                  <<"1000 x erlang.Span with 2 attributes and 1 event, tracing on">>,
                  bench_span_event),
    _ = py:disable_tracing(),
    [Plain, Off, On, Events].

%% --- memory over many calls ------------------------------------------------------------------

%% A mixed workload (call, eval, a small conversion round trip, a Python exception) by 4
%% concurrent callers. RSS and erlang:memory(total) are read after a warm-up and after the run,
%% each time after garbage-collecting every process.
memory_case(Warmup, Calls) ->
    define_ident(),
    Small = #{<<"k">> => [1, 2.5, <<"s">>, {true, none}]},
    Ops = {fun() -> py:call(math, sqrt, [2.0]) end,
           fun() -> py:eval(<<"1+1">>) end,
           fun() -> py:call('__main__', ident, [Small]) end,
           fun() -> py:call(math, sqrt, [-1.0]) end},
    Check = fun(0, {ok, 1.4142135623730951}) -> ok;
               (1, {ok, 2}) -> ok;
               (2, {ok, S}) when S =:= Small -> ok;
               (3, {error, {'ValueError', _}}) -> ok;
               (_, Other) -> {bad, Other}
            end,
    Callers = 4,
    gc_all(),
    RssStart = rss_bytes(),
    {_, E0, F0, _} = mixed_run(Callers, Warmup, Ops, Check),
    gc_all(),
    Rss0 = rss_bytes(),
    Mem0 = erlang:memory(total),
    %% Four legs, with RSS read after each, so that a steady climb shows apart from a one-off.
    Legs = [begin
                {T, E, F, _} = mixed_run(Callers, Calls div 4, Ops, Check),
                gc_all(),
                {T, E, F, rss_bytes()}
            end
            || _ <- lists:seq(1, 4)],
    Elapsed = lists:sum([T || {T, _, _, _} <- Legs]),
    E1 = lists:sum([E || {_, E, _, _} <- Legs]),
    F1 = lists:foldl(fun({_, _, F, _}, Acc) -> first(Acc, F) end, none, Legs),
    Series = [maybe_mb(Rss0) | [maybe_mb(R) || {_, _, _, R} <- Legs]],
    Rss1 = rss_bytes(),
    Mem1 = erlang:memory(total),
    MB = fun(B) -> B / 1048576 end,
    RssDelta = case {Rss0, Rss1} of
                   {undefined, _} -> undefined;
                   {_, undefined} -> undefined;
                   _ -> MB(Rss1 - Rss0)
               end,
    Label = iolist_to_binary(io_lib:format("RSS growth over ~s mixed calls",
                                           [human_count(Calls)])),
    finish(#{id => <<"memory">>, label => Label,
             metrics => #{rss_delta_mb => RssDelta, erlang_total_delta_mb => MB(Mem1 - Mem0),
                          rss_before_mb => maybe_mb(Rss0), rss_after_mb => maybe_mb(Rss1),
                          rss_series_mb => Series, rss_start_mb => maybe_mb(RssStart),
                          calls => Calls, calls_per_s => Calls / (Elapsed / 1.0e9)},
             errors => E0 + E1, first_error => first(F0, F1)},
           {rss_delta_mb, '=<', 1}).

maybe_mb(undefined) -> undefined;
maybe_mb(B) -> B / 1048576.

mixed_run(Callers, Calls, Ops, Check) ->
    Parent = self(),
    Per = Calls div Callers,
    Workers = [spawn_monitor(fun() -> Parent ! {mixed_done, self(), mixed_loop(Per, Ops, Check)}
                             end)
               || _ <- lists:seq(1, Callers)],
    T0 = erlang:monotonic_time(nanosecond),
    Rs = [receive
              {mixed_done, Pid, R} -> erlang:demonitor(MRef, [flush]), R;
              {'DOWN', MRef, process, Pid, Why} -> {1, {caller_crashed, Why}}
          end
          || {Pid, MRef} <- Workers],
    T1 = erlang:monotonic_time(nanosecond),
    {Errs, First} = lists:foldl(fun({E, F}, {EA, FA}) -> {EA + E, first(FA, F)} end,
                                {0, none}, Rs),
    {T1 - T0, Errs, First, Per * Callers}.

mixed_loop(N, Ops, Check) ->
    mixed_loop(N, Ops, Check, 0, none).

mixed_loop(0, _Ops, _Check, Errs, First) ->
    {Errs, First};
mixed_loop(N, Ops, Check, Errs, First) ->
    K = N rem 4,
    case Check(K, (element(K + 1, Ops))()) of
        ok -> mixed_loop(N - 1, Ops, Check, Errs, First);
        {bad, R} -> mixed_loop(N - 1, Ops, Check, Errs + 1, first(First, R))
    end.

gc_all() ->
    [erlang:garbage_collect(P) || P <- erlang:processes()],
    ok.

%% --- faults (not in the default run: `--only faults`) ------------------------------------------

fault_setup() ->
    ok = py:exec(<<"import time, asyncio\n"
                   "def ep_fault_sleep(s):\n    time.sleep(s)\n    return s\n"
                   "async def ep_fault_async(s):\n    await asyncio.sleep(s)\n    return s\n">>),
    ok = py:register_function(ep_fault_cb, fun([Ms]) -> timer:sleep(Ms), Ms end).

%% One request of a random kind among the first `Kinds' (5: all, 4: no contexts), sleeping up
%% to 20 ms in Python or in an Erlang callback.
fault_request(Kinds) ->
    S = rand:uniform(20) / 1000,
    case rand:uniform(Kinds) of
        1 -> py:call('__main__', ep_fault_sleep, [S], #{}, 5000);
        2 -> py:eval(<<"ep_fault_sleep(s)">>, #{s => S}, 5000);
        3 -> py:async_await(py:async_call('__main__', ep_fault_async, [S]), 5000);
        4 -> py:eval(<<"erlang.call('ep_fault_cb', ms)">>, #{ms => round(S * 1000)}, 5000);
        5 ->
            case py:bind(new) of
                {ok, Ctx} ->
                    try py:ctx_call(Ctx, '__main__', ep_fault_sleep, [S], #{}, 5000)
                    after py:unbind(Ctx)
                    end;
                Error ->
                    Error
            end
    end.

%% Pending requests, checked-out executors, semaphore slots and waiting async callbacks.
leftovers() ->
    #{pending_requests := P, checked_out := C} = py_pool:get_stats(),
    #{pending => P, checked_out => C, slots => py_semaphore:current(),
      async_pending => py_nif:callback_async_pending()}.

settle(Deadline) ->
    L = leftovers(),
    case lists:sum(maps:values(L)) =:= 0 orelse erlang:monotonic_time(millisecond) > Deadline of
        true -> L;
        false -> timer:sleep(20), settle(Deadline)
    end.

%% N callers of every request kind, each killed at a random moment (0-30 ms after it
%% starts); then everything must settle back to zero, with RSS about where it was.
kill_storm_case(N) ->
    fault_setup(),
    Rss0 = rss_bytes(),
    T0 = erlang:monotonic_time(millisecond),
    lists:foreach(
      fun(Batch) ->
              Pids = [spawn(fun() -> fault_request(5) end) || _ <- lists:seq(1, Batch)],
              [begin timer:sleep(rand:uniform(3) - 1), exit(P, kill) end || P <- Pids]
      end, lists:duplicate(N div 100, 100)),
    Left = settle(erlang:monotonic_time(millisecond) + 30000),
    Elapsed = erlang:monotonic_time(millisecond) - T0,
    erlang:garbage_collect(),
    Rss1 = rss_bytes(),
    Bad = lists:sum(maps:values(Left)),
    finish(#{id => <<"faults.kill_storm">>,
             label => iolist_to_binary(io_lib:format("kill storm: ~b killed callers", [N])),
             metrics => Left#{callers => N, elapsed_ms => Elapsed,
                              rss_before_mb => maybe_mb(Rss0), rss_after_mb => maybe_mb(Rss1)},
             errors => Bad, first_error => Left}, none).

%% Cycles of application:stop/start with `Callers' callers in flight each time.
restart_cycles_case(Cycles, Callers) ->
    App = erlang_python,
    Times = [begin
                 fault_setup(),
                 Pids = [spawn(fun() -> fault_request(5) end) || _ <- lists:seq(1, Callers)],
                 timer:sleep(5),
                 T0 = erlang:monotonic_time(microsecond),
                 ok = application:stop(App),
                 {ok, _} = application:ensure_all_started(App),
                 T = erlang:monotonic_time(microsecond) - T0,
                 [exit(P, kill) || P <- Pids],
                 T
             end || _ <- lists:seq(1, Cycles)],
    fault_setup(),
    Left = settle(erlang:monotonic_time(millisecond) + 30000),
    Sorted = list_to_tuple(lists:sort(Times)),
    finish(#{id => <<"faults.restart">>,
             label => iolist_to_binary(io_lib:format("stop/start with ~b callers in flight",
                                                     [Callers])),
             metrics => Left#{cycles => Cycles,
                              cycle_mean_ms => lists:sum(Times) / Cycles / 1000,
                              cycle_p99_ms => pct(Sorted, 99) / 1000},
             errors => lists:sum(maps:values(Left)), first_error => Left}, none).

%% `Callers' processes looping random requests for `Ms' milliseconds: errors, latency, RSS.
%% No contexts here: with more callers than executors, `py:bind(new)' rightly answers
%% `no_workers_available'.
mixed_load_case(Callers, Ms) ->
    fault_setup(),
    Rss0 = rss_bytes(),
    #{ok := Ok, errors := Errs, first_error := FirstErr, lats := Lats} =
        throughput(Callers, Ms, fun() ->
                                        case fault_request(4) of
                                            {ok, _} -> ok;
                                            Other -> {bad, Other}
                                        end
                                end),
    Left = settle(erlang:monotonic_time(millisecond) + 30000),
    erlang:garbage_collect(),
    Rss1 = rss_bytes(),
    Lat = maps:with([p50_us, p99_us, p999_us], lat_metrics(Lats)),
    finish(#{id => <<"faults.mixed">>,
             label => iolist_to_binary(io_lib:format("~b callers mixed for ~b s",
                                                     [Callers, Ms div 1000])),
             metrics => maps:merge(Lat, Left#{requests => Ok, seconds => Ms div 1000,
                                              rss_before_mb => maybe_mb(Rss0),
                                              rss_after_mb => maybe_mb(Rss1)}),
             errors => Errs + lists:sum(maps:values(Left)), first_error => FirstErr}, none).

%% VmRSS of this BEAM (the escript runs inside it), from /proc; undefined elsewhere.
rss_bytes() ->
    case file:read_file("/proc/self/status") of
        {ok, Status} ->
            case re:run(Status, "VmRSS:\\s+(\\d+)\\s+kB", [{capture, all_but_first, list}]) of
                {match, [Kb]} -> list_to_integer(Kb) * 1024;
                nomatch -> undefined
            end;
        {error, _} ->
            undefined
    end.

%% ---------------------------------------------------------------------------------------------
%% Verdicts and printing
%% ---------------------------------------------------------------------------------------------

%% Adds status (ok | error), target text and verdict (pass | fail | info) and prints the row.
finish(R = #{metrics := M, errors := Errs}, Target) ->
    {TargetText, Verdict} = verdict(Target, M),
    R1 = R#{status => case Errs of 0 -> ok; _ -> error end,
            target => TargetText, verdict => Verdict},
    print_row(R1),
    R1.

verdict(none, _M) ->
    {<<>>, info};
verdict(round_trips, #{round_trips := RT}) ->
    {<<"round trips (equal)">>, pass_fail(RT)};
verdict({Key, Op, Limit}, M) ->
    OpText = case Op of '=<' -> "<="; '>=' -> ">=" end,
    Text = iolist_to_binary(lists:join(" ", [T || T <- [target_key(Key), OpText,
                                                         fmt_value(Key, Limit)], T =/= ""])),
    case maps:get(Key, M, undefined) of
        undefined -> {Text, info};
        V -> {Text, pass_fail(erlang:Op(V, Limit))}
    end.

pass_fail(true) -> pass;
pass_fail(false) -> fail.

target_key(p50_us) -> "p50";
target_key(calls_per_s) -> "";
target_key(rss_delta_mb) -> "RSS delta";
target_key(K) -> atom_to_list(K).

fmt_value(K, V) when K =:= p50_us; K =:= p99_us; K =:= mean_us -> fmt_us(V);
fmt_value(calls_per_s, V) -> [human_count(V), " calls/s"];
fmt_value(rss_delta_mb, V) -> fmt_mb(V).

fmt_us(Us) when is_integer(Us) -> io_lib:format("~b us", [Us]);
fmt_us(Us) when Us < 100 -> io_lib:format("~.1f us", [float(Us)]);
fmt_us(Us) -> io_lib:format("~b us", [round(Us)]).

fmt_mb(undefined) -> "n/a";
fmt_mb(Mb) when is_integer(Mb) -> io_lib:format("~b MB", [Mb]);
fmt_mb(Mb) -> io_lib:format("~.2f MB", [float(Mb)]).

%% 1234567 -> "1,234,567"
human_count(N) ->
    Digits = integer_to_list(round(N)),
    group3(lists:reverse(Digits), []).

group3([A, B, C, D | T], Acc) -> group3([D | T], [$,, C, B, A | Acc]);
group3(Rest, Acc) -> lists:reverse(Rest) ++ Acc.

%% The one-line summary of a result, used both in the single table and in comparisons.
summary(#{status := skipped}) ->
    "skipped";
summary(#{metrics := M = #{calls_per_s := Rate, callers := _}}) ->
    io_lib:format("~ts calls/s (p50 ~ts, p99 ~ts)",
                  [human_count(Rate), fmt_us(maps:get(p50_us, M, 0)),
                   fmt_us(maps:get(p99_us, M, 0))]);
summary(#{metrics := M = #{rss_delta_mb := D}}) ->
    io_lib:format("RSS ~ts~ts, erlang:memory ~ts~ts",
                  [sign(D), fmt_mb(D), sign(maps:get(erlang_total_delta_mb, M)),
                   fmt_mb(maps:get(erlang_total_delta_mb, M))]);
summary(#{metrics := M = #{p50_us := P50}}) ->
    io_lib:format("p50 ~ts  p99 ~ts", [fmt_us(P50), fmt_us(maps:get(p99_us, M))]);
summary(_) ->
    "-".

sign(undefined) -> "";
sign(V) when V >= 0 -> "+";
sign(_) -> "".

print_header() ->
    io:format("~n~-48s ~-44s ~-24s ~s~n", ["benchmark", "result", "target", "verdict"]),
    io:format("~s~n", [lists:duplicate(128, $-)]).

print_row(R = #{label := Label}) ->
    Verdict = case R of
                  #{status := skipped} -> "skipped";
                  #{status := error} -> "ERRORS";
                  #{verdict := info} -> "-";
                  #{verdict := V} -> string:uppercase(atom_to_list(V));
                  _ -> ""
              end,
    io:format("~-48ts ~-44ts ~-24ts ~s~n",
              [Label, summary(R), maps:get(target, R, <<>>), Verdict]),
    case R of
        #{status := error} ->
            io:format("    ^ ~ts~n", [error_text(R)]);
        #{status := skipped, error := E} ->
            io:format("    ^ ~ts~n", [E]);
        #{metrics := #{rss_series_mb := Series, rss_start_mb := Start}} ->
            io:format("    ^ RSS ~ts at start; after warm-up and after each quarter: ~ts~n",
                      [fmt_mb(Start), lists:join(", ", [fmt_mb(M) || M <- Series])]);
        #{metrics := #{max_stretch_ms := Max, p50_stretch_ms := P50, stretched_calls := K,
                       calls := N}} ->
            io:format("    ^ caller's longest run without a break: p50 ~ts, max ~ts (1 ms or more "
                      "in ~b of ~b calls; on a loaded machine the OS preempts too)~n",
                      [fmt_stretch(P50), fmt_stretch(Max), K, N]);
        #{id := <<"faults.", _/binary>>, metrics := M} ->
            Keys = [callers, cycles, requests, elapsed_ms, cycle_mean_ms, cycle_p99_ms,
                    pending, checked_out, slots, async_pending, rss_before_mb, rss_after_mb],
            io:format("    ^ ~ts~n", [lists:join(", ", [io_lib:format("~s ~p", [K, maps:get(K, M)])
                                                        || K <- Keys, is_map_key(K, M)])]);
        _ ->
            ok
    end.

fmt_stretch(0) -> "< 1 ms";
fmt_stretch(Ms) -> io_lib:format("~b ms", [Ms]).

error_text(#{error := E}) ->
    E;
error_text(#{errors := N, first_error := F}) ->
    io_lib:format("~b unexpected replies, first: ~0P", [N, F, 30]).

print_summary(Results) ->
    Count = fun(P) -> length([R || R <- Results, P(R)]) end,
    io:format("~s~n", [lists:duplicate(128, $-)]),
    io:format("targets met: ~b, missed: ~b; benchmarks with errors: ~b, skipped: ~b~n",
              [Count(fun(#{verdict := V}) -> V =:= pass; (_) -> false end),
               Count(fun(#{verdict := V}) -> V =:= fail; (_) -> false end),
               Count(fun(#{status := S}) -> S =:= error end),
               Count(fun(#{status := S}) -> S =:= skipped end)]).

%% ---------------------------------------------------------------------------------------------
%% Information about the run
%% ---------------------------------------------------------------------------------------------

collect_info(App, Opts) ->
    Try = fun(F) ->
                  try F() of
                      {ok, V} -> V;
                      V -> V
                  catch
                      _:_ -> undefined
                  end
          end,
    Vsn = case application:get_key(App, vsn) of
              {ok, V} -> list_to_binary(V);
              undefined -> undefined
          end,
    #{label => to_bin(case maps:get(label, Opts) of undefined -> atom_to_list(App); L -> L end),
      app => App, app_vsn => Vsn,
      code_paths => [list_to_binary(filename:absname(P)) || P <- maps:get(paths, Opts)],
      quick => maps:get(quick, Opts),
      otp_release => list_to_binary(erlang:system_info(otp_release)),
      schedulers => erlang:system_info(schedulers_online),
      dirty_io_schedulers => erlang:system_info(dirty_io_schedulers),
      logical_processors => erlang:system_info(logical_processors_available),
      python_version => Try(fun() -> py:version() end),
      execution_mode => Try(fun() -> py:execution_mode() end),
      num_executors => Try(fun() -> py:num_executors() end),
      max_concurrent => Try(fun() -> py_semaphore:max_concurrent() end),
      app_env => maps:from_list([{K, iolist_to_binary(io_lib:format("~0p", [V]))}
                                 || {K, V} <- maps:get(env, Opts)])}.

to_bin(L) when is_list(L) -> unicode:characters_to_binary(L);
to_bin(B) when is_binary(B) -> B.

print_info(I) ->
    Py = case maps:get(python_version, I) of
             B when is_binary(B) -> hd(binary:split(B, <<" ">>));
             Other -> io_lib:format("~p", [Other])
         end,
    io:format("implementation: ~ts (app ~p ~ts) from ~ts~n",
              [maps:get(label, I), maps:get(app, I), or_unknown(maps:get(app_vsn, I)),
               lists:join(", ", maps:get(code_paths, I))]),
    io:format("python ~ts, mode ~p, executors ~p, max_concurrent ~p~n",
              [Py, maps:get(execution_mode, I), maps:get(num_executors, I),
               maps:get(max_concurrent, I)]),
    io:format("OTP ~ts, ~b schedulers, ~p dirty IO schedulers, ~p logical CPUs~ts~n",
              [maps:get(otp_release, I), maps:get(schedulers, I),
               maps:get(dirty_io_schedulers, I), maps:get(logical_processors, I),
               case maps:get(quick, I) of
                   true -> " (--quick: 10x smaller counts)";
                   false -> ""
               end]).

or_unknown(undefined) -> "?";
or_unknown(B) -> B.

%% ---------------------------------------------------------------------------------------------
%% Output files
%% ---------------------------------------------------------------------------------------------

write_outputs(Opts, Info, Results) ->
    Doc = #{info => Info, results => [export(R) || R <- Results]},
    case maps:get(json, Opts) of
        undefined -> ok;
        File -> ok = file:write_file(File, [json(Doc), $\n])
    end,
    case maps:get(terms, Opts) of
        undefined -> ok;
        TFile -> ok = file:write_file(TFile, io_lib:format("~p.~n", [Doc]))
    end.

%% Results as plain data: the first bad reply becomes text.
export(R) ->
    R1 = maps:remove(first_error, R),
    case R of
        #{first_error := none} -> R1;
        #{first_error := F} -> R1#{first_error => iolist_to_binary(io_lib:format("~0P", [F, 30]))};
        _ -> R1
    end.

%% A small JSON encoder (OTP 25 has no json module).
json(M) when is_map(M) ->
    Pairs = [[json_key(K), $:, json(V)] || {K, V} <- lists:sort(maps:to_list(M))],
    [${, lists:join($,, Pairs), $}];
json(L) when is_list(L) -> [$[, lists:join($,, [json(V) || V <- L]), $]];
json(true) -> <<"true">>;
json(false) -> <<"false">>;
json(undefined) -> <<"null">>;
json(none) -> <<"null">>;
json(A) when is_atom(A) -> json_string(atom_to_binary(A));
json(B) when is_binary(B) -> json_string(B);
json(I) when is_integer(I) -> integer_to_binary(I);
json(F) when is_float(F) -> float_to_binary(F, [short]);
json(T) -> json_string(iolist_to_binary(io_lib:format("~0p", [T]))).

json_key(K) when is_atom(K) -> json_string(atom_to_binary(K));
json_key(K) when is_binary(K) -> json_string(K).

json_string(B) ->
    [$", [json_char(C) || <<C/utf8>> <= B], $"].

json_char($") -> <<"\\\"">>;
json_char($\\) -> <<"\\\\">>;
json_char($\n) -> <<"\\n">>;
json_char(C) when C < 32 -> io_lib:format("\\u~4.16.0b", [C]);
json_char(C) -> <<C/utf8>>.

%% ---------------------------------------------------------------------------------------------
%% Several implementations side by side (each in its own BEAM)
%% ---------------------------------------------------------------------------------------------

run_compare(Opts = #{impls := Impls0, paths := Paths}) ->
    Impls = case Paths of
                [] -> Impls0;
                _ -> [{label_or(Opts, "this"), Paths} | Impls0]
            end,
    Escript = case os:find_executable("escript") of
                  false -> die("escript is not on PATH", []);
                  E -> E
              end,
    Self = filename:absname(escript:script_name()),
    Tmp = filename:join(tmp_dir(), "bench-" ++ os:getpid()),
    Rounds = maps:get(rounds, Opts),
    Indexed = lists:zip(lists:seq(1, length(Impls)), Impls),
    %% Round R starts with the R-th implementation, so that each goes first as often and a
    %% machine whose speed drifts weighs on all of them alike.
    Runs = [{R, run_child(Escript, Self, Name, ImplPaths,
                          lists:concat([Tmp, "-", R, "-", I, ".terms"]), Opts)}
            || R <- lists:seq(1, Rounds),
               {I, {Name, ImplPaths}} <- rotate(Indexed, (R - 1) rem length(Indexed))],
    case Rounds of
        1 -> print_comparison([Run || {_, Run} <- Runs]);
        _ -> print_rounds([Name || {Name, _} <- Impls], Runs, Rounds)
    end,
    case maps:get(json, Opts) of
        undefined -> ok;
        File ->
            Docs = [Doc#{info => (maps:get(info, Doc, #{}))#{round => R}}
                    || {R, {_, Doc}} <- Runs],
            ok = file:write_file(File, [json(Docs), $\n])
    end,
    halt(0).

rotate(List, N) ->
    {Front, Back} = lists:split(N, List),
    Back ++ Front.

label_or(#{label := undefined}, Default) -> Default;
label_or(#{label := L}, _) -> L.

tmp_dir() ->
    case os:getenv("TMPDIR") of
        false -> "/tmp";
        D -> D
    end.

run_child(Escript, Self, Name, Paths, TermsFile, Opts) ->
    Flags = lists:append([["--quick" || maps:get(quick, Opts)],
                          case maps:get(only, Opts) of
                              all -> [];
                              Only -> ["--only", lists:join(",", Only)]
                          end,
                          ["--app", atom_to_list(maps:get(app, Opts))],
                          ["--callers", lists:join(",", [integer_to_list(C)
                                                         || C <- maps:get(callers, Opts)])],
                          case maps:get(duration_ms, Opts) of
                              undefined -> [];
                              D -> ["--duration", integer_to_list(D)]
                          end,
                          lists:append([["--env", io_lib:format("~s=~0p", [K, V])]
                                        || {K, V} <- maps:get(env, Opts)])]),
    Args = [Self | Paths] ++ [lists:flatten(F) || F <- Flags] ++
        ["--label", Name, "--terms", TermsFile],
    io:format("~n=== ~ts ===~n", [Name]),
    Port = open_port({spawn_executable, Escript},
                     [{args, Args}, binary, exit_status, stderr_to_stdout, use_stdio]),
    Status = relay(Port),
    Doc = case file:consult(TermsFile) of
              {ok, [Consulted]} -> Consulted;
              _ -> #{info => #{label => to_bin(Name)}, results => [],
                     failed => iolist_to_binary(io_lib:format("exit status ~b", [Status]))}
          end,
    _ = file:delete(TermsFile),
    {Name, Doc}.

relay(Port) ->
    receive
        {Port, {data, Data}} ->
            io:put_chars(Data),
            relay(Port);
        {Port, {exit_status, S}} ->
            S
    end.

print_comparison(Runs) ->
    Width = 30,
    Names = [N || {N, _} <- Runs],
    Ids = result_ids([Doc || {_, Doc} <- Runs]),
    io:format("~n=== side by side ===~n~-40s", ["benchmark"]),
    [io:format(" ~-*ts", [Width, N]) || N <- Names],
    io:format(" target~n~s~n", [lists:duplicate(40 + (Width + 1) * length(Names) + 22, $-)]),
    lists:foreach(
      fun(Id) ->
              Rows = [lists:search(fun(#{id := I}) -> I =:= Id end, Rs)
                      || {_, #{results := Rs}} <- Runs],
              Target = hd([T || {value, #{target := T}} <- Rows] ++ [<<>>]),
              io:format("~-40ts", [Id]),
              [io:format(" ~-*ts", [Width, short(Row)]) || Row <- Rows],
              io:format(" ~ts~n", [Target])
      end, Ids),
    [io:format("~ts: child run failed (~ts)~n", [N, F]) || {N, #{failed := F}} <- Runs],
    ok.

%% With --rounds: per benchmark and implementation, the median of its main number over the
%% rounds, the range, and in how many rounds it did best.
print_rounds(Names, Runs, Rounds) ->
    Width = 34,
    Ids = result_ids([Doc || {_, {_, Doc}} <- Runs]),
    io:format("~n=== ~b rounds: median [range] and rounds won, of p50 (us), calls/s or MB ===~n"
              "~-40s", [Rounds, "benchmark"]),
    [io:format(" ~-*ts", [Width, N]) || N <- Names],
    io:format("~n~s~n", [lists:duplicate(40 + (Width + 1) * length(Names), $-)]),
    lists:foreach(
      fun(Id) ->
              %% #{Round => #{Name => {Value, Better}}}
              ByRound = lists:foldl(
                          fun({R, {Name, Doc}}, Acc) ->
                                  case round_value(Id, Doc) of
                                      none -> Acc;
                                      V -> maps:update_with(R, fun(M) -> M#{Name => V} end,
                                                            #{Name => V}, Acc)
                                  end
                          end, #{}, Runs),
              Wins = lists:foldl(fun(M, Acc) -> count_win(M, Acc) end, #{},
                                 maps:values(ByRound)),
              io:format("~-40ts", [Id]),
              [io:format(" ~-*ts", [Width, round_cell(Name, ByRound, Wins, Rounds)])
               || Name <- Names],
              io:format("~n")
      end, Ids),
    Failed = lists:usort([{N, R, F} || {R, {N, #{failed := F}}} <- Runs]),
    [io:format("~ts: child run of round ~b failed (~ts)~n", [N, R, F]) || {N, R, F} <- Failed],
    ok.

round_value(Id, #{results := Rs}) ->
    case lists:search(fun(#{id := I}) -> I =:= Id end, Rs) of
        {value, #{status := ok, metrics := #{calls_per_s := V, callers := _}}} -> {V, higher};
        {value, #{status := ok, metrics := #{rss_delta_mb := V}}} when is_number(V) -> {V, lower};
        {value, #{status := ok, metrics := #{p50_us := V}}} -> {V, lower};
        _ -> none
    end.

%% The implementation with the best value of one round (none on a tie or a lone value).
count_win(Values, Wins) when map_size(Values) < 2 ->
    Wins;
count_win(Values, Wins) ->
    Sorted = lists:sort(fun({_, {A, higher}}, {_, {B, _}}) -> A >= B;
                           ({_, {A, lower}}, {_, {B, _}}) -> A =< B
                        end, maps:to_list(Values)),
    case Sorted of
        [{_, {V, _}}, {_, {V, _}} | _] -> Wins;
        [{Best, _} | _] -> maps:update_with(Best, fun(N) -> N + 1 end, 1, Wins)
    end.

round_cell(Name, ByRound, Wins, Rounds) ->
    case [V || #{Name := V} <- maps:values(ByRound)] of
        [] ->
            "-";
        [{_, Better} | _] = Values ->
            Sorted = lists:sort([V || {V, _} <- Values]),
            Median = lists:nth((length(Sorted) + 1) div 2, Sorted),
            F = fun(V) -> round_number(V, Better) end,
            io_lib:format("~ts [~ts-~ts] ~b/~b",
                          [F(Median), F(hd(Sorted)), F(lists:last(Sorted)),
                           maps:get(Name, Wins, 0), Rounds])
    end.

round_number(V, higher) when V >= 10000 -> io_lib:format("~.1fk/s", [V / 1000]);
round_number(V, higher) -> io_lib:format("~b/s", [round(V)]);
round_number(V, lower) when is_integer(V) -> integer_to_list(V);
round_number(V, lower) when abs(V) < 100 -> io_lib:format("~.1f", [float(V)]);
round_number(V, lower) -> integer_to_list(round(V)).

%% The benchmark ids of the runs' results, in the order they first appear.
result_ids(Docs) ->
    lists:foldl(fun(#{results := Rs}, Acc) ->
                        Acc ++ [Id || #{id := Id} <- Rs, not lists:member(Id, Acc)]
                end, [], Docs).

short(false) -> "-";
short({value, #{status := skipped}}) -> "skipped";
short({value, #{status := error}}) -> "ERRORS";
short({value, #{metrics := #{calls_per_s := R, callers := _}} = Row}) ->
    [human_count(R), "/s", mark(Row)];
short({value, #{metrics := #{rss_delta_mb := D}} = Row}) ->
    [sign(D), fmt_mb(D), mark(Row)];
short({value, #{metrics := #{p50_us := P}} = Row}) ->
    ["p50 ", fmt_us(P), mark(Row)];
short(_) ->
    "-".

mark(#{verdict := fail}) -> " (missed)";
mark(_) -> "".
