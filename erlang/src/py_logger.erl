%% @private
%% @doc Receives Python `logging' records and hands them to OTP `logger'.
%%
%% Started by `erlang_python_sup' before `py_pool', it registers itself with the NIF as the
%% receiver of `{py_log, Level, LoggerName, Message, Meta, TimestampUs}' messages, which Python
%% threads send without waiting (see `rust/nif/src/log.rs'). Each record becomes
%% `logger:log(Level, "~ts", [Message], #{domain => [python], py_logger => LoggerName,
%% py_meta => Meta, time => TimestampUs})'. Handled records are acknowledged to the NIF in
%% batches ({@link py_outbox}); the NIF drops (and counts) records past `log_max_in_flight'
%% unacknowledged ones, so a Python burst never grows this mailbox without bound.
%%
%% It also receives the NIF's own diagnostics (the Rust `log' crate: interpreter start-up,
%% failures), `{py_nif_log, Level, Target, Message}', and logs them with
%% `#{domain => [erlang_python, nif], target => Target}'.
%%
%% OTP's `default' handler has filters that stop every event whose domain is not `[otp]',
%% `[otp, sasl]' or none, which would hide all of the above (and the `[erlang_python]'
%% warnings of `py_config') in a plain `erl'. So while it runs, `py_logger' adds the handler
%% filter `erlang_python' ({@link domain_filter/2}) to that handler, if it exists, letting these
%% domains through; it removes the filter when it stops. The filter passes only events of its
%% domains and leaves every other event to the handler's own filters (docs/logging.md).
%%
%% Application variables read at start (defaults: {@link py_config:default/1}): `log_level'
%% (`debug' | `info' | `warning' | `error' | `critical': the native threshold),
%% `log_max_in_flight', `nif_log_level' (`debug' | `info' | `warning' | `error' | `none': the
%% most verbose diagnostics of the NIF that are sent) and `default_handler_filter' (boolean:
%% add the filter above).
-module(py_logger).
-behaviour(gen_server).

-export([start_link/0, level_number/1, level_atom/1, domain_filter/2]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).

-type level() :: debug | info | warning | error | critical.
-export_type([level/0]).

%% The handler that gets the filter, the filter's id, and the domains it lets through (and
%% their sub-domains): Python records, the NIF's diagnostics and the application's own events.
-define(DEFAULT_HANDLER, default).
-define(FILTER_ID, erlang_python).
-define(DOMAINS, [[python], [erlang_python]]).

-record(state, {
    pending = 0 :: non_neg_integer(),
    %% Whether this process added the filter to the default handler (and removes it).
    filter = false :: boolean()
}).

%% @doc Start the receiver, registered as `py_logger'.
-spec start_link() -> {ok, pid()} | {error, term()}.
start_link() ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

%% @doc Python's number for an OTP level name; `error(badarg)' for anything else.
-spec level_number(level()) -> 10 | 20 | 30 | 40 | 50.
level_number(debug) -> 10;
level_number(info) -> 20;
level_number(warning) -> 30;
level_number(error) -> 40;
level_number(critical) -> 50;
level_number(Other) -> error(badarg, [Other]).

%% @doc The OTP level of a Python level number: up to 10 `debug', 20 `info', 30 `warning',
%% 40 `error', above `critical'.
-spec level_atom(integer()) -> level().
level_atom(N) when N =< 10 -> debug;
level_atom(N) when N =< 20 -> info;
level_atom(N) when N =< 30 -> warning;
level_atom(N) when N =< 40 -> error;
level_atom(_) -> critical.

