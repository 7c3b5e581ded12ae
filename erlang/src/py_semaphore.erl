%% @doc Counting semaphore that limits the number of concurrent {@link py:call/5} requests.
%%
%% The count and the limit live in an `atomics' array published in `persistent_term', so
%% `acquire/1' and `release/0' are a few atomic operations in the calling process. This is on
%% the path of every `py:call'. Measured on the 2-core build machine (OTP 25, busy), one
%% acquire and release cost 0.44-0.69 us here, holder tracking included, and 0.7-1.0 us with
%% two processes calling at once; erlang_python 1.6's design (three operations on one shared
%% ETS row) costs 0.36-0.56 us alone but 3.6-7.9 us with two processes.
%%
%% A process killed while it holds slots cannot release them (an `after' clause does not run
%% on an exit signal). So each holder's slots are also counted in the ETS table
%% `py_semaphore', keyed by its pid, and the semaphore's owner monitors every process that has
%% taken a slot (it is told once per process) and gives back what a dead holder still held. A
%% kill landing between the two updates of one `acquire' or `release' can still cost or give
%% one slot. Slots taken and given back by different processes are allowed, as in 1.6, but
%% then a holder that dies can be credited twice; the count never goes below 0.
%%
%% The owner is a small process started first under `erlang_python_sup' ({@link start_link/0}).
%% It creates the semaphore, and removes it when the application stops, so each start begins
%% with no slot taken and the default limit: the `max_concurrent' application variable when
%% that is a positive integer, else `erlang:system_info(schedulers) * 2 + 1'.
-module(py_semaphore).
-behaviour(gen_server).

-export([
    init/0,
    acquire/1,
    release/0,
    max_concurrent/0,
    current/0,
    set_max_concurrent/1
]).
-export([start_link/0]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).

-define(KEY, {erlang_python, semaphore}).
%% Indexes in the atomics array.
-define(RUNNING, 1).
-define(MAX, 2).
%% Process dictionary key of a holder: the holder table of the semaphore that watches it.
-define(WATCHED, {?MODULE, watched}).
-define(DEFAULT_TIMEOUT, 30000).
-define(FIRST_BACKOFF, 5).
-define(MAX_BACKOFF, 50).

%% The owner that monitors holders, or undefined when init/0 created the semaphore outside
%% the application (then the calling process owns the table and nobody watches holders).
-record(sem, {
    counters :: atomics:atomics_ref(),
    holders :: ets:tid(),
    owner :: pid() | undefined
}).

%%% API

%% @doc Create the semaphore with no slot taken and the default limit. Idempotent: an existing
%% semaphore is left as it is. The application calls it; outside the application the calling
%% process owns the semaphore, and slots of killed holders are not given back.
-spec init() -> ok.
init() ->
    case persistent_term:get(?KEY, undefined) of
        undefined ->
            _ = create(undefined),
            ok;
        #sem{} ->
            ok
    end.

%% @doc Take a slot, waiting up to `Timeout' milliseconds for one to be free.
%%
%% While the semaphore is full the caller sleeps with a backoff that starts at 5 ms, doubles up
%% to 50 ms and has a random part, then retries until the deadline. `0' makes a single attempt;
%% a `Timeout' that is neither `infinity' nor a non-negative integer means 30000.
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
    case persistent_term:get(?KEY, undefined) of
        undefined ->
            ok;
        #sem{counters = Counters, holders = Holders} ->
            try ets:update_counter(Holders, self(), {2, -1, 0, 0}) of
                _ -> ok
            catch
                %% Not a holder (another process took the slot), or the table is gone.
                error:badarg -> ok
            end,
            decrement(Counters, 1)
    end.

%% @doc The current limit.
-spec max_concurrent() -> pos_integer().
max_concurrent() ->
    #sem{counters = Counters} = persistent_term:get(?KEY),
    atomics:get(Counters, ?MAX).

%% @doc The number of slots taken.
-spec current() -> non_neg_integer().
current() ->
    #sem{counters = Counters} = persistent_term:get(?KEY),
    atomics:get(Counters, ?RUNNING).

%% @doc Change the limit. It takes effect at once; slots already taken are kept.
-spec set_max_concurrent(pos_integer()) -> ok.
set_max_concurrent(Max) when is_integer(Max), Max > 0 ->
    #sem{counters = Counters} = persistent_term:get(?KEY),
    atomics:put(Counters, ?MAX, Max).

