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
-module(py).

-include("py_pool.hrl").

%% Synchronous and asynchronous requests
-export([
    call/3,
    call/4,
    call/5,
    eval/1,
    eval/2,
    eval/3,
    exec/1,
    call_async/3,
    call_async/4,
    await/1,
    await/2,
    last_traceback/0
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

-export_type([py_result/0, py_ref/0, py_generator/0]).

-type py_module() :: atom() | binary() | string().
-type py_func() :: atom() | binary() | string().
-type py_args() :: [term()].
-type py_kwargs() :: #{atom() | binary() => term()}.
-type py_code() :: unicode:chardata().
-type py_result() :: {ok, term()} | {error, term()}.
-type py_ref() :: reference().
%% What `call'/`eval' return for a Python generator or iterator: stream it with stream_next/2.
-type py_generator() :: {generator, py_nif:handle()} | py_nif:handle().

-type request() ::
    {call, binary(), binary(), py_args(), map()}
    | {eval, binary(), map()}
    | {exec, binary()}
    | {next, py_nif:handle(), pos_integer()}.

%% What a request gives back: `ok' for exec, `{done, Items}' for the last batch of an iterator.
-type outcome() :: ok | py_result() | {done, [term()]}.

-define(DEFAULT_TIMEOUT, 30000).
%% Items taken from a Python iterator per round trip by stream/3,4 and stream_eval/1,2.
-define(STREAM_BATCH, 1000).
%% Process dictionary key: the job whose Python callback this process is running.
-define(SERVING, '$py_serving').
-define(IS_TIMEOUT(T), (T =:= infinity orelse (is_integer(T) andalso T >= 0))).

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
%% The call first takes a {@link py_semaphore} slot, waiting up to `Timeout' for one, and
%% returns `{error, {overloaded, Current, Max}}' if none frees up. `Module' `` '__main__' ''
%% looks `Func' up in the shared namespace (what {@link exec/1} and {@link eval/3} defined).
%% On timeout the Python code is interrupted and `{error, timeout}' is returned; no late reply
%% reaches the caller's mailbox. If the reply was already on its way when the timeout fired,
%% that reply is returned instead.
-spec call(py_module(), py_func(), py_args(), py_kwargs(), timeout()) -> py_result().
call(Module, Func, Args, Kwargs, Timeout)
        when is_list(Args), is_map(Kwargs), ?IS_TIMEOUT(Timeout) ->
    Request = {call, name(Module), name(Func), Args, Kwargs},
    case persistent_term:get(?PY_POOL_KEY, undefined) of
        undefined ->
            {error, not_started};
        Pool ->
            case get(?SERVING) of
                undefined ->
                    limited(Pool, Request, Timeout);
                Job ->
                    %% Called from an Erlang function that Python called: the request nests
                    %% on the executor waiting for that function, which is already counted.
                    run(Job, Request, Timeout)
            end
    end.

-spec limited(py_nif:pool(), request(), timeout()) -> py_result().
limited(Pool, Request, Timeout) ->
    try py_semaphore:acquire(Timeout) of
        ok ->
            try
                run(Pool, Request, Timeout)
            after
                py_semaphore:release()
            end;
        {error, max_concurrent} ->
            overloaded()
    catch
        %% The application stopped while this call waited for a slot.
        error:badarg -> {error, not_started}
    end.

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
%% later requests. Timeouts behave as in {@link call/5}; `eval' takes no semaphore slot.
-spec eval(py_code(), map(), timeout()) -> py_result().
eval(Code, Locals, Timeout) when is_map(Locals), ?IS_TIMEOUT(Timeout) ->
    request({eval, code(Code), Locals}, Timeout).

%% @doc Execute Python statements in the shared namespace, waiting up to 30 seconds.
-spec exec(py_code()) -> ok | {error, term()}.
exec(Code) ->
    request({exec, code(Code)}, ?DEFAULT_TIMEOUT).

%% @doc The formatted traceback of the last Python exception returned to the calling process,
%% or `undefined' if there was none.
-spec last_traceback() -> binary() | undefined.
last_traceback() ->
    get(py_last_traceback).

%%% Asynchronous calls

%% @doc Start `Module.Func(*Args)' without waiting. Same as `call_async(Module, Func, Args, #{})'.
-spec call_async(py_module(), py_func(), py_args()) -> py_ref().
call_async(Module, Func, Args) ->
    call_async(Module, Func, Args, #{}).

%% @doc Start `Module.Func(*Args, **Kwargs)' without waiting; collect the result with
%% {@link await/2}. Takes no semaphore slot. Only the calling process can await the result.
-spec call_async(py_module(), py_func(), py_args(), py_kwargs()) -> py_ref().
call_async(Module, Func, Args, Kwargs) when is_list(Args), is_map(Kwargs) ->
    ModuleBin = name(Module),
    FuncBin = name(Func),
    Ref = make_ref(),
    case persistent_term:get(?PY_POOL_KEY, undefined) of
        undefined ->
            self() ! {Ref, {error, not_started}};
        Pool ->
            case py_nif:pool_call(target(Pool), Ref, ModuleBin, FuncBin, Args, Kwargs) of
                {error, stopped} -> self() ! {Ref, {error, not_started}};
                Job -> put({py_async, Ref}, Job)
            end
    end,
    Ref.

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
    case erase({py_async, Ref}) of
        undefined ->
            %% Not started (the error is in the mailbox), or already awaited.
            receive
                {Ref, Reply} -> reply(Reply)
            after Timeout -> {error, timeout}
            end;
        Job ->
            wait(Ref, Job, deadline(Timeout))
    end.

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
    collect(call(Module, Func, Args, Kwargs)).

%% @doc Stream the value of a Python expression. Same as `stream_eval(Code, #{})'.
-spec stream_eval(py_code()) -> {ok, [term()]} | {error, term()}.
stream_eval(Code) ->
    stream_eval(Code, #{}).

%% @doc Evaluate an expression as {@link eval/2} does and collect what it yields, as
%% {@link stream/4} does.
-spec stream_eval(py_code(), map()) -> {ok, [term()]} | {error, term()}.
stream_eval(Code, Locals) ->
    collect(eval(Code, Locals)).

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
    request({next, Handle, Max}, ?DEFAULT_TIMEOUT).

-spec collect(py_result()) -> {ok, [term()]} | {error, term()}.
collect({ok, {generator, Handle}}) ->
    collect(Handle, []);
collect({ok, Value}) ->
    {ok, [Value]};
collect({error, _} = Error) ->
    Error.

-spec collect(py_nif:handle(), [[term()]]) -> {ok, [term()]} | {error, term()}.
collect(Handle, Batches) ->
    case stream_next(Handle, ?STREAM_BATCH) of
        {ok, Items} -> collect(Handle, [Items | Batches]);
        {done, Items} -> {ok, lists:append(lists:reverse([Items | Batches]))};
        {error, _} = Error -> Error
    end.

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
    case persistent_term:get(?PY_POOL_KEY, undefined) of
        undefined -> py_pool:pool_size();
        Pool -> maps:get(executors, py_nif:pool_stats(Pool))
    end.

%% @doc Whether the NIF was built against a CPython (3.12 or later) with per-interpreter GILs.
-spec subinterp_supported() -> boolean().
subinterp_supported() ->
    maps:get(subinterp_supported, py_nif:interp_info()).

%%% Internal

-spec overloaded() -> {error, {overloaded, non_neg_integer(), pos_integer()} | not_started}.
overloaded() ->
    try
        {error, {overloaded, py_semaphore:current(), py_semaphore:max_concurrent()}}
    catch
        error:badarg -> {error, not_started}
    end.

-spec request(request(), timeout()) -> outcome().
request(Request, Timeout) ->
    case persistent_term:get(?PY_POOL_KEY, undefined) of
        undefined -> {error, not_started};
        Pool -> run(target(Pool), Request, Timeout)
    end.

%% Requests made while serving a Python callback nest on the executor waiting for it.
-spec target(py_nif:pool()) -> py_nif:target().
target(Pool) ->
    case get(?SERVING) of
        undefined -> Pool;
        Job -> Job
    end.

%% Calls made on the application's own behalf: no semaphore slot, default timeout.
-spec internal_call(binary(), binary(), py_args()) -> py_result().
internal_call(Module, Func, Args) ->
    request({call, Module, Func, Args, #{}}, ?DEFAULT_TIMEOUT).

%% The hot path: make_ref/0 and the receive matching on that reference sit in one function, so
%% the compiler's selective-receive optimisation skips the messages that were already in the
%% mailbox before the request was sent.
-spec run(py_nif:target(), request(), timeout()) -> outcome().
run(Target, Request, Timeout) ->
    Deadline = deadline(Timeout),
    Ref = make_ref(),
    case submit(Target, Ref, Request) of
        {error, stopped} ->
            {error, not_started};
        Job ->
            receive
                {Ref, {'$py_callback', Id, Name, Args}} ->
                    serve(Job, Id, Name, Args),
                    wait(Ref, Job, Deadline);
                {Ref, Reply} ->
                    reply(Reply)
            after Timeout ->
                cancel(Job, Ref)
            end
    end.

%% Waits for the reply of `Job', running the Erlang functions its Python code calls.
-spec wait(reference(), py_nif:job(), integer() | infinity) -> outcome().
wait(Ref, Job, Deadline) ->
    receive
        {Ref, {'$py_callback', Id, Name, Args}} ->
            serve(Job, Id, Name, Args),
            wait(Ref, Job, Deadline);
        {Ref, Reply} ->
            reply(Reply)
    after remaining(Deadline) ->
        cancel(Job, Ref)
    end.

%% Runs the function Python called, in this process, and answers the waiting executor. While it
%% runs, this process's own requests go to that executor (see target/1).
-spec serve(py_nif:job(), non_neg_integer(), binary(), list()) -> ok.
serve(Job, Id, Name, Args) ->
    Outer = put(?SERVING, Job),
    Result =
        try
            py_callback:execute(Name, Args)
        after
            restore(Outer)
        end,
    py_nif:callback_reply(Job, Id, Result).

-spec restore(py_nif:job() | undefined) -> ok.
restore(undefined) ->
    _ = erase(?SERVING),
    ok;
restore(Job) ->
    _ = put(?SERVING, Job),
    ok.

-spec deadline(timeout()) -> integer() | infinity.
deadline(infinity) -> infinity;
deadline(Timeout) -> erlang:monotonic_time(millisecond) + Timeout.

-spec remaining(integer() | infinity) -> timeout().
remaining(infinity) -> infinity;
remaining(Deadline) -> max(0, Deadline - erlang:monotonic_time(millisecond)).

-spec submit(py_nif:target(), reference(), request()) -> py_nif:job() | {error, stopped}.
submit(Pool, Ref, {call, Module, Func, Args, Kwargs}) ->
    py_nif:pool_call(Pool, Ref, Module, Func, Args, Kwargs);
submit(Pool, Ref, {eval, Code, Locals}) ->
    py_nif:pool_eval(Pool, Ref, Code, Locals);
submit(Pool, Ref, {exec, Code}) ->
    py_nif:pool_exec(Pool, Ref, Code);
submit(Pool, Ref, {next, Handle, Max}) ->
    py_nif:pool_next(Pool, Ref, Handle, Max).

%% After a timeout: either the job is cancelled and will never reply, or the executor has
%% already committed to replying and the reply must be taken out of the mailbox.
-spec cancel(py_nif:job(), reference()) -> outcome().
cancel(Job, Ref) ->
    case py_nif:job_cancel(Job) of
        cancelled ->
            %% A callback request sent before the cancel may still be in the mailbox.
            flush(Ref),
            {error, timeout};
        replied ->
            receive
                {Ref, Reply} -> reply(Reply)
            end
    end.

-spec flush(reference()) -> ok.
flush(Ref) ->
    receive
        {Ref, _} -> flush(Ref)
    after 0 -> ok
    end.

-spec reply(py_nif:reply()) -> outcome().
reply({error, Reason, Traceback}) ->
    put(py_last_traceback, Traceback),
    {error, Reason};
reply(Reply) ->
    Reply.

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
