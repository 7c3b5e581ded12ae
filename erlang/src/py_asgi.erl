%% @doc Call ASGI 3.0 applications (FastAPI, Starlette, ...) from Erlang.
%%
%% {@link run/5} runs one HTTP request through the app and returns the whole response;
%% {@link stream/6} hands the response to a function of yours chunk by chunk, with
%% backpressure, and asks it for the request body chunk by chunk: it is what an HTTP server's
%% handler calls (cowboy, Phoenix, ours). The runner ships in the `erlang' Python package
%% (`erlang._asgi'); apps run as coroutines on erlang_python's asyncio loop, started by a
%% request on an executor like any other call, so timeouts and the death of the caller stop
%% them. The first request for an app runs its lifespan startup once, or {@link startup/2}
%% before any request; {@link shutdown/2} runs its shutdown. {@link websocket/4} runs a
%% `websocket' scope as a session bound to the calling process: it hands the app the client's
%% frames ({@link websocket_deliver/2}, {@link websocket_disconnect/3}) and gets the app's
%% messages as Erlang messages ({@link websocket_event/2}), with backpressure
%% ({@link websocket_ack/1}). See docs/web-frameworks.md.
-module(py_asgi).

-export([run/4, run/5, build_scope/1, build_scope/2, stream/6, startup/2, startup/3,
         shutdown/2]).
-export([websocket/4, websocket_event/2, websocket_deliver/2, websocket_disconnect/3,
         websocket_ack/1, websocket_cancel/1]).
%% For py_http: the servers serving an app hold its lifespan; the last to stop shuts it down.
-export(['_hold'/3, '_release'/2]).
%% Called by the runner through erlang.async_call (registered as `_py_asgi_event').
-export(['_event'/1]).

-export_type([scope/0, scope_opts/0, opts/0, event/0, handler/1,
              websocket/0, websocket_opts/0, websocket_event/0]).

-type scope() :: #{atom() | binary() => term()}.
%% The ASGI scope: `type', `method', `path', `raw_path', `query_string', `root_path',
%% `headers' (`[{Name, Value}]' or `[[Name, Value]]' of binaries), `server' and `client'
%% (`{Host, Port}'), `scheme', `http_version', `state', `extensions'; keys as atoms or binaries.
-type scope_opts() :: #{state => map(), extensions => map()}.
-type opts() :: #{
    runner => binary(),
    timeout => timeout(),
    lifespan => boolean(),
    body => binary(),
    more_body => boolean()
}.
%% `timeout' (default 30000 ms): for {@link run/5} the whole request, for {@link stream/6} the
%% wait for each next event. `lifespan' (default `true'): run the app's lifespan startup on its
%% first request. `body' and `more_body': the first request body chunk for {@link stream/6}
%% and whether more follow (asked for with `request_body' events).
-type event() ::
    {response_start, Status :: 100..599, Headers :: [{binary(), binary()}]}
    | {response_body, Chunk :: binary(), MoreBody :: boolean()}
    | request_body.
%% What {@link stream/6} hands to the handler. A `response_*' event is answered with `ok', or
%% `disconnect' when the client is gone (the app's `send' then raises an `OSError'); a
%% `request_body' event with `{body, Chunk, MoreBody}' or `disconnect'.
-type handler(Acc) :: fun((event(), Acc) -> {ok | disconnect | {body, binary(), boolean()}, Acc}).

-record(websocket, {
    tag :: reference(),
    ref :: reference(),
    mailbox :: pid()
}).
-opaque websocket() :: #websocket{}.
%% A websocket session started by {@link websocket/4}, owned by the process that started it.
-type websocket_opts() :: #{runner => binary(), timeout => timeout(), lifespan => boolean(),
                            window => pos_integer()}.
