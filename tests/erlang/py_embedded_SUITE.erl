%% @doc The Python suite inside the BEAM: `pytest -m embedded tests/python' runs on an
%% executor, against the NIF's built-in `erlang._native' and real registered functions and
%% state, so the mocked BEAM cannot drift from the real one; and the external term format of
%% `erlang.term_to_binary' / `erlang.binary_to_term' is checked against Erlang's own and
%% against the NIF's conversion.
-module(py_embedded_SUITE).

-include_lib("common_test/include/ct.hrl").

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1]).

-export([
    pytest_embedded/1,
    term_to_binary_matches_erlang/1,
    binary_to_term_matches_arguments/1
]).

%% Runs pytest with its output captured to a string. No fd capture and no faulthandler: both
%% would touch the BEAM's file descriptors and signal handlers. No cache and importlib mode:
%% nothing is written to the tree and sys.path is left alone for the other suites. The package
%% `erlang' is imported before pytest starts here, so pytest cannot rewrite the asserts of the
%% plugin's distribution and warns (an error under `filterwarnings = error'): ignored.
-define(RUNNER, <<"
def ep_embedded_pytest(tests, ini):
    import contextlib, io
    import pytest
    out = io.StringIO()
    args = [tests, '-c', ini, '-m', 'embedded', '-q', '--color=no', '-p', 'no:cacheprovider',
            '-p', 'no:faulthandler', '--capture=sys', '--import-mode=importlib',
            '-W', 'ignore::pytest.PytestAssertRewriteWarning']
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        rc = pytest.main(args)
    return (int(rc), out.getvalue())

def ep_same(a, b):
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(ep_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(ep_same(a[k], b[k]) for k in a)
    return a == b
">>).

all() -> py_test_util:cases(?MODULE).

suite() -> [{timetrap, {minutes, 10}}].

init_per_suite(Config) ->
    ok = py_test_util:start(),
    ok = py:exec(?RUNNER),
    ok = register_test_helpers(),
    Config.

end_per_suite(_Config) ->
    ok = py_test_util:stop().

%% @doc Every test of tests/python marked `embedded' passes inside the BEAM.
pytest_embedded(_Config) ->
    case py_test_util:repo_root() of
        undefined ->
            {skip, "tests/python not found next to the application"};
        Root ->
            Tests = unicode:characters_to_binary(filename:join([Root, "tests", "python"])),
            Ini = unicode:characters_to_binary(filename:join(Root, "pyproject.toml")),
            persistent_term:put({?MODULE, runner}, self()),
            {ok, {Rc, Output}} =
                py:call('__main__', ep_embedded_pytest, [Tests, Ini], #{}, 600000),
            ct:log("~ts", [Output]),
            case Rc of
                0 ->
                    ok;
                _ ->
                    ct:pal("pytest -m embedded exited with ~p:~n~ts", [Rc, Output]),
                    ct:fail({pytest_exit_code, Rc})
            end
    end.

%% @doc erlang.term_to_binary of what Python received writes what Erlang's term_to_binary
%% writes for what Python gives back (minor_version 2: UTF-8 atoms).
term_to_binary_matches_erlang(_Config) ->
    [begin
         {ok, Back} = py:eval(<<"ep_v">>, #{ep_v => T}),
         {ok, Bin} = py:eval(<<"__import__('erlang').term_to_binary(ep_v)">>, #{ep_v => T}),
         {T, Back} = {T, binary_to_term(Bin)},
         {T, Bin} = {T, term_to_binary(Back, [{minor_version, 2}])}
     end || T <- terms()],
    ok.

%% @doc erlang.binary_to_term of Erlang's bytes gives what Python receives as an argument.
binary_to_term_matches_arguments(_Config) ->
    [{T, {ok, true}} = {T, py:eval(<<"ep_same(ep_v, __import__('erlang').binary_to_term(ep_b))">>,
                                   #{ep_v => T, ep_b => Bin})}
     || T <- terms() ++ erlang_only_terms(),
        Bin <- [term_to_binary(T), term_to_binary(T, [{minor_version, 2}])]],
    ok.

%% The `erlang_funcs' fixture of tests/python/conftest.py registers Python functions as Erlang
%% functions through these two: each registered fun hands its argument list to
%% `ep_funcs.dispatch' in Python (a nested py:call) and returns what the Python function
%% returned, or raises what it raised.
-spec register_test_helpers() -> ok.
register_test_helpers() ->
    ok = py:register_function(ep_register_function, fun([Name]) ->
        ok = py:register_function(Name, fun(Args) -> dispatch(Name, Args) end),
        none
    end),
    ok = py:register_function(ep_unregister_function, fun([Name]) ->
        ok = py:unregister_function(Name),
        none
    end),
    py:register_function(ep_tracing, fun tracing_helper/1).

%% The `tracing' fixture of tests/python/conftest.py: tracing on and off, the collected spans,
%% and the trace parent of the process running pytest (callback functions run in processes of
%% their own, so the helper sets that process's parent by pid).
-spec tracing_helper(list()) -> term().
tracing_helper([<<"start">>]) ->
    ok = py:clear_traces(),
    ok = py:enable_tracing(),
    none;
tracing_helper([<<"spans">>]) ->
    {ok, Spans} = py:get_traces(),
    Spans;
tracing_helper([<<"enable">>]) ->
    ok = py:enable_tracing(),
    none;
tracing_helper([<<"disable">>]) ->
    ok = py:disable_tracing(),
    none;
tracing_helper([<<"parent">>, none]) ->
    _ = py_nif:trace_parent_swap(runner(), undefined),
    none;
tracing_helper([<<"parent">>, {TraceId, SpanId}]) ->
    _ = py_nif:trace_parent_swap(runner(), {TraceId, SpanId}),
    none;
tracing_helper([<<"stop">>]) ->
    ok = py:disable_tracing(),
    ok = py:clear_traces(),
    _ = py_nif:trace_parent_swap(runner(), undefined),
    none.

%% The process running pytest.
-spec runner() -> pid().
runner() ->
    persistent_term:get({?MODULE, runner}).

%% `ep_funcs.dispatch' returns `("ok", Result)', or `("raise", Class, Reason)' for an
%% `erlang.testing.ErlangException' (Reason is Erlang text: raised as the term it denotes).
-spec dispatch(binary(), list()) -> term().
dispatch(Name, Args) ->
    case py:call(ep_funcs, dispatch, [Name, Args], #{}, 60000) of
        {ok, {<<"ok">>, Result}} ->
            Result;
        {ok, {<<"raise">>, Class, Reason}} ->
            erlang:raise(binary_to_existing_atom(Class, utf8), parse_term(Reason), []);
        {error, Error} ->
            error(Error)
    end.

-spec parse_term(binary()) -> term().
parse_term(Text) ->
    case erl_scan:string(unicode:characters_to_list(Text) ++ ".") of
        {ok, Tokens, _} ->
            case erl_parse:parse_term(Tokens) of
                {ok, Term} -> Term;
                {error, _} -> Text
            end;
        {error, _, _} ->
            Text
    end.

%% Terms that come back from Python unchanged.
-spec terms() -> [term()].
terms() ->
    [true, false, none, 0, 255, 256, -1, 1 bsl 31, -(1 bsl 31) - 1, 1 bsl 64, -(1 bsl 200),
     1.5, -0.0, 1.0e300, <<>>, <<"héllo"/utf8>>, <<255, 0>>, [], [1, 2, 3], [1000, <<"x">>],
     {}, {true, [{1}]}, #{}, #{<<"a">> => 1, 2 => [3], {4} => 5.0},
     #{<<"m">> => #{<<"n">> => []}}, self(), make_ref(),
     list_to_tuple(lists:seq(1, 300))].

%% Terms that Python turns into something else (atoms, charlists, maps of more than 32 keys),
%% compared in Python only.
-spec erlang_only_terms() -> [term()].
erlang_only_terms() ->
    [nil, undefined, hello, 'é', '日本', "abc", #{a => 1, <<"b">> => [c]},
     maps:from_list([{integer_to_binary(I), I} || I <- lists:seq(1, 40)])].
