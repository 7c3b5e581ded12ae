%% @private
%% @doc Supervisor of the receivers of what Python code reports: `py_logger' (log records,
%% forwarded to OTP `logger') and `py_tracer' (finished spans).
%%
%% `one_for_one': the two are independent, and the rest of the application depends on neither
%% (a record or span sent while its receiver restarts is dropped and counted by the NIF), so a
%% crash of one restarts only that one; in-flight Python calls and the executor pool are not
%% touched. Only if this supervisor gives up (its restart intensity is exceeded) does
%% `erlang_python_sup' restart what was started after it.
-module(py_logging_sup).
-behaviour(supervisor).

-export([start_link/0]).
-export([init/1]).

%% @doc Start the supervisor, registered as `py_logging_sup'.
-spec start_link() -> {ok, pid()} | {error, term()}.
start_link() ->
    supervisor:start_link({local, ?MODULE}, ?MODULE, []).

%% @private
-spec init([]) -> {ok, {supervisor:sup_flags(), [supervisor:child_spec()]}}.
init([]) ->
    SupFlags = #{strategy => one_for_one, intensity => 5, period => 10},
    Children = [
        #{
            id => py_logger,
            start => {py_logger, start_link, []},
            restart => permanent,
            shutdown => 5000,
            type => worker,
            modules => [py_logger]
        },
        #{
            id => py_tracer,
            start => {py_tracer, start_link, []},
            restart => permanent,
            shutdown => 5000,
            type => worker,
            modules => [py_tracer]
        }
    ],
    {ok, {SupFlags, Children}}.
