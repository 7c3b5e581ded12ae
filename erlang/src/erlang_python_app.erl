%% @private
%% @doc Application callback module of `erlang_python'.
-module(erlang_python_app).
-behaviour(application).

-export([start/2, stop/1]).

%% @doc Start the top supervisor.
-spec start(application:start_type(), term()) -> {ok, pid()} | {error, term()}.
start(_StartType, _StartArgs) ->
    erlang_python_sup:start_link().

%% @doc Nothing to clean up: the supervision tree has already stopped.
-spec stop(term()) -> ok.
stop(_State) ->
    ok.
