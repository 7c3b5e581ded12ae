%% @doc py_asgi and py_wsgi: a FastAPI app, a Flask app and small edge-case apps
%% (tests/web), called directly from Erlang.
-module(py_web_SUITE).

-include_lib("common_test/include/ct.hrl").

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).

-export([
    asgi_path_and_query/1,
    asgi_headers_both_shapes/1,
    asgi_json_body_created/1,
    asgi_json_validation_error/1,
    asgi_form/1,
    asgi_multipart_upload_binary/1,
    asgi_cookies/1,
    asgi_redirect/1,
    asgi_exception_handlers/1,
    asgi_500_after_response_start/1,
    asgi_binary_body_echo/1,
    asgi_background_task/1,
    asgi_lifespan_state/1,
    asgi_lifespan_once_for_concurrent_requests/1,
    asgi_lifespan_startup_failed/1,
    asgi_scope_is_spec_compliant/1,
    asgi_stream_scope_as_run/1,
    asgi_build_scope/1,
    asgi_stream_chunks_in_order/1,
    asgi_stream_sse/1,
    asgi_stream_backpressure/1,
    asgi_stream_request_body_chunks/1,
    asgi_stream_disconnect_raises_in_app/1,
    asgi_stream_request_body_disconnect/1,
    asgi_stream_handler_crash_cancels_app/1,
    asgi_stream_caller_death_cancels_app/1,
    asgi_stream_caller_death_releases_event/1,
    asgi_stream_late_event_answered/1,
    asgi_event_function_refuses_bad_peers/1,
    asgi_stream_idle_timeout/1,
    asgi_timeout_cancels_app/1,
    asgi_app_errors/1,
    asgi_bad_input/1,
    asgi_runner_option/1,
    asgi_websocket_session/1,
    asgi_websocket_refused/1,
    asgi_websocket_backpressure/1,
    asgi_websocket_pause_resume/1,
    asgi_websocket_cancel_and_owner_death/1,
    asgi_websocket_errors/1,
    wsgi_path_and_query/1,
    wsgi_json_bodies/1,
    wsgi_form_and_upload/1,
    wsgi_cookies_redirect_errors/1,
    wsgi_500/1,
    wsgi_binary_body_echo/1,
    wsgi_environ_is_pep3333/1,
    wsgi_write_and_iterable/1,
    wsgi_close_called/1,
    wsgi_exc_info/1,
    wsgi_app_errors/1,
    wsgi_errors_to_logger/1,
    wsgi_stream_events/1,
    wsgi_stream_disconnect_closes/1,
    wsgi_stream_error/1,
    wsgi_stream_jobs/1,
    wsgi_timeout/1,
    wsgi_bad_input/1,
    wsgi_runner_option/1
]).

-spec all() -> [atom()].
all() -> py_test_util:cases(?MODULE).

-spec suite() -> [tuple()].
suite() -> [{timetrap, {minutes, 3}}].

-spec init_per_suite(ct_suite:ct_config()) -> ct_suite:ct_config().
init_per_suite(Config) ->
    ok = py_test_util:start(),
    case py_test_util:repo_root() of
        undefined ->
            {skip, "tests/web not found next to the application"};
        Root ->
            ok = py:add_python_path(list_to_binary(filename:join([Root, "tests", "web"]))),
            case py:call(importlib, import_module, [fastapi_app]) of
                {ok, _} -> Config;
                {error, Reason} -> ct:fail({fastapi_app, Reason})
            end
    end.

-spec end_per_suite(ct_suite:ct_config()) -> ok.
end_per_suite(_Config) ->
    ok = py_test_util:stop().

-spec init_per_testcase(atom(), ct_suite:ct_config()) -> ct_suite:ct_config().
init_per_testcase(_Case, Config) ->
    py_test_util:flush(),
    {ok, _} = py:call(edge_apps, reset, []),
    Config.

-spec end_per_testcase(atom(), ct_suite:ct_config()) -> ok.
end_per_testcase(_Case, _Config) ->
    ok.

%%% Helpers

-spec http_get(binary()) -> term().
http_get(Path) -> http_get(Path, <<>>).

-spec http_get(binary(), binary()) -> term().
http_get(Path, Query) ->
    py_asgi:run(fastapi_app, app, #{path => Path, query_string => Query}, <<>>).

-spec json(binary()) -> term().
json(Body) ->
    {ok, Value} = py:call(json, loads, [Body]),
    Value.

-spec header(binary(), [{binary(), binary()}]) -> binary() | undefined.
header(Name, Headers) ->
    proplists:get_value(Name, Headers).

-spec collect() -> fun((term(), list()) -> {ok, list()}).
collect() -> fun(Event, Acc) -> {ok, Acc ++ [Event]} end.

-spec events() -> list().
events() ->
    {ok, Events} = py:call(edge_apps, events, []),
    Events.

-spec wait_events(list()) -> ok.
wait_events(Expected) ->
    py_test_util:wait_for_value(fun events/0, Expected, 10000).

-spec multipart(binary(), [{binary(), binary()}]) -> binary().
multipart(Boundary, Parts) ->
    iolist_to_binary(
      [[<<"--">>, Boundary, <<"\r\n">>, Head, <<"\r\n\r\n">>, Data, <<"\r\n">>]
       || {Head, Data} <- Parts] ++ [<<"--">>, Boundary, <<"--\r\n">>]).

%%% ASGI (FastAPI)

%% @doc Path and query parameters reach FastAPI; the response is {Status, Headers, Body}.
-spec asgi_path_and_query(ct_suite:ct_config()) -> term().
asgi_path_and_query(_Config) ->
    {ok, {200, Headers, Body}} = http_get(<<"/items/42">>, <<"q=tea&limit=3">>),
    #{<<"item_id">> := 42, <<"q">> := <<"tea">>, <<"limit">> := 3} = json(Body),
    <<"application/json">> = header(<<"content-type">>, Headers),
    {ok, {422, _, _}} = http_get(<<"/items/notanint">>),
    {ok, {404, _, _}} = http_get(<<"/no/such/route">>),
    ok.

%% @doc Headers given as {Name, Value} or [Name, Value]; repeated headers all arrive; names are
%% lowercased; the client tuple reaches the app.
-spec asgi_headers_both_shapes(ct_suite:ct_config()) -> term().
asgi_headers_both_shapes(_Config) ->
    Scope = #{path => <<"/headers">>, query_string => <<"a=1&b=2">>,
              headers => [{<<"User-Agent">>, <<"ct">>}, [<<"x-multi">>, <<"one">>],
                          {<<"X-Multi">>, <<"two">>}],
              client => {<<"10.0.0.1">>, 5555}},
    {ok, {200, _, Body}} = py_asgi:run(fastapi_app, app, Scope, <<>>),
    #{<<"user_agent">> := <<"ct">>, <<"x_multi">> := [<<"one">>, <<"two">>],
      <<"query">> := <<"a=1&b=2">>, <<"client">> := [<<"10.0.0.1">>, 5555]} = json(Body),
    ok.

%% @doc A JSON body is validated by pydantic: 201 with the item.
-spec asgi_json_body_created(ct_suite:ct_config()) -> term().
asgi_json_body_created(_Config) ->
    Scope = #{path => <<"/items">>, method => <<"POST">>,
              headers => [{<<"content-type">>, <<"application/json">>}]},
    {ok, {201, _, Body}} = py_asgi:run(fastapi_app, app, Scope,
                                       [<<"{\"name\": \"tea\", ">>, <<"\"price\": 2.5}">>]),
    #{<<"created">> := #{<<"name">> := <<"tea">>, <<"price">> := 2.5, <<"tags">> := []},
      <<"total">> := 5.0} = json(Body),
    ok.

%% @doc An invalid JSON body gives FastAPI's 422 with the validation errors.
-spec asgi_json_validation_error(ct_suite:ct_config()) -> term().
asgi_json_validation_error(_Config) ->
    Scope = #{path => <<"/items">>, method => <<"POST">>,
              headers => [{<<"content-type">>, <<"application/json">>}]},
    {ok, {422, _, Body}} =
        py_asgi:run(fastapi_app, app, Scope, <<"{\"name\": \"\", \"price\": -1}">>),
    #{<<"detail">> := [#{<<"loc">> := [<<"body">>, <<"name">>]},
                       #{<<"loc">> := [<<"body">>, <<"price">>]}]} = json(Body),
    {ok, {422, _, _}} = py_asgi:run(fastapi_app, app, Scope, <<"{not json">>),
    ok.

