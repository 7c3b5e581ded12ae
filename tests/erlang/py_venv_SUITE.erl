%% @doc Virtual environments (activate_venv/1, deactivate_venv/0, venv_info/0) and reload/1.
%%
%% The venvs are real: created in priv_dir by the interpreter the NIF runs (`python -m venv'),
%% one of them with an editable install made by pip from py_venv_SUITE_data/tinypkg, whose
%% build backend is in-tree so that pip needs no network and no setuptools.
-module(py_venv_SUITE).

-include_lib("common_test/include/ct.hrl").

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).

-export([
    info_inactive/1,
    deactivate_inactive/1,
    activate_info_deactivate/1,
    deactivate_restores_sys_path_exactly/1,
    venv_packages_importable/1,
    venv_entries_after_stdlib_before_site_packages/1,
    string_path/1,
    pth_path_lines/1,
    pth_import_hooks_removed/1,
    editable_install/1,
    activate_same_twice/1,
    switch_venvs/1,
    missing_dir/1,
    file_instead_of_dir/1,
    dir_without_site_packages/1,
    other_python_version/1,
    failed_activation_keeps_active_venv/1,
    path_spliced_nowhere/1,
    bad_path_args/1,
    reload_changed_module/1,
    reload_serves_every_process/1,
    reload_not_loaded/1,
    reload_syntax_error/1,
    reload_error_at_top_level/1,
    reload_name_spliced_nowhere/1,
    reload_bad_args/1
]).

-spec all() -> [atom()].
all() -> py_test_util:cases(?MODULE).

-spec suite() -> [tuple()].
suite() -> [{timetrap, {minutes, 3}}].

-spec init_per_suite(ct_suite:ct_config()) -> ct_suite:ct_config().
init_per_suite(Config) ->
    ok = py_test_util:start(),
    Priv = ?config(priv_dir, Config),
    {ok, Base} = py:eval(<<"__import__('sys')._base_executable">>),
    {ok, XY} = py:eval(<<"'%d.%d' % __import__('sys').version_info[:2]">>),
    %% The site-packages directory name of the running build (3.13t: python3.13t).
    {ok, LibDir} = py:eval(<<"'python%d.%d%s' % (*__import__('sys').version_info[:2], "
                             "'t' if 't' in __import__('sys').abiflags else '')">>),
    %% The editable venv has pip (ensurepip, offline); the others are bare and quick to make.
    Editable = filename:join(Priv, "editable"),
    run(Base, ["-m", "venv", Editable]),
    Project = filename:join(Priv, "tinypkg"),
    ok = copy_dir(filename:join(?config(data_dir, Config), "tinypkg"), Project),
    run(filename:join([Editable, "bin", "python"]),
        ["-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-index",
         "--no-build-isolation", "-e", Project]),
    [VenvA, VenvB] = [filename:join(Priv, N) || N <- ["venv_a", "venv_b"]],
    [run(Base, ["-m", "venv", "--without-pip", V]) || V <- [VenvA, VenvB]],
    [{base_python, Base}, {xy, XY}, {lib_dir, LibDir}, {editable, Editable},
     {project, Project}, {venv_a, VenvA}, {venv_b, VenvB} | Config].

-spec end_per_suite(ct_suite:ct_config()) -> ok.
end_per_suite(_Config) ->
    _ = py:deactivate_venv(),
    ok = py_test_util:stop().

-spec init_per_testcase(atom(), ct_suite:ct_config()) -> ct_suite:ct_config().
init_per_testcase(_Case, Config) ->
    ok = py_test_util:start(),
    ok = py:deactivate_venv(),
    [{sys_path, sys_path()} | Config].

-spec end_per_testcase(atom(), ct_suite:ct_config()) -> ok.
end_per_testcase(_Case, Config) ->
    ok = py:deactivate_venv(),
    %% Every case leaves sys.path as it found it.
    Saved = ?config(sys_path, Config),
    Saved = sys_path(),
    ok.

%%% ---------------------------------------------------------------- helpers

%% Runs an OS program with arguments (no shell); fails the case unless it exits 0.
-spec run(file:filename_all(), [string() | binary()]) -> ok.
run(Exe, Args) ->
    Port = open_port({spawn_executable, Exe},
                     [{args, Args}, exit_status, stderr_to_stdout, binary]),
    collect(Port, Exe, Args, []).

-spec collect(port(), file:filename_all(), list(), [binary()]) -> ok.
collect(Port, Exe, Args, Acc) ->
    receive
        {Port, {data, Data}} -> collect(Port, Exe, Args, [Data | Acc]);
        {Port, {exit_status, 0}} -> ok;
        {Port, {exit_status, N}} ->
            ct:fail({command_failed, Exe, Args, N, iolist_to_binary(lists:reverse(Acc))})
    after 120000 ->
        ct:fail({command_hung, Exe, Args})
    end.

-spec copy_dir(file:filename(), file:filename()) -> ok.
copy_dir(From, To) ->
    ok = filelib:ensure_dir(filename:join(To, "x")),
    {ok, Names} = file:list_dir(From),
    lists:foreach(
      fun(Name) ->
              Src = filename:join(From, Name),
              Dst = filename:join(To, Name),
              case filelib:is_dir(Src) of
                  true -> ok = copy_dir(Src, Dst);
                  false -> {ok, _} = file:copy(Src, Dst)
              end
      end, Names).

-spec sys_path() -> [binary()].
sys_path() ->
    {ok, Path} = py:eval(<<"__import__('sys').path">>),
    Path.

-spec site_packages(ct_suite:ct_config(), atom()) -> binary().
site_packages(Config, Venv) ->
    unicode:characters_to_binary(
      filename:join([?config(Venv, Config), "lib", ?config(lib_dir, Config), "site-packages"])).

-spec write(file:filename_all(), iodata()) -> ok.
write(File, Text) ->
    ok = filelib:ensure_dir(File),
    ok = file:write_file(File, Text).

-spec index_of(term(), list()) -> pos_integer().
index_of(X, List) ->
    index_of(X, List, 1).

index_of(X, [X | _], N) -> N;
index_of(X, [_ | T], N) -> index_of(X, T, N + 1);
index_of(X, [], _) -> ct:fail({not_in_list, X}).

-spec count(term(), list()) -> non_neg_integer().
count(X, List) ->
    length([Y || Y <- List, Y =:= X]).

%% A directory of its own in priv_dir, on sys.path for the duration of Fun.
-spec with_module_dir(ct_suite:ct_config(), fun((binary()) -> T)) -> T.
with_module_dir(Config, Fun) ->
    Dir = unicode:characters_to_binary(
            filename:join(?config(priv_dir, Config), py_test_util:unique_name("mods"))),
    ok = filelib:ensure_path(Dir),
    {ok, none} = py:call(sys, 'path.insert', [0, Dir]),
    try
        Fun(Dir)
    after
        {ok, none} = py:call(sys, 'path.remove', [Dir])
    end.

%%% ---------------------------------------------------------------- venv info

%% @doc venv_info/0 with no venv active is {ok, #{<<"active">> => false}}.
-spec info_inactive(ct_suite:ct_config()) -> term().
info_inactive(_Config) ->
    {ok, #{<<"active">> := false} = Info} = py:venv_info(),
    1 = map_size(Info).

%% @doc deactivate_venv/0 is ok when no venv is active, and changes nothing.
-spec deactivate_inactive(ct_suite:ct_config()) -> term().
deactivate_inactive(Config) ->
    ok = py:deactivate_venv(),
    ok = py:deactivate_venv(),
    Path = ?config(sys_path, Config),
    Path = sys_path().

%% @doc activate -> venv_info has the 1.6 keys (absolute venv path, site-packages, sys.path)
%% -> deactivate -> inactive again.
-spec activate_info_deactivate(ct_suite:ct_config()) -> term().
activate_info_deactivate(Config) ->
    Venv = unicode:characters_to_binary(?config(venv_a, Config)),
    SitePackages = site_packages(Config, venv_a),
    ok = py:activate_venv(Venv),
    {ok, #{<<"active">> := true, <<"venv_path">> := Venv,
           <<"site_packages">> := SitePackages, <<"sys_path">> := SysPath} = Info} =
        py:venv_info(),
    4 = map_size(Info),
    SysPath = sys_path(),
    1 = count(SitePackages, SysPath),
    ok = py:deactivate_venv(),
    {ok, #{<<"active">> := false}} = py:venv_info(),
    0 = count(SitePackages, sys_path()).

%% @doc deactivate gives back the very list object, with the same entries in the same order,
%% also when sys.path was changed while the venv was active.
-spec deactivate_restores_sys_path_exactly(ct_suite:ct_config()) -> term().
deactivate_restores_sys_path_exactly(Config) ->
    Before = sys_path(),
    {ok, Id} = py:eval(<<"id(__import__('sys').path)">>),
    ok = py:activate_venv(?config(editable, Config)),
    true = length(sys_path()) >= length(Before) + 2,
    {ok, none} = py:call(sys, 'path.append', [<<"/nonexistent/added-while-active">>]),
    ok = py:deactivate_venv(),
    Before = sys_path(),
    {ok, Id} = py:eval(<<"id(__import__('sys').path)">>).

%% @doc A module installed in the venv's site-packages imports while the venv is active and
%% not after deactivation.
-spec venv_packages_importable(ct_suite:ct_config()) -> term().
venv_packages_importable(Config) ->
    SitePackages = site_packages(Config, venv_a),
    write(filename:join(SitePackages, "pyvenv_a_mod.py"), "def hello():\n    return 'a'\n"),
    write(filename:join(SitePackages, "pyvenv_a_late.py"), "X = 1\n"),
    {error, {'ModuleNotFoundError', _}} = py:call(pyvenv_a_mod, hello, []),
    ok = py:activate_venv(?config(venv_a, Config)),
    {ok, <<"a">>} = py:call(pyvenv_a_mod, hello, []),
    ok = py:deactivate_venv(),
    %% Imported modules stay imported; new imports from the venv fail.
    {ok, <<"a">>} = py:call(pyvenv_a_mod, hello, []),
    {error, {'ModuleNotFoundError', _}} = py:call(pyvenv_a_late, 'X.bit_length', []).

%% @doc The venv's entries go after the standard library and before the interpreter's own
%% site-packages (so the venv wins over the interpreter's packages, never over the stdlib).
-spec venv_entries_after_stdlib_before_site_packages(ct_suite:ct_config()) -> term().
venv_entries_after_stdlib_before_site_packages(Config) ->
    {ok, Stdlib} = py:call(sysconfig, get_path, [<<"stdlib">>]),
    {ok, [BaseSite | _]} = py:call(site, getsitepackages, []),
    Project = unicode:characters_to_binary(filename:join(?config(project, Config), "src")),
    ok = py:activate_venv(?config(editable, Config)),
    Path = sys_path(),
    SitePackages = site_packages(Config, editable),
    At = index_of(SitePackages, Path),
    true = index_of(Stdlib, Path) < At,
    %% The .pth entries follow their site-packages directory.
    true = index_of(Project, Path) =:= At + 1,
    case lists:member(BaseSite, Path) of
        true -> true = At < index_of(BaseSite, Path);
        false -> At = length(Path) - 1
    end.

%% @doc A string path works like a binary one; the path is made absolute and normalised.
-spec string_path(ct_suite:ct_config()) -> term().
string_path(Config) ->
    Venv = ?config(venv_a, Config),
    ok = py:activate_venv(Venv ++ "/"),
    VenvBin = unicode:characters_to_binary(Venv),
    {ok, #{<<"venv_path">> := VenvBin}} = py:venv_info().

%% @doc Directory lines of a .pth file in the venv's site-packages are added to sys.path;
%% missing directories are not (site.addsitedir semantics).
-spec pth_path_lines(ct_suite:ct_config()) -> term().
pth_path_lines(Config) ->
    Extra = filename:join(?config(priv_dir, Config), "pth_extra"),
    ok = filelib:ensure_path(Extra),
    write(filename:join(Extra, "pyvenv_pth_mod.py"), "VALUE = 'from pth'\n"),
    Pth = filename:join(site_packages(Config, venv_b), "extra.pth"),
    write(Pth, [Extra, "\n", "# a comment\n", "/nonexistent/pyvenv-dir\n"]),
    try
        ok = py:activate_venv(?config(venv_b, Config)),
        Path = sys_path(),
        true = lists:member(unicode:characters_to_binary(Extra), Path),
        false = lists:member(<<"/nonexistent/pyvenv-dir">>, Path),
        {ok, <<"FROM PTH">>} = py:call(pyvenv_pth_mod, 'VALUE.upper', []),
        ok = py:deactivate_venv(),
        false = lists:member(unicode:characters_to_binary(Extra), sys_path())
    after
        ok = file:delete(Pth)
    end.

%% @doc Import hooks that a .pth `import' line installs (as setuptools' editable finders do)
%% are removed by deactivate; activating the venv again installs them once.
-spec pth_import_hooks_removed(ct_suite:ct_config()) -> term().
pth_import_hooks_removed(Config) ->
    SitePackages = site_packages(Config, venv_b),
    write(filename:join(SitePackages, "pyvenv_hook.py"),
          "import sys\n\n"
          "class Finder:\n"
          "    def find_spec(self, name, path=None, target=None):\n"
          "        return None\n\n"
          "def install():\n"
          "    sys.meta_path.append(Finder())\n"
          "    sys.path_hooks.append(lambda path: Finder())\n"),
    write(filename:join(SitePackages, "pyvenv_hook.pth"),
          "import pyvenv_hook; pyvenv_hook.install()\n"),
    Finders = <<"[type(f).__module__ for f in __import__('sys').meta_path]">>,
    Hooks = <<"len(__import__('sys').path_hooks)">>,
    {ok, Before} = py:eval(Finders),
    {ok, NHooks} = py:eval(Hooks),
    try
        ok = py:activate_venv(?config(venv_b, Config)),
        {ok, Active} = py:eval(Finders),
        1 = count(<<"pyvenv_hook">>, Active),
        {ok, NHooks1} = py:eval(Hooks),
        NHooks1 = NHooks + 1,
        ok = py:activate_venv(?config(venv_b, Config)),
        {ok, Active} = py:eval(Finders),
        {ok, NHooks1} = py:eval(Hooks),
        ok = py:deactivate_venv(),
        {ok, Before} = py:eval(Finders),
        {ok, NHooks} = py:eval(Hooks)
    after
        ok = file:delete(filename:join(SitePackages, "pyvenv_hook.pth"))
    end.

