%% @private
%% @doc Collects the spans that Python code finishes (`erlang.Span', `erlang.trace').
%%
%% Started by `erlang_python_sup' before `py_pool', it registers itself with the NIF as the
%% receiver of `{py_span, SpanMap}' messages, which Python threads send without waiting when a
%% span ends (see `rust/nif/src/trace.rs'); the NIF sends nothing while tracing is off. An
%% executor sends the spans of a request before its reply, so a call made after that reply
%% (`py:get_traces/0') is handled after them. Handled spans are acknowledged to the NIF in
%% batches ({@link py_outbox}); the NIF drops (and counts) spans past `trace_max_in_flight'
%% unacknowledged ones.
%%
%% Completed spans are kept in completion order, at most `trace_max_spans' of them: past that
%% the oldest is dropped and counted.
%%
%% Application variables read at start (defaults: {@link py_config:default/1}):
%% `trace_max_spans' and `trace_max_in_flight'.
-module(py_tracer).
-behaviour(gen_server).

-export([start_link/0, enable/0, disable/0, get_spans/0, clear/0, stats/0]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).

-export_type([span/0, stats/0]).

%% A completed span (docs/logging.md#tracing).
-type span() :: #{
    name := binary(),
    trace_id := non_neg_integer(),
    span_id := non_neg_integer(),
    parent_id := non_neg_integer() | undefined,
    attributes := #{binary() => term()},
    start_time := integer(),
    end_time := integer(),
    duration_us := integer(),
    status := ok | error,
    end_attrs := #{binary() => term()},
    events := [#{name := binary(), attrs := #{binary() => term()}, time := integer()}]
}.
-type stats() :: #{
    enabled := boolean(),
    stored := non_neg_integer(),
    max_spans := pos_integer(),
    dropped := non_neg_integer(),
    in_flight := non_neg_integer(),
    max_in_flight := pos_integer(),
    dropped_in_flight := non_neg_integer()
}.

-record(state, {
    spans = queue:new() :: queue:queue(span()),
    stored = 0 :: non_neg_integer(),
    max_spans :: pos_integer(),
    dropped = 0 :: non_neg_integer(),
    pending = 0 :: non_neg_integer()
}).

%% @doc Start the collector, registered as `py_tracer'.
-spec start_link() -> {ok, pid()} | {error, term()}.
start_link() ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

%% @doc Record the spans Python finishes from now on.
-spec enable() -> ok.
enable() ->
    gen_server:call(?MODULE, enable).

%% @doc Stop recording spans; those collected are kept.
-spec disable() -> ok.
disable() ->
    gen_server:call(?MODULE, disable).

%% @doc The collected spans, in completion order.
-spec get_spans() -> {ok, [span()]}.
get_spans() ->
    gen_server:call(?MODULE, get_spans).

%% @doc Drop the collected spans and those already on their way here.
-spec clear() -> ok.
clear() ->
    gen_server:call(?MODULE, clear).

%% @doc Counters: see {@link py:tracing_stats/0}.
-spec stats() -> stats().
stats() ->
    gen_server:call(?MODULE, stats).

%% @private
-spec init([]) -> {ok, #state{}}.
init([]) ->
    process_flag(trap_exit, true),
    Max = py_config:get(trace_max_spans),
    InFlight = py_config:get(trace_max_in_flight),
    ok = py_nif:trace_set_max_in_flight(positive(trace_max_in_flight, InFlight)),
    ok = py_nif:trace_set_receiver(self()),
    {ok, #state{max_spans = positive(trace_max_spans, Max)}}.

%% @private
%% Every call first acknowledges the spans handled so far: when it returns, every span that
%% reached py_tracer before it is stored and acknowledged.
-spec handle_call(term(), gen_server:from(), #state{}) -> {reply, term(), #state{}}.
handle_call(Request, From, #state{pending = Pending} = State) when Pending > 0 ->
    ok = py_nif:trace_ack(Pending),
    handle_call(Request, From, State#state{pending = 0});
handle_call(enable, _From, State) ->
    {reply, py_nif:trace_enable(true), State};
handle_call(disable, _From, State) ->
    {reply, py_nif:trace_enable(false), State};
handle_call(get_spans, _From, #state{spans = Spans} = State) ->
    {reply, {ok, queue:to_list(Spans)}, State};
handle_call(clear, _From, State) ->
    ok = py_nif:trace_ack(flush_spans(0)),
    {reply, ok, State#state{spans = queue:new(), stored = 0}};
handle_call(stats, _From, State) ->
    #{enabled := Enabled, dropped := DroppedInFlight, in_flight := InFlight,
      max_in_flight := MaxInFlight} = py_nif:trace_stats(),
    Stats = #{
        enabled => Enabled,
        stored => State#state.stored,
        max_spans => State#state.max_spans,
        dropped => State#state.dropped,
        in_flight => InFlight,
        max_in_flight => MaxInFlight,
        dropped_in_flight => DroppedInFlight
    },
    {reply, Stats, State};
handle_call(_Request, _From, State) ->
    {reply, {error, badarg}, State}.

%% @private
-spec handle_cast(term(), #state{}) -> {noreply, #state{}}.
handle_cast(_Msg, State) ->
    {noreply, State}.

%% @private
-spec handle_info(term(), #state{}) -> {noreply, #state{}} | {noreply, #state{}, timeout()}.
handle_info({py_span, Span}, #state{pending = Pending} = State0) ->
    State = store(Span, State0),
    {Left, Timeout} = py_outbox:handled(Pending, fun py_nif:trace_ack/1),
    {noreply, State#state{pending = Left}, Timeout};
handle_info(timeout, #state{pending = Pending} = State) ->
    ok = py_nif:trace_ack(Pending),
    {noreply, State#state{pending = 0}};
handle_info(_Msg, State) ->
    {noreply, State}.

%% @private
-spec terminate(term(), #state{}) -> ok.
terminate(_Reason, _State) ->
    ok = py_nif:trace_enable(false),
    py_nif:trace_set_receiver(undefined).

%%% Internal

-spec store(term(), #state{}) -> #state{}.
store(Span, #state{spans = Spans, stored = Stored, max_spans = Max} = State) when
    is_map(Span)
->
    case Stored < Max of
        true ->
            State#state{spans = queue:in(Span, Spans), stored = Stored + 1};
        false ->
            {_, Rest} = queue:out(Spans),
            State#state{spans = queue:in(Span, Rest), dropped = State#state.dropped + 1}
    end;
store(_NotASpan, State) ->
    State.

%% Takes every span already in the mailbox; returns how many.
-spec flush_spans(non_neg_integer()) -> non_neg_integer().
flush_spans(N) ->
    receive
        {py_span, _} -> flush_spans(N + 1)
    after 0 -> N
    end.

-spec positive(atom(), term()) -> pos_integer().
positive(_Key, N) when is_integer(N), N > 0 ->
    N;
positive(Key, Other) ->
    exit({bad_config, {Key, Other}}).
