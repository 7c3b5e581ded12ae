%% @doc Spans from Python into py_tracer: span map shape, completion order, events, errors,
%% nesting through contextvars (asyncio tasks), the trace decorator, enable/disable/clear,
%% bounded storage and in-flight bound, the Erlang-given parent, Python threads, visibility
%% right after a request, and bad inputs.
-module(py_tracing_SUITE).

-include_lib("common_test/include/ct.hrl").

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).

-export([
    span_shape/1,
    completion_order_and_nesting/1,
    events_newest_first/1,
    error_status/1,
    asyncio_tasks_nest_by_context/1,
    decorator_sync_and_async/1,
    disabled_records_nothing/1,
    disable_keeps_collected/1,
    clear_drops_everything/1,
    bounded_storage_drops_oldest/1,
    in_flight_bound_drops_and_counts/1,
    erlang_parent/1,
    erlang_parent_in_callbacks/1,
    erlang_parent_of_dead_process_is_removed/1,
    from_threading_thread/1,
    from_concurrent_requests/1,
    visible_right_after_exec/1,
    unconvertible_attributes_as_repr/1,
    repr_that_logs_while_a_span_is_sent/1,
    bad_inputs/1,
    not_started/1
]).

-define(KEYS, [attributes, duration_us, end_attrs, end_time, events, name, parent_id,
               span_id, start_time, status, trace_id]).

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
    ok = py:exec(<<"import asyncio, erlang, threading">>),
    ok = py:clear_traces(),
    ok = py:enable_tracing(),
    Config.

-spec end_per_testcase(atom(), ct_suite:ct_config()) -> ok.
end_per_testcase(_Case, _Config) ->
    ok = py_test_util:start(),
    ok = py:disable_tracing(),
    ok = py:clear_traces().

%%% ---------------------------------------------------------------- helpers

-spec exec(iolist()) -> ok.
exec(Lines) ->
    ok = py:exec(iolist_to_binary([[L, $\n] || L <- Lines])).

-spec spans() -> [py_tracer:span()].
spans() ->
    {ok, Spans} = py:get_traces(),
    Spans.

-spec names([py_tracer:span()]) -> [binary()].
names(Spans) ->
    [Name || #{name := Name} <- Spans].

-spec by_name(binary(), [py_tracer:span()]) -> py_tracer:span().
by_name(Name, Spans) ->
    [Span] = [S || #{name := N} = S <- Spans, N =:= Name],
    Span.

%% Restarts py_tracer so that it reads the application variables again.
-spec restart_tracer() -> ok.
restart_tracer() ->
    ok = supervisor:terminate_child(py_logging_sup, py_tracer),
    {ok, _} = supervisor:restart_child(py_logging_sup, py_tracer),
    ok = py:enable_tracing().

%%% ---------------------------------------------------------------- cases

%% @doc A span map has exactly the 10 keys of erlang_python 1.6 plus trace_id, with the
%% documented types; a root has parent_id undefined.
-spec span_shape(ct_suite:ct_config()) -> term().
span_shape(_Config) ->
    exec(["with erlang.Span('shape', user='bob', n=3, f=1.5, flag=True, items=[1, 'a']):",
          "    pass"]),
    [Span] = spans(),
    ?KEYS = lists:sort(maps:keys(Span)),
    #{name := <<"shape">>, parent_id := undefined, status := ok, end_attrs := #{},
      events := [], span_id := SpanId, trace_id := TraceId,
      start_time := Start, end_time := End, duration_us := Duration,
      attributes := #{<<"user">> := <<"bob">>, <<"n">> := 3, <<"f">> := 1.5,
                      <<"flag">> := true, <<"items">> := [1, <<"a">>]}} = Span,
    true = is_integer(SpanId) andalso SpanId >= 0 andalso SpanId < 1 bsl 64,
    true = is_integer(TraceId) andalso TraceId >= 0 andalso TraceId < 1 bsl 128,
    true = is_integer(Start) andalso End >= Start,
    Duration = End - Start.