%% @doc An urlencoded form.
-spec asgi_form(ct_suite:ct_config()) -> term().
asgi_form(_Config) ->
    Scope = #{path => <<"/form">>, method => <<"POST">>,
              headers => [{<<"content-type">>, <<"application/x-www-form-urlencoded">>}]},
    {ok, {200, _, Body}} = py_asgi:run(fastapi_app, app, Scope, <<"name=J%C3%BCrgen&age=41">>),
    #{<<"name">> := <<"Jürgen"/utf8>>, <<"age">> := 41} = json(Body),
    ok.

%% @doc A multipart upload of bytes that are not UTF-8 arrives intact.
-spec asgi_multipart_upload_binary(ct_suite:ct_config()) -> term().
asgi_multipart_upload_binary(_Config) ->
    Data = <<255, 0, 254, 1, 128, 129, 2, 3, 4, 5>>,
    Body = multipart(<<"XyZ">>,
                     [{<<"Content-Disposition: form-data; name=\"file\"; filename=\"a.bin\"\r\n"
                         "Content-Type: application/octet-stream">>, Data},
                      {<<"Content-Disposition: form-data; name=\"note\"">>, <<"hi">>}]),
    Scope = #{path => <<"/upload">>, method => <<"POST">>,
              headers => [{<<"content-type">>, <<"multipart/form-data; boundary=XyZ">>}]},
    {ok, {200, _, Resp}} = py_asgi:run(fastapi_app, app, Scope, Body),
    #{<<"filename">> := <<"a.bin">>, <<"size">> := 10, <<"head">> := <<"ff00fe0180810203">>,
      <<"note">> := <<"hi">>} = json(Resp),
    ok.

%% @doc Set-Cookie goes out as a header; a Cookie header comes in.
-spec asgi_cookies(ct_suite:ct_config()) -> term().
asgi_cookies(_Config) ->
    {ok, {200, Headers, _}} = http_get(<<"/cookies/set">>),
    <<"session=abc123; HttpOnly; Path=/; SameSite=lax">> = header(<<"set-cookie">>, Headers),
    Scope = #{path => <<"/cookies/read">>, headers => [{<<"cookie">>, <<"session=xyz">>}]},
    {ok, {200, _, Body}} = py_asgi:run(fastapi_app, app, Scope, <<>>),
    #{<<"session">> := <<"xyz">>} = json(Body),
    ok.

%% @doc A redirect: status and location.
-spec asgi_redirect(ct_suite:ct_config()) -> term().
asgi_redirect(_Config) ->
    {ok, {307, Headers, <<>>}} = http_get(<<"/redirect">>),
    <<"/">> = header(<<"location">>, Headers),
    ok.

%% @doc A custom exception handler (418) and an HTTPException with headers (404).
-spec asgi_exception_handlers(ct_suite:ct_config()) -> term().
asgi_exception_handlers(_Config) ->
    {ok, {418, _, Body}} = http_get(<<"/teapot/earl">>),
    #{<<"teapot">> := <<"earl">>} = json(Body),
    {ok, {404, Headers, Body2}} = http_get(<<"/missing">>),
    <<"gone">> = header(<<"x-reason">>, Headers),
    #{<<"detail">> := <<"no such thing">>} = json(Body2),
    ok.

%% @doc An exception in a route: Starlette answers 500 and re-raises; the client gets the 500
%% and the exception is logged (erlang.asgi), as with uvicorn.
-spec asgi_500_after_response_start(ct_suite:ct_config()) -> term().
asgi_500_after_response_start(_Config) ->
    {ok, _} = py:call(edge_apps, capture_logs, []),
    {ok, {500, _, <<"Internal Server Error">>}} = http_get(<<"/boom">>),
    [{<<"erlang.asgi">>, <<"ERROR">>, <<"ASGI app raised after its response was complete">>}] =
        events(),
    ok.

%% @doc A body that is not UTF-8 goes through as bytes, both ways.
-spec asgi_binary_body_echo(ct_suite:ct_config()) -> term().
asgi_binary_body_echo(_Config) ->
    Data = <<0, 255, 1, 254, "abc", 200>>,
    {ok, {200, Headers, Data}} =
        py_asgi:run(fastapi_app, app, #{path => <<"/echo">>, method => <<"PUT">>}, Data),
    <<"8">> = header(<<"x-length">>, Headers),
    ok.

%% @doc A background task runs after the response (before run/5 returns).
-spec asgi_background_task(ct_suite:ct_config()) -> term().
asgi_background_task(_Config) ->
    {ok, {200, _, _}} = py_asgi:run(fastapi_app, app,
                                    #{path => <<"/background">>, method => <<"POST">>,
                                      query_string => <<"word=ct">>}, <<>>),
    {ok, {200, _, Body}} = http_get(<<"/background/done">>),
    #{<<"done">> := Done} = json(Body),
    true = lists:member(<<"ct">>, Done),
    ok.

