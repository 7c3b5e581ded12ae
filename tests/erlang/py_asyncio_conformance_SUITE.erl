%% @doc CPython's own asyncio tests (`test.test_asyncio') against `erlang.ErlangEventLoop',
%% inside the BEAM: each case runs the loop-generic test classes of one module on an executor
%% (tests/python/asyncio_conformance.py), logs passed/failed/skipped and the loops made, and
%% fails on any failure that the runner's EXPECTED_FAILURES does not explain
%% (docs/asyncio.md, "Conformance"). `make test-asyncio' runs this suite alone.
-module(py_asyncio_conformance_SUITE).

-include_lib("common_test/include/ct.hrl").

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1]).

-export([
    test_events/1,
    test_sock_lowlevel/1,
    test_sendfile/1,
    test_server/1,
    test_streams/1,
    test_ssl/1,
    test_sslproto/1,
    test_subprocess/1
]).

-define(TIMEOUT, 600000).

-spec all() -> [atom()].
all() -> py_test_util:cases(?MODULE).

-spec suite() -> [tuple()].
suite() -> [{timetrap, {minutes, 12}}].

-spec init_per_suite(ct_suite:ct_config()) -> ct_suite:ct_config() | {skip, string()}.
init_per_suite(Config) ->
    ok = py_test_util:start(),
    case py_test_util:repo_root() of
        undefined ->
            {skip, "tests/python not found next to the application"};
        Root ->
            ok = py:add_python_path(filename:join([Root, "tests", "python"])),
            case py:eval(<<"__import__('importlib.util').util.find_spec('test.test_asyncio') is not None">>) of
                {ok, true} -> Config;
                {ok, false} -> {skip, "this Python has no test package (test.test_asyncio)"}
            end
    end.

-spec end_per_suite(ct_suite:ct_config()) -> ok.
end_per_suite(_Config) ->
    ok = py_test_util:stop().

-spec test_events(ct_suite:ct_config()) -> ok.
test_events(_Config) -> conformance(<<"test_events">>).

-spec test_sock_lowlevel(ct_suite:ct_config()) -> ok.
test_sock_lowlevel(_Config) -> conformance(<<"test_sock_lowlevel">>).

-spec test_sendfile(ct_suite:ct_config()) -> ok.
test_sendfile(_Config) -> conformance(<<"test_sendfile">>).

-spec test_server(ct_suite:ct_config()) -> ok.
test_server(_Config) -> conformance(<<"test_server">>).

-spec test_streams(ct_suite:ct_config()) -> ok.
test_streams(_Config) -> conformance(<<"test_streams">>).

-spec test_ssl(ct_suite:ct_config()) -> ok.
test_ssl(_Config) -> conformance(<<"test_ssl">>).

-spec test_sslproto(ct_suite:ct_config()) -> ok.
test_sslproto(_Config) -> conformance(<<"test_sslproto">>).

-spec test_subprocess(ct_suite:ct_config()) -> ok.
test_subprocess(_Config) -> conformance(<<"test_subprocess">>).

%% Runs one module; every loop it made must be an ErlangEventLoop, and every failure expected.
-spec conformance(binary()) -> ok.
conformance(Module) ->
    {ok, [Report]} = py:call(asyncio_conformance, run, [[Module]], #{}, ?TIMEOUT),
    {ok, Summary} = py:call(asyncio_conformance, summary, [[Report]]),
    {ok, Unexpected} = py:call(asyncio_conformance, unexpected, [Report]),
    #{<<"run">> := Run, <<"loops">> := Loops, <<"skipped">> := Skipped} = Report,
    ct:pal("~ts", [Summary]),
    [ct:log("skipped ~ts: ~ts", [Test, Reason]) || [Test, Reason] <- tuples(Skipped)],
    [ct:log("FAILED ~ts:~n~ts", [Test, Text]) || [Test, Text] <- tuples(maps:get(<<"failed">>, Report))],
    true = Run > 0,
    [<<"ErlangEventLoop">>] = maps:keys(Loops),
    case Unexpected of
        [] -> ok;
        _ -> ct:fail({unexpected_failures, [Test || [Test, _] <- tuples(Unexpected)]})
    end.

%% Python tuples of two come back as Erlang tuples.
-spec tuples([{binary(), binary()}]) -> [[binary()]].
tuples(Pairs) -> [[A, B] || {A, B} <- Pairs].
