%% @doc py:stream/3,4, py:stream_eval/1,2 and py:stream_next/1,2: iterators streamed to Erlang.
-module(py_stream_SUITE).

-include_lib("common_test/include/ct.hrl").

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).

-export([
    stream_generator_function/1,
    stream_kwargs/1,
    stream_non_iterator_is_one_item/1,
    stream_eval_generator/1,
    stream_eval_locals/1,
    stream_large/1,
    stream_nested_iterators_are_items/1,
    stream_error_at_start/1,
    stream_error_while_iterating/1,
    stream_next_lazy_infinite/1,
    stream_next_exhausted/1,
    stream_next_bare_handle/1,
    stream_next_default_batch/1,
    stream_next_not_an_iterator/1,
    stream_next_bad_args/1,
    stream_next_from_many_processes/1,
    stream_generator_side_effects_once/1
]).

-spec all() -> [atom()].
all() -> py_test_util:cases(?MODULE).

-spec suite() -> [tuple()].
suite() -> [{timetrap, {minutes, 2}}].

-spec init_per_suite(ct_suite:ct_config()) -> ct_suite:ct_config().
init_per_suite(Config) ->
    ok = py_test_util:start(),
    ok = py:exec(<<"def st_gen(n, step=1):\n"
                   "    for i in range(0, n * step, step):\n"
                   "        yield i\n"
                   "def st_fail_after(n):\n"
                   "    for i in range(n):\n"
                   "        yield i\n"
                   "    raise ValueError('stream broke')\n">>),
    Config.

-spec end_per_suite(ct_suite:ct_config()) -> ok.
end_per_suite(_Config) ->
    ok = py_test_util:stop().

-spec init_per_testcase(atom(), ct_suite:ct_config()) -> ct_suite:ct_config().
init_per_testcase(_Case, Config) ->
    py_test_util:flush(),
    Config.

-spec end_per_testcase(atom(), ct_suite:ct_config()) -> ok.
end_per_testcase(_Case, _Config) ->
    ok.

%% @doc stream/3 collects every item a generator function yields, in order.
-spec stream_generator_function(ct_suite:ct_config()) -> term().
stream_generator_function(_Config) ->
    {ok, [0, 1, 2, 3]} = py:stream('__main__', st_gen, [4]),
    {ok, []} = py:stream('__main__', st_gen, [0]),
    {ok, [<<"a">>, <<"b">>]} = py:stream(builtins, iter, [[<<"a">>, <<"b">>]]).