%% @doc Nested spans arrive child first; the child's parent_id is its parent's span_id, and
%% the whole tree shares the root's trace_id; siblings complete in order.
-spec completion_order_and_nesting(ct_suite:ct_config()) -> term().
completion_order_and_nesting(_Config) ->
    exec(["with erlang.Span('root'):",
          "    with erlang.Span('a'):",
          "        with erlang.Span('a1'):",
          "            pass",
          "    with erlang.Span('b'):",
          "        pass"]),
    Spans = spans(),
    [<<"a1">>, <<"a">>, <<"b">>, <<"root">>] = names(Spans),
    #{span_id := Root, trace_id := Trace, parent_id := undefined} = by_name(<<"root">>, Spans),
    #{span_id := A, parent_id := Root, trace_id := Trace} = by_name(<<"a">>, Spans),
    #{parent_id := A, trace_id := Trace} = by_name(<<"a1">>, Spans),
    #{parent_id := Root, trace_id := Trace} = by_name(<<"b">>, Spans),
    exec(["with erlang.Span('other'):", "    pass"]),
    #{trace_id := Other, parent_id := undefined} = by_name(<<"other">>, spans()),
    true = Other =/= Trace.

%% @doc Events are listed newest first, with their attributes and times within the span.
-spec events_newest_first(ct_suite:ct_config()) -> term().
events_newest_first(_Config) ->
    exec(["with erlang.Span('ev') as _s:",
          "    _s.event('first', step=1)",
          "    _s.event('second')",
          "    _s.event('third', step=3, tag='x')",
          "_s.event('after exit is ignored')"]),
    [#{start_time := Start, end_time := End,
       events := [#{name := <<"third">>, attrs := #{<<"step">> := 3, <<"tag">> := <<"x">>},
                    time := T3},
                  #{name := <<"second">>, attrs := Empty, time := T2},
                  #{name := <<"first">>, attrs := #{<<"step">> := 1}, time := T1}]}] = spans(),
    0 = map_size(Empty),
    true = Start =< T1 andalso T1 =< T2 andalso T2 =< T3 andalso T3 =< End.

%% @doc An exception escaping a span gives status error with its text and type; the
%% exception still reaches the caller, and the parent sees it too.
-spec error_status(ct_suite:ct_config()) -> term().
error_status(_Config) ->
    {error, {'ValueError', <<"boom">>}} =
        py:exec(<<"with erlang.Span('outer'):\n"
                  "    with erlang.Span('failing'):\n"
                  "        raise ValueError('boom')\n">>),
    [#{name := <<"failing">>, status := error,
       end_attrs := #{<<"exception">> := <<"boom">>, <<"exception_type">> := <<"ValueError">>}},
     #{name := <<"outer">>, status := error}] = spans(),
    ok = py:clear_traces(),
    exec(["try:",
          "    with erlang.Span('caught'):",
          "        raise KeyError('k')",
          "except KeyError:",
          "    pass"]),
    [#{status := error, end_attrs := #{<<"exception">> := <<"'k'">>,
                                       <<"exception_type">> := <<"KeyError">>}}] = spans().

