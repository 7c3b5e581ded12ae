%% The Erlang HTTP servers a team might put in front of a Python web app, each serving the web
%% benchmark's Flask hello (bench/web/hello.py) through the same call, py_wsgi:run/4: OTP's
%% inets httpd, yaws and mochiweb (Debian packages), beside py_http. bench/web/run.sh starts
%% them in one VM and loads each in turn with wrk; what differs between them is only the HTTP
%% server's own cost per request (docs/web-frameworks.md, "Why py_http"). `/raw' answers the
%% same JSON without Python: each server's own ceiling (py_http has no such path).
-module(fronts).

-export([start/1, do/1, out/1, mochiweb_loop/1]).

-include_lib("inets/include/httpd.hrl").

%% @doc Starts every front: inets on BasePort, yaws on BasePort + 1, mochiweb on BasePort + 2,
%% py_http (WSGI) on BasePort + 3. A front that cannot start is reported and left out.
-spec start(inet:port_number()) -> [{atom(), inet:port_number()}].
start(BasePort) ->
    Fronts = [{inets, BasePort}, {yaws, BasePort + 1}, {mochiweb, BasePort + 2},
              {py_http, BasePort + 3}],
    [{Name, Port} || {Name, Port} <- Fronts, started(Name, Port)].

started(Name, Port) ->
    try start(Name, Port) of
        ok -> true
    catch
        Class:Reason ->
            io:format(standard_error, "~p cannot start: ~p:~p~n", [Name, Class, Reason]),
            false
    end.

start(inets, Port) ->
    ok = application:ensure_started(inets),
    Root = tmp_dir("inets"),
    {ok, _} = inets:start(httpd, [{port, Port}, {bind_address, {127, 0, 0, 1}},
                                  {server_name, "bench"}, {server_root, Root},
                                  {document_root, Root}, {modules, [?MODULE]},
                                  {keep_alive, true}, {max_keep_alive_request, 1000000000},
                                  {max_clients, 10000}]),
    ok;
start(yaws, Port) ->
    Root = tmp_dir("yaws"),
    ok = yaws:start_embedded(Root, [{port, Port}, {listen, {127, 0, 0, 1}},
                                    {servername, "bench"}, {appmods, [{"/", ?MODULE}]}],
                             [{logdir, Root}, {cache_refresh_secs, 0}], "bench"),
    ok;
start(mochiweb, Port) ->
    {ok, _} = mochiweb_http:start([{name, bench_mochiweb}, {ip, {127, 0, 0, 1}}, {port, Port},
                                   {loop, fun ?MODULE:mochiweb_loop/1}]),
    ok;
start(py_http, Port) ->
    {ok, _} = py_http:start(#{app => <<"hello:wsgi">>, interface => wsgi, port => Port}),
    ok.

tmp_dir(Name) ->
    Dir = filename:join(["/tmp", "erlang_python_fronts_" ++ os:getpid(), Name]),
    ok = filelib:ensure_path(Dir),
    Dir.

%% The one request every front makes: the environ of a GET (or any method) on Path.
-spec app(binary(), binary(), binary()) -> {integer(), [{binary(), binary()}], binary()}.
app(_Method, <<"/raw">>, _Query) ->
    %% The server's own ceiling: the same response, with no Python.
    {200, [{<<"Content-Type">>, <<"application/json">>}], <<"{\"message\":\"hello\"}\n">>};
app(Method, Path, Query) ->
    Environ = #{<<"REQUEST_METHOD">> => Method, <<"PATH_INFO">> => Path,
                <<"QUERY_STRING">> => Query, <<"SERVER_NAME">> => <<"127.0.0.1">>,
                <<"SERVER_PORT">> => <<"80">>, <<"SERVER_PROTOCOL">> => <<"HTTP/1.1">>},
    case py_wsgi:run(<<"hello">>, <<"wsgi">>, Environ) of
        {ok, {<<Code:3/binary, _/binary>>, Headers, Body}} ->
            {binary_to_integer(Code), Headers, Body};
        {error, Reason} ->
            {500, [{<<"content-type">>, <<"text/plain">>}],
             iolist_to_binary(io_lib:format("~p", [Reason]))}
    end.

split_uri(Uri) ->
    case string:split(iolist_to_binary(Uri), <<"?">>) of
        [Path, Query] -> {Path, Query};
        [Path] -> {Path, <<>>}
    end.

%% inets httpd: the module of `{modules, [fronts]}'.
-spec do(#mod{}) -> {proceed, list()}.
do(#mod{method = Method, request_uri = Uri, socket = Socket}) ->
    %% Without it every response waits out a delayed ACK (about 40 ms): inets sends the head
    %% and the body apart, and its configuration has no way to set it on OTP 25.
    _ = inet:setopts(Socket, [{nodelay, true}]),
    {Path, Query} = split_uri(Uri),
    {Code, Headers, Body} = app(list_to_binary(Method), Path, Query),
    Head = [{code, Code}, {content_length, integer_to_list(byte_size(Body))}
            | [inets_header(string:lowercase(N), binary_to_list(V))
               || {N, V} <- Headers, string:lowercase(N) =/= <<"content-length">>]],
    {proceed, [{response, {response, Head, Body}}]}.

inets_header(<<"content-type">>, V) -> {content_type, V};
inets_header(N, V) -> {binary_to_list(N), V}.

%% yaws: the appmod of `/'.
-spec out(term()) -> list().
out(Arg) ->
    Req = yaws_api:arg_req(Arg),
    Method = atom_to_binary(yaws_api:http_request_method(Req)),
    {abs_path, Uri} = yaws_api:http_request_path(Req),
    {Path, Query} = split_uri(Uri),
    {Code, Headers, Body} = app(Method, Path, Query),
    ContentType = proplists:get_value(<<"Content-Type">>, Headers, <<"text/plain">>),
    [{status, Code}
     | [{header, {binary_to_list(N), binary_to_list(V)}}
        || {N, V} <- Headers,
           not lists:member(string:lowercase(N), [<<"content-type">>, <<"content-length">>])]]
    ++ [{content, binary_to_list(ContentType), Body}].

%% mochiweb: the request loop.
-spec mochiweb_loop(term()) -> term().
mochiweb_loop(Req) ->
    Method = atom_to_binary(mochiweb_request:get(method, Req)),
    {Path, Query} = split_uri(mochiweb_request:get(raw_path, Req)),
    {Code, Headers, Body} = app(Method, Path, Query),
    mochiweb_request:respond({Code, [{binary_to_list(N), binary_to_list(V)}
                                     || {N, V} <- Headers], Body}, Req).
