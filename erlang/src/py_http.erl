%% @doc An HTTP/1.1 server for ASGI and WSGI apps: `py_http:start(#{app => <<"myapp.main:app">>,
%% port => 8000})' serves the app on a port, through {@link py_asgi:stream/6} or
%% {@link py_wsgi:stream/6}.
%%
%% Built on `gen_tcp' and the BEAM's own HTTP parser (`{packet, http_bin}'): one process per
%% connection, keep-alive, request bodies with `Content-Length' or chunked, responses with the
%% app's `Content-Length' or chunked, limits on header lines, header count and body size,
%% read, idle and app timeouts, and a graceful stop that lets requests in flight finish. Why
%% this rather than inets httpd, yaws or mochiweb: docs/web-frameworks.md. Servers run under
%% `py_http_sup'; the application variable `http' starts servers with the application.
-module(py_http).
-behaviour(gen_server).

-export([start/1, start_link/1, stop/1, port/1, child_spec/1]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).
%% For py_http_ws.
-export([status_line/2]).

-export_type([opts/0]).

-type opts() :: #{
    app := binary() | string() | {binary() | atom(), binary() | atom()},
    interface => asgi | wsgi,
    port => inet:port_number(),
    ip => inet:ip_address(),
    acceptors => pos_integer(),
    max_header_line => pos_integer(),
    max_headers => pos_integer(),
    max_body_size => non_neg_integer(),
    read_timeout => timeout(),
    idle_timeout => timeout(),
    request_timeout => timeout(),
    drain_timeout => timeout(),
    lifespan => boolean(),
    freeze_heap => boolean(),
    websocket_max_size => pos_integer(),
    websocket_compression => boolean()
}.
%% `app': `<<"module:attribute">>' (as uvicorn and gunicorn take it) or `{Module, Callable}'.
%% `interface' (default `asgi'). `port' (default 8000; 0 picks a free one, see port/1), `ip'
%% (default loopback). `acceptors' (default 8). Limits: `max_header_line' (bytes of the request
%% target and of each header line, default 8192; a longer target gets 414, a longer header
%% line 431, a line over 4 times the limit (at least 64 KiB) closes the connection: the BEAM's
%% parser drops the socket), `max_headers' (default 100; more gives 431), `max_body_size'
%% (default 8 MiB; larger gives 413). Timeouts in ms: `read_timeout' (headers and body,
%% default 30000), `idle_timeout' (between keep-alive requests, default 60000),
%% `request_timeout' (the app's wait for its next event, default 30000; `py_asgi' and
%% `py_wsgi''s `timeout'), `drain_timeout' (stop/1's wait for requests in flight, default
%% 15000). `lifespan' (default `true'). `freeze_heap' (default `true'): once the app is
%% imported and its lifespan started, Python's heap is collected and frozen (`gc.freeze()'), so
%% that the objects of the app and its libraries are no longer scanned by every full collection
%% (a 45-50 ms pause of the event loop every second or so under load with FastAPI, which made
%% the p99 latency; docs/web-frameworks.md). `websocket_max_size' (bytes of one websocket
%% message, default 16 MiB as uvicorn; a larger one closes the websocket with 1009; a compressed
%% one counts once inflated). `websocket_compression' (default `true', as uvicorn): accept a
%% client's `permessage-deflate' offer (RFC 7692). A websocket's
%% `idle_timeout' is its keepalive: after that much silence the server pings, and closes with
%% 1011 when nothing came back within as long again.

-record(config, {
    interface :: asgi | wsgi,
    module :: binary(),
    callable :: binary(),
    port :: inet:port_number(),
    max_header_line :: pos_integer(),
    max_headers :: pos_integer(),
    max_body_size :: non_neg_integer(),
    read_timeout :: timeout(),
    idle_timeout :: timeout(),
    request_timeout :: timeout(),
    lifespan :: boolean(),
    freeze_heap :: boolean(),
    websocket_max_size :: pos_integer(),
    websocket_compression :: boolean()
}).

-record(state, {
    listen :: gen_tcp:socket(),
    config :: #config{},
    acceptors :: pos_integer(),
    conns = #{} :: #{reference() => pid()},
    drain_timeout :: timeout()
}).

%% What a connection reads and writes for one request.
-record(req, {
    socket :: gen_tcp:socket(),
    config :: #config{},
    method :: binary(),
    version :: {non_neg_integer(), non_neg_integer()},
    %% The request body still to read: {length, N} bytes, chunked, or done.
    body :: {length, non_neg_integer()} | chunked | done,
    body_read = 0 :: non_neg_integer(),
    too_large = false :: boolean(),
    keep_alive :: boolean(),
    %% The response: not started, headers waiting for the first chunk, or being sent.
    response = none :: none | {pending, iodata()} | sending | done,
    chunked = false :: boolean(),
    no_body = false :: boolean(),
    %% The client sent `Expect: 100-continue' and waits for `100 Continue' before the body.
    continue = false :: boolean()
}).

-define(READ_CHUNK, 65536).

%%% API

%% @doc Start a server under the application's supervisor; `{ok, Pid}' once it listens, or
%% `{error, Reason}' (`{bad_app, App}', `{bad_option, Key, Value}' for an option that is
%% unknown or of the wrong kind, `eaddrinuse', `not_started' when the application is
%% not running, `{app_start_failed, Error}' when the app cannot be imported or its lifespan
%% startup failed, ...). The app is imported, and an ASGI app's lifespan started, before the
%% server listens (within `request_timeout').
-spec start(opts()) -> {ok, pid()} | {error, term()}.
start(Opts) when is_map(Opts) ->
    case config(Opts) of
        {ok, _} ->
            try supervisor:start_child(py_http_sup, child_spec(Opts)) of
                {ok, Pid} -> {ok, Pid};
                {error, {Reason, _Child}} -> {error, Reason};
                {error, _} = Error -> Error
            catch
                exit:{noproc, _} -> {error, not_started}
            end;
        {error, _} = Error ->
            Error
    end.

%% @doc Start a server linked to the caller (for your own supervisor; see child_spec/1).
-spec start_link(opts()) -> {ok, pid()} | {error, term()}.
start_link(Opts) ->
    case config(Opts) of
        {ok, Config} -> gen_server:start_link(?MODULE, {Config, Opts}, []);
        {error, _} = Error -> Error
    end.

%% @doc The child spec of a server, for a supervisor of yours.
-spec child_spec(opts()) -> supervisor:child_spec().
child_spec(Opts) ->
    Drain = maps:get(drain_timeout, Opts, 15000),
    #{id => {?MODULE, make_ref()},
      start => {?MODULE, start_link, [Opts]},
      restart => temporary,
      shutdown => case Drain of infinity -> infinity; _ -> Drain + 5000 end,
      type => worker,
      modules => [?MODULE]}.

