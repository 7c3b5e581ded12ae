%% @doc Property-based tests with PropEr (Debian's erlang-proper; it ships no proper.hrl, so
%% the properties are built with proper_types and proper:forall/2 instead of the macros).
%%
%% The number of cases comes from the OS variables PROPER_NUMTESTS (round trips, default 300)
%% and PROPER_FAULT_NUMTESTS (fault interleavings, default 25); `make fuzz' sets them high. A
%% failure prints the shrunk counterexample.
-module(py_prop_SUITE).

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1]).
-export([
    terms_round_trip_or_give_the_documented_error/1,
    terms_round_trip_through_erlang_call/1,
    interleaved_faults_leave_nothing_behind/1
]).

-spec all() -> [atom()].
all() -> py_test_util:cases(?MODULE).

-spec suite() -> [tuple()].
suite() -> [{timetrap, {minutes, 30}}].

-spec init_per_suite(ct_suite:ct_config()) -> ct_suite:ct_config().
init_per_suite(Config) ->
    ok = py_test_util:start(),
    ok = py:exec(<<"import erlang\n"
                   "def ep_prop_ident(x):\n    return x\n"
                   "def ep_prop_via_erlang(x):\n    return erlang.call('ep_prop_echo', x)\n"
                   "def ep_prop_sleep(s):\n    import time\n    time.sleep(s)\n    return s\n">>),
    Config.

-spec end_per_suite(ct_suite:ct_config()) -> ok.
end_per_suite(_Config) ->
    ok = py_test_util:stop().

-spec numtests(string(), pos_integer()) -> pos_integer().
numtests(Variable, Default) ->
    case os:getenv(Variable) of
        false -> Default;
        N -> list_to_integer(N)
    end.

-spec check(term(), pos_integer()) -> ok.
check(Property, N) ->
    case py_test_util:quickcheck(Property, N) of
        true -> ok;
        CounterExample -> ct:fail({counterexample, CounterExample})
    end.

%%% ---------------------------------------------------------------- round trips

%% @doc Any term goes through `py:call' to a Python identity function and comes back in the
%% documented normal form (docs/type-conversion.md), or, if it holds something with no Python
%% equivalent (a fun, an improper list), the call returns `{error, {'TypeError', _}}'.
-spec terms_round_trip_or_give_the_documented_error(ct_suite:ct_config()) -> term().
terms_round_trip_or_give_the_documented_error(_Config) ->
    Property = proper:forall(
                 proper_types:sized(fun(Size) -> term(min(Size, 4)) end),
                 fun(Term) ->
                         Got = py:call('__main__', ep_prop_ident, [Term]),
                         case convertible(Term) of
                             true -> Got =:= {ok, py_test_util:normalise(Term)};
                             false -> element(1, element(2, Got)) =:= 'TypeError'
                         end
                 end),
    check(Property, numtests("PROPER_NUMTESTS", 300)).

%% @doc Any convertible term goes to Python, from Python to an Erlang function through
%% `erlang.call' (as a list of terms or, holding maps of more than 32 keys, in the external term
%% format) and back: it comes back in the documented normal form, the same as through Python
%% alone.
-spec terms_round_trip_through_erlang_call(ct_suite:ct_config()) -> term().
terms_round_trip_through_erlang_call(_Config) ->
    %% Registered here: the fault property restarts the application, which forgets it.
    ok = py:register_function(ep_prop_echo, fun([X]) -> X end),
    Property = proper:forall(
                 proper_types:sized(fun(Size) -> term(min(Size, 4)) end),
                 fun(Term) ->
                         not convertible(Term) orelse
                             py:call('__main__', ep_prop_via_erlang, [Term]) =:=
                             {ok, py_test_util:normalise(Term)}
                 end),
    check(Property, numtests("PROPER_NUMTESTS", 300)).

