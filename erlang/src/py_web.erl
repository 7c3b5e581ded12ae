%% @private
%% @doc What py_asgi and py_wsgi share: the app's names checked, the runner chosen, and the
%% runners' response events as the Erlang events of their handlers; and the deadlines and the
%% header-value helpers of py_http's connections and websockets.
-module(py_web).

-export([check/4, event/1, deadline/1, remaining/1, trim/1, lower/1, digits/2]).

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

%% @doc `Value' without the spaces, tabs, CRs and LFs around it (a header value's optional
%% whitespace, RFC 9110 5.6.3, or a chunk-size line's end). Any bytes: a client's header
%% values need not be UTF-8, which `string:trim/1' would fail on.
-spec trim(binary()) -> binary().
trim(Value) ->
    trim_end(trim_start(Value)).

-spec trim_start(binary()) -> binary().
trim_start(<<C, Rest/binary>>) when C =:= $\s; C =:= $\t; C =:= $\r; C =:= $\n ->
    trim_start(Rest);
trim_start(Value) ->
    Value.

-spec trim_end(binary()) -> binary().
trim_end(Value) ->
    case byte_size(Value) of
        0 ->
            Value;
        N ->
            case binary:last(Value) of
                C when C =:= $\s; C =:= $\t; C =:= $\r; C =:= $\n ->
                    trim_end(binary:part(Value, 0, N - 1));
                _ ->
                    Value
            end
    end.

%% @doc `Value' with A-Z lowered and every other byte as it is: HTTP's case-insensitive names
%% and tokens, without `string:lowercase/1''s Unicode tables (which also fail on bytes that are
%% not UTF-8).
-spec lower(binary()) -> binary().
lower(Value) ->
    << <<(case C of _ when C >= $A, C =< $Z -> C + 32; _ -> C end)>> || <<C>> <= Value >>.

%% @doc The non-negative integer that `Value' spells in digits of `Base' (10 or 16) only, no
%% sign and no spaces (RFC 9112's `Content-Length = 1*DIGIT' and `chunk-size = 1*HEXDIG'), or
%% `error'.
-spec digits(binary(), 10 | 16) -> non_neg_integer() | error.
digits(<<>>, _Base) ->
    error;
digits(Value, Base) ->
    case lists:all(fun(C) -> is_digit(C, Base) end, binary_to_list(Value)) of
        true -> binary_to_integer(Value, Base);
        false -> error
    end.

-spec is_digit(byte(), 10 | 16) -> boolean().
is_digit(C, _) when C >= $0, C =< $9 -> true;
is_digit(C, 16) when C >= $a, C =< $f; C >= $A, C =< $F -> true;
is_digit(_, _) -> false.
