%% @doc Owner of the embedded interpreter's executor pool. Only {@link get_stats/0} (it exists in
%% erlang_python 1.6) and {@link fairness_stats/0} are meant for applications; the rest is internal.
%%
%% `init/1' initialises the interpreter (a no-op after the first time in this OS process),
%% starts the NIF executor pool, puts the directories of the `python_path' application
%% variable on `sys.path' and publishes the pool in `persistent_term' under
%% `{erlang_python, pool}', where {@link py_request} reads it on every request: no request
%% passes through this process. `terminate/2' unpublishes the pool and stops it; `pool_stop'
%% never blocks, so stopping the application cannot hang here. {@link resolve_path/1} is the
%% one place where a directory named in the configuration (or given to
%% {@link py:add_python_path/1}) becomes a path.
-module(py_pool).
-behaviour(gen_server).

-include("py_keys.hrl").

-export([start_link/0, get_stats/0, fairness_stats/0]).
-export([pool_size/0, num_executors/0, resolve_path/1]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).

%% How long the interpreter's version probe may take (a cold start on a loaded machine is slow;
%% only a hung interpreter reaches this).
-define(PROBE_TIMEOUT, 60000).

-record(state, {
    pool :: py_nif:pool()
}).

-type stats() :: #{
    num_workers := non_neg_integer(),
    pending_requests := non_neg_integer(),
    available_workers := non_neg_integer(),
    checked_out := non_neg_integer()
}.

%%% API

%% @private
%% @doc Start the pool owner, registered as `py_pool'.
-spec start_link() -> {ok, pid()} | {error, term()}.
start_link() ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

%% @doc Pool statistics in the shape of erlang_python 1.6. `pending_requests' counts queued
%% and running jobs; `checked_out' the executors bound to contexts ({@link py:bind/0},
%% {@link py:bind/1}); `available_workers' the executors neither bound nor busy. Exits with
%% `noproc' when the application is not running.
-spec get_stats() -> stats().
get_stats() ->
    gen_server:call(?MODULE, get_stats).

%% @doc How executors took turns at the GIL (a GIL build's fairness, see the scalability
%% guide): `line', the executors waiting for their turn now; `gate_taken', whether one is
%% through the gate and waiting for the GIL; `waited', how many requests waited in line for a
%% turn; `yielded', how often an executor gave the GIL up to a request of a caller that used
%% less of it lately. Counted for the whole interpreter since it started; all 0 on a
%% free-threaded build, where there is no GIL to take turns at.
-spec fairness_stats() -> py_nif:fairness_stats().
fairness_stats() ->
    py_nif:pool_fairness_stats().

%% @private
%% @doc The configured number of executors: the `num_executors' application variable if set,
%% else `num_workers', else `max(2, schedulers)'.
-spec pool_size() -> pos_integer().
pool_size() ->
    case py_config:find(num_executors) of
        {ok, N} -> positive(num_executors, N);
        undefined -> positive(num_workers, py_config:get(num_workers))
    end.

%% @private
%% @doc The number of executor threads: the running pool's, else {@link pool_size/0}.
-spec num_executors() -> pos_integer().
num_executors() ->
    case py_request:pool() of
        {ok, Pool} -> maps:get(executors, py_nif:pool_stats(Pool));
        {error, not_started} -> pool_size()
    end.

%% @private
%% @doc The absolute directory that an entry of the `python_path' application variable (or
%% the argument of {@link py:add_python_path/1}) names: a path (string or binary; a relative
%% one is taken from the current directory), `{priv, App}' (`code:priv_dir(App)', or the
%% `priv' directory beside the directory of `App.app' when the code server does not know the
%% application, as under a bare `erl -pa') or `{priv, App, SubDir}' (`SubDir' relative, inside
%% it). `{error, bad_entry}' for anything else, an empty path or an absolute `SubDir'.
-spec resolve_path(term()) ->
    {ok, binary()}
    | {error, {unknown_application, atom()} | {not_a_directory, binary()} | bad_entry}.
resolve_path({priv, App}) when is_atom(App) ->
    case priv_dir(App) of
        {ok, Priv} -> directory(Priv);
        {error, _} = Error -> Error
    end;
resolve_path({priv, App, SubDir}) when is_atom(App) ->
    case {name(SubDir), priv_dir(App)} of
        {{ok, Sub}, {ok, Priv}} ->
            case filename:pathtype(Sub) of
                relative -> directory(filename:join(Priv, Sub));
                _ -> {error, bad_entry}
            end;
        {error, _} ->
            {error, bad_entry};
        {_, {error, _} = Error} ->
            Error
    end;
