%% @doc py:eval/1,2,3 and py:exec/1: the shared namespace, locals, errors, unicode code.
-module(py_eval_SUITE).

-include_lib("common_test/include/ct.hrl").

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).

-export([
    eval_expression/1,
    eval_string_code/1,
    eval_locals/1,
    eval_locals_key_types/1,
    eval_locals_persist/1,
    eval_locals_merged/1,
    eval_locals_shared_between_processes/1,
    eval_timeout_arg/1,
    eval_timeout/1,
    eval_statement_is_syntax_error/1,
    eval_errors/1,
    eval_generator/1,
    eval_bad_args/1,
    exec_returns_ok/1,
    exec_defines_for_eval_and_call/1,
    exec_shared_between_processes/1,
    exec_errors/1,
    exec_traceback/1,
    exec_bad_args/1,
    unicode_code/1,
    unicode_identifiers/1,
    unicode_string_code/1
]).

-spec all() -> [atom()].
all() -> py_test_util:cases(?MODULE).

-spec suite() -> [tuple()].
suite() -> [{timetrap, {minutes, 2}}].

-spec init_per_suite(ct_suite:ct_config()) -> ct_suite:ct_config().
init_per_suite(Config) ->
    ok = py_test_util:start(),
    Config.

-spec end_per_suite(ct_suite:ct_config()) -> ok.
end_per_suite(_Config) ->
    ok = py_test_util:stop().

-spec init_per_testcase(atom(), ct_suite:ct_config()) -> ct_suite:ct_config().
init_per_testcase(_Case, Config) ->
    ok = py_test_util:start(),
    py_test_util:flush(),
    Config.

-spec end_per_testcase(atom(), ct_suite:ct_config()) -> ok.
end_per_testcase(_Case, _Config) ->
    ok.

%%% ---------------------------------------------------------------- eval

%% @doc eval/1 evaluates an expression and converts the result.
-spec eval_expression(ct_suite:ct_config()) -> term().
eval_expression(_Config) ->
    {ok, 3} = py:eval(<<"1 + 2">>),
    {ok, none} = py:eval(<<"None">>),
    {ok, [1, 4, 9]} = py:eval(<<"[x * x for x in range(1, 4)]">>),
    {ok, <<"abc">>} = py:eval(<<"'a' + 'bc'">>),
    {ok, 1267650600228229401496703205376} = py:eval(<<"2 ** 100">>).