-spec term(non_neg_integer()) -> proper_types:type().
term(Depth) ->
    py_term_gen:term(Depth, #{key => key(), bitstrings => false}).

%% Keys that stay distinct in Python: binaries start with "k" (so no atom equals one), and no
%% integer equals a boolean.
-spec key() -> proper_types:type().
key() ->
    proper_types:oneof([
        proper_types:bind(proper_unicode:utf8(), fun(B) -> <<"k", B/binary>> end, false),
        proper_types:elements([alpha, beta, 'ключ']),
        proper_types:integer(2, inf),
        proper_types:integer(inf, -1)
    ]).

%% False when the term holds a fun or an improper list somewhere.
-spec convertible(term()) -> boolean().
convertible(F) when is_function(F) -> false;
convertible([]) -> true;
convertible([H | T]) when is_list(T) -> convertible(H) andalso convertible(T);
convertible([_ | _]) -> false;
convertible(T) when is_tuple(T) -> lists:all(fun convertible/1, tuple_to_list(T));
convertible(M) when is_map(M) ->
    lists:all(fun({K, V}) -> convertible(K) andalso convertible(V) end, maps:to_list(M));
convertible(_) -> true.

%%% ---------------------------------------------------------------- faults

%% @doc Any interleaving of calls, timeouts, killed callers, contexts and application
%% restarts leaves nothing behind once it settles: no pending request, no semaphore slot, no
%% checked-out executor, no waiting async callback, and the pool answers.
-spec interleaved_faults_leave_nothing_behind(ct_suite:ct_config()) -> term().
interleaved_faults_leave_nothing_behind(_Config) ->
    Property = proper:forall(
                 proper_types:list(action()),
                 fun(Actions) ->
                         Pids = [spawn(fun() -> perform(A) end) || A <- Actions, A =/= restart],
                         [ok = py_test_util:restart() || restart <- Actions],
                         %% Kill whoever is still running, at whatever point it is.
                         py_test_util:kill_and_wait(Pids),
                         ok = py_test_util:start(),
                         settled()
                 end),
    check(Property, numtests("PROPER_FAULT_NUMTESTS", 25)).

-spec action() -> proper_types:type().
action() ->
    proper_types:frequency([
        {4, proper_types:tuple([proper_types:elements([call, eval, async, bound, callback]),
                                proper_types:integer(0, 30),
                                proper_types:integer(1, 60)])},
        {1, proper_types:elements([restart])}
    ]).

%% One request: sleeps `Ms' milliseconds in Python, with a timeout of `Timeout' ms.
-spec perform({atom(), non_neg_integer(), pos_integer()}) -> term().
perform({call, Ms, Timeout}) ->
    py:call('__main__', ep_prop_sleep, [Ms / 1000], #{}, Timeout);
perform({eval, Ms, Timeout}) ->
    py:eval(<<"ep_prop_sleep(s)">>, #{s => Ms / 1000}, Timeout);
perform({async, Ms, Timeout}) ->
    py:async_await(py:async_call('__main__', ep_prop_sleep, [Ms / 1000]), Timeout);
perform({bound, Ms, Timeout}) ->
    case py:bind(new) of
        {ok, Ctx} ->
            R = py:ctx_call(Ctx, '__main__', ep_prop_sleep, [Ms / 1000], #{}, Timeout),
            py:unbind(Ctx),
            R;
        Error ->
            Error
    end;
perform({callback, Ms, Timeout}) ->
    _ = py:register_function(ep_prop_cb, fun([S]) -> timer:sleep(S), S end),
    py:eval(<<"erlang.call('ep_prop_cb', ms)">>, #{ms => Ms}, Timeout).

-spec settled() -> boolean().
settled() ->
    Quiet = fun() ->
                    #{pending_requests := P, checked_out := C} = py_pool:get_stats(),
                    P =:= 0 andalso C =:= 0 andalso py_semaphore:current() =:= 0
                        andalso py_nif:callback_async_pending() =:= 0
            end,
    ok =:= py_test_util:wait_until(Quiet, 10000)
        andalso {ok, 2.0} =:= py:call(math, sqrt, [4.0]).