resolve_path(Path) ->
    case name(Path) of
        {ok, Name} -> directory(Name);
        error -> {error, bad_entry}
    end.

%%% gen_server callbacks

%% @private
-spec init([]) -> {ok, #state{}} | {stop, term()}.
init([]) ->
    %% Trap exits so that terminate/2 runs when the supervisor shuts us down.
    process_flag(trap_exit, true),
    ok = py_config:warn_ignored(),
    Size = pool_size(),
    case code:ensure_loaded(py_nif) of
        %% The settings are checked before Python starts: a bad one stops the start with its
        %% reason, leaving nothing behind.
        {module, py_nif} -> start_pool(Size, interp_opts(), python_path());
        {error, Reason} -> {stop, {nif_not_loaded, Reason}}
    end.

%% @private
-spec handle_call(term(), gen_server:from(), #state{}) ->
    {reply, stats() | {error, unknown_call}, #state{}}.
handle_call(get_stats, _From, #state{pool = Pool} = State) ->
    #{executors := Executors, queued := Queued, running := Running, bound := Bound} =
        py_nif:pool_stats(Pool),
    Stats = #{
        num_workers => Executors,
        pending_requests => Queued + Running,
        available_workers => max(0, Executors - Bound - Running),
        checked_out => Bound
    },
    {reply, Stats, State};
handle_call(_Request, _From, State) ->
    {reply, {error, unknown_call}, State}.

%% @private
-spec handle_cast(term(), #state{}) -> {noreply, #state{}}.
handle_cast(_Msg, State) ->
    {noreply, State}.

%% @private
%% Exits are trapped only so that terminate/2 runs: an exit signal still stops the process.
-spec handle_info(term(), #state{}) -> {noreply, #state{}} | {stop, term(), #state{}}.
handle_info({'EXIT', _From, Reason}, State) when Reason =/= normal ->
    {stop, Reason, State};
handle_info(_Info, State) ->
    {noreply, State}.

%% @private
-spec terminate(term(), #state{}) -> ok.
terminate(_Reason, #state{pool = Pool}) ->
    %% Unpublish first: from now on new requests get {error, not_started} rather than
    %% reaching a closed queue.
    _ = persistent_term:erase(?PY_POOL_KEY),
    ok = py_nif:pool_stop(Pool).

%%% Internal

-spec start_pool(pos_integer(), py_nif:interp_opts(), [binary()]) ->
    {ok, #state{}} | {stop, term()}.
start_pool(Size, Opts, Path) ->
    case start_interpreter(Opts) of
        ok ->
            Allow = boolean(allow_process_exit, py_config:get(allow_process_exit)),
            ok = py_nif:interp_allow_process_exit(Allow),
            Policy = boolean(asyncio_policy, py_config:get(asyncio_policy)),
            case py_nif:pool_new(Size) of
                {ok, Pool} -> configure_path(Pool, Path, Policy);
                {error, Reason} -> {stop, {pool_start_failed, Reason}}
            end;
        {error, Reason} ->
            {stop, {python_init_failed, Reason}}
    end.

%% The application's directories go on sys.path, and asyncio's policy is set (the
%% `asyncio_policy' variable), before the pool is published: no request runs without them. They
%% replace those of an earlier start (the interpreter outlives it).
-spec configure_path(py_nif:pool(), [binary()], boolean()) -> {ok, #state{}} | {stop, term()}.
configure_path(Pool, Path, Policy) ->
    Request = {call, <<"erlang._path">>, <<"configure">>, [package_dir(), Path], #{}},
    PolicyRequest = {call, <<"erlang._loop">>, <<"install_policy">>, [Policy], #{}},
    case configure(Pool, [Request, PolicyRequest]) of
        ok ->
            stop_stale_pool(),
            persistent_term:put(?PY_POOL_KEY, Pool),
            {ok, #state{pool = Pool}};
        Error ->
            ok = py_nif:pool_stop(Pool),
            {stop, {python_path_failed, Error}}
    end.

-spec configure(py_nif:pool(), [py_request:request()]) -> ok | py_request:outcome().
configure(_Pool, []) ->
    ok;
configure(Pool, [Request | Rest]) ->
    case py_request:run(Pool, Request, 30000) of
        {ok, none} -> configure(Pool, Rest);
        Error -> Error
    end.

%% A predecessor killed before its terminate/2 ran (brutal kill) left its pool published.
-spec stop_stale_pool() -> ok.
stop_stale_pool() ->
    case py_request:pool() of
        {ok, Stale} -> py_nif:pool_stop(Stale);
        {error, not_started} -> ok
    end.

%% Python is initialised once per OS process, so a wrong interpreter would stay until the node
%% restarts: it is checked first. Once Python runs, interp_init/1 ignores its options and there
%% is nothing to check.
-spec start_interpreter(py_nif:interp_opts()) -> ok | {error, term()}.
start_interpreter(Opts) ->
    #{initialized := Initialized, built_for := BuiltFor} = py_nif:interp_info(),
    Check =
        case Initialized of
            true -> ok;
            false -> check_python(maps:get(executable, Opts, undefined), BuiltFor)
        end,
    case Check of
        ok -> py_nif:interp_init(Opts);
        {error, _} = Error -> Error
    end.

%% Python accepts a missing executable and silently computes wrong paths from it; one of another
%% version than the NIF's libpython starts with site-packages (and compiled extensions) it cannot
%% use: `No module named ...' much later. Both are refused here, naming the fix.
-spec check_python(binary() | undefined, #{version := binary(), executable := binary()}) ->
    ok | {error, term()}.
check_python(undefined, #{executable := Default} = BuiltFor) ->
    check_python(Default, BuiltFor);
check_python(Executable, #{version := Built}) ->
    case filelib:is_regular(Executable) of
        false ->
            {error, {no_such_executable, Executable}};
        true ->
            case python_version(Executable) of
                {ok, Built} ->
                    ok;
                {ok, Other} ->
                    {error,
                        {python_mismatch, #{
                            executable => Executable,
                            executable_version => Other,
                            nif_version => Built,
                            fix =>
                                <<"use a Python ", Built/binary,
                                    " interpreter or venv (python_executable, "
                                    "ERLANG_PYTHON_EXECUTABLE), or rebuild erlang_python for "
                                    "this one (ERLANG_PYTHON_EXECUTABLE=", Executable/binary,
                                    " when compiling)">>
                        }}};
                {error, Reason} ->
                    {error, {python_probe_failed, Executable, Reason}}
            end
    end.

%% The interpreter's "X.Y" ("X.Yt" when free-threaded), from running it once: the same probe as
%% scripts/build_nif.sh. A venv's python reports its base interpreter's version.
-spec python_version(binary()) -> {ok, binary()} | {error, term()}.
python_version(Executable) ->
    Probe =
        "import sys, sysconfig; print('%d.%d%s' % (sys.version_info[0], sys.version_info[1], "
        "'t' if sysconfig.get_config_var('Py_GIL_DISABLED') else ''))",
    try
        open_port({spawn_executable, Executable}, [
            {args, ["-I", "-S", "-c", Probe]}, exit_status, binary, stderr_to_stdout, hide
        ])
    of
        Port -> probe_output(Port, <<>>)
    catch
        error:Reason -> {error, Reason}
    end.

-spec probe_output(port(), binary()) -> {ok, binary()} | {error, term()}.
probe_output(Port, Acc) ->
    receive
        {Port, {data, Data}} ->
            probe_output(Port, <<Acc/binary, Data/binary>>);
        {Port, {exit_status, 0}} ->
            {ok, string:trim(Acc)};
        {Port, {exit_status, Status}} ->
            {error, {exit_status, Status, Acc}}
    after ?PROBE_TIMEOUT ->
        catch port_close(Port),
        {error, timeout}
    end.

%% `max_depth' goes to the NIF only when it is set: otherwise the NIF applies its own default.
-spec interp_opts() -> py_nif:interp_opts().
interp_opts() ->
    Opts = #{
        executable => executable(),
        sys_path => [package_dir()],
        malloc_pad => non_negative(malloc_pad, py_config:get(malloc_pad))
    },
    case py_config:find(max_depth) of
        {ok, Depth} -> Opts#{max_depth => positive(max_depth, Depth)};
        undefined -> Opts
    end.

%% The directory of erlang_python's own Python package, first on sys.path. Absolute: the priv
%% directory is relative under `erl -pa relative/ebin'.
-spec package_dir() -> binary().
package_dir() ->
    path_binary(filename:absname(filename:join(py_nif:priv_dir(), "python"))).

%% The directories of the `python_path' application variable, in order: a list of entries
%% (see resolve_path/1), or one path; exits with `{bad_config, {python_path, Entry, Reason}}'
%% naming the first bad entry, or `{bad_config, {python_path, Value}}'.
-spec python_path() -> [binary()].
python_path() ->
    Value = py_config:get(python_path),
    [resolved(Entry) || Entry <- path_entries(Value)].

-spec path_entries(term()) -> [term()].
path_entries(Value) when is_binary(Value) ->
    [Value];
path_entries(Value) when is_list(Value) ->
    try length(Value) of
        0 -> [];
        _ ->
            case io_lib:char_list(Value) of
                true -> [Value];
                false -> Value
            end
    catch
        error:badarg -> exit({bad_config, {python_path, Value}})
    end;
path_entries(Value) ->
    exit({bad_config, {python_path, Value}}).

-spec resolved(term()) -> binary().
resolved(Entry) ->
    case resolve_path(Entry) of
        {ok, Dir} -> Dir;
        {error, Reason} -> exit({bad_config, {python_path, Entry, Reason}})
    end.

%% `code:priv_dir/1', else the `priv' directory beside `ebin/App.app'.
-spec priv_dir(atom()) -> {ok, file:filename()} | {error, {unknown_application, atom()}}.
priv_dir(App) ->
    case code:priv_dir(App) of
        Dir when is_list(Dir) ->
            {ok, Dir};
        {error, bad_name} ->
            case code:where_is_file(atom_to_list(App) ++ ".app") of
                non_existing ->
                    {error, {unknown_application, App}};
                AppFile ->
                    {ok, filename:join(filename:dirname(filename:dirname(AppFile)), "priv")}
            end
    end.

-spec directory(file:filename_all()) -> {ok, binary()} | {error, {not_a_directory, binary()}}.
directory(Path) ->
    Absolute = absolute(Path),
    case filelib:is_dir(Absolute) of
        true -> {ok, Absolute};
        false -> {error, {not_a_directory, Absolute}}
    end.

%% `Path' made absolute from the current directory, with `.' and `..' taken out as Python's
%% `os.path.abspath' does.
-spec absolute(file:filename_all()) -> binary().
absolute(Path) ->
    [Root | Parts] =
        case filename:absname(Path) of
            Bin when is_binary(Bin) -> filename:split(Bin);
            Chars -> filename:split(path_binary(Chars))
        end,
    Kept = lists:foldl(
        fun
            (<<".">>, Acc) -> Acc;
            (<<"..">>, [_ | Acc]) -> Acc;
            (<<"..">>, []) -> [];
            (Part, Acc) -> [Part | Acc]
        end,
        [],
        Parts
    ),
    filename:join([Root | lists:reverse(Kept)]).

%% A non-empty path, as a binary (a binary is taken as it is: a file name need not be UTF-8).
-spec name(term()) -> {ok, binary()} | error.
name(Path) when is_binary(Path), Path =/= <<>> ->
    {ok, Path};
name(Path) when is_list(Path), Path =/= [] ->
    try unicode:characters_to_binary(Path) of
        Bin when is_binary(Bin), Bin =/= <<>> -> {ok, Bin};
        _ -> error
    catch
        error:badarg -> error
    end;
name(_Path) ->
    error.

-spec executable() -> binary() | undefined.
executable() ->
    case py_config:find(python_executable) of
        {ok, Path} when is_binary(Path); is_list(Path) ->
            path_binary(Path);
        {ok, undefined} ->
            executable_from_os_env();
        {ok, Other} ->
            exit({bad_config, {python_executable, Other}});
        undefined ->
            executable_from_os_env()
    end.

-spec executable_from_os_env() -> binary() | undefined.
executable_from_os_env() ->
    case os:getenv("ERLANG_PYTHON_EXECUTABLE") of
        false -> undefined;
        "" -> undefined;
        Path -> path_binary(Path)
    end.

-spec path_binary(file:filename_all()) -> binary().
path_binary(Path) ->
    case unicode:characters_to_binary(Path) of
        Bin when is_binary(Bin) -> Bin;
        _ -> exit({bad_config, {path, Path}})
    end.

-spec positive(atom(), term()) -> pos_integer().
positive(_Key, N) when is_integer(N), N > 0 ->
    N;
positive(Key, Other) ->
    exit({bad_config, {Key, Other}}).

-spec non_negative(atom(), term()) -> non_neg_integer().
non_negative(_Key, N) when is_integer(N), N >= 0 ->
    N;
non_negative(Key, Other) ->
    exit({bad_config, {Key, Other}}).

-spec boolean(atom(), term()) -> boolean().
boolean(_Key, B) when is_boolean(B) ->
    B;
boolean(Key, Other) ->
    exit({bad_config, {Key, Other}}).
