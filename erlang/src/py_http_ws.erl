%% @private
%% @doc The websocket side of {@link py_http}: after an upgrade request's handshake checks,
%% runs the ASGI app's websocket session ({@link py_asgi:websocket/4}) and speaks RFC 6455 on
%% the connection: the `101' answer, frames read (masked, fragmented, pings) and written, the
%% close handshake, the limits (`1009' for a message over `max_size', `1007' for text that is
%% not UTF-8, `1002' for a protocol error) and the keepalive (a ping after `idle_timeout' of
%% silence; `1011' when nothing answers within another). A refusal before the accept is a
%% `403', an app that fails before it a `500'; an app may also answer the handshake with an
%% HTTP response of its own (the ASGI `websocket.http.response' extension). Messages are
%% compressed with `permessage-deflate' (RFC 7692) when the client offers it and the
%% `compression' option is on.
-module(py_http_ws).

-export([handshake/2, serve/5]).
%% Pure parts, for the tests.
-export([accept_key/1, parse/3, frame/3, negotiate/1]).

-export_type([opts/0, settings/0]).

-type opts() :: #{
    max_size := pos_integer(),
    idle_timeout := timeout(),
    read_timeout := timeout(),
    request_timeout := timeout(),
    lifespan := boolean(),
    compression := boolean()
}.
-type settings() :: #{reset_out := boolean(), reset_in := boolean(), out_bits := 9..15,
                      in_bits := 8..15}.
%% A permessage-deflate agreement (negotiate/1): whether our compressor and the client's start
%% afresh at each message, and their windows (bits).

%% `max_size': bytes of one message (and frame; of a compressed message, once inflated);
%% `idle_timeout': silence before a ping, then before giving up; `read_timeout': the wait for
%% the client's close reply; `request_timeout': the app's wait to accept, and to end once the
%% client left; `compression': whether a client's `permessage-deflate' offer is accepted.

%% permessage-deflate, once negotiated. The zlib streams are opened at their first message,
%% and parked (closed, their history kept as a binary: at most the window, 4 KiB from us) once
%% the connection has been quiet for ?PARK_AFTER ms, so an idle websocket holds none.
-record(pmd, {
    %% The extension as the 101 answer names it.
    response :: binary(),
    %% Our compressor starts afresh at each message (the client asked for it); so does the
    %% client's, and our inflater with it.
    reset_out :: boolean(),
    reset_in :: boolean(),
    %% The window of our compressor, and the client's (what our inflater needs).
    out_bits :: 9..15,
    in_bits :: 8..15,
    out = undefined :: zlib:zstream() | undefined,
    in = undefined :: zlib:zstream() | undefined,
    %% The end of what our compressor compressed (up to its window; not kept when it starts
    %% afresh at each message), and the inflater's window when parked: the dictionaries the
    %% streams reopen with.
    out_history = <<>> :: binary(),
    in_history = <<>> :: binary()
}).

-record(ws, {
    socket :: gen_tcp:socket(),
    session :: py_asgi:websocket(),
    opts :: opts(),
    key :: binary(),
    %% handshake: waiting for the app's accept; open; closing: our close frame sent, waiting
    %% for the client's.
    %% denying: the app answers the handshake with a response of its own, whose status,
    %% headers and body so far are in `denial'.
    phase = handshake :: handshake | denying | open | closing,
    denial = none :: none | {100..599, [{binary(), binary()}], [binary()], non_neg_integer()},
    deflate = none :: none | #pmd{},
    buffer = <<>> :: binary(),
    %% The message being reassembled from fragments (reversed), and whether it is compressed.
    frag = none :: none | {text | binary, boolean(), [binary()], non_neg_integer()},
    seen = true :: boolean(),
    ping_out = false :: boolean(),
    app_done = false :: boolean(),
    %% The app asked to stop reading from the client (too many messages not received yet).
    paused = false :: boolean(),
    timer :: reference() | undefined
}).

-define(GUID, <<"258EAFA5-E914-47DA-95CA-C5AB0DC85B11">>).
%% The largest window of permessage-deflate we answer with, for our compressor and the
%% client's (see offer_answer/1), our compressor's zlib memLevel, and the smallest message it
%% compresses: below, the deflate block costs more than it saves.
-define(MAX_BITS, 12).
-define(OUT_MEM_LEVEL, 5).
-define(MIN_DEFLATE, 64).
-define(PARK_AFTER, 1000).
-define(LOG, #{domain => [erlang_python, http]}).

%% @doc Whether the request asks for a websocket: `no', `{ok, Key, Subprotocols}' for a
%% valid upgrade, or `{error, Why}' for an upgrade request that breaks RFC 6455 4.2.1.
-spec handshake(binary(), [{binary(), binary()}]) ->
    no | {ok, binary(), [binary()]} | {error, binary()}.
handshake(Method, Headers) ->
    case lists:member(<<"websocket">>, tokens(<<"upgrade">>, Headers)) of
        false -> no;
        true -> check(Method, Headers)
    end.

-spec check(binary(), [{binary(), binary()}]) -> {ok, binary(), [binary()]} | {error, binary()}.
check(Method, Headers) ->
    Key = [py_web:trim(V) || {<<"sec-websocket-key">>, V} <- Headers],
    Version = [py_web:trim(V) || {<<"sec-websocket-version">>, V} <- Headers],
    if
        Method =/= <<"GET">> -> {error, <<"a websocket upgrade must be a GET">>};
        true ->
            case {lists:member(<<"upgrade">>, tokens(<<"connection">>, Headers)), Key, Version} of
                {false, _, _} -> {error, <<"no Connection: Upgrade">>};
                {true, [K], [<<"13">>]} ->
                    case decoded_size(K) of
                        16 -> {ok, K, subprotocols(Headers)};
                        _ -> {error, <<"bad Sec-WebSocket-Key">>}
                    end;
                {true, _, [<<"13">>]} -> {error, <<"bad Sec-WebSocket-Key">>};
                {true, _, _} -> {error, <<"bad Sec-WebSocket-Version">>}
            end
    end.

-spec decoded_size(binary()) -> integer().
decoded_size(K) ->
    try byte_size(base64:decode(K)) catch error:_ -> -1 end.

-spec tokens(binary(), [{binary(), binary()}]) -> [binary()].
tokens(Name, Headers) ->
    [py_web:lower(py_web:trim(T)) || {N, V} <- Headers, N =:= Name,
                                         T <- binary:split(V, <<",">>, [global])].

-spec subprotocols([{binary(), binary()}]) -> [binary()].
subprotocols(Headers) ->
    [P || {<<"sec-websocket-protocol">>, V} <- Headers,
          T <- binary:split(V, <<",">>, [global]), P <- [py_web:trim(T)], P =/= <<>>].

%% @doc The Sec-WebSocket-Accept value for a key (RFC 6455 4.2.2).
-spec accept_key(binary()) -> binary().
accept_key(Key) ->
    base64:encode(crypto:hash(sha, <<Key/binary, ?GUID/binary>>)).

%% @doc The answer to a client's `permessage-deflate' offers (RFC 7692 7.1): `none' when it
%% made none that can be accepted, or `{ok, Extension, Settings}': the extension as the `101'
%% answer names it, whether our compressor must start afresh at each message, the window of
%% our compressor and the one the client compresses with. Offers come in order of preference;
%% one with an unknown or repeated parameter or a bad value is declined, and so is one asking
%% for `server_max_window_bits=8', which zlib cannot produce. The parameters offered are
%% answered as the `websockets' library (uvicorn's) answers them.
-spec negotiate([{binary(), binary()}]) ->
    none | {ok, binary(), settings()}.
negotiate(Headers) ->
    first_offer([py_web:trim(O) || {<<"sec-websocket-extensions">>, V} <- Headers,
                                   O <- binary:split(V, <<",">>, [global])]).

-spec first_offer([binary()]) -> none | {ok, binary(), settings()}.
first_offer([]) ->
    none;
first_offer([Offer | Rest]) ->
    [Name | Params] = binary:split(Offer, <<";">>, [global]),
    case py_web:lower(py_web:trim(Name)) of
        <<"permessage-deflate">> ->
            case offer_params(Params, #{}) of
                {ok, #{server_max_window_bits := 8}} -> first_offer(Rest);
                {ok, P} -> {ok, offer_answer(P), offer_settings(P)};
                error -> first_offer(Rest)
            end;
        _ ->
            first_offer(Rest)
    end.

-spec offer_params([binary()], map()) -> {ok, map()} | error.
offer_params([], Acc) ->
    {ok, Acc};
offer_params([Param | Rest], Acc) ->
    {Name, Value} = case binary:split(Param, <<"=">>) of
                        [N] -> {py_web:lower(py_web:trim(N)), true};
                        [N, V] -> {py_web:lower(py_web:trim(N)), unquote(py_web:trim(V))}
                    end,
    Key = case Name of
              <<"server_no_context_takeover">> when Value =:= true -> server_no_context_takeover;
              <<"client_no_context_takeover">> when Value =:= true -> client_no_context_takeover;
              <<"server_max_window_bits">> when Value =/= true -> server_max_window_bits;
              <<"client_max_window_bits">> -> client_max_window_bits;
              _ -> error
          end,
    case {Key, window_bits(Value)} of
        {error, _} -> error;
        _ when is_map_key(Key, Acc) -> error;
        {_, error} -> error;
        {_, Bits} -> offer_params(Rest, Acc#{Key => Bits})
    end.

-spec unquote(binary()) -> binary().
unquote(<<$", Rest/binary>>) when byte_size(Rest) > 0 ->
    case binary:last(Rest) of
        $" -> binary:part(Rest, 0, byte_size(Rest) - 1);
        _ -> <<$", Rest/binary>>
    end;
unquote(Value) ->
    Value.

%% A window size parameter's value (8 to 15), or `true' for a parameter without one.
-spec window_bits(true | binary()) -> true | 8..15 | error.
window_bits(true) ->
    true;
window_bits(Value) ->
    case catch binary_to_integer(Value) of
        N when is_integer(N), N >= 8, N =< 15, byte_size(Value) =< 2 -> N;
        _ -> error
    end.

%% The parameters of our answer: the flags offered, our window (12 bits at most: 2^12 bytes,
%% with zlib's memLevel 5, make about 32 KiB a connection once it sent a compressed message,
%% where 15 and 8 would take 256 KiB), and the client's when it offered to be told one, at
%% most 12 bits too: what the `websockets' library answers by default.
-spec offer_answer(map()) -> binary().
offer_answer(P) ->
    #{out_bits := Out} = Settings = offer_settings(P),
    Flags = [atom_to_binary(F) || F <- [server_no_context_takeover, client_no_context_takeover],
                                  is_map_key(F, P)],
    Client = case P of
                 #{client_max_window_bits := _} ->
                     [<<"client_max_window_bits=",
                        (integer_to_binary(maps:get(in_bits, Settings)))/binary>>];
                 #{} ->
                     []
             end,
    iolist_to_binary(lists:join(<<"; ">>, [<<"permessage-deflate">> | Flags] ++
                                    [<<"server_max_window_bits=",
                                       (integer_to_binary(Out))/binary>> | Client])).

-spec offer_settings(map()) -> settings().
offer_settings(P) ->
    #{reset_out => is_map_key(server_no_context_takeover, P),
      reset_in => is_map_key(client_no_context_takeover, P),
      out_bits => case maps:get(server_max_window_bits, P, ?MAX_BITS) of
                      Server when is_integer(Server) -> min(Server, ?MAX_BITS)
                  end,
      in_bits => case maps:get(client_max_window_bits, P, none) of
                     none -> 15;
                     true -> ?MAX_BITS;
                     Client -> min(Client, ?MAX_BITS)
                 end}.

%% @doc Runs the websocket session of `Scope' on `Socket' until it is over; the socket is
%% closed on return.
-spec serve(gen_tcp:socket(), binary(), binary(), map(), {binary(), opts()}) -> close.
serve(Socket, Module, Callable, Scope, {Key, Opts}) ->
    SessionOpts = #{timeout => maps:get(request_timeout, Opts),
                    lifespan => maps:get(lifespan, Opts)},
    case py_asgi:websocket(Module, Callable, Scope, SessionOpts) of
        {ok, Session} ->
            Timer = timer(maps:get(request_timeout, Opts), handshake),
            Deflate = case maps:get(compression, Opts) of
                          true -> deflate_settings(negotiate(maps:get(headers, Scope, [])));
                          false -> none
                      end,
            W = #ws{socket = Socket, session = Session, opts = Opts, key = Key, timer = Timer,
                    deflate = Deflate},
            case inet:setopts(Socket, [{packet, raw}, {active, once}]) of
                ok -> loop(W);
                {error, _} -> lost(W)
            end;
        {error, Reason} ->
            logger:error("py_http: websocket session failed to start: ~tp", [Reason], ?LOG),
            respond(Socket, 500, <<"Internal Server Error">>),
            gen_tcp:close(Socket),
            close
    end.

-spec deflate_settings(none | {ok, binary(), map()}) -> none | #pmd{}.
deflate_settings(none) ->
    none;
deflate_settings({ok, Answer, #{reset_out := ResetOut, reset_in := ResetIn, out_bits := Out,
                                in_bits := In}}) ->
    #pmd{response = Answer, reset_out = ResetOut, reset_in = ResetIn, out_bits = Out,
         in_bits = In}.

-spec timer(timeout(), handshake | idle) -> reference() | undefined.
timer(infinity, _) -> undefined;
timer(Ms, What) -> erlang:start_timer(Ms, self(), {py_http_ws, What}).

-spec loop(#ws{}) -> close.
loop(#ws{socket = Socket, session = Session} = W) ->
    receive
        {tcp, Socket, Data} ->
            data(W#ws{buffer = <<(W#ws.buffer)/binary, Data/binary>>, seen = true});
        {tcp_closed, Socket} ->
            lost(W);
        {tcp_error, Socket, _} ->
            lost(W);
        '$py_http_drain' ->
            %% The server stops: as uvicorn, 1012 (service restart).
            case W#ws.phase of
                Phase when Phase =:= handshake; Phase =:= denying ->
                    respond(Socket, 500, <<"Internal Server Error">>),
                    finish(W, 1012);
                open -> shut(W, 1012, <<>>);
                closing -> loop(W)
            end;
        {timeout, Timer, {py_http_ws, What}} when Timer =:= W#ws.timer ->
            tick(What, W);
        '$py_http_ws_park' ->
            %% For the tests: what a quiet connection does after ?PARK_AFTER ms.
            loop(W#ws{deflate = park(W#ws.deflate)});
        Message ->
            case py_asgi:websocket_event(Message, Session) of
                {event, Event} -> app_event(Event, W);
                {done, Result} -> app_done(Result, W#ws{app_done = true});
                unknown -> loop(W)
            end
    after parking(W#ws.deflate) ->
        loop(W#ws{deflate = park(W#ws.deflate)})
    end.

%% How long a connection with open zlib streams waits before it parks them.
-spec parking(none | #pmd{}) -> timeout().
parking(#pmd{out = undefined, in = undefined}) -> infinity;
parking(#pmd{}) -> ?PARK_AFTER;
parking(none) -> infinity.

%% The zlib streams closed, their histories kept for when they reopen.
-spec park(none | #pmd{}) -> none | #pmd{}.
park(#pmd{out = Out, in = In} = Pmd) ->
    InHistory = case In of
                    undefined ->
                        Pmd#pmd.in_history;
                    _ ->
                        Window = case Pmd#pmd.reset_in of
                                     true -> <<>>;
                                     false -> iolist_to_binary(zlib:inflateGetDictionary(In))
                                 end,
                        ok = zlib:close(In),
                        Window
                end,
    _ = Out =:= undefined orelse zlib:close(Out),
    Pmd#pmd{out = undefined, in = undefined, in_history = InHistory};
park(none) ->
    none.

%%% The app's side

-spec app_event(py_asgi:websocket_event(), #ws{}) -> close.
app_event({accept, Subprotocol, Headers}, #ws{phase = handshake, socket = Socket} = W) ->
    cancel_timer(W),
    Protocol = case Subprotocol of
                   undefined -> [];
                   _ -> [<<"sec-websocket-protocol: ">>, Subprotocol, <<"\r\n">>]
               end,
    Extension = case W#ws.deflate of
                    none -> [];
                    #pmd{response = Answer} -> [<<"sec-websocket-extensions: ">>, Answer, <<"\r\n">>]
                end,
    %% The subprotocol and the extensions are the server's to answer.
    Extra = [[N, <<": ">>, V, <<"\r\n">>]
             || {N, V} <- Headers,
                not lists:member(py_web:lower(N), [<<"sec-websocket-protocol">>,
                                                       <<"sec-websocket-extensions">>])],
    Response = [<<"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n"
                  "connection: Upgrade\r\nsec-websocket-accept: ">>, accept_key(W#ws.key),
                <<"\r\n">>, Protocol, Extension, Extra, <<"\r\n">>],
    case gen_tcp:send(Socket, Response) of
        ok ->
            Idle = timer(maps:get(idle_timeout, W#ws.opts), idle),
            %% Frames the client sent right behind its request are in the buffer already.
            data(W#ws{phase = open, timer = Idle});
        {error, _} ->
            lost(W)
    end;
app_event({close, _Code, _Reason}, #ws{phase = handshake, socket = Socket} = W) ->
    %% Refused before the accept: 403, as uvicorn.
    cancel_timer(W),
    respond(Socket, 403, <<>>),
    finish(W, 1006);
app_event({response, Status, Headers}, #ws{phase = handshake} = W) ->
    %% The app answers the handshake with a response of its own (websocket.http.response):
    %% sent whole once its last body came.
    loop(W#ws{phase = denying, denial = {Status, Headers, [], 0}});
app_event({response_body, Body, More}, #ws{phase = denying, denial = Denial} = W) ->
    ok = py_asgi:websocket_ack(W#ws.session),
    {Status, Headers, Parts, Size} = Denial,
    Size1 = Size + byte_size(Body),
    case Size1 > maps:get(max_size, W#ws.opts) of
        true ->
            cancel_timer(W),
            logger:error("py_http: websocket app's denial response is over ~b bytes",
                         [maps:get(max_size, W#ws.opts)], ?LOG),
            respond(W#ws.socket, 500, <<"Internal Server Error">>),
            finish(W, 1006);
        false when More ->
            loop(W#ws{denial = {Status, Headers, [Body | Parts], Size1}});
        false ->
            cancel_timer(W),
            deny(W, Status, Headers, lists:reverse([Body | Parts]), Size1)
    end;
app_event({Kind, Data}, #ws{phase = open, socket = Socket, session = Session} = W)
  when Kind =:= text; Kind =:= binary ->
    Op = case Kind of text -> 1; binary -> 2 end,
    {Frame, W1} = out_frame(Op, Data, W),
    case gen_tcp:send(Socket, Frame) of
        ok ->
            ok = py_asgi:websocket_ack(Session),
            loop(W1);
        {error, _} ->
            lost(W1)
    end;
app_event({close, Code, Reason}, #ws{phase = open} = W) ->
    shut(W, Code, Reason);
app_event(pause, W) ->
    loop(W#ws{paused = true});
app_event(resume, #ws{paused = true} = W) ->
    data(W#ws{paused = false});
app_event(resume, W) ->
    loop(W);
app_event(_Event, W) ->
    %% Sent while our close is out (the runner refuses anything after the app's close).
    ok = py_asgi:websocket_ack(W#ws.session),
    loop(W).

-spec app_done(ok | {error, term()}, #ws{}) -> close.
app_done(Result, #ws{phase = Phase, socket = Socket} = W)
  when Phase =:= handshake; Phase =:= denying ->
    cancel_timer(W),
    logger:error("py_http: websocket app failed before accepting: ~tp", [reason(Result)], ?LOG),
    respond(Socket, 500, <<"Internal Server Error">>),
    finish(W, 1006);
app_done(ok, #ws{phase = open} = W) ->
    shut(W, 1000, <<>>);
app_done({error, Reason}, #ws{phase = open} = W) ->
    logger:error("py_http: websocket app failed: ~tp", [Reason], ?LOG),
    shut(W, 1011, <<>>);
app_done(ok, #ws{phase = closing} = W) ->
    loop(W);
app_done({error, Reason}, #ws{phase = closing} = W) ->
    logger:error("py_http: websocket app failed: ~tp", [Reason], ?LOG),
    loop(W).

-spec reason(ok | {error, term()}) -> term().
reason(ok) -> returned_without_accepting;
reason({error, Reason}) -> Reason.

%% The app's own answer to the handshake: its status, headers and body, with a
%% content-length unless it gave one, and the connection closes.
-spec deny(#ws{}, 100..599, [{binary(), binary()}], [binary()], non_neg_integer()) -> close.
deny(#ws{socket = Socket} = W, Status, Headers, Body, Size) ->
    Names = [py_web:lower(N) || {N, _} <- Headers],
    Length = case lists:member(<<"content-length">>, Names) of
                 true -> [];
                 false -> [<<"content-length: ">>, integer_to_binary(Size), <<"\r\n">>]
             end,
    Connection = case lists:member(<<"connection">>, Names) of
                     true -> [];
                     false -> <<"connection: close\r\n">>
                 end,
    _ = gen_tcp:send(Socket, [py_http:status_line({1, 1}, Status),
                              [[N, <<": ">>, V, <<"\r\n">>] || {N, V} <- Headers],
                              Length, Connection, <<"\r\n">>, Body]),
    finish(W#ws{denial = none}, 1006).

%% The frame of an app's message: compressed (RSV1 set) when permessage-deflate is on and the
%% message is big enough to gain from it.
-spec out_frame(1 | 2, iodata(), #ws{}) -> {iodata(), #ws{}}.
out_frame(Op, Data, #ws{deflate = none} = W) ->
    {frame(Op, Data, 0), W};
out_frame(Op, Data, #ws{deflate = Pmd} = W) ->
    case iolist_size(Data) < ?MIN_DEFLATE of
        true ->
            {frame(Op, Data, 0), W};
        false ->
            Z = case Pmd#pmd.out of
                    undefined ->
                        New = zlib:open(),
                        ok = zlib:deflateInit(New, default, deflated, -Pmd#pmd.out_bits,
                                              ?OUT_MEM_LEVEL, default),
                        %% Reopened after parking: the client's window still holds what we
                        %% sent, and our next message may refer to it.
                        _ = Pmd#pmd.out_history =:= <<>> orelse
                            zlib:deflateSetDictionary(New, Pmd#pmd.out_history),
                        New;
                    Open ->
                        Open
                end,
            Plain = iolist_to_binary(Data),
            Flushed = iolist_to_binary(zlib:deflate(Z, Plain, sync)),
            %% RFC 7692 7.2.1: the sync flush's empty stored block (00 00 ff ff) is left out.
            Compressed = binary:part(Flushed, 0, byte_size(Flushed) - 4),
            Pmd1 = case Pmd#pmd.reset_out of
                       true ->
                           ok = zlib:deflateReset(Z),
                           Pmd#pmd{out = Z};
                       false ->
                           History = window_tail(Pmd#pmd.out_history, Plain, Pmd#pmd.out_bits),
                           Pmd#pmd{out = Z, out_history = History}
                   end,
            {frame(Op, Compressed, 1), W#ws{deflate = Pmd1}}
    end.

%% The last 2^Bits bytes of `Old' followed by `New' (a copy: it does not keep `New' alive).
-spec window_tail(binary(), binary(), 9..15) -> binary().
window_tail(Old, New, Bits) ->
    Max = 1 bsl Bits,
    case byte_size(New) >= Max of
        true ->
            binary:copy(binary:part(New, byte_size(New) - Max, Max));
        false ->
            Keep = min(byte_size(Old), Max - byte_size(New)),
            <<(binary:part(Old, byte_size(Old) - Keep, Keep))/binary, New/binary>>
    end.

%% A compressed message of the client, inflated: at most `max_size' bytes of it (RFC 7692
%% 7.2.2: the empty stored block the client left out is put back first).
-spec inflate(binary(), #ws{}) -> {ok, binary(), #ws{}} | {error, 1002 | 1009, binary()}.
inflate(Data, #ws{deflate = Pmd, opts = #{max_size := Max}} = W) ->
    Z = case Pmd#pmd.in of
            undefined ->
                New = zlib:open(),
                %% reset: a client that ends its deflate stream (BFINAL) may start another one
                %% in its next message.
                ok = zlib:inflateInit(New, -Pmd#pmd.in_bits, reset),
                %% Reopened after parking: the client's next message may refer to its last.
                ok = case Pmd#pmd.in_history of
                         <<>> -> ok;
                         History -> zlib:inflateSetDictionary(New, History)
                     end,
                New;
            Open when Pmd#pmd.reset_in ->
                %% A new deflate stream: also right for a client that ends each one (BFINAL).
                ok = zlib:inflateReset(Open),
                Open;
            Open ->
                Open
        end,
    W1 = W#ws{deflate = Pmd#pmd{in = Z, in_history = <<>>}},
    try inflated(Z, zlib:safeInflate(Z, [Data, <<0, 0, 255, 255>>]), Max, [], 0) of
        {ok, Plain} -> {ok, Plain, W1};
        too_big -> {error, 1009, <<"message too big once inflated">>}
    catch
        error:_ -> {error, 1002, <<"compressed message does not inflate">>}
    end.

-spec inflated(zlib:zstream(), term(), pos_integer(), [iodata()], non_neg_integer()) ->
    {ok, binary()} | too_big.
inflated(Z, {Status, Output}, Max, Acc, Size) when Status =:= continue; Status =:= finished ->
    case Size + iolist_size(Output) of
        Size1 when Size1 > Max ->
            too_big;
        Size1 when Status =:= continue ->
            inflated(Z, zlib:safeInflate(Z, []), Max, [Acc | Output], Size1);
        _ ->
            {ok, iolist_to_binary([Acc | Output])}
    end;
inflated(_Z, Other, _Max, _Acc, _Size) ->
    erlang:error({bad_inflate, Other}).

%%% The client's side

-spec data(#ws{}) -> close.
data(#ws{phase = Phase} = W) when Phase =:= handshake; Phase =:= denying ->
    %% Early frames wait in the buffer; the socket is not read further until the accept.
    loop(W);
data(#ws{paused = true, phase = open} = W) ->
    %% The app has enough to receive: the rest waits in the buffer and the socket.
    loop(W);
data(#ws{buffer = Buffer, opts = #{max_size := Max}} = W) ->
    case parse(Buffer, Max, W#ws.deflate =/= none) of
        more ->
            %% Fails (einval) once the client has closed: its tcp_closed may not come.
            case inet:setopts(W#ws.socket, [{active, once}]) of
                ok -> loop(W);
                {error, _} -> lost(W)
            end;
        {error, Code, Why} ->
            fail(W, Code, Why);
        {frame, Fin, Rsv1, Op, Payload, Rest} ->
            frame_in(Fin, Rsv1 =:= 1, Op, Payload, W#ws{buffer = Rest})
    end.

%% A frame of the client; `Compressed' (RSV1) only ever on a message's first frame.
-spec frame_in(0 | 1, boolean(), 0..15, binary(), #ws{}) -> close.
frame_in(1, false, 9, Payload, #ws{socket = Socket} = W) ->
    case gen_tcp:send(Socket, frame(10, Payload, 0)) of
        ok -> data(W);
        {error, _} -> lost(W)
    end;
frame_in(1, false, 10, _Payload, W) ->
    data(W#ws{ping_out = false});
frame_in(1, false, 8, Payload, W) ->
    case close_payload(Payload) of
        {ok, Code, Reason} -> client_close(Code, Reason, Payload, W);
        {error, Code, Why} -> fail(W, Code, Why)
    end;
frame_in(_Fin, true, Op, _Payload, W) when Op =:= 0; Op >= 8 ->
    fail(W, 1002, <<"RSV1 set on a frame that does not start a message">>);
frame_in(_Fin, false, 0, _Payload, #ws{frag = none} = W) ->
    fail(W, 1002, <<"continuation frame without a message">>);
frame_in(Fin, false, 0, Payload, #ws{frag = {Kind, Compressed, Parts, Size}} = W) ->
    message(Fin, {Kind, Compressed}, [Payload | Parts], Size + byte_size(Payload), W);
frame_in(Fin, Compressed, Op, Payload, #ws{frag = none} = W) when Op =:= 1; Op =:= 2 ->
    Kind = case Op of 1 -> text; 2 -> binary end,
    message(Fin, {Kind, Compressed}, [Payload], byte_size(Payload), W);
frame_in(_Fin, _Compressed, Op, _Payload, W) when Op =:= 1; Op =:= 2 ->
    fail(W, 1002, <<"new message inside a fragmented one">>).

-spec message(0 | 1, {text | binary, boolean()}, [binary()], non_neg_integer(), #ws{}) -> close.
message(_Fin, _Kind, _Parts, Size, #ws{opts = #{max_size := Max}} = W) when Size > Max ->
    fail(W, 1009, <<"message too big">>);
message(0, {Kind, Compressed}, Parts, Size, W) ->
    data(W#ws{frag = {Kind, Compressed, Parts, Size}});
message(1, {Kind, false}, Parts, _Size, W) ->
    deliver(Kind, iolist_to_binary(lists:reverse(Parts)), W);
message(1, {Kind, true}, Parts, _Size, W) ->
    case inflate(iolist_to_binary(lists:reverse(Parts)), W) of
        {ok, Data, W1} -> deliver(Kind, Data, W1);
        {error, Code, Why} -> fail(W, Code, Why)
    end.

%% A whole message of the client, for the app.
-spec deliver(text | binary, binary(), #ws{}) -> close.
deliver(Kind, Data, W) ->
    case Kind =:= binary orelse utf8(Data) of
        true ->
            case W of
                #ws{phase = open, app_done = false} ->
                    ok = py_asgi:websocket_deliver(W#ws.session, {Kind, Data});
                _ ->
                    ok
            end,
            data(W#ws{frag = none});
        false ->
            fail(W, 1007, <<"text message is not UTF-8">>)
    end.

-spec utf8(binary()) -> boolean().
utf8(Data) ->
    is_binary(unicode:characters_to_binary(Data, utf8, utf8)).

%% The client's close frame: its code (1005 when it has none) and reason.
-spec close_payload(binary()) -> {ok, 1000..4999, binary()} | {error, 1002 | 1007, binary()}.
close_payload(<<>>) ->
    {ok, 1005, <<>>};
close_payload(<<Code:16, Reason/binary>>) ->
    case valid_code(Code) of
        false -> {error, 1002, <<"invalid close code">>};
        true ->
            case utf8(Reason) of
                true -> {ok, Code, Reason};
                false -> {error, 1007, <<"close reason is not UTF-8">>}
            end
    end;
close_payload(_) ->
    {error, 1002, <<"one-byte close payload">>}.

%% The codes a close frame may carry (RFC 6455 7.4, and the IANA registry's 1012-1014).
-spec valid_code(integer()) -> boolean().
valid_code(Code) when Code >= 1000, Code =< 1003 -> true;
valid_code(Code) when Code >= 1007, Code =< 1014 -> true;
valid_code(Code) when Code >= 3000, Code =< 4999 -> true;
valid_code(_) -> false.

%% The client closes: the app learns it, our answer goes back (unless ours went first), the
%% connection ends.
-spec client_close(1000..4999, binary(), binary(), #ws{}) -> close.
client_close(Code, Reason, Payload, #ws{phase = open, socket = Socket} = W) ->
    %% The client's close frame echoed, as the websockets library (uvicorn's) does.
    _ = gen_tcp:send(Socket, frame(8, Payload, 0)),
    finish(W, Code, Reason);
client_close(Code, Reason, _Payload, #ws{phase = closing} = W) ->
    finish(W, Code, Reason).

%% A protocol error: our close with its code, a log entry, the connection ends.
-spec fail(#ws{}, 1002 | 1007 | 1009 | 1011, binary()) -> close.
fail(#ws{socket = Socket, phase = Phase} = W, Code, Why) ->
    Peer = case inet:peername(Socket) of
               {ok, {IP, Port}} -> [inet:ntoa(IP), $:, integer_to_list(Port)];
               _ -> "unknown peer"
           end,
    logger:warning("py_http: websocket closed with ~b (~s) for ~s", [Code, Why, Peer], ?LOG),
    _ = case Phase of
            open -> gen_tcp:send(Socket, frame(8, <<Code:16>>, 0));
            _ -> ok
        end,
    finish(W, Code).

%% Our close frame goes out; the client's answer is awaited (up to read_timeout).
-spec shut(#ws{}, 1000..4999, binary()) -> close.
shut(#ws{socket = Socket} = W, Code, Reason) ->
    cancel_timer(W),
    case gen_tcp:send(Socket, frame(8, <<Code:16, Reason/binary>>, 0)) of
        ok ->
            Timer = timer(maps:get(read_timeout, W#ws.opts), idle),
            W1 = W#ws{phase = closing, timer = Timer, ping_out = true, seen = false},
            case W1#ws.buffer of
                <<>> -> loop(W1);
                _ -> data(W1)
            end;
        {error, _} ->
            lost(W)
    end.

%% The keepalive, and the handshake's deadline.
-spec tick(handshake | idle, #ws{}) -> close.
tick(handshake, #ws{socket = Socket} = W) ->
    logger:error("py_http: websocket app did not accept within request_timeout", [], ?LOG),
    respond(Socket, 500, <<"Internal Server Error">>),
    finish(W#ws{timer = undefined}, 1006);
tick(idle, #ws{phase = closing} = W) ->
    %% No close reply from the client in time.
    finish(W#ws{timer = undefined}, 1006);
tick(idle, #ws{seen = Seen, paused = Paused} = W) when Seen; Paused ->
    %% A paused connection is not read: its silence says nothing about the client.
    loop(W#ws{seen = false, timer = timer(maps:get(idle_timeout, W#ws.opts), idle)});
tick(idle, #ws{ping_out = false, socket = Socket} = W) ->
    case gen_tcp:send(Socket, frame(9, <<>>, 0)) of
        ok ->
            loop(W#ws{ping_out = true, timer = timer(maps:get(idle_timeout, W#ws.opts), idle)});
        {error, _} ->
            lost(W#ws{timer = undefined})
    end;
tick(idle, W) ->
    fail(W#ws{timer = undefined}, 1011, <<"keepalive ping timeout">>).

%% The connection is gone without a close frame.
-spec lost(#ws{}) -> close.
lost(W) ->
    finish(W, 1006).

-spec finish(#ws{}, 1000..4999) -> close.
finish(W, Code) ->
    finish(W, Code, <<>>).

%% The connection ends: the app learns why (if it still runs), the socket closes, and the app
%% gets request_timeout to end before it is cancelled.
-spec finish(#ws{}, 1000..4999, binary()) -> close.
finish(#ws{socket = Socket, session = Session} = W, Code, Reason) ->
    cancel_timer(W),
    gen_tcp:close(Socket),
    case W#ws.app_done of
        true ->
            close;
        false ->
            ok = py_asgi:websocket_disconnect(Session, Code, Reason),
            linger(Session, py_web:deadline(maps:get(request_timeout, W#ws.opts)))
    end.

-spec linger(py_asgi:websocket(), integer() | infinity) -> close.
linger(Session, Deadline) ->
    receive
        Message ->
            case py_asgi:websocket_event(Message, Session) of
                {done, ok} ->
                    close;
                {done, {error, Reason}} ->
                    logger:error("py_http: websocket app failed: ~tp", [Reason], ?LOG),
                    close;
                _ ->
                    linger(Session, Deadline)
            end
    after py_web:remaining(Deadline) ->
        logger:warning("py_http: websocket app still running request_timeout after its client "
                       "left: cancelled", [], ?LOG),
        ok = py_asgi:websocket_cancel(Session),
        close
    end.

-spec cancel_timer(#ws{}) -> ok.
cancel_timer(#ws{timer = undefined}) ->
    ok;
cancel_timer(#ws{timer = Timer}) ->
    _ = erlang:cancel_timer(Timer),
    receive {timeout, Timer, _} -> ok after 0 -> ok end.

-spec respond(gen_tcp:socket(), 403 | 500, binary()) -> ok.
respond(Socket, Status, Body) ->
    Line = case Status of
               403 -> <<"HTTP/1.1 403 Forbidden\r\n">>;
               500 -> <<"HTTP/1.1 500 Internal Server Error\r\n">>
           end,
    %% As uvicorn, also on an empty body.
    Type = <<"content-type: text/plain; charset=utf-8\r\n">>,
    _ = gen_tcp:send(Socket, [Line, Type, <<"content-length: ">>,
                              integer_to_binary(byte_size(Body)),
                              <<"\r\nconnection: close\r\n\r\n">>, Body]),
    ok.

%%% Frames

%% @doc One frame of the client from the front of `Buffer': `{frame, Fin, Rsv1, Opcode,
%% Payload, Rest}' (unmasked), `more' when it is not complete yet, or `{error, Code, Why}' for
%% a frame the server must refuse (`1002': reserved bits (RSV1 is allowed when `Deflate', the
%% permessage-deflate extension, is on), unknown opcode, unmasked, a bad control frame;
%% `1009': longer than `Max').
-spec parse(binary(), pos_integer(), boolean()) ->
    {frame, 0 | 1, 0 | 1, 0..15, binary(), binary()} | more | {error, 1002 | 1009, binary()}.
parse(<<_:1, Rsv1:1, Rsv23:2, _:4, _/binary>>, _Max, Deflate)
  when Rsv23 =/= 0; Rsv1 =:= 1, not Deflate ->
    {error, 1002, <<"reserved bits set">>};
parse(<<_:4, Op:4, _/binary>>, _Max, _Deflate) when (Op >= 3 andalso Op =< 7) orelse Op >= 11 ->
    {error, 1002, <<"unknown opcode">>};
parse(<<_:8, 0:1, _:7, _/binary>>, _Max, _Deflate) ->
    {error, 1002, <<"unmasked client frame">>};
parse(<<Fin:1, Rsv1:1, 0:2, Op:4, 1:1, Len7:7, Rest/binary>>, Max, _Deflate) ->
    case payload_length(Len7, Rest) of
        more ->
            more;
        error ->
            {error, 1002, <<"bad payload length">>};
        {Len, _} when Op >= 8, (Len > 125 orelse Fin =:= 0) ->
            {error, 1002, <<"bad control frame">>};
        {Len, _} when Len > Max ->
            {error, 1009, <<"frame too big">>};
        {Len, After} ->
            case After of
                <<Key:4/binary, Payload:Len/binary, Rest2/binary>> ->
                    {frame, Fin, Rsv1, Op, unmask(Payload, Key), Rest2};
                _ ->
                    more
            end
    end;
parse(_, _Max, _Deflate) ->
    more.

-spec payload_length(0..127, binary()) -> {non_neg_integer(), binary()} | more | error.
payload_length(126, <<Len:16, Rest/binary>>) when Len >= 126 -> {Len, Rest};
payload_length(126, <<_:16, _/binary>>) -> error;
payload_length(126, _) -> more;
payload_length(127, <<0:1, Len:63, Rest/binary>>) when Len > 65535 -> {Len, Rest};
payload_length(127, <<_:64, _/binary>>) -> error;
payload_length(127, _) -> more;
payload_length(Len, Rest) -> {Len, Rest}.

-spec unmask(binary(), <<_:32>>) -> binary().
unmask(<<>>, _Key) ->
    <<>>;
unmask(Payload, Key) ->
    N = byte_size(Payload),
    crypto:exor(Payload, binary:part(binary:copy(Key, (N + 3) div 4), 0, N)).

%% @doc A frame of the server (unmasked, final) with opcode `Op', `Payload' and RSV1 (set on
%% a compressed message).
-spec frame(0..15, iodata(), 0 | 1) -> iodata().
frame(Op, Payload, Rsv1) ->
    Len = iolist_size(Payload),
    Size = if
               Len < 126 -> <<Len:8>>;
               Len < 65536 -> <<126:8, Len:16>>;
               true -> <<127:8, Len:64>>
           end,
    [<<1:1, Rsv1:1, 0:2, Op:4>>, Size, Payload].