%% `timeout' (default 30000 ms): the wait for the session to start (the app imported, its
%% lifespan started). `lifespan' as for {@link opts()}. `window' (default 16): how many
%% `{text, _}' and `{binary, _}' events may wait for their {@link websocket_ack/1}; the app's
%% next send waits.
-type websocket_event() ::
    {accept, Subprotocol :: binary() | undefined, Headers :: [{binary(), binary()}]}
    | {text, binary()}
    | {binary, binary()}
    | {close, Code :: 1000..4999, Reason :: binary()}
    | {response, Status :: 100..599, Headers :: [{binary(), binary()}]}
    | {response_body, Body :: binary(), MoreBody :: boolean()}
    | pause
    | resume.
%% The app's messages: `websocket.accept' (the handshake's answer: `101', the subprotocol in
%% `Sec-WebSocket-Protocol', the headers added), `websocket.send' (a text frame, UTF-8, or a
%% binary frame), `websocket.close'. A `close' before an `accept' refuses the handshake: a
%% server answers `403' (as uvicorn does). `pause' when 64 client messages wait for the app to
%% receive them: stop reading from the client; `resume' when they are down to 16. When the
%% scope's `extensions' hold `<<"websocket.http.response">>' (the server can answer a handshake
%% with any HTTP response), the app may deny the handshake with `websocket.http.response.start'
%% and `.body' messages instead: `{response, Status, Headers}', then `{response_body, Body,
%% MoreBody}' events, each acknowledged as a `{text, _}' is, until `MoreBody' is false.