%% @doc The logger filter that lets erlang_python's events through OTP's `default' handler:
%% an event whose domain is one of `Domains', or a sub-domain of one, is logged (returned);
%% any other is left to the handler's other filters (`ignore').
-spec domain_filter(logger:log_event(), [[atom()]]) -> logger:filter_return().
domain_filter(#{meta := #{domain := Domain}} = Event, Domains) when is_list(Domain) ->
    case lists:any(fun(Prefix) -> lists:prefix(Prefix, Domain) end, Domains) of
        true -> Event;
        false -> ignore
    end;
domain_filter(_Event, _Domains) ->
    ignore.

%% @private
-spec init([]) -> {ok, #state{}}.
init([]) ->
    process_flag(trap_exit, true),
    {filter, Add} = config(default_handler_filter, fun(B) ->
                                                       is_boolean(B) andalso {filter, B}
                                               end),
    Level = config(log_level, fun(L) -> is_atom(L) andalso level_number(L) end),
    Max = config(log_max_in_flight, fun(N) -> is_integer(N) andalso N > 0 andalso N end),
    ok = py_nif:log_set_max_in_flight(Max),
    ok = py_nif:log_set_receiver(self(), Level),
    NifLevel = config(nif_log_level, fun(L) ->
                                             lists:member(L, [debug, info, warning, error, none])
                                                 andalso L
                                     end),
    ok = py_nif:log_set_diagnostics(self(), NifLevel),
    {ok, #state{filter = Add andalso add_default_filter()}}.

%% The application variable `Key' as `Check' makes it, or `{bad_config, {Key, Value}}' (the
%% application does not start) when `Check' gives false or raises.
-spec config(atom(), fun((term()) -> false | T)) -> T.
config(Key, Check) ->
    Value = py_config:get(Key),
    try Check(Value) of
        false -> exit({bad_config, {Key, Value}});
        Checked -> Checked
    catch
        error:_ -> exit({bad_config, {Key, Value}})
    end.

%% @private
-spec handle_call(term(), gen_server:from(), #state{}) -> {reply, {error, badarg}, #state{}}.
handle_call(_Request, _From, State) ->
    {reply, {error, badarg}, State}.

%% @private
-spec handle_cast(term(), #state{}) -> {noreply, #state{}}.
handle_cast(_Msg, State) ->
    {noreply, State}.

%% @private
-spec handle_info(term(), #state{}) -> {noreply, #state{}} | {noreply, #state{}, timeout()}.
handle_info({py_log, Level, Name, Msg, Meta, Ts}, #state{pending = Pending} = State) ->
    forward(Level, Name, Msg, Meta, Ts),
    {Left, Timeout} = py_outbox:handled(Pending, fun py_nif:log_ack/1),
    {noreply, State#state{pending = Left}, Timeout};
handle_info({py_nif_log, Level, Target, Msg}, #state{pending = Pending} = State) ->
    logger:log(Level, "~ts", [Msg], #{domain => [erlang_python, nif], target => Target}),
    {noreply, State, py_outbox:idle_timeout(Pending)};
handle_info(timeout, #state{pending = Pending} = State) ->
    ok = py_nif:log_ack(Pending),
    {noreply, State#state{pending = 0}};
handle_info(_Msg, State) ->
    {noreply, State}.

%% @private
-spec terminate(term(), #state{}) -> ok.
terminate(_Reason, #state{filter = Filter}) ->
    #{threshold := Threshold} = py_nif:log_stats(),
    ok = py_nif:log_set_diagnostics(undefined, info),
    ok = py_nif:log_set_receiver(undefined, Threshold),
    case Filter of
        true -> remove_default_filter();
        false -> ok
    end.

%% Adds the filter to the default handler if it exists; true when the filter is there now
%% (also when it was already: left by a predecessor killed before its terminate/2 ran).
-spec add_default_filter() -> boolean().
add_default_filter() ->
    Filter = {fun ?MODULE:domain_filter/2, ?DOMAINS},
    case logger:add_handler_filter(?DEFAULT_HANDLER, ?FILTER_ID, Filter) of
        ok -> true;
        {error, {already_exist, ?FILTER_ID}} -> true;
        {error, _NoDefaultHandler} -> false
    end.

%% The default handler may be gone by now (removed or reconfigured by the user): nothing to do.
-spec remove_default_filter() -> ok.
remove_default_filter() ->
    _ = logger:remove_handler_filter(?DEFAULT_HANDLER, ?FILTER_ID),
    ok.

-spec forward(integer(), binary(), binary(), map(), integer()) -> ok.
forward(Level, Name, Msg, Meta, Ts) ->
    logger:log(level_atom(Level), "~ts", [Msg], #{
        domain => [python],
        py_logger => Name,
        py_meta => Meta,
        time => Ts
    }).
