%% @doc py:parallel/1,2 and the pool of own-GIL sub-interpreters (docs/parallelism.md): results
%% in order, errors per call, bad input, timeouts and dead callers, conversions equal to the
%% main interpreter's, what `erlang' offers there, modules that cannot load there, stop.
%%
%% On builds without own-GIL sub-interpreters (3.11, free-threaded) the cases check what the
%% documentation promises there instead: parallel/1 runs on the executors and the `subinterp'
%% pool option answers `{error, subinterpreters_not_supported}'. Speed is measured in bench/,
%% never asserted here.
-module(py_parallel_SUITE).

-include_lib("common_test/include/ct.hrl").

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1]).
-export([
    results_in_order/1,
    more_calls_than_subinterpreters/1,
    errors_per_call/1,
    bad_input/1,
    timeout_interrupts_and_pool_recovers/1,
    dead_caller_interrupts/1,
    interrupt_waits_for_safe_point/1,
    conversion_equals_main_for_terms/1,
    conversion_equals_main_for_python_values/1,
    values_that_cannot_leave/1,
    erlang_module_in_subinterpreter/1,
    modules_that_cannot_load/1,
    exec_defines_in_every_subinterpreter/1,
    sys_path_follows_the_main_interpreter/1,
    eval_locals_and_kwargs/1,
    subinterp_option_tells_the_truth/1,
    bad_pool_size_is_an_error/1,
    stuck_subinterpreter_is_replaced/1,
    stop_answers_running_and_queued/1
]).

-spec all() -> [atom()].
all() -> py_test_util:cases(?MODULE).

-spec suite() -> [tuple()].
suite() -> [{timetrap, {minutes, 10}}].

-spec init_per_suite(ct_suite:ct_config()) -> ct_suite:ct_config().
init_per_suite(Config) ->
    ok = py_test_util:start(),
    Config.

-spec end_per_suite(ct_suite:ct_config()) -> ok.
end_per_suite(_Config) ->
    ok = py_test_util:stop().