-define(DEFAULT_TIMEOUT, 30000).
-define(RUNNER, <<"erlang._asgi">>).
%% Ours, and the name erlang_python 1.6 gave it (its default `runner' option).
-define(RUNNERS, {?RUNNER, <<"hornbeam_asgi_runner">>}).
-define(EVENT_FUNCTION, <<"_py_asgi_event">>).

%% @doc `run(Module, Callable, Scope, Body, #{})'.
-spec run(binary() | atom(), binary() | atom(), scope(), iodata()) ->
    {ok, {100..599, [{binary(), binary()}], binary()}} | {error, term()}.
run(Module, Callable, Scope, Body) ->
    run(Module, Callable, Scope, Body, #{}).

%% @doc Run one HTTP request through the ASGI app `Module:Callable' with the whole request
%% `Body', and return its response: `{ok, {Status, Headers, Body}}', headers as
%% `[{Name, Value}]' binaries. Missing scope keys get the defaults of erlang_python 1.6. An app
%% that raises, or returns before its response is complete, gives `{error, {Type, Message}}';
%% `{error, timeout}' after `timeout' ms (the app is cancelled). A scope from
%% {@link build_scope/2} is accepted too. The `runner' option of erlang_python 1.6 still works:
%% a Python module of yours whose `_run_asgi_sync(Module, Callable, Scope, Body)' returns
%% `(status, headers, body)' (`{error, runner_module_required}' if it cannot be imported);
%% without it, or with 1.6's default `<<"hornbeam_asgi_runner">>', the shipped runner runs.
-spec run(binary() | atom(), binary() | atom(), scope() | reference(), iodata(), opts()) ->
    {ok, {100..599, [{binary(), binary()}], binary()}} | {error, term()}.
run(Module, Callable, Scope, Body, Opts) when is_map(Opts) ->
    Timeout = maps:get(timeout, Opts, ?DEFAULT_TIMEOUT),
    case py_web:check(Module, Callable, Opts, ?RUNNERS) of
        {ok, M, C} ->
            Args = [M, C, Scope, iolist_to_binary(Body), run_opts(Opts)],
            py:call(?RUNNER, run, Args, #{}, Timeout);
        {runner, Runner, M, C} ->
            Args = [Runner, M, C, Scope, iolist_to_binary(Body)],
            Missing = <<"No module named '", Runner/binary, "'">>,
            case py:call(?RUNNER, run_with_runner, Args, #{}, Timeout) of
                {error, {'ModuleNotFoundError', Missing}} -> {error, runner_module_required};
                Result -> Result
            end
    end.

%% @doc `build_scope(Scope, #{})'.
-spec build_scope(scope()) -> {ok, reference()} | {error, term()}.
build_scope(Scope) ->
    build_scope(Scope, #{}).

%% @doc Build the Python scope dict for `Scope' (defaults filled in, `Opts'' `state' and
%% `extensions' merged in) and return an opaque handle to it, which {@link run/5} and
%% {@link stream/6} accept as a scope; passed to `py:call' it reaches Python as a mapping
%% (`erlang._asgi.ScopeHandle', the dict in `.data'). A scope that is not a map gives
%% `{error, {'TypeError', <<"expected map for ASGI scope">>}}'.
-spec build_scope(scope(), scope_opts()) -> {ok, reference()} | {error, term()}.
build_scope(Scope, Opts) when is_map(Opts) ->
    py:call(?RUNNER, scope_handle, [Scope, Opts]).

%% @doc Run one HTTP request through the ASGI app, handing each event to
%% `Handler(Event, Acc)' in the calling process: the response start, then each body chunk as
%% the app sends it, and, while `more_body' is true, `request_body' when the app wants the next
%% request body chunk. The app's `send' of a chunk with more to come returns once the handler
%% answered, so a slow client slows the app instead of filling memory; the start goes with the
%% first chunk, and a response the app completes without waiting in between reaches the handler
%% when the app returns (or at its next wait, a background task's), in one batch. Returns `{ok, Acc}' when the app finished (also
%% after the handler answered `disconnect'), `{error, Reason, Acc}' when it failed or sent
%% nothing for `timeout' ms (it is then cancelled). The `runner' option is refused
%% (`{error, {unsupported, runner}, Acc}'). If the handler raises, the app is
%% cancelled and the exception goes on.
-spec stream(binary() | atom(), binary() | atom(), scope() | reference(), handler(Acc), Acc,
             opts()) -> {ok, Acc} | {error, term(), Acc}.
stream(Module, Callable, Scope, Handler, Acc0, Opts) when is_function(Handler, 2), is_map(Opts) ->
    case py_web:check(Module, Callable, Opts, ?RUNNERS) of
        {runner, _, _, _} ->
            {error, {unsupported, runner}, Acc0};
        {ok, M, C} ->
            case register_event_function() of
                ok ->
                    Body = iolist_to_binary(maps:get(body, Opts, <<>>)),
                    More = maps:get(more_body, Opts, false) =:= true,
                    Timeout = maps:get(timeout, Opts, ?DEFAULT_TIMEOUT),
                    %% Events come to an alias, so that none reaches this process once the
                    %% request is over (unalias/1 drops them). The processes waiting for an
                    %% answer (see '_event'/1) watch this process, and read `Over' after
                    %% sending: set before the last flush, it tells those whose event came too
                    %% late to be answered, so none outlives the request (no process is
                    %% spawned per request for it).
                    Alias = alias(),
                    Over = atomics:new(1, []),
                    %% What the runner hands back with each event, opaque to it: as one binary
                    %% it crosses as `bytes', where the alias, this pid and the flag each took
                    %% a conversion to an object of its own on the loop's thread, also for
                    %% the many responses that make no event call.
                    Peer = term_to_binary({Alias, self(), Over}),
                    Ref = py:async_call(?RUNNER, serve, [M, C, scope_arg(Scope), Body, More,
                                                         Peer, run_opts(Opts)]),
                    try
                        loop(Ref, Alias, Handler, Acc0, Timeout)
                    after
                        atomics:put(Over, 1, 1),
                        flush(Alias),
                        unalias(Alias),
                        %% An event let in after the first flush, before the alias went.
                        flush(Alias)
                    end;
                {error, Reason} ->
                    {error, Reason, Acc0}
            end
    end.

%% @doc `startup(Module, Callable, 30000)'.
-spec startup(binary() | atom(), binary() | atom()) -> ok | {error, term()}.
startup(Module, Callable) ->
    startup(Module, Callable, ?DEFAULT_TIMEOUT).

%% @doc Import the app `Module:Callable' and run its lifespan startup now, as its first request
%% would (nothing if it already ran), so that the first request does not wait for them and a
%% broken app shows before any request. `ok', or the error of the import
%% (`{error, {'ModuleNotFoundError', Msg}}', ...) or of a failed startup
%% (`{error, {'RuntimeError', <<"ASGI lifespan startup failed: ...">>}}'); `{error, timeout}'
%% after `Timeout' ms (the startup is cancelled). An app without lifespan support is only
%% imported.
-spec startup(binary() | atom(), binary() | atom(), timeout()) -> ok | {error, term()}.
startup(Module, Callable, Timeout) ->
    lifespan_call(startup, Module, Callable, Timeout).

%% @private py_http's start: {@link startup/3}, and the server holds the app's lifespan.
-spec '_hold'(binary(), binary(), timeout()) -> ok | {error, term()}.
'_hold'(Module, Callable, Timeout) ->
    lifespan_call(hold, Module, Callable, Timeout).

%% @private py_http's stop: the lifespan shutdown runs once no server holds the app.
-spec '_release'(binary(), binary()) -> ok | {error, term()}.
'_release'(Module, Callable) ->
    lifespan_call(release, Module, Callable, ?DEFAULT_TIMEOUT).

-spec lifespan_call(startup | hold | release, binary() | atom(), binary() | atom(), timeout()) ->
    ok | {error, term()}.
lifespan_call(Function, Module, Callable, Timeout) ->
    case py_web:check(Module, Callable, #{}, ?RUNNERS) of
        {ok, M, C} ->
            Ref = py:async_call(?RUNNER, atom_to_binary(Function), [M, C]),
            case py:async_await(Ref, Timeout) of
                {ok, _} -> ok;
                {error, _} = Error -> Error
            end
    end.

%% @doc Run the lifespan shutdown of `Module:Callable' (started by its first request):
%% `ok', `{error, not_started}' when it has no running lifespan, or the app's error.
-spec shutdown(binary() | atom(), binary() | atom()) -> ok | {error, term()}.
shutdown(Module, Callable) ->
    case py_web:check(Module, Callable, #{}, ?RUNNERS) of
        {ok, M, C} ->
            case py:call(?RUNNER, shutdown, [M, C]) of
                {ok, true} -> ok;
                {ok, false} -> {error, not_started};
                {error, _} = Error -> Error
            end
    end.

%% @doc Start a websocket session of the ASGI app `Module:Callable' for the `websocket' scope
%% `Scope' (`type => <<"websocket">>', `path', `headers', `subprotocols', ...; or a handle of
%% {@link build_scope/2}), bound to the calling process, its owner: `{ok, WS}' once the app is
%% running (its first `receive' gets `websocket.connect'), or `{error, Reason}' (the app cannot
%% be imported, the scope is bad, `timeout').
%%
%% The owner then gets messages that it passes to {@link websocket_event/2}: the app's
%% {@link websocket_event()}s, then the session's end. It hands the app the client's frames with
%% {@link websocket_deliver/2} and the client's departure with {@link websocket_disconnect/3},
%% and acknowledges each `{text, _}' and `{binary, _}' event with {@link websocket_ack/1} once
%% it has written it (backpressure: see `window' in {@link websocket_opts()}). Both directions
%% are independent: the app may send while the client sends nothing. If the owner dies, the
%% app is cancelled. The `runner' option is refused (`{error, {unsupported, runner}}').
-spec websocket(binary() | atom(), binary() | atom(), scope() | reference(), websocket_opts()) ->
    {ok, websocket()} | {error, term()}.
websocket(Module, Callable, Scope, Opts) when is_map(Opts) ->
    case py_web:check(Module, Callable, Opts, ?RUNNERS) of
        {runner, _, _, _} ->
            {error, {unsupported, runner}};
        {ok, M, C} ->
            Tag = make_ref(),
            PyOpts = (run_opts(Opts))#{window => maps:get(window, Opts, 16)},
            Ref = py:async_call(?RUNNER, websocket, [M, C, Scope, self(), Tag, PyOpts]),
            Timeout = maps:get(timeout, Opts, ?DEFAULT_TIMEOUT),
            receive
                {Tag, {<<"mailbox">>, Mailbox}} when is_pid(Mailbox) ->
                    {ok, #websocket{tag = Tag, ref = Ref, mailbox = Mailbox}};
                {Ref, _} = Reply ->
                    self() ! Reply,
                    case py:async_await(Ref, infinity) of
                        {error, _} = Error -> Error;
                        {ok, Other} -> {error, {no_session, Other}}
                    end
            after Timeout ->
                _ = py:async_await(Ref, 0),
                flush_tag(Tag),
                {error, timeout}
            end
    end.

%% @doc What a message the owner received means for the session `WS': `{event, Event}', a
%% message of the app; `{done, ok}' when the app ended normally (after accepting or closing,
%% or after {@link websocket_disconnect/3}); `{done, {error, Reason}}' when it raised (before an
%% `accept': a server answers `500'; after: it closes with `1011'), returned without accepting
%% or closing, or was cancelled; `unknown' for a message that is not the session's. The app's
%% events all come before its `done'; nothing of the session comes after it.
-spec websocket_event(term(), websocket()) ->
    {event, websocket_event()} | {done, ok | {error, term()}} | unknown.
websocket_event({Tag, Event}, #websocket{tag = Tag}) ->
    {event, ws_event(Event)};
websocket_event({Ref, _} = Reply, #websocket{ref = Ref, tag = Tag} = WS) ->
    receive
        {Tag, Event} ->
            %% The app's last events may arrive after its end (two senders): they go first.
            self() ! Reply,
            {event, ws_event(Event)}
    after 0 ->
        self() ! Reply,
        Done = case py:async_await(Ref, infinity) of
                   {ok, _} -> ok;
                   {error, _} = Error -> Error
               end,
        websocket_cancel(WS),
        {done, Done}
    end;
websocket_event(_Message, #websocket{}) ->
    unknown.

%% @doc Hand the app a frame of the client: a text message (UTF-8: a server checks it; an
%% invalid one reaches the app with U+FFFD in place of the bad bytes) or a binary one. The
%% app's `receive' returns it as `websocket.receive'. Always `ok' (nothing happens once the
%% session ended).
-spec websocket_deliver(websocket(), {text | binary, iodata()}) -> ok.
websocket_deliver(#websocket{mailbox = Mailbox}, {Kind, Data}) when Kind =:= text;
                                                                     Kind =:= binary ->
    Mailbox ! {Kind, iolist_to_binary(Data)},
    ok.

%% @doc Tell the app that the client is gone: its `receive' returns `websocket.disconnect' with
%% `Code' (the client's close code, `1005' when its close frame had none, `1006' when the
%% connection was lost) and `Reason', and its `send' raises an `OSError'
%% (`erlang._asgi.ClientDisconnected'). The app should then end; {@link websocket_cancel/1}
%% stops one that does not. Always `ok'.
-spec websocket_disconnect(websocket(), 1000..4999, iodata()) -> ok.
websocket_disconnect(#websocket{mailbox = Mailbox}, Code, Reason) when is_integer(Code) ->
    Mailbox ! {disconnect, Code, iolist_to_binary(Reason)},
    ok.

%% @doc Acknowledge one `{text, _}' or `{binary, _}' event: the app may send one more. Always
%% `ok'.
-spec websocket_ack(websocket()) -> ok.
websocket_ack(#websocket{mailbox = Mailbox}) ->
    Mailbox ! ack,
    ok.

%% @doc Stop the session: the app is cancelled if it still runs, and none of the session's
%% messages reach the owner afterwards (also the `done' one). `ok'. Call it from the owner.
-spec websocket_cancel(websocket()) -> ok.
websocket_cancel(#websocket{ref = Ref, tag = Tag}) ->
    %% A cancelled app's runner closes its mailbox, whose process then ends.
    _ = py:async_await(Ref, 0),
    flush_tag(Tag).

-spec ws_event(term()) -> websocket_event().
ws_event({<<"accept">>, Subprotocol, Headers}) ->
    {accept, case Subprotocol of none -> undefined; _ -> Subprotocol end, Headers};
ws_event({<<"text">>, Text}) -> {text, Text};
ws_event({<<"binary">>, Data}) -> {binary, Data};
ws_event({<<"close">>, Code, Reason}) -> {close, Code, Reason};
ws_event({<<"response">>, Status, Headers}) -> {response, Status, Headers};
ws_event({<<"response_body">>, Body, More}) -> {response_body, Body, More};
ws_event({<<"pause">>}) -> pause;
ws_event({<<"resume">>}) -> resume.

-spec flush_tag(reference()) -> ok.
flush_tag(Tag) ->
    receive
        {Tag, _} -> flush_tag(Tag)
    after 0 ->
        ok
    end.

%% @private The function the runner calls for each event (`erlang.async_call' runs it in a
%% process of its own): hands it to the process running stream/6 (through its alias) and waits
%% for the answer; `disconnect' once the request is over or that process is gone.
%%
%% No answer is lost: stream/6, when its request ends, sets `Over', answers the events already
%% sent (flush/1), deactivates the alias and answers any event let in meanwhile. An event
%% sent here before `Over' was set is in that process's queue before the first flush, so it
%% is answered; one sent later may be dropped with the alias, and the read of `Over' after the
%% send sees it set.
-spec '_event'([term()]) -> term().
'_event'([Peer, Event]) when is_binary(Peer) ->
    case peer(Peer) of
        {ok, Alias, Owner, Over} -> event(Alias, Owner, Over, Event);
        error -> error({badarg, Peer})
    end.

%% The alias, the pid and the flag stream/6 encoded into `Peer'; `error' for anything else (the
%% event function is there for any Python code to call).
-spec peer(binary()) -> {ok, reference(), pid(), atomics:atomics_ref()} | error.
peer(Peer) ->
    try binary_to_term(Peer, [safe]) of
        {Alias, Owner, Over} when is_reference(Alias), is_pid(Owner), is_reference(Over) ->
            {ok, Alias, Owner, Over};
        _ ->
            error
    catch
        error:badarg -> error
    end.

-spec event(reference(), pid(), atomics:atomics_ref(), term()) -> term().
event(Alias, Owner, Over, Event) ->
    MRef = monitor(process, Owner),
    Alias ! {'$py_asgi', Alias, self(), MRef, Event},
    case over(Over) of
        false ->
            receive
                {MRef, Answer} ->
                    demonitor(MRef, [flush]),
                    Answer;
                {'DOWN', MRef, process, _, _} ->
                    disconnect
            end;
        true ->
            %% The request is over: a flush may have answered already; this process ends with
            %% the call, and its mailbox with it.
            demonitor(MRef, [flush]),
            disconnect
    end.

%% Whether stream/6's request is over. The flag reaches here through Python (as the external
%% format), which keeps no hold on it: once stream/6 returned, it may be freed, and then
%% `Over' names no atomics any more (badarg), which means over too.
-spec over(atomics:atomics_ref()) -> boolean().
over(Over) ->
    try
        atomics:get(Over, 1) =/= 0
    catch
        error:badarg -> true
    end.

%% Registered once per application start (py_callback's table is new after a restart).
-spec register_event_function() -> ok | {error, not_started}.
register_event_function() ->
    case py_callback:is_registered(?EVENT_FUNCTION) of
        true -> ok;
        false -> py_callback:register(?EVENT_FUNCTION, {?MODULE, '_event'})
    end.

%%% Internal

-spec loop(reference(), reference(), handler(Acc), Acc, timeout()) ->
    {ok, Acc} | {error, term(), Acc}.
loop(Ref, Tag, Handler, Acc, Timeout) ->
    receive
        {'$py_asgi', Tag, From, MRef, Events} ->
            {Answer, Acc1} =
                try
                    handle(Handler, Events, Acc)
                catch
                    Class:Reason:Stack ->
                        From ! {MRef, disconnect},
                        _ = py:async_await(Ref, 0),
                        erlang:raise(Class, Reason, Stack)
                end,
            From ! {MRef, Answer},
            loop(Ref, Tag, Handler, Acc1, Timeout);
        {Ref, {'$py_callback', _, _, _}} = Callback ->
            %% A callback request of the job (not the runner's): py:async_await/2 serves it
            %% and goes on to the outcome.
            self() ! Callback,
            finish(py:async_await(Ref, infinity), Handler, Acc);
        {Ref, Reply} ->
            %% The outcome, as py:async_await/2 would give it (keeping its traceback for
            %% py:last_traceback/0), without a second trip through the mailbox.
            finish(py_request:taken(Ref, Reply), Handler, Acc)
    after Timeout ->
        finish(py:async_await(Ref, 0), Handler, Acc)
    end.

%% Runs the handler on a request for body, or on response events in order until one answers
%% disconnect.
-spec handle(handler(Acc), term(), Acc) -> {term(), Acc}.
handle(Handler, <<"request_body">>, Acc) ->
    case Handler(request_body, Acc) of
        {disconnect, _} = Result -> Result;
        {{body, Chunk, More}, _} = Result when is_binary(Chunk), is_boolean(More) -> Result;
        Other -> error({bad_handler_result, Other})
    end;
handle(_Handler, [], Acc) ->
    {ok, Acc};
handle(Handler, [Event | Events], Acc) ->
    case Handler(py_web:event(Event), Acc) of
        {ok, Acc1} -> handle(Handler, Events, Acc1);
        {disconnect, _} = Result -> Result;
        Other -> error({bad_handler_result, Other})
    end.

-spec finish(term(), handler(Acc), Acc) -> {ok, Acc} | {error, term(), Acc}.
finish({ok, {<<"events">>, Events}}, Handler, Acc) ->
    %% The response was complete when the app returned: its last events come with the result.
    {_, Acc1} = handle(Handler, Events, Acc),
    {ok, Acc1};
finish({ok, _}, _Handler, Acc) ->
    {ok, Acc};
finish({error, Reason}, _Handler, Acc) ->
    {error, Reason, Acc}.

%% Answers the events of a request nobody serves any more.
-spec flush(reference()) -> ok.
flush(Tag) ->
    receive
        {'$py_asgi', Tag, From, MRef, _} ->
            From ! {MRef, disconnect},
            flush(Tag)
    after 0 ->
        ok
    end.

%% How stream/6 hands its scope to the runner. A server's scope (the eleven keys py_http gives,
%% binaries, a list of headers and two addresses) goes in the external format: the runner reads
%% it straight into the scope dict (`erlang._native._asgi_scope'), where as an argument its
%% binaries became `str' that the runner encoded back to `bytes' on the loop's thread. A
%% handle from build_scope/2 goes as it is, and so does any other map: its values may be handles
%% that only the argument conversion resolves. Anything else is encoded too, and gets the error
%% the runner gives a scope that is no map.
-spec scope_arg(term()) -> term().
scope_arg(#{type := T, http_version := V, method := M, scheme := S, path := P, raw_path := R,
            query_string := Q, root_path := Root, headers := H, server := Server,
            client := Client} = Scope)
  when map_size(Scope) =:= 11, is_binary(T), is_binary(V), is_binary(M), is_binary(S),
       is_binary(P), is_binary(R), is_binary(Q), is_binary(Root), is_list(H),
       is_tuple(Server) orelse is_atom(Server), is_tuple(Client) orelse is_atom(Client) ->
    term_to_binary(Scope);
scope_arg(Scope) when is_map(Scope); is_reference(Scope) ->
    Scope;
scope_arg(Other) ->
    term_to_binary(Other).

-spec run_opts(map()) -> map().
run_opts(Opts) ->
    #{lifespan => maps:get(lifespan, Opts, true) =/= false}.
