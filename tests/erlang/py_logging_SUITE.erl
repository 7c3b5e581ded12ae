%% @doc Python logging into OTP logger: level mapping, metadata, the native threshold,
%% configure twice, every kind of Python thread, exception text, overload (drop and count),
%% bad inputs, and the filter that lets erlang_python's domains through OTP's default handler.
-module(py_logging_SUITE).

-include_lib("common_test/include/ct.hrl").

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).
%% logger handler callback: forwards python-domain events to the test process.
-export([log/2]).

-export([
    level_mapping/1,
    metadata/1,
    direct_log_meta_repr/1,
    threshold_filters_natively/1,
    configure_twice_one_handler/1,
    from_threading_thread/1,
    from_asyncio_task/1,
    from_concurrent_executor/1,
    exception_text/1,
    format_option/1,
    burst_drops_and_counts/1,
    bad_inputs/1,
    nif_diagnostics/1,
    example_escript/1,
    default_handler_lets_our_domains_through/1,
    default_handler_filter_lifecycle/1
]).

-define(HANDLER, py_logging_suite_fwd).

-spec all() -> [atom()].
all() -> py_test_util:cases(?MODULE).

-spec suite() -> [tuple()].
suite() -> [{timetrap, {minutes, 3}}].

-spec init_per_suite(ct_suite:ct_config()) -> ct_suite:ct_config().
init_per_suite(Config) ->
    ok = py_test_util:start(),
    #{level := Primary} = logger:get_primary_config(),
    ok = logger:set_primary_config(level, all),
    %% Keep Python records off the console; the test handler sees them.
    _ = logger:add_handler_filter(default, no_python,
                                  {fun logger_filters:domain/2, {stop, sub, [python]}}),
    ok = py:exec(<<"import logging, erlang">>),
    [{primary_level, Primary} | Config].

-spec end_per_suite(ct_suite:ct_config()) -> ok.
end_per_suite(Config) ->
    ok = logger:set_primary_config(level, ?config(primary_level, Config)),
    _ = logger:remove_handler_filter(default, no_python),
    ok = py_test_util:stop().

