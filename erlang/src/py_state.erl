%% @doc Shared state: a key-value store that Erlang processes and Python code (in every context
%% and thread) see alike.
%%
%% The store is the public ETS table `py_state' (`set', read and write concurrency), so every
%% operation runs in the calling process with no message passing. It is owned by a small
%% process of the application's supervision tree (started after `py_callback'), which creates
%% the table and registers the Python callbacks `state_get', `state_set', `state_delete',
%% `state_keys', `state_clear', `state_incr' and `state_decr'. The state therefore lives as long
%% as the application: it starts empty at every application start.
%%
%% Keys and values are any terms. Python always sends strings as binaries (`"k"' becomes
%% `<<"k">>'), so Erlang code must use binary keys to share an entry with Python.
%%
%% The store holds at most `state_max_keys' keys (application variable read at start, default
%% 100000). Creating a key past that bound returns `{error, {state_full, Max}}' (in Python, the
%% callback raises `erlang.ErlangError'); existing keys can always be updated, removed or
%% counted. The bound is exact under concurrency: a slot is reserved with an atomic counter
%% before a key is created.
%%
%% Counters ({@link incr/2}, {@link decr/2}) are atomic: concurrent increments from any number
%% of processes and Python threads never lose an update, including on a key that does not exist
%% yet. Counting on a key whose value is not an integer raises `badarg'.
%%
%% Every function raises `badarg' when the table does not exist (the application is not
%% running), as in erlang_python 1.6; the `py:state_*' wrappers return `{error, not_started}'
%% instead, as the rest of {@link py} does (see {@link if_running/1}).
-module(py_state).
-behaviour(gen_server).

-include("py_keys.hrl").

-export([
    init_tab/0,
    register_callbacks/0,
    fetch/1,
    store/2,
    remove/1,
    keys/0,
    clear/0,
    incr/1,
    incr/2,
    decr/1,
    decr/2
]).
-export([if_running/1]).
-export([start_link/0]).
%% The functions Python calls (registered by register_callbacks/0).
-export([
    state_get/1,
    state_set/1,
    state_delete/1,
    state_keys/1,
    state_clear/1,
    state_incr/1,
    state_decr/1
]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).

-define(TAB, py_state).
-define(CALLBACKS, [
    state_get, state_set, state_delete, state_keys, state_clear, state_incr, state_decr
]).

-type full() :: {error, {state_full, pos_integer()}}.
-export_type([full/0]).

%%% API

%% @doc Create the table if it does not exist; `ok' if it does. Idempotent.
%%
%% The application's `py_state' process does this when it starts, so callers never need it.
%% It is kept for erlang_python 1.6 compatibility, where the supervisor called it. Called
%% while the application is not running, it creates a table owned by the calling process
%% (which then lives as long as that process); the application then refuses to start while
%% that table exists.
-spec init_tab() -> ok.
init_tab() ->
    case ets:whereis(?TAB) of
        undefined -> create();
        _ -> ok
    end.

%% @doc Register the Python callbacks `state_get', `state_set', `state_delete', `state_keys',
%% `state_clear', `state_incr' and `state_decr' with `py_callback'. Idempotent (registering
%% again replaces them with the same functions).
%%
%% The application's `py_state' process does this when it starts; it is kept for erlang_python
%% 1.6 compatibility. Returns `{error, not_started}' when the application is not running.
-spec register_callbacks() -> ok | {error, not_started}.
register_callbacks() ->
    register_callbacks(?CALLBACKS).

%% @doc The value stored under `Key', or `{error, not_found}'.
-spec fetch(term()) -> {ok, term()} | {error, not_found}.
fetch(Key) ->
    case ets:lookup(?TAB, Key) of
        [{_, Value}] -> {ok, Value};
        [] -> {error, not_found}
    end.

%% @doc Store `Value' under `Key', replacing any previous value. Creating a key when the store
%% already holds `state_max_keys' keys returns `{error, {state_full, Max}}'.
-spec store(term(), term()) -> ok | full().
store(Key, Value) ->
    case ets:update_element(?TAB, Key, {2, Value}) of
        true -> ok;
        false -> store_new(Key, Value)
    end.

