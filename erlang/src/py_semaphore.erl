%% @doc Counting semaphore that limits the number of concurrent {@link py:call/5} requests.
%%
%% The count lives in a NIF resource published in `persistent_term': `acquire/1' and
%% `release/0' are one NIF call each in the calling process, on the path of every `py:call'.
%% Because each is a single NIF call, a process killed at any moment cannot leave a slot half
%% taken; and the semaphore monitors the processes holding slots, so the slots of a holder that
%% dies (an `after' clause does not run on a kill) are given back. Slots taken and given back by
%% different processes are allowed, as in erlang_python 1.6; the count never goes below 0.
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
-define(FIRST_BACKOFF, 5).
-define(MAX_BACKOFF, 50).

%%% API

%% @doc Take a slot, waiting up to `Timeout' milliseconds for one to be free.
%%
%% While the semaphore is full the caller sleeps with a backoff that starts at 5 ms, doubles up
%% to 50 ms and has a random part, then retries until the deadline. `0' makes a single attempt;
%% a `Timeout' that is neither `infinity' nor a non-negative integer means 30000. Raises
%% `badarg' when the semaphore does not exist (the application is not running).
-spec acquire(timeout() | term()) -> ok | {error, max_concurrent}.
acquire(Timeout) ->
    case try_acquire() of
        ok -> ok;
        full -> acquire_until(deadline(Timeout), ?FIRST_BACKOFF)
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

-spec try_acquire() -> ok | full.
try_acquire() ->
    py_nif:semaphore_try_acquire(persistent_term:get(?PY_SEMAPHORE_KEY)).

-spec deadline(term()) -> integer() | infinity.
deadline(infinity) ->
    infinity;
deadline(Timeout) when is_integer(Timeout), Timeout >= 0 ->
    now_ms() + Timeout;
deadline(_) ->
    now_ms() + ?DEFAULT_TIMEOUT.

-spec acquire_until(integer() | infinity, pos_integer()) -> ok | {error, max_concurrent}.
acquire_until(Deadline, Backoff) ->
    case remaining(Deadline) of
        0 ->
            {error, max_concurrent};
        Remaining ->
            timer:sleep(min(Remaining, Backoff + rand:uniform(Backoff div 2 + 1))),
            case try_acquire() of
                ok -> ok;
                full -> acquire_until(Deadline, min(Backoff * 2, ?MAX_BACKOFF))
            end
    end.

-spec remaining(integer() | infinity) -> non_neg_integer() | infinity.
remaining(infinity) ->
    infinity;
remaining(Deadline) ->
    max(0, Deadline - now_ms()).

-spec now_ms() -> integer().
now_ms() ->
    erlang:monotonic_time(millisecond).
