%% What a project depending on erlang_python checks once it is built (tests/deps/run.sh): Python
%% runs, the `erlang' package is the one in erlang_python's priv/, the application's own Python
%% module (priv/python, configured in config/sys.config) is found, and Python calls back into
%% Erlang.
-module(sample_app).
-export([check/0, double/1]).

-spec check() -> ok.
check() ->
    {ok, _} = application:ensure_all_started(sample_app),
    {ok, 4.0} = py:call(math, sqrt, [16]),
    Priv = list_to_binary(filename:absname(code:priv_dir(erlang_python))),
    {ok, Package} = py:eval(<<"__import__('erlang').__file__">>),
    case binary:longest_common_prefix([Priv, Package]) =:= byte_size(Priv) of
        true -> ok;
        false -> error({package_outside_priv, Package, Priv})
    end,
    {ok, <<"hello joe from sample_app">>} = py:call(sample_helper, greet, [<<"joe">>]),
    ok = py:register_function(sample_double, fun ?MODULE:double/1),
    {ok, 42} = py:eval(<<"__import__('erlang').call('sample_double', 21)">>),
    #{built_for := #{version := Version}} = py_nif:interp_info(),
    io:format("sample_app: ok (Python ~s, erlang package ~s)~n", [Version, Package]).

-spec double([integer()]) -> integer().
double([N]) -> 2 * N.
