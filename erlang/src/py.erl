%% @doc Run Python code in the embedded CPython interpreter.
%%
%% Requests go to a pool of executor threads inside the NIF; the calling process waits for the
%% reply in `receive', so it stays responsive to exit signals and never blocks a scheduler.
%% Unbound `call', `eval' and `exec' requests share one namespace, Python's `__main__': a
%% function defined with {@link exec/1} can be called as `py:call('__main__', Name, Args)'.
%%
%% A Python exception is returned as `{error, {Type, Message}}', where `Type' is the class name
%% (an atom for builtin exception classes and names that already exist as atoms, a binary
%% otherwise) and `Message' is `str(exc)' as a UTF-8 binary. {@link last_traceback/0} gives the
%% formatted traceback of the last such error seen by the calling process.
%%
%% When the application is not running, requests return `{error, not_started}'; requests still
%% queued or running when it stops return `{error, stopped}'.
%%
%% This module checks arguments and delegates: requests to {@link py_request}, the shared
%% state to {@link py_state}, tracing to {@link py_tracer}.
-module(py).

%% Synchronous and asynchronous requests
-export([
    call/3,
    call/4,
    call/5,
    eval/1,
    eval/2,
    eval/3,
    exec/1,
    exec/2,
    call_async/3,
    call_async/4,
    await/1,
    await/2,
    last_traceback/0
]).
%% Asyncio: coroutines and async generators
-export([
    async_call/3,
    async_call/4,
    async_await/1,
    async_await/2,
    async_gather/1,
    async_gather/2,
    async_stream/3,
    async_stream/4
]).
%% Parallel execution (own-GIL sub-interpreters, docs/parallelism.md)
-export([
    parallel/1,
    parallel/2
]).
%% Context affinity
-export([
    bind/0,
    bind/1,
    unbind/0,
    unbind/1,
    is_bound/0,
    with_context/1,
    ctx_call/4,
    ctx_call/5,
    ctx_call/6,
    ctx_eval/2,
    ctx_eval/3,
    ctx_eval/4,
    ctx_exec/2
]).
%% Streaming
-export([
    stream/3,
    stream/4,
    stream_eval/1,
    stream_eval/2,
    stream_next/1,
    stream_next/2
]).
%% Python calls Erlang
-export([
    register_function/2,
    register_function/3,
    unregister_function/1
]).
%% Information, memory and garbage collection
-export([
    version/0,
    memory_stats/0,
    gc/0,
    gc/1,
    tracemalloc_start/0,
    tracemalloc_start/1,
    tracemalloc_stop/0,
    execution_mode/0,
    num_executors/0,
    subinterp_supported/0
]).
%% Shared state
-export([
    state_fetch/1,
    state_store/2,
    state_remove/1,
    state_keys/0,
    state_clear/0,
    state_incr/1,
    state_incr/2,
    state_decr/1,
    state_decr/2
]).
%% Virtual environments, sys.path and reload
-export([
    activate_venv/1,
    deactivate_venv/0,
    venv_info/0,
    add_python_path/1,
    reload/1
]).
%% Logging
-export([
    configure_logging/0,
    configure_logging/1,
    logging_stats/0
]).
%% Tracing
-export([
    enable_tracing/0,
    disable_tracing/0,
    get_traces/0,
    clear_traces/0,
    tracing_stats/0,
    with_trace_parent/2
]).

