%% Which Python starts: the one the NIF was built for, or a configured one of the same version;
%% anything else is refused with a clear error before Python is initialised. Python starts once
%% per OS process, so every refusal is tried in a fresh peer node.
-module(py_start_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1]).
-export([
    built_for_is_the_running_python/1,
    other_version_refused/1,
    other_version_from_config_refused/1,
    missing_executable_refused/1,
    directory_refused/1,
    probe_failure_refused/1,
    not_executable_refused/1,
    same_version_starts/1
]).

all() ->
    [
        built_for_is_the_running_python,
        other_version_refused,
        other_version_from_config_refused,
        missing_executable_refused,
        directory_refused,
        probe_failure_refused,
        not_executable_refused,
        same_version_starts
    ].

init_per_suite(Config) ->
    {ok, _} = application:ensure_all_started(erlang_python),
    Config.

end_per_suite(_Config) ->
    ok = application:stop(erlang_python).

%% interp_info/0 says what the library was built for; the interpreter running in this node (the
%% default one, as no test configures another) is that one.
built_for_is_the_running_python(_Config) ->
    #{built_for := #{version := Version, executable := Executable}} = py_nif:interp_info(),
    {ok, {Major, Minor}} = py:eval(<<"tuple(__import__('sys').version_info[:2])">>),
    {ok, FreeThreaded} = py:eval(
        <<"bool(__import__('sysconfig').get_config_var('Py_GIL_DISABLED'))">>
    ),
    Running = iolist_to_binary(
        io_lib:format("~b.~b~s", [Major, Minor, [$t || FreeThreaded]])
    ),
    ?assertEqual(Version, Running),
    {ok, Executable} = py:eval(<<"__import__('sys').executable">>).

%% A stand-in interpreter that reports another version, given through the OS environment.
other_version_refused(Config) ->
    Fake = fake_python(Config, "other_version", "echo 2.7"),
    {error, Reason} = start_in_peer([{"ERLANG_PYTHON_EXECUTABLE", Fake}], []),
    #{built_for := #{version := Built}} = py_nif:interp_info(),
    FakeBin = list_to_binary(Fake),
    {python_mismatch, #{
        executable := FakeBin,
        executable_version := <<"2.7">>,
        nif_version := Built,
        fix := Fix
    }} = Reason,
    %% The fix names both ways out.
    ?assertNotEqual(nomatch, binary:match(Fix, <<"python_executable">>)),
    ?assertNotEqual(nomatch, binary:match(Fix, <<"rebuild">>)).

%% The same through the application's configuration, which wins over the OS environment.
other_version_from_config_refused(Config) ->
    Fake = fake_python(Config, "other_version_config", "echo 3.99t"),
    {error, {python_mismatch, #{executable_version := <<"3.99t">>}}} =
        start_in_peer([{"ERLANG_PYTHON_EXECUTABLE", "/nonexistent/python"}], [
            {python_executable, Fake}
        ]).

missing_executable_refused(_Config) ->
    {error, {no_such_executable, <<"/nonexistent/bin/python3">>}} =
        start_in_peer([{"ERLANG_PYTHON_EXECUTABLE", "/nonexistent/bin/python3"}], []).

directory_refused(Config) ->
    Dir = ?config(priv_dir, Config),
    DirBin = list_to_binary(Dir),
    {error, {no_such_executable, DirBin}} = start_in_peer([], [{python_executable, Dir}]).

%% An interpreter that fails to run is named with its exit status and what it printed.
probe_failure_refused(Config) ->
    Fake = fake_python(Config, "broken", "echo 'it is broken' >&2; exit 3"),
    FakeBin = list_to_binary(Fake),
    {error, {python_probe_failed, FakeBin, {exit_status, 3, <<"it is broken\n">>}}} =
        start_in_peer([], [{python_executable, Fake}]).

not_executable_refused(Config) ->
    Path = filename:join(?config(priv_dir, Config), "not_executable"),
    ok = file:write_file(Path, <<"#!/bin/sh\necho 3.12\n">>),
    ok = file:change_mode(Path, 8#644),
    PathBin = list_to_binary(Path),
    {error, {python_probe_failed, PathBin, eacces}} = start_in_peer([], [{python_executable, Path}]).

%% The interpreter the library was built for, named explicitly, starts (the check accepts what it
%% should, not only refuses).
same_version_starts(_Config) ->
    #{built_for := #{executable := Executable}} = py_nif:interp_info(),
    ok = start_in_peer([], [{python_executable, Executable}]).

%%% Helpers

%% A shell script standing in for an interpreter: whatever its arguments, it runs Body.
fake_python(Config, Name, Body) ->
    Path = filename:join(?config(priv_dir, Config), Name),
    ok = file:write_file(Path, ["#!/bin/sh\n", Body, "\n"]),
    ok = file:change_mode(Path, 8#755),
    Path.

%% Starts erlang_python in a fresh node with OS environment Env and application environment
%% AppEnv; ok, or the reason py_pool gave for not starting Python.
start_in_peer(Env, AppEnv) ->
    Ebin = filename:dirname(code:which(py)),
    {ok, Peer, Node} = peer:start_link(#{
        name => peer:random_name(?MODULE),
        args => ["-pa", Ebin],
        env => Env
    }),
    try
        [ok = erpc:call(Node, application, set_env, [erlang_python, K, V]) || {K, V} <- AppEnv],
        case erpc:call(Node, application, ensure_all_started, [erlang_python]) of
            {ok, _} ->
                ok;
            {error,
                {erlang_python,
                    {{shutdown, {failed_to_start_child, py_pool, {python_init_failed, Reason}}},
                        _}}} ->
                {error, Reason}
        end
    after
        peer:stop(Peer)
    end.
