%% @doc Counting semaphore that limits the number of concurrent {@link py:call/5} requests.
%%
%% The count lives in a NIF resource published in `persistent_term': `acquire/1' and
%% `release/0' are one NIF call each in the calling process, on the path of every `py:call'.
%% Because each is a single NIF call, a process killed at any moment cannot leave a slot half
%% taken; and the semaphore monitors the processes holding slots, so the slots of a holder that
%% dies (an `after' clause does not run on a kill) are given back. Slots taken and given back by
%% different processes are allowed, as in erlang_python 1.6; the count never goes below 0.
%%
%% Fair: a caller that finds no free slot waits in one FIFO queue kept by the semaphore, and a
%% slot given back goes straight to the longest waiter, which is sent `{'$py_semaphore', Id}';
%% `{error, max_concurrent}' means the caller's time ran out while every slot stayed taken.
%%
%% The owner is a small process started first under `erlang_python_sup' ({@link start_link/0}).
%% It creates the semaphore and removes it when the application stops, so each start begins
%% with no slot taken and the default limit: the `max_concurrent' application variable when
%% that is a positive integer, else `erlang:system_info(schedulers) * 2 + 1'.
-module(py_semaphore).
-behaviour(gen_server).

-include("py_keys.hrl").

-export([
    acquire/1,
    release/0,
    max_concurrent/0,
    current/0,
    set_max_concurrent/1
]).
-export([start_link/0]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).

-define(DEFAULT_TIMEOUT, 30000).

%%% API

%% @doc Take a slot, waiting up to `Timeout' milliseconds for one to be free.
%%
%% While the semaphore is full the caller waits in line: slots are handed out in the order
%% callers started waiting. `0' makes a single attempt (which fails while others wait); a
%% `Timeout' that is neither `infinity' nor a non-negative integer means 30000. Raises `badarg'
%% when the semaphore does not exist (the application is not running).
-spec acquire(timeout() | term()) -> ok | {error, max_concurrent}.
acquire(0) ->
    case py_nif:semaphore_try_acquire(semaphore()) of
        ok -> ok;
        full -> {error, max_concurrent}
    end;
acquire(Timeout) ->
    Sem = semaphore(),
    case py_nif:semaphore_acquire(Sem) of
        ok -> ok;
        {wait, Id} -> wait(Sem, Id, wait_time(Timeout));
        full -> {error, max_concurrent}
    end.

%% @doc Give a slot back. The count never goes below 0. Also `ok' when the semaphore is gone
%% (the application stopped while the caller held a slot).
-spec release() -> ok.
release() ->
    case persistent_term:get(?PY_SEMAPHORE_KEY, undefined) of
        undefined -> ok;
        Sem -> py_nif:semaphore_release(Sem)
    end.

%% @doc The current limit.
-spec max_concurrent() -> pos_integer().
max_concurrent() ->
    py_nif:semaphore_max(persistent_term:get(?PY_SEMAPHORE_KEY)).

%% @doc The number of slots taken.
-spec current() -> non_neg_integer().
current() ->
    py_nif:semaphore_current(persistent_term:get(?PY_SEMAPHORE_KEY)).

%% @doc Change the limit. It takes effect at once; slots already taken are kept.
-spec set_max_concurrent(pos_integer()) -> ok.
set_max_concurrent(Max) when is_integer(Max), Max > 0 ->
    py_nif:semaphore_set_max(persistent_term:get(?PY_SEMAPHORE_KEY), Max).

%% @private
%% @doc Start the process that owns the semaphore (a child of `erlang_python_sup').
-spec start_link() -> {ok, pid()}.
start_link() ->
    gen_server:start_link(?MODULE, [], []).

%%% gen_server callbacks: the owner, which publishes the semaphore for its lifetime.

%% @private
-spec init([]) -> {ok, undefined}.
init([]) ->
    %% Trap exits so that terminate/2 runs when the supervisor shuts us down.
    process_flag(trap_exit, true),
    %% Always a fresh semaphore, whatever a previous run left.
    ok = create(),
    {ok, undefined}.

%% @private
-spec handle_call(term(), gen_server:from(), undefined) ->
    {reply, {error, unknown_call}, undefined}.
handle_call(_Request, _From, State) ->
    {reply, {error, unknown_call}, State}.

%% @private
-spec handle_cast(term(), undefined) -> {noreply, undefined}.
handle_cast(_Msg, State) ->
    {noreply, State}.

%% @private
%% Exits are trapped only so that terminate/2 runs: an exit signal still stops the process.
-spec handle_info(term(), undefined) -> {noreply, undefined} | {stop, term(), undefined}.
handle_info({'EXIT', _From, Reason}, State) when Reason =/= normal ->
    {stop, Reason, State};
handle_info(_Info, State) ->
    {noreply, State}.

%% @private
-spec terminate(term(), undefined) -> ok.
terminate(_Reason, _State) ->
    %% Callers waiting for a slot go on at once (and find the pool stopped).
    ok = py_nif:semaphore_close(semaphore()),
    _ = persistent_term:erase(?PY_SEMAPHORE_KEY),
    ok.

%%% Internal

-spec create() -> ok.
create() ->
    persistent_term:put(?PY_SEMAPHORE_KEY, py_nif:semaphore_new(default_max())).

-spec default_max() -> pos_integer().
default_max() ->
    case py_config:find(max_concurrent) of
        {ok, Max} when is_integer(Max), Max > 0 -> Max;
        _ -> py_config:default(max_concurrent)
    end.

-spec semaphore() -> py_nif:semaphore().
semaphore() ->
    persistent_term:get(?PY_SEMAPHORE_KEY).

-spec wait_time(term()) -> timeout().
wait_time(infinity) -> infinity;
wait_time(Timeout) when is_integer(Timeout), Timeout >= 0 -> Timeout;
wait_time(_) -> ?DEFAULT_TIMEOUT.

%% Waits in line for the slot of wait `Id'; when the time runs out, leaves the line, unless
%% the slot was handed over meanwhile (then its message is taken and the slot kept).
-spec wait(py_nif:semaphore(), pos_integer(), timeout()) -> ok | {error, max_concurrent}.
wait(Sem, Id, Timeout) ->
    receive
        {'$py_semaphore', Id} -> ok
    after Timeout ->
        case py_nif:semaphore_cancel(Sem, Id) of
            cancelled ->
                {error, max_concurrent};
            granted ->
                receive
                    {'$py_semaphore', Id} -> ok
                end
        end
    end.