%% @private
%% @doc Start the process that owns the semaphore (a child of `erlang_python_sup').
-spec start_link() -> {ok, pid()}.
start_link() ->
    gen_server:start_link(?MODULE, [], []).

%%% gen_server callbacks: the owner of the table, which watches holders.

%% @private
-spec init([]) -> {ok, #sem{}}.
init([]) ->
    %% Trap exits so that terminate/2 runs when the supervisor shuts us down.
    process_flag(trap_exit, true),
    %% Always a fresh semaphore: one left by init/0 or by a killed predecessor has a table that
    %% dies with its owner and nobody watching its holders.
    {ok, create(self())}.

%% @private
-spec handle_call(term(), gen_server:from(), #sem{}) -> {reply, {error, unknown_call}, #sem{}}.
handle_call(_Request, _From, State) ->
    {reply, {error, unknown_call}, State}.

%% @private
-spec handle_cast(term(), #sem{}) -> {noreply, #sem{}}.
handle_cast({watch, Pid}, State) ->
    _ = erlang:monitor(process, Pid),
    {noreply, State};
handle_cast(_Msg, State) ->
    {noreply, State}.

%% @private
%% Exits are trapped only so that terminate/2 runs: an exit signal still stops the process.
-spec handle_info(term(), #sem{}) -> {noreply, #sem{}} | {stop, term(), #sem{}}.
handle_info({'DOWN', _Mref, process, Pid, _Reason}, State) ->
    #sem{counters = Counters, holders = Holders} = State,
    case ets:take(Holders, Pid) of
        [{Pid, Held}] when Held > 0 -> decrement(Counters, Held);
        _ -> ok
    end,
    {noreply, State};
handle_info({'EXIT', _From, Reason}, State) when Reason =/= normal ->
    {stop, Reason, State};
handle_info(_Info, State) ->
    {noreply, State}.

%% @private
-spec terminate(term(), #sem{}) -> ok.
terminate(_Reason, _State) ->
    %% The table dies with this process.
    _ = persistent_term:erase(?KEY),
    ok.

%%% Internal

-spec create(pid() | undefined) -> #sem{}.
create(Owner) ->
    Counters = atomics:new(2, [{signed, true}]),
    ok = atomics:put(Counters, ?MAX, default_max()),
    %% Each holder updates only its own row: write_concurrency spreads them over many locks.
    Holders = ets:new(?MODULE, [set, public, {write_concurrency, true}]),
    Sem = #sem{counters = Counters, holders = Holders, owner = Owner},
    persistent_term:put(?KEY, Sem),
    Sem.

-spec default_max() -> pos_integer().
default_max() ->
    case application:get_env(erlang_python, max_concurrent) of
        {ok, Max} when is_integer(Max), Max > 0 -> Max;
        _ -> erlang:system_info(schedulers) * 2 + 1
    end.

-spec try_acquire() -> ok | full.
try_acquire() ->
    #sem{counters = Counters} = Sem = persistent_term:get(?KEY),
    claim(Sem, atomics:get(Counters, ?RUNNING), atomics:get(Counters, ?MAX)).

%% Compare-and-swap rather than add-then-undo, so that current/0 never shows a failed attempt.
-spec claim(#sem{}, integer(), pos_integer()) -> ok | full.
claim(_Sem, Running, Max) when Running >= Max ->
    full;
claim(#sem{counters = Counters} = Sem, Running, Max) ->
    case atomics:compare_exchange(Counters, ?RUNNING, Running, Running + 1) of
        ok -> hold(Sem);
        Actual -> claim(Sem, Actual, Max)
    end.

%% Count the slot against the calling process, and have the owner watch it the first time.
-spec hold(#sem{}) -> ok.
hold(#sem{holders = Holders, owner = Owner}) ->
    Pid = self(),
    _ = ets:update_counter(Holders, Pid, {2, 1}, {Pid, 0}),
    case get(?WATCHED) of
        Holders ->
            ok;
        _ when Owner =:= undefined ->
            ok;
        _ ->
            _ = put(?WATCHED, Holders),
            gen_server:cast(Owner, {watch, Pid})
    end.

%% Compare-and-swap so that concurrent releases never take the count below 0.
-spec decrement(atomics:atomics_ref(), pos_integer()) -> ok.
decrement(Counters, N) ->
    Running = atomics:get(Counters, ?RUNNING),
    case atomics:compare_exchange(Counters, ?RUNNING, Running, max(0, Running - N)) of
        ok -> ok;
        _Changed -> decrement(Counters, N)
    end.

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