-define(SUB, #{pool => subinterp}).
-define(IDENT, <<"def ep_ident(x):\n    return x\n">>).

-spec supported() -> boolean().
supported() -> py:subinterp_supported().

%% Defines `ep_ident' on the main interpreter and, where there are any, in every
%% sub-interpreter.
-spec define_ident() -> ok.
define_ident() ->
    ok = py:exec(?IDENT),
    case supported() of
        true -> ok = py:exec(?IDENT, ?SUB);
        false -> ok
    end.

%%% ---------------------------------------------------------------- results

%% @doc One result per call, in the order of the calls, whatever order they finish in.
-spec results_in_order(ct_suite:ct_config()) -> term().
results_in_order(_Config) ->
    N = 12,
    %% Later calls sleep less, so they tend to finish first.
    Calls = [{time, sleep, [(N - I) / 200]} || I <- lists:seq(1, N)]
            ++ [{math, sqrt, [float(I * I)]} || I <- lists:seq(1, N)],
    {ok, Results} = py:parallel(Calls),
    Expected = [{ok, none} || _ <- lists:seq(1, N)] ++ [{ok, float(I)} || I <- lists:seq(1, N)],
    Expected = Results,
    {ok, []} = py:parallel([]),
    %% Keyword arguments, as in async_gather/1.
    {ok, [{ok, 255}]} = py:parallel([{builtins, int, [<<"ff">>], #{base => 16}}]),
    py_test_util:assert_mailbox_empty().

%% @doc More calls than sub-interpreters: the extra ones wait their turn (erlang_python 1.6
%% answered `{error, not_enough_workers}').
-spec more_calls_than_subinterpreters(ct_suite:ct_config()) -> term().
more_calls_than_subinterpreters(_Config) ->
    N = 4 * py_subinterp:size() + 3,
    {ok, Results} = py:parallel([{builtins, sum, [lists:seq(1, I)]} || I <- lists:seq(1, N)]),
    Results = [{ok, I * (I + 1) div 2} || I <- lists:seq(1, N)].

%% @doc A failing call gives its own `{error, {Type, Msg}}'; the others still give their values.
-spec errors_per_call(ct_suite:ct_config()) -> term().
errors_per_call(_Config) ->
    {ok, [{ok, 2.0},
          {error, {'ValueError', <<"math domain error">>}},
          {error, {'ModuleNotFoundError', _}},
          {error, {'AttributeError', _}},
          {ok, 3}]} =
        py:parallel([{math, sqrt, [4]}, {math, sqrt, [-1]}, {ep_no_such_module, f, []},
                     {math, ep_no_such_function, []}, {builtins, len, [<<"abc">>]}]),
    %% The traceback of a failing call is kept as for any call.
    {error, {'ZeroDivisionError', _}} = py:eval(<<"1/0">>, #{}, opts()),
    true = is_binary(py:last_traceback()),
    {match, _} = re:run(py:last_traceback(), "ZeroDivisionError").

%% The options for the sub-interpreter pool where there is one, else the main pool.
-spec opts() -> map().
opts() ->
    case supported() of
        true -> ?SUB;
        false -> #{}
    end.

%% @doc Malformed calls and options are refused before anything runs.
-spec bad_input(ct_suite:ct_config()) -> term().
bad_input(_Config) ->
    {error, {bad_call, {math, sqrt}}} = py:parallel([{math, sqrt, [4]}, {math, sqrt}]),
    {error, {bad_call, {math, sqrt, not_a_list}}} = py:parallel([{math, sqrt, not_a_list}]),
    {error, {bad_call, {1, 2, []}}} = py:parallel([{1, 2, []}]),
    {error, {bad_call, {math, sqrt, [], 7}}} = py:parallel([{math, sqrt, [], 7}]),
    {'EXIT', {function_clause, _}} = (catch py:parallel(not_a_list)),
    {'EXIT', {function_clause, _}} = (catch py:parallel([], -1)),
    {'EXIT', {badarg, _}} = (catch py:call(math, sqrt, [4], #{}, #{pool => nowhere})),
    {'EXIT', {badarg, _}} = (catch py:call(math, sqrt, [4], #{}, #{colour => blue})),
    {'EXIT', {badarg, _}} = (catch py:eval(<<"1">>, #{}, #{timeout => -5})),
    {'EXIT', {badarg, _}} = (catch py:exec(<<"x = 1">>, #{pool => 1})),
    %% A keyword list that is not one, and source with a NUL byte, fail like on the main pool.
    {error, {'TypeError', _}} = py:call(builtins, int, [<<"1">>], [{base}], opts()),
    {error, {_, _}} = py:eval(<<"1\0">>, #{}, opts()),
    %% Names that are not UTF-8.
    {error, {_, _}} = py:call(<<255>>, f, [], #{}, opts()),
    {ok, 2.0} = py:call(math, sqrt, [4], #{}, opts()).

%%% ---------------------------------------------------------------- timeouts

%% @doc A call the time runs out on gives `{error, timeout}' in its place (the others keep
%% their results); its code is interrupted, so the pool answers the next calls; nothing
%% arrives late.
-spec timeout_interrupts_and_pool_recovers(ct_suite:ct_config()) -> term().
timeout_interrupts_and_pool_recovers(_Config) ->
    {ok, [{error, timeout}, {ok, 2.0}]} =
        py:parallel([{time, sleep, [60]}, {math, sqrt, [4]}], 1000),
    %% A CPU loop that never releases the GIL on its own is stopped too.
    {error, timeout} = py:exec(<<"while True:\n    pass\n">>, (opts())#{timeout => 300}),
    {error, timeout} = py:eval(<<"__import__('time').sleep(60)">>, #{}, (opts())#{timeout => 300}),
    %% Every worker is free again: as many sleeps as workers finish well within the bound.
    Size = py_subinterp:size(),
    {ok, Results} = py:parallel([{time, sleep, [0.05]} || _ <- lists:seq(1, Size)], 20000),
    true = lists:all(fun(R) -> R =:= {ok, none} end, Results),
    py_test_util:assert_no_message(300).

%% @doc A caller that dies stops its call: its worker serves the next calls.
-spec dead_caller_interrupts(ct_suite:ct_config()) -> term().
dead_caller_interrupts(_Config) ->
    Size = py_subinterp:size(),
    %% A bytecode loop (a C loop such as sum(range(10**12)) checks for nothing, here as on
    %% the executors).
    Pids = [spawn(fun() -> py:exec(<<"while True:\n    pass\n">>, (opts())#{timeout => infinity})
                  end)
            || _ <- lists:seq(1, Size)],
    timer:sleep(300),
    py_test_util:kill_and_wait(Pids),
    %% If a killed caller's loop still ran, one of these would wait for it and time out.
    {ok, Results} = py:parallel([{math, sqrt, [1]} || _ <- lists:seq(1, 2 * Size)], 20000),
    true = lists:all(fun(R) -> R =:= {ok, 1.0} end, Results).

%% @doc An interrupt waits while the code is inside a context manager's `__exit__' (as on the
%% executors): the cleanup completes, then the call is stopped.
-spec interrupt_waits_for_safe_point(ct_suite:ct_config()) -> term().
interrupt_waits_for_safe_point(_Config) ->
    Code = <<"import time\n"
             "class EpSlowExit:\n"
             "    def __enter__(self):\n"
             "        return self\n"
             "    def __exit__(self, *exc):\n"
             "        t = time.monotonic()\n"
             "        while time.monotonic() - t < 0.5:\n"
             "            pass\n"
             "        global ep_exit_done\n"
             "        ep_exit_done = True\n"
             "def ep_slow_exit():\n"
             "    global ep_exit_done\n"
             "    ep_exit_done = False\n"
             "    with EpSlowExit():\n"
             "        pass\n"
             "    time.sleep(60)\n"
             "def ep_exit_done_get():\n"
             "    return ep_exit_done\n">>,
    case supported() of
        true ->
            %% One sub-interpreter, so that the check below reads the same `__main__'.
            ok = py_test_util:stop(),
            ok = application:set_env(erlang_python, num_subinterp_workers, 1),
            try
                ok = py_test_util:start(),
                ok = py:exec(Code, ?SUB),
                {error, timeout} = py:call('__main__', ep_slow_exit, [], #{},
                                           ?SUB#{timeout => 100}),
                {ok, true} = py:call('__main__', ep_exit_done_get, [], #{}, ?SUB)
            after
                ok = py_test_util:stop(),
                application:unset_env(erlang_python, num_subinterp_workers),
                ok = py_test_util:start()
            end;
        false ->
            ok = py:exec(Code),
            {error, timeout} = py:call('__main__', ep_slow_exit, [], #{}, 100),
            ok = py_test_util:wait_for_value(
                           fun() -> py:call('__main__', ep_exit_done_get, []) end,
                           {ok, true}, 10000)
    end.

%%% ---------------------------------------------------------------- conversions

%% @doc Any term sent to an identity function comes back the same from a sub-interpreter as
%% from the main interpreter, or fails there with the same exception class (PropEr, the
%% generator of py_prop_SUITE plus bitstrings); fixed cases with one unconvertible part give
%% the same message too.
-spec conversion_equals_main_for_terms(ct_suite:ct_config()) -> term().
conversion_equals_main_for_terms(_Config) ->
    define_ident(),
    Property = proper:forall(
                 proper_types:sized(fun(Size) -> term(min(Size, 4)) end),
                 fun(Term) ->
                         Main = py:call('__main__', ep_ident, [Term]),
                         Sub = py:call('__main__', ep_ident, [Term], #{}, opts()),
                         Same = same_outcome(Term, Main, Sub),
                         Same orelse ct:pal("~p~nmain ~p~nsub  ~p", [Term, Main, Sub]),
                         Same
                 end),
    true = py_test_util:quickcheck(Property, numtests()),
    %% Fixed cases the generator may miss.
    Fixed = [1 bsl 64, -(1 bsl 64), 1 bsl 1000, -(1 bsl 63), (1 bsl 63) - 1, 0.0, -0.0,
             1.0e308, 5.0e-324, <<0:7>>, <<255, 0>>, <<"日本"/utf8>>, '日本', [1 | 2],
             #{<<"a">> => 1, a => 2}, #{1 => a, 1.0 => b}, {py_array, float64, [2], <<0:128>>},
             [[[[[[[[[[[]]]]]]]]]]], {}, self(), make_ref(), fun erlang:self/0,
             lists:duplicate(1000, {ok, <<"x">>}), "chars"],
    [begin
         Main = py:call('__main__', ep_ident, [T]),
         {T, Main} = {T, py:call('__main__', ep_ident, [T], #{}, opts())}
     end || T <- Fixed, not is_array(T)],
    ok.

%% A value converts to the same term; a term that does not convert gives the same exception
%% class. A term with several parts that do not convert may have either named, since the two
%% paths may walk a big map in different orders: a fun and a bitstring are both a TypeError,
%% but a bitstring (TypeError) and two keys that become the same dict key (ValueError) are
%% not, so a ValueError on one side and a TypeError on the other pass when the term holds
%% both a bitstring and a map that could hold such keys.
-spec same_outcome(term(), term(), term()) -> boolean().
same_outcome(_Term, {error, {Type, _}}, {error, {Type, _}}) -> true;
same_outcome(Term, {error, {A, _}}, {error, {B, _}})
  when {A, B} =:= {'TypeError', 'ValueError'}; {A, B} =:= {'ValueError', 'TypeError'} ->
    has(fun is_partial_bitstring/1, Term) andalso has(fun is_multi_key_map/1, Term);
same_outcome(_Term, Main, Sub) -> Main =:= Sub.

-spec is_partial_bitstring(term()) -> boolean().
is_partial_bitstring(T) -> is_bitstring(T) andalso not is_binary(T).

-spec is_multi_key_map(term()) -> boolean().
is_multi_key_map(T) -> is_map(T) andalso map_size(T) >= 2.

%% Whether `Pred' holds for `Term' or any term inside it (list cells, improper tails, tuple
%% elements, map keys and values).
-spec has(fun((term()) -> boolean()), term()) -> boolean().
has(Pred, Term) ->
    Pred(Term) orelse
        case Term of
            [H | T] -> has(Pred, H) orelse has(Pred, T);
            _ when is_tuple(Term) -> lists:any(fun(E) -> has(Pred, E) end, tuple_to_list(Term));
            _ when is_map(Term) ->
                lists:any(fun({K, V}) -> has(Pred, K) orelse has(Pred, V) end,
                          maps:to_list(Term));
            _ -> false
        end.

%% Terms of every kind the conversion table knows, nested (as py_prop_SUITE generates them).
-spec term(non_neg_integer()) -> proper_types:type().
term(Depth) ->
    Leaf = py_term_gen:leaf(true),
    py_term_gen:term(Depth, #{key => Leaf, bitstrings => true}).

%% An array term becomes a numpy array on the main interpreter; numpy does not load in a
%% sub-interpreter (values_that_cannot_leave/1 checks its error).
-spec is_array(term()) -> boolean().
is_array({py_array, _, _, _}) -> true;
is_array(_) -> false.

-spec numtests() -> pos_integer().
numtests() ->
    case os:getenv("PROPER_NUMTESTS") of
        false -> 300;
        N -> list_to_integer(N)
    end.

%% @doc Python values made in Python come out the same from a sub-interpreter as from the
%% main interpreter: every type of the table, and the documented errors.
-spec conversion_equals_main_for_python_values(ct_suite:ct_config()) -> term().
conversion_equals_main_for_python_values(_Config) ->
    Exprs = [<<"None">>, <<"True">>, <<"False">>, <<"0">>, <<"-1">>, <<"2**62">>, <<"2**63">>,
             <<"-2**63">>, <<"-2**63-1">>, <<"2**64+5">>, <<"-(3**500)">>, <<"1.5">>,
             <<"float('nan')">>, <<"float('inf')">>, <<"-float('inf')">>, <<"-0.0">>,
             <<"'text'">>, <<"'日本'">>, <<"'\\ud800'">>, <<"b'\\xff\\x00'">>,
             <<"bytearray(b'ab')">>, <<"[1, [2, [3]]]">>, <<"(1, (2,), ())">>,
             <<"{'a': 1, 2: [3], (4, 5): {'b': None}}">>, <<"{1: 'x', True: 'y'}">>,
             <<"{'k': 1, b'k': 2}">>, <<"sorted({3, 1, 2})">>, <<"len(frozenset({1}))">>,
             <<"{1}">>, <<"frozenset()">>, <<"type('S', (str,), {})('sub')">>,
             <<"type('I', (int,), {})(7)">>, <<"type('F', (float,), {})(2.5)">>,
             <<"type('D', (dict,), {})(a=1)">>, <<"type('L', (list,), {})([1])">>,
             <<"[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]">>,
             <<"(lambda l: (l.append(l), l)[1])([])">>,
             <<"{str(i): i for i in range(300)}">>, <<"list(range(5000))">>],
    [begin
         Main = py:eval(E),
         {E, Main} = {E, py:eval(E, #{}, opts())}
     end || E <- Exprs],
    %% Nesting up to the bound, and past it (the same ValueError).
    Deep = <<"def ep_deep(n):\n    v = []\n    for _ in range(n):\n        v = [v]\n    return v\n">>,
    ok = py:exec(Deep),
    ok = py:exec(Deep, opts()),
    [begin
         Main = py:call('__main__', ep_deep, [N]),
         {N, Main} = {N, py:call('__main__', ep_deep, [N], #{}, opts())}
     end || N <- [998, 999, 1000, 5000]],
    {error, {'ValueError', _}} = py:call('__main__', ep_deep, [5000], #{}, opts()),
    ok.

%% @doc What cannot leave a sub-interpreter gives a clear `TypeError' there (the main
%% interpreter hands out an opaque handle or a generator instead), and an array term, which
%% needs numpy, gives one naming numpy.
-spec values_that_cannot_leave(ct_suite:ct_config()) -> term().
values_that_cannot_leave(_Config) ->
    case supported() of
        true ->
            {error, {'TypeError', Msg1}} = py:eval(<<"object()">>, #{}, ?SUB),
            {match, _} = re:run(Msg1, "'object' object cannot leave a sub-interpreter"),
            {error, {'TypeError', Msg2}} = py:eval(<<"(i for i in [1])">>, #{}, ?SUB),
            {match, _} = re:run(Msg2, "'generator'"),
            {error, {'TypeError', Msg3}} =
                py:call('__main__', ep_ident, [{py_array, float64, [1], <<0:64>>}], #{}, ?SUB),
            {match, _} = re:run(Msg3, "numpy"),
            {match, _} = re:run(Msg3, "main pool"),
            %% A handle stands for an object of the main interpreter: it cannot go in, as an
            %% argument, a keyword value, an eval local, or deep inside big ones (checked on a
            %% dirty scheduler).
            {ok, Handle} = py:eval(<<"object()">>),
            Big = lists:seq(1, 100000),
            [begin
                 {error, {'TypeError', Msg4}} = Request(),
                 {match, _} = re:run(Msg4, "handle")
             end || Request <- [fun() -> py:call(builtins, id, [Handle], #{}, ?SUB) end,
                                fun() -> py:call(builtins, id, [], #{x => Handle}, ?SUB) end,
                                fun() -> py:eval(<<"x">>, #{x => {Handle}}, ?SUB) end,
                                fun() -> py:call(builtins, id, [[Big, Handle]], #{}, ?SUB) end,
                                fun() -> py:eval(<<"x">>, #{x => [Big, #{k => Handle}]}, ?SUB)
                                end]],
            %% Big arguments without handles go through.
            {ok, 100000} = py:call(builtins, len, [Big], #{}, ?SUB),
            {ok, 100000} = py:eval(<<"len(x)">>, #{x => Big}, ?SUB);
        false ->
            {error, subinterpreters_not_supported} = py:eval(<<"object()">>, #{}, ?SUB)
    end.

%%% ---------------------------------------------------------------- what runs there

%% @doc Inside a sub-interpreter `erlang' has Pid, Ref and Interrupted; the rest (call, state,
%% logging) fails with an AttributeError that says to use the main pool.
-spec erlang_module_in_subinterpreter(ct_suite:ct_config()) -> term().
erlang_module_in_subinterpreter(_Config) ->
    case supported() of
        true ->
            Self = self(),
            {ok, true} = py:eval(<<"isinstance(p, __import__('erlang').Pid)">>, #{p => Self},
                                 ?SUB),
            {ok, true} = py:eval(<<"isinstance(r, __import__('erlang').Ref)">>,
                                 #{r => make_ref()}, ?SUB),
            {ok, true} = py:eval(<<"p == p2 and hash(p) == hash(p2) and {p: 1}[p2] == 1">>,
                                 #{p => Self, p2 => Self}, ?SUB),
            {ok, true} = py:eval(<<"issubclass(__import__('erlang').Interrupted, BaseException)"
                                   " and not issubclass(__import__('erlang').Interrupted,"
                                   " Exception)">>, #{}, ?SUB),
            {ok, <<"erlang.Pid(", _/binary>>} = py:eval(<<"repr(p)">>, #{p => Self}, ?SUB),
            [begin
                 {error, {'AttributeError', Msg}} =
                     py:eval(<<"__import__('erlang').", Name/binary>>, #{}, ?SUB),
                 {match, _} = re:run(Msg, "not available in a sub-interpreter"),
                 {match, _} = re:run(Msg, "main pool")
             end || Name <- [<<"call">>, <<"state_get">>, <<"setup_logging">>]],
            {ok, false} = py:eval(<<"hasattr(__import__('erlang'), 'call')">>, #{}, ?SUB);
        false ->
            {error, subinterpreters_not_supported} = py:eval(<<"1">>, #{}, ?SUB)
    end.

%% @doc A module that cannot load in a sub-interpreter (numpy, a single-phase-init extension)
%% gives an ImportError naming it and pointing at the main pool; the main pool loads it.
-spec modules_that_cannot_load(ct_suite:ct_config()) -> term().
modules_that_cannot_load(_Config) ->
    {ok, 3} = py:eval(<<"int(__import__('numpy').int64(3))">>),
    case supported() of
        true ->
            {error, {'ImportError', Msg}} = py:eval(<<"__import__('numpy')">>, #{}, ?SUB),
            {match, _} = re:run(Msg, "numpy"),
            {match, _} = re:run(Msg, "does not support loading in subinterpreters"),
            {match, _} = re:run(Msg, "main pool"),
            {ok, [{error, {'ImportError', _}}, {ok, 2.0}]} =
                py:parallel([{numpy, sqrt, [4]}, {math, sqrt, [4]}]),
            %% The sub-interpreter is still usable.
            {ok, 6} = py:eval(<<"sum([1, 2, 3])">>, #{}, ?SUB);
        false ->
            {ok, [{ok, 2.0}, {ok, 2.0}]} = py:parallel([{numpy, sqrt, [4]}, {math, sqrt, [4]}])
    end.

%% @doc exec/2 with the sub-interpreter pool defines in every sub-interpreter: calls landing
%% on any of them find the function. A failing exec gives its error.
-spec exec_defines_in_every_subinterpreter(ct_suite:ct_config()) -> term().
exec_defines_in_every_subinterpreter(_Config) ->
    case supported() of
        true ->
            ok = py:exec(<<"def ep_twice(x):\n    return 2 * x\n">>, ?SUB),
            N = 3 * py_subinterp:size(),
            {ok, Results} = py:parallel([{'__main__', ep_twice, [I]} || I <- lists:seq(1, N)]),
            Results = [{ok, 2 * I} || I <- lists:seq(1, N)],
            {error, {'SyntaxError', _}} = py:exec(<<"def (">>, ?SUB),
            {error, {'NameError', _}} = py:exec(<<"ep_undefined_name">>, ?SUB),
            %% The main interpreter's namespace is another one.
            {error, {'NameError', _}} = py:call('__main__', ep_twice, [1]);
        false ->
            {error, subinterpreters_not_supported} = py:exec(<<"x = 1">>, ?SUB)
    end.

%% @doc A directory added with py:add_python_path/1 after the pool started reaches every
%% sub-interpreter before the next request: their `sys.path' is the main interpreter's again.
-spec sys_path_follows_the_main_interpreter(ct_suite:ct_config()) -> term().
sys_path_follows_the_main_interpreter(Config) ->
    Dir = filename:join(?config(priv_dir, Config), "ep_path_dir"),
    ok = filelib:ensure_path(Dir),
    ok = file:write_file(filename:join(Dir, "ep_path_mod.py"),
                         <<"def where():\n    return __name__\n">>),
    case supported() of
        true ->
            %% The pool runs, with the path of that moment.
            {ok, 2} = py:eval(<<"1 + 1">>, #{}, ?SUB),
            {error, {'ModuleNotFoundError', _}} = py:call(ep_path_mod, where, [], #{}, ?SUB),
            ok = py:add_python_path(Dir),
            %% exec runs in every sub-interpreter: each one finds the module.
            ok = py:exec(<<"import ep_path_mod">>, ?SUB),
            N = 2 * py_subinterp:size(),
            {ok, Results} = py:parallel([{ep_path_mod, where, []} || _ <- lists:seq(1, N)]),
            Results = [{ok, <<"ep_path_mod">>} || _ <- lists:seq(1, N)],
            {ok, MainPath} = py:eval(<<"__import__('sys').path">>),
            {ok, MainPath} = py:eval(<<"__import__('sys').path">>, #{}, ?SUB),
            true = lists:member(list_to_binary(Dir), MainPath);
        false ->
            ok = py:add_python_path(Dir),
            {ok, <<"ep_path_mod">>} = py:call(ep_path_mod, where, [])
    end.

%% @doc eval/3's locals and call/5's keyword arguments follow the same rules as on the main
%% pool.
-spec eval_locals_and_kwargs(ct_suite:ct_config()) -> term().
eval_locals_and_kwargs(_Config) ->
    {ok, 42} = py:eval(<<"x + y">>, #{x => 40, <<"y">> => 2}, opts()),
    {ok, 255} = py:call(builtins, int, [<<"ff">>], [{base, 16}], opts()),
    {ok, 255} = py:call(builtins, int, [<<"ff">>], #{"base" => 16}, opts()),
    Main = py:call(builtins, int, [<<"1">>], [{base, 10}, {base, 10}]),
    Main = py:call(builtins, int, [<<"1">>], [{base, 10}, {base, 10}], opts()),
    {ok, [1, 2]} = py:call(builtins, sorted, [[2, 1]], #{}, opts()).

%% @doc subinterp_supported/0 says whether the pool exists; without it the option is refused
%% and parallel/1 still runs (on the executors).
-spec subinterp_option_tells_the_truth(ct_suite:ct_config()) -> term().
subinterp_option_tells_the_truth(_Config) ->
    {ok, FreeThreaded} =
        py:eval(<<"bool(__import__('sysconfig').get_config_var('Py_GIL_DISABLED'))">>),
    {ok, Minor} = py:eval(<<"__import__('sys').version_info[1]">>),
    Expected = Minor >= 12 andalso not FreeThreaded,
    Expected = supported(),
    case Expected of
        true ->
            %% The code really runs in another interpreter: the main one has imported the
            %% NIF's erlang._native, a sub-interpreter cannot.
            {ok, true} = py:eval(<<"'erlang._native' in __import__('sys').modules">>),
            {ok, false} = py:eval(<<"'erlang._native' in __import__('sys').modules">>, #{},
                                  ?SUB),
            true = py_subinterp:size() >= 1;
        false ->
            {error, subinterpreters_not_supported} = py:call(math, sqrt, [4], #{}, ?SUB),
            {ok, [{ok, 2.0}]} = py:parallel([{math, sqrt, [4]}])
    end.

%% @doc A bad `num_subinterp_workers' makes requests to the pool return an error naming it
%% (the application and the main pool keep running); a good one is honoured.
-spec bad_pool_size_is_an_error(ct_suite:ct_config()) -> term().
bad_pool_size_is_an_error(_Config) ->
    ok = py_test_util:stop(),
    try
        ok = application:set_env(erlang_python, num_subinterp_workers, 0),
        ok = py_test_util:start(),
        case supported() of
            true ->
                {error, {bad_config, {num_subinterp_workers, 0}}} =
                    py:eval(<<"1">>, #{}, ?SUB),
                {error, {bad_config, _}} = py:parallel([{math, sqrt, [4]}]);
            false ->
                {error, subinterpreters_not_supported} = py:eval(<<"1">>, #{}, ?SUB)
        end,
        {ok, 2.0} = py:call(math, sqrt, [4]),
        ok = py_test_util:stop(),
        ok = application:set_env(erlang_python, num_subinterp_workers, 3),
        ok = py_test_util:start(),
        {ok, [{ok, 1.0}]} = py:parallel([{math, sqrt, [1]}]),
        3 = py_subinterp:size()
    after
        ok = py_test_util:stop(),
        application:unset_env(erlang_python, num_subinterp_workers),
        ok = py_test_util:start()
    end.

%% @doc A job that ignores its interrupt (it catches `erlang.Interrupted' and goes on) does not
%% cost the pool a sub-interpreter for good: after a while a new one, with the pool's `exec'
%% history replayed, takes its place, and the old one's thread ends when the job returns.
-spec stuck_subinterpreter_is_replaced(ct_suite:ct_config()) -> term().
stuck_subinterpreter_is_replaced(Config) ->
    case supported() of
        false ->
            {error, subinterpreters_not_supported} = py:eval(<<"1">>, #{}, ?SUB);
        true ->
            ok = py_test_util:stop(),
            try
                ok = application:set_env(erlang_python, num_subinterp_workers, 1),
                ok = py_test_util:start(),
                Flag = filename:join(?config(priv_dir, Config), "ep_release_stubborn"),
                ok = py:exec(<<"import os, time\n"
                               "def ep_defined():\n"
                               "    return 'kept'\n"
                               "def ep_stubborn(flag):\n"
                               "    while not os.path.exists(flag):\n"
                               "        try:\n"
                               "            time.sleep(0.01)\n"
                               "        except BaseException:\n"
                               "            pass\n"
                               "    return 'released'\n">>, ?SUB),
                2 = subinterp_threads(),
                {error, timeout} = py:call('__main__', ep_stubborn, [list_to_binary(Flag)], #{},
                                           #{pool => subinterp, timeout => 100}),
                %% The only sub-interpreter is stuck: this waits for its replacement, which
                %% has what exec defined.
                {ok, <<"kept">>} = py:call('__main__', ep_defined, [], #{},
                                           #{pool => subinterp, timeout => 60000}),
                %% Both threads (and their interrupters) live while the old job runs.
                4 = subinterp_threads(),
                ok = py:exec(<<"def ep_later():\n    return 'later'\n">>, ?SUB),
                {ok, <<"later">>} = py:call('__main__', ep_later, [], #{}, ?SUB),
                ok = file:write_file(Flag, <<>>),
                py_test_util:wait_until(fun() -> subinterp_threads() =:= 2 end, 30000),
                {ok, [{ok, 2.0}]} = py:parallel([{math, sqrt, [4]}])
            after
                ok = py_test_util:stop(),
                application:unset_env(erlang_python, num_subinterp_workers),
                ok = py_test_util:start()
            end
    end.

%% The threads of the sub-interpreter pool in this OS process (a worker and its interrupter
%% each; Linux names them `py-subinterp-N' and `py-subinterp-in').
-spec subinterp_threads() -> non_neg_integer().
subinterp_threads() ->
    Dir = "/proc/" ++ os:getpid() ++ "/task",
    {ok, Tasks} = file:list_dir(Dir),
    length([T || T <- Tasks,
                 case file:read_file(filename:join([Dir, T, "comm"])) of
                     {ok, <<"py-subinterp-", _/binary>>} -> true;
                     _ -> false
                 end]).

%%% ---------------------------------------------------------------- stop

%% @doc Stopping the application ends the sub-interpreters: a running call is interrupted and
%% answered `{error, stopped}', queued ones too; the stop stays bounded, and a new start
%% gives a working pool.
-spec stop_answers_running_and_queued(ct_suite:ct_config()) -> term().
stop_answers_running_and_queued(_Config) ->
    Size = py_subinterp:size(),
    Self = self(),
    Pids = [spawn(fun() ->
                          Self ! {done, self(),
                                  py:eval(<<"__import__('time').sleep(60)">>, #{},
                                          (opts())#{timeout => 60000})}
                  end) || _ <- lists:seq(1, Size + 2)],
    timer:sleep(500),
    ok = py_test_util:stop(),
    Outcomes = [receive {done, P, R} -> R after 30000 -> no_reply end || P <- Pids],
    ct:pal("outcomes: ~p", [Outcomes]),
    true = lists:all(fun({error, stopped}) -> true;
                        ({error, not_started}) -> true;
                        (_) -> false
                     end, Outcomes),
    ok = py_test_util:start(),
    {ok, 2.0} = py:call(math, sqrt, [4], #{}, opts()).