%% @doc A package installed with a real `pip install -e' (its .pth names the project's src
%% directory) imports, and edits to its source are picked up by reload/1.
-spec editable_install(ct_suite:ct_config()) -> term().
editable_install(Config) ->
    Src = filename:join([?config(project, Config), "src", "pyvenv_tiny.py"]),
    ok = py:activate_venv(?config(editable, Config)),
    {ok, <<"editable">>} = py:call(pyvenv_tiny, where, []),
    write(Src, "def where():\n    return 'edited in place'\n"),
    ok = py:reload(pyvenv_tiny),
    {ok, <<"edited in place">>} = py:call(pyvenv_tiny, where, []),
    ok = py:deactivate_venv(),
    false = lists:member(
              unicode:characters_to_binary(filename:dirname(Src)), sys_path()).

%% @doc Activating the active venv again leaves one copy of its entries; one deactivate
%% restores the original sys.path.
-spec activate_same_twice(ct_suite:ct_config()) -> term().
activate_same_twice(Config) ->
    Before = sys_path(),
    ok = py:activate_venv(?config(editable, Config)),
    Once = sys_path(),
    ok = py:activate_venv(?config(editable, Config)),
    Once = sys_path(),
    ok = py:deactivate_venv(),
    Before = sys_path().

%% @doc Activating another venv switches: the first one's entries go, the second's come; one
%% deactivate restores the original sys.path.
-spec switch_venvs(ct_suite:ct_config()) -> term().
switch_venvs(Config) ->
    Before = sys_path(),
    A = site_packages(Config, venv_a),
    B = site_packages(Config, venv_b),
    ok = py:activate_venv(?config(venv_a, Config)),
    ok = py:activate_venv(?config(venv_b, Config)),
    Path = sys_path(),
    {false, true} = {lists:member(A, Path), lists:member(B, Path)},
    {ok, #{<<"site_packages">> := B}} = py:venv_info(),
    ok = py:deactivate_venv(),
    Before = sys_path().

%% @doc A directory that does not exist gives {error, {invalid_venv, SitePackages}} (1.6).
-spec missing_dir(ct_suite:ct_config()) -> term().
missing_dir(Config) ->
    Dir = filename:join(?config(priv_dir, Config), "no_such_venv"),
    Expected = unicode:characters_to_binary(
                 filename:join([Dir, "lib", ?config(lib_dir, Config), "site-packages"])),
    {error, {invalid_venv, Expected}} = py:activate_venv(Dir),
    {ok, #{<<"active">> := false}} = py:venv_info().

%% @doc A file where the venv directory should be gives invalid_venv.
-spec file_instead_of_dir(ct_suite:ct_config()) -> term().
file_instead_of_dir(Config) ->
    File = filename:join(?config(priv_dir, Config), "not_a_venv.txt"),
    write(File, "x"),
    {error, {invalid_venv, SitePackages}} = py:activate_venv(list_to_binary(File)),
    true = is_binary(SitePackages),
    {ok, #{<<"active">> := false}} = py:venv_info().

%% @doc A directory without lib/pythonX.Y/site-packages gives invalid_venv.
-spec dir_without_site_packages(ct_suite:ct_config()) -> term().
dir_without_site_packages(Config) ->
    Dir = filename:join(?config(priv_dir, Config), "empty_dir"),
    ok = filelib:ensure_path(Dir),
    {error, {invalid_venv, _}} = py:activate_venv(Dir),
    {ok, #{<<"active">> := false}} = py:venv_info().

%% @doc A venv whose pyvenv.cfg names another Python X.Y (written by venv as `version', by uv
%% and virtualenv as `version_info') is rejected with python_version_mismatch, even when it
%% has a site-packages directory for the running version.
-spec other_python_version(ct_suite:ct_config()) -> term().
other_python_version(Config) ->
    XY = ?config(xy, Config),
    [Major, Minor] = binary:split(XY, <<".">>),
    Other = <<Major/binary, ".", (integer_to_binary(binary_to_integer(Minor) + 1))/binary>>,
    Cases = [{"venv_other_version", "version = ", "python" ++ binary_to_list(Other)},
             {"venv_other_version_info", "version_info = ", "python" ++ binary_to_list(Other)},
             {"venv_other_version_own_dir", "version = ", ?config(lib_dir, Config)}],
    lists:foreach(
      fun({Name, Key, Lib}) ->
              Dir = filename:join(?config(priv_dir, Config), Name),
              ok = filelib:ensure_path(filename:join([Dir, "lib", Lib, "site-packages"])),
              write(filename:join(Dir, "pyvenv.cfg"),
                    ["home = /nonexistent/bin\n", Key, Other, ".0\n"]),
              {error, {python_version_mismatch, Other, XY}} = py:activate_venv(Dir)
      end, Cases),
    {ok, #{<<"active">> := false}} = py:venv_info().

%% @doc A failed activation leaves the active venv active and sys.path unchanged.
-spec failed_activation_keeps_active_venv(ct_suite:ct_config()) -> term().
failed_activation_keeps_active_venv(Config) ->
    ok = py:activate_venv(?config(venv_a, Config)),
    Active = sys_path(),
    {error, {invalid_venv, _}} =
        py:activate_venv(filename:join(?config(priv_dir, Config), "no_such_venv")),
    Active = sys_path(),
    A = site_packages(Config, venv_a),
    {ok, #{<<"active">> := true, <<"site_packages">> := A}} = py:venv_info().

%% @doc A path full of Python syntax is only a path.
-spec path_spliced_nowhere(ct_suite:ct_config()) -> term().
path_spliced_nowhere(_Config) ->
    Path = <<"/nonexistent/x'); import os; os._exit(1) #\"\n">>,
    {error, {invalid_venv, _}} = py:activate_venv(Path),
    {ok, 2} = py:eval(<<"1 + 1">>).

%% @doc Paths that are not binaries or strings raise function_clause; an invalid string badarg.
-spec bad_path_args(ct_suite:ct_config()) -> term().
bad_path_args(_Config) ->
    Bad = [function_clause, badarg],
    function_clause = py_test_util:expect_raise(fun() -> py:activate_venv(42) end, Bad),
    function_clause = py_test_util:expect_raise(fun() -> py:activate_venv(venv) end, Bad),
    function_clause = py_test_util:expect_raise(fun() -> py:activate_venv({"a"}) end, Bad),
    badarg = py_test_util:expect_raise(fun() -> py:activate_venv([-1]) end, Bad),
    {ok, #{<<"active">> := false}} = py:venv_info().

%%% ---------------------------------------------------------------- reload

%% @doc reload/1 (atom, binary or string name) picks up a module file changed on disk.
-spec reload_changed_module(ct_suite:ct_config()) -> term().
reload_changed_module(Config) ->
    with_module_dir(
      Config,
      fun(Dir) ->
              File = filename:join(Dir, "pyvenv_reload_me.py"),
              write(File, "def value():\n    return 1\n"),
              {ok, 1} = py:call(pyvenv_reload_me, value, []),
              %% The sizes differ: the cached bytecode is checked by mtime (seconds) and size.
              write(File, "def value():\n    return 22\n"),
              ok = py:reload(pyvenv_reload_me),
              {ok, 22} = py:call(pyvenv_reload_me, value, []),
              write(File, "def value():\n    return 333\n"),
              ok = py:reload(<<"pyvenv_reload_me">>),
              {ok, 333} = py:call(pyvenv_reload_me, value, []),
              write(File, "def value():\n    return 4444\n"),
              ok = py:reload("pyvenv_reload_me"),
              {ok, 4444} = py:call(pyvenv_reload_me, value, [])
      end).

%% @doc One reload serves every executor: many concurrent callers all see the new code.
-spec reload_serves_every_process(ct_suite:ct_config()) -> term().
reload_serves_every_process(Config) ->
    with_module_dir(
      Config,
      fun(Dir) ->
              File = filename:join(Dir, "pyvenv_reload_all.py"),
              write(File, "def value():\n    return 'old'\n"),
              N = 4 * py:num_executors(),
              Call = fun(_) -> py:call(pyvenv_reload_all, value, []) end,
              Old = lists:duplicate(N, {ok, <<"old">>}),
              Old = py_test_util:pmap(Call, lists:seq(1, N)),
              write(File, "def value():\n    return 'new!'\n"),
              ok = py:reload(pyvenv_reload_all),
              New = lists:duplicate(N, {ok, <<"new!">>}),
              New = py_test_util:pmap(Call, lists:seq(1, N))
      end).

%% @doc Reloading a module that is not imported (or does not exist) is ok and imports nothing.
-spec reload_not_loaded(ct_suite:ct_config()) -> term().
reload_not_loaded(_Config) ->
    ok = py:reload(pyvenv_no_such_module),
    ok = py:reload(<<"pyvenv.no.such">>),
    ok = py:reload("pyvenv_no_such_module"),
    %% A standard module nothing imports (colorsys was, until pydantic, which fastapi loads in
    %% the web suites, started importing it).
    ok = py:reload(<<"tabnanny">>),
    {ok, false} = py:eval(<<"'tabnanny' in __import__('sys').modules">>).

%% @doc A syntax error in the new source gives {error, {'SyntaxError', Msg}}; the module keeps
%% working, and reloads once the file is fixed.
-spec reload_syntax_error(ct_suite:ct_config()) -> term().
reload_syntax_error(Config) ->
    with_module_dir(
      Config,
      fun(Dir) ->
              File = filename:join(Dir, "pyvenv_reload_bad.py"),
              write(File, "def value():\n    return 1\n"),
              {ok, 1} = py:call(pyvenv_reload_bad, value, []),
              write(File, "def value(:\n    return 2\n"),
              {error, {'SyntaxError', Msg}} = py:reload(pyvenv_reload_bad),
              true = is_binary(Msg),
              {ok, 1} = py:call(pyvenv_reload_bad, value, []),
              write(File, "def value():\n    return 333\n"),
              ok = py:reload(pyvenv_reload_bad),
              {ok, 333} = py:call(pyvenv_reload_bad, value, [])
      end).

%% @doc An exception raised by the new source's top level comes back as {error, {Type, Msg}}.
-spec reload_error_at_top_level(ct_suite:ct_config()) -> term().
reload_error_at_top_level(Config) ->
    with_module_dir(
      Config,
      fun(Dir) ->
              File = filename:join(Dir, "pyvenv_reload_raise.py"),
              write(File, "X = 1\n"),
              {ok, 1} = py:call(pyvenv_reload_raise, 'X.__int__', []),
              write(File, "raise ValueError('boom at import')\n"),
              {error, {'ValueError', <<"boom at import">>}} = py:reload(pyvenv_reload_raise)
      end).

%% @doc A module name full of Python syntax is only a name (not loaded: ok).
-spec reload_name_spliced_nowhere(ct_suite:ct_config()) -> term().
reload_name_spliced_nowhere(_Config) ->
    ok = py:reload(<<"x'); import os; os._exit(1) #">>),
    ok = py:reload(<<"sys') or __import__('os')._exit(1) or ('">>),
    {ok, 2} = py:eval(<<"1 + 1">>).

%% @doc A name that is not an atom, binary or string raises badarg.
-spec reload_bad_args(ct_suite:ct_config()) -> term().
reload_bad_args(_Config) ->
    Bad = [function_clause, badarg],
    _ = py_test_util:expect_raise(fun() -> py:reload(42) end, Bad),
    _ = py_test_util:expect_raise(fun() -> py:reload({json}) end, Bad),
    _ = py_test_util:expect_raise(fun() -> py:reload([-1]) end, Bad),
    ok.