-define(MAX_TRACE_ID, 16#ffffffffffffffffffffffffffffffff).
-define(MAX_SPAN_ID, 16#ffffffffffffffff).

-export_type([py_result/0, py_ref/0, py_generator/0, py_ctx/0, python_path_entry/0,
              request_opts/0]).

-type py_module() :: atom() | binary() | string().
-type py_func() :: atom() | binary() | string().
-type py_args() :: [term()].
%% Keyword arguments: a map, or a list of `{Name, Value}' pairs with atom names (an Elixir
%% keyword list), each name at most once; see `docs/type-conversion.md'.
-type py_kwargs() :: #{atom() | binary() | string() => term()} | [{atom(), term()}].
-type py_code() :: unicode:chardata().
-type py_result() :: {ok, term()} | {error, term()}.
-type py_ref() :: reference().
-record(py_ctx, {ref :: py_nif:context()}).
%% A context made by bind(new): an executor with a private namespace.
-opaque py_ctx() :: #py_ctx{}.
%% A directory for `sys.path': a path, `code:priv_dir(App)', or a directory inside it (see
%% add_python_path/1 and the `python_path' application variable).
-type python_path_entry() ::
    file:name_all() | {priv, atom()} | {priv, atom(), file:name_all()}.
%% What `call'/`eval' return for a Python generator or iterator: stream it with stream_next/2.
-type py_generator() :: {generator, py_nif:handle()} | py_nif:handle().

%% Options of call/5, eval/3 and exec/2 in place of a timeout: `timeout' (default 30000) and
%% `pool': `default' (the executors on the main interpreter) or `subinterp' (the own-GIL
%% sub-interpreters, see docs/parallelism.md).
-type request_opts() :: #{timeout => timeout(), pool => default | subinterp}.

%% One call of async_gather/1,2.
-type async_spec() ::
    {py_module(), py_func(), py_args()} | {py_module(), py_func(), py_args(), py_kwargs()}.

-define(DEFAULT_TIMEOUT, 30000).
-define(IS_TIMEOUT(T), (T =:= infinity orelse (is_integer(T) andalso T >= 0))).
%% The shape only: the NIF's conversion checks the names (a bad one, or a name given twice,
%% gives `{error, {'TypeError', Msg}}').
-define(IS_KWARGS(K), (is_map(K) orelse is_list(K))).

%%% Synchronous calls

%% @doc Call `Module.Func(*Args)'. Same as `call(Module, Func, Args, #{})'.
-spec call(py_module(), py_func(), py_args()) -> py_result().
call(Module, Func, Args) ->
    call(Module, Func, Args, #{}, ?DEFAULT_TIMEOUT).

%% @doc Call `Module.Func(*Args, **Kwargs)'. Same as `call(Module, Func, Args, Kwargs, 30000)'.
-spec call(py_module(), py_func(), py_args(), py_kwargs()) -> py_result().
call(Module, Func, Args, Kwargs) ->
    call(Module, Func, Args, Kwargs, ?DEFAULT_TIMEOUT).

%% @doc Call `Module.Func(*Args, **Kwargs)' and wait up to `Timeout' milliseconds.
%%
%% `Kwargs' is a map whose keys are atoms, binaries or strings, or a list of `{Name, Value}'
%% pairs whose names are atoms (an Elixir keyword list: `base: 16'), in order; every function
%% of this module that takes keyword arguments takes both. A list element that is not such a
%% pair, an improper list or a name given twice gives `{error, {'TypeError', Msg}}' and the
%% function is not called.
%%
%% The call first takes a {@link py_semaphore} slot, waiting up to `Timeout' for one, and
%% returns `{error, {overloaded, Current, Max}}' if none frees up. `Module' `` '__main__' ''
%% looks `Func' up in the shared namespace (what {@link exec/1} and {@link eval/3} defined).
%% On timeout the Python code is interrupted and `{error, timeout}' is returned; no late reply
%% reaches the caller's mailbox. If the reply was already on its way when the timeout fired,
%% that reply is returned instead.
%%
%% A coroutine result (`Func' is an `async def') is awaited on erlang_python's asyncio loop, as
%% {@link async_call/4} does, and its result returned; the executor does not wait for it. On
%% timeout its task is cancelled. A generator result gives `{ok, {generator, Handle}}'. The
%% same holds for {@link eval/3}, {@link call_async/4} and the `ctx_*' functions.
%%
%% `Opts' may be a map (see {@type request_opts()}) instead of a timeout:
%% `#{pool => subinterp}' runs the call in one of the own-GIL sub-interpreters
%% (docs/parallelism.md), where CPU-bound pure-Python code runs in parallel with other calls.
-spec call(py_module(), py_func(), py_args(), py_kwargs(), timeout() | request_opts()) ->
    py_result().
call(Module, Func, Args, Kwargs, Opts)
        when is_list(Args), ?IS_KWARGS(Kwargs), (?IS_TIMEOUT(Opts) orelse is_map(Opts)) ->
    {Where, Timeout} = request_opts(Opts),
    py_request:call(Where, {call, name(Module), name(Func), Args, Kwargs}, Timeout).

%% @doc Evaluate a Python expression. Same as `eval(Code, #{})'.
-spec eval(py_code()) -> py_result().
eval(Code) ->
    eval(Code, #{}, ?DEFAULT_TIMEOUT).

%% @doc Evaluate a Python expression with extra names. Same as `eval(Code, Locals, 30000)'.
-spec eval(py_code(), map()) -> py_result().
eval(Code, Locals) ->
    eval(Code, Locals, ?DEFAULT_TIMEOUT).

%% @doc Evaluate a Python expression (not a statement) in the shared namespace.
%%
%% `Locals' are converted and merged into the shared namespace first, so they stay visible to
%% later requests. Timeouts behave as in {@link call/5}; `eval' takes no semaphore slot. A
%% coroutine value is awaited, as in {@link call/5}.
%%
%% `Opts' may be a map (see {@type request_opts()}) instead of a timeout; with
%% `#{pool => subinterp}' the expression runs in one sub-interpreter, in its own `__main__'.
-spec eval(py_code(), map(), timeout() | request_opts()) -> py_result().
eval(Code, Locals, Opts) when is_map(Locals), (?IS_TIMEOUT(Opts) orelse is_map(Opts)) ->
    {Where, Timeout} = request_opts(Opts),
    py_request:run(Where, {eval, code(Code), Locals}, Timeout).

%% @doc Execute Python statements in the shared namespace, waiting up to 30 seconds.
-spec exec(py_code()) -> ok | {error, term()}.
exec(Code) ->
    exec(Code, ?DEFAULT_TIMEOUT).

%% @doc Execute Python statements, waiting up to `Timeout' milliseconds (or with the options
%% of {@type request_opts()}). With `#{pool => subinterp}' they run in every sub-interpreter
%% of the pool (each has its own `__main__'), so that what they define is there for the
%% requests that follow; the first error is returned.
-spec exec(py_code(), timeout() | request_opts()) -> ok | {error, term()}.
exec(Code, Opts) when ?IS_TIMEOUT(Opts) orelse is_map(Opts) ->
    {Where, Timeout} = request_opts(Opts),
    py_request:run(Where, {exec, code(Code)}, Timeout).

%% A timeout, or the options map: `{Where, Timeout}'; `badarg' for an unknown key or value.
-spec request_opts(timeout() | request_opts()) -> {default | subinterp, timeout()}.
request_opts(Timeout) when ?IS_TIMEOUT(Timeout) ->
    {default, Timeout};
request_opts(Opts) when is_map(Opts) ->
    Timeout = maps:get(timeout, Opts, ?DEFAULT_TIMEOUT),
    Pool = maps:get(pool, Opts, default),
    case maps:keys(maps:without([timeout, pool], Opts)) of
        [] when ?IS_TIMEOUT(Timeout), (Pool =:= default orelse Pool =:= subinterp) ->
            {Pool, Timeout};
        _ ->
            error(badarg, [Opts])
    end.

%%% Parallel execution

%% @doc Run the calls at once and wait up to 60 seconds. Same as `parallel(Calls, 60000)'.
-spec parallel([async_spec()]) -> {ok, [py_result()]} | {error, term()}.
parallel(Calls) ->
    parallel(Calls, 60000).

%% @doc Run every `{Module, Func, Args}' (or `{Module, Func, Args, Kwargs}') at once and wait
%% up to `Timeout' milliseconds in all.
%%
%% Returns `{ok, Results}', one `{ok, Value}' or `{error, Reason}' per call, in the order of
%% `Calls'; a call the time ran out on gives `{error, timeout}' (it is interrupted). When
%% {@link subinterp_supported/0} is true the calls run in the pool of own-GIL
%% sub-interpreters (each call in one of them; more calls than sub-interpreters wait their
%% turn), so pure-Python code runs in parallel on a GIL build; otherwise (3.11, free-threaded
%% builds) they run on the executors, which run in parallel on a free-threaded build. See
%% docs/parallelism.md for what code can run in a sub-interpreter. A malformed element gives
%% `{error, {bad_call, Element}}' before anything starts.
-spec parallel([async_spec()], timeout()) -> {ok, [py_result()]} | {error, term()}.
parallel(Calls, Timeout) when is_list(Calls), ?IS_TIMEOUT(Timeout) ->
    case [Call || Call <- Calls, not is_async_spec(Call)] of
        [] ->
            Where = case subinterp_supported() of
                        true -> subinterp;
                        false -> default
                    end,
            py_request:parallel(Where, [call_spec_request(Call) || Call <- Calls], Timeout);
        [Bad | _] ->
            {error, {bad_call, Bad}}
    end.

-spec call_spec_request(async_spec()) -> py_request:request().
call_spec_request({M, F, A}) -> {call, name(M), name(F), A, #{}};
call_spec_request({M, F, A, K}) -> {call, name(M), name(F), A, K}.

%% @doc The formatted traceback of the last Python exception returned to the calling process,
%% or `undefined' if there was none.
-spec last_traceback() -> binary() | undefined.
last_traceback() ->
    py_request:last_traceback().

%%% Asynchronous calls

%% @doc Start `Module.Func(*Args)' without waiting. Same as `call_async(Module, Func, Args, #{})'.
-spec call_async(py_module(), py_func(), py_args()) -> py_ref().
call_async(Module, Func, Args) ->
    call_async(Module, Func, Args, #{}).

%% @doc Start `Module.Func(*Args, **Kwargs)' without waiting; collect the result with
%% {@link await/2}. Takes no semaphore slot. Only the calling process can await the result.
%% A coroutine result is awaited on the asyncio loop first, as in {@link call/5}.
-spec call_async(py_module(), py_func(), py_args(), py_kwargs()) -> py_ref().
call_async(Module, Func, Args, Kwargs) when is_list(Args), ?IS_KWARGS(Kwargs) ->
    py_request:start({call, name(Module), name(Func), Args, Kwargs}).

%% @doc Wait up to 30 seconds for the result of {@link call_async/4}.
-spec await(py_ref()) -> py_result().
await(Ref) ->
    await(Ref, ?DEFAULT_TIMEOUT).

%% @doc Wait up to `Timeout' milliseconds for the result of {@link call_async/4}.
%%
%% On timeout the Python code is interrupted and `{error, timeout}' is returned; no late reply
%% reaches the mailbox afterwards. If the reply was already on its way, it is returned instead.
-spec await(py_ref(), timeout()) -> py_result().
await(Ref, Timeout) when is_reference(Ref), ?IS_TIMEOUT(Timeout) ->
    py_request:await(Ref, Timeout).

%%% Asyncio

%% @doc Start `Module.Func(*Args)', finishing an awaitable result on an asyncio event loop.
%% Same as `async_call(Module, Func, Args, #{})'.
-spec async_call(py_module(), py_func(), py_args()) -> py_ref().
async_call(Module, Func, Args) ->
    async_call(Module, Func, Args, #{}).

%% @doc Start `Module.Func(*Args, **Kwargs)' without waiting; collect the result with
%% {@link async_await/2}.
%%
%% The function is called on an executor. If it returns an awaitable (a coroutine: `Func' is an
%% `async def'), the executor hands it to the asyncio event loop that erlang_python runs in a
%% thread of its own and moves on, so any number of coroutines wait concurrently without
%% holding executors; the reply is `{ok, Result}' of the coroutine, or `{error, {Type, Msg}}'
%% with the exception's class, as for {@link call/5}. Any other result is the reply at once.
%% Once an executor has seen that `Func' is an `async def', later calls of it go straight to
%% the event loop, whose thread calls it and runs the coroutine (no executor, one thread hop;
%% docs/asyncio.md); a process bound to a context keeps using its context.
%% Takes no semaphore slot. Only the calling process can await the result; if it stops
%% waiting (timeout) or dies, the coroutine's task is cancelled.
-spec async_call(py_module(), py_func(), py_args(), py_kwargs()) -> py_ref().
async_call(Module, Func, Args, Kwargs) when is_list(Args), ?IS_KWARGS(Kwargs) ->
    py_request:start(async_request(Module, Func, Args, Kwargs, false)).

%% @doc Wait up to 30 seconds for the result of {@link async_call/4}.
-spec async_await(py_ref()) -> py_result().
async_await(Ref) ->
    await(Ref, ?DEFAULT_TIMEOUT).

%% @doc Wait up to `Timeout' milliseconds for the result of {@link async_call/4}. On timeout
%% the coroutine is cancelled and `{error, timeout}' is returned; no late reply reaches the
%% mailbox afterwards.
-spec async_await(py_ref(), timeout()) -> py_result().
async_await(Ref, Timeout) ->
    await(Ref, Timeout).

%% @doc Run the calls concurrently and wait up to 30 seconds for all of them. Same as
%% `async_gather(Calls, 30000)'.
-spec async_gather([async_spec()]) -> {ok, [term()]} | {error, term()}.
async_gather(Calls) ->
    async_gather(Calls, ?DEFAULT_TIMEOUT).

%% @doc Start every call with {@link async_call/4} (their coroutines run concurrently on the
%% event loop) and wait up to `Timeout' milliseconds in all.
%%
%% Returns `{ok, Results}' in the order of `Calls', or the error of the first call to fail,
%% as soon as it fails, after cancelling the others; `{error, timeout}' (the others cancelled
%% too) when the time runs out.
%% A malformed element gives `{error, {bad_call, Element}}' before anything starts.
-spec async_gather([async_spec()], timeout()) -> {ok, [term()]} | {error, term()}.
async_gather(Calls, Timeout) when is_list(Calls), ?IS_TIMEOUT(Timeout) ->
    case [Call || Call <- Calls, not is_async_spec(Call)] of
        [] -> py_request:gather([async_spec_request(Call) || Call <- Calls], Timeout);
        [Bad | _] -> {error, {bad_call, Bad}}
    end.

%% @doc Collect what `Module.Func(*Args)' produces, item by item. Same as
%% `async_stream(Module, Func, Args, #{})'.
-spec async_stream(py_module(), py_func(), py_args()) -> py_result().
async_stream(Module, Func, Args) ->
    async_stream(Module, Func, Args, #{}).

%% @doc Call `Module.Func(*Args, **Kwargs)' and collect its items on the asyncio event loop,
%% waiting up to 30 seconds.
%%
%% An async generator (or any async iterable, also one returned by a coroutine) gives
%% `{ok, Items}', every item it yields, in order; a plain iterator gives its items too. A
%% coroutine that returns something else gives `{ok, Value}', as in erlang_python 1.6. Errors
%% as in {@link async_call/4}.
-spec async_stream(py_module(), py_func(), py_args(), py_kwargs()) -> py_result().
async_stream(Module, Func, Args, Kwargs) when is_list(Args), ?IS_KWARGS(Kwargs) ->
    py_request:await(py_request:start(async_request(Module, Func, Args, Kwargs, true)),
                     ?DEFAULT_TIMEOUT).

-spec is_async_spec(term()) -> boolean().
is_async_spec({M, F, A}) -> is_name(M) andalso is_name(F) andalso is_list(A);
is_async_spec({M, F, A, K}) -> is_async_spec({M, F, A}) andalso ?IS_KWARGS(K);
is_async_spec(_) -> false.

-spec is_name(term()) -> boolean().
is_name(Name) ->
    try name(Name) of
        _ -> true
    catch
        error:badarg -> false
    end.

-spec async_spec_request(async_spec()) -> py_request:request().
async_spec_request({M, F, A}) -> async_request(M, F, A, #{}, false);
async_spec_request({M, F, A, K}) -> async_request(M, F, A, K, false).

-spec async_request(py_module(), py_func(), py_args(), py_kwargs(), boolean()) ->
    py_request:request().
async_request(Module, Func, Args, Kwargs, Stream) ->
    {async, name(Module), name(Func), Args, Kwargs, Stream}.

%%% Context affinity

%% @doc Bind the calling process to a context: an executor taken out of the pool, with a
%% private namespace, that runs every later `call'/`eval'/`exec' of this process until
%% {@link unbind/0} or the process's death. Idempotent. `{error, no_workers_available}' when
%% every executor is already taken; while every executor is bound, unbound requests get that
%% error too.
-spec bind() -> ok | {error, no_workers_available | not_started}.
bind() ->
    py_request:bind().

%% @doc `bind(new)': a context of its own (an executor with a private namespace), for use with
%% {@link ctx_call/6}, {@link ctx_eval/4} and {@link ctx_exec/2}. Any process may use it; it is
%% released by {@link unbind/1} or when the process that made it dies. A process may hold many.
-spec bind(new) -> {ok, py_ctx()} | {error, no_workers_available | not_started}.
bind(new) ->
    case py_request:new_context() of
        {ok, Context} -> {ok, #py_ctx{ref = Context}};
        {error, _} = Error -> Error
    end.

%% @doc Release the calling process's context (its executor goes back to the pool). Always `ok'.
-spec unbind() -> ok.
unbind() ->
    py_request:unbind().

%% @doc Release a context made by `bind(new)'. Always `ok'.
-spec unbind(py_ctx()) -> ok.
unbind(#py_ctx{ref = Context}) ->
    py_nif:context_unbind(Context).

%% @doc Whether the calling process is bound (see {@link bind/0}).
-spec is_bound() -> boolean().
is_bound() ->
    py_request:is_bound().

%% @doc Run `Fun' in a context. `Fun/0': the calling process is bound while it runs (and
%% unbound after, unless it was bound before). `Fun/1': it gets a new context, released after.
%% Raises `{badmatch, {error, Reason}}' when no context can be had, as erlang_python 1.6 does.
-spec with_context(fun(() -> Result) | fun((py_ctx()) -> Result)) -> Result.
with_context(Fun) when is_function(Fun, 0) ->
    case is_bound() of
        true ->
            Fun();
        false ->
            ok = bind(),
            try Fun() after unbind() end
    end;
with_context(Fun) when is_function(Fun, 1) ->
    {ok, Ctx} = bind(new),
    try Fun(Ctx) after unbind(Ctx) end.

%% @doc {@link call/3} in a context. Same as `ctx_call(Ctx, Module, Func, Args, #{})'.
-spec ctx_call(py_ctx(), py_module(), py_func(), py_args()) -> py_result().
ctx_call(Ctx, Module, Func, Args) ->
    ctx_call(Ctx, Module, Func, Args, #{}, ?DEFAULT_TIMEOUT).

%% @doc {@link call/4} in a context. Same as `ctx_call(Ctx, Module, Func, Args, Kwargs, 30000)'.
-spec ctx_call(py_ctx(), py_module(), py_func(), py_args(), py_kwargs()) -> py_result().
ctx_call(Ctx, Module, Func, Args, Kwargs) ->
    ctx_call(Ctx, Module, Func, Args, Kwargs, ?DEFAULT_TIMEOUT).

%% @doc {@link call/5} in the context `Ctx' (its executor and namespace; `'__main__'' names its
%% namespace). Takes a semaphore slot. Raises `error(context_not_bound)' for a released context.
-spec ctx_call(py_ctx(), py_module(), py_func(), py_args(), py_kwargs(), timeout()) ->
    py_result().
ctx_call(#py_ctx{ref = Context}, Module, Func, Args, Kwargs, Timeout)
        when is_list(Args), ?IS_KWARGS(Kwargs), ?IS_TIMEOUT(Timeout) ->
    py_request:call(Context, {call, name(Module), name(Func), Args, Kwargs}, Timeout).

%% @doc {@link eval/1} in a context.
-spec ctx_eval(py_ctx(), py_code()) -> py_result().
ctx_eval(Ctx, Code) ->
    ctx_eval(Ctx, Code, #{}, ?DEFAULT_TIMEOUT).

%% @doc {@link eval/2} in a context.
-spec ctx_eval(py_ctx(), py_code(), map()) -> py_result().
ctx_eval(Ctx, Code, Locals) ->
    ctx_eval(Ctx, Code, Locals, ?DEFAULT_TIMEOUT).

%% @doc {@link eval/3} in the context `Ctx' (locals persist in its namespace). Raises
%% `error(context_not_bound)' for a released context.
-spec ctx_eval(py_ctx(), py_code(), map(), timeout()) -> py_result().
ctx_eval(#py_ctx{ref = Context}, Code, Locals, Timeout)
        when is_map(Locals), ?IS_TIMEOUT(Timeout) ->
    py_request:run(Context, {eval, code(Code), Locals}, Timeout).

%% @doc {@link exec/1} in the context `Ctx'. Raises `error(context_not_bound)' for a released
%% context.
-spec ctx_exec(py_ctx(), py_code()) -> ok | {error, term()}.
ctx_exec(#py_ctx{ref = Context}, Code) ->
    py_request:run(Context, {exec, code(Code)}, ?DEFAULT_TIMEOUT).

%%% Streaming

%% @doc Stream `Module.Func(*Args)'. Same as `stream(Module, Func, Args, #{})'.
-spec stream(py_module(), py_func(), py_args()) -> {ok, [term()]} | {error, term()}.
stream(Module, Func, Args) ->
    stream(Module, Func, Args, #{}).

%% @doc Call `Module.Func(*Args, **Kwargs)' and collect what it yields.
%%
%% If the result is a generator or any other iterator, each item it yields becomes one element
%% of the returned list (taken in batches of 1000 per round trip; each batch has its own 30 s
%% timeout); any other result is a one-element list. An exception, whether raised by the call
%% or while iterating, gives `{error, {Type, Message}}'. For an infinite or very large iterator
%% use {@link call/3} (which returns `{ok, {generator, Handle}}') and {@link stream_next/2}.
-spec stream(py_module(), py_func(), py_args(), py_kwargs()) ->
    {ok, [term()]} | {error, term()}.
stream(Module, Func, Args, Kwargs) ->
    py_request:collect(call(Module, Func, Args, Kwargs), ?DEFAULT_TIMEOUT).

%% @doc Stream the value of a Python expression. Same as `stream_eval(Code, #{})'.
-spec stream_eval(py_code()) -> {ok, [term()]} | {error, term()}.
stream_eval(Code) ->
    stream_eval(Code, #{}).

%% @doc Evaluate an expression as {@link eval/2} does and collect what it yields, as
%% {@link stream/4} does.
-spec stream_eval(py_code(), map()) -> {ok, [term()]} | {error, term()}.
stream_eval(Code, Locals) ->
    py_request:collect(eval(Code, Locals), ?DEFAULT_TIMEOUT).

%% @doc Take up to 100 items from a Python iterator. Same as `stream_next(Gen, 100)'.
-spec stream_next(py_generator()) -> {ok, [term()]} | {done, [term()]} | {error, term()}.
stream_next(Gen) ->
    stream_next(Gen, 100).

%% @doc Take up to `Max' items from the iterator behind a `{generator, Handle}' (or the bare
%% `Handle') that {@link call/3} or {@link eval/1} returned.
%%
%% Returns `{ok, Items}' (at least one item; more may follow), `{done, Items}' when the
%% iterator is exhausted (`Items' holds the last ones, possibly none), or `{error, Reason}' for
%% an exception raised while iterating. Stopping early is fine: the Python iterator is released
%% when the handle is garbage-collected. Each call waits up to 30 s.
-spec stream_next(py_generator(), pos_integer()) ->
    {ok, [term()]} | {done, [term()]} | {error, term()}.
stream_next({generator, Handle}, Max) ->
    stream_next(Handle, Max);
stream_next(Handle, Max) when is_reference(Handle), is_integer(Max), Max > 0 ->
    py_request:run(default, {next, Handle, Max}, ?DEFAULT_TIMEOUT).

%%% Python calls Erlang

%% @doc Register `Fun' so that Python can call it as `erlang.call(Name, Args...)',
%% `erlang.Name(Args...)' or `from erlang import Name'.
%%
%% `Fun' receives one list holding all positional arguments, converted by the usual rules; its
%% result goes back to Python by the same rules. An exception in `Fun' raises
%% `erlang.ErlangError' in Python. Registering again replaces the function. The name is visible
%% at once in every Python thread. Returns `{error, not_started}' when the application is not
%% running (registrations do not survive a restart).
-spec register_function(atom() | binary(), fun((list()) -> term())) -> ok | {error, not_started}.
register_function(Name, Fun) when (is_atom(Name) orelse is_binary(Name)), is_function(Fun, 1) ->
    py_callback:register(name(Name), Fun).

%% @doc Register `Module:Function/1' under `Name' (called with the list of arguments).
-spec register_function(atom() | binary(), module(), atom()) -> ok | {error, not_started}.
register_function(Name, Module, Function)
        when (is_atom(Name) orelse is_binary(Name)), is_atom(Module), is_atom(Function) ->
    py_callback:register(name(Name), {Module, Function}).

%% @doc Forget the function registered as `Name' (also `ok' when there is none).
-spec unregister_function(atom() | binary()) -> ok | {error, not_started}.
unregister_function(Name) when is_atom(Name); is_binary(Name) ->
    py_callback:unregister(name(Name)).

%%% Information, memory and garbage collection

%% @doc The interpreter's version string (Python's `sys.version').
-spec version() -> {ok, binary()} | {error, not_started}.
version() ->
    case py_nif:interp_info() of
        #{initialized := true, python_version := Version} -> {ok, Version};
        #{} -> {error, not_started}
    end.

%% @doc Garbage-collector and `tracemalloc' figures.
%%
%% The map holds `gc_stats' (the list `gc.get_stats()' returns, one map per generation with the
%% binary keys `<<"collections">>', `<<"collected">>' and `<<"uncollectable">>'), `gc_count'
%% and `gc_threshold' (tuples), and, only while `tracemalloc' is tracing,
%% `traced_memory_current' and `traced_memory_peak' in bytes.
-spec memory_stats() -> {ok, map()} | {error, term()}.
memory_stats() ->
    try
        Stats = #{
            gc_stats => value(internal_call(<<"gc">>, <<"get_stats">>, [])),
            gc_count => value(internal_call(<<"gc">>, <<"get_count">>, [])),
            gc_threshold => value(internal_call(<<"gc">>, <<"get_threshold">>, []))
        },
        case value(internal_call(<<"tracemalloc">>, <<"is_tracing">>, [])) of
            true ->
                {Current, Peak} =
                    value(internal_call(<<"tracemalloc">>, <<"get_traced_memory">>, [])),
                {ok, Stats#{traced_memory_current => Current, traced_memory_peak => Peak}};
            false ->
                {ok, Stats}
        end
    catch
        throw:{?MODULE, Error} -> Error
    end.

%% @doc Run a full collection (`gc.collect(2)') and return the number of objects collected.
-spec gc() -> {ok, non_neg_integer()} | {error, term()}.
gc() ->
    gc(2).

%% @doc Collect generations `0' up to `Generation' (`gc.collect(Generation)').
-spec gc(0..2) -> {ok, non_neg_integer()} | {error, term()}.
gc(Generation) when is_integer(Generation), Generation >= 0, Generation =< 2 ->
    internal_call(<<"gc">>, <<"collect">>, [Generation]).

%% @doc Start tracing Python memory allocations, one frame per traceback.
-spec tracemalloc_start() -> ok | {error, term()}.
tracemalloc_start() ->
    tracemalloc_start(1).

%% @doc Start tracing Python memory allocations, keeping `Frames' frames per traceback.
-spec tracemalloc_start(pos_integer()) -> ok | {error, term()}.
tracemalloc_start(Frames) when is_integer(Frames), Frames > 0 ->
    ok_if_none(internal_call(<<"tracemalloc">>, <<"start">>, [Frames])).

%% @doc Stop tracing Python memory allocations.
-spec tracemalloc_stop() -> ok | {error, term()}.
tracemalloc_stop() ->
    ok_if_none(internal_call(<<"tracemalloc">>, <<"stop">>, [])).

%% @doc How the NIF runs Python, fixed when it was built: `multi_executor' (executor threads
%% taking turns on the GIL) or `free_threaded' (a CPython built without the GIL).
-spec execution_mode() -> free_threaded | subinterp | multi_executor.
execution_mode() ->
    maps:get(execution_mode, py_nif:interp_info()).

%% @doc The number of executor threads: the running pool's, else the configured size.
-spec num_executors() -> pos_integer().
num_executors() ->
    py_pool:num_executors().

%% @doc Whether this build runs own-GIL sub-interpreters (CPython 3.12 or later with the GIL;
%% not 3.11, not a free-threaded build): then {@link parallel/2} and the `subinterp' pool use
%% them (docs/parallelism.md).
-spec subinterp_supported() -> boolean().
subinterp_supported() ->
    maps:get(subinterp_supported, py_nif:interp_info()).

%%% Virtual environments and reload

%% @doc Make the packages of the virtual environment at `Path' importable.
%%
%% The venv's site-packages directory for the running Python (`lib/pythonX.Y/site-packages')
%% is added to `sys.path' the way `site.addsitedir' adds it: its `.pth' files are processed, so
%% editable installs work. The new entries go right before the first site-packages directory
%% already on `sys.path', so the venv's packages win over the interpreter's but never shadow
%% the standard library. `sys.prefix', `sys.executable' and the OS environment do not change.
%% A venv that is already active is deactivated first (activating it again is harmless). The
%% interpreter and its `sys' module are shared: every executor and every bound context sees the
%% change at once.
%%
%% Returns `{error, {invalid_venv, SitePackages}}' when that directory does not exist (no such
%% venv, a file, a venv for another Python) and `{error, {python_version_mismatch, VenvXY,
%% RunningXY}}' when the venv's `pyvenv.cfg' names another Python version, e.g. `<<"3.11">>'
%% and `<<"3.12">>'; in both cases nothing changes.
-spec activate_venv(Path :: binary() | string()) ->
    ok
    | {error,
        {invalid_venv, binary()}
        | {python_version_mismatch, binary(), binary()}
        | term()}.
activate_venv(Path) when is_binary(Path); is_list(Path) ->
    case internal_call(<<"erlang._venv">>, <<"activate">>, [venv_path(Path)]) of
        {ok, none} ->
            path_changed();
        {ok, {<<"invalid_venv">>, SitePackages}} ->
            {error, {invalid_venv, SitePackages}};
        {ok, {<<"python_version_mismatch">>, Venv, Running}} ->
            {error, {python_version_mismatch, Venv, Running}};
        {error, _} = Error ->
            Error
    end.

%% A binary goes as it is (Python decodes it as a file name, like `os.fsdecode'); a string must
%% be Unicode characters.
-spec venv_path(binary() | string()) -> binary().
venv_path(Path) when is_binary(Path) ->
    Path;
venv_path(Path) ->
    chars(Path).

%% @doc Undo {@link activate_venv/1}: `sys.path' is again exactly the list it was before (same
%% entries, same order; changes made to it meanwhile are dropped) and the import hooks the
%% venv's `.pth' files installed are removed. Modules already imported from the venv stay
%% imported. Returns `ok', also when no venv is active.
-spec deactivate_venv() -> ok | {error, term()}.
deactivate_venv() ->
    path_changed(ok_if_none(internal_call(<<"erlang._venv">>, <<"deactivate">>, []))).

%% @doc The active venv: `{ok, #{<<"active">> => false}}', or `{ok, #{<<"active">> => true,
%% <<"venv_path">> => Path, <<"site_packages">> => Dir, <<"sys_path">> => [Entry]}}' where
%% `Path' is absolute and `sys_path' is the current `sys.path'.
-spec venv_info() -> {ok, #{binary() => term()}} | {error, term()}.
venv_info() ->
    internal_call(<<"erlang._venv">>, <<"info">>, []).

%% @doc Put the directory `Entry' names on `sys.path' now, after the application's other
%% directories (those of the `python_path' application variable and of earlier calls), so
%% that its Python modules can be imported.
%%
%% `Entry' is a path (string or binary; a relative one is taken from the current directory),
%% `{priv, App}' (`code:priv_dir(App)') or `{priv, App, SubDir}' (the relative `SubDir' inside
%% it). The directory must exist: `{error, {not_a_directory, AbsolutePath}}' otherwise, and
%% `{error, {unknown_application, App}}' for an application the code server cannot find.
%% Adding a directory that is already one of the application's does nothing. The directory
%% stays until the application stops: the next start puts back only those of `python_path'.
%% Raises `badarg' for an `Entry' of another shape (or an empty path, or an absolute
%% `SubDir').
-spec add_python_path(python_path_entry()) ->
    ok
    | {error,
        {not_a_directory, binary()}
        | {unknown_application, atom()}
        | not_started
        | term()}.
add_python_path(Entry) ->
    case py_pool:resolve_path(Entry) of
        {ok, Dir} ->
            path_changed(ok_if_none(internal_call(<<"erlang._path">>, <<"add">>, [Dir])));
        {error, bad_entry} -> error(badarg, [Entry]);
        {error, _} = Error -> Error
    end.

%% @doc Reload the Python module `Module' (`importlib.reload') if it is imported; `ok' if it is
%% not.
%%
%% There is one interpreter, shared by every executor and context, so one reload serves them
%% all. Names bound before the reload (`from m import f', instances of its classes) keep the
%% old objects. An error in the new source is returned as `{error, {Type, Msg}}', e.g.
%% `{error, {'SyntaxError', Msg}}'.
-spec reload(py_module()) -> ok | {error, term()}.
reload(Module) ->
    ok_if_none(internal_call(<<"erlang._venv">>, <<"reload">>, [name(Module)])).

%%% Shared state

%% @doc The value stored under `Key' in the shared state, or `{error, not_found}'. See
%% {@link py_state} and `docs/state.md'. Every `state_*' function returns
%% `{error, not_started}' when the application is not running.
-spec state_fetch(term()) -> {ok, term()} | {error, not_found | not_started}.
state_fetch(Key) ->
    py_state:if_running(fun() -> py_state:fetch(Key) end).

%% @doc Store `Value' under `Key' in the shared state (Python reads it with
%% `erlang.state_get'; use binary keys to share with Python). Creating a key past the
%% `state_max_keys' bound returns `{error, {state_full, Max}}'.
-spec state_store(term(), term()) -> ok | py_state:full() | {error, not_started}.
state_store(Key, Value) ->
    py_state:if_running(fun() -> py_state:store(Key, Value) end).

%% @doc Remove `Key' from the shared state (also `ok' when it is not there).
-spec state_remove(term()) -> ok | {error, not_started}.
state_remove(Key) ->
    py_state:if_running(fun() -> py_state:remove(Key) end).

%% @doc Every key of the shared state (`[]' when it is empty).
-spec state_keys() -> [term()] | {error, not_started}.
state_keys() ->
    py_state:if_running(fun py_state:keys/0).

%% @doc Remove every key of the shared state.
-spec state_clear() -> ok | {error, not_started}.
state_clear() ->
    py_state:if_running(fun py_state:clear/0).

%% @doc `state_incr(Key, 1)'.
-spec state_incr(term()) -> integer() | py_state:full() | {error, not_started}.
state_incr(Key) ->
    py_state:if_running(fun() -> py_state:incr(Key) end).

%% @doc Atomically add `N' to the integer under `Key' and return the new value; a missing key
%% counts from 0. Raises `badarg' when the value is not an integer.
-spec state_incr(term(), integer()) -> integer() | py_state:full() | {error, not_started}.
state_incr(Key, N) ->
    py_state:if_running(fun() -> py_state:incr(Key, N) end).

%% @doc `state_incr(Key, -1)'.
-spec state_decr(term()) -> integer() | py_state:full() | {error, not_started}.
state_decr(Key) ->
    py_state:if_running(fun() -> py_state:decr(Key) end).

%% @doc `state_incr(Key, -N)'.
-spec state_decr(term(), integer()) -> integer() | py_state:full() | {error, not_started}.
state_decr(Key, N) ->
    py_state:if_running(fun() -> py_state:decr(Key, N) end).

%%% Logging

%% @doc `configure_logging(#{})'.
-spec configure_logging() -> ok | {error, term()}.
configure_logging() ->
    configure_logging(#{}).

%% @doc Send Python `logging' records to OTP `logger' (see `docs/logging.md').
%%
%% Installs one `erlang.ErlangHandler' on Python's root logger (replacing the one a previous
%% call installed, so calling twice does not duplicate records), sets the root logger's level
%% and the native threshold below which records are dropped before any term is built.
%% Options: `level' (`debug' | `info' | `warning' | `error' | `critical', default `debug') and
%% `format' (a `logging.Formatter' format string, binary or string; default `"%(message)s"').
%% The format is passed to Python as a value, never spliced into source. Raises `badarg' for
%% an unknown level or a format that is not text.
-spec configure_logging(#{level => py_logger:level(), format => unicode:chardata()}) ->
    ok | {error, term()}.
configure_logging(Opts) when is_map(Opts) ->
    Level = py_logger:level_number(maps:get(level, Opts, debug)),
    Format =
        case maps:find(format, Opts) of
            error -> none;
            {ok, F} -> chars(F)
        end,
    ok = py_nif:log_set_threshold(Level),
    ok_if_none(internal_call(<<"erlang._logging">>, <<"setup_logging">>, [Level, Format]));
configure_logging(Opts) ->
    error(badarg, [Opts]).

%% @doc How Python log records fared: `dropped' (past the in-flight bound, since the NIF
%% loaded), `in_flight' (sent to `py_logger', not yet handled), `max_in_flight' (the bound,
%% application variable `log_max_in_flight'), `threshold' (the native level threshold, in
%% Python's numbers) and `diagnostics_dropped' (the NIF's own diagnostics dropped because too
%% many were waiting to be sent).
-spec logging_stats() ->
    #{
        dropped := non_neg_integer(),
        in_flight := non_neg_integer(),
        max_in_flight := pos_integer(),
        threshold := integer(),
        diagnostics_dropped := non_neg_integer()
    }.
logging_stats() ->
    py_nif:log_stats().

%%% Tracing

%% @doc Record the spans that Python code finishes from now on (`erlang.Span',
%% `erlang.trace'; see `docs/logging.md'). `{error, not_started}' when the application is not
%% running.
-spec enable_tracing() -> ok | {error, not_started}.
enable_tracing() ->
    tracer(fun py_tracer:enable/0).

%% @doc Stop recording spans. The spans collected so far are kept; spans still open finish
%% unrecorded.
-spec disable_tracing() -> ok | {error, not_started}.
disable_tracing() ->
    tracer(fun py_tracer:disable/0).

%% @doc The collected spans in completion order (a child before its parent), including every
%% span finished by a request that has returned. Each span is a map with the keys `name',
%% `trace_id', `span_id', `parent_id' (`undefined' for a root), `attributes', `start_time',
%% `end_time', `duration_us', `status' (`ok' | `error'), `end_attrs' and `events' (newest
%% first). At most `trace_max_spans' (application variable) are kept: older ones are dropped.
-spec get_traces() -> {ok, [py_tracer:span()]} | {error, not_started}.
get_traces() ->
    tracer(fun py_tracer:get_spans/0).

%% @doc Drop the collected spans, and those finished but not collected yet.
-spec clear_traces() -> ok | {error, not_started}.
clear_traces() ->
    tracer(fun py_tracer:clear/0).

%% @doc Tracing counters: `enabled', `stored' (spans kept), `max_spans' (their bound,
%% application variable `trace_max_spans'), `dropped' (oldest spans dropped past that bound),
%% `in_flight' (spans sent to the collector, not yet handled), `max_in_flight' (their bound,
%% application variable `trace_max_in_flight') and `dropped_in_flight' (spans dropped because
%% too many were in flight, since the NIF loaded).
-spec tracing_stats() -> py_tracer:stats() | {error, not_started}.
tracing_stats() ->
    tracer(fun py_tracer:stats/0).

%% @doc Run `Fun' with `{TraceId, SpanId}' as the parent of the Python spans that this
%% process's requests start with no Python parent (`call', `eval', `exec' and the requests
%% nested in their callbacks): they join trace `TraceId' as children of span `SpanId'. Spans
%% nested in those follow as usual. `undefined' runs `Fun' with no parent. The previous parent
%% is restored afterwards, also when `Fun' raises; a process that dies drops its parent.
%% `TraceId' is an integer in [0, 2^128), `SpanId' in [0, 2^64); anything else raises `badarg'.
-spec with_trace_parent({non_neg_integer(), non_neg_integer()} | undefined, fun(() -> T)) -> T.
with_trace_parent(Parent, Fun) when is_function(Fun, 0) ->
    case Parent of
        undefined ->
            ok;
        {TraceId, SpanId} when
            is_integer(TraceId), TraceId >= 0, TraceId =< ?MAX_TRACE_ID,
            is_integer(SpanId), SpanId >= 0, SpanId =< ?MAX_SPAN_ID
        ->
            ok;
        _ ->
            error(badarg, [Parent, Fun])
    end,
    Previous = py_nif:trace_parent_swap(Parent),
    try
        Fun()
    after
        py_nif:trace_parent_swap(Previous)
    end;
with_trace_parent(Parent, Fun) ->
    error(badarg, [Parent, Fun]).

%%% Internal

%% Calls to py_tracer, which runs while the application does.
-spec tracer(fun(() -> T)) -> T | {error, not_started}.
tracer(Call) ->
    try
        Call()
    catch
        exit:{noproc, _} -> {error, not_started}
    end.

%% Calls made on the application's own behalf: no semaphore slot, default timeout.
-spec internal_call(binary(), binary(), py_args()) -> py_result().
internal_call(Module, Func, Args) ->
    py_request:run(default, {call, Module, Func, Args, #{}}, ?DEFAULT_TIMEOUT).

-spec name(py_module() | py_func()) -> binary().
name(Name) when is_atom(Name) ->
    atom_to_binary(Name, utf8);
name(Name) when is_binary(Name) ->
    Name;
name(Name) when is_list(Name) ->
    chars(Name);
name(Name) ->
    error(badarg, [Name]).

-spec code(py_code()) -> binary().
code(Code) when is_binary(Code) ->
    Code;
code(Code) when is_list(Code) ->
    chars(Code);
code(Code) ->
    error(badarg, [Code]).

-spec chars(unicode:chardata()) -> binary().
chars(Chars) ->
    case unicode:characters_to_binary(Chars) of
        Bin when is_binary(Bin) -> Bin;
        _ -> error(badarg, [Chars])
    end.

-spec value(py_result()) -> term().
value({ok, Value}) ->
    Value;
value(Error) ->
    throw({?MODULE, Error}).

-spec ok_if_none(py_result()) -> ok | {error, term()}.
ok_if_none({ok, _}) ->
    ok;
ok_if_none({error, _} = Error) ->
    Error.

%% After a change of the main interpreter's `sys.path': the sub-interpreter pool gets it too
%% (docs/parallelism.md). A pool that cannot take it (the application is stopping) keeps its
%% old one, with a warning; the change itself succeeded.
-spec path_changed() -> ok.
path_changed() ->
    case py_subinterp:sync_path() of
        ok ->
            ok;
        {error, Reason} ->
            logger:warning("erlang_python: the sub-interpreter pool keeps its old sys.path: ~0p",
                           [Reason]),
            ok
    end.

-spec path_changed(ok | {error, term()}) -> ok | {error, term()}.
path_changed(ok) -> path_changed();
path_changed({error, _} = Error) -> Error.