%% @doc The code may be a string (charlist) as well as a binary.
-spec eval_string_code(ct_suite:ct_config()) -> term().
eval_string_code(_Config) ->
    {ok, 3} = py:eval("1 + 2"),
    {ok, 30} = py:eval("x * y", #{x => 5, y => 6}),
    {ok, 30} = py:eval("x * y", #{x => 5, y => 6}, 5000).

%% @doc eval/2 makes the locals visible to the expression.
-spec eval_locals(ct_suite:ct_config()) -> term().
eval_locals(_Config) ->
    {ok, 30} = py:eval(<<"ep_x * ep_y">>, #{ep_x => 5, ep_y => 6}),
    {ok, <<"ab">>} = py:eval(<<"ep_s + ep_t">>, #{ep_s => <<"a">>, ep_t => b}),
    {ok, 6} = py:eval(<<"sum(ep_l)">>, #{ep_l => [1, 2, 3]}),
    {ok, 2} = py:eval(<<"len(ep_m)">>, #{ep_m => #{a => 1, b => 2}}),
    {ok, 3} = py:eval(<<"1 + 2">>, #{}).

%% @doc Locals keys can be atoms, binaries or strings.
-spec eval_locals_key_types(ct_suite:ct_config()) -> term().
eval_locals_key_types(_Config) ->
    {ok, 6} = py:eval(<<"ep_ka + ep_kb + ep_kc">>,
                      #{ep_ka => 1, <<"ep_kb">> => 2, "ep_kc" => 3}).

%% @doc Locals stay visible to later evals.
-spec eval_locals_persist(ct_suite:ct_config()) -> term().
eval_locals_persist(_Config) ->
    {ok, 42} = py:eval(<<"ep_persist_k">>, #{ep_persist_k => 42}),
    {ok, 42} = py:eval(<<"ep_persist_k">>),
    {ok, 43} = py:eval(<<"ep_persist_k + 1">>, #{}),
    %% Rebinding replaces the value.
    {ok, 7} = py:eval(<<"ep_persist_k">>, #{ep_persist_k => 7}),
    {ok, 7} = py:eval(<<"ep_persist_k">>).

%% @doc Locals of successive evals are merged into one namespace.
-spec eval_locals_merged(ct_suite:ct_config()) -> term().
eval_locals_merged(_Config) ->
    {ok, 1} = py:eval(<<"ep_a1">>, #{ep_a1 => 1}),
    {ok, 2} = py:eval(<<"ep_b1">>, #{ep_b1 => 2}),
    {ok, 3} = py:eval(<<"ep_a1 + ep_b1">>),
    {ok, 13} = py:eval(<<"ep_a1 + ep_b1 + ep_c1">>, #{ep_c1 => 10}).

%% @doc Locals set by one process are visible to evals from another (one shared namespace).
-spec eval_locals_shared_between_processes(ct_suite:ct_config()) -> term().
eval_locals_shared_between_processes(_Config) ->
    Job = py_test_util:spawn_call(fun() -> py:eval(<<"ep_shared_v">>, #{ep_shared_v => 99}) end),
    {ok, 99} = py_test_util:await_call(Job, 10000),
    {ok, 99} = py:eval(<<"ep_shared_v">>),
    ok = py:exec(<<"def ep_get_shared_v():\n    return ep_shared_v\n">>),
    {ok, 99} = py:call('__main__', ep_get_shared_v, []).

%% @doc eval/3 accepts an integer timeout and infinity.
-spec eval_timeout_arg(ct_suite:ct_config()) -> term().
eval_timeout_arg(_Config) ->
    {ok, 2} = py:eval(<<"1 + 1">>, #{}, 5000),
    {ok, 2} = py:eval(<<"1 + 1">>, #{}, infinity).

%% @doc eval/3 times out, frees the executor and leaves no late reply.
-spec eval_timeout(ct_suite:ct_config()) -> term().
eval_timeout(_Config) ->
    N = py:num_executors(),
    [{error, timeout} = py:eval(<<"__import__('time').sleep(100)">>, #{}, 300)
     || _ <- lists:seq(1, N)],
    ok = py_test_util:wait_pool_idle(),
    {ok, 2} = py:eval(<<"1 + 1">>),
    %% Racing its timeout: a caller scheduled late may find the reply already there.
    case py:eval(<<"__import__('time').sleep(0.3)">>, #{}, 100) of
        {error, timeout} -> ok;
        {ok, none} -> ok
    end,
    ok = py_test_util:assert_no_message(500),
    ok = py_test_util:assert_mailbox_empty().

%% @doc A statement given to eval is a SyntaxError.
-spec eval_statement_is_syntax_error(ct_suite:ct_config()) -> term().
eval_statement_is_syntax_error(_Config) ->
    {error, {'SyntaxError', Msg}} = py:eval(<<"x = 1">>),
    true = is_binary(Msg),
    {error, {'SyntaxError', _}} = py:eval(<<"if True">>),
    {error, {'SyntaxError', _}} = py:eval(<<"import os">>),
    {error, {'SyntaxError', _}} = py:eval(<<"def f(): pass">>),
    {error, {'SyntaxError', _}} = py:eval(<<"1 +">>),
    {error, {'SyntaxError', _}} = py:eval(<<>>).

%% @doc Exceptions raised by the expression come back as {error, {Type, Msg}}.
-spec eval_errors(ct_suite:ct_config()) -> term().
eval_errors(_Config) ->
    {error, {'NameError', <<"name 'ep_undefined_x' is not defined">>}} =
        py:eval(<<"ep_undefined_x">>),
    {error, {'ZeroDivisionError', <<"division by zero">>}} = py:eval(<<"1/0">>),
    {error, {'KeyError', <<"'k'">>}} = py:eval(<<"{}['k']">>),
    {error, {'ModuleNotFoundError', <<"No module named 'ep_nosuch'">>}} =
        py:eval(<<"__import__('ep_nosuch')">>),
    Tb = py:last_traceback(),
    {match, _} = re:run(Tb, <<"ModuleNotFoundError">>),
    {ok, 2} = py:eval(<<"1 + 1">>).

%% @doc An eval whose value is a generator gives {ok, {generator, Handle}}.
-spec eval_generator(ct_suite:ct_config()) -> term().
eval_generator(_Config) ->
    {ok, {generator, G}} = py:eval(<<"(i for i in range(3))">>),
    {ok, [0, 1, 2]} = py:call(builtins, list, [G]).

%% @doc Code that is not a binary/string or locals that are not a map raise.
-spec eval_bad_args(ct_suite:ct_config()) -> term().
eval_bad_args(_Config) ->
    Bad = [badarg, function_clause],
    _ = py_test_util:expect_raise(fun() -> py:eval(123) end, Bad),
    _ = py_test_util:expect_raise(fun() -> py:eval({code}) end, Bad),
    _ = py_test_util:expect_raise(fun() -> py:eval(<<"1">>, [{a, 1}]) end, Bad),
    _ = py_test_util:expect_raise(fun() -> py:eval(<<"1">>, #{}, <<"1">>) end, Bad),
    {ok, 1} = py:eval(<<"1">>).

%%% ---------------------------------------------------------------- exec

%% @doc exec/1 returns ok for statements, blocks and empty code.
-spec exec_returns_ok(ct_suite:ct_config()) -> term().
exec_returns_ok(_Config) ->
    ok = py:exec(<<"pass">>),
    ok = py:exec(<<>>),
    ok = py:exec(<<"import math\nep_e1 = math.floor(2.5)\n">>),
    ok = py:exec("ep_e2 = 2"),
    ok = py:exec(<<"for i in range(3):\n    ep_e3 = i\n">>),
    {ok, {2, 2, 2}} = py:eval(<<"(ep_e1, ep_e2, ep_e3)">>).

%% @doc Names defined by exec are visible to eval and to call('__main__', ...).
-spec exec_defines_for_eval_and_call(ct_suite:ct_config()) -> term().
exec_defines_for_eval_and_call(_Config) ->
    ok = py:exec(<<"def ep_double(x):\n    return 2 * x\n\nep_const = 21\n">>),
    {ok, 42} = py:eval(<<"ep_double(ep_const)">>),
    {ok, 42} = py:call('__main__', ep_double, [21]),
    {ok, 10} = py:eval(<<"ep_double(ep_v)">>, #{ep_v => 5}),
    %% exec sees eval locals too.
    ok = py:exec(<<"ep_from_locals = ep_v + 1">>),
    {ok, 6} = py:eval(<<"ep_from_locals">>).

%% @doc What one process execs, another process evals (one shared namespace).
-spec exec_shared_between_processes(ct_suite:ct_config()) -> term().
exec_shared_between_processes(_Config) ->
    Job = py_test_util:spawn_call(
            fun() -> py:exec(<<"ep_shared_exec = {'k': [1, 2]}">>) end),
    ok = py_test_util:await_call(Job, 10000),
    {ok, #{<<"k">> := [1, 2]}} = py:eval(<<"ep_shared_exec">>),
    Results = py_test_util:pmap(fun(_) -> py:eval(<<"ep_shared_exec['k'][1]">>) end,
                                lists:seq(1, 8)),
    Results = lists:duplicate(8, {ok, 2}).

%% @doc exec errors come back as {error, {Type, Msg}} and do not break the namespace.
-spec exec_errors(ct_suite:ct_config()) -> term().
exec_errors(_Config) ->
    {error, {'ZeroDivisionError', <<"division by zero">>}} = py:exec(<<"1/0">>),
    {error, {'SyntaxError', _}} = py:exec(<<"def (:">>),
    {error, {'NameError', _}} = py:exec(<<"ep_undefined_name_xyz">>),
    {error, {'ModuleNotFoundError', _}} = py:exec(<<"import ep_nosuch_mod">>),
    {error, {'IndentationError', _}} = py:exec(<<"if True:\nx = 1\n">>),
    {error, {stop_iteration, none}} = py:exec(<<"next(iter([]))">>),
    %% Statements before the failing one have run.
    {error, {'ValueError', <<"late">>}} = py:exec(<<"ep_before = 1\nraise ValueError('late')\n">>),
    {ok, 1} = py:eval(<<"ep_before">>),
    ok = py:exec(<<"pass">>).

%% @doc An exec error stores its traceback for last_traceback/0.
-spec exec_traceback(ct_suite:ct_config()) -> term().
exec_traceback(_Config) ->
    {error, {'RuntimeError', <<"from exec">>}} =
        py:exec(<<"def ep_exec_tb():\n    raise RuntimeError('from exec')\n\nep_exec_tb()\n">>),
    Tb = py:last_traceback(),
    {match, _} = re:run(Tb, <<"ep_exec_tb">>),
    {match, _} = re:run(Tb, <<"RuntimeError">>).

%% @doc exec with code that is not a binary/string raises.
-spec exec_bad_args(ct_suite:ct_config()) -> term().
exec_bad_args(_Config) ->
    Bad = [badarg, function_clause],
    _ = py_test_util:expect_raise(fun() -> py:exec(123) end, Bad),
    _ = py_test_util:expect_raise(fun() -> py:exec(#{}) end, Bad),
    ok = py:exec(<<"pass">>).

%%% ---------------------------------------------------------------- unicode

%% @doc UTF-8 code and string literals work in eval and exec.
-spec unicode_code(ct_suite:ct_config()) -> term().
unicode_code(_Config) ->
    {ok, <<"日本é"/utf8>>} = py:eval(<<"'日本' + 'é'"/utf8>>),
    {ok, 2} = py:eval(<<"len('日本')"/utf8>>),
    {ok, <<"✓"/utf8>>} = py:eval(<<"ep_u"/utf8>>, #{ep_u => <<"✓"/utf8>>}),
    ok = py:exec(<<"ep_greeting = 'こんにちは'"/utf8>>),
    {ok, <<"こんにちは"/utf8>>} = py:eval(<<"ep_greeting">>),
    {ok, 5} = py:eval(<<"len(ep_greeting)">>).

%% @doc Non-ASCII Python identifiers work (exec, eval, locals and call).
-spec unicode_identifiers(ct_suite:ct_config()) -> term().
unicode_identifiers(_Config) ->
    ok = py:exec(<<"café = 3\ndef naïve(x):\n    return x + café\n"/utf8>>),
    {ok, 6} = py:eval(<<"café * 2"/utf8>>),
    {ok, 13} = py:call('__main__', 'naïve', [10]),
    {ok, 13} = py:call(<<"__main__">>, <<"naïve"/utf8>>, [10]),
    {ok, 5} = py:eval(<<"日本 + 1"/utf8>>, #{'日本' => 4}).

%% @doc A charlist with non-Latin-1 code points is accepted as code.
-spec unicode_string_code(ct_suite:ct_config()) -> term().
unicode_string_code(_Config) ->
    {ok, 2} = py:eval("len('日本')"),
    ok = py:exec("ep_cl = '日本'"),
    {ok, <<"日本"/utf8>>} = py:eval(<<"ep_cl">>).