%% @doc Stop a server gracefully: it stops accepting at once, lets the requests in flight
%% finish (up to `drain_timeout'), closes idle connections, and runs the ASGI app's lifespan
%% shutdown.
-spec stop(pid()) -> ok.
stop(Server) when is_pid(Server) ->
    Children = try supervisor:which_children(py_http_sup) catch exit:_ -> [] end,
    case [Id || {Id, Pid, _, _} <- Children, Pid =:= Server] of
        [Id] ->
            %% A temporary child: terminating it also forgets it.
            _ = supervisor:terminate_child(py_http_sup, Id),
            ok;
        [] ->
            %% Started with start_link/1 under a supervisor of the caller's.
            gen_server:stop(Server, shutdown, infinity)
    end.

%% @doc The port the server listens on (useful with `port => 0').
-spec port(pid()) -> inet:port_number().
port(Server) ->
    gen_server:call(Server, port).

%%% gen_server

%% @private
-spec init({#config{}, opts()}) -> {ok, #state{}} | {stop, term()}.
init({Config, Opts}) ->
    process_flag(trap_exit, true),
    case start_app(Config) of
        ok ->
            ok = freeze_heap(Config),
            listen(Config, Opts);
        {error, Reason} -> {stop, {app_start_failed, Reason}}
    end.

%% The app is imported (and an ASGI app's lifespan started, this server holding it) before the
%% server listens: the first requests do not wait for it, and a broken app is an error of
%% start/1 rather than of every request.
-spec start_app(#config{}) -> ok | {error, term()}.
start_app(#config{interface = asgi, lifespan = true, module = M, callable = C} = Config) ->
    py_asgi:'_hold'(M, C, Config#config.request_timeout);
start_app(#config{module = M, callable = C} = Config) ->
    case py:call(<<"erlang._web">>, <<"check_app">>, [M, C], #{},
                 Config#config.request_timeout) of
        {ok, none} -> ok;
        {error, _} = Error -> Error
    end.

%% The app's objects, made at its import and lifespan startup, live as long as the server:
%% frozen, a full collection no longer walks them (a long pause of the event loop otherwise).
-spec freeze_heap(#config{}) -> ok.
freeze_heap(#config{freeze_heap = true, request_timeout = Timeout}) ->
    case py:call(<<"erlang._web">>, <<"freeze_heap">>, [], #{}, Timeout) of
        {ok, _} -> ok;
        {error, Reason} ->
            logger:warning("py_http: the Python heap was not frozen: ~tp", [Reason],
                           #{domain => [erlang_python, http]})
    end;
freeze_heap(#config{}) ->
    ok.

-spec listen(#config{}, opts()) -> {ok, #state{}} | {stop, term()}.
listen(Config, Opts) ->
    %% The port driver backend whatever the node's default (`kernel' `inet_backend'): the
    %% head reader puts bytes back with gen_tcp:unrecv/2, which only it has.
    Listen = [{inet_backend, inet}, binary, {packet, raw}, {active, false}, {reuseaddr, true},
              {nodelay, true}, {backlog, 1024}, {ip, maps:get(ip, Opts, {127, 0, 0, 1})},
              {packet_size, line_cap(Config#config.max_header_line)}],
    case gen_tcp:listen(Config#config.port, Listen) of
        {ok, LSock} ->
            {ok, Port} = inet:port(LSock),
            State = #state{listen = LSock, config = Config#config{port = Port},
                           acceptors = maps:get(acceptors, Opts, 8),
                           drain_timeout = maps:get(drain_timeout, Opts, 15000)},
            [start_acceptor(State) || _ <- lists:seq(1, State#state.acceptors)],
            {ok, State};
        {error, Reason} ->
            _ = stop_app(Config),
            {stop, Reason}
    end.

%% @private
-spec handle_call(term(), gen_server:from(), #state{}) -> {reply, term(), #state{}}.
handle_call(port, _From, #state{config = Config} = State) ->
    {reply, Config#config.port, State};
handle_call(_Request, _From, State) ->
    {reply, {error, badarg}, State}.

%% @private
-spec handle_cast(term(), #state{}) -> {noreply, #state{}}.
handle_cast(_Msg, State) ->
    {noreply, State}.

%% @private
-spec handle_info(term(), #state{}) -> {noreply, #state{}}.
handle_info({accepted, Pid}, #state{conns = Conns} = State) ->
    %% The acceptor became a connection: watch it, and put a new acceptor in its place.
    unlink(Pid),
    MRef = monitor(process, Pid),
    start_acceptor(State),
    {noreply, State#state{conns = Conns#{MRef => Pid}}};
handle_info({'DOWN', MRef, process, _, _}, #state{conns = Conns} = State) ->
    {noreply, State#state{conns = maps:remove(MRef, Conns)}};
handle_info({'EXIT', _Acceptor, _Reason}, State) ->
    %% An acceptor failed (accept error other than the socket closing): replace it.
    start_acceptor(State),
    {noreply, State};
handle_info(_Msg, State) ->
    {noreply, State}.

%% @private
-spec terminate(term(), #state{}) -> ok.
terminate(_Reason, #state{listen = LSock, conns = Conns, config = Config} = State) ->
    gen_tcp:close(LSock),
    maps:foreach(fun(_, Pid) -> Pid ! '$py_http_drain' end, Conns),
    drain(Conns, py_web:deadline(State#state.drain_timeout)),
    _ = stop_app(Config),
    ok.

%% This server no longer holds the app's lifespan: its shutdown runs if no other server of
%% the app does.
-spec stop_app(#config{}) -> ok | {error, term()}.
stop_app(#config{interface = asgi, lifespan = true, module = M, callable = C}) ->
    py_asgi:'_release'(M, C);
stop_app(_Config) ->
    ok.

%%% Internal: listener

-spec config(term()) -> {ok, #config{}} | {error, term()}.
config(#{app := App} = Opts) ->
    Interface = maps:get(interface, Opts, asgi),
    case {app(App), lists:member(Interface, [asgi, wsgi]), bad_option(maps:to_list(Opts))} of
        {_, _, {Key, Value}} when Key =/= app, Key =/= interface ->
            {error, {bad_option, Key, Value}};
        {{ok, M, C}, true, _} ->
            {ok, #config{interface = Interface, module = M, callable = C,
                         port = maps:get(port, Opts, 8000),
                         max_header_line = maps:get(max_header_line, Opts, 8192),
                         max_headers = maps:get(max_headers, Opts, 100),
                         max_body_size = maps:get(max_body_size, Opts, 8 * 1024 * 1024),
                         read_timeout = maps:get(read_timeout, Opts, 30000),
                         idle_timeout = maps:get(idle_timeout, Opts, 60000),
                         request_timeout = maps:get(request_timeout, Opts, 30000),
                         lifespan = maps:get(lifespan, Opts, true),
                         freeze_heap = maps:get(freeze_heap, Opts, true),
                         websocket_max_size = maps:get(websocket_max_size, Opts, 16#1000000),
                         websocket_compression = maps:get(websocket_compression, Opts, true)}};
        {error, _, _} ->
            {error, {bad_app, App}};
        {_, false, _} ->
            {error, {bad_interface, Interface}}
    end;
config(Opts) ->
    {error, {bad_opts, Opts}}.

%% The first option that is unknown or has a value of the wrong kind (`app' and `interface'
%% are checked by config/1), or `none'.
-spec bad_option([{term(), term()}]) -> {term(), term()} | none.
bad_option([]) ->
    none;
bad_option([{Key, Value} | Rest]) ->
    case good_option(Key, Value) of
        true -> bad_option(Rest);
        false -> {Key, Value}
    end.

-spec good_option(term(), term()) -> boolean().
good_option(Key, _) when Key =:= app; Key =:= interface ->
    true;
good_option(port, Port) ->
    is_integer(Port) andalso Port >= 0 andalso Port =< 65535;
good_option(ip, Ip) ->
    Ip =:= any orelse Ip =:= loopback orelse
        (is_tuple(Ip) andalso is_list(catch inet:ntoa(Ip)));
good_option(Key, N) when Key =:= acceptors; Key =:= max_header_line; Key =:= max_headers;
                         Key =:= websocket_max_size ->
    is_integer(N) andalso N > 0;
good_option(max_body_size, N) ->
    is_integer(N) andalso N >= 0;
good_option(Key, T) when Key =:= read_timeout; Key =:= idle_timeout; Key =:= request_timeout;
                         Key =:= drain_timeout ->
    T =:= infinity orelse (is_integer(T) andalso T >= 0);
good_option(Key, B) when Key =:= lifespan; Key =:= freeze_heap; Key =:= websocket_compression ->
    is_boolean(B);
good_option(_Key, _Value) ->
    false.

-spec app(term()) -> {ok, binary(), binary()} | error.
app({M, C}) when (is_atom(M) orelse is_binary(M)), (is_atom(C) orelse is_binary(C)) ->
    {ok, to_binary(M), to_binary(C)};
app(App) when is_list(App) ->
    case unicode:characters_to_binary(App) of
        Bin when is_binary(Bin) -> app(Bin);
        _ -> error
    end;
app(App) when is_binary(App) ->
    case binary:split(App, <<":">>) of
        [M, C] when M =/= <<>>, C =/= <<>> -> {ok, M, C};
        _ -> error
    end;
app(_) ->
    error.

-spec to_binary(atom() | binary()) -> binary().
to_binary(A) when is_atom(A) -> atom_to_binary(A, utf8);
to_binary(B) -> B.

-spec start_acceptor(#state{}) -> pid().
start_acceptor(#state{listen = LSock, config = Config}) ->
    Server = self(),
    spawn_link(fun() -> accept(Server, LSock, Config) end).

-spec accept(pid(), gen_tcp:socket(), #config{}) -> ok.
accept(Server, LSock, Config) ->
    case gen_tcp:accept(LSock) of
        {ok, Socket} ->
            Server ! {accepted, self()},
            connection(Socket, Config);
        {error, closed} ->
            ok;
        {error, Reason} ->
            exit({accept, Reason})
    end.

-spec drain(#{reference() => pid()}, integer() | infinity) -> ok.
drain(Conns, _Deadline) when map_size(Conns) =:= 0 ->
    ok;
drain(Conns, Deadline) ->
    receive
        {'DOWN', MRef, process, _, _} -> drain(maps:remove(MRef, Conns), Deadline)
    after py_web:remaining(Deadline) ->
        maps:foreach(fun(_, Pid) -> exit(Pid, kill) end, Conns)
    end.

%% The BEAM's parser drops a connection whose line is longer than `packet_size', with no way to
%% answer; lines up to this cap are parsed and those over `max_header_line' get 414 or 431.
-spec line_cap(pos_integer()) -> pos_integer().
line_cap(Max) -> max(4 * Max, 65536).

%%% Internal: connections

-spec connection(gen_tcp:socket(), #config{}) -> ok.
connection(Socket, Config) ->
    %% As the scope and the environ give them, once per connection rather than per request.
    {Peer, Local} = case {inet:peername(Socket), inet:sockname(Socket)} of
                        {{ok, P}, {ok, L}} -> {address(P), address(L)};
                        _ -> {none, none}
                    end,
    idle(Socket, Config, Peer, Local).

%% Waits for the next request, or a drain, or the idle timeout. The request line and headers
%% are read as raw bytes and parsed here with the BEAM's HTTP parser
%% (`erlang:decode_packet/3', the one `{packet, http_bin}' runs in the socket): one socket
%% option call and one message for a request that comes in one piece, where reading in packet
%% mode took a round trip to the socket per header line. Bytes read past the headers (a body,
%% pipelined requests) are put back in the socket (`gen_tcp:unrecv/2') for the body reader
%% and the next request.
-spec idle(gen_tcp:socket(), #config{}, term(), term()) -> ok.
idle(Socket, Config, Peer, Local) ->
    %% Setting options fails once the client has closed (einval): the connection is over. The
    %% socket is in `{packet, raw}' here: the body reader leaves it so (trailers/1).
    case inet:setopts(Socket, [{active, once}]) of
        ok -> await_request(Socket, Config, Peer, Local);
        {error, _} -> gen_tcp:close(Socket), ok
    end.

-spec await_request(gen_tcp:socket(), #config{}, term(), term()) -> ok.
await_request(Socket, Config, Peer, Local) ->
    receive
        {tcp, Socket, Data} ->
            case request_line(Socket, Config, Data) of
                {ok, Method, Uri, Version, Rest} ->
                    Served = request(Socket, Config, Peer, Local, Method, Uri, Version, Rest),
                    case Served of
                        keep_alive ->
                            receive
                                '$py_http_drain' -> gen_tcp:close(Socket), ok
                            after 0 ->
                                idle(Socket, Config, Peer, Local)
                            end;
                        close ->
                            gen_tcp:close(Socket),
                            ok
                    end;
                {error, 400} ->
                    reject(Socket, 400);
                {error, closed} ->
                    gen_tcp:close(Socket),
                    ok
            end;
        {tcp_closed, Socket} ->
            ok;
        {tcp_error, Socket, _} ->
            gen_tcp:close(Socket),
            ok;
        '$py_http_drain' ->
            gen_tcp:close(Socket),
            ok
    after Config#config.idle_timeout ->
        gen_tcp:close(Socket),
        ok
    end.

%% The request line at the start of `Buffer', read on until it is whole (within the idle
%% timeout, as the wait for it began). `{error, closed}' for a line past line_cap/1 (as the
%% socket's parser dropped such a connection) or a client that left.
-spec request_line(gen_tcp:socket(), #config{}, binary()) ->
    {ok, term(), term(), term(), binary()} | {error, 400 | closed}.
request_line(Socket, Config, Buffer) ->
    case erlang:decode_packet(http_bin, Buffer, [{packet_size, cap(Config)}]) of
        {ok, {http_request, Method, Uri, Version}, Rest} ->
            {ok, Method, Uri, Version, Rest};
        {ok, _Other, _} ->
            %% `{http_error, Line}', or a response line.
            {error, 400};
        {more, _} ->
            case recv_more(Socket, Buffer, Config#config.idle_timeout) of
                {ok, More} -> request_line(Socket, Config, More);
                error -> {error, closed}
            end;
        {error, _} ->
            {error, closed}
    end.

%% `Buffer' and the next bytes from the socket (passive once an `{active, once}' message came).
-spec recv_more(gen_tcp:socket(), binary(), timeout()) -> {ok, binary()} | error.
recv_more(Socket, Buffer, Timeout) ->
    case gen_tcp:recv(Socket, 0, Timeout) of
        {ok, Data} -> {ok, <<Buffer/binary, Data/binary>>};
        {error, _} -> error
    end.

-spec cap(#config{}) -> pos_integer().
cap(#config{max_header_line = Max}) -> line_cap(Max).

%% Answers a request the server refuses with a short error response, and closes.
-spec reject(gen_tcp:socket(), 400 | 413 | 414 | 417 | 431 | 500 | 501) -> ok.
reject(Socket, Status) ->
    Body = reason(Status),
    Peer = case inet:peername(Socket) of
               {ok, {IP, Port}} -> [inet:ntoa(IP), $:, integer_to_list(Port)];
               _ -> "unknown peer"
           end,
    %% A 500 is logged with its reason by finish/1; the others are the client's doing.
    case Status of
        500 -> ok;
        _ -> logger:warning("py_http: ~b ~s for ~s", [Status, Body, Peer],
                            #{domain => [erlang_python, http]})
    end,
    _ = gen_tcp:send(Socket, [status_line({1, 1}, Status),
                              <<"content-type: text/plain; charset=utf-8\r\n">>,
                              <<"content-length: ">>, integer_to_binary(byte_size(Body)),
                              <<"\r\nconnection: close\r\n\r\n">>, Body]),
    gen_tcp:close(Socket),
    ok.

-spec request(gen_tcp:socket(), #config{}, term(), term(), term(), term(), term(), binary()) ->
    keep_alive | close.
request(Socket, #config{max_header_line = Max}, _Peer, _Local, _Method, Uri, _Version, _Rest)
  when is_tuple(Uri), byte_size(element(tuple_size(Uri), Uri)) > Max ->
    %% `{abs_path, Target}' or `{absoluteURI, Scheme, Host, Port, Target}' (lines up to
    %% line_cap/1 reach here).
    reject(Socket, 414),
    close;
request(Socket, Config, Peer, Local, Method0, Uri, Version, Buffer) ->
    case headers(Socket, Config, Buffer, []) of
        {ok, Headers, Rest} ->
            case unread(Socket, Rest) of
                ok ->
                    Method = method(Method0),
                    case target(Uri) of
                        {ok, Path, Query} ->
                            dispatch(Socket, Config, Peer, Local, Method, Path, Query, Version,
                                     Headers);
                        error ->
                            reject(Socket, 400),
                            close
                    end;
                error ->
                    close
            end;
        {error, closed} ->
            close;
        {error, Status} ->
            reject(Socket, Status),
            close
    end.

%% Puts the bytes read past the headers back in the socket, for the body reader and the next
%% request.
-spec unread(gen_tcp:socket(), binary()) -> ok | error.
unread(_Socket, <<>>) ->
    ok;
unread(Socket, Rest) ->
    case gen_tcp:unrecv(Socket, Rest) of
        ok -> ok;
        {error, _} -> error
    end.

%% Reads the header lines from `Buffer' on: `[{LowercaseName, Value}]' in order, and the bytes
%% after them.
-spec headers(gen_tcp:socket(), #config{}, binary(), [{binary(), binary()}]) ->
    {ok, [{binary(), binary()}], binary()} | {error, 400 | 431 | closed}.
headers(_Socket, #config{max_headers = Max}, _Buffer, Acc) when length(Acc) > Max ->
    {error, 431};
headers(Socket, Config, Buffer, Acc) ->
    case erlang:decode_packet(httph_bin, Buffer, [{packet_size, cap(Config)}]) of
        {ok, {http_header, _, Name0, _, Value}, Rest} ->
            Name = header_name(Name0),
            case byte_size(Name) + 2 + byte_size(Value) > Config#config.max_header_line of
                true -> {error, 431};
                false ->
                    case field_value(Value) of
                        true -> headers(Socket, Config, Rest, [{Name, Value} | Acc]);
                        false -> {error, 400}
                    end
            end;
        {ok, http_eoh, Rest} ->
            {ok, lists:reverse(Acc), Rest};
        {ok, {http_error, _}, _} ->
            {error, 400};
        {more, _} ->
            case recv_more(Socket, Buffer, Config#config.read_timeout) of
                {ok, More} -> headers(Socket, Config, More, Acc);
                %% Closed or timed out: the 400 goes nowhere, or to a client that stalled.
                error -> {error, 400}
            end;
        {error, _} ->
            %% A line over line_cap/1: the connection closes, as the socket's own parser
            %% dropped it.
            {error, closed}
    end.

%% Whether a header value holds no control character but HTAB (RFC 9110 5.5): a NUL, a bare
%% CR or the CR LF of an obsolete line folding would reach the app, and any code of it that
%% echoes or logs the value, as they are. Refused with 400, as h11 (uvicorn) refuses them.
-spec field_value(binary()) -> boolean().
field_value(<<C, Rest/binary>>) when C >= 32, C =/= 127; C =:= $\t -> field_value(Rest);
field_value(<<>>) -> true;
field_value(_) -> false.

%% The parser passes only token characters in a header name (RFC 9110 5.1: ASCII; a name with
%% any other byte is an `http_error', 400), so lowering A-Z is the whole job, without
%% string:lowercase/1's Unicode case tables (a visible part of a request's cost, per header).
-spec header_name(atom() | binary()) -> binary().
header_name(Name) when is_atom(Name) -> known_name(Name);
header_name(Name) -> py_web:lower(Name).

%% The names the parser gives as atoms (`HttpField' of erlang:decode_packet/3, the usual
%% request headers), lowered once here: a literal, not a new binary per header and request.
-spec known_name(atom()) -> binary().
known_name('Cache-Control') -> <<"cache-control">>;
known_name('Connection') -> <<"connection">>;
known_name('Date') -> <<"date">>;
known_name('Pragma') -> <<"pragma">>;
known_name('Transfer-Encoding') -> <<"transfer-encoding">>;
known_name('Upgrade') -> <<"upgrade">>;
known_name('Via') -> <<"via">>;
known_name('Accept') -> <<"accept">>;
known_name('Accept-Charset') -> <<"accept-charset">>;
known_name('Accept-Encoding') -> <<"accept-encoding">>;
known_name('Accept-Language') -> <<"accept-language">>;
known_name('Authorization') -> <<"authorization">>;
known_name('From') -> <<"from">>;
known_name('Host') -> <<"host">>;
known_name('If-Modified-Since') -> <<"if-modified-since">>;
known_name('If-Match') -> <<"if-match">>;
known_name('If-None-Match') -> <<"if-none-match">>;
known_name('If-Range') -> <<"if-range">>;
known_name('If-Unmodified-Since') -> <<"if-unmodified-since">>;
known_name('Max-Forwards') -> <<"max-forwards">>;
known_name('Proxy-Authorization') -> <<"proxy-authorization">>;
known_name('Range') -> <<"range">>;
known_name('Referer') -> <<"referer">>;
known_name('User-Agent') -> <<"user-agent">>;
known_name('Age') -> <<"age">>;
known_name('Location') -> <<"location">>;
known_name('Proxy-Authenticate') -> <<"proxy-authenticate">>;
known_name('Public') -> <<"public">>;
known_name('Retry-After') -> <<"retry-after">>;
known_name('Server') -> <<"server">>;
known_name('Vary') -> <<"vary">>;
known_name('Warning') -> <<"warning">>;
known_name('Www-Authenticate') -> <<"www-authenticate">>;
known_name('Allow') -> <<"allow">>;
known_name('Content-Base') -> <<"content-base">>;
known_name('Content-Encoding') -> <<"content-encoding">>;
known_name('Content-Language') -> <<"content-language">>;
known_name('Content-Length') -> <<"content-length">>;
known_name('Content-Location') -> <<"content-location">>;
known_name('Content-Md5') -> <<"content-md5">>;
known_name('Content-Range') -> <<"content-range">>;
known_name('Content-Type') -> <<"content-type">>;
known_name('Etag') -> <<"etag">>;
known_name('Expires') -> <<"expires">>;
known_name('Last-Modified') -> <<"last-modified">>;
known_name('Accept-Ranges') -> <<"accept-ranges">>;
known_name('Set-Cookie') -> <<"set-cookie">>;
known_name('Set-Cookie2') -> <<"set-cookie2">>;
known_name('X-Forwarded-For') -> <<"x-forwarded-for">>;
known_name('Cookie') -> <<"cookie">>;
known_name('Keep-Alive') -> <<"keep-alive">>;
known_name('Proxy-Connection') -> <<"proxy-connection">>;
known_name(Name) -> py_web:lower(atom_to_binary(Name, latin1)).

-spec method(atom() | binary()) -> binary().
method(M) when is_atom(M) -> atom_to_binary(M, latin1);
method(M) -> M.

-spec target(term()) -> {ok, binary(), binary()} | error.
target({abs_path, Target}) ->
    case no_controls(Target) of
        true -> split_target(Target);
        %% RFC 9112 3.2: the target is visible characters; a control character (a NUL, a
        %% DEL) would reach the app in its path or query string.
        false -> error
    end;
target({absoluteURI, _Scheme, _Host, _Port, Target}) ->
    target({abs_path, Target});
target(_) ->
    error.

-spec no_controls(binary()) -> boolean().
no_controls(<<C, Rest/binary>>) when C > 32, C =/= 127 -> no_controls(Rest);
no_controls(<<>>) -> true;
no_controls(_) -> false.

-spec split_target(binary()) -> {ok, binary(), binary()}.
split_target(Target) ->
    %% Not binary:split/2: with a one-byte pattern it yields (the process is scheduled out and
    %% in again) on every call on OTP 25, once per request here.
    case byte_offset(Target, $?, 0) of
        nomatch ->
            {ok, Target, <<>>};
        At ->
            <<Path:At/binary, $?, Query/binary>> = Target,
            {ok, Path, Query}
    end.

-spec dispatch(gen_tcp:socket(), #config{}, term(), term(), binary(), binary(), binary(),
               {non_neg_integer(), non_neg_integer()}, [{binary(), binary()}]) ->
    keep_alive | close.
dispatch(Socket, Config, Peer, Local, Method, Path, Query, Version, Headers) ->
    {Connections, Expects, Encodings, Lengths} = framing(Headers),
    Connection = py_web:lower(iolist_to_binary(Connections)),
    KeepAlive = case Version of
                    {1, 1} -> binary:match(Connection, <<"close">>) =:= nomatch;
                    _ -> binary:match(Connection, <<"keep-alive">>) =/= nomatch
                end,
    Upgrade = case Config#config.interface of
                  asgi -> py_http_ws:handshake(Method, Headers);
                  wsgi -> no
              end,
    case {Upgrade, body_framing(Encodings, Lengths, Config), expectation(Expects, Version)} of
        {{ok, Key, Subprotocols}, _, _} when Version =:= {1, 1} ->
            websocket(Socket, Config, Peer, Local, Path, Query, Headers, Key, Subprotocols);
        {{ok, _, _}, _, _} ->
            reject(Socket, 400),
            close;
        {{error, Why}, _, _} ->
            logger:warning("py_http: bad websocket upgrade: ~s", [Why],
                           #{domain => [erlang_python, http]}),
            reject(Socket, 400),
            close;
        {no, {ok, Body}, {ok, Continue}} ->
            Req = #req{socket = Socket, config = Config, method = Method, version = Version,
                       body = Body, keep_alive = KeepAlive,
                       no_body = Method =:= <<"HEAD">>,
                       continue = Continue andalso Body =/= done},
            serve(Req, Peer, Local, Path, Query, Headers);
        {no, {error, Status}, _} ->
            %% A body over the limit is refused before the client sends it, also when it
            %% waits for 100 Continue.
            reject(Socket, Status),
            close;
        {no, _, {error, Status}} ->
            reject(Socket, Status),
            close
    end.

%% `Expect' (RFC 9110 10.1.1): `100-continue' from an HTTP/1.1 client asks for `100 Continue'
%% before the body (sent when the body is first read); any other expectation gets 417.
-spec expectation([binary()], {non_neg_integer(), non_neg_integer()}) ->
    {ok, boolean()} | {error, 417}.
expectation(Expects, Version) ->
    case [py_web:lower(py_web:trim(V)) || V <- Expects] of
        [] -> {ok, false};
        [<<"100-continue">>] -> {ok, Version >= {1, 1}};
        _ -> {error, 417}
    end.

%% A websocket upgrade: the ASGI websocket scope, served by py_http_ws.
-spec websocket(gen_tcp:socket(), #config{}, term(), term(), binary(), binary(),
                [{binary(), binary()}], binary(), [binary()]) -> close.
websocket(Socket, Config, Peer, Local, Path, Query, Headers, Key, Subprotocols) ->
    Scope = #{type => <<"websocket">>, http_version => <<"1.1">>, scheme => <<"ws">>,
              path => percent_decode(Path), raw_path => Path, query_string => Query,
              root_path => <<>>, headers => Headers, subprotocols => Subprotocols,
              server => address(Local), client => address(Peer),
              %% The app may answer the handshake with an HTTP response (py_http_ws does it).
              extensions => #{<<"websocket.http.response">> => #{}}},
    Opts = #{max_size => Config#config.websocket_max_size,
             idle_timeout => Config#config.idle_timeout,
             read_timeout => Config#config.read_timeout,
             request_timeout => Config#config.request_timeout,
             lifespan => Config#config.lifespan,
             compression => Config#config.websocket_compression},
    py_http_ws:serve(Socket, Config#config.module, Config#config.callable, Scope, {Key, Opts}).

%% From the values of `Transfer-Encoding' and `Content-Length'.
-spec body_framing([binary()], [binary()], #config{}) ->
    {ok, {length, non_neg_integer()} | chunked | done} | {error, 400 | 413 | 501}.
body_framing(Encodings, Lengths, #config{max_body_size = Max}) ->
    case {Encodings, Lengths} of
        {[], []} ->
            {ok, done};
        {[], [Length]} ->
            case py_web:digits(py_web:trim(Length), 10) of
                error -> {error, 400};
                N when N > Max -> {error, 413};
                0 -> {ok, done};
                N -> {ok, {length, N}}
            end;
        {[TE], []} ->
            case py_web:lower(py_web:trim(TE)) of
                <<"chunked">> -> {ok, chunked};
                _ -> {error, 501}
            end;
        _ ->
            %% Both, or repeated: request smuggling territory (RFC 9112 6.3).
            {error, 400}
    end.

%% The values of the headers that decide how a request is read and answered, each in the
%% order the client sent them: `{Connection, Expect, Transfer-Encoding, Content-Length}', in
%% one pass over the headers.
-spec framing([{binary(), binary()}]) -> {[binary()], [binary()], [binary()], [binary()]}.
framing(Headers) ->
    framing(lists:reverse(Headers), [], [], [], []).

-spec framing([{binary(), binary()}], [binary()], [binary()], [binary()], [binary()]) ->
    {[binary()], [binary()], [binary()], [binary()]}.
framing([], Connections, Expects, Encodings, Lengths) ->
    {Connections, Expects, Encodings, Lengths};
framing([{<<"connection">>, V} | Rest], Connections, Expects, Encodings, Lengths) ->
    framing(Rest, [V | Connections], Expects, Encodings, Lengths);
framing([{<<"expect">>, V} | Rest], Connections, Expects, Encodings, Lengths) ->
    framing(Rest, Connections, [V | Expects], Encodings, Lengths);
framing([{<<"transfer-encoding">>, V} | Rest], Connections, Expects, Encodings, Lengths) ->
    framing(Rest, Connections, Expects, [V | Encodings], Lengths);
framing([{<<"content-length">>, V} | Rest], Connections, Expects, Encodings, Lengths) ->
    framing(Rest, Connections, Expects, Encodings, [V | Lengths]);
framing([_ | Rest], Connections, Expects, Encodings, Lengths) ->
    framing(Rest, Connections, Expects, Encodings, Lengths).

-spec serve(#req{}, term(), term(), binary(), binary(), [{binary(), binary()}]) ->
    keep_alive | close.
serve(#req{config = #config{interface = asgi}} = Req0, Peer, Local, Path, Query, Headers) ->
    case read_body(Req0, ?READ_CHUNK) of
        {error, _} ->
            %% The client went away (or timed out) before the first piece of the body.
            close;
        {First, Req1} ->
            serve_asgi(First, Req1, Peer, Local, Path, Query, Headers)
    end;
serve(#req{config = #config{interface = wsgi} = Config} = Req0, Peer, Local, Path, Query,
      Headers) ->
    serve_wsgi(Config, Req0, Peer, Local, Path, Query, Headers).

-spec serve_asgi(binary(), #req{}, term(), term(), binary(), binary(), [{binary(), binary()}]) ->
    keep_alive | close.
serve_asgi(First, #req{config = Config} = Req1, Peer, Local, Path, Query, Headers) ->
    Scope = #{type => <<"http">>, http_version => version(Req1#req.version),
              method => Req1#req.method, scheme => <<"http">>,
              path => percent_decode(Path), raw_path => Path, query_string => Query,
              root_path => <<>>, headers => Headers,
              server => address(Local), client => address(Peer)},
    Opts = #{body => First, more_body => Req1#req.body =/= done,
             timeout => Config#config.request_timeout, lifespan => Config#config.lifespan},
    Outcome = py_asgi:stream(Config#config.module, Config#config.callable, Scope,
                             fun asgi_event/2, Req1, Opts),
    finish(Outcome).

-spec serve_wsgi(#config{}, #req{}, term(), term(), binary(), binary(),
                 [{binary(), binary()}]) -> keep_alive | close.
serve_wsgi(Config, Req0, Peer, Local, Path, Query, Headers) ->
    case read_all(Req0, []) of
        {_, #req{too_large = true, socket = Socket}} ->
            reject(Socket, 413),
            close;
        {error, #req{socket = Socket}} ->
            gen_tcp:close(Socket),
            close;
        {Body, Req1} ->
            Environ = environ(Req1, Peer, Local, Path, Query, Headers),
            Opts = #{body => Body, timeout => Config#config.request_timeout},
            finish(py_wsgi:stream(Config#config.module, Config#config.callable, Environ,
                                  fun wsgi_event/2, Req1, Opts))
    end.

-spec finish({ok, #req{}} | {error, term(), #req{}}) -> keep_alive | close.
finish({ok, #req{too_large = true, response = none, socket = Socket}}) ->
    reject(Socket, 413),
    close;
finish({ok, #req{response = done, body = done, keep_alive = true}}) ->
    keep_alive;
finish({ok, _}) ->
    close;
finish({error, Reason, #req{response = Response, socket = Socket, method = Method}}) ->
    logger:error("py_http: ~s request failed: ~tp", [Method, Reason],
                 #{domain => [erlang_python, http]}),
    case Response of
        none -> reject(Socket, 500);
        {pending, _} -> reject(Socket, 500);
        _ -> ok
    end,
    close.

-spec asgi_event(py_asgi:event(), #req{}) -> {term(), #req{}}.
asgi_event(request_body, Req0) ->
    case read_body(Req0, ?READ_CHUNK) of
        {_, #req{too_large = true} = Req} -> {disconnect, Req};
        {error, Req} -> {disconnect, Req#req{keep_alive = false}};
        {Chunk, Req} -> {{body, Chunk, Req#req.body =/= done}, Req}
    end;
asgi_event({response_start, Status, Headers}, Req) ->
    start_response(status_line(Req#req.version, Status), Status, Headers, Req);
asgi_event({response_body, Chunk, More}, Req) ->
    body(Chunk, More, Req).

-spec wsgi_event(py_wsgi:event(), #req{}) -> {ok | disconnect, #req{}}.
wsgi_event({response_start, Status, Headers}, Req) ->
    Code = case Status of
               <<C:3/binary, _/binary>> -> binary_to_integer(C);
               _ -> 500
           end,
    start_response([version_text(Req#req.version), <<" ">>, Status, <<"\r\n">>], Code,
                   Headers, Req);
wsgi_event({response_body, Chunk, More}, Req) ->
    body(Chunk, More, Req).

%% Keeps the status line and headers until the first body chunk (one write for small
%% responses); adds chunked framing when the app gave no length (as uvicorn and gunicorn do).
-spec start_response(iodata(), integer(), [{binary(), binary()}], #req{}) -> {ok, #req{}}.
start_response(StatusLine, Status, Headers, #req{version = Version} = Req) ->
    HasLength = lists:any(fun({N, _}) -> is_content_length(N) end, Headers),
    NoBody = Req#req.no_body orelse Status =:= 204 orelse Status =:= 304
        orelse (Status >= 100 andalso Status < 200),
    Chunked = not HasLength andalso not NoBody andalso Version =:= {1, 1},
    KeepAlive = Req#req.keep_alive andalso (HasLength orelse Chunked orelse NoBody),
    Extra = [[<<"transfer-encoding: chunked\r\n">> || Chunked],
             [<<"connection: close\r\n">> || not KeepAlive]],
    Head = [StatusLine, <<"date: ">>, http_date(), <<"\r\n">>,
            [[N, <<": ">>, V, <<"\r\n">>] || {N, V} <- Headers], Extra, <<"\r\n">>],
    {ok, Req#req{response = {pending, Head}, chunked = Chunked, no_body = NoBody,
                 keep_alive = KeepAlive}}.

-spec is_content_length(binary()) -> boolean().
is_content_length(<<"content-length">>) -> true;
is_content_length(Name) when byte_size(Name) =:= 14 ->
    py_web:lower(Name) =:= <<"content-length">>;
is_content_length(_) -> false.

-spec body(binary(), boolean(), #req{}) -> {ok | disconnect, #req{}}.
body(Chunk, More, #req{response = Response, socket = Socket} = Req) ->
    Head = case Response of
               {pending, H} -> H;
               _ -> []
           end,
    Data = case Req of
               #req{no_body = true} -> [];
               #req{chunked = true} when Chunk =:= <<>>, More -> [];
               #req{chunked = true} when Chunk =:= <<>> -> <<"0\r\n\r\n">>;
               #req{chunked = true} when More ->
                   [integer_to_binary(byte_size(Chunk), 16), <<"\r\n">>, Chunk, <<"\r\n">>];
               #req{chunked = true} ->
                   [integer_to_binary(byte_size(Chunk), 16), <<"\r\n">>, Chunk,
                    <<"\r\n0\r\n\r\n">>];
               _ -> Chunk
           end,
    Next = case More of
               true -> sending;
               false -> done
           end,
    case send(Socket, [Head, Data]) of
        ok -> {ok, Req#req{response = Next}};
        error -> {disconnect, Req#req{response = sending, keep_alive = false}}
    end.

%% The Date header (RFC 9110 6.6.1): `Sun, 06 Nov 1994 08:49:37 GMT'; made once a second per
%% connection (formatting it was a visible part of a small response's cost).
-spec http_date() -> binary().
http_date() ->
    Now = erlang:system_time(second),
    case get('$py_http_date') of
        {Now, Date} ->
            Date;
        _ ->
            Date = format_date(calendar:system_time_to_universal_time(Now, second)),
            put('$py_http_date', {Now, Date}),
            Date
    end.

-spec format_date(calendar:datetime()) -> binary().
format_date({{Y, Mo, D} = Day, {H, Mi, S}}) ->
    Wd = element(calendar:day_of_the_week(Day),
                 {<<"Mon">>, <<"Tue">>, <<"Wed">>, <<"Thu">>, <<"Fri">>, <<"Sat">>, <<"Sun">>}),
    Mon = element(Mo, {<<"Jan">>, <<"Feb">>, <<"Mar">>, <<"Apr">>, <<"May">>, <<"Jun">>,
                       <<"Jul">>, <<"Aug">>, <<"Sep">>, <<"Oct">>, <<"Nov">>, <<"Dec">>}),
    iolist_to_binary(io_lib:format("~s, ~2..0B ~s ~4B ~2..0B:~2..0B:~2..0B GMT",
                                   [Wd, D, Mon, Y, H, Mi, S])).

-spec send(gen_tcp:socket(), iodata()) -> ok | error.
send(Socket, Data) ->
    case iolist_size(Data) of
        0 -> ok;
        _ ->
            case gen_tcp:send(Socket, Data) of
                ok -> ok;
                {error, _} -> error
            end
    end.

%% Reads up to `Max' bytes of the request body (or its next chunk, when chunked).
-spec read_body(#req{}, pos_integer()) -> {binary() | error, #req{}}.
read_body(#req{body = done} = Req, _Max) ->
    {<<>>, Req};
read_body(#req{continue = true, socket = Socket} = Req, Max) ->
    case gen_tcp:send(Socket, <<"HTTP/1.1 100 Continue\r\n\r\n">>) of
        ok -> read_body(Req#req{continue = false}, Max);
        {error, _} -> {error, Req#req{body = done, keep_alive = false}}
    end;
read_body(#req{body = {length, Left}, socket = Socket, config = Config} = Req, Max) ->
    N = min(Left, Max),
    case recv(Socket, raw, N, Config#config.read_timeout) of
        {ok, Data} ->
            Body = case Left - N of
                       0 -> done;
                       Rest -> {length, Rest}
                   end,
            {Data, Req#req{body = Body, body_read = Req#req.body_read + N}};
        {error, _} ->
            {error, Req#req{body = done}}
    end;
read_body(#req{body = chunked, socket = Socket, config = Config} = Req, _Max) ->
    case recv(Socket, line, 0, Config#config.read_timeout) of
        {ok, Line} ->
            [SizeText | _] = binary:split(py_web:trim(Line), <<";">>),
            case py_web:digits(py_web:trim(SizeText), 16) of
                error ->
                    {error, Req#req{body = done, keep_alive = false}};
                0 ->
                    trailers(Req);
                Size when Req#req.body_read + Size > Config#config.max_body_size ->
                    {<<>>, Req#req{too_large = true, body = done, keep_alive = false}};
                Size ->
                    case recv(Socket, raw, Size + 2, Config#config.read_timeout) of
                        {ok, <<Data:Size/binary, "\r\n">>} ->
                            {Data, Req#req{body_read = Req#req.body_read + Size}};
                        _ ->
                            {error, Req#req{body = done, keep_alive = false}}
                    end
            end;
        {error, _} ->
            {error, Req#req{body = done, keep_alive = false}}
    end.

%% gen_tcp:recv/3 in packet mode `Packet' (setting it fails once the client has closed).
-spec recv(gen_tcp:socket(), raw | line, non_neg_integer(), timeout()) ->
    {ok, binary()} | {error, term()}.
recv(Socket, Packet, N, Timeout) ->
    case inet:setopts(Socket, [{packet, Packet}]) of
        ok -> gen_tcp:recv(Socket, N, Timeout);
        {error, _} = Error -> Error
    end.

%% The whole request body (WSGI apps read it from wsgi.input).
-spec read_all(#req{}, [binary()]) -> {binary() | error, #req{}}.
read_all(#req{body = done} = Req, Acc) ->
    {iolist_to_binary(lists:reverse(Acc)), Req};
read_all(Req0, Acc) ->
    case read_body(Req0, ?READ_CHUNK) of
        {error, Req} -> {error, Req};
        {_, #req{too_large = true} = Req} -> {<<>>, Req};
        {Data, Req} -> read_all(Req, [Data | Acc])
    end.

-spec trailers(#req{}) -> {binary() | error, #req{}}.
trailers(#req{socket = Socket, config = Config} = Req) ->
    case gen_tcp:recv(Socket, 0, Config#config.read_timeout) of
        {ok, <<"\r\n">>} -> body_done(Req);
        {ok, <<"\n">>} -> body_done(Req);
        {ok, _Trailer} -> trailers(Req);
        {error, _} -> {error, Req#req{body = done, keep_alive = false}}
    end.

%% A chunked body read to its end: the socket goes back from `{packet, line}' to raw, as the
%% head reader of the next request (idle/4) expects it.
-spec body_done(#req{}) -> {binary() | error, #req{}}.
body_done(#req{socket = Socket} = Req) ->
    case inet:setopts(Socket, [{packet, raw}]) of
        ok -> {<<>>, Req#req{body = done}};
        {error, _} -> {error, Req#req{body = done, keep_alive = false}}
    end.

-spec environ(#req{}, term(), term(), binary(), binary(), [{binary(), binary()}]) -> map().
environ(Req, Peer, Local, Path, Query, Headers) ->
    {ServerName, ServerPort} = case address(Local) of
                                   {H, P} -> {H, integer_to_binary(P)};
                                   none -> {<<"localhost">>, <<"80">>}
                               end,
    Base = #{<<"REQUEST_METHOD">> => Req#req.method, <<"SCRIPT_NAME">> => <<>>,
             <<"PATH_INFO">> => percent_decode(Path), <<"QUERY_STRING">> => Query,
             <<"SERVER_NAME">> => ServerName, <<"SERVER_PORT">> => ServerPort,
             <<"SERVER_PROTOCOL">> => version_text(Req#req.version),
             <<"wsgi.url_scheme">> => <<"http">>},
    WithPeer = case address(Peer) of
                   {PeerHost, PeerPort} ->
                       Base#{<<"REMOTE_ADDR">> => PeerHost,
                             <<"REMOTE_PORT">> => integer_to_binary(PeerPort)};
                   none ->
                       Base
               end,
    lists:foldl(fun({<<"content-type">>, V}, Acc) -> Acc#{<<"CONTENT_TYPE">> => V};
                   ({<<"content-length">>, V}, Acc) -> Acc#{<<"CONTENT_LENGTH">> => V};
                   ({N, V}, Acc) ->
                        Key = <<"HTTP_", (cgi_name(N))/binary>>,
                        case Acc of
                            #{Key := Old} -> Acc#{Key => <<Old/binary, ",", V/binary>>};
                            #{} -> Acc#{Key => V}
                        end
                end, WithPeer, Headers).

-spec cgi_name(binary()) -> binary().
cgi_name(Name) ->
    << <<(case C of $- -> $_; _ when C >= $a, C =< $z -> C - 32; _ -> C end)>>
       || <<C>> <= Name >>.

%% An address as `{Host, Port}' with the host as text (given that way, it stays).
-spec address(term()) -> {binary(), inet:port_number()} | none.
address({IP, Port}) when is_tuple(IP) -> {list_to_binary(inet:ntoa(IP)), Port};
address({Host, Port}) when is_binary(Host) -> {Host, Port};
address(_) -> none.

-spec percent_decode(binary()) -> binary().
percent_decode(Bin) ->
    %% Most paths have nothing to decode: the same binary, not a copy made byte by byte (and
    %% not binary:match/2, which yields on every call with a one-byte pattern, see target/1).
    case byte_offset(Bin, $%, 0) of
        nomatch -> Bin;
        _ -> percent_decode(Bin, <<>>)
    end.

%% Where `Byte' first occurs in `Bin' (from offset `At'), or `nomatch'.
-spec byte_offset(binary(), byte(), non_neg_integer()) -> non_neg_integer() | nomatch.
byte_offset(Bin, Byte, At) ->
    case Bin of
        <<_:At/binary, Byte, _/binary>> -> At;
        <<_:At/binary, _, _/binary>> -> byte_offset(Bin, Byte, At + 1);
        _ -> nomatch
    end.

-spec percent_decode(binary(), binary()) -> binary().
percent_decode(<<$%, H, L, Rest/binary>>, Acc) ->
    try binary_to_integer(<<H, L>>, 16) of
        C -> percent_decode(Rest, <<Acc/binary, C>>)
    catch
        error:badarg -> percent_decode(<<H, L, Rest/binary>>, <<Acc/binary, $%>>)
    end;
percent_decode(<<C, Rest/binary>>, Acc) ->
    percent_decode(Rest, <<Acc/binary, C>>);
percent_decode(<<>>, Acc) ->
    Acc.

-spec version({non_neg_integer(), non_neg_integer()}) -> binary().
version({1, 0}) -> <<"1.0">>;
version(_) -> <<"1.1">>.

-spec version_text({non_neg_integer(), non_neg_integer()}) -> binary().
version_text({1, 0}) -> <<"HTTP/1.0">>;
version_text(_) -> <<"HTTP/1.1">>.

%% @private The status line of a response, with the reason phrase uvicorn sends.
-spec status_line({non_neg_integer(), non_neg_integer()}, integer()) -> iodata().
status_line(Version, Status) ->
    [version_text(Version), <<" ">>, integer_to_binary(Status), <<" ">>, reason(Status),
     <<"\r\n">>].

%% The reason phrases of Python's http.HTTPStatus, which uvicorn sends.
-spec reason(integer()) -> binary().
reason(100) -> <<"Continue">>;
reason(101) -> <<"Switching Protocols">>;
reason(200) -> <<"OK">>;
reason(201) -> <<"Created">>;
reason(202) -> <<"Accepted">>;
reason(204) -> <<"No Content">>;
reason(206) -> <<"Partial Content">>;
reason(301) -> <<"Moved Permanently">>;
reason(302) -> <<"Found">>;
reason(303) -> <<"See Other">>;
reason(304) -> <<"Not Modified">>;
reason(307) -> <<"Temporary Redirect">>;
reason(308) -> <<"Permanent Redirect">>;
reason(400) -> <<"Bad Request">>;
reason(401) -> <<"Unauthorized">>;
reason(403) -> <<"Forbidden">>;
reason(404) -> <<"Not Found">>;
reason(405) -> <<"Method Not Allowed">>;
reason(409) -> <<"Conflict">>;
reason(413) -> <<"Request Entity Too Large">>;
reason(414) -> <<"URI Too Long">>;
reason(415) -> <<"Unsupported Media Type">>;
reason(417) -> <<"Expectation Failed">>;
reason(418) -> <<"I'm a Teapot">>;
reason(422) -> <<"Unprocessable Entity">>;
reason(429) -> <<"Too Many Requests">>;
reason(431) -> <<"Request Header Fields Too Large">>;
reason(500) -> <<"Internal Server Error">>;
reason(501) -> <<"Not Implemented">>;
reason(502) -> <<"Bad Gateway">>;
reason(503) -> <<"Service Unavailable">>;
reason(504) -> <<"Gateway Timeout">>;
reason(_) -> <<>>.