%% @doc stream/4 passes keyword arguments.
-spec stream_kwargs(ct_suite:ct_config()) -> term().
stream_kwargs(_Config) ->
    {ok, [0, 10, 20]} = py:stream('__main__', st_gen, [3], #{step => 10}).

%% @doc A result that is not an iterator is one item (lists and ranges included).
-spec stream_non_iterator_is_one_item(ct_suite:ct_config()) -> term().
stream_non_iterator_is_one_item(_Config) ->
    {ok, [2.0]} = py:stream(math, sqrt, [4]),
    {ok, [[1, 2]]} = py:stream_eval(<<"[1, 2]">>).

%% @doc stream_eval/1 streams a generator expression.
-spec stream_eval_generator(ct_suite:ct_config()) -> term().
stream_eval_generator(_Config) ->
    {ok, [0, 2, 4, 6]} = py:stream_eval(<<"(x * 2 for x in range(4))">>),
    {ok, [{0, <<"a">>}, {1, <<"b">>}]} = py:stream_eval(<<"enumerate(['a', 'b'])">>).

%% @doc stream_eval/2 sees its locals.
-spec stream_eval_locals(ct_suite:ct_config()) -> term().
stream_eval_locals(_Config) ->
    {ok, [5, 6, 7]} = py:stream_eval(<<"iter(range(st_lo, st_lo + 3))">>, #{st_lo => 5}).

%% @doc A stream longer than one batch (1000 items) arrives whole and in order.
-spec stream_large(ct_suite:ct_config()) -> term().
stream_large(_Config) ->
    N = 10007,
    Expected = lists:seq(0, N - 1),
    {ok, Expected} = py:stream('__main__', st_gen, [N]).

%% @doc An item that is itself an iterator is an item (a handle), and the outer stream goes on.
-spec stream_nested_iterators_are_items(ct_suite:ct_config()) -> term().
stream_nested_iterators_are_items(_Config) ->
    {ok, [A, B]} = py:stream_eval(<<"(iter([i, i]) for i in range(2))">>),
    true = is_reference(A) andalso is_reference(B),
    {ok, [1, 1]} = py:call(builtins, list, [B]).

%% @doc An exception from the call itself is {error, {Type, Msg}} (not double-wrapped).
-spec stream_error_at_start(ct_suite:ct_config()) -> term().
stream_error_at_start(_Config) ->
    {error, {'NameError', _}} = py:stream_eval(<<"st_no_such_name">>),
    {error, {'ModuleNotFoundError', _}} = py:stream(st_no_such_module, f, []),
    {error, {'ZeroDivisionError', _}} = py:stream_eval(<<"1 / 0">>).

%% @doc An exception while iterating has the same shape, after any number of items.
-spec stream_error_while_iterating(ct_suite:ct_config()) -> term().
stream_error_while_iterating(_Config) ->
    {error, {'ValueError', <<"stream broke">>}} = py:stream('__main__', st_fail_after, [3]),
    {error, {'ValueError', <<"stream broke">>}} = py:stream('__main__', st_fail_after, [2500]),
    {ok, {generator, G}} = py:call('__main__', st_fail_after, [2]),
    {ok, [0, 1]} = py:stream_next(G, 2),
    {error, {'ValueError', <<"stream broke">>}} = py:stream_next(G, 2).

%% @doc stream_next/2 pulls from an infinite iterator batch by batch; stopping early is fine.
-spec stream_next_lazy_infinite(ct_suite:ct_config()) -> term().
stream_next_lazy_infinite(_Config) ->
    {ok, {generator, _} = G} = py:eval(<<"__import__('itertools').count()">>),
    {ok, [0, 1, 2]} = py:stream_next(G, 3),
    {ok, [3]} = py:stream_next(G, 1),
    {ok, Items} = py:stream_next(G, 500),
    Items = lists:seq(4, 503).

%% @doc The last batch is {done, Items}; pulling again from an exhausted iterator gives {done, []}.
-spec stream_next_exhausted(ct_suite:ct_config()) -> term().
stream_next_exhausted(_Config) ->
    {ok, G} = py:call('__main__', st_gen, [3]),
    {ok, [0, 1]} = py:stream_next(G, 2),
    {done, [2]} = py:stream_next(G, 2),
    {done, []} = py:stream_next(G, 2).

%% @doc The bare handle inside {generator, Handle} works too.
-spec stream_next_bare_handle(ct_suite:ct_config()) -> term().
stream_next_bare_handle(_Config) ->
    {ok, {generator, H}} = py:call('__main__', st_gen, [2]),
    {done, [0, 1]} = py:stream_next(H, 5).

%% @doc stream_next/1 takes up to 100 items.
-spec stream_next_default_batch(ct_suite:ct_config()) -> term().
stream_next_default_batch(_Config) ->
    {ok, G} = py:call('__main__', st_gen, [250]),
    {ok, First} = py:stream_next(G),
    100 = length(First),
    {ok, _} = py:stream_next(G),
    {done, Last} = py:stream_next(G),
    50 = length(Last).

%% @doc A handle to an object that is not an iterator gives a TypeError.
-spec stream_next_not_an_iterator(ct_suite:ct_config()) -> term().
stream_next_not_an_iterator(_Config) ->
    {ok, H} = py:eval(<<"object()">>),
    {error, {'TypeError', <<"'object' object is not an iterator">>}} = py:stream_next(H, 1).

%% @doc Bad arguments raise function_clause; a reference that is no handle is a TypeError.
-spec stream_next_bad_args(ct_suite:ct_config()) -> term().
stream_next_bad_args(_Config) ->
    {ok, G} = py:call('__main__', st_gen, [1]),
    {'EXIT', {function_clause, _}} = (catch py:stream_next(G, 0)),
    {'EXIT', {function_clause, _}} = (catch py:stream_next(G, -1)),
    {'EXIT', {function_clause, _}} = (catch py:stream_next(not_a_handle, 1)),
    {error, {'TypeError', _}} = py:stream_next(make_ref(), 1).

%% @doc Many processes streaming at once each get their own complete, ordered stream.
-spec stream_next_from_many_processes(ct_suite:ct_config()) -> term().
stream_next_from_many_processes(_Config) ->
    Self = self(),
    Pids = [spawn_link(fun() -> Self ! {self(), py:stream('__main__', st_gen, [I * 10])} end)
            || I <- lists:seq(1, 50)],
    lists:foreach(
        fun({I, Pid}) ->
            Expected = lists:seq(0, I * 10 - 1),
            receive {Pid, {ok, Expected}} -> ok end
        end,
        lists:zip(lists:seq(1, 50), Pids)).

%% @doc Each item is produced once: streaming never re-runs the generator.
-spec stream_generator_side_effects_once(ct_suite:ct_config()) -> term().
stream_generator_side_effects_once(_Config) ->
    ok = py:exec(<<"st_seen = []\n"
                   "def st_logged(n):\n"
                   "    for i in range(n):\n"
                   "        st_seen.append(i)\n"
                   "        yield i\n">>),
    {ok, L} = py:stream('__main__', st_logged, [2500]),
    {ok, L} = py:eval(<<"st_seen">>).