-spec init_per_testcase(atom(), ct_suite:ct_config()) -> ct_suite:ct_config().
init_per_testcase(_Case, Config) ->
    ok = py_test_util:start(),
    ok = logger:add_handler(?HANDLER, ?MODULE, #{
        config => #{pid => self()},
        filter_default => stop,
        filters => [{python, {fun logger_filters:domain/2, {log, sub, [python]}}}]
    }),
    ok = py:configure_logging(#{level => debug}),
    py_test_util:flush(),
    Config.

-spec end_per_testcase(atom(), ct_suite:ct_config()) -> ok.
end_per_testcase(_Case, _Config) ->
    _ = logger:remove_handler(?HANDLER),
    py_test_util:flush().

%% @private
-spec log(logger:log_event(), logger:handler_config()) -> ok.
log(Event, #{config := #{pid := Pid, tag := Tag}}) ->
    Pid ! {Tag, Event},
    ok;
log(Event, #{config := #{pid := Pid}}) ->
    Pid ! {logged, Event},
    ok.

%%% ---------------------------------------------------------------- helpers

-spec exec(iolist()) -> ok.
exec(Lines) ->
    ok = py:exec(iolist_to_binary([[L, $\n] || L <- Lines])).

%% The next record of the cases' own loggers (named `t.*'); records of any other logger (say,
%% asyncio's about a task an earlier case left behind) are skipped.
-spec next_event() -> {atom(), binary(), binary(), map()}.
next_event() ->
    receive
        {logged, #{level := Level, msg := {"~ts", [Msg]},
                   meta := #{py_logger := <<"t.", _/binary>> = Name, py_meta := PyMeta,
                             domain := [python]}}} ->
            {Level, Name, Msg, PyMeta};
        {logged, #{meta := #{domain := [python]}}} ->
            next_event()
    after 5000 ->
        ct:fail(no_log_event)
    end.

%% Python code that logs, then logs a marker from the same thread: once the marker is in,
%% every record the code logged is (records of one thread arrive in order).
-spec exec_marked(iolist()) -> ok.
exec_marked(Lines) ->
    exec(Lines ++ ["logging.getLogger('t.marker').critical('marker')"]).

%% The records before the marker of exec_marked/1 (the marker taken too).
-spec events_to_marker() -> [{atom(), binary(), binary(), map()}].
events_to_marker() ->
    case next_event() of
        {critical, <<"t.marker">>, <<"marker">>, _} -> [];
        Event -> [Event | events_to_marker()]
    end.

%%% ---------------------------------------------------------------- cases

%% @doc OTP's default handler stops events of domains other than [otp], [otp, sasl] and none.
%% A handler with exactly its filters, filter default and level (read from the `default'
%% handler of this node, without the filter the suite adds there) but without erlang_python's
%% filter drops Python records, the NIF's diagnostics and the application's warnings; the same
%% handler with erlang_python's filter, as the application installed it on `default', logs
%% them. Either way OTP's events pass and other domains are stopped.
-spec default_handler_lets_our_domains_through(ct_suite:ct_config()) -> term().
default_handler_lets_our_domains_through(_Config) ->
    {ok, #{filters := Filters, filter_default := FilterDefault, level := Level}} =
        logger:get_handler_config(default),
    {erlang_python, {_, _}} = lists:keyfind(erlang_python, 1, Filters),
    AsInstalled = lists:keydelete(no_python, 1, Filters),
    AsOtp = lists:keydelete(erlang_python, 1, AsInstalled),
    %% The drop being tested: OTP's domain filters, and a default of stop.
    {domain, {_, {log, super, [otp | _]}}} = lists:keyfind(domain, 1, AsOtp),
    stop = FilterDefault,
    Handlers = [{with_filter, AsInstalled}, {otp_only, AsOtp}],
    [ok = logger:add_handler(Tag, ?MODULE, #{
         config => #{pid => self(), tag => Tag},
         level => Level,
         filter_default => FilterDefault,
         filters => HandlerFilters
     }) || {Tag, HandlerFilters} <- Handlers],
    try
        exec(["logging.getLogger('t.default').warning('through default')"]),
        ok = py:enable_tracing(),
        ok = py:disable_tracing(),
        ok = application:set_env(erlang_python, num_async_workers, 2),
        ok = py_config:warn_ignored(),
        ok = application:unset_env(erlang_python, num_async_workers),
        logger:warning("an OTP event", #{domain => [otp]}),
        logger:warning("another application's event", #{domain => [other_app]}),
        %% Every event that passes is awaited (the NIF's come through its diagnostics thread,
        %% after the OTP event at times): one left over would fail the check below.
        #{<<"through default">> := [python],
          <<"Python tracing on">> := [erlang_python, nif],
          <<"Python tracing off">> := [erlang_python, nif],
          <<"erlang_python: application variable">> := [erlang_python],
          <<"an OTP event">> := [otp]} =
            domains(with_filter, [<<"through default">>, <<"Python tracing on">>,
                                  <<"Python tracing off">>,
                                  <<"erlang_python: application variable">>,
                                  <<"an OTP event">>]),
        #{<<"an OTP event">> := [otp]} = domains(otp_only, [<<"an OTP event">>]),
        %% What must not have passed: an event of another domain than OTP's through OTP's filters
        %% alone, another application's event through ours. (Our own events that the lookups
        %% above did not wait for, such as "Python tracing off", may still arrive on
        %% with_filter, in any order relative to the others: they come from py_logger.)
        receive
            {otp_only, #{meta := #{domain := [Top | _] = Domain}}} = Dropped when Top =/= otp ->
                ct:fail({should_be_dropped, Domain, Dropped});
            {with_filter, #{meta := #{domain := [other_app]}}} = Dropped ->
                ct:fail({should_be_dropped, [other_app], Dropped})
        after 300 ->
            ok
        end
    after
        [logger:remove_handler(Tag) || {Tag, _} <- Handlers]
    end.

%% @doc The filter is on `default' while the application runs, once however often it starts or
%% py_logger restarts, and gone when it stops; `{default_handler_filter, false}' leaves
%% `default' alone, another value makes the start fail naming it; without a `default'
%% handler the application starts and adds nothing.
-spec default_handler_filter_lifecycle(ct_suite:ct_config()) -> term().
default_handler_filter_lifecycle(_Config) ->
    1 = our_filters(),
    ok = py_test_util:start(),
    1 = our_filters(),
    Logger = whereis(py_logger),
    py_test_util:kill_and_wait([Logger]),
    py_test_util:wait_until(
        fun() -> not lists:member(whereis(py_logger), [undefined, Logger]) end, 5000),
    1 = our_filters(),
    ok = py_test_util:stop(),
    0 = our_filters(),
    try
        ok = application:set_env(erlang_python, default_handler_filter, false),
        ok = py_test_util:start(),
        0 = our_filters(),
        ok = py_test_util:stop(),
        ok = application:set_env(erlang_python, default_handler_filter, yes),
        {error, {{shutdown, {failed_to_start_child, py_logging_sup, Reason}}, _}} =
            application:start(erlang_python),
        {match, _} = re:run(io_lib:format("~p", [Reason]),
                            "bad_config,\\s*{default_handler_filter,\\s*yes}")
    after
        ok = application:unset_env(erlang_python, default_handler_filter)
    end,
    {ok, Default} = logger:get_handler_config(default),
    ok = logger:remove_handler(default),
    try
        ok = py_test_util:start(),
        {error, {not_found, default}} = logger:get_handler_config(default),
        ok = py_test_util:stop()
    after
        #{module := Module} = Default,
        ok = logger:add_handler(default, Module, maps:without([id, module], Default))
    end,
    ok = py_test_util:start(),
    1 = our_filters().

%% @doc The NIF's own diagnostics (Rust `log' records) reach logger in the domain
%% [erlang_python, nif], filtered by the `nif_log_level' level. Other diagnostics (reports of
%% earlier cases' drops, executors of earlier suites) may arrive at any time: each event is
%% picked by its target and text, never by arrival order.
-spec nif_diagnostics(ct_suite:ct_config()) -> term().
nif_diagnostics(_Config) ->
    Handler = py_logging_suite_nif,
    ok = logger:add_handler(Handler, ?MODULE, #{
        config => #{pid => self()},
        filter_default => stop,
        filters => [{nif, {fun logger_filters:domain/2, {log, equal, [erlang_python, nif]}}}]
    }),
    Logger = whereis(py_logger),
    try
        ok = py_nif:log_set_diagnostics(Logger, debug),
        %% Records dropped past the in-flight bound are reported (first drop, then whenever
        %% the count since the library loaded reaches a power of two: dropping Dropped0 + 2
        %% more crosses one whatever earlier cases dropped). Only a report counting more than
        %% Dropped0 is about these drops.
        #{dropped := Dropped0} = py:logging_stats(),
        ok = py_nif:log_set_max_in_flight(1),
        ok = sys:suspend(Logger),
        {ok, _} = py:eval(<<"[logging.getLogger('t.drop').warning('x') for _i in range(n)]">>,
                          #{n => Dropped0 + 3}, 60000),
        ok = sys:resume(Logger),
        ok = py_nif:log_set_max_in_flight(10000),
        #{dropped := Dropped1} = py:logging_stats(),
        true = Dropped1 >= 2 * Dropped0 + 2,
        {warning, _} = nif_event(<<"py_nif::outbox">>,
                                 fun(Msg) -> drop_report(<<"Python log records">>, Msg) > Dropped0 end),
        ok = py:configure_logging(#{level => warning}),
        {debug, _} = nif_event(<<"erlang_python_core::log">>,
                               <<"native threshold of Python log records: 10 -> 30">>),
        %% The application variable sets the level at start; a new pool reports its
        %% executors (the report of the stopping one may or may not arrive before py_logger
        %% stops).
        ok = application:set_env(erlang_python, nif_log_level, debug),
        ok = py_test_util:restart(),
        {debug, _} = nif_event(<<"py_nif::executor::pool">>,
                               fun(Msg) -> binary:match(Msg, <<"started ">>) =:= {0, 8} end),
        %% At the default level (info) debug diagnostics are not sent, info ones are.
        ok = py_nif:log_set_diagnostics(whereis(py_logger), info),
        ok = py:configure_logging(#{level => info}),
        ok = py:enable_tracing(),
        {info, _} = nif_event(<<"py_nif::nifs::trace">>, <<"Python tracing on">>),
        ok = py:disable_tracing(),
        {info, _} = nif_event(<<"py_nif::nifs::trace">>, <<"Python tracing off">>),
        %% `none' sends nothing: tracing on and off at `none', then off again at `info'. The
        %% diagnostics travel in order, so the next tracing report is the second "off".
        ok = py_nif:log_set_diagnostics(whereis(py_logger), none),
        ok = py:enable_tracing(),
        ok = py:configure_logging(#{level => error}),
        ok = py_nif:log_set_diagnostics(whereis(py_logger), info),
        ok = py:disable_tracing(),
        {info, <<"Python tracing off">>} = nif_event(<<"py_nif::nifs::trace">>, fun(_) -> true end),
        {'EXIT', {badarg, _}} = (catch py_nif:log_set_diagnostics(whereis(py_logger), loud)),
        #{diagnostics_dropped := 0} = py:logging_stats()
    after
        _ = logger:remove_handler(Handler),
        ok = application:unset_env(erlang_python, nif_log_level),
        py_nif:log_set_diagnostics(whereis(py_logger), info)
    end.

%% @doc examples/logging_example.escript (logging and tracing, in a BEAM of its own) runs and
%% finds what it expects.
-spec example_escript(ct_suite:ct_config()) -> term().
example_escript(_Config) ->
    case py_test_util:repo_root() of
        undefined ->
            {skip, "examples/ not found next to the application"};
        Root ->
            Script = filename:join([Root, "examples", "logging_example.escript"]),
            Ebin = filename:dirname(code:which(py)),
            Port = open_port({spawn_executable, os:find_executable("escript")},
                             [{args, [Script, Ebin]}, exit_status, stderr_to_stdout, binary]),
            {Status, Output} = collect(Port, []),
            ct:log("~ts", [Output]),
            0 = Status,
            {match, _} = re:run(Output, <<"all records arrived as expected">>)
    end.

-spec collect(port(), [binary()]) -> {integer(), binary()}.
collect(Port, Acc) ->
    receive
        {Port, {data, Data}} -> collect(Port, [Data | Acc]);
        {Port, {exit_status, Status}} -> {Status, iolist_to_binary(lists:reverse(Acc))}
    after 120000 ->
        ct:fail(example_timed_out)
    end.

%% How many filters with erlang_python's id the default handler has.
-spec our_filters() -> non_neg_integer().
our_filters() ->
    {ok, #{filters := Filters}} = logger:get_handler_config(default),
    length([Id || {Id, _} <- Filters, Id =:= erlang_python]).

%% The domain of the first event that a test handler tagged Tag logs with a text starting with
%% each of Prefixes, in whatever order they come (other events of Tag are dropped).
-spec domains(atom(), [binary()]) -> #{binary() => [atom()]}.
domains(Tag, Prefixes) ->
    domains(Tag, Prefixes, #{}).

-spec domains(atom(), [binary()], #{binary() => [atom()]}) -> #{binary() => [atom()]}.
domains(_Tag, [], Found) ->
    Found;
domains(Tag, Prefixes, Found) ->
    receive
        {Tag, #{msg := Msg, meta := Meta}} ->
            Text = unicode:characters_to_binary(case Msg of
                {string, String} -> String;
                {report, _} -> "";
                {Format, Args} -> io_lib:format(Format, Args)
            end),
            case [P || P <- Prefixes, binary:longest_common_prefix([Text, P]) =:= byte_size(P)] of
                [Prefix | _] ->
                    domains(Tag, Prefixes -- [Prefix], Found#{Prefix => maps:get(domain, Meta)});
                [] ->
                    domains(Tag, Prefixes, Found)
            end
    after 5000 ->
        ct:fail({not_logged, Tag, Prefixes})
    end.

%% The next diagnostic of Target whose message is Text, or for which Match(Message) holds;
%% every other diagnostic is skipped.
-spec nif_event(binary(), binary() | fun((binary()) -> boolean())) -> {atom(), binary()}.
nif_event(Target, Text) when is_binary(Text) ->
    nif_event(Target, fun(Msg) -> Msg =:= Text end);
nif_event(Target, Match) ->
    receive
        {logged, #{level := Level, msg := {"~ts", [Msg]},
                   meta := #{domain := [erlang_python, nif], target := Target}}} ->
            case Match(Msg) of
                true -> {Level, Msg};
                false -> nif_event(Target, Match)
            end;
        {logged, #{meta := #{domain := [erlang_python, nif]}}} ->
            nif_event(Target, Match)
    after 5000 ->
        ct:fail({no_nif_event, Target})
    end.

%% The count in an outbox's drop report `<<"Name: N dropped since ...">>', or -1.
-spec drop_report(binary(), binary()) -> integer().
drop_report(Name, Msg) ->
    Size = byte_size(Name),
    case Msg of
        <<Name:Size/binary, ": ", Rest/binary>> ->
            [Count | _] = binary:split(Rest, <<" ">>),
            binary_to_integer(Count);
        _ ->
            -1
    end.

%% @doc Python levels map to debug/info/warning/error/critical, in order, with name and text.
-spec level_mapping(ct_suite:ct_config()) -> term().
level_mapping(_Config) ->
    exec_marked([
        "_l = logging.getLogger('t.map')",
        "for _n in (10, 20, 30, 40, 50, 45):",
        "    _l.log(_n, 'level %d', _n)"
    ]),
    [
        {debug, <<"t.map">>, <<"level 10">>, _},
        {info, _, <<"level 20">>, _},
        {warning, _, <<"level 30">>, _},
        {error, _, <<"level 40">>, _},
        {critical, _, <<"level 50">>, _},
        {critical, _, <<"level 45">>, _}
    ] = events_to_marker().

%% @doc Metadata carries module, line, function, thread, process and the extra fields
%% (unconvertible ones as repr).
-spec metadata(ct_suite:ct_config()) -> term().
metadata(_Config) ->
    exec([
        "def _meta_fn():",
        "    logging.getLogger('t.meta').warning('hello', extra={'user': 'bob', 'n': 3,",
        "        'obj': object(), 'tags': ['a', 1]})",
        "_meta_fn()"
    ]),
    {warning, <<"t.meta">>, <<"hello">>, Meta} = next_event(),
    #{
        <<"funcName">> := <<"_meta_fn">>,
        <<"lineno">> := 2,
        <<"module">> := _,
        <<"thread">> := Thread,
        <<"threadName">> := _,
        <<"process">> := OsPid,
        <<"extra">> := #{
            <<"user">> := <<"bob">>,
            <<"n">> := 3,
            <<"obj">> := <<"<object object at ", _/binary>>,
            <<"tags">> := [<<"a">>, 1]
        }
    } = Meta,
    true = is_integer(Thread),
    OsPid = list_to_integer(os:getpid()).

%% @doc A direct _log call with objects that have no term in its metadata sends their repr
%% (no opaque handle keeps them alive from a log event); non-string keys are skipped.
-spec direct_log_meta_repr(ct_suite:ct_config()) -> term().
direct_log_meta_repr(_Config) ->
    exec(["erlang._native._log(30, 't.direct', 'msg', {'o': object(), 'l': [object(), 1],",
          "                      1: 'skipped', 'ok': {'a': 1.5}})"]),
    {warning, <<"t.direct">>, <<"msg">>, Meta} = next_event(),
    #{<<"o">> := <<"<object object at ", _/binary>>,
      <<"l">> := [<<"<object object at ", _/binary>>, 1],
      <<"ok">> := #{<<"a">> := 1.5}} = Meta,
    3 = map_size(Meta).

%% @doc Below the native threshold, _log sends nothing (checked with py_logger suspended:
%% nothing is in flight), and Python's own level filters too.
-spec threshold_filters_natively(ct_suite:ct_config()) -> term().
threshold_filters_natively(_Config) ->
    ok = py:configure_logging(#{level => warning}),
    #{threshold := 30} = py:logging_stats(),
    ok = sys:suspend(py_logger),
    try
        #{in_flight := 0} = py:logging_stats(),
        exec(["erlang._native._log(20, 't.thr', 'below', {})",
              "logging.getLogger('t.thr').info('below too')"]),
        #{in_flight := 0} = py:logging_stats(),
        exec_marked(["erlang._native._log(30, 't.thr', 'at', {})"]),
        #{in_flight := 2} = py:logging_stats()
    after
        ok = sys:resume(py_logger)
    end,
    [{warning, <<"t.thr">>, <<"at">>, #{}}] = events_to_marker().

%% @doc configure_logging twice leaves exactly one ErlangHandler: one record, one event.
-spec configure_twice_one_handler(ct_suite:ct_config()) -> term().
configure_twice_one_handler(_Config) ->
    ok = py:configure_logging(#{level => info}),
    ok = py:configure_logging(),
    {ok, 1} = py:eval(<<"sum(isinstance(h, erlang.ErlangHandler) "
                        "for h in logging.getLogger().handlers)">>),
    exec_marked(["logging.getLogger('t.twice').error('once')"]),
    [{error, <<"t.twice">>, <<"once">>, _}] = events_to_marker().

%% @doc Records logged by a threading.Thread arrive, with that thread's name.
-spec from_threading_thread(ct_suite:ct_config()) -> term().
from_threading_thread(_Config) ->
    exec([
        "import threading",
        "_t = threading.Thread(target=lambda: logging.getLogger('t.th').info('from thread'),",
        "                      name='py-worker-x')",
        "_t.start(); _t.join()"
    ]),
    {info, <<"t.th">>, <<"from thread">>, #{<<"threadName">> := <<"py-worker-x">>}} =
        next_event().

%% @doc Records logged by an asyncio task arrive (with the task name on 3.12+).
-spec from_asyncio_task(ct_suite:ct_config()) -> term().
from_asyncio_task(_Config) ->
    %% asyncio logs its selector choice at debug level.
    ok = py:configure_logging(#{level => info}),
    exec([
        "import asyncio",
        "async def _task():",
        "    logging.getLogger('t.aio').info('from task')",
        "async def _main():",
        "    await asyncio.create_task(_task(), name='log-task')",
        "asyncio.run(_main())"
    ]),
    {info, <<"t.aio">>, <<"from task">>, Meta} = next_event(),
    case py:eval(<<"__import__('sys').version_info >= (3, 12)">>) of
        {ok, true} -> #{<<"taskName">> := <<"log-task">>} = Meta;
        {ok, false} -> ok
    end.

%% @doc Records logged from a concurrent.futures pool and from several executors at once
%% all arrive.
-spec from_concurrent_executor(ct_suite:ct_config()) -> term().
from_concurrent_executor(_Config) ->
    exec([
        "import concurrent.futures",
        "with concurrent.futures.ThreadPoolExecutor(4) as _ex:",
        "    list(_ex.map(lambda i: logging.getLogger('t.pool').info('job %d', i), range(8)))"
    ]),
    Pool = lists:sort([Msg || {info, <<"t.pool">>, Msg, _} <- [next_event() || _ <- lists:seq(1, 8)]]),
    8 = length(Pool),
    Parent = self(),
    Ns = lists:seq(1, 4),
    %% Eval locals land in the shared namespace (erlang-api.md, eval/1,2,3): concurrent evals
    %% use a name each, or they could read each other's value.
    _ = [spawn_link(fun() ->
            Name = iolist_to_binary(["n", integer_to_list(N)]),
            Parent ! {done, N,
                      py:eval(<<"logging.getLogger('t.exec').info('executor %d', ", Name/binary,
                                ")">>,
                              #{Name => N})}
         end) || N <- Ns],
    [receive {done, N, {ok, none}} -> ok after 5000 -> ct:fail({no_reply, N}) end || N <- Ns],
    Execs = lists:sort([Msg || {info, <<"t.exec">>, Msg, _} <- [next_event() || _ <- Ns]]),
    Execs = lists:sort([iolist_to_binary(["executor ", integer_to_list(N)]) || N <- Ns]).

%% @doc logger.exception forwards the traceback as text, in the message and in exc_text.
-spec exception_text(ct_suite:ct_config()) -> term().
exception_text(_Config) ->
    exec([
        "try:",
        "    1 / 0",
        "except ZeroDivisionError:",
        "    logging.getLogger('t.exc').exception('it failed')"
    ]),
    {error, <<"t.exc">>, <<"it failed\n", Trace/binary>>, #{<<"exc_text">> := ExcText}} =
        next_event(),
    {match, _} = re:run(ExcText, <<"ZeroDivisionError: division by zero">>),
    {match, _} = re:run(Trace, <<"Traceback">>).

%% @doc The format option is a logging.Formatter format, passed as data: quotes and braces
%% in it are not code.
-spec format_option(ct_suite:ct_config()) -> term().
format_option(_Config) ->
    ok = py:configure_logging(#{format => "[%(levelname)s] %(name)s: %(message)s ') + 1 + ('"}),
    exec(["logging.getLogger('t.fmt').info('formatted')"]),
    {info, <<"t.fmt">>, <<"[INFO] t.fmt: formatted ') + 1 + ('">>, _} = next_event().

%% @doc 100,000 records with py_logger suspended: Python returns, records past the bound are
%% dropped and counted, in-flight never exceeds the bound; after resume everything drains.
-spec burst_drops_and_counts(ct_suite:ct_config()) -> term().
burst_drops_and_counts(_Config) ->
    #{dropped := Dropped0, max_in_flight := Max} = py:logging_stats(),
    ok = sys:suspend(py_logger),
    try
        exec([
            "_b = logging.getLogger('t.burst')",
            "for _i in range(100000):",
            "    _b.info('burst %d', _i)"
        ]),
        #{dropped := Dropped1, in_flight := InFlight} = py:logging_stats(),
        true = InFlight =< Max,
        Max = InFlight,
        100000 = Dropped1 - Dropped0 + InFlight
    after
        ok = sys:resume(py_logger)
    end,
    ok = py_test_util:wait_until(fun() -> maps:get(in_flight, py:logging_stats()) =:= 0 end,
                                 30000),
    py_test_util:flush().

%% @doc Bad options raise badarg; bad _log arguments raise TypeError in Python.
-spec bad_inputs(ct_suite:ct_config()) -> term().
bad_inputs(_Config) ->
    {'EXIT', {badarg, _}} = catch py:configure_logging(#{level => loud}),
    {'EXIT', {badarg, _}} = catch py:configure_logging(#{format => 42}),
    {'EXIT', {badarg, _}} = catch py:configure_logging(not_a_map),
    {error, {'TypeError', _}} = py:eval(<<"erlang._native._log('x', 'n', 'm', {})">>),
    {error, {'TypeError', _}} = py:eval(<<"erlang._native._log(20, 1, 'm', {})">>),
    {error, {'TypeError', _}} = py:eval(<<"erlang._native._log(20, 'n', 'm', [])">>),
    #{threshold := 10} = py:logging_stats().