%% @doc Concurrent asyncio tasks each nest their spans under their own task's span (the
%% current span is a contextvar, not per thread), across awaits; async with works.
-spec asyncio_tasks_nest_by_context(ct_suite:ct_config()) -> term().
asyncio_tasks_nest_by_context(_Config) ->
    exec(["async def _worker(tag):",
          "    async with erlang.Span('task', tag=tag):",
          "        await asyncio.sleep(0)",
          "        with erlang.Span('step', tag=tag):",
          "            await asyncio.sleep(0.001)",
          "        await asyncio.sleep(0)",
          "async def _main():",
          "    with erlang.Span('main'):",
          "        await asyncio.gather(*(_worker(t) for t in 'abc'))",
          "asyncio.run(_main())"]),
    Spans = spans(),
    7 = length(Spans),
    #{span_id := Main, trace_id := Trace} = by_name(<<"main">>, Spans),
    <<"main">> = lists:last(names(Spans)),
    Tasks = [S || #{name := <<"task">>} = S <- Spans],
    Steps = [S || #{name := <<"step">>} = S <- Spans],
    3 = length(Tasks),
    [Main] = lists:usort([P || #{parent_id := P} <- Tasks]),
    [Trace] = lists:usort([T || #{trace_id := T} <- Spans]),
    [begin
         [#{span_id := Id}] = [T || #{attributes := #{<<"tag">> := Tag0}} = T <- Tasks,
                                    Tag0 =:= Tag],
         #{parent_id := Id} = Step
     end || #{attributes := #{<<"tag">> := Tag}} = Step <- Steps],
    ok.

%% @doc erlang.trace on sync and async functions: default and custom names, plain @trace,
%% functools.wraps metadata, results and exceptions pass through, the async span covers the
%% awaited body.
-spec decorator_sync_and_async(ct_suite:ct_config()) -> term().
decorator_sync_and_async(_Config) ->
    exec(["@erlang.trace()",
          "def _add(a, b):",
          "    'Adds.'",
          "    return a + b",
          "@erlang.trace('custom.fetch')",
          "async def _fetch(x):",
          "    await asyncio.sleep(0)",
          "    with erlang.Span('inside'):",
          "        pass",
          "    return x * 2",
          "@erlang.trace",
          "def _bare():",
          "    raise RuntimeError('bare failed')",
          "_results = [_add(1, 2), asyncio.run(_fetch(21))]",
          "try:",
          "    _bare()",
          "except RuntimeError as e:",
          "    _results.append(str(e))"]),
    {ok, [3, 42, <<"bare failed">>]} = py:eval(<<"_results">>),
    {ok, {<<"_add">>, <<"Adds.">>, true, <<"_fetch">>, true}} =
        py:eval(<<"(_add.__name__, _add.__doc__, _add.__wrapped__.__name__ == '_add', "
                  "_fetch.__name__, __import__('inspect').iscoroutinefunction(_fetch))">>),
    {ok, Module} = py:eval(<<"_add.__module__">>),
    Spans = spans(),
    AddName = <<Module/binary, "._add">>,
    BareName = <<Module/binary, "._bare">>,
    [AddName, <<"inside">>, <<"custom.fetch">>, BareName] = names(Spans),
    #{span_id := Fetch} = by_name(<<"custom.fetch">>, Spans),
    #{parent_id := Fetch} = by_name(<<"inside">>, Spans),
    #{status := error, end_attrs := #{<<"exception">> := <<"bare failed">>}} =
        by_name(BareName, Spans).

%% @doc With tracing off nothing is recorded or sent, span ids stay None and events are
%% ignored; a span entered while off stays unrecorded when tracing comes back.
-spec disabled_records_nothing(ct_suite:ct_config()) -> term().
disabled_records_nothing(_Config) ->
    ok = py:disable_tracing(),
    #{enabled := false} = py:tracing_stats(),
    exec(["_off = erlang.Span('off')",
          "with _off as _s:",
          "    _s.event('ignored')",
          "    with erlang.Span('off.child'):",
          "        pass",
          "_off_ids = (_off.span_id, _off.trace_id, _off.parent_id)"]),
    {ok, {none, none, none}} = py:eval(<<"_off_ids">>),
    [] = spans(),
    #{in_flight := 0, stored := 0} = py:tracing_stats(),
    exec(["_late = erlang.Span('late')",
          "_late.__enter__()"]),
    ok = py:enable_tracing(),
    exec(["_late.__exit__(None, None, None)",
          "with erlang.Span('on'):",
          "    pass"]),
    [<<"on">>] = names(spans()),
    #{enabled := true} = py:tracing_stats().

%% @doc disable_tracing keeps what was collected; a span finishing after it is dropped.
-spec disable_keeps_collected(ct_suite:ct_config()) -> term().
disable_keeps_collected(_Config) ->
    ok = py:register_function(tracing_off, fun([]) -> py:disable_tracing() end),
    try
        exec(["with erlang.Span('kept'):",
              "    pass",
              "with erlang.Span('open'):",
              "    erlang.tracing_off()"])
    after
        ok = py:unregister_function(tracing_off)
    end,
    [<<"kept">>] = names(spans()),
    #{enabled := false} = py:tracing_stats().

%% @doc clear_traces drops what was collected, including spans already sent (py_tracer
%% suspended while they were sent).
-spec clear_drops_everything(ct_suite:ct_config()) -> term().
clear_drops_everything(_Config) ->
    exec(["with erlang.Span('one'):", "    pass"]),
    %% Every call to py_tracer acknowledges the spans it handled before it.
    #{in_flight := 0} = py:tracing_stats(),
    ok = sys:suspend(py_tracer),
    try
        exec(["with erlang.Span('two'):", "    pass"]),
        #{in_flight := 1} = py_nif:trace_stats()
    after
        ok = sys:resume(py_tracer)
    end,
    ok = py:clear_traces(),
    [] = spans(),
    #{stored := 0, in_flight := 0} = py:tracing_stats(),
    exec(["with erlang.Span('three'):", "    pass"]),
    [<<"three">>] = names(spans()).

%% @doc Past trace_max_spans the oldest spans are dropped and counted.
-spec bounded_storage_drops_oldest(ct_suite:ct_config()) -> term().
bounded_storage_drops_oldest(_Config) ->
    ok = application:set_env(erlang_python, trace_max_spans, 5),
    try
        ok = restart_tracer(),
        exec(["for _i in range(8):",
              "    with erlang.Span(f'n{_i}'):",
              "        pass"]),
        [<<"n3">>, <<"n4">>, <<"n5">>, <<"n6">>, <<"n7">>] = names(spans()),
        #{stored := 5, max_spans := 5, dropped := 3} = py:tracing_stats()
    after
        ok = application:set_env(erlang_python, trace_max_spans, 10000),
        ok = restart_tracer()
    end,
    #{max_spans := 10000, dropped := 0} = py:tracing_stats().

%% @doc With py_tracer suspended, spans past trace_max_in_flight are dropped and counted by
%% the NIF and Python never waits; after resume the others arrive.
-spec in_flight_bound_drops_and_counts(ct_suite:ct_config()) -> term().
in_flight_bound_drops_and_counts(_Config) ->
    ok = application:set_env(erlang_python, trace_max_in_flight, 10),
    try
        ok = restart_tracer(),
        #{dropped_in_flight := Dropped0} = py:tracing_stats(),
        ok = sys:suspend(py_tracer),
        try
            exec(["for _i in range(100):",
                  "    with erlang.Span('burst', i=_i):",
                  "        pass"]),
            #{in_flight := 10, dropped := Dropped1} = py_nif:trace_stats(),
            90 = Dropped1 - Dropped0
        after
            ok = sys:resume(py_tracer)
        end,
        Spans = spans(),
        Is = [I || #{attributes := #{<<"i">> := I}} <- Spans],
        Is = lists:seq(0, 9)
    after
        ok = application:set_env(erlang_python, trace_max_in_flight, 10000),
        ok = restart_tracer()
    end.

%% @doc with_trace_parent makes root Python spans of this process's requests children of the
%% given span, in its trace; nested spans follow; it nests and restores the previous parent,
%% also when Fun raises; undefined runs with no parent.
-spec erlang_parent(ct_suite:ct_config()) -> term().
erlang_parent(_Config) ->
    Trace = (1 bsl 127) + 12345,
    Span = (1 bsl 64) - 1,
    Code = fun(Name) ->
                   iolist_to_binary(["with erlang.Span('", Name, "'):\n"
                                     "    with erlang.Span('", Name, ".child'):\n"
                                     "        pass\n"])
           end,
    ok = py:with_trace_parent({Trace, Span}, fun() ->
        ok = py:exec(Code("p1")),
        {ok, 3} = py:eval(<<"1 + 2">>),
        ok = py:with_trace_parent({7, 8}, fun() -> py:exec(Code("p2")) end),
        ok = py:with_trace_parent(undefined, fun() -> py:exec(Code("p3")) end),
        {'EXIT', oops} = catch py:with_trace_parent({9, 10}, fun() -> exit(oops) end),
        py:exec(Code("p4"))
    end),
    ok = py:exec(Code("p5")),
    Spans = spans(),
    #{trace_id := Trace, parent_id := Span, span_id := P1} = by_name(<<"p1">>, Spans),
    #{trace_id := Trace, parent_id := P1} = by_name(<<"p1.child">>, Spans),
    #{trace_id := 7, parent_id := 8, span_id := P2} = by_name(<<"p2">>, Spans),
    #{trace_id := 7, parent_id := P2} = by_name(<<"p2.child">>, Spans),
    #{parent_id := undefined} = by_name(<<"p3">>, Spans),
    #{trace_id := Trace, parent_id := Span} = by_name(<<"p4">>, Spans),
    #{parent_id := undefined, trace_id := Other} = by_name(<<"p5">>, Spans),
    true = Other =/= Trace,
    #{parents := 0} = py_nif:trace_stats().

%% @doc The Erlang parent also applies to requests made from inside a callback (served by
%% the same process), and only to the process that set it.
-spec erlang_parent_in_callbacks(ct_suite:ct_config()) -> term().
erlang_parent_in_callbacks(_Config) ->
    ok = py:register_function(tracing_nested, fun([]) ->
        ok = py:exec(<<"with erlang.Span('nested'):\n    pass\n">>),
        none
    end),
    try
        Parent = self(),
        Other = spawn_link(fun() ->
            receive go -> ok end,
            Parent ! {other, py:exec(<<"with erlang.Span('other.process'):\n    pass\n">>)}
        end),
        ok = py:with_trace_parent({100, 200}, fun() ->
            Other ! go,
            receive {other, ok} -> ok end,
            py:exec(<<"with erlang.Span('outer'):\n    erlang.tracing_nested()\n">>)
        end),
        Spans = spans(),
        #{span_id := Outer, parent_id := 200, trace_id := 100} = by_name(<<"outer">>, Spans),
        #{parent_id := Outer, trace_id := 100} = by_name(<<"nested">>, Spans),
        #{parent_id := undefined} = by_name(<<"other.process">>, Spans),
        ok = py:with_trace_parent({100, 200}, fun() ->
            py:exec(<<"erlang.tracing_nested()\n">>)
        end),
        [#{name := <<"nested">>, parent_id := 200, trace_id := 100}] =
            [S || #{name := <<"nested">>} = S <- spans()] -- Spans
    after
        ok = py:unregister_function(tracing_nested)
    end.

%% @doc A process killed inside with_trace_parent leaves no parent behind (monitor).
-spec erlang_parent_of_dead_process_is_removed(ct_suite:ct_config()) -> term().
erlang_parent_of_dead_process_is_removed(_Config) ->
    #{parents := 0} = py_nif:trace_stats(),
    Parent = self(),
    Pid = spawn(fun() ->
        py:with_trace_parent({1, 2}, fun() ->
            Parent ! set,
            receive never -> ok end
        end)
    end),
    receive set -> ok end,
    #{parents := 1} = py_nif:trace_stats(),
    ok = py_test_util:kill_and_wait([Pid]),
    ok = py_test_util:wait_for_value(fun() -> maps:get(parents, py_nif:trace_stats()) end,
                                     0, 5000).

%% @doc Spans finished in a threading.Thread arrive; the thread starts with no current span
%% (threads do not inherit contextvars), so its spans are roots.
-spec from_threading_thread(ct_suite:ct_config()) -> term().
from_threading_thread(_Config) ->
    exec(["def _in_thread():",
          "    with erlang.Span('thread.outer', thread=threading.current_thread().name):",
          "        with erlang.Span('thread.inner'):",
          "            pass",
          "with erlang.Span('request'):",
          "    _t = threading.Thread(target=_in_thread, name='tracing-thread')",
          "    _t.start(); _t.join()"]),
    Spans = spans(),
    [<<"thread.inner">>, <<"thread.outer">>, <<"request">>] = names(Spans),
    #{span_id := Outer, parent_id := undefined,
      attributes := #{<<"thread">> := <<"tracing-thread">>}} = by_name(<<"thread.outer">>, Spans),
    #{parent_id := Outer} = by_name(<<"thread.inner">>, Spans).

%% @doc Concurrent requests on several executors all record their spans, each tree intact.
-spec from_concurrent_requests(ct_suite:ct_config()) -> term().
from_concurrent_requests(_Config) ->
    exec(["def _req(n):",
          "    with erlang.Span('req', n=n):",
          "        with erlang.Span('req.child', n=n):",
          "            pass",
          "    return n"]),
    Ns = lists:seq(1, 20),
    Ns = [N || {ok, N} <- py_test_util:pmap(fun(N) -> py:call('__main__', '_req', [N]) end, Ns)],
    Spans = spans(),
    40 = length(Spans),
    [begin
         [#{span_id := Id, trace_id := T}] =
             [S || #{name := <<"req">>, attributes := #{<<"n">> := M}} = S <- Spans, M =:= N],
         [#{parent_id := Id, trace_id := T}] =
             [S || #{name := <<"req.child">>, attributes := #{<<"n">> := M}} = S <- Spans,
                   M =:= N]
     end || N <- Ns],
    ok.

%% @doc get_traces right after the exec that made a span sees it, 200 times in a row.
-spec visible_right_after_exec(ct_suite:ct_config()) -> term().
visible_right_after_exec(_Config) ->
    lists:foreach(
        fun(I) ->
            ok = py:clear_traces(),
            Name = integer_to_binary(I),
            ok = py:exec(<<"with erlang.Span('", Name/binary, "'):\n    pass\n">>),
            {ok, [#{name := Name}]} = py:get_traces()
        end,
        lists:seq(1, 200)).

%% @doc Attribute values with no Erlang term arrive as their repr (no handle keeps the object
%% alive); others follow the conversion rules.
-spec unconvertible_attributes_as_repr(ct_suite:ct_config()) -> term().
unconvertible_attributes_as_repr(_Config) ->
    exec(["class _Thing:",
          "    def __repr__(self):",
          "        return 'Thing!'",
          "with erlang.Span('attrs', thing=_Thing(), nested={'t': _Thing(), 'n': None}) as _s:",
          "    _s.event('ev', thing=_Thing())"]),
    [#{attributes := #{<<"thing">> := <<"Thing!">>,
                       <<"nested">> := #{<<"t">> := <<"Thing!">>, <<"n">> := none}},
       events := [#{attrs := #{<<"thing">> := <<"Thing!">>}}]}] = spans().

%% @doc A repr() that logs while its span is being sent (the log record is sent from inside
%% the span's message) works: both arrive.
-spec repr_that_logs_while_a_span_is_sent(ct_suite:ct_config()) -> term().
repr_that_logs_while_a_span_is_sent(_Config) ->
    ok = sys:suspend(py_logger),
    try
        %% Suspended, py_logger acknowledges nothing: in_flight only grows.
        #{in_flight := LogsInFlight} = py:logging_stats(),
        exec(["class _Chatty:",
              "    def __repr__(self):",
              "        erlang._native._log(40, 't.chatty', 'repr called', {})",
              "        return 'Chatty!'",
              "with erlang.Span('chatty', obj=_Chatty()):",
              "    pass"]),
        #{in_flight := InFlight} = py:logging_stats(),
        1 = InFlight - LogsInFlight
    after
        ok = sys:resume(py_logger)
    end,
    [#{attributes := #{<<"obj">> := <<"Chatty!">>}}] = spans().

%% @doc Bad parents and funs raise badarg; bad Python arguments raise TypeError or
%% ValueError (OverflowError for ids out of range) in Python; nothing is recorded for them.
-spec bad_inputs(ct_suite:ct_config()) -> term().
bad_inputs(_Config) ->
    F = fun() -> ok end,
    [{'EXIT', {badarg, _}} = catch py:with_trace_parent(P, F)
     || P <- [{-1, 1}, {1, -1}, {1 bsl 128, 1}, {1, 1 bsl 64}, {1.0, 2}, {a, b}, {1, 2, 3},
              [1, 2], 42]],
    {'EXIT', {badarg, _}} = catch py:with_trace_parent({1, 2}, not_a_fun),
    {'EXIT', {badarg, _}} = catch py:with_trace_parent({1, 2}, fun(_) -> ok end),
    {'EXIT', {badarg, _}} = catch py_nif:trace_parent_swap({-1, 2}),
    {'EXIT', {badarg, _}} = catch py_nif:trace_parent_swap(not_a_parent),
    {'EXIT', {badarg, _}} = catch py_nif:trace_set_max_in_flight(0),
    #{parents := 0} = py_nif:trace_stats(),
    {error, {'TypeError', _}} = py:eval(<<"erlang.Span(1)">>),
    {error, {'TypeError', _}} = py:exec(<<"with erlang.Span('x') as s:\n    s.event(2)\n">>),
    {error, {'TypeError', _}} = py:eval(<<"erlang.trace(3)">>),
    Span = fun(Args) ->
                   py:eval(<<"erlang._native._span(*args)">>, #{args => Args})
           end,
    Good = [<<"n">>, 1, 2, none, 0, 1, <<"ok">>, #{}, #{}, []],
    {ok, none} = Span(Good),
    {error, {'ValueError', _}} = Span(replace(7, Good, <<"fine">>)),
    {error, {'OverflowError', _}} = Span(replace(2, Good, -1)),
    {error, {'OverflowError', _}} = Span(replace(2, Good, 1 bsl 128)),
    {error, {'OverflowError', _}} = Span(replace(3, Good, 1 bsl 64)),
    {error, {'TypeError', _}} = Span(replace(1, Good, 5)),
    {error, {'TypeError', _}} = Span(replace(8, Good, [])),
    {error, {'TypeError', _}} = Span(replace(10, Good, [[<<"e">>, #{}, 1]])),
    {error, {'ValueError', _}} = Span(replace(10, Good, [{<<"e">>, #{}}])),
    {error, {'TypeError', _}} = Span(lists:sublist(Good, 9)),
    [#{name := <<"x">>, status := error, end_attrs := #{<<"exception_type">> := <<"TypeError">>}},
     #{name := <<"n">>, status := ok}] = spans().

%% @doc With the application stopped, the tracing API answers {error, not_started}.
-spec not_started(ct_suite:ct_config()) -> term().
not_started(_Config) ->
    ok = py_test_util:stop(),
    {error, not_started} = py:enable_tracing(),
    {error, not_started} = py:disable_tracing(),
    {error, not_started} = py:get_traces(),
    {error, not_started} = py:clear_traces(),
    {error, not_started} = py:tracing_stats(),
    #{enabled := false} = py_nif:trace_stats(),
    ok = py_test_util:start(),
    #{enabled := false, stored := 0} = py:tracing_stats().

%%% ---------------------------------------------------------------- internal

-spec replace(pos_integer(), list(), term()) -> list().
replace(I, List, Value) ->
    lists:sublist(List, I - 1) ++ [Value] ++ lists:nthtail(I, List).
