%% @doc The supervisor of the `py_http' servers: those of the application variable `http' (a
%% list of `py_http:opts()' maps), started with the application, and those of
%% {@link py_http:start/1}.
-module(py_http_sup).
-behaviour(supervisor).

-export([start_link/0]).
-export([init/1]).

%% @doc Start the supervisor, registered as `py_http_sup'.
-spec start_link() -> {ok, pid()} | {error, term()}.
start_link() ->
    supervisor:start_link({local, ?MODULE}, ?MODULE, []).

%% @private
-spec init([]) -> {ok, {supervisor:sup_flags(), [supervisor:child_spec()]}}.
init([]) ->
    Servers = py_config:get(http),
    {ok, {#{strategy => one_for_one, intensity => 5, period => 10},
          [py_http:child_spec(Opts) || Opts <- Servers]}}.
