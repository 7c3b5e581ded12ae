%% @private
%% @doc Top supervisor of `erlang_python'.
%%
%% Children start in dependency order, each depending only on those started before it:
%%   1. `py_semaphore', the owner of the semaphore that rate-limits `py:call';
%%   2. `py_callback', the registry of the Erlang functions Python can call;
%%   3. `py_state', the owner of the shared-state table, which registers its Python callbacks
%%      with `py_callback' (so it restarts when `py_callback' does);
%%   4. `py_logging_sup', which supervises `py_logger' (the receiver of Python `logging'
%%      records, forwarded to OTP `logger') and `py_tracer' (the collector of the spans Python
%%      code finishes) one for one: a crash of either restarts only that one, never the pool;
%%      they start before the pool so that its start-up diagnostics have a receiver;
%%   5. `py_pool', the owner of the interpreter's executor pool;
%%   6. `py_http_sup', the supervisor of the HTTP servers serving ASGI and WSGI apps (those of
%%      the `http' application variable start here, once the pool runs).
%% The strategy is `rest_for_one': since a child may depend only on those started before it,
%% when one dies the children after it restart with it and those before it keep running (a
%% crashed pool does not reset the semaphore's count and limit). `one_for_all' would restart
%% the earlier children for nothing.
-module(erlang_python_sup).
-behaviour(supervisor).

-export([start_link/0]).
-export([init/1]).

%% @doc Start the supervisor, registered as `erlang_python_sup'.
-spec start_link() -> {ok, pid()} | {error, term()}.
start_link() ->
    supervisor:start_link({local, ?MODULE}, ?MODULE, []).

%% @private
-spec init([]) -> {ok, {supervisor:sup_flags(), [supervisor:child_spec()]}}.
init([]) ->
    SupFlags = #{strategy => rest_for_one, intensity => 5, period => 10},
    Children = [
        #{
            id => py_semaphore,
            start => {py_semaphore, start_link, []},
            restart => permanent,
            shutdown => 5000,
            type => worker,
            modules => [py_semaphore]
        },
        #{
            id => py_callback,
            start => {py_callback, start_link, []},
            restart => permanent,
            shutdown => 5000,
            type => worker,
            modules => [py_callback]
        },
        #{
            id => py_state,
            start => {py_state, start_link, []},
            restart => permanent,
            shutdown => 5000,
            type => worker,
            modules => [py_state]
        },
        #{
            id => py_logging_sup,
            start => {py_logging_sup, start_link, []},
            restart => permanent,
            shutdown => infinity,
            type => supervisor,
            modules => [py_logging_sup]
        },
        #{
            id => py_pool,
            start => {py_pool, start_link, []},
            restart => permanent,
            %% terminate/2 only unpublishes and stops the pool, which never blocks.
            shutdown => 5000,
            type => worker,
            modules => [py_pool]
        },
        #{
            id => py_http_sup,
            start => {py_http_sup, start_link, []},
            restart => permanent,
            shutdown => infinity,
            type => supervisor,
            modules => [py_http_sup]
        },
        #{
            id => py_subinterp,
            start => {py_subinterp, start_link, []},
            restart => permanent,
            %% terminate/2 stops the sub-interpreters, waiting up to 5 s for each.
            shutdown => infinity,
            type => worker,
            modules => [py_subinterp]
        }
    ],
    {ok, {SupFlags, Children}}.
