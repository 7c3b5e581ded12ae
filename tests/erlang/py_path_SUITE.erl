%% @doc The application's own Python modules: the `python_path' application variable (paths,
%% `{priv, App}', `{priv, App, SubDir}'; order and precedence on `sys.path'; bad entries fail
%% the start naming them; a restart replaces them) and py:add_python_path/1.
%%
%% The modules live in priv_dir: plain directories, and the `priv' directories of two
%% applications made for the suite, one in a directory named after it (found by
%% `code:priv_dir/1') and one not (found beside its `.app' file).
-module(py_path_SUITE).

-include_lib("common_test/include/ct.hrl").

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).

-export([
    entries_in_order_before_the_rest/1,
    priv_entries/1,
    one_path_and_the_1_6_default/1,
    cwd_not_on_sys_path/1,
    restart_replaces_entries/1,
    bad_entries_fail_the_start/1,
    add_python_path/1,
    add_python_path_errors/1
]).

-spec all() -> [atom()].
all() -> py_test_util:cases(?MODULE).

-spec suite() -> [tuple()].
suite() -> [{timetrap, {minutes, 3}}].

-spec init_per_suite(ct_suite:ct_config()) -> ct_suite:ct_config().
init_per_suite(Config) ->
    Priv = ?config(priv_dir, Config),
    [One, Two, Three] = [filename:join(Priv, D) || D <- ["one", "two", "three"]],
    %% `shadow' is in both one and two: the first directory wins.
    module(One, "mod_one", "WHERE = 'one'"),
    module(One, "shadow", "WHERE = 'one'"),
    module(Two, "mod_two", "WHERE = 'two'"),
    module(Two, "shadow", "WHERE = 'two'"),
    module(Three, "mod_three", "WHERE = 'three'"),
    File = filename:join(Priv, "a_file"),
    ok = file:write_file(File, <<>>),
    %% pyapp_a is known to the code server by its directory's name; pyapp_b only by its .app.
    AppA = filename:join(Priv, "pyapp_a"),
    application(AppA, pyapp_a),
    module(filename:join([AppA, "priv"]), "mod_app_a", "WHERE = 'pyapp_a'"),
    module(filename:join([AppA, "priv", "python"]), "mod_app_a_sub", "WHERE = 'pyapp_a/python'"),
    AppB = filename:join(Priv, "unrelated_name"),
    application(AppB, pyapp_b),
    module(filename:join([AppB, "priv", "py"]), "mod_app_b", "WHERE = 'pyapp_b/py'"),
    ok = py_test_util:start(),
    {error, bad_name} = code:priv_dir(pyapp_b),
    %% Other suites of the same run may have put directories of their own on sys.path, before
    %% or after erlang_python's package: the application's go right after the package.
    {ok, Package} = py:eval(<<"__import__('os').path.dirname("
                              "__import__('os').path.dirname(__import__('erlang').__file__))">>),
    [{package, Package}, {one, One}, {two, Two}, {three, Three}, {file, File},
     {app_a, AppA}, {app_b, AppB}, {base_path, sys_path()} | Config].

-spec end_per_suite(ct_suite:ct_config()) -> ok.
end_per_suite(Config) ->
    _ = [code:del_path(filename:join(?config(K, Config), "ebin")) || K <- [app_a, app_b]],
    ok = py_test_util:stop().

-spec init_per_testcase(atom(), ct_suite:ct_config()) -> ct_suite:ct_config().
init_per_testcase(_Case, Config) ->
    ok = py_test_util:start(),
    Config.

%% Back to no python_path: the application's directories leave sys.path.
-spec end_per_testcase(atom(), ct_suite:ct_config()) -> ok.
end_per_testcase(_Case, Config) ->
    ok = application:unset_env(erlang_python, python_path),
    ok = py_test_util:restart(),
    Base = ?config(base_path, Config),
    Base = sys_path(),
    ok.

%%% ---------------------------------------------------------------- cases

%% @doc The directories go on sys.path in the order given, right after erlang_python's own
%% package and before PYTHONPATH, the standard library and site-packages; a module in the
%% first wins over one of the same name in the next; duplicates are dropped.
-spec entries_in_order_before_the_rest(ct_suite:ct_config()) -> term().
entries_in_order_before_the_rest(Config) ->
    [One, Two] = [list_to_binary(?config(K, Config)) || K <- [one, two]],
    restart_with([One, Two, binary_to_list(One)]),
    ok = assert_path(Config, [One, Two]),
    {ok, <<"one">>} = py:eval(<<"__import__('mod_one').WHERE">>),
    {ok, <<"two">>} = py:eval(<<"__import__('mod_two').WHERE">>),
    {ok, <<"one">>} = py:eval(<<"__import__('shadow').WHERE">>),
    forget([mod_one, mod_two, shadow]),
    restart_with([Two, One]),
    ok = assert_path(Config, [Two, One]),
    {ok, <<"two">>} = py:eval(<<"__import__('shadow').WHERE">>),
    forget([shadow]).

%% @doc `{priv, App}' is the application's priv directory, `{priv, App, SubDir}' a directory
%% in it; an application the code server knows only by its .app file works too.
-spec priv_entries(ct_suite:ct_config()) -> term().
priv_entries(Config) ->
    [AppA, AppB] = [list_to_binary(?config(K, Config)) || K <- [app_a, app_b]],
    restart_with([{priv, pyapp_a}, {priv, pyapp_a, "python"}, {priv, pyapp_b, <<"py">>}]),
    PrivA = <<AppA/binary, "/priv">>,
    PrivASub = <<AppA/binary, "/priv/python">>,
    PrivBSub = <<AppB/binary, "/priv/py">>,
    ok = assert_path(Config, [PrivA, PrivASub, PrivBSub]),
    {ok, <<"pyapp_a">>} = py:eval(<<"__import__('mod_app_a').WHERE">>),
    {ok, <<"pyapp_a/python">>} = py:eval(<<"__import__('mod_app_a_sub').WHERE">>),
    {ok, <<"pyapp_b/py">>} = py:eval(<<"__import__('mod_app_b').WHERE">>),
    forget([mod_app_a, mod_app_a_sub, mod_app_b]).

%% @doc One path may stand alone (a string or a binary); `""', erlang_python 1.6's default,
%% is no directory at all, like `[]'.
-spec one_path_and_the_1_6_default(ct_suite:ct_config()) -> term().
one_path_and_the_1_6_default(Config) ->
    One = ?config(one, Config),
    OneBin = list_to_binary(One),
    restart_with(One),
    ok = assert_path(Config, [OneBin]),
    restart_with(OneBin),
    ok = assert_path(Config, [OneBin]),
    restart_with(""),
    ok = assert_path(Config, []),
    restart_with([]),
    ok = assert_path(Config, []).

%% @doc The current directory is not on sys.path (nor `'''); `"."' in python_path puts the
%% directory current at start there, as an absolute path.
-spec cwd_not_on_sys_path(ct_suite:ct_config()) -> term().
cwd_not_on_sys_path(Config) ->
    {ok, Cwd} = file:get_cwd(),
    CwdBin = list_to_binary(Cwd),
    Base = ?config(base_path, Config),
    false = lists:member(<<>>, Base),
    false = lists:member(CwdBin, Base),
    restart_with(["."]),
    ok = assert_path(Config, [CwdBin]).

%% @doc A new start takes off the directories of the previous one, those added with
%% add_python_path/1 included, and leaves the rest of sys.path as it was.
-spec restart_replaces_entries(ct_suite:ct_config()) -> term().
restart_replaces_entries(Config) ->
    [One, Two, Three] = [list_to_binary(?config(K, Config)) || K <- [one, two, three]],
    restart_with([One]),
    ok = py:add_python_path(Two),
    ok = assert_path(Config, [One, Two]),
    restart_with([Three]),
    ok = assert_path(Config, [Three]),
    ok = py_test_util:restart(),
    ok = assert_path(Config, [Three]).

%% @doc A bad python_path fails the start with `{bad_config, {python_path, Entry, Reason}}'
%% naming the first bad entry (or `{bad_config, {python_path, Value}}' for a value that is not
%% a list), before anything runs; a good one starts again afterwards.
-spec bad_entries_fail_the_start(ct_suite:ct_config()) -> term().
bad_entries_fail_the_start(Config) ->
    One = ?config(one, Config),
    File = list_to_binary(?config(file, Config)),
    Missing = list_to_binary(filename:join(?config(priv_dir, Config), "missing")),
    AppA = list_to_binary(?config(app_a, Config)),
    Cases = [
        {[One, {priv, no_such_app_xyz}],
         {python_path, {priv, no_such_app_xyz}, {unknown_application, no_such_app_xyz}}},
        {[{priv, no_such_app_xyz, "python"}],
         {python_path, {priv, no_such_app_xyz, "python"}, {unknown_application, no_such_app_xyz}}},
        {[Missing], {python_path, Missing, {not_a_directory, Missing}}},
        {[File], {python_path, File, {not_a_directory, File}}},
        {[{priv, pyapp_a, "nope"}],
         {python_path, {priv, pyapp_a, "nope"}, {not_a_directory, <<AppA/binary, "/priv/nope">>}}},
        {[One, 42], {python_path, 42, bad_entry}},
        {[""], {python_path, "", bad_entry}},
        {[<<>>], {python_path, <<>>, bad_entry}},
        {[{priv, "pyapp_a"}], {python_path, {priv, "pyapp_a"}, bad_entry}},
        {[{priv, pyapp_a, "/etc"}], {python_path, {priv, pyapp_a, "/etc"}, bad_entry}},
        {[{priv, pyapp_a, 7}], {python_path, {priv, pyapp_a, 7}, bad_entry}},
        {[{lib, pyapp_a}], {python_path, {lib, pyapp_a}, bad_entry}},
        {[[-1]], {python_path, [-1], bad_entry}},
        {42, {python_path, 42}},
        {python, {python_path, python}},
        {[One | <<"tail">>], {python_path, [One | <<"tail">>]}}
    ],
    ok = py_test_util:stop(),
    lists:foreach(
        fun({Value, Reason}) ->
            ok = application:set_env(erlang_python, python_path, Value),
            {error, {{shutdown, {failed_to_start_child, py_pool, {bad_config, Reason}}}, _}} =
                application:start(erlang_python),
            {error, not_started} = py:eval(<<"1">>)
        end,
        Cases),
    restart_with([One]),
    {ok, <<"one">>} = py:eval(<<"__import__('mod_one').WHERE">>),
    forget([mod_one]).

%% @doc add_python_path/1 makes a directory importable at once, after the configured ones;
%% adding one again changes nothing.
-spec add_python_path(ct_suite:ct_config()) -> term().
add_python_path(Config) ->
    [One, Two, Three] = [?config(K, Config) || K <- [one, two, three]],
    restart_with([One]),
    {error, {'ModuleNotFoundError', _}} = py:eval(<<"__import__('mod_three').WHERE">>),
    ok = py:add_python_path(Three),
    {ok, <<"three">>} = py:eval(<<"__import__('mod_three').WHERE">>),
    ok = py:add_python_path(list_to_binary(Three)),
    ok = py:add_python_path(One),
    ok = py:add_python_path({priv, pyapp_b, "py"}),
    PrivBSub = list_to_binary(filename:join([?config(app_b, Config), "priv", "py"])),
    [OneBin, TwoBin, ThreeBin] = [list_to_binary(D) || D <- [One, Two, Three]],
    ok = assert_path(Config, [OneBin, ThreeBin, PrivBSub]),
    %% Python code taking a directory off does not stop it from being added again.
    {ok, none} = py:eval(<<"__import__('sys').path.remove(d)">>, #{d => ThreeBin}),
    ok = py:add_python_path(Three),
    ok = py:add_python_path(Two),
    ok = assert_path(Config, [OneBin, PrivBSub, ThreeBin, TwoBin]),
    forget([mod_three]).

%% @doc add_python_path/1 returns the reason a directory cannot be added, raises badarg for
%% an argument of another shape, and returns {error, not_started} without the application.
-spec add_python_path_errors(ct_suite:ct_config()) -> term().
add_python_path_errors(Config) ->
    Base = ?config(base_path, Config),
    File = list_to_binary(?config(file, Config)),
    {error, {not_a_directory, File}} = py:add_python_path(File),
    {error, {unknown_application, no_such_app_xyz}} = py:add_python_path({priv, no_such_app_xyz}),
    [{'EXIT', {badarg, _}} = (catch py:add_python_path(Bad))
     || Bad <- [42, "", <<>>, {priv, "app"}, {priv, pyapp_a, "/abs"}, {priv, pyapp_a, 1},
                [-1], #{}]],
    Base = sys_path(),
    ok = py_test_util:stop(),
    {error, not_started} = py:add_python_path(?config(one, Config)).

%%% ---------------------------------------------------------------- helpers

%% Restarts the application with `Value' as python_path.
-spec restart_with(term()) -> ok.
restart_with(Value) ->
    ok = application:set_env(erlang_python, python_path, Value),
    ok = py_test_util:restart().

%% Fails unless sys.path is what it was when the suite started with `Dirs' right after
%% erlang_python's package.
-spec assert_path(ct_suite:ct_config(), [binary()]) -> ok.
assert_path(Config, Dirs) ->
    Expected = expected(Config, Dirs),
    case sys_path() of
        Expected -> ok;
        Got -> ct:fail({sys_path, #{expected => Expected, got => Got}})
    end.

-spec expected(ct_suite:ct_config(), [binary()]) -> [binary()].
expected(Config, Dirs) ->
    Package = ?config(package, Config),
    {Before, [Package | After]} =
        lists:splitwith(fun(Entry) -> Entry =/= Package end, ?config(base_path, Config)),
    Before ++ [Package | Dirs] ++ After.

-spec sys_path() -> [binary()].
sys_path() ->
    {ok, Path} = py:eval(<<"__import__('sys').path">>),
    Path.

%% Forgets imported modules, so that a later case imports them afresh.
-spec forget([atom()]) -> ok.
forget(Modules) ->
    [{ok, _} = py:eval(<<"__import__('sys').modules.pop(m, None)">>, #{m => M})
     || M <- Modules],
    ok.

-spec module(file:filename(), string(), string()) -> ok.
module(Dir, Name, Body) ->
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    ok = file:write_file(filename:join(Dir, Name ++ ".py"), [Body, "\n"]).

%% A minimal application in Dir (ebin/App.app, on the code path).
-spec application(file:filename(), atom()) -> ok.
application(Dir, App) ->
    Ebin = filename:join(Dir, "ebin"),
    ok = filelib:ensure_dir(filename:join(Ebin, "x")),
    AppFile = filename:join(Ebin, atom_to_list(App) ++ ".app"),
    ok = file:write_file(AppFile, io_lib:format("~p.~n", [
        {application, App, [{vsn, "1"}, {modules, []}, {registered, []},
                            {applications, [kernel, stdlib]}]}
    ])),
    true = code:add_patha(Ebin),
    ok.
