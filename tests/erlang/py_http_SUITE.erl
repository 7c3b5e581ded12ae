%% @doc py_http, the HTTP/1.1 server: the FastAPI and Flask apps of tests/web compared with
%% uvicorn and gunicorn through httpx, and what a server must survive (malformed requests,
%% limits, disconnects, timeouts, a graceful stop).
-module(py_http_SUITE).

-include_lib("common_test/include/ct.hrl").

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).
%% A logger handler that forwards events to the test (malformed_request_line).
-export([log/2]).

-export([
    same_as_uvicorn/1,
    same_as_gunicorn/1,
    comparison_sees_differences/1,
    keep_alive/1,
    header_names_lowercase/1,
    keep_alive_addresses_and_date/1,
    response_before_the_app_returns/1,
    freeze_heap/1,
    chunked_request_body/1,
    chunked_request_body_keep_alive/1,
    chunked_response/1,
    head_and_http10/1,
    wsgi_environ_from_request/1,
    malformed_request_line/1,
    header_line_too_long/1,
    expect_100_continue/1,
    too_many_headers/1,
    body_too_large/1,
    ambiguous_body_length/1,
    app_error_is_500/1,
    bad_response_headers_are_500/1,
    control_characters_in_request_headers_are_400/1,
    app_timeout_is_500/1,
    client_disconnect_mid_stream/1,
    client_disconnect_mid_body/1,
    idle_timeout_closes/1,
    graceful_stop_drains/1,
    websockets_same_as_uvicorn/1,
    websocket_frames/1,
    websocket_bad_handshake/1,
    websocket_protocol_errors/1,
    websocket_too_big/1,
    websocket_client_vanishes/1,
    websocket_app_errors/1,
    websocket_never_accepted/1,
    websocket_app_ignoring_disconnect_is_cancelled/1,
    websocket_flood_then_client_leaves/1,
    websocket_slow_reader_app/1,
    websocket_keepalive/1,
    websocket_server_stop/1,
    websocket_deflate_negotiation/1,
    websocket_deflate/1,
    websocket_deflate_errors/1,
    websocket_denial_response/1,
    started_from_app_config/1,
    app_started_before_listening/1,
    bad_options/1
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
            Web = filename:join([Root, "tests", "web"]),
            ok = py:add_python_path(list_to_binary(Web)),
            {ok, Python} = py:eval(<<"__import__('sys').executable">>),
            {ok, Asgi} = py_http:start(#{app => <<"fastapi_app:app">>, port => 0}),
            {ok, Wsgi} = py_http:start(#{app => <<"flask_app:app">>, interface => wsgi,
                                         port => 0}),
            [{web, Web}, {python, binary_to_list(Python)}, {asgi, Asgi}, {wsgi, Wsgi} | Config]
    end.

-spec end_per_suite(ct_suite:ct_config()) -> ok.
end_per_suite(_Config) ->
    %% The servers stop with the application.
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

-spec url(pid()) -> binary().
url(Server) ->
    <<"http://127.0.0.1:", (integer_to_binary(py_http:port(Server)))/binary>>.

-spec connect(pid()) -> gen_tcp:socket().
connect(Server) ->
    {ok, S} = gen_tcp:connect({127, 0, 0, 1}, py_http:port(Server), [binary, {active, false}]),
    S.

%% Sends Request on a new connection and reads until the server closes it.
-spec exchange(pid(), iodata()) -> binary().
exchange(Server, Request) ->
    S = connect(Server),
    ok = gen_tcp:send(S, Request),
    read_all(S, <<>>).

-spec read_all(gen_tcp:socket(), binary()) -> binary().
read_all(S, Acc) ->
    case gen_tcp:recv(S, 0, 10000) of
        {ok, Data} -> read_all(S, <<Acc/binary, Data/binary>>);
        {error, closed} -> Acc
    end.

%% Reads one response with a Content-Length from a kept-alive connection.
-spec read_response(gen_tcp:socket()) -> {binary(), binary()}.
read_response(S) ->
    read_response(S, <<>>).

-spec read_response(gen_tcp:socket(), binary()) -> {binary(), binary()}.
read_response(S, Acc) ->
    case binary:split(Acc, <<"\r\n\r\n">>) of
        [Head, Rest] ->
            {match, [Len]} = re:run(Head, <<"(?i)content-length: (\\d+)">>,
                                    [{capture, all_but_first, binary}]),
            N = binary_to_integer(Len),
            Body = read_n(S, Rest, N),
            {Head, Body};
        [_] ->
            {ok, Data} = gen_tcp:recv(S, 0, 10000),
            read_response(S, <<Acc/binary, Data/binary>>)
    end.

%% The bodies of the next N responses (each with a Content-Length) on a kept-alive
%% connection, however they arrive (several in one segment).
-spec read_bodies(gen_tcp:socket(), non_neg_integer(), binary()) -> [binary()].
read_bodies(_S, 0, <<>>) ->
    [];
read_bodies(S, N, Acc) ->
    case binary:split(Acc, <<"\r\n\r\n">>) of
        [Head, Rest] ->
            {match, [Len]} = re:run(Head, <<"(?i)content-length: (\\d+)">>,
                                    [{capture, all_but_first, binary}]),
            Size = binary_to_integer(Len),
            case Rest of
                <<Body:Size/binary, More/binary>> -> [Body | read_bodies(S, N - 1, More)];
                _ -> read_bodies(S, N, <<Acc/binary, (recv(S))/binary>>)
            end;
        [_] ->
            read_bodies(S, N, <<Acc/binary, (recv(S))/binary>>)
    end.

-spec recv(gen_tcp:socket()) -> binary().
recv(S) ->
    {ok, Data} = gen_tcp:recv(S, 0, 10000),
    Data.

-spec read_n(gen_tcp:socket(), binary(), non_neg_integer()) -> binary().
read_n(_S, Acc, N) when byte_size(Acc) >= N ->
    binary:part(Acc, 0, N);
read_n(S, Acc, N) ->
    {ok, Data} = gen_tcp:recv(S, 0, 10000),
    read_n(S, <<Acc/binary, Data/binary>>, N).

-spec status(binary()) -> binary().
status(Response) ->
    [Line | _] = binary:split(Response, <<"\r\n">>),
    Line.

%% Starts `python -m Module Args...' in the tests/web directory and waits until it accepts
%% connections on Port.
-spec peer(ct_suite:ct_config(), string(), [string()], inet:port_number()) -> port().
peer(Config, Module, Args, Port) ->
    P = open_port({spawn_executable, ?config(python, Config)},
                  [{args, ["-m", Module | Args]}, {cd, ?config(web, Config)}, exit_status,
                   stderr_to_stdout, binary]),
    py_test_util:wait_until(fun() ->
        case gen_tcp:connect({127, 0, 0, 1}, Port, [], 200) of
            {ok, S} -> gen_tcp:close(S), true;
            {error, _} -> false
        end
    end, 30000),
    P.

-spec stop_peer(port()) -> ok.
stop_peer(P) ->
    {os_pid, OsPid} = erlang:port_info(P, os_pid),
    _ = os:cmd("kill " ++ integer_to_list(OsPid)),
    stop_peer(P, OsPid, []).

-spec stop_peer(port(), integer(), [binary()]) -> ok.
stop_peer(P, OsPid, Output) ->
    receive
        {P, {data, Data}} ->
            stop_peer(P, OsPid, [Data | Output]);
        {P, {exit_status, _}} ->
            ct:log("~ts", [lists:reverse(Output)])
    after 15000 ->
        _ = os:cmd("kill -9 " ++ integer_to_list(OsPid)),
        ok
    end.

-spec free_port() -> inet:port_number().
free_port() ->
    {ok, L} = gen_tcp:listen(0, [{ip, {127, 0, 0, 1}}]),
    {ok, Port} = inet:port(L),
    ok = gen_tcp:close(L),
    Port.

-spec compare(binary(), binary(), binary()) -> {integer(), [binary()]}.
compare(App, Ours, Theirs) ->
    {ok, Result} = py:call(compare, compare, [App, Ours, Theirs], #{}, 120000),
    Result.

-spec events() -> list().
events() ->
    {ok, Events} = py:call(edge_apps, events, []),
    Events.

%%% Cases

%% @doc Every request of the FastAPI comparison list gets the same status, headers and body
%% from py_http as from uvicorn.
-spec same_as_uvicorn(ct_suite:ct_config()) -> term().
same_as_uvicorn(Config) ->
    Port = free_port(),
    Peer = peer(Config, "uvicorn", ["fastapi_app:app", "--port", integer_to_list(Port),
                                    "--log-level", "warning"], Port),
    try
        Theirs = <<"http://127.0.0.1:", (integer_to_binary(Port))/binary>>,
        {N, []} = compare(<<"fastapi">>, url(?config(asgi, Config)), Theirs),
        true = N >= 20
    after
        stop_peer(Peer)
    end.

%% @doc Every request of the Flask comparison list gets the same status, headers and body from
%% py_http as from gunicorn.
-spec same_as_gunicorn(ct_suite:ct_config()) -> term().
same_as_gunicorn(Config) ->
    Port = free_port(),
    Peer = peer(Config, "gunicorn", ["-w", "1", "-b", "127.0.0.1:" ++ integer_to_list(Port),
                                     "flask_app:app"], Port),
    try
        Theirs = <<"http://127.0.0.1:", (integer_to_binary(Port))/binary>>,
        {N, []} = compare(<<"flask">>, url(?config(wsgi, Config)), Theirs),
        true = N >= 18
    after
        stop_peer(Peer)
    end.

%% @doc The comparison does see differences (the FastAPI app against the Flask app).
-spec comparison_sees_differences(ct_suite:ct_config()) -> term().
comparison_sees_differences(Config) ->
    {_, Differences} = compare(<<"flask">>, url(?config(asgi, Config)), url(?config(wsgi, Config))),
    true = length(Differences) > 5.

%% @doc Requests follow each other on one connection.
-spec keep_alive(ct_suite:ct_config()) -> term().
keep_alive(Config) ->
    S = connect(?config(asgi, Config)),
    Get = <<"GET / HTTP/1.1\r\nhost: x\r\n\r\n">>,
    [begin
         ok = gen_tcp:send(S, Get),
         {Head, <<"{\"message\":\"hello\"}">>} = read_response(S),
         <<"HTTP/1.1 200 OK">> = status(Head)
     end || _ <- lists:seq(1, 3)],
    %% Two pipelined requests, then three in one write with a body between them, then a
    %% request in pieces: each gets its response, in order.
    Hello = <<"{\"message\":\"hello\"}">>,
    ok = gen_tcp:send(S, [Get, Get]),
    [Hello, Hello] = read_bodies(S, 2, <<>>),
    Put = <<"PUT /echo HTTP/1.1\r\ncontent-type: application/json\r\n"
            "content-length: 7\r\n\r\n{\"a\":1}">>,
    ok = gen_tcp:send(S, [Get, Put, Get]),
    [Hello, <<"{\"a\":1}">>, Hello] = read_bodies(S, 3, <<>>),
    [begin ok = gen_tcp:send(S, Piece), timer:sleep(20) end
     || Piece <- [<<"GE">>, <<"T / HTTP/1.1\r">>, <<"\nhost: x\r\nx-a: 1\r\n">>, <<"\r\n">>]],
    {_, <<"{\"message\":\"hello\"}">>} = read_response(S),
    ok = gen_tcp:close(S).

%% @doc Header names reach the app in lower case, known ones (`Host') and others alike, in the
%% order sent; a name with a byte outside the token characters gets 400.
-spec header_names_lowercase(ct_suite:ct_config()) -> term().
header_names_lowercase(_Config) ->
    with_server(#{app => {edge_apps, scope_types}}, fun(S) ->
        Body = exchange(S, <<"GET / HTTP/1.1\r\nHost: x\r\nX-Mixed-Case: A\r\n"
                                          "CONTENT-TYPE: text/plain\r\nx-zz_09~!: b\r\n"
                                          "connection: close\r\n\r\n">>),
        {_, _} = binary:match(Body, <<"[(b'host', b'x'), (b'x-mixed-case', b'A'), "
                                          "(b'content-type', b'text/plain'), "
                                          "(b'x-zz_09~!', b'b'), (b'connection', b'close')]">>),
        <<"HTTP/1.1 400 ", _/binary>> =
            exchange(S, <<"GET / HTTP/1.1\r\nX-", 16#c3, 16#89, ": 1\r\n\r\n">>),
        %% Every name the parser knows (it gives those as atoms), sent in upper case, reaches
        %% the app lowered. Content-Length and Transfer-Encoding frame a body: left out.
        Known = [<<"Cache-Control">>, <<"Connection">>, <<"Date">>, <<"Pragma">>,
                 <<"Upgrade">>, <<"Via">>, <<"Accept">>, <<"Accept-Charset">>,
                 <<"Accept-Encoding">>, <<"Accept-Language">>, <<"Authorization">>, <<"From">>,
                 <<"Host">>, <<"If-Modified-Since">>, <<"If-Match">>, <<"If-None-Match">>,
                 <<"If-Range">>, <<"If-Unmodified-Since">>, <<"Max-Forwards">>,
                 <<"Proxy-Authorization">>, <<"Range">>, <<"Referer">>, <<"User-Agent">>,
                 <<"Age">>, <<"Location">>, <<"Proxy-Authenticate">>, <<"Public">>,
                 <<"Retry-After">>, <<"Server">>, <<"Vary">>, <<"Warning">>,
                 <<"Www-Authenticate">>, <<"Allow">>, <<"Content-Base">>,
                 <<"Content-Encoding">>, <<"Content-Language">>, <<"Content-Location">>,
                 <<"Content-Md5">>, <<"Content-Range">>, <<"Content-Type">>, <<"Etag">>,
                 <<"Expires">>, <<"Last-Modified">>, <<"Accept-Ranges">>, <<"Set-Cookie">>,
                 <<"Set-Cookie2">>, <<"X-Forwarded-For">>, <<"Cookie">>, <<"Keep-Alive">>,
                 <<"Proxy-Connection">>],
        Lines = [[string:uppercase(N), <<": ">>, <<"v">>, <<"\r\n">>] || N <- Known,
                 N =/= <<"Connection">>],
        Seen = exchange(S, [<<"GET / HTTP/1.1\r\n">>, Lines, <<"connection: close\r\n\r\n">>]),
        [{_, _} = binary:match(Seen, <<"(b'", (string:lowercase(N))/binary, "', b'v')">>)
         || N <- Known, N =/= <<"Connection">>]
    end).

%% @doc On a kept-alive connection each request gets the connection's client and server
%% addresses (worked out once per connection) and a well-formed `date' header (made once a
%% second).
-spec keep_alive_addresses_and_date(ct_suite:ct_config()) -> term().
keep_alive_addresses_and_date(_Config) ->
    with_server(#{app => {edge_apps, addresses}}, fun(S) ->
        C = connect(S),
        {ok, {_, ClientPort}} = inet:sockname(C),
        Expected = iolist_to_binary(io_lib:format("(('127.0.0.1', ~b), ('127.0.0.1', ~b))",
                                                  [ClientPort, py_http:port(S)])),
        Get = <<"GET / HTTP/1.1\r\nhost: x\r\n\r\n">>,
        [begin
             ok = gen_tcp:send(C, Get),
             {Head, Expected} = read_response(C),
             <<"HTTP/1.1 200 OK">> = status(Head),
             {match, _} = re:run(Head, <<"\r\ndate: (Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{2} "
                                         "[A-Z][a-z]{2} [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} "
                                         "GMT\r\n">>)
         end || _ <- lists:seq(1, 3)],
        ok = gen_tcp:close(C)
    end).

%% @doc A response the app completed reaches the client while the app runs on (work after
%% the answer, as a background task's); the connection serves its next request once the app
%% returned.
-spec response_before_the_app_returns(ct_suite:ct_config()) -> term().
response_before_the_app_returns(_Config) ->
    with_server(#{app => {edge_apps, linger}}, fun(S) ->
        C = connect(S),
        Get = <<"GET / HTTP/1.1\r\nhost: x\r\n\r\n">>,
        ok = gen_tcp:send(C, Get),
        {Head, <<"early">>} = read_response(C),
        <<"HTTP/1.1 200 OK">> = status(Head),
        [<<"answered">>] = events(),
        {ok, _} = py:call(edge_apps, release_linger, []),
        ok = gen_tcp:send(C, Get),
        {_, <<"early">>} = read_response(C),
        [<<"answered">>, <<"returned">>, <<"answered">> | _] = events(),
        ok = gen_tcp:close(C)
    end).

%% @doc The server freezes Python's heap once the app is imported (`freeze_heap', default
%% `true'), and leaves it alone with `freeze_heap => false'.
-spec freeze_heap(ct_suite:ct_config()) -> term().
freeze_heap(_Config) ->
    Count = <<"__import__('gc').get_freeze_count()">>,
    Unfreeze = <<"__import__('gc').unfreeze()">>,
    {ok, _} = py:eval(Unfreeze),
    {ok, 0} = py:eval(Count),
    with_server(#{app => {edge_apps, addresses}, freeze_heap => false}, fun(_) ->
        {ok, 0} = py:eval(Count)
    end),
    with_server(#{app => {edge_apps, addresses}}, fun(_) ->
        {ok, N} = py:eval(Count),
        true = N > 0
    end).

%% @doc A chunked request body reaches the app whole (ASGI, in chunks; WSGI, at once).
-spec chunked_request_body(ct_suite:ct_config()) -> term().
chunked_request_body(Config) ->
    Req = <<"PUT /echo HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n"
            "connection: close\r\n\r\n"
            "5\r\nhello\r\n1;ext=1\r\n \r\n5\r\nworld\r\n0\r\nx-trailer: 1\r\n\r\n">>,
    <<"HTTP/1.1 200 OK", _/binary>> = R1 = exchange(?config(asgi, Config), Req),
    [_, <<"hello world">>] = binary:split(R1, <<"\r\n\r\n">>),
    R2 = exchange(?config(wsgi, Config), Req),
    [_, <<"hello world">>] = binary:split(R2, <<"\r\n\r\n">>).

%% @doc After a chunked request body (read line by line) the connection goes on in raw mode:
%% the next requests on it, pipelined with a body, are served in order.
-spec chunked_request_body_keep_alive(ct_suite:ct_config()) -> term().
chunked_request_body_keep_alive(_Config) ->
    with_server(#{app => {fastapi_app, app}}, fun(Server) ->
        S = connect(Server),
        ok = gen_tcp:send(S, <<"PUT /echo HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n"
                               "\r\n5\r\nhello\r\n0\r\nx-trailer: 1\r\n\r\n">>),
        {_, <<"hello">>} = read_response(S),
        %% The connection's socket is raw again before it waits for the next request.
        [Conn] = [Pid || {process, Pid} <- element(2, process_info(Server, monitors))],
        [Port] = [P || P <- element(2, process_info(Conn, links)), is_port(P)],
        %% (`raw' reads back as 0.)
        {ok, [{packet, 0}]} = inet:getopts(Port, [packet]),
        Put = <<"PUT /echo HTTP/1.1\r\ncontent-type: application/json\r\n"
                "content-length: 7\r\n\r\n{\"a\":1}">>,
        ok = gen_tcp:send(S, [Put, <<"GET / HTTP/1.1\r\nhost: x\r\n\r\n">>]),
        [<<"{\"a\":1}">>, <<"{\"message\":\"hello\"}">>] = read_bodies(S, 2, <<>>),
        ok = gen_tcp:close(S)
    end).

%% @doc A response without a length goes out chunked.
-spec chunked_response(ct_suite:ct_config()) -> term().
chunked_response(Config) ->
    R = exchange(?config(asgi, Config),
                 <<"GET /stream?n=2 HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n">>),
    [Head, Body] = binary:split(R, <<"\r\n\r\n">>),
    {match, _} = re:run(Head, <<"transfer-encoding: chunked">>),
    <<"8\r\nchunk 0\n\r\n8\r\nchunk 1\n\r\n0\r\n\r\n">> = Body.

%% @doc HEAD has no body; an HTTP/1.0 request gets its answer and the connection closes.
-spec head_and_http10(ct_suite:ct_config()) -> term().
head_and_http10(Config) ->
    R = exchange(?config(asgi, Config),
                 <<"HEAD / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n">>),
    [_, <<>>] = binary:split(R, <<"\r\n\r\n">>),
    R10 = exchange(?config(asgi, Config), <<"GET / HTTP/1.0\r\n\r\n">>),
    <<"HTTP/1.0 200 OK", _/binary>> = R10,
    [_, <<"{\"message\":\"hello\"}">>] = binary:split(R10, <<"\r\n\r\n">>).

%% @doc The WSGI environ carries the request's headers, peer and body.
-spec wsgi_environ_from_request(ct_suite:ct_config()) -> term().
wsgi_environ_from_request(_Config) ->
    {ok, W} = py_http:start(#{app => {edge_apps, wsgi_environ}, interface => wsgi, port => 0}),
    try
        R = exchange(W, <<"POST /p%20q?a=1 HTTP/1.1\r\nhost: h\r\nx-multi: 1\r\nx-multi: 2\r\n"
                          "content-type: text/plain\r\ncontent-length: 2\r\n"
                          "connection: close\r\n\r\nhi">>),
        [_, Body] = binary:split(R, <<"\r\n\r\n">>),
        [{_, _} = binary:match(Body, Line) || Line <- [<<"\nPATH_INFO: str '/p q'\n">>,
                                                       <<"\nQUERY_STRING: str 'a=1'\n">>,
                                                       <<"\nHTTP_X_MULTI: str '1,2'\n">>,
                                                       <<"\nCONTENT_TYPE: str 'text/plain'\n">>,
                                                       <<"\nREMOTE_ADDR: str '127.0.0.1'\n">>,
                                                       <<"\ninput: b'hi'">>]]
    after
        py_http:stop(W)
    end.

-spec log(logger:log_event(), logger:handler_config()) -> ok.
log(#{msg := {Format, Args}, meta := #{domain := [erlang_python, http]}},
    #{config := #{pid := Pid}}) ->
    Pid ! {logged, iolist_to_binary(io_lib:format(Format, Args))},
    ok;
log(_Event, _Config) ->
    ok.

%% @doc A malformed request line gets 400, a log entry, and the connection closes.
-spec malformed_request_line(ct_suite:ct_config()) -> term().
malformed_request_line(Config) ->
    ok = logger:add_handler(py_http_SUITE, ?MODULE, #{config => #{pid => self()}}),
    try
        <<"HTTP/1.1 400 Bad Request", _/binary>> =
            exchange(?config(asgi, Config), <<"NOT A REQUEST\r\n\r\n">>),
        receive
            {logged, <<"py_http: 400 Bad Request for 127.0.0.1:", _/binary>>} -> ok
        after 10000 ->
            ct:fail(no_log_entry)
        end
    after
        logger:remove_handler(py_http_SUITE)
    end,
    <<"HTTP/1.1 400 Bad Request", _/binary>> =
        exchange(?config(asgi, Config), <<"GET / HTTP/1.1\r\nbad header line\r\n\r\n">>).

%% @doc A request target over max_header_line gets 414, a header line 431; a line past the
%% parser's cap closes the connection (the BEAM's HTTP parser drops the socket); the server
%% goes on.
-spec header_line_too_long(ct_suite:ct_config()) -> term().
header_line_too_long(Config) ->
    Long = binary:copy(<<"a">>, 10000),
    <<"HTTP/1.1 431 ", _/binary>> =
        exchange(?config(asgi, Config),
                 <<"GET / HTTP/1.1\r\nx-long: ", Long/binary, "\r\n\r\n">>),
    <<"HTTP/1.1 414 ", _/binary>> =
        exchange(?config(asgi, Config), <<"GET /", Long/binary, " HTTP/1.1\r\n\r\n">>),
    <<"HTTP/1.1 414 ", _/binary>> =
        exchange(?config(wsgi, Config),
                 <<"GET http://example.com/", Long/binary, " HTTP/1.1\r\n\r\n">>),
    %% Exactly at the limit is fine: 8192 bytes with the name, ": " and the value.
    AtLimit = binary:copy(<<"b">>, 8192 - byte_size(<<"x-long: ">>)),
    <<"HTTP/1.1 200 OK", _/binary>> =
        exchange(?config(asgi, Config), <<"GET / HTTP/1.1\r\nx-long: ", AtLimit/binary,
                                          "\r\nconnection: close\r\n\r\n">>),
    %% Past the parser's own cap (4 x max_header_line, at least 64 KiB) the connection closes.
    Huge = binary:copy(<<"a">>, 70000),
    <<>> = exchange(?config(asgi, Config),
                    <<"GET / HTTP/1.1\r\nx-long: ", Huge/binary, "\r\n\r\n">>),
    <<>> = exchange(?config(asgi, Config), <<"GET /", Huge/binary, " HTTP/1.1\r\n\r\n">>),
    <<"HTTP/1.1 200 OK", _/binary>> =
        exchange(?config(asgi, Config), <<"GET / HTTP/1.1\r\nconnection: close\r\n\r\n">>).

%% @doc `Expect: 100-continue': the client gets `100 Continue' before it sends the body (ASGI
%% and WSGI), a body over the limit gets 413 without it, another expectation 417, and an
%% HTTP/1.0 client no interim response.
-spec expect_100_continue(ct_suite:ct_config()) -> term().
expect_100_continue(Config) ->
    {ok, A} = py_http:start(#{app => {edge_apps, echo_chunks}, port => 0,
                              max_body_size => 100}),
    {ok, W} = py_http:start(#{app => {edge_apps, wsgi_environ}, interface => wsgi, port => 0}),
    try
        Continue = <<"HTTP/1.1 100 Continue\r\n\r\n">>,
        lists:foreach(
          fun(Server) ->
                  S = connect(Server),
                  ok = gen_tcp:send(S, <<"POST / HTTP/1.1\r\nexpect: 100-Continue\r\n"
                                         "content-length: 5\r\nconnection: close\r\n\r\n">>),
                  %% Nothing else comes before the body is sent.
                  {ok, Continue} = gen_tcp:recv(S, byte_size(Continue), 10000),
                  ok = gen_tcp:send(S, <<"hello">>),
                  <<"HTTP/1.1 200 OK", _/binary>> = Response = read_all(S, <<>>),
                  {_, _} = binary:match(Response, <<"hello">>)
          end, [A, W]),
        <<"HTTP/1.1 413 ", _/binary>> =
            exchange(A, <<"POST / HTTP/1.1\r\nexpect: 100-continue\r\n"
                          "content-length: 1000\r\n\r\n">>),
        <<"HTTP/1.1 417 ", _/binary>> =
            exchange(A, <<"POST / HTTP/1.1\r\nexpect: 200-ok\r\n"
                          "content-length: 5\r\n\r\nhello">>),
        %% HTTP/1.0 has no 100 Continue: the body is read as it comes.
        <<"HTTP/1.0 200 OK", _/binary>> =
            exchange(A, <<"POST / HTTP/1.0\r\nexpect: 100-continue\r\n"
                          "content-length: 5\r\n\r\nhello">>),
        %% No body, nothing to continue.
        <<"HTTP/1.1 200 OK", _/binary>> =
            exchange(W, <<"GET / HTTP/1.1\r\nexpect: 100-continue\r\n"
                          "connection: close\r\n\r\n">>),
        _ = Config
    after
        ok = py_http:stop(A),
        ok = py_http:stop(W)
    end.

%% @doc More than max_headers headers gets 431.
-spec too_many_headers(ct_suite:ct_config()) -> term().
too_many_headers(Config) ->
    Headers = [[<<"x-h: 1\r\n">>] || _ <- lists:seq(1, 150)],
    <<"HTTP/1.1 431 ", _/binary>> =
        exchange(?config(asgi, Config), [<<"GET / HTTP/1.1\r\n">>, Headers, <<"\r\n">>]).

%% @doc A body over max_body_size gets 413, declared or chunked.
-spec body_too_large(ct_suite:ct_config()) -> term().
body_too_large(_Config) ->
    {ok, S} = py_http:start(#{app => <<"fastapi_app:app">>, port => 0, max_body_size => 1000}),
    try
        <<"HTTP/1.1 413 ", _/binary>> =
            exchange(S, <<"PUT /echo HTTP/1.1\r\ncontent-length: 5000\r\n\r\n">>),
        Chunk = binary:copy(<<"z">>, 600),
        <<"HTTP/1.1 413 ", _/binary>> =
            exchange(S, [<<"PUT /echo HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n">>,
                         <<"258\r\n">>, Chunk, <<"\r\n258\r\n">>, Chunk, <<"\r\n0\r\n\r\n">>]),
        {ok, W} = py_http:start(#{app => <<"flask_app:app">>, interface => wsgi, port => 0,
                                  max_body_size => 1000}),
        <<"HTTP/1.1 413 ", _/binary>> =
            exchange(W, [<<"PUT /echo HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n">>,
                         <<"258\r\n">>, Chunk, <<"\r\n258\r\n">>, Chunk, <<"\r\n0\r\n\r\n">>]),
        py_http:stop(W)
    after
        py_http:stop(S)
    end.

%% @doc Content-Length with Transfer-Encoding, or two lengths, get 400; an unknown coding 501.
%% A length is decimal digits only (RFC 9112: a sign is a smuggling vector), and framing
%% headers holding bytes that are not UTF-8 get an answer, not a dropped connection; so does
%% a bad chunk size, after which the server still serves.
-spec ambiguous_body_length(ct_suite:ct_config()) -> term().
ambiguous_body_length(Config) ->
    S = ?config(asgi, Config),
    [<<"HTTP/1.1 400 ", _/binary>> =
         exchange(S, <<"PUT /echo HTTP/1.1\r\ncontent-length: ", L/binary, "\r\n\r\nhello">>)
     || L <- [<<"+5">>, <<"-0">>, <<"-1">>, <<"5 5">>, <<"0x5">>, <<"5\xff">>, <<"\xff">>, <<>>]],
    [begin
         C = connect(S),
         ok = gen_tcp:send(C, <<"PUT /echo HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n",
                                Size/binary, "\r\nhello\r\n0\r\n\r\n">>),
         %% The app may have started on the body: no status to rely on, but the connection
         %% ends and the next request is served.
         _ = read_all(C, <<>>)
     end || Size <- [<<"+5">>, <<"-5">>, <<"\xff">>, <<"5x">>]],
    [{Status, Status} = {Status, binary:part(exchange(S, [<<"PUT /echo HTTP/1.1\r\n">>, Head]), 9, 3)}
     || {Status, Head} <-
            [{<<"200">>, <<"content-length:  5\t\r\nconnection: close\r\n\r\nhello">>},
             {<<"501">>, <<"transfer-encoding: \xff\r\n\r\n">>},
             {<<"417">>, <<"expect: \xff\r\ncontent-length: 1\r\n\r\n">>},
             {<<"200">>, <<"connection: \xff, close\r\ncontent-length: 1\r\n\r\nx">>},
             {<<"200">>, <<"transfer-encoding: chunked\r\nconnection: close\r\n\r\n"
                           "5 ; ext=1\r\nhello\r\n0\r\n\r\n">>},
             {<<"400">>, <<"content-length: 1\r\ntransfer-encoding: chunked\r\n\r\n">>},
             {<<"400">>, <<"content-length: 1\r\ncontent-length: 2\r\n\r\n">>},
             {<<"501">>, <<"transfer-encoding: gzip\r\n\r\n">>}]],
    ok.

%% @doc An app failing before its response gets 500 and a closed connection; after it started,
%% the connection closes.
-spec app_error_is_500(ct_suite:ct_config()) -> term().
app_error_is_500(_Config) ->
    {ok, S} = py_http:start(#{app => {edge_apps, raise_before_start}, port => 0}),
    {ok, S2} = py_http:start(#{app => {edge_apps, raise_after_start}, port => 0}),
    try
        <<"HTTP/1.1 500 Internal Server Error", _/binary>> =
            exchange(S, <<"GET / HTTP/1.1\r\n\r\n">>),
        R = exchange(S2, <<"GET / HTTP/1.1\r\n\r\n">>),
        <<"HTTP/1.1 200 OK", _/binary>> = R,
        %% The chunked body is cut short: no last chunk.
        nomatch = binary:match(R, <<"0\r\n\r\n">>)
    after
        py_http:stop(S),
        py_http:stop(S2)
    end.

%% @doc A response header whose value holds CR, LF or another control character, or whose
%% name is not an HTTP token, or a WSGI status whose reason holds one, never reaches the wire:
%% the app's send or start_response raises, and the client gets 500 (as from uvicorn and
%% gunicorn). An app that echoes its input into a header cannot split the response.
-spec bad_response_headers_are_500(ct_suite:ct_config()) -> term().
bad_response_headers_are_500(_Config) ->
    {ok, A} = py_http:start(#{app => {edge_apps, echo_header}, port => 0}),
    {ok, W} = py_http:start(#{app => {edge_apps, wsgi_echo_header}, interface => wsgi,
                              port => 0}),
    try
        [begin
             Ok = exchange(S, <<"GET /?fine%09value HTTP/1.1\r\nconnection: close\r\n\r\n">>),
             <<"HTTP/1.1 200 OK", _/binary>> = Ok,
             {_, _} = binary:match(Ok, <<"x-echo: fine\tvalue\r\n">>),
             [begin
                  R = exchange(S, <<"GET /?", Query/binary, " HTTP/1.1\r\n\r\n">>),
                  <<"HTTP/1.1 500 Internal Server Error", _/binary>> = R,
                  nomatch = binary:match(R, <<"injected">>)
              end
              || Query <- [<<"a%0d%0aset-cookie:%20injected=1">>, <<"a%0ainjected:%201">>,
                           <<"a%00injected">>, <<"name=x-injected:%20y">>,
                           <<"name=x%0d%0ainjected:%201">>, <<"name=">>,
                           <<"name=caf%e9-injected">>]]
         end || S <- [A, W]],
        <<"HTTP/1.1 500 Internal Server Error", _/binary>> =
            exchange(W, <<"GET /?status=OK%0d%0ainjected:%201 HTTP/1.1\r\n\r\n">>)
    after
        py_http:stop(A),
        py_http:stop(W)
    end.

%% @doc A request header value holding a NUL, a bare CR, another control character or an
%% obsolete line folding gets 400 before the app sees it; a tab and bytes of 0x80 and over
%% (obs-text) are fine. A request target with a control character gets 400 too.
-spec control_characters_in_request_headers_are_400(ct_suite:ct_config()) -> term().
control_characters_in_request_headers_are_400(Config) ->
    S = ?config(asgi, Config),
    [<<"HTTP/1.1 400 ", _/binary>> =
         exchange(S, <<"GET / HTTP/1.1\r\nx-a: ", V/binary, "\r\n\r\n">>)
     || V <- [<<"a\0b">>, <<"a\rb">>, <<"a\eb">>, <<"a\x7fb">>, <<"1\r\n  folded">>]],
    <<"HTTP/1.1 200 ", _/binary>> =
        exchange(S, <<"GET / HTTP/1.1\r\nx-a: a\tb \x80\xff\r\nconnection: close\r\n\r\n">>),
    %% The same for the request target.
    [<<"HTTP/1.1 400 ", _/binary>> = exchange(S, <<"GET ", T/binary, " HTTP/1.1\r\n\r\n">>)
     || T <- [<<"/a\0b">>, <<"/a\x01b">>, <<"/a\x7f">>, <<"/?q=\0">>,
              <<"http://x/a\x1fb">>]].

%% @doc An app that does not answer within request_timeout gets 500; the app is cancelled.
-spec app_timeout_is_500(ct_suite:ct_config()) -> term().
app_timeout_is_500(_Config) ->
    {ok, S} = py_http:start(#{app => {edge_apps, sleeper}, port => 0, request_timeout => 200}),
    try
        <<"HTTP/1.1 500 ", _/binary>> = exchange(S, <<"GET / HTTP/1.1\r\n\r\n">>),
        py_test_util:wait_for_value(fun events/0, [<<"sleeping">>, <<"cancelled">>], 10000)
    after
        py_http:stop(S)
    end.

%% @doc A client that goes away mid-stream: the app's send raises, the app ends.
-spec client_disconnect_mid_stream(ct_suite:ct_config()) -> term().
client_disconnect_mid_stream(_Config) ->
    {ok, S} = py_http:start(#{app => {edge_apps, endless}, port => 0}),
    try
        C = connect(S),
        ok = gen_tcp:send(C, <<"GET / HTTP/1.1\r\n\r\n">>),
        {ok, _} = gen_tcp:recv(C, 0, 10000),
        ok = gen_tcp:close(C),
        py_test_util:wait_for_value(fun events/0,
                                    [{<<"oserror">>, <<"ClientDisconnected">>}, <<"finally">>],
                                    20000)
    after
        py_http:stop(S)
    end.

%% @doc A client that goes away in the middle of its request body: the connection ends, the
%% server goes on (ASGI: before the first piece and between pieces; WSGI).
-spec client_disconnect_mid_body(ct_suite:ct_config()) -> term().
client_disconnect_mid_body(Config) ->
    Big = binary:copy(<<"b">>, 100000),
    [begin
         C = connect(?config(Server, Config)),
         ok = gen_tcp:send(C, [<<"PUT /echo HTTP/1.1\r\ncontent-length: ">>,
                               integer_to_binary(Declared), <<"\r\n\r\n">>, Sent]),
         ok = gen_tcp:close(C)
     end || Server <- [asgi, wsgi], {Declared, Sent} <- [{10, <<"abc">>}, {200000, Big}]],
    [<<"HTTP/1.1 200 OK", _/binary>> =
         exchange(?config(Server, Config), <<"GET / HTTP/1.1\r\nconnection: close\r\n\r\n">>)
     || Server <- [asgi, wsgi]].

%% @doc A kept-alive connection idle for idle_timeout is closed.
-spec idle_timeout_closes(ct_suite:ct_config()) -> term().
idle_timeout_closes(_Config) ->
    {ok, S} = py_http:start(#{app => <<"fastapi_app:app">>, port => 0, idle_timeout => 100}),
    try
        C = connect(S),
        ok = gen_tcp:send(C, <<"GET / HTTP/1.1\r\n\r\n">>),
        {_, _} = read_response(C),
        {error, closed} = gen_tcp:recv(C, 0, 10000)
    after
        py_http:stop(S)
    end.

%% @doc stop/1 lets a request in flight finish, closes idle connections and refuses new ones.
-spec graceful_stop_drains(ct_suite:ct_config()) -> term().
graceful_stop_drains(_Config) ->
    {ok, S} = py_http:start(#{app => {edge_apps, nap}, port => 0}),
    Port = py_http:port(S),
    Idle = connect(S),
    Busy = connect(S),
    ok = gen_tcp:send(Busy, <<"GET / HTTP/1.1\r\n\r\n">>),
    py_test_util:wait_for_value(fun events/0, [<<"napping">>], 10000),
    ok = py_http:stop(S),
    {_, <<"rested">>} = read_response(Busy),
    {error, closed} = gen_tcp:recv(Idle, 0, 10000),
    {error, econnrefused} = gen_tcp:connect({127, 0, 0, 1}, Port, []).

%% @doc The application variable `http' starts servers with the application.
-spec started_from_app_config(ct_suite:ct_config()) -> term().
started_from_app_config(_Config) ->
    Port = free_port(),
    ok = application:set_env(erlang_python, http,
                             [#{app => <<"fastapi_app:app">>, port => Port}]),
    try
        ok = py_test_util:restart(),
        ok = py:add_python_path(list_to_binary(py_test_util:repo_root() ++ "/tests/web")),
        [{_, Server, worker, _}] = supervisor:which_children(py_http_sup),
        Port = py_http:port(Server),
        <<"HTTP/1.1 200 OK", _/binary>> =
            exchange(Server, <<"GET / HTTP/1.1\r\nconnection: close\r\n\r\n">>)
    after
        ok = application:unset_env(erlang_python, http),
        ok = py_test_util:restart()
    end.

%% @doc The app is imported, and an ASGI app's lifespan started, before the server listens;
%% two servers of one app share its lifespan, which shuts down when the last one stops; an app
%% that cannot be imported or whose startup fails is an error of start/1, leaving no server.
-spec app_started_before_listening(ct_suite:ct_config()) -> term().
app_started_before_listening(_Config) ->
    Children = supervisor:which_children(py_http_sup),
    Request = <<"GET / HTTP/1.1\r\nconnection: close\r\n\r\n">>,
    {ok, [0, 0]} = py:call(edge_apps, held_counts, []),
    {ok, A} = py_http:start(#{app => {edge_apps, held_app}, port => 0}),
    {ok, [1, 0]} = py:call(edge_apps, held_counts, []),
    {ok, B} = py_http:start(#{app => <<"edge_apps:held_app">>, port => 0}),
    {ok, [1, 0]} = py:call(edge_apps, held_counts, []),
    <<"HTTP/1.1 200 OK", _/binary>> = exchange(A, Request),
    ok = py_http:stop(A),
    {ok, [1, 0]} = py:call(edge_apps, held_counts, []),
    <<"HTTP/1.1 200 OK", _/binary>> = exchange(B, Request),
    ok = py_http:stop(B),
    {ok, [1, 1]} = py:call(edge_apps, held_counts, []),
    {error, {app_start_failed, {'ModuleNotFoundError', _}}} =
        py_http:start(#{app => <<"ep_no_such_module:app">>, port => 0}),
    {error, {app_start_failed, {'AttributeError', _}}} =
        py_http:start(#{app => <<"edge_apps:no_such_app">>, interface => wsgi, port => 0}),
    {error, {app_start_failed, {'RuntimeError', <<"ASGI lifespan startup failed: no database",
                                                  _/binary>>}}} =
        py_http:start(#{app => {edge_apps, failing_startup}, port => 0}),
    %% Without lifespan the app is imported only.
    {ok, C} = py_http:start(#{app => {edge_apps, failing_startup}, port => 0,
                              lifespan => false}),
    <<"HTTP/1.1 200 OK", _/binary>> = exchange(C, Request),
    ok = py_http:stop(C),
    Children = supervisor:which_children(py_http_sup).

%% @doc Bad options are refused; a stopped server leaves the supervisor; no server without the
%% application.
-spec bad_options(ct_suite:ct_config()) -> term().
bad_options(_Config) ->
    {error, {bad_app, <<"no_colon">>}} = py_http:start(#{app => <<"no_colon">>}),
    {error, {bad_app, 42}} = py_http:start(#{app => 42}),
    {error, {bad_interface, cgi}} = py_http:start(#{app => <<"m:a">>, interface => cgi}),
    {error, {bad_opts, #{}}} = py_http:start(#{}),
    [{error, {bad_option, Key, Value}} = py_http:start(#{app => <<"m:a">>, Key => Value})
     || {Key, Value} <- [{port, foo}, {port, -1}, {port, 70000}, {ip, "nope"}, {ip, {1, 2, 3}},
                         {acceptors, 0}, {max_header_line, 0}, {max_headers, x},
                         {max_body_size, -1}, {websocket_max_size, 0}, {read_timeout, abc},
                         {idle_timeout, -5}, {request_timeout, 1.5}, {drain_timeout, forever},
                         {lifespan, maybe}, {freeze_heap, yes}, {websocket_compression, 1},
                         {max_body, 10}]],
    {ok, S} = py_http:start(#{app => <<"edge_apps:nap">>, port => 0}),
    {error, eaddrinuse} = py_http:start(#{app => <<"edge_apps:nap">>, port => py_http:port(S)}),
    ok = py_http:stop(S),
    false = lists:keymember(S, 2, supervisor:which_children(py_http_sup)),
    ok = py_test_util:stop(),
    {error, not_started} = py_http:start(#{app => <<"m:a">>, port => 0}),
    ok = py_test_util:start().


%%% Websockets

%% A raw websocket client: the handshake, masked frames out, frames in.
-define(WS_KEY, <<"dGhlIHNhbXBsZSBub25jZQ==">>).

-spec ws_connect(pid(), binary()) -> {gen_tcp:socket(), binary(), binary()}.
ws_connect(Server, Path) ->
    ws_connect(Server, Path, []).

-spec ws_connect(pid(), binary(), iodata()) -> {gen_tcp:socket(), binary(), binary()}.
ws_connect(Server, Path, Extra) ->
    S = connect(Server),
    ok = gen_tcp:send(S, [<<"GET ">>, Path, <<" HTTP/1.1\r\nhost: x\r\nupgrade: websocket\r\n"
                                             "connection: Upgrade\r\nsec-websocket-key: ">>,
                          ?WS_KEY, <<"\r\nsec-websocket-version: 13\r\n">>, Extra, <<"\r\n">>]),
    {Head, Rest} = ws_head(S, <<>>),
    {S, Head, Rest}.

-spec ws_head(gen_tcp:socket(), binary()) -> {binary(), binary()}.
ws_head(S, Acc) ->
    case binary:split(Acc, <<"\r\n\r\n">>) of
        [Head, Rest] ->
            {Head, Rest};
        [_] ->
            {ok, Data} = gen_tcp:recv(S, 0, 10000),
            ws_head(S, <<Acc/binary, Data/binary>>)
    end.

-spec ws_frame(0 | 1, 0..15, binary()) -> binary().
ws_frame(Fin, Op, Payload) ->
    Key = <<1, 2, 3, 4>>,
    Masked = crypto:exor(Payload, binary:part(binary:copy(Key, byte_size(Payload) div 4 + 1), 0,
                                              byte_size(Payload))),
    Len = byte_size(Payload),
    Size = if Len < 126 -> <<1:1, Len:7>>;
              Len < 65536 -> <<1:1, 126:7, Len:16>>;
              true -> <<1:1, 127:7, Len:64>>
           end,
    <<Fin:1, 0:3, Op:4, Size/binary, Key/binary, Masked/binary>>.

%% A frame with RSV1 (a compressed message's first frame) set or not.
-spec ws_frame(0 | 1, 0 | 1, 0..15, binary()) -> binary().
ws_frame(Fin, Rsv1, Op, Payload) ->
    <<Fin:1, _:3, Rest/bitstring>> = ws_frame(Fin, Op, Payload),
    <<Fin:1, Rsv1:1, 0:2, Rest/bitstring>>.

%% `Data' compressed for a message of permessage-deflate by the client's stream `Z' (the
%% sync flush's 00 00 ff ff left out).
-spec ws_deflate(zlib:zstream(), iodata()) -> binary().
ws_deflate(Z, Data) ->
    Flushed = iolist_to_binary(zlib:deflate(Z, Data, sync)),
    binary:part(Flushed, 0, byte_size(Flushed) - 4).

%% The next frame from the server with its RSV1 bit: {Rsv1, Op, Payload, Rest}.
-spec ws_recv_rsv(gen_tcp:socket(), binary()) -> {0 | 1, 0..15, binary(), binary()}.
ws_recv_rsv(S, Buf) ->
    case Buf of
        <<1:1, Rsv1:1, 0:2, Op:4, 0:1, 126:7, Len:16, Payload:Len/binary, Rest/binary>> ->
            {Rsv1, Op, Payload, Rest};
        <<1:1, Rsv1:1, 0:2, Op:4, 0:1, Len:7, Payload:Len/binary, Rest/binary>> when Len < 126 ->
            {Rsv1, Op, Payload, Rest};
        _ ->
            {ok, Data} = gen_tcp:recv(S, 0, 10000),
            ws_recv_rsv(S, <<Buf/binary, Data/binary>>)
    end.

-spec ws_send(gen_tcp:socket(), 0..15, binary()) -> ok.
ws_send(S, Op, Payload) ->
    ok = gen_tcp:send(S, ws_frame(1, Op, Payload)).

%% The next frame from the server: {Op, Payload, Rest}.
-spec ws_recv(gen_tcp:socket(), binary()) -> {0..15, binary(), binary()}.
ws_recv(S, Buf) ->
    case Buf of
        <<1:1, 0:3, Op:4, 0:1, 127:7, Len:64, Payload:Len/binary, Rest/binary>> ->
            {Op, Payload, Rest};
        <<1:1, 0:3, Op:4, 0:1, 126:7, Len:16, Payload:Len/binary, Rest/binary>> ->
            {Op, Payload, Rest};
        <<1:1, 0:3, Op:4, 0:1, Len:7, Payload:Len/binary, Rest/binary>> when Len < 126 ->
            {Op, Payload, Rest};
        _ ->
            {ok, Data} = gen_tcp:recv(S, 0, 10000),
            ws_recv(S, <<Buf/binary, Data/binary>>)
    end.

%% Reads frames until the server's close frame, answers it (the server may have closed the
%% connection already), then expects the connection to close: the close code and reason.
-spec ws_closed(gen_tcp:socket(), binary()) -> {integer(), binary()}.
ws_closed(S, Buf) ->
    case ws_recv(S, Buf) of
        {8, <<Code:16, Reason/binary>>, _} ->
            _ = gen_tcp:send(S, ws_frame(1, 8, <<Code:16>>)),
            {error, closed} = recv_closed(S),
            {Code, Reason};
        {_, _, Rest} ->
            ws_closed(S, Rest)
    end.

-spec recv_closed(gen_tcp:socket()) -> {error, closed}.
recv_closed(S) ->
    case gen_tcp:recv(S, 0, 10000) of
        {ok, _} -> recv_closed(S);
        {error, closed} -> {error, closed}
    end.

%% Every connection of the server ended (py_http monitors each), and no websocket mailbox
%% is left.
-spec no_leak(pid()) -> ok.
no_leak(Server) ->
    py_test_util:wait_until(fun() ->
        {monitors, []} =:= erlang:process_info(Server, monitors) andalso mailboxes() =:= 0
    end, 20000).

-spec mailboxes() -> non_neg_integer().
mailboxes() ->
    length([P || P <- processes(),
                 erlang:process_info(P, initial_call) =:= {initial_call, {py_mailbox, init, 2}}]).

-spec with_server(map(), fun((pid()) -> term())) -> term().
with_server(Opts, Fun) ->
    {ok, S} = py_http:start(Opts#{port => 0}),
    try
        Result = Fun(S),
        no_leak(S),
        Result
    after
        py_http:stop(S)
    end.

-spec await_log(binary()) -> ok.
await_log(Prefix) ->
    N = byte_size(Prefix),
    receive
        {logged, <<Prefix:N/binary, _/binary>>} -> ok
    after 10000 ->
        ct:fail({no_log_entry, Prefix})
    end.

-spec with_log(fun(() -> term())) -> term().
with_log(Fun) ->
    ok = logger:add_handler(py_http_SUITE, ?MODULE, #{config => #{pid => self()}}),
    try Fun() after logger:remove_handler(py_http_SUITE) end.

%% @doc The websocket conversations of tests/web/compare.py (echo of text, bytes, a 100 kB
%% message, a fragmented one and a ping; a subprotocol and app headers; closes with codes from
%% either side; a route that sends first; refusals) give the client the same messages, close
%% codes and reasons and refusal statuses from py_http as from uvicorn.
-spec websockets_same_as_uvicorn(ct_suite:ct_config()) -> term().
websockets_same_as_uvicorn(Config) ->
    Port = free_port(),
    Peer = peer(Config, "uvicorn", ["fastapi_app:app", "--port", integer_to_list(Port),
                                    "--log-level", "warning"], Port),
    %% Servers of its own: bad_options/1 restarts the application.
    {ok, Ours} = py_http:start(#{app => <<"fastapi_app:app">>, port => 0}),
    {ok, Other} = py_http:start(#{app => {edge_apps, ws_raise_before_accept}, port => 0}),
    try
        Theirs = <<"http://127.0.0.1:", (integer_to_binary(Port))/binary>>,
        {ok, {N, Differences}} = py:call(compare, compare_ws, [url(Ours), Theirs], #{}, 120000),
        [] = Differences,
        true = N >= 7,
        %% And the comparison sees differences: the FastAPI routes against an app that fails.
        {ok, {_, [_ | _]}} = py:call(compare, compare_ws, [url(Ours), url(Other)], #{}, 120000)
    after
        stop_peer(Peer),
        py_http:stop(Ours),
        py_http:stop(Other)
    end.

%% @doc The frames themselves: the handshake's accept key (RFC 6455's example), a subprotocol,
%% masked text and binary, a fragmented message with a ping in its middle, the close handshake
%% started by the client (its frame echoed); the app saw each message and the close code.
-spec websocket_frames(ct_suite:ct_config()) -> term().
websocket_frames(_Config) ->
    with_server(#{app => {edge_apps, ws_recorder}}, fun(S) ->
        {C, Head, <<>>} = ws_connect(S, <<"/chat?x=1">>),
        <<"HTTP/1.1 101 Switching Protocols\r\n", _/binary>> = Head,
        {match, _} = re:run(Head, <<"\r\nsec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK\\+xOo=">>),
        ok = ws_send(C, 1, <<"héllo"/utf8>>),
        {1, <<"héllo"/utf8>>, <<>>} = ws_recv(C, <<>>),
        ok = ws_send(C, 2, <<0, 255>>),
        {2, <<0, 255>>, <<>>} = ws_recv(C, <<>>),
        ok = gen_tcp:send(C, [ws_frame(0, 1, <<"frag">>), ws_frame(1, 9, <<"pi">>),
                              ws_frame(0, 0, <<"men">>), ws_frame(1, 0, <<"ted">>)]),
        {10, <<"pi">>, Rest} = ws_recv(C, <<>>),
        {1, <<"fragmented">>, <<>>} = ws_recv(C, Rest),
        ok = ws_send(C, 8, <<1000:16, "bye">>),
        {1000, <<"bye">>} = ws_closed(C, <<>>),
        py_test_util:wait_for_value(fun events/0,
                                    [<<"websocket.connect">>, {<<"text">>, 5}, {<<"bytes">>, 2},
                                     {<<"text">>, 10}, {<<"disconnect">>, 1000, <<"bye">>}],
                                    20000)
    end).

%% @doc Bad upgrade requests get 400 with a log entry; an upgrade on a WSGI server is an
%% ordinary request for the app (Flask refuses it with its own 400, werkzeug's upper-case
%% reason phrase).
-spec websocket_bad_handshake(ct_suite:ct_config()) -> term().
websocket_bad_handshake(_Config) ->
    {ok, Asgi} = py_http:start(#{app => {edge_apps, ws_recorder}, port => 0}),
    {ok, Wsgi} = py_http:start(#{app => <<"flask_app:app">>, interface => wsgi, port => 0}),
    Base = <<"host: x\r\nupgrade: websocket\r\nconnection: Upgrade\r\n">>,
    try websocket_bad_handshake(Asgi, Wsgi, Base)
    after py_http:stop(Asgi), py_http:stop(Wsgi)
    end.

-spec websocket_bad_handshake(pid(), pid(), binary()) -> term().
websocket_bad_handshake(Asgi, Wsgi, Base) ->
    with_log(fun() ->
        Key = [<<"sec-websocket-key: ">>, ?WS_KEY, <<"\r\n">>],
        %% Each bad request with the log entry it makes (none for a POST); bytes that are not
        %% UTF-8 in the handshake's headers get an answer, not a crash.
        [begin
             <<"HTTP/1.1 400 ", _/binary>> = exchange(Asgi, [Line, Base, Extra, <<"\r\n">>]),
             [await_log(<<"py_http: bad websocket upgrade: bad Sec-WebSocket-", Log/binary>>)
              || Log =/= none]
         end
         || {Line, Extra, Log} <-
                [{<<"GET /ws/echo HTTP/1.1\r\n">>, <<"sec-websocket-version: 13\r\n">>, <<"Key">>},
                 {<<"GET /ws/echo HTTP/1.1\r\n">>, [Key, <<"sec-websocket-version: 8\r\n">>],
                  <<"Version">>},
                 {<<"POST /ws/echo HTTP/1.1\r\n">>, [Key, <<"sec-websocket-version: 13\r\n">>],
                  none},
                 {<<"GET /ws/echo HTTP/1.1\r\n">>,
                  <<"sec-websocket-key: \xff\r\nsec-websocket-version: 13\r\n">>, <<"Key">>},
                 {<<"GET /ws/echo HTTP/1.1\r\n">>, [Key, <<"sec-websocket-version: \xff\r\n">>],
                  <<"Version">>}]],
        {C, <<"HTTP/1.1 101 ", _/binary>>, _} =
            ws_connect(Asgi, <<"/ws/echo">>,
                       <<"sec-websocket-protocol: \xff\r\n"
                         "sec-websocket-extensions: \xff; \xff=\xff, x\xff\r\n">>),
        gen_tcp:close(C)
    end),
    <<"HTTP/1.1 400 BAD REQUEST", _/binary>> =
        exchange(Wsgi, [<<"GET / HTTP/1.1\r\n">>, Base,
                                         <<"sec-websocket-key: ">>, ?WS_KEY,
                                         <<"\r\nsec-websocket-version: 13\r\n"
                                           "connection: close\r\n\r\n">>]).

%% @doc Frames a server must refuse close the websocket with the RFC's code and a log entry;
%% the app gets websocket.disconnect with that code; nothing is left behind.
-spec websocket_protocol_errors(ct_suite:ct_config()) -> term().
websocket_protocol_errors(_Config) ->
    Unmasked = <<1:1, 0:3, 1:4, 0:1, 2:7, "hi">>,
    Cases = [{Unmasked, 1002},
             {<<1:1, 1:3, 1:4, (ws_frame(1, 1, <<"x">>))/binary>>, 1002},
             {ws_frame(1, 0, <<"orphan">>), 1002},
             {ws_frame(1, 3, <<>>), 1002},
             {ws_frame(0, 9, <<"p">>), 1002},
             {ws_frame(1, 9, binary:copy(<<"p">>, 126)), 1002},
             {<<(ws_frame(0, 1, <<"a">>))/binary, (ws_frame(1, 1, <<"b">>))/binary>>, 1002},
             {ws_frame(1, 1, <<255, 254>>), 1007},
             {ws_frame(1, 8, <<1004:16>>), 1002},
             {ws_frame(1, 8, <<1000:16, 255>>), 1007},
             {ws_frame(1, 8, <<3>>), 1002}],
    refused_frames(#{}, <<>>, Cases).

%% Each of `Cases' ({Frames, Code}) sent on a websocket of its own (its handshake with `Extra'
%% headers) to a server with `Opts' closes it with `Code' and a log entry; the app gets
%% websocket.disconnect with that code; nothing is left behind.
-spec refused_frames(map(), binary(), [{iodata(), 1002 | 1007 | 1009}]) -> term().
refused_frames(Opts, Extra, Cases) ->
    with_server(Opts#{app => {edge_apps, ws_recorder}}, fun(S) ->
        with_log(fun() ->
            [begin
                 {ok, _} = py:call(edge_apps, reset, []),
                 {C, <<"HTTP/1.1 101 ", _/binary>>, <<>>} = ws_connect(S, <<"/">>, Extra),
                 ok = gen_tcp:send(C, Bad),
                 {Code, <<>>} = ws_closed(C, <<>>),
                 await_log(<<"py_http: websocket closed with ", (integer_to_binary(Code))/binary>>),
                 py_test_util:wait_for_value(fun events/0,
                                             [<<"websocket.connect">>,
                                              {<<"disconnect">>, Code, <<>>}], 20000)
             end || {Bad, Code} <- Cases]
        end)
    end).

%% @doc A frame, or a fragmented message, over websocket_max_size closes with 1009 (the
%% frame's payload is not read); one at the limit passes.
-spec websocket_too_big(ct_suite:ct_config()) -> term().
websocket_too_big(_Config) ->
    with_server(#{app => {edge_apps, ws_recorder}, websocket_max_size => 1000}, fun(S) ->
        {C1, _, <<>>} = ws_connect(S, <<"/">>),
        ok = ws_send(C1, 2, binary:copy(<<"a">>, 1000)),
        {2, _, <<>>} = ws_recv(C1, <<>>),
        %% Only the header of a 1 GB frame.
        ok = gen_tcp:send(C1, <<1:1, 0:3, 2:4, 1:1, 127:7, (1 bsl 30):64, 1, 2, 3, 4>>),
        {1009, <<>>} = ws_closed(C1, <<>>),
        {C2, _, _} = ws_connect(S, <<"/">>),
        ok = gen_tcp:send(C2, [ws_frame(0, 1, binary:copy(<<"a">>, 600)),
                               ws_frame(1, 0, binary:copy(<<"a">>, 600))]),
        {1009, <<>>} = ws_closed(C2, <<>>)
    end).

%% @doc A client that goes away mid-message (half a frame, then half a fragmented message)
%% or without a close frame: the app gets websocket.disconnect 1006, nothing is left behind.
-spec websocket_client_vanishes(ct_suite:ct_config()) -> term().
websocket_client_vanishes(_Config) ->
    with_server(#{app => {edge_apps, ws_recorder}}, fun(S) ->
        Frame = ws_frame(1, 1, <<"hello there">>),
        [begin
             {ok, _} = py:call(edge_apps, reset, []),
             {C, _, _} = ws_connect(S, <<"/">>),
             ok = gen_tcp:send(C, Partial),
             ok = gen_tcp:close(C),
             py_test_util:wait_for_value(fun events/0,
                                         [<<"websocket.connect">>,
                                          {<<"disconnect">>, 1006, <<>>}], 20000)
         end || Partial <- [binary:part(Frame, 0, 7), ws_frame(0, 1, <<"half">>), <<>>]]
    end).

%% @doc An app raising before it accepts, or returning without accepting, gets 500; raising
%% after it: close 1011; returning after it: close 1000; each with a log entry; a refusal is a
%% 403.
-spec websocket_app_errors(ct_suite:ct_config()) -> term().
websocket_app_errors(_Config) ->
    with_log(fun() ->
        with_server(#{app => {edge_apps, ws_raise_before_accept}}, fun(S) ->
            {C, <<"HTTP/1.1 500 Internal Server Error", _/binary>>, _} = ws_connect(S, <<"/">>),
            {error, closed} = recv_closed(C),
            await_log(<<"py_http: websocket app failed before accepting">>)
        end),
        with_server(#{app => {edge_apps, ws_returns_without_accept}}, fun(S) ->
            {_, <<"HTTP/1.1 500 ", _/binary>>, _} = ws_connect(S, <<"/">>),
            await_log(<<"py_http: websocket app failed before accepting">>)
        end),
        with_server(#{app => {edge_apps, ws_raise_after_accept}}, fun(S) ->
            {C, <<"HTTP/1.1 101 ", _/binary>>, Rest} = ws_connect(S, <<"/">>),
            ok = ws_send(C, 1, <<"go">>),
            {1011, <<>>} = ws_closed(C, Rest),
            await_log(<<"py_http: websocket app failed: ">>)
        end),
        with_server(#{app => {edge_apps, ws_returns_after_accept}}, fun(S) ->
            {C, <<"HTTP/1.1 101 ", _/binary>>, Rest} = ws_connect(S, <<"/">>),
            {1, <<"only this">>, Rest2} = ws_recv(C, Rest),
            {8, <<1000:16>>, _} = ws_recv(C, Rest2),
            ok = ws_send(C, 8, <<1000:16>>),
            {error, closed} = recv_closed(C)
        end)
    end),
    with_server(#{app => <<"fastapi_app:app">>}, fun(S) ->
        {C, <<"HTTP/1.1 403 Forbidden", _/binary>>, _} = ws_connect(S, <<"/ws/reject">>),
        {error, closed} = recv_closed(C)
    end).

%% @doc An app that never accepts gets 500 after request_timeout, with a log entry, and is
%% cancelled.
-spec websocket_never_accepted(ct_suite:ct_config()) -> term().
websocket_never_accepted(_Config) ->
    with_log(fun() ->
        with_server(#{app => {edge_apps, ws_never_accepts}, request_timeout => 300}, fun(S) ->
            {_, <<"HTTP/1.1 500 ", _/binary>>, _} = ws_connect(S, <<"/">>),
            await_log(<<"py_http: websocket app did not accept within request_timeout">>),
            py_test_util:wait_for_value(fun events/0, [<<"waiting">>, <<"cancelled">>], 20000)
        end)
    end).

%% @doc An app that ignores its client's departure is cancelled request_timeout later.
-spec websocket_app_ignoring_disconnect_is_cancelled(ct_suite:ct_config()) -> term().
websocket_app_ignoring_disconnect_is_cancelled(_Config) ->
    with_log(fun() ->
        with_server(#{app => {edge_apps, ws_ignores_disconnect}, request_timeout => 300},
                    fun(S) ->
            {C, <<"HTTP/1.1 101 ", _/binary>>, _} = ws_connect(S, <<"/">>),
            py_test_util:wait_for_value(fun events/0, [<<"accepted">>], 20000),
            ok = ws_send(C, 8, <<1001:16>>),
            {1001, <<>>} = ws_closed(C, <<>>),
            await_log(<<"py_http: websocket app still running">>),
            py_test_util:wait_for_value(fun events/0, [<<"accepted">>, <<"cancelled">>], 20000)
        end)
    end).

%% @doc An app that sends without pause to a client that reads nothing is held back (its
%% sends wait for the socket); when the client leaves, its send raises an OSError.
-spec websocket_flood_then_client_leaves(ct_suite:ct_config()) -> term().
websocket_flood_then_client_leaves(_Config) ->
    with_server(#{app => {edge_apps, ws_flood}}, fun(S) ->
        {C, <<"HTTP/1.1 101 ", _/binary>>, Rest} = ws_connect(S, <<"/">>),
        %% Until the server's writes block (the app then waits for its acks), a few frames.
        {2, _, _} = ws_recv(C, Rest),
        ok = gen_tcp:close(C),
        py_test_util:wait_for_value(fun events/0, [{<<"oserror">>, <<"ClientDisconnected">>}],
                                    20000)
    end).

%% @doc A silent client gets a ping after idle_timeout; one that answers nothing is closed
%% with 1011.
-spec websocket_keepalive(ct_suite:ct_config()) -> term().
websocket_keepalive(_Config) ->
    with_server(#{app => {edge_apps, ws_recorder}, idle_timeout => 100}, fun(S) ->
        {C, _, Rest0} = ws_connect(S, <<"/">>),
        {9, <<>>, Rest} = ws_recv(C, Rest0),
        ok = ws_send(C, 10, <<>>),
        {9, <<>>, Rest2} = ws_recv(C, Rest),
        {1011, <<>>} = ws_closed(C, Rest2),
        py_test_util:wait_for_value(fun events/0, [<<"websocket.connect">>,
                                                   {<<"disconnect">>, 1011, <<>>}], 20000)
    end).

%% @doc stop/1 closes open websockets with 1012, as uvicorn does on shutdown.
-spec websocket_server_stop(ct_suite:ct_config()) -> term().
websocket_server_stop(_Config) ->
    {ok, S} = py_http:start(#{app => {edge_apps, ws_recorder}, port => 0}),
    {C, _, <<>>} = ws_connect(S, <<"/">>),
    ok = ws_send(C, 1, <<"x">>),
    {1, <<"x">>, Rest} = ws_recv(C, <<>>),
    Stopper = spawn_link(fun() -> py_http:stop(S) end),
    {8, <<1012:16>>, _} = ws_recv(C, Rest),
    ok = ws_send(C, 8, <<1012:16>>),
    {error, closed} = recv_closed(C),
    py_test_util:wait_until(fun() -> not is_process_alive(Stopper) end, 20000),
    py_test_util:wait_for_value(fun events/0, [<<"websocket.connect">>, {<<"text">>, 1},
                                               {<<"disconnect">>, 1012, <<>>}], 20000).

%% @doc A client that sends faster than the app receives: the server stops reading (the app's
%% pause) and goes on when the app catches up; every message arrives, in order.
-spec websocket_slow_reader_app(ct_suite:ct_config()) -> term().
websocket_slow_reader_app(_Config) ->
    with_server(#{app => {edge_apps, ws_lazy}}, fun(S) ->
        {C, <<"HTTP/1.1 101 ", _/binary>>, <<>>} = ws_connect(S, <<"/">>),
        N = 300,
        ok = gen_tcp:send(C, [ws_frame(1, 1, integer_to_binary(I)) || I <- lists:seq(1, N)]),
        {ok, _} = py:call(edge_apps, release, []),
        lists:foldl(fun(I, Buf) ->
                            Bin = integer_to_binary(I),
                            Echo = <<Bin/binary, " ", Bin/binary>>,
                            {1, Echo, Rest} = ws_recv(C, Buf),
                            Rest
                    end, <<>>, lists:seq(1, N)),
        ok = ws_send(C, 8, <<1000:16>>),
        {1000, <<>>} = ws_closed(C, <<>>),
        py_test_util:wait_for_value(fun events/0, [<<"go">>, {<<"received">>, N}], 20000)
    end).

%% @doc permessage-deflate offers get the answers of the `websockets' library (uvicorn's):
%% windows of at most 12 bits, the flags echoed, the first acceptable offer taken; an offer
%% with an unknown or repeated parameter, a bad value or server_max_window_bits=8 is declined.
-spec websocket_deflate_negotiation(ct_suite:ct_config()) -> term().
websocket_deflate_negotiation(_Config) ->
    N = fun(Offers) -> py_http_ws:negotiate([{<<"sec-websocket-extensions">>, O} || O <- Offers]) end,
    none = N([]),
    none = py_http_ws:negotiate([{<<"host">>, <<"x">>}]),
    none = N([<<"x-webkit-deflate-frame">>]),
    {ok, <<"permessage-deflate; server_max_window_bits=12">>,
     #{reset_out := false, out_bits := 12, in_bits := 15}} = N([<<"permessage-deflate">>]),
    {ok, <<"permessage-deflate; server_max_window_bits=12; client_max_window_bits=12">>,
     #{in_bits := 12}} = N([<<"permessage-deflate; client_max_window_bits">>]),
    {ok, <<"permessage-deflate; server_no_context_takeover; server_max_window_bits=12; "
           "client_max_window_bits=9">>, #{reset_out := true, in_bits := 9}} =
        N([<<"permessage-deflate; client_max_window_bits=9; server_no_context_takeover">>]),
    {ok, <<"permessage-deflate; server_max_window_bits=10">>, #{out_bits := 10}} =
        N([<<"Permessage-Deflate; server_max_window_bits=\"10\", permessage-deflate">>]),
    %% Declined offers, then one that is taken (two headers count as one list).
    {ok, <<"permessage-deflate; client_no_context_takeover; server_max_window_bits=12">>, _} =
        N([<<"permessage-deflate; server_max_window_bits=8, permessage-deflate; bogus">>,
           <<"permessage-deflate; client_max_window_bits=16, "
             "permessage-deflate; server_max_window_bits, "
             "permessage-deflate; server_no_context_takeover; server_no_context_takeover, "
             "permessage-deflate; server_no_context_takeover=1, "
             "permessage-deflate; client_max_window_bits=012, "
             "permessage-deflate; client_no_context_takeover">>]),
    none = N([<<"permessage-deflate; server_max_window_bits=8">>]),
    none = N([<<"permessage-deflate;">>]).

%% @doc With permessage-deflate: compressed messages of the client (one fragmented, one whose
%% deflate data refers back to the one before) reach the app inflated; the app's messages come
%% back compressed (RSV1) from 64 bytes on, smaller ones as they are; the zlib streams parked
%% and reopened keep their history; with
%% `websocket_compression => false' the offer is declined.
-spec websocket_deflate(ct_suite:ct_config()) -> term().
websocket_deflate(_Config) ->
    Offer = <<"sec-websocket-extensions: permessage-deflate; client_max_window_bits\r\n">>,
    %% 1000 characters that do not compress on their own.
    Long = base64:encode(crypto:strong_rand_bytes(750)),
    with_server(#{app => {edge_apps, ws_recorder}}, fun(S) ->
        {ok, _} = py:call(edge_apps, reset, []),
        {C, Head, <<>>} = ws_connect(S, <<"/">>, Offer),
        {match, _} = re:run(Head, <<"\r\nsec-websocket-extensions: permessage-deflate; "
                                    "server_max_window_bits=12; client_max_window_bits=12(\r|$)">>),
        Out = zlib:open(),
        ok = zlib:deflateInit(Out, default, deflated, -12, 8, default),
        In = zlib:open(),
        ok = zlib:inflateInit(In, -12),
        Echo = fun(Frames, Expected) ->
            ok = gen_tcp:send(C, Frames),
            {1, 1, Payload, <<>>} = ws_recv_rsv(C, <<>>),
            Expected = iolist_to_binary(zlib:inflate(In, [Payload, <<0, 0, 255, 255>>])),
            byte_size(Payload)
        end,
        %% Twice the same text: the second message is a back-reference into the first, both
        %% ways.
        First = ws_deflate(Out, Long),
        Second = ws_deflate(Out, Long),
        true = byte_size(Second) < byte_size(First) div 4,
        Big = Echo(ws_frame(1, 1, 1, First), Long),
        Small = Echo(ws_frame(1, 1, 1, Second), Long),
        true = Small < Big div 4,
        %% A quiet connection parks its zlib streams; reopened, they still know the history.
        {monitors, [{process, Connection}]} = erlang:process_info(S, monitors),
        Connection ! '$py_http_ws_park',
        true = Echo(ws_frame(1, 1, 1, ws_deflate(Out, Long)), Long) < Big div 4,
        %% A fragmented compressed message: RSV1 on its first frame only.
        Third = ws_deflate(Out, [Long, <<"!">>]),
        {A, B} = split_binary(Third, byte_size(Third) div 2),
        Echo([ws_frame(0, 1, 1, A), ws_frame(1, 0, 0, B)], <<Long/binary, "!">>),
        %% Not compressed by the client, small: not compressed either way.
        ok = ws_send(C, 1, <<"tiny">>),
        {0, 1, <<"tiny">>, <<>>} = ws_recv_rsv(C, <<>>),

        ok = gen_tcp:send(C, ws_frame(1, 8, <<1000:16>>)),
        {0, 8, <<1000:16>>, <<>>} = ws_recv_rsv(C, <<>>),
        py_test_util:wait_for_value(fun events/0,
                                    [<<"websocket.connect">>, {<<"text">>, 1000},
                                     {<<"text">>, 1000}, {<<"text">>, 1000},
                                     {<<"text">>, 1001}, {<<"text">>, 4},
                                     {<<"disconnect">>, 1000, <<>>}], 20000)
    end),
    %% With client_no_context_takeover, each message of the client is a deflate stream of its
    %% own, also one that the client ends (BFINAL, no empty block to leave out).
    with_server(#{app => {edge_apps, ws_recorder}}, fun(S) ->
        {ok, _} = py:call(edge_apps, reset, []),
        {C, Head, <<>>} = ws_connect(S, <<"/">>, <<"sec-websocket-extensions: permessage-deflate; "
                                                    "client_no_context_takeover\r\n">>),
        {match, _} = re:run(Head, <<"client_no_context_takeover">>),
        Final = fun(Data) ->
            Z = zlib:open(),
            ok = zlib:deflateInit(Z, default, deflated, -15, 8, default),
            Bin = iolist_to_binary(zlib:deflate(Z, Data, finish)),
            ok = zlib:close(Z),
            Bin
        end,
        Fresh = fun(Data) ->
            Z = zlib:open(),
            ok = zlib:deflateInit(Z, default, deflated, -15, 8, default),
            ws_deflate(Z, Data)
        end,
        Twice = <<Long/binary, Long/binary>>,
        [begin
             ok = gen_tcp:send(C, ws_frame(1, 1, 1, Payload)),
             {1, 1, _, <<>>} = ws_recv_rsv(C, <<>>)
         end || Payload <- [Final(Long), Final(Twice), Fresh(Long), Final(Long), Fresh(Twice)]],
        ok = gen_tcp:send(C, ws_frame(1, 8, <<1000:16>>)),
        {0, 8, <<1000:16>>, <<>>} = ws_recv_rsv(C, <<>>),
        py_test_util:wait_for_value(fun events/0,
                                    [<<"websocket.connect">> |
                                     [{<<"text">>, N} || N <- [1000, 2000, 1000, 1000, 2000]]] ++
                                    [{<<"disconnect">>, 1000, <<>>}], 20000)
    end),
    with_server(#{app => {edge_apps, ws_recorder}, websocket_compression => false}, fun(S) ->
        {C, Head, <<>>} = ws_connect(S, <<"/">>, Offer),
        nomatch = re:run(Head, <<"sec-websocket-extensions">>, [caseless]),
        ok = ws_send(C, 1, Long),
        {0, 1, Long, <<>>} = ws_recv_rsv(C, <<>>),
        %% RSV1 is a protocol error without the extension.
        ok = gen_tcp:send(C, ws_frame(1, 1, 1, <<"x">>)),
        {1002, <<>>} = ws_closed(C, <<>>)
    end).

%% @doc Compressed messages a server must refuse: one that inflates past websocket_max_size
%% (1009, however small on the wire), deflate data that does not inflate (1002), RSV1 on a
%% continuation or a control frame (1002); each with a log entry, the app told, nothing left.
-spec websocket_deflate_errors(ct_suite:ct_config()) -> term().
websocket_deflate_errors(_Config) ->
    Offer = <<"sec-websocket-extensions: permessage-deflate\r\n">>,
    Z = zlib:open(),
    ok = zlib:deflateInit(Z, default, deflated, -15, 8, default),
    Bomb = ws_deflate(Z, binary:copy(<<0>>, 100000)),
    true = byte_size(Bomb) < 1000,
    Cases = [{ws_frame(1, 1, 2, Bomb), 1009},
             {ws_frame(1, 1, 1, <<255, 255, 255, 255, 1, 2, 3>>), 1002},
             {[ws_frame(0, 1, 1, <<"x">>), ws_frame(1, 1, 0, <<"y">>)], 1002},
             {ws_frame(1, 1, 9, <<>>), 1002}],
    refused_frames(#{websocket_max_size => 50000}, Offer, Cases).

%% @doc An app answering the handshake with a response of its own (the ASGI
%% websocket.http.response extension, named in the scope): its status, headers and body, in
%% parts, with a content-length; an app that raises or sends too much midway: 500 and a log
%% entry; nothing left behind.
-spec websocket_denial_response(ct_suite:ct_config()) -> term().
websocket_denial_response(_Config) ->
    with_server(#{app => {edge_apps, ws_deny}, websocket_max_size => 1000}, fun(S) ->
        with_log(fun() ->
            {ok, _} = py:call(edge_apps, reset, []),
            {C1, Head, Body} = ws_connect(S, <<"/">>),
            <<"HTTP/1.1 418 I'm a Teapot\r\n", Headers/binary>> = Head,
            [<<"content-type: text/plain">>, <<"x-why: teapot">>, <<"content-length: 15">>,
             <<"connection: close">>] = binary:split(Headers, <<"\r\n">>, [global]),
            Body2 = case Body of
                        <<"short and stout">> -> Body;
                        _ -> {ok, More} = gen_tcp:recv(C1, 0, 10000), <<Body/binary, More/binary>>
                    end,
            <<"short and stout">> = Body2,
            {error, closed} = recv_closed(C1),
            py_test_util:wait_for_value(fun events/0,
                                        [{<<"extensions">>, [<<"websocket.http.response">>]},
                                         <<"denied">>], 20000),
            [begin
                 {C, <<"HTTP/1.1 500 Internal Server Error", _/binary>>, _} = ws_connect(S, Path),
                 {error, closed} = recv_closed(C),
                 await_log(Log)
             end || {Path, Log} <- [{<<"/raise">>, <<"py_http: websocket app failed before">>},
                                    {<<"/big">>, <<"py_http: websocket app's denial response is "
                                                   "over 1000 bytes">>}]]
        end)
    end).
