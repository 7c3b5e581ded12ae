%% @private
%% @doc Owner of the pool of own-GIL sub-interpreters (docs/parallelism.md): starts it on first
%% use, publishes it in `persistent_term', and stops it when the application stops (each
%% interpreter ends on its own thread). Requests never pass through this process.
%%
%% The pool's size is the application variable `num_subinterp_workers' (default: the number
%% of schedulers online). Its sub-interpreters start with the main interpreter's `sys.path' of
%% that moment.
-module(py_subinterp).
-behaviour(gen_server).

-include("py_keys.hrl").

-export([start_link/0, pool/0, size/0, sync_path/0]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).

%% Starting a sub-interpreter takes some milliseconds; a pool of many, longer.
-define(START_TIMEOUT, 120000).

-record(state, {pool :: py_nif:subinterp_pool() | undefined}).

%% @doc Starts the owner; the pool itself starts on first use.
-spec start_link() -> {ok, pid()} | {error, term()}.
start_link() ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

%% @doc The pool, started now if it is not running yet.
-spec pool() ->
    {ok, py_nif:subinterp_pool()}
    | {error, not_started | subinterpreters_not_supported | not_initialized
              | {subinterp_start_failed, binary()} | {bad_config, term()}}.
pool() ->
    case persistent_term:get(?PY_SUBINTERP_KEY, undefined) of
        undefined ->
            try
                gen_server:call(?MODULE, start, ?START_TIMEOUT)
            catch
                exit:{noproc, _} -> {error, not_started};
                exit:{shutdown, _} -> {error, not_started};
                exit:{normal, _} -> {error, not_started}
            end;
        Pool ->
            {ok, Pool}
    end.

%% @doc The number of sub-interpreters: the running pool's, else the configured size.
%% @doc Give the pool's sub-interpreters (if the pool runs) the main interpreter's `sys.path'
%% as it is now; requests sent to the pool after this returns see it. `py' calls it after
%% {@link py:add_python_path/1}, {@link py:activate_venv/1} and {@link py:deactivate_venv/0}.
%% Serialised by this process, so that concurrent changes are applied in order.
-spec sync_path() -> ok | {error, term()}.
sync_path() ->
    case persistent_term:get(?PY_SUBINTERP_KEY, undefined) of
        undefined ->
            %% No pool: it takes the path when it starts (in this process, so after any
            %% change that returned before).
            ok;
        _ ->
            try
                gen_server:call(?MODULE, sync_path, infinity)
            catch
                exit:{noproc, _} -> ok;
                exit:{shutdown, _} -> ok;
                exit:{normal, _} -> ok
            end
    end.

-spec size() -> pos_integer().
size() ->
    case persistent_term:get(?PY_SUBINTERP_KEY, undefined) of
        undefined -> configured_size();
        Pool -> py_nif:subinterp_pool_size(Pool)
    end.

%% The configured size; a bad value counts as the default here (the start refuses it).
-spec configured_size() -> pos_integer().
configured_size() ->
    case checked_size() of
        {ok, N} -> N;
        {error, _} -> erlang:system_info(schedulers_online)
    end.

-spec checked_size() -> {ok, pos_integer()} | {error, {bad_config, term()}}.
checked_size() ->
    case py_config:find(num_subinterp_workers) of
        {ok, N} when is_integer(N), N > 0, N =< 1024 -> {ok, N};
        {ok, Bad} -> {error, {bad_config, {num_subinterp_workers, Bad}}};
        undefined -> {ok, erlang:system_info(schedulers_online)}
    end.

%% @private
-spec init([]) -> {ok, #state{}}.
init([]) ->
    process_flag(trap_exit, true),
    {ok, #state{}}.

%% @private
-spec handle_call(term(), gen_server:from(), #state{}) -> {reply, term(), #state{}}.
handle_call(start, _From, #state{pool = undefined} = State) ->
    case start_pool() of
        {ok, Pool} ->
            persistent_term:put(?PY_SUBINTERP_KEY, Pool),
            {reply, {ok, Pool}, State#state{pool = Pool}};
        {error, _} = Error ->
            {reply, Error, State}
    end;
handle_call(start, _From, #state{pool = Pool} = State) ->
    {reply, {ok, Pool}, State};
handle_call(sync_path, _From, #state{pool = undefined} = State) ->
    {reply, ok, State};
handle_call(sync_path, _From, #state{pool = Pool} = State) ->
    Reply = case main_path() of
                {ok, Path} -> py_nif:subinterp_pool_set_path(Pool, Path);
                {error, _} = Error -> Error
            end,
    {reply, Reply, State};
handle_call(_Request, _From, State) ->
    {reply, {error, unknown_call}, State}.

%% @private
-spec handle_cast(term(), #state{}) -> {noreply, #state{}}.
handle_cast(_Msg, State) ->
    {noreply, State}.

%% @private
-spec handle_info(term(), #state{}) -> {noreply, #state{}}.
handle_info(_Info, State) ->
    {noreply, State}.

%% @private
-spec terminate(term(), #state{}) -> ok.
terminate(_Reason, #state{pool = undefined}) ->
    ok;
terminate(_Reason, #state{pool = Pool}) ->
    %% Unpublish first: new requests get {error, not_started} rather than a stopped pool.
    _ = persistent_term:erase(?PY_SUBINTERP_KEY),
    py_nif:subinterp_pool_stop(Pool).

-spec start_pool() ->
    {ok, py_nif:subinterp_pool()}
    | {error, subinterpreters_not_supported | not_started | not_initialized
              | {subinterp_start_failed, binary()} | {bad_config, term()}}.
start_pool() ->
    case {py:subinterp_supported(), checked_size()} of
        {false, _} ->
            {error, subinterpreters_not_supported};
        {true, {error, _} = Error} ->
            Error;
        {true, {ok, Size}} ->
            case main_path() of
                {ok, Path} ->
                    py_nif:subinterp_pool_start(Size, Path);
                {error, not_started} ->
                    {error, not_started};
                {error, Reason} ->
                    {error, {subinterp_start_failed, iolist_to_binary(io_lib:format("~0p", [Reason]))}}
            end
    end.

%% The main interpreter's `sys.path' (its str entries, as UTF-8 binaries; entries that cannot
%% be UTF-8, lone surrogates from undecodable file names, are left out).
-spec main_path() -> {ok, [binary()]} | {error, term()}.
main_path() ->
    case py:eval(<<"[p for p in __import__('sys').path if isinstance(p, str) and '\\0' not in p "
                   "and p.encode('utf-8', 'surrogatepass').decode('utf-8', 'replace') == p]">>) of
        {ok, Path} when is_list(Path) -> {ok, Path};
        {ok, Other} -> {error, {bad_sys_path, Other}};
        {error, _} = Error -> Error
    end.