%% @doc The lifespan runs once; its state reaches requests; shutdown runs it down, and the next
%% request starts it again.
-spec asgi_lifespan_state(ct_suite:ct_config()) -> term().
asgi_lifespan_state(_Config) ->
    {ok, {200, _, Body}} = http_get(<<"/state">>),
    #{<<"greeting">> := <<"hello from lifespan">>, <<"started">> := 1} = json(Body),
    Scope = #{path => <<"/">>},
    {ok, {200, _, <<"({'n': 1}, 1, 0)">>}} = py_asgi:run(edge_apps, lifespan_app, Scope, <<>>),
    {ok, {200, _, <<"({'n': 1}, 1, 0)">>}} = py_asgi:run(edge_apps, lifespan_app, Scope, <<>>),
    ok = py_asgi:shutdown(edge_apps, lifespan_app),
    {error, not_started} = py_asgi:shutdown(edge_apps, lifespan_app),
    {ok, {200, _, <<"({'n': 2}, 2, 1)">>}} = py_asgi:run(edge_apps, lifespan_app, Scope, <<>>),
    %% A request's own state is merged over the lifespan's.
    {ok, {200, _, <<"({'n': 2, 'extra': 1}, 2, 1)">>}} =
        py_asgi:run(edge_apps, lifespan_app, Scope#{state => #{extra => 1}}, <<>>),
    %% lifespan => false: no startup for this request.
    {ok, {200, _, <<"({}, 2, 1)">>}} =
        py_asgi:run(edge_apps, lifespan_app, Scope, <<>>, #{lifespan => false}),
    ok = py_asgi:shutdown(edge_apps, lifespan_app),
    ok.

%% @doc Concurrent first requests wait for one startup.
-spec asgi_lifespan_once_for_concurrent_requests(ct_suite:ct_config()) -> term().
asgi_lifespan_once_for_concurrent_requests(_Config) ->
    Run = fun(_) -> py_asgi:run(edge_apps, lifespan_app, #{path => <<"/">>}, <<>>) end,
    Results = py_test_util:pmap(Run, lists:seq(1, 8)),
    [{ok, {200, _, Body}}] = lists:usort(Results),
    {match, _} = re:run(Body, <<"^\\(\\{'n': \\d+\\}, \\d+, \\d+\\)$">>),
    ok = py_asgi:shutdown(edge_apps, lifespan_app),
    {ok, Startups} = py:eval(<<"__import__('edge_apps').lifespan_app.startups">>),
    {ok, Shutdowns} = py:eval(<<"__import__('edge_apps').lifespan_app.shutdowns">>),
    Startups = Shutdowns,
    ok.

%% @doc An app whose startup fails answers no request.
-spec asgi_lifespan_startup_failed(ct_suite:ct_config()) -> term().
asgi_lifespan_startup_failed(_Config) ->
    {error, {'RuntimeError', <<"ASGI lifespan startup failed: no database">>}} =
        py_asgi:run(edge_apps, failing_startup, #{path => <<"/">>}, <<>>),
    ok.

%% @doc The scope follows ASGI 3.0: headers [(bytes, bytes)], query_string/raw_path bytes,
%% server/client tuples, 1.6's defaults.
-spec asgi_scope_is_spec_compliant(ct_suite:ct_config()) -> term().
asgi_scope_is_spec_compliant(_Config) ->
    Scope = #{path => <<"/a b">>, raw_path => <<"/a%20b">>, query_string => <<"x=1">>,
              headers => [[<<"Host">>, <<"h">>], {<<"x-bin">>, <<255>>}],
              server => {<<"127.0.0.1">>, 8080}, client => [<<"1.2.3.4">>, 9]},
    {ok, {200, _, Body}} = py_asgi:run(edge_apps, scope_types, Scope, <<>>),
    Lines = binary:split(Body, <<"\n">>, [global]),
    [<<"asgi: dict {'version': '3.0', 'spec_version': '2.4'}">>,
     <<"client: ('1.2.3.4', 9)">>,
     <<"headers: [('bytes', 'bytes'), ('bytes', 'bytes')][(b'host', b'h'), (b'x-bin', b'\\xff')]">>,
     <<"http_version: str '1.1'">>,
     <<"method: str 'GET'">>,
     <<"path: str '/a b'">>,
     <<"query_string: bytes b'x=1'">>,
     <<"raw_path: bytes b'/a%20b'">>,
     <<"root_path: str ''">>,
     <<"scheme: str 'http'">>,
     <<"server: ('127.0.0.1', 8080)">>,
     <<"state: dict {}">>,
     <<"type: str 'http'">>] = Lines,
    %% Without path, it is decoded from raw_path; without either it is /.
    {ok, {200, _, Body2}} = py_asgi:run(edge_apps, scope_types, #{raw_path => <<"/x%2Fy">>}, <<>>),
    {match, _} = re:run(Body2, <<"path: str '/x/y'">>),
    {ok, {200, _, Body3}} = py_asgi:run(edge_apps, scope_types, #{}, <<>>),
    {match, _} = re:run(Body3, <<"raw_path: bytes b'/'">>),
    ok.

%% @doc stream/6 sends a server's scope (its eleven keys, usual types) in the external format,
%% read natively in Python; run/5 sends it as an argument. The app sees the same scope either
%% way, for server scopes and for scopes that take the general path (another key, a value of
%% another type), and a scope that is no map gets the same error.
-spec asgi_stream_scope_as_run(ct_suite:ct_config()) -> term().
asgi_stream_scope_as_run(_Config) ->
    Server = #{type => <<"http">>, http_version => <<"1.1">>, method => <<"post">>,
               scheme => <<"https">>, path => <<"/a b/é"/utf8>>, raw_path => <<"/a%20b/%C3%A9">>,
               query_string => <<"q=", 255>>, root_path => <<"/api">>,
               headers => [{<<"Host">>, <<"h">>}, {<<"x-bin">>, <<255, 0>>}],
               server => {<<"127.0.0.1">>, 8080}, client => {<<"::1">>, 70000}},
    Scopes = [Server,
              Server#{client => none, server => undefined, headers => []},
              %% Keys as binaries.
              maps:from_list([{atom_to_binary(K), V} || {K, V} <- maps:to_list(Server)]),
              %% The general path: an atom, a list address, a twelfth key, a path that is not
              %% UTF-8, a method that is not ASCII.
              Server#{method => 'GET'},
              Server#{client => [<<"1.2.3.4">>, 9]},
              Server#{state => #{k => 1}},
              Server#{path => <<"/", 255>>},
              Server#{method => <<"ß"/utf8>>}],
    Same = fun(Scope) ->
                   {ok, {200, _, Body}} = py_asgi:run(edge_apps, scope_types, Scope, <<>>),
                   {ok, [{response_start, 200, []}, {response_body, Body, false}]} =
                       py_asgi:stream(edge_apps, scope_types, Scope, collect(), [], #{}),
                   Body
           end,
    [First | _] = [Same(Scope) || Scope <- Scopes],
    Has = fun(Text) -> {_, _} = binary:match(First, Text) end,
    Has(<<"[(b'host', b'h'), (b'x-bin', b'\\xff\\x00')]">>),
    Has(<<"method: str 'POST'">>),
    Has(<<"query_string: bytes b'q=\\xff'">>),
    Has(<<"client: ('::1', 70000)">>),
    %% Bad values get the general path's errors, the same through both.
    Bad = [Server#{path => <<"x">>}, Server#{headers => [{<<"a">>}]},
           Server#{http_version => <<"9">>}, Server#{type => <<"ws">>}],
    [begin
         {error, Reason} = py_asgi:run(edge_apps, scope_types, Scope, <<>>),
         {error, Reason, []} = py_asgi:stream(edge_apps, scope_types, Scope, collect(), [], #{})
     end || Scope <- Bad],
    Expected = {'TypeError', <<"expected map for ASGI scope">>},
    {error, Expected, []} = py_asgi:stream(edge_apps, scope_types, [not_a_map], collect(), [], #{}),
    {error, Expected, []} = py_asgi:stream(edge_apps, scope_types, <<131, 106>>, collect(), [], #{}),
    ok.

%% @doc build_scope/1,2 gives an opaque handle that run/5 and py:call accept.
-spec asgi_build_scope(ct_suite:ct_config()) -> term().
asgi_build_scope(_Config) ->
    {ok, Ref} = py_asgi:build_scope(#{path => <<"/items/7">>, query_string => <<"q=a">>},
                                    #{state => #{k => 1}, extensions => #{e => #{}}}),
    true = is_reference(Ref),
    {ok, <<"q=a">>} = py:call(operator, getitem, [Ref, <<"query_string">>]),
    {ok, #{<<"k">> := 1}} = py:call(operator, getitem, [Ref, <<"state">>]),
    {ok, {200, _, Body}} = py_asgi:run(fastapi_app, app, Ref, <<>>),
    #{<<"item_id">> := 7, <<"q">> := <<"a">>} = json(Body),
    {error, {'TypeError', <<"expected map for ASGI scope">>}} = py_asgi:build_scope(not_a_map),
    ok.

%%% ASGI streaming

%% @doc stream/6 hands the start and each chunk to the handler, in order.
-spec asgi_stream_chunks_in_order(ct_suite:ct_config()) -> term().
asgi_stream_chunks_in_order(_Config) ->
    {ok, Events} = py_asgi:stream(fastapi_app, app, #{path => <<"/stream">>,
                                                      query_string => <<"n=3">>},
                                  collect(), [], #{}),
    [{response_start, 200, Headers}, {response_body, <<"chunk 0\n">>, true},
     {response_body, <<"chunk 1\n">>, true}, {response_body, <<"chunk 2\n">>, true},
     {response_body, <<>>, false}] = Events,
    <<"text/plain; charset=utf-8">> = header(<<"content-type">>, Headers),
    ok.

%% @doc Server-sent events arrive one event per chunk.
-spec asgi_stream_sse(ct_suite:ct_config()) -> term().
asgi_stream_sse(_Config) ->
    {ok, [{response_start, 200, Headers} | Chunks]} =
        py_asgi:stream(fastapi_app, app, #{path => <<"/sse">>}, collect(), [], #{}),
    <<"text/event-stream; charset=utf-8">> = header(<<"content-type">>, Headers),
    [<<"id: 0\nevent: tick\ndata: {\"n\": 0}\n\n">>, <<"id: 1\nevent: tick\ndata: {\"n\": 1}\n\n">>,
     <<"id: 2\nevent: tick\ndata: {\"n\": 2}\n\n">>, <<>>] = [C || {response_body, C, _} <- Chunks],
    ok.

%% @doc The app's send waits for the handler: while the handler holds chunk N, the app has
%% completed exactly N sends.
-spec asgi_stream_backpressure(ct_suite:ct_config()) -> term().
asgi_stream_backpressure(_Config) ->
    Handler = fun({response_body, Chunk, true}, Acc) ->
                      {ok, Sent} = py:call(edge_apps, sent, []),
                      {ok, [{binary_to_integer(Chunk), Sent} | Acc]};
                 (_, Acc) ->
                      {ok, Acc}
              end,
    {ok, Seen} = py_asgi:stream(edge_apps, counting, #{}, Handler, [], #{}),
    [{0, 0}, {1, 1}, {2, 2}, {3, 3}] = lists:reverse(Seen),
    [<<"finished">>, <<"finally">>] = events(),
    ok.

%% @doc With more_body, the app asks the handler for each request body chunk.
-spec asgi_stream_request_body_chunks(ct_suite:ct_config()) -> term().
asgi_stream_request_body_chunks(_Config) ->
    Handler = fun(request_body, [Next | Rest]) -> {{body, Next, Rest =/= []}, Rest};
                 (_, Acc) -> {ok, Acc}
              end,
    Self = self(),
    Collect = fun(request_body, Acc) -> Handler(request_body, Acc);
                 (Event, Acc) -> Self ! {event, Event}, {ok, Acc}
              end,
    {ok, []} = py_asgi:stream(edge_apps, echo_chunks, #{method => <<"POST">>}, Collect,
                              [<<"bb">>, <<255, 0>>, <<"dddd">>],
                              #{body => <<"a">>, more_body => true}),
    receive {event, {response_start, 200, [{<<"x-sizes">>, <<"[1, 2, 2, 4]">>}]}} -> ok end,
    receive {event, {response_body, <<"abb", 255, 0, "dddd">>, false}} -> ok end,
    %% The whole body at once through FastAPI.
    {ok, [_, {response_body, <<"xyz">>, false}]} =
        py_asgi:stream(fastapi_app, app, #{path => <<"/echo">>, method => <<"PUT">>}, collect(),
                       [], #{body => <<"xyz">>}),
    ok.

%% @doc A handler answering disconnect makes the app's send raise an OSError; stream/6
%% returns once the app finished.
-spec asgi_stream_disconnect_raises_in_app(ct_suite:ct_config()) -> term().
asgi_stream_disconnect_raises_in_app(_Config) ->
    Handler = fun({response_body, <<"1">>, _}, N) -> {disconnect, N + 1};
                 (_, N) -> {ok, N + 1}
              end,
    {ok, 3} = py_asgi:stream(edge_apps, counting, #{}, Handler, 0, #{}),
    [{<<"oserror">>, <<"ClientDisconnected">>}, <<"finally">>] = events(),
    ok.

%% @doc A disconnect while the app reads the body is an http.disconnect message.
-spec asgi_stream_request_body_disconnect(ct_suite:ct_config()) -> term().
asgi_stream_request_body_disconnect(_Config) ->
    Handler = fun(request_body, Acc) -> {disconnect, Acc}; (_, Acc) -> {ok, Acc} end,
    {ok, none} = py_asgi:stream(edge_apps, echo_chunks, #{}, Handler, none,
                                #{body => <<"a">>, more_body => true}),
    [<<"disconnect">>] = events(),
    ok.

%% @doc A handler that raises: the app is cancelled, the exception goes on, nothing is left in
%% the mailbox.
-spec asgi_stream_handler_crash_cancels_app(ct_suite:ct_config()) -> term().
asgi_stream_handler_crash_cancels_app(_Config) ->
    Handler = fun({response_body, _, _}, _) -> error(handler_broke); (_, Acc) -> {ok, Acc} end,
    {'EXIT', {handler_broke, _}} =
        (catch py_asgi:stream(edge_apps, counting, #{}, Handler, ok, #{})),
    %% Cancelled, or stopped by the disconnect answered to its pending send: either way it ends.
    py_test_util:wait_until(fun() -> lists:member(<<"finally">>, events()) end, 10000),
    [Ended, <<"finally">>] = events(),
    true = lists:member(Ended, [<<"cancelled">>, {<<"oserror">>, <<"ClientDisconnected">>}]),
    py_test_util:assert_mailbox_empty(),
    ok.

%% @doc When the process running stream/6 dies, the app is cancelled.
-spec asgi_stream_caller_death_cancels_app(ct_suite:ct_config()) -> term().
asgi_stream_caller_death_cancels_app(_Config) ->
    Pid = spawn(fun() -> py_asgi:stream(edge_apps, sleeper, #{}, collect(), [], #{}) end),
    wait_events([<<"sleeping">>]),
    exit(Pid, kill),
    wait_events([<<"sleeping">>, <<"cancelled">>]),
    ok.

%% @doc When the process running stream/6 dies while the app waits for its answer (here to
%% a request for body), the process carrying the app's call ends too.
-spec asgi_stream_caller_death_releases_event(ct_suite:ct_config()) -> term().
asgi_stream_caller_death_releases_event(_Config) ->
    Self = self(),
    Handler = fun(request_body, _) -> Self ! {blocked, self()}, receive after infinity -> ok end;
                 (_, Acc) -> {ok, Acc}
              end,
    Pid = spawn(fun() ->
                        py_asgi:stream(edge_apps, echo_chunks, #{method => <<"POST">>}, Handler,
                                       [], #{body => <<"a">>, more_body => true})
                end),
    receive {blocked, Pid} -> ok after 20000 -> ct:fail(never_asked_for_body) end,
    1 = length(event_waiters()),
    exit(Pid, kill),
    py_test_util:wait_until(fun() -> event_waiters() =:= [] end, 10000),
    ok.

%% @doc The event function the runner calls (any Python code can) refuses a peer that
%% stream/6 did not make, with an error and no crash.
-spec asgi_event_function_refuses_bad_peers(ct_suite:ct_config()) -> term().
asgi_event_function_refuses_bad_peers(_Config) ->
    %% Registered by the first stream.
    {ok, _} = py_asgi:stream(edge_apps, scope_types, #{}, collect(), [], #{}),
    ok = py:exec(<<"import erlang">>),
    Call = fun(Args) ->
                   py:eval(<<"erlang.call('_py_asgi_event', *args)">>, #{args => Args})
           end,
    {error, {'ErlangError', <<"error: {badarg,<<\"junk\">>}">>}} =
        Call([<<"junk">>, <<"x">>]),
    {error, {'ErlangError', <<"error: function_clause">>}} = Call([1, 2, 3]),
    NotAPeer = term_to_binary({1, 2, 3}),
    {error, {'ErlangError', Message}} = Call([NotAPeer, <<"x">>]),
    {match, _} = re:run(Message, <<"badarg">>),
    %% A peer whose request is over (its process gone): disconnect, at once.
    Gone = spawn(fun() -> ok end),
    Alias = alias(),
    true = unalias(Alias),
    Over = atomics:new(1, []),
    {ok, <<"disconnect">>} =
        Call([term_to_binary({Alias, Gone, Over}), <<"request_body">>]),
    {messages, []} = process_info(self(), messages),
    ok.

%% @doc An event the app sends once its request is over (a task of its own asks for more
%% body after stream/6 returned, its caller still alive) gets `http.disconnect': nothing waits
%% for an answer, nothing reaches the caller's mailbox.
-spec asgi_stream_late_event_answered(ct_suite:ct_config()) -> term().
asgi_stream_late_event_answered(_Config) ->
    Handler = fun(request_body, _) -> error(late_event_handled);
                 (Event, Acc) -> {ok, [Event | Acc]}
              end,
    {ok, [{response_body, <<"ok">>, false}, {response_start, 200, _}]} =
        py_asgi:stream(edge_apps, late_reader, #{method => <<"POST">>}, Handler, [],
                       #{body => <<"a">>, more_body => true}),
    [] = events(),
    %% The request's flag may be freed by now (here: surely), as in a server's process that
    %% goes on to its next request.
    true = erlang:garbage_collect(),
    {ok, _} = py:call(edge_apps, release_linger, []),
    py_test_util:wait_until(fun() -> events() =/= [] end, 10000),
    [{<<"late">>, <<"http.disconnect">>}] = events(),
    [] = event_waiters(),
    py_test_util:assert_mailbox_empty(),
    ok.

-spec event_waiters() -> [pid()].
event_waiters() ->
    [P || P <- processes(),
          erlang:process_info(P, current_function) =:= {current_function, {py_asgi, event, 4}}].

%% @doc An app that sends nothing for `timeout' ms is cancelled: {error, timeout, Acc}.
-spec asgi_stream_idle_timeout(ct_suite:ct_config()) -> term().
asgi_stream_idle_timeout(_Config) ->
    {error, timeout, acc} = py_asgi:stream(edge_apps, sleeper, #{}, collect(), acc,
                                           #{timeout => 200}),
    wait_events([<<"sleeping">>, <<"cancelled">>]),
    py_test_util:assert_mailbox_empty(),
    ok.

%% @doc run/5's timeout cancels the app; the next request is served.
-spec asgi_timeout_cancels_app(ct_suite:ct_config()) -> term().
asgi_timeout_cancels_app(_Config) ->
    {error, timeout} = py_asgi:run(edge_apps, sleeper, #{}, <<>>, #{timeout => 200}),
    wait_events([<<"sleeping">>, <<"cancelled">>]),
    {error, timeout} = py_asgi:run(fastapi_app, app, #{path => <<"/slow">>}, <<>>,
                                   #{timeout => 100}),
    {ok, {200, _, _}} = http_get(<<"/">>),
    py_test_util:assert_mailbox_empty(),
    ok.

%% @doc Apps that misbehave give {error, {Type, Message}}.
-spec asgi_app_errors(ct_suite:ct_config()) -> term().
asgi_app_errors(_Config) ->
    Run = fun(App) -> py_asgi:run(edge_apps, App, #{}, <<>>) end,
    {error, {'KeyError', <<"'before start'">>}} = Run(raise_before_start),
    {error, {'LookupError', <<"after start">>}} = Run(raise_after_start),
    {error, {'RuntimeError', <<"ASGI app returned without sending http.response.start">>}} =
        Run(no_response),
    {error, {'TypeError', <<"ASGI response status must be an int 100-599, not '200'">>}} =
        Run(bad_status),
    {error, {'TypeError', <<"ASGI response header must be bytes, not ('a', 'b')">>}} =
        Run(bad_headers),
    {error, {'RuntimeError', <<"ASGI http.response.body sent before http.response.start">>}} =
        Run(body_first),
    {error, {'LookupError', <<"after start">>},
     [{response_start, 200, []}, {response_body, <<"part">>, true}]} =
        py_asgi:stream(edge_apps, raise_after_start, #{}, collect(), [], #{}),
    %% The failed request's traceback is the caller's last one, and its reply is not left in
    %% the mailbox.
    Traceback = py:last_traceback(),
    {match, _} = re:run(Traceback, <<"LookupError: after start">>),
    {messages, []} = process_info(self(), messages),
    ok.

%% @doc Malformed scopes, modules and names.
-spec asgi_bad_input(ct_suite:ct_config()) -> term().
asgi_bad_input(_Config) ->
    Run = fun(Scope) -> py_asgi:run(edge_apps, scope_types, Scope, <<>>) end,
    {error, {'TypeError', <<"expected map for ASGI scope">>}} = Run([not_a_map]),
    {error, {'TypeError', <<"ASGI header must be a [Name, Value] pair, not ['only-name']">>}} =
        Run(#{headers => [[<<"only-name">>]]}),
    {error, {'TypeError', <<"ASGI scope headers must be a list, not str">>}} =
        Run(#{headers => <<"host: x">>}),
    {error, {'TypeError', _}} = Run(#{headers => [{1, 2}]}),
    {error, {'TypeError', <<"ASGI scope server must be a {Host, Port} tuple, not ('h',)">>}} =
        Run(#{server => {<<"h">>}}),
    {error, {'ValueError', <<"ASGI scope path must start with /, not 'x'">>}} =
        Run(#{path => <<"x">>}),
    {error, {'ValueError', _}} = Run(#{type => <<"lifespan">>}),
    {error, {'ValueError', _}} = Run(#{http_version => <<"9">>}),
    WsError = <<"an ASGI websocket scope is served by py_asgi:websocket/4, not here">>,
    {error, {'ValueError', WsError}} = Run(#{type => websocket}),
    {error, {'ModuleNotFoundError', <<"No module named 'no_such_app_module'">>}} =
        py_asgi:run(no_such_app_module, app, #{}, <<>>),
    {error, {'AttributeError', _}} = py_asgi:run(fastapi_app, no_such_app, #{}, <<>>),
    {error, {'TypeError', _}} = py_asgi:run(fastapi_app, 'DONE', #{}, <<>>),
    {'EXIT', {badarg, _}} = (catch py_asgi:run(42, app, #{}, <<>>)),
    {'EXIT', {function_clause, _}} = (catch py_asgi:run(fastapi_app, app, #{}, <<>>, not_opts)),
    {'EXIT', {badarg, _}} = (catch py_asgi:run(fastapi_app, app, #{}, not_iodata)),
    {'EXIT', {function_clause, _}} =
        (catch py_asgi:stream(fastapi_app, app, #{}, not_a_fun, [], #{})),
    ok.

%% @doc 1.6's runner option: its default means the shipped runner; a module of yours with
%% _run_asgi_sync is called; a missing one gives runner_module_required.
-spec asgi_runner_option(ct_suite:ct_config()) -> term().
asgi_runner_option(_Config) ->
    {ok, {200, _, _}} = py_asgi:run(fastapi_app, app, #{path => <<"/">>}, <<>>,
                                    #{runner => <<"hornbeam_asgi_runner">>}),
    {error, runner_module_required} =
        py_asgi:run(fastapi_app, app, #{}, <<>>, #{runner => <<"no_such_runner">>}),
    ok = py:exec(<<"import sys, types\n"
                   "m = types.ModuleType('ct_asgi_runner')\n"
                   "def _run_asgi_sync(module, name, scope, body):\n"
                   "    return (299, [(b'x-mod', module.encode())], scope['query_string'] + body)\n"
                   "m._run_asgi_sync = _run_asgi_sync\n"
                   "sys.modules['ct_asgi_runner'] = m\n">>),
    {ok, {299, [{<<"x-mod">>, <<"mine">>}], <<"q=1!">>}} =
        py_asgi:run(mine, app, #{query_string => <<"q=1">>}, <<"!">>,
                    #{runner => <<"ct_asgi_runner">>}),
    ok.

%%% WSGI (Flask)

-spec wsgi(binary()) -> term().
wsgi(Path) -> wsgi(Path, <<>>).

-spec wsgi(binary(), binary()) -> term().
wsgi(Path, Query) ->
    py_wsgi:run(flask_app, app, #{<<"PATH_INFO">> => Path, <<"QUERY_STRING">> => Query}).

%% @doc Path and query parameters reach Flask; the status is a binary as in 1.6.
-spec wsgi_path_and_query(ct_suite:ct_config()) -> term().
wsgi_path_and_query(_Config) ->
    {ok, {<<"200 OK">>, Headers, Body}} = wsgi(<<"/items/42">>, <<"q=tea&limit=3">>),
    #{<<"item_id">> := 42, <<"q">> := <<"tea">>, <<"limit">> := 3} = json(Body),
    <<"application/json">> = header(<<"Content-Type">>, Headers),
    {ok, {<<"404 NOT FOUND">>, _, Body404}} = wsgi(<<"/nowhere">>),
    #{<<"error">> := <<"not found">>, <<"path">> := <<"/nowhere">>} = json(Body404),
    ok.

%% @doc JSON bodies: 201, and the app's own validation error 422.
-spec wsgi_json_bodies(ct_suite:ct_config()) -> term().
wsgi_json_bodies(_Config) ->
    Environ = #{'REQUEST_METHOD' => <<"POST">>, 'PATH_INFO' => <<"/items">>,
                'CONTENT_TYPE' => <<"application/json">>},
    {ok, {<<"201 CREATED">>, _, Body}} =
        py_wsgi:run(flask_app, app,
                    Environ#{<<"wsgi.input">> => <<"{\"name\":\"tea\",\"price\":2}">>}),
    #{<<"total">> := 4} = json(Body),
    {ok, {<<"422 UNPROCESSABLE ENTITY">>, _, _}} =
        py_wsgi:run(flask_app, app, Environ, #{body => <<"{\"name\":\"\"}">>}),
    ok.

%% @doc Form and multipart upload (bytes that are not UTF-8).
-spec wsgi_form_and_upload(ct_suite:ct_config()) -> term().
wsgi_form_and_upload(_Config) ->
    {ok, {<<"200 OK">>, _, Body}} =
        py_wsgi:run(flask_app, app, #{'REQUEST_METHOD' => <<"POST">>, 'PATH_INFO' => <<"/form">>,
                                      'CONTENT_TYPE' => <<"application/x-www-form-urlencoded">>},
                    #{body => <<"name=J%C3%BCrgen&age=41">>}),
    #{<<"name">> := <<"Jürgen"/utf8>>, <<"age">> := 41} = json(Body),
    Data = <<255, 0, 254, 1, 128, 129, 2, 3, 4, 5>>,
    Multi = multipart(<<"XyZ">>,
                      [{<<"Content-Disposition: form-data; name=\"file\"; filename=\"a.bin\"\r\n"
                          "Content-Type: application/octet-stream">>, Data},
                       {<<"Content-Disposition: form-data; name=\"note\"">>, <<"hi">>}]),
    {ok, {<<"200 OK">>, _, Resp}} =
        py_wsgi:run(flask_app, app, #{'REQUEST_METHOD' => <<"POST">>, 'PATH_INFO' => <<"/upload">>,
                                      'CONTENT_TYPE' => <<"multipart/form-data; boundary=XyZ">>},
                    #{body => Multi}),
    #{<<"filename">> := <<"a.bin">>, <<"size">> := 10, <<"head">> := <<"ff00fe0180810203">>,
      <<"note">> := <<"hi">>} = json(Resp),
    ok.

%% @doc Cookies, a redirect and a custom error handler.
-spec wsgi_cookies_redirect_errors(ct_suite:ct_config()) -> term().
wsgi_cookies_redirect_errors(_Config) ->
    {ok, {<<"200 OK">>, Headers, _}} = wsgi(<<"/cookies/set">>),
    <<"session=abc123; HttpOnly; Path=/">> = header(<<"Set-Cookie">>, Headers),
    {ok, {<<"200 OK">>, _, Body}} =
        py_wsgi:run(flask_app, app, #{'PATH_INFO' => <<"/cookies/read">>,
                                      'HTTP_COOKIE' => <<"session=xyz">>}),
    #{<<"session">> := <<"xyz">>} = json(Body),
    {ok, {<<"302 FOUND">>, RHeaders, _}} = wsgi(<<"/redirect">>),
    <<"/">> = header(<<"Location">>, RHeaders),
    {ok, {<<"418 I'M A TEAPOT">>, _, TBody}} = wsgi(<<"/teapot/earl">>),
    #{<<"teapot">> := <<"earl">>} = json(TBody),
    ok.

%% @doc An exception in a Flask view is Flask's own 500.
-spec wsgi_500(ct_suite:ct_config()) -> term().
wsgi_500(_Config) ->
    {ok, {<<"500 INTERNAL SERVER ERROR">>, _, _}} = wsgi(<<"/boom">>),
    ok.

%% @doc A body that is not UTF-8 goes through as bytes, both ways.
-spec wsgi_binary_body_echo(ct_suite:ct_config()) -> term().
wsgi_binary_body_echo(_Config) ->
    Data = <<0, 255, 1, 254, "abc", 200>>,
    {ok, {<<"200 OK">>, Headers, Data}} =
        py_wsgi:run(flask_app, app, #{'REQUEST_METHOD' => <<"PUT">>, 'PATH_INFO' => <<"/echo">>},
                    #{body => Data}),
    <<"8">> = header(<<"X-Length">>, Headers),
    ok.

%% @doc The environ follows PEP 3333: native strings (latin-1 for non-ASCII bytes), the wsgi.*
%% keys, 1.6's defaults.
-spec wsgi_environ_is_pep3333(ct_suite:ct_config()) -> term().
wsgi_environ_is_pep3333(_Config) ->
    {ok, {<<"200 OK">>, _, Body}} =
        py_wsgi:run(edge_apps, wsgi_environ, #{'PATH_INFO' => <<"/caf", 195, 169>>,
                                               'HTTP_X_BIN' => <<255>>, 'SERVER_PORT' => 8080},
                    #{body => <<"in">>}),
    Lines = binary:split(Body, <<"\n">>, [global]),
    [<<"CONTENT_LENGTH: str '2'">>,
     <<"HTTP_X_BIN: str 'ÿ'"/utf8>>,
     <<"PATH_INFO: str '/cafÃ©"/utf8, "'">>,
     <<"QUERY_STRING: str ''">>,
     <<"REQUEST_METHOD: str 'GET'">>,
     <<"SCRIPT_NAME: str ''">>,
     <<"SERVER_NAME: str 'localhost'">>,
     <<"SERVER_PORT: str '8080'">>,
     <<"SERVER_PROTOCOL: str 'HTTP/1.1'">>,
     <<"wsgi.errors: ErrorStream ErrorStream">>,
     <<"wsgi.input: BytesIO BytesIO">>,
     <<"wsgi.input_terminated: bool True">>,
     <<"wsgi.multiprocess: bool True">>,
     <<"wsgi.multithread: bool True">>,
     <<"wsgi.run_once: bool False">>,
     <<"wsgi.url_scheme: str 'http'">>,
     <<"wsgi.version: tuple (1, 0)">>,
     <<"input: b'in'">>] = Lines,
    ok.

%% @doc write() output comes before the iterable's.
-spec wsgi_write_and_iterable(ct_suite:ct_config()) -> term().
wsgi_write_and_iterable(_Config) ->
    {ok, {<<"200 OK">>, _, <<"written,returned">>}} = py_wsgi:run(edge_apps, wsgi_write, #{}),
    ok.

%% @doc The iterable's close() is called.
-spec wsgi_close_called(ct_suite:ct_config()) -> term().
wsgi_close_called(_Config) ->
    {ok, {<<"200 OK">>, _, <<"first,second">>}} =
        py_wsgi:run(flask_app, closing_app, #{'QUERY_STRING' => <<"run">>}),
    {ok, [<<"run">>]} = py:eval(<<"__import__('flask_app').CLOSED[-1:]">>),
    ok.

%% @doc start_response with exc_info replaces the status before the body; after it, re-raises.
-spec wsgi_exc_info(ct_suite:ct_config()) -> term().
wsgi_exc_info(_Config) ->
    {ok, {<<"500 Internal Server Error">>, _, <<"replaced">>}} =
        py_wsgi:run(edge_apps, wsgi_exc_info, #{}),
    {error, {'ValueError', <<"too late">>}} =
        py_wsgi:run(edge_apps, wsgi_exc_info_after_write, #{}),
    ok.

%% @doc Apps that misbehave give {error, {Type, Message}}; the iterable is closed anyway.
-spec wsgi_app_errors(ct_suite:ct_config()) -> term().
wsgi_app_errors(_Config) ->
    Run = fun(App) -> py_wsgi:run(edge_apps, App, #{}) end,
    {error, {'KeyError', <<"'before start_response'">>}} = Run(wsgi_raise_before),
    {error, {'LookupError', <<"while iterating">>}} = Run(wsgi_raise_after),
    [<<"closed">>] = events(),
    {error, {'RuntimeError', <<"start_response called twice without exc_info">>}} =
        Run(wsgi_twice),
    {error, {'RuntimeError', <<"WSGI app yielded body before calling start_response">>}} =
        Run(wsgi_no_start),
    {error, {'TypeError', <<"WSGI app yielded str, not bytes">>}} = Run(wsgi_bad_chunk),
    ok.

%% @doc wsgi.errors goes to the erlang.wsgi logger, line by line.
-spec wsgi_errors_to_logger(ct_suite:ct_config()) -> term().
wsgi_errors_to_logger(_Config) ->
    {ok, _} = py:call(edge_apps, capture_logs, []),
    {ok, {<<"200 OK">>, _, <<"logged">>}} = py_wsgi:run(edge_apps, wsgi_errors, #{}),
    [{<<"erlang.wsgi">>, <<"ERROR">>, <<"first line">>},
     {<<"erlang.wsgi">>, <<"ERROR">>, <<"second line">>}] = events(),
    ok.

%% @doc stream/6 hands the status, then each chunk, to the handler.
-spec wsgi_stream_events(ct_suite:ct_config()) -> term().
wsgi_stream_events(_Config) ->
    {ok, Events} = py_wsgi:stream(flask_app, app, #{'PATH_INFO' => <<"/stream">>,
                                                    'QUERY_STRING' => <<"n=2">>},
                                  collect(), [], #{}),
    [{response_start, <<"200 OK">>, _}, {response_body, <<"chunk 0\n">>, true},
     {response_body, <<"chunk 1\n">>, true}, {response_body, <<>>, false}] = Events,
    {ok, [{response_start, <<"200 OK">>, _}, {response_body, <<"written,">>, true},
          {response_body, <<"returned">>, true}, {response_body, <<>>, false}]} =
        py_wsgi:stream(edge_apps, wsgi_write, #{}, collect(), [], #{}),
    ok.

%% @doc A handler answering disconnect stops the stream and closes the iterable at once.
-spec wsgi_stream_disconnect_closes(ct_suite:ct_config()) -> term().
wsgi_stream_disconnect_closes(_Config) ->
    Handler = fun({response_body, _, _}, Acc) -> {disconnect, Acc + 1};
                 (_, Acc) -> {ok, Acc + 1}
              end,
    {ok, 2} = py_wsgi:stream(flask_app, closing_app, #{'QUERY_STRING' => <<"stream">>}, Handler,
                             0, #{}),
    {ok, [<<"stream">>]} = py:eval(<<"__import__('flask_app').CLOSED[-1:]">>),
    ok.

%% @doc stream/6 takes one executor job to call the app and take its first output, then one
%% per pull of the iterable: two for a response of one chunk (the second finds the end), one
%% for an iterable with no output, whose close() has run when the last event comes, and one
%% for a list.
-spec wsgi_stream_jobs(ct_suite:ct_config()) -> term().
wsgi_stream_jobs(_Config) ->
    Jobs = fun(Fun) ->
                   MFA = {py_request, submit_nif, 4},
                   1 = erlang:trace_pattern(MFA, true, [local, call_count]),
                   try
                       Result = Fun(),
                       {call_count, N} = erlang:trace_info(MFA, call_count),
                       {Result, N}
                   after
                       erlang:trace_pattern(MFA, false, [local, call_count])
                   end
           end,
    {{ok, [{response_start, <<"200 OK">>, _}, {response_body, Body, true},
           {response_body, <<>>, false}]}, 2} =
        Jobs(fun() -> py_wsgi:stream(flask_app, app, #{}, collect(), [], #{}) end),
    #{<<"message">> := <<"hello">>} = json(Body),
    {ok, _} = py:call(edge_apps, reset, []),
    Closed = fun({response_body, <<>>, false}, Acc) -> {ok, [events() | Acc]};
                (Event, Acc) -> {ok, [Event | Acc]}
             end,
    %% One job for the response, one for the handler's own call of events/0.
    {{ok, [[<<"closed">>], {response_start, <<"204 No Content">>, []}]}, 2} =
        Jobs(fun() -> py_wsgi:stream(edge_apps, wsgi_empty, #{}, Closed, [], #{}) end),
    {{ok, [_, _, _, _]}, 3} =
        Jobs(fun() -> py_wsgi:stream(flask_app, app, #{'PATH_INFO' => <<"/stream">>,
                                                       'QUERY_STRING' => <<"n=2">>},
                                     collect(), [], #{}) end),
    %% A list: the whole response in the job that calls the app.
    {{ok, [_, {response_body, <<"written,">>, true}, {response_body, <<"returned">>, true},
           {response_body, <<>>, false}]}, 1} =
        Jobs(fun() -> py_wsgi:stream(edge_apps, wsgi_write, #{}, collect(), [], #{}) end),
    {{ok, [_, _, _, _]}, 3} =
        Jobs(fun() -> py_wsgi:stream(edge_apps, wsgi_write_iter, #{}, collect(), [], #{}) end),
    ok.

%% @doc An app failing before or while streaming gives {error, Reason, Acc}.
-spec wsgi_stream_error(ct_suite:ct_config()) -> term().
wsgi_stream_error(_Config) ->
    {error, {'KeyError', _}, []} =
        py_wsgi:stream(edge_apps, wsgi_raise_before, #{}, collect(), [], #{}),
    {error, {'LookupError', <<"while iterating">>}, Events} =
        py_wsgi:stream(edge_apps, wsgi_raise_after, #{}, collect(), [], #{}),
    [{response_start, <<"200 OK">>, _}, {response_body, <<"one,">>, true}] = Events,
    wait_events([<<"closed">>]),
    ok.

%% @doc run/4's timeout interrupts the app; the next request is served.
-spec wsgi_timeout(ct_suite:ct_config()) -> term().
wsgi_timeout(_Config) ->
    {error, timeout} = py_wsgi:run(flask_app, app, #{'PATH_INFO' => <<"/slow">>},
                                   #{timeout => 200}),
    {ok, {<<"200 OK">>, _, _}} = wsgi(<<"/">>),
    py_test_util:assert_mailbox_empty(),
    ok.

%% @doc Malformed environs, modules and names.
-spec wsgi_bad_input(ct_suite:ct_config()) -> term().
wsgi_bad_input(_Config) ->
    {error, {'TypeError', <<"expected map for WSGI environ">>}} =
        py_wsgi:run(flask_app, app, [not_a_map]),
    {error, {'TypeError', <<"WSGI environ PATH_INFO must be a binary, not list">>}} =
        py_wsgi:run(flask_app, app, #{'PATH_INFO' => [1, 2]}),
    {'EXIT', {badarg, _}} = (catch py_wsgi:run(flask_app, app, #{}, #{body => [<<"ok">>, 1.5]})),
    {error, {'ModuleNotFoundError', _}} = py_wsgi:run(no_such_wsgi_module, app, #{}),
    {'EXIT', {badarg, _}} = (catch py_wsgi:run(flask_app, {app}, #{})),
    ok.

%% @doc 1.6's runner option: its default means the shipped runner; a module of yours is
%% called; a missing one gives ModuleNotFoundError as in 1.6.
-spec wsgi_runner_option(ct_suite:ct_config()) -> term().
wsgi_runner_option(_Config) ->
    {ok, {<<"200 OK">>, _, _}} =
        py_wsgi:run(flask_app, app, #{}, #{runner => <<"hornbeam_wsgi_runner">>}),
    {error, {'ModuleNotFoundError', <<"No module named 'no_such_runner'">>}} =
        py_wsgi:run(flask_app, app, #{}, #{runner => <<"no_such_runner">>}),
    ok = py:exec(<<"import sys, types\n"
                   "m = types.ModuleType('ct_wsgi_runner')\n"
                   "def _run_wsgi_sync(module, name, environ):\n"
                   "    return ('200 OK', [], environ['PATH_INFO'].encode() + module.encode())\n"
                   "m._run_wsgi_sync = _run_wsgi_sync\n"
                   "sys.modules['ct_wsgi_runner'] = m\n">>),
    {ok, {<<"200 OK">>, [], <<"/pmine">>}} =
        py_wsgi:run(mine, app, #{'PATH_INFO' => <<"/p">>}, #{runner => <<"ct_wsgi_runner">>}),
    ok.


%%% Websocket sessions (py_asgi:websocket/4): the test process is the owner, as a cowboy or
%%% Phoenix handler would be.

%% The next outcome of a message of the session (other messages are skipped).
-spec ws_next(py_asgi:websocket()) -> term().
ws_next(WS) ->
    receive
        Message ->
            case py_asgi:websocket_event(Message, WS) of
                unknown -> ws_next(WS);
                Outcome -> Outcome
            end
    after 20000 ->
        ct:fail(no_websocket_event)
    end.

-spec ws_scope(binary()) -> map().
ws_scope(Path) ->
    #{type => <<"websocket">>, path => Path, headers => [{<<"host">>, <<"x">>}]}.

-spec mailboxes() -> non_neg_integer().
mailboxes() ->
    length([P || P <- processes(),
                 erlang:process_info(P, initial_call) =:= {initial_call, {py_mailbox, init, 2}}]).

%% @doc A FastAPI websocket route driven through the server-agnostic API: the accept with
%% its subprotocol and headers, text and binary both ways, the client's departure, the end;
%% nothing of the session is left.
-spec asgi_websocket_session(ct_suite:ct_config()) -> term().
asgi_websocket_session(_Config) ->
    Scope = (ws_scope(<<"/ws/echo">>))#{subprotocols => [<<"chat">>]},
    {ok, WS} = py_asgi:websocket(fastapi_app, app, Scope, #{}),
    {event, {accept, <<"chat">>, [{<<"x-ws">>, <<"echo">>}]}} = ws_next(WS),
    ok = py_asgi:websocket_deliver(WS, {text, <<"héllo"/utf8>>}),
    {event, {text, <<"héllo"/utf8>>}} = ws_next(WS),
    ok = py_asgi:websocket_ack(WS),
    ok = py_asgi:websocket_deliver(WS, {binary, [<<0>>, <<255>>]}),
    {event, {binary, <<0, 255>>}} = ws_next(WS),
    ok = py_asgi:websocket_ack(WS),
    ok = py_asgi:websocket_deliver(WS, {text, <<"close">>}),
    {event, {close, 4000, <<"asked to close">>}} = ws_next(WS),
    ok = py_asgi:websocket_disconnect(WS, 4000, <<"asked to close">>),
    {done, ok} = ws_next(WS),
    unknown = py_asgi:websocket_event({make_ref(), x}, WS),
    py_test_util:wait_for_value(fun mailboxes/0, 0, 20000),
    py_test_util:assert_mailbox_empty().

%% @doc A route that closes before accepting: a close event (a server's 403), then the end;
%% a route that sends first sends without being asked.
-spec asgi_websocket_refused(ct_suite:ct_config()) -> term().
asgi_websocket_refused(_Config) ->
    {ok, WS} = py_asgi:websocket(fastapi_app, app, ws_scope(<<"/ws/reject">>), #{}),
    {event, {close, 1008, <<>>}} = ws_next(WS),
    {done, ok} = ws_next(WS),
    {ok, WS2} = py_asgi:websocket(fastapi_app, app, ws_scope(<<"/ws/first">>), #{}),
    {event, {accept, undefined, []}} = ws_next(WS2),
    [{event, {text, <<"{\"tick\":", _/binary>>}} = ws_next(WS2) || _ <- [1, 2, 3]],
    ok = py_asgi:websocket_disconnect(WS2, 1001, <<>>),
    {done, ok} = ws_next(WS2).

%% @doc The app's sends wait once `window' of them are not acknowledged; its send raises an
%% OSError once the client is gone.
-spec asgi_websocket_backpressure(ct_suite:ct_config()) -> term().
asgi_websocket_backpressure(_Config) ->
    {ok, WS} = py_asgi:websocket(edge_apps, ws_flood, ws_scope(<<"/">>), #{window => 3}),
    {event, {accept, undefined, []}} = ws_next(WS),
    [{event, {binary, _}} = ws_next(WS) || _ <- [1, 2, 3]],
    %% Nothing comes while nothing is acknowledged (the app is waiting in its send).
    py_test_util:wait_for_value(fun() -> {ok, N} = py:call(edge_apps, sent, []), N end, 3, 20000),
    py_test_util:assert_no_message(200),
    {ok, 3} = py:call(edge_apps, sent, []),
    ok = py_asgi:websocket_ack(WS),
    {event, {binary, _}} = ws_next(WS),
    ok = py_asgi:websocket_disconnect(WS, 1006, <<>>),
    {done, ok} = ws_next(WS),
    [{<<"oserror">>, <<"ClientDisconnected">>}] = events().

%% @doc websocket_cancel/1 stops an app that ignores the disconnect, and nothing of the
%% session comes afterwards; the owner's death cancels the app too.
-spec asgi_websocket_cancel_and_owner_death(ct_suite:ct_config()) -> term().
asgi_websocket_cancel_and_owner_death(_Config) ->
    {ok, WS} = py_asgi:websocket(edge_apps, ws_ignores_disconnect, ws_scope(<<"/">>), #{}),
    {event, {accept, undefined, []}} = ws_next(WS),
    ok = py_asgi:websocket_cancel(WS),
    py_test_util:wait_for_value(fun events/0, [<<"accepted">>, <<"cancelled">>], 20000),
    py_test_util:assert_mailbox_empty(),
    {ok, _} = py:call(edge_apps, reset, []),
    Self = self(),
    Owner = spawn(fun() ->
        {ok, WS2} = py_asgi:websocket(edge_apps, ws_ignores_disconnect, ws_scope(<<"/">>), #{}),
        {event, {accept, _, _}} = ws_next(WS2),
        Self ! accepted,
        receive after infinity -> ok end
    end),
    receive accepted -> ok after 20000 -> ct:fail(not_accepted) end,
    exit(Owner, kill),
    py_test_util:wait_for_value(fun events/0, [<<"accepted">>, <<"cancelled">>], 20000),
    py_test_util:wait_for_value(fun mailboxes/0, 0, 20000).

%% @doc Errors: the app cannot be imported, an http scope, the runner option, an app raising
%% before it accepts (the error comes as the session's end).
-spec asgi_websocket_errors(ct_suite:ct_config()) -> term().
asgi_websocket_errors(_Config) ->
    {error, {'ModuleNotFoundError', _}} =
        py_asgi:websocket(no_such_app_module, app, ws_scope(<<"/">>), #{}),
    HttpError = <<"an ASGI http scope is served by py_asgi:run/5 or stream/6, not here">>,
    {error, {'ValueError', HttpError}} =
        py_asgi:websocket(fastapi_app, app, #{type => <<"http">>}, #{}),
    {error, {'ValueError', _}} =
        py_asgi:websocket(fastapi_app, app, ws_scope(<<"/">>), #{window => 0}),
    {error, {unsupported, runner}} =
        py_asgi:websocket(fastapi_app, app, ws_scope(<<"/">>), #{runner => <<"my_runner">>}),
    {'EXIT', {badarg, _}} = (catch py_asgi:websocket(42, app, ws_scope(<<"/">>), #{})),
    {ok, WS} = py_asgi:websocket(edge_apps, ws_raise_before_accept, ws_scope(<<"/">>), #{}),
    {done, {error, {'KeyError', <<"'before accept'">>}}} = ws_next(WS),
    {ok, WS2} = py_asgi:websocket(edge_apps, ws_raise_after_accept, ws_scope(<<"/">>), #{}),
    {event, {accept, undefined, []}} = ws_next(WS2),
    ok = py_asgi:websocket_deliver(WS2, {text, <<"go">>}),
    {done, {error, {'LookupError', <<"after accept">>}}} = ws_next(WS2),
    py_test_util:wait_for_value(fun mailboxes/0, 0, 20000).

%% @doc Client messages the app does not receive pile up to 64: then `pause' (the owner stops
%% reading its client); once the app has received down to 16, `resume'; none is lost.
-spec asgi_websocket_pause_resume(ct_suite:ct_config()) -> term().
asgi_websocket_pause_resume(_Config) ->
    {ok, WS} = py_asgi:websocket(edge_apps, ws_lazy, ws_scope(<<"/">>), #{window => 1000}),
    {event, {accept, undefined, []}} = ws_next(WS),
    [ok = py_asgi:websocket_deliver(WS, {text, integer_to_binary(I)}) || I <- lists:seq(1, 70)],
    {event, pause} = ws_next(WS),
    {ok, _} = py:call(edge_apps, release, []),
    Events = [ws_next(WS) || _ <- lists:seq(1, 71)],
    [{event, resume}] = [E || {event, resume} = E <- Events],
    Expected = [{event, {text, <<(integer_to_binary(I))/binary, " ",
                                 (integer_to_binary(I))/binary>>}} || I <- lists:seq(1, 70)],
    Expected = Events -- [{event, resume}],
    ok = py_asgi:websocket_disconnect(WS, 1000, <<>>),
    {done, ok} = ws_next(WS),
    [<<"go">>, {<<"received">>, 70}] = events().
