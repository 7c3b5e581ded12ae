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
%% Application variables read at start (defaults: {@link py_config:default/1}): `log_level'
%% (`debug' | `info' | `warning' | `error' | `critical': the native threshold),
%% `log_max_in_flight' and `nif_log_level' (`debug' | `info' | `warning' | `error' | `none': the
%% most verbose diagnostics of the NIF that are sent).
-module(py_logger).
-behaviour(gen_server).

-export([start_link/0, level_number/1, level_atom/1]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).

-type level() :: debug | info | warning | error | critical.
-export_type([level/0]).

-record(state, {pending = 0 :: non_neg_integer()}).

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

%% @private
-spec init([]) -> {ok, #state{}}.
init([]) ->
    process_flag(trap_exit, true),
    Level = config(log_level, fun(L) -> is_atom(L) andalso level_number(L) end),
    Max = config(log_max_in_flight, fun(N) -> is_integer(N) andalso N > 0 andalso N end),
    ok = py_nif:log_set_max_in_flight(Max),
    ok = py_nif:log_set_receiver(self(), Level),
    NifLevel = config(nif_log_level, fun(L) ->
                                             lists:member(L, [debug, info, warning, error, none])
                                                 andalso L
                                     end),
    ok = py_nif:log_set_diagnostics(self(), NifLevel),
    {ok, #state{}}.

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
terminate(_Reason, _State) ->
    #{threshold := Threshold} = py_nif:log_stats(),
    ok = py_nif:log_set_diagnostics(undefined, info),
    py_nif:log_set_receiver(undefined, Threshold).

-spec forward(integer(), binary(), binary(), map(), integer()) -> ok.
forward(Level, Name, Msg, Meta, Ts) ->
    logger:log(level_atom(Level), "~ts", [Msg], #{
        domain => [python],
        py_logger => Name,
        py_meta => Meta,
        time => Ts
    }).
