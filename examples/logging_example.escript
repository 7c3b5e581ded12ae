#!/usr/bin/env escript
%% -*- erlang -*-
%%! +pc unicode
%%
%% Python `logging` records in OTP `logger`, and trace spans from Python code
%% (docs/logging.md).
%%
%%   escript examples/logging_example.escript _build/py3.12/lib/erlang_python/ebin
%%
%% A logger handler installed here prints every record of the `[python]' domain with its level,
%% logger name and metadata, and forwards it to this process, which checks what arrived. Exits
%% non-zero when something else arrives.
-mode(compile).
%% The logger handler callback (logger calls it by module and name).
-export([log/2]).

main([Ebin | _]) ->
    ok = io:setopts(standard_io, [{encoding, unicode}]),
    try
        run(Ebin),
        io:format("~nall records arrived as expected~n"),
        halt(0)
    catch
        Class:Reason:Stack ->
            io:format(standard_error, "~nlogging example FAILED:~n  ~p:~tp~n  at ~p~n",
                      [Class, Reason, hd(Stack ++ [unknown])]),
            halt(1)
    end;
main(_) ->
    io:format(standard_error,
              "usage: escript examples/logging_example.escript <erlang_python ebin>~n", []),
    halt(2).

run(Ebin) ->
    true = code:add_patha(Ebin),
    {ok, _} = application:ensure_all_started(erlang_python),
    %% OTP's primary level is `notice' by default, which would hide Python's info records.
    ok = logger:set_primary_config(level, info),
    %% Python records go to our handler only, not to the default console handler.
    ok = logger:add_handler_filter(default, no_python,
                                   {fun logger_filters:domain/2, {stop, sub, [python]}}),
    ok = logger:add_handler(example, ?MODULE, #{
        config => #{pid => self()},
        filter_default => stop,
        filters => [{python, {fun logger_filters:domain/2, {log, sub, [python]}}}]
    }),

    %% One ErlangHandler on Python's root logger; records below `info' are dropped in native
    %% code before any Erlang term is built. Calling it again replaces the handler.
    ok = py:configure_logging(#{level => info, format => "%(name)s: %(message)s"}),

    ok = py:exec(<<
        "import logging, threading\n"
        "log = logging.getLogger('shop.orders')\n"
        "def place(order_id):\n"
        "    log.debug('not shown: below the threshold')\n"
        "    log.info('order %s placed', order_id, extra={'order_id': order_id})\n"
        "    try:\n"
        "        {}['missing']\n"
        "    except KeyError:\n"
        "        log.exception('order %s failed', order_id)\n"
        "place(42)\n"
        "t = threading.Thread(target=log.warning, args=('from a thread',))\n"
        "t.start(); t.join()\n"
    >>),

    {info, <<"shop.orders: order 42 placed">>, #{<<"extra">> := #{<<"order_id">> := 42}}} =
        next_record(),
    {error, <<"shop.orders: order 42 failed\nTraceback", _/binary>>,
     #{<<"exc_text">> := _}} = next_record(),
    {warning, <<"shop.orders: from a thread">>, #{<<"threadName">> := _}} = next_record(),
    receive {record, Unexpected} -> error({unexpected, Unexpected}) after 200 -> ok end,

    #{dropped := Dropped, in_flight := InFlight} = py:logging_stats(),
    io:format("~npy:logging_stats(): dropped ~b, in flight ~b~n", [Dropped, InFlight]),

    tracing(),
    ok = application:stop(erlang_python).

%% Spans: nested blocks of work timed in Python, collected in Erlang, under a parent span that
%% the Erlang caller gives.
tracing() ->
    ok = py:enable_tracing(),
    ok = py:exec(<<
        "import asyncio, erlang\n"
        "@erlang.trace()\n"
        "async def price(item):\n"
        "    await asyncio.sleep(0.01)\n"
        "    return 10\n"
        "def checkout(items):\n"
        "    with erlang.Span('checkout', items=len(items)) as span:\n"
        "        async def all_prices():\n"
        "            return await asyncio.gather(*(price(i) for i in items))\n"
        "        total = sum(asyncio.run(all_prices()))\n"
        "        span.event('priced', total=total)\n"
        "        return total\n"
    >>),
    TraceId = 16#4bf92f3577b34da6a3ce929d0e0e4736,
    ParentSpan = 16#00f067aa0ba902b7,
    {ok, 20} = py:with_trace_parent({TraceId, ParentSpan}, fun() ->
        py:call('__main__', checkout, [[<<"tea">>, <<"ink">>]])
    end),
    {ok, Spans} = py:get_traces(),
    io:format("~npy:get_traces(), in completion order:~n"),
    [io:format("  ~-18ts ~6b us  status ~p  parent ~.16b~n",
               [Name, Duration, Status, parent_or_zero(Parent)])
     || #{name := Name, duration_us := Duration, status := Status, parent_id := Parent} <- Spans],
    %% Both price spans (children, finished first) and then checkout, all in the Erlang
    %% caller's trace.
    [#{name := <<"__main__.price">>, parent_id := CheckoutId, trace_id := TraceId},
     #{name := <<"__main__.price">>, parent_id := CheckoutId},
     #{name := <<"checkout">>, span_id := CheckoutId, parent_id := ParentSpan,
       events := [#{name := <<"priced">>, attrs := #{<<"total">> := 20}}]}] = Spans,
    ok = py:disable_tracing().

parent_or_zero(undefined) -> 0;
parent_or_zero(Id) -> Id.

next_record() ->
    receive
        {record, Record} -> Record
    after 5000 ->
        error(no_record)
    end.

%% The logger handler callback.
log(#{level := Level, msg := {Format, Args}, meta := Meta}, #{config := #{pid := Pid}}) ->
    #{py_logger := Name, py_meta := PyMeta} = Meta,
    Text = unicode:characters_to_binary(io_lib:format(Format, Args)),
    io:format("~-8s ~ts (~ts:~p)~n  ~ts~n",
              [Level, Name, maps:get(<<"funcName">>, PyMeta), maps:get(<<"lineno">>, PyMeta),
               Text]),
    Pid ! {record, {Level, Text, PyMeta}},
    ok.
