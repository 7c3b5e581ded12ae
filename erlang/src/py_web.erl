%% @private
%% @doc What py_asgi and py_wsgi share: the app's names checked, the runner chosen, and the
%% runners' response events as the Erlang events of their handlers; and the deadlines of
%% py_http's connections and websockets.
-module(py_web).

-export([check/4, event/1, deadline/1, remaining/1]).

%% @doc `Module' and `Callable' as binaries (`error(badarg)' otherwise, as for py:call/3) and
%% which runner runs them: `{ok, M, C}' for ours (the `runner' option unset, naming ours, or
%% naming `Legacy', erlang_python 1.6's default), `{runner, Runner, M, C}' for a module of the
%% user's.
-spec check(term(), term(), map(), {Ours :: binary(), Legacy :: binary()}) ->
    {ok, binary(), binary()} | {runner, binary(), binary(), binary()}.
check(Module, Callable, Opts, {Ours, Legacy}) ->
    case {name(Module), name(Callable), name(maps:get(runner, Opts, Ours))} of
        {M, C, Runner} when is_binary(M), is_binary(C),
                            (Runner =:= Ours orelse Runner =:= Legacy) ->
            {ok, M, C};
        {M, C, Runner} when is_binary(M), is_binary(C), is_binary(Runner) ->
            {runner, Runner, M, C};
        _ ->
            error(badarg)
    end.

%% @doc A response event of the runners (`erlang._asgi', `erlang._wsgi') as the handler gets it.
-spec event({binary(), term(), term()}) ->
    {response_start, term(), term()} | {response_body, term(), term()}.
event({<<"response_start">>, Status, Headers}) -> {response_start, Status, Headers};
event({<<"response_body">>, Chunk, More}) -> {response_body, Chunk, More}.

-spec name(term()) -> binary() | error.
name(Name) when is_binary(Name) -> Name;
name(Name) when is_atom(Name) -> atom_to_binary(Name, utf8);
name(Name) when is_list(Name) ->
    case unicode:characters_to_binary(Name) of
        Bin when is_binary(Bin) -> Bin;
        _ -> error
    end;
name(_) -> error.

%% @doc The monotonic time (ms) `Ms' from now, or `infinity'.
-spec deadline(timeout()) -> integer() | infinity.
deadline(infinity) -> infinity;
deadline(Ms) -> erlang:monotonic_time(millisecond) + Ms.

%% @doc What is left until `Deadline' (from deadline/1), as a receive timeout.
-spec remaining(integer() | infinity) -> timeout().
remaining(infinity) -> infinity;
remaining(Deadline) -> max(0, Deadline - erlang:monotonic_time(millisecond)).
