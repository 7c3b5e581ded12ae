%% @doc Call WSGI (PEP 3333) applications (Flask, Django, ...) from Erlang.
%%
%% {@link run/4} runs one request through the app on an executor and returns the whole
%% response; {@link stream/6} hands the response to a function of yours event by event, each
%% body chunk taken from the app's iterable only when the previous one was handled. The runner
%% ships in the `erlang' Python package (`erlang._wsgi'). See docs/web-frameworks.md.
-module(py_wsgi).

-export([run/3, run/4, stream/6]).

-export_type([environ/0, opts/0, event/0, handler/1]).

-type environ() :: #{binary() | atom() => binary() | integer() | atom() | tuple()}.
%% CGI variables (`REQUEST_METHOD', `PATH_INFO', `QUERY_STRING', `HTTP_*', ...) and `wsgi.*'
%% keys; `wsgi.input' may hold the request body as a binary.
-type opts() :: #{runner => binary(), timeout => timeout(), body => iodata()}.
%% `timeout' (default 30000 ms): for {@link run/4} the whole request, for {@link stream/6}
%% each pull of the app's iterable (the first one includes calling the app). `body': the request body (else `wsgi.input' of the environ, else empty).
-type event() ::
    {response_start, Status :: binary(), Headers :: [{binary(), binary()}]}
    | {response_body, Chunk :: binary(), MoreBody :: boolean()}.
-type handler(Acc) :: fun((event(), Acc) -> {ok | disconnect, Acc}).
%% Answer `disconnect' to stop: the app's iterable is closed and stream/6 returns.

-define(DEFAULT_TIMEOUT, 30000).
-define(RUNNER, <<"erlang._wsgi">>).
%% Ours, and the name erlang_python 1.6 gave it (its default `runner' option).
-define(RUNNERS, {?RUNNER, <<"hornbeam_wsgi_runner">>}).

%% @doc `run(Module, Callable, Environ, #{})'.
-spec run(binary() | atom(), binary() | atom(), environ()) ->
    {ok, {binary(), [{binary(), binary()}], binary()}} | {error, term()}.
run(Module, Callable, Environ) ->
    run(Module, Callable, Environ, #{}).

%% @doc Run one request through the WSGI app `Module:Callable' and return
%% `{ok, {Status, Headers, Body}}' (`Status' as `<<"200 OK">>'). Missing CGI variables get
%% the defaults of erlang_python 1.6. The iterable's `close()' is always called. An app that
%% raises gives `{error, {Type, Message}}'; `{error, timeout}' after `timeout' ms (the app is
%% interrupted). The `runner' option of 1.6 still works: a Python module of yours whose
%% `_run_wsgi_sync(Module, Callable, Environ)' returns the response; without it, or with 1.6's
%% default `<<"hornbeam_wsgi_runner">>', the shipped runner runs.
-spec run(binary() | atom(), binary() | atom(), environ(), opts()) ->
    {ok, {binary(), [{binary(), binary()}], binary()}} | {error, term()}.
run(Module, Callable, Environ, Opts) when is_map(Opts) ->
    Timeout = maps:get(timeout, Opts, ?DEFAULT_TIMEOUT),
    case py_web:check(Module, Callable, Opts, ?RUNNERS) of
        {ok, M, C} ->
            py:call(?RUNNER, run, [M, C, environ(Environ), run_opts(Opts)], #{}, Timeout);
        {runner, Runner, M, C} ->
            py:call(?RUNNER, run_with_runner, [Runner, M, C, environ(Environ), run_opts(Opts)],
                    #{}, Timeout)
    end.

%% @doc Run one request through the WSGI app, handing `Handler(Event, Acc)' the response
%% start, then each body chunk, pulled from the app's iterable one at a time as the handler
%% answers `ok'. One executor job calls the app and takes its first output, each further job
%% pulls the iterable once (a response of one chunk takes two jobs, an app that returns a list
%% one). Returns `{ok, Acc}' when the body ended or the handler answered `disconnect'
%% (the iterable is then closed), `{error, Reason, Acc}' when the app failed. The `runner'
%% option is refused (`{error, {unsupported, runner}, Acc}').
-spec stream(binary() | atom(), binary() | atom(), environ(), handler(Acc), Acc, opts()) ->
    {ok, Acc} | {error, term(), Acc}.
stream(Module, Callable, Environ, Handler, Acc0, Opts) when is_function(Handler, 2),
                                                             is_map(Opts) ->
    Timeout = maps:get(timeout, Opts, ?DEFAULT_TIMEOUT),
    case py_web:check(Module, Callable, Opts, ?RUNNERS) of
        {ok, M, C} ->
            Args = [M, C, environ(Environ), run_opts(Opts)],
            case py:call(?RUNNER, stream, Args, #{}, Timeout) of
                {ok, {Events, Stream}} when is_list(Events) ->
                    deliver(Events, Stream, Handler, Acc0, Timeout);
                {error, Reason} ->
                    {error, Reason, Acc0}
            end;
        {runner, _, _, _} ->
            {error, {unsupported, runner}, Acc0}
    end.

%%% Internal

%% Hands the events of one batch to the handler; then, unless the last event ended the body,
%% pulls the next batch (one pull of the app's iterable). `Stream' is `none' when the first
%% batch was the whole response.
-spec deliver([term()], term(), handler(Acc), Acc, timeout()) -> {ok, Acc} | {error, term(), Acc}.
deliver([Event | Rest], Stream, Handler, Acc, Timeout) ->
    case handle(Stream, Handler, Event, Acc) of
        {ok, Acc1} when Rest =:= [] ->
            case Event of
                {<<"response_body">>, _, false} -> {ok, Acc1};
                _ -> pull(Stream, Handler, Acc1, Timeout)
            end;
        {ok, Acc1} ->
            deliver(Rest, Stream, Handler, Acc1, Timeout);
        {disconnect, Acc1} ->
            close(Stream, Acc1, Timeout)
    end;
deliver([], Stream, Handler, Acc, Timeout) ->
    pull(Stream, Handler, Acc, Timeout).

-spec pull(term(), handler(Acc), Acc, timeout()) -> {ok, Acc} | {error, term(), Acc}.
pull(Stream, Handler, Acc, Timeout) ->
    case py_request:run(default, {next, Stream, 1}, Timeout) of
        {ok, [Events]} when is_list(Events) -> deliver(Events, Stream, Handler, Acc, Timeout);
        {done, _} -> {ok, Acc};
        {error, Reason} -> {error, Reason, Acc}
    end.

-spec handle(term(), handler(Acc), term(), Acc) -> {ok | disconnect, Acc}.
handle(Gen, Handler, Event, Acc) ->
    try Handler(py_web:event(Event), Acc) of
        {Answer, _} = Result when Answer =:= ok; Answer =:= disconnect -> Result;
        Other -> error({bad_handler_result, Other})
    catch
        Class:Reason:Stack ->
            _ = close(Gen, Acc, ?DEFAULT_TIMEOUT),
            erlang:raise(Class, Reason, Stack)
    end.

%% Closes the stream now (running the iterable's close()), rather than when its handle is
%% garbage-collected.
-spec close(term(), Acc, timeout()) -> {ok, Acc} | {error, term(), Acc}.
close(none, Acc, _Timeout) ->
    {ok, Acc};
close(Gen, Acc, Timeout) ->
    case py:call(?RUNNER, close, [Gen], #{}, Timeout) of
        {ok, _} -> {ok, Acc};
        {error, Reason} -> {error, Reason, Acc}
    end.

%% Atom keys as binaries. The runner fills in erlang_python 1.6's defaults and refuses what
%% is not a map with a TypeError, as 1.6 did.
-spec environ(term()) -> term().
environ(Environ) when is_map(Environ) ->
    maps:fold(fun(K, V, Acc) when is_atom(K) -> Acc#{atom_to_binary(K, utf8) => V};
                 (K, V, Acc) -> Acc#{K => V}
              end, #{}, Environ);
environ(Other) ->
    Other.

-spec run_opts(map()) -> map().
run_opts(#{body := Body}) -> #{body => iolist_to_binary(Body)};
run_opts(_) -> #{}.