%% @doc Remove `Key' (also `ok' when it is not there).
-spec remove(term()) -> ok.
remove(Key) ->
    case ets:take(?TAB, Key) of
        [] -> ok;
        [_] -> release(1)
    end.

%% @doc Every key, in ETS order (`[]' when the store is empty).
-spec keys() -> [term()].
keys() ->
    ets:select(?TAB, [{{'$1', '_'}, [], ['$1']}]).

%% @doc Remove every key.
-spec clear() -> ok.
clear() ->
    %% Counting what select_delete removed (rather than resetting the counter) keeps the count
    %% right when keys are created concurrently.
    release(ets:select_delete(?TAB, [{'_', [], [true]}])).

%% @doc `incr(Key, 1)'.
-spec incr(term()) -> integer() | full().
incr(Key) ->
    incr(Key, 1).

%% @doc Add `N' to the integer stored under `Key' and return the new value, atomically. A
%% missing key counts from 0 (it is created holding `N'); raises `badarg' when the value is not
%% an integer. Creating a key past the bound returns `{error, {state_full, Max}}'.
-spec incr(term(), integer()) -> integer() | full().
incr(Key, N) when is_integer(N) ->
    try
        ets:update_counter(?TAB, Key, N)
    catch
        error:badarg -> incr_failed(Key, N)
    end.

%% @doc `incr(Key, -1)'.
-spec decr(term()) -> integer() | full().
decr(Key) ->
    incr(Key, -1).

%% @doc `incr(Key, -N)'.
-spec decr(term(), integer()) -> integer() | full().
decr(Key, N) when is_integer(N) ->
    incr(Key, -N).

%% @private
%% @doc Run `Op', a call of this module's API, or return `{error, not_started}' when the store
%% does not exist (the application is not running). A `badarg' of the store itself (counting
%% on a value that is not an integer) is raised as it is.
-spec if_running(fun(() -> T)) -> T | {error, not_started}.
if_running(Op) ->
    try
        Op()
    catch
        error:badarg:Stack ->
            case running() of
                true -> erlang:raise(error, badarg, Stack);
                false -> {error, not_started}
            end
    end.

%% @private
%% @doc Start the process that owns the table (a child of `erlang_python_sup').
-spec start_link() -> {ok, pid()} | {error, term()}.
start_link() ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

%%% Python callbacks: each receives the list of Python's positional arguments.

%% @private
%% @doc `erlang.state_get(Key[, Default])': the value, else `Default' (`None' by default).
-spec state_get(list()) -> term().
state_get([Key]) ->
    state_get([Key, none]);
state_get([Key, Default]) ->
    case fetch(Key) of
        {ok, Value} -> Value;
        {error, not_found} -> Default
    end.

%% @private
%% @doc `erlang.state_set(Key, Value)'; raises `{state_full, Max}' past the bound.
-spec state_set(list()) -> none.
state_set([Key, Value]) ->
    ok = raise_full(store(Key, Value)),
    none.

%% @private
%% @doc `erlang.state_delete(Key)'.
-spec state_delete(list()) -> none.
state_delete([Key]) ->
    ok = remove(Key),
    none.

%% @private
%% @doc `erlang.state_keys()'.
-spec state_keys(list()) -> [term()].
state_keys([]) ->
    keys().

%% @private
%% @doc `erlang.state_clear()'.
-spec state_clear(list()) -> none.
state_clear([]) ->
    ok = clear(),
    none.

%% @private
%% @doc `erlang.state_incr(Key[, N])'; raises `{state_full, Max}' past the bound.
-spec state_incr(list()) -> integer().
state_incr([Key]) ->
    raise_full(incr(Key));
state_incr([Key, N]) when is_integer(N) ->
    raise_full(incr(Key, N)).

%% @private
%% @doc `erlang.state_decr(Key[, N])'; raises `{state_full, Max}' past the bound.
-spec state_decr(list()) -> integer().
state_decr([Key]) ->
    raise_full(decr(Key));
state_decr([Key, N]) when is_integer(N) ->
    raise_full(decr(Key, N)).

%%% gen_server callbacks: the owner of the table.

%% @private
-spec init([]) -> {ok, undefined} | {stop, term()}.
init([]) ->
    %% Trap exits so that terminate/2 runs when the supervisor shuts us down.
    process_flag(trap_exit, true),
    case ets:whereis(?TAB) of
        undefined ->
            ok = create(),
            case register_callbacks() of
                ok -> {ok, undefined};
                {error, Reason} -> {stop, Reason}
            end;
        Tab ->
            %% Made by init_tab/0 outside the application: it belongs to another process.
            {stop, {table_exists, ?TAB, ets:info(Tab, owner)}}
    end.

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
%% The table goes with this process, and the counter with it.
-spec terminate(term(), undefined) -> ok.
terminate(_Reason, _State) ->
    _ = persistent_term:erase(?PY_STATE_KEY),
    ok.

%%% Internal

%% The counter first: once the table is visible, writers find the counter.
-spec create() -> ok.
create() ->
    ok = persistent_term:put(?PY_STATE_KEY, {atomics:new(1, [{signed, true}]), max_keys()}),
    ?TAB = ets:new(?TAB, [
        named_table, public, set, {read_concurrency, true}, {write_concurrency, true}
    ]),
    ok.

-spec max_keys() -> pos_integer().
max_keys() ->
    case py_config:find(state_max_keys) of
        {ok, Max} when is_integer(Max), Max > 0 -> Max;
        _ -> py_config:default(state_max_keys)
    end.

-spec register_callbacks([atom()]) -> ok | {error, not_started}.
register_callbacks([]) ->
    ok;
register_callbacks([Name | Names]) ->
    case py_callback:register(atom_to_binary(Name, utf8), {?MODULE, Name}) of
        ok -> register_callbacks(Names);
        {error, _} = Error -> Error
    end.

%% `Key' was not there when store/2 tried to update it: take a slot, then create it. Another
%% process may create it first (insert_new fails): give the slot back and update instead.
-spec store_new(term(), term()) -> ok | full().
store_new(Key, Value) ->
    case reserve() of
        ok ->
            case ets:insert_new(?TAB, {Key, Value}) of
                true ->
                    ok;
                false ->
                    ok = release(1),
                    store(Key, Value)
            end;
        {error, _} = Full ->
            case ets:member(?TAB, Key) of
                true -> store(Key, Value);
                false -> Full
            end
    end.

%% update_counter failed: the key is missing, or its value is not an integer.
-spec incr_failed(term(), integer()) -> integer() | full().
incr_failed(Key, N) ->
    case ets:lookup(?TAB, Key) of
        [] -> incr_new(Key, N);
        %% Stored concurrently between the two reads.
        [{_, Value}] when is_integer(Value) -> incr(Key, N);
        [{_, _}] -> error(badarg, [Key, N])
    end.

-spec incr_new(term(), integer()) -> integer() | full().
incr_new(Key, N) ->
    case reserve() of
        ok ->
            case ets:insert_new(?TAB, {Key, N}) of
                true ->
                    N;
                false ->
                    %% Created concurrently: count on it.
                    ok = release(1),
                    incr(Key, N)
            end;
        {error, _} = Full ->
            case ets:member(?TAB, Key) of
                true -> incr(Key, N);
                false -> Full
            end
    end.

%% Take a slot for a new key. The count is never below the number of keys (a slot is taken
%% before a key is created and given back after it is removed), so the table never holds more
%% than Max keys.
-spec reserve() -> ok | full().
reserve() ->
    {Count, Max} = counter(),
    case atomics:add_get(Count, 1, 1) of
        New when New =< Max ->
            ok;
        _ ->
            ok = atomics:sub(Count, 1, 1),
            {error, {state_full, Max}}
    end.

-spec release(non_neg_integer()) -> ok.
release(0) ->
    ok;
release(N) ->
    {Count, _} = counter(),
    atomics:sub(Count, 1, N).

%% Whether the table and its counter exist; while the application stops, the counter goes
%% first (terminate/2), then the table.
-spec running() -> boolean().
running() ->
    ets:whereis(?TAB) =/= undefined
        andalso persistent_term:get(?PY_STATE_KEY, undefined) =/= undefined.

%% Raises badarg when the application is not running, as the table functions do.
-spec counter() -> {atomics:atomics_ref(), pos_integer()}.
counter() ->
    persistent_term:get(?PY_STATE_KEY).

-spec raise_full(ok | integer() | full()) -> ok | integer().
raise_full({error, Full}) ->
    error(Full);
raise_full(Result) ->
    Result.
