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

-export_type([py_result/0, py_ref/0]).

-type py_module() :: atom() | binary() | string().
-type py_func() :: atom() | binary() | string().
-type py_args() :: [term()].
-type py_kwargs() :: #{atom() | binary() => term()}.
-type py_code() :: unicode:chardata().
-type py_result() :: {ok, term()} | {error, term()}.
-type py_ref() :: reference().

-type request() ::
    {call, binary(), binary(), py_args(), map()}
    | {eval, binary(), map()}
    | {exec, binary()}.

-define(DEFAULT_TIMEOUT, 30000).
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
            end
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
            case py_nif:pool_call(Pool, Ref, ModuleBin, FuncBin, Args, Kwargs) of
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
    receive
        {Ref, Reply} ->
            _ = erase({py_async, Ref}),
            reply(Reply)
    after Timeout ->
        case erase({py_async, Ref}) of
            undefined -> {error, timeout};
            Job -> cancel(Job, Ref)
        end
    end.

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

-spec request(request(), timeout()) -> ok | py_result().
request(Request, Timeout) ->
    case persistent_term:get(?PY_POOL_KEY, undefined) of
        undefined -> {error, not_started};
        Pool -> run(Pool, Request, Timeout)
    end.

%% Calls made on the application's own behalf: no semaphore slot, default timeout.
-spec internal_call(binary(), binary(), py_args()) -> py_result().
internal_call(Module, Func, Args) ->
    request({call, Module, Func, Args, #{}}, ?DEFAULT_TIMEOUT).

%% The hot path: make_ref/0 and the receive matching on that reference sit in one function, so
%% the compiler's selective-receive optimisation skips the messages that were already in the
%% mailbox before the request was sent.
-spec run(py_nif:pool(), request(), timeout()) -> ok | py_result().
run(Pool, Request, Timeout) ->
    Ref = make_ref(),
    case submit(Pool, Ref, Request) of
        {error, stopped} ->
            {error, not_started};
        Job ->
            receive
                {Ref, Reply} -> reply(Reply)
            after Timeout ->
                cancel(Job, Ref)
            end
    end.

-spec submit(py_nif:pool(), reference(), request()) -> py_nif:job() | {error, stopped}.
submit(Pool, Ref, {call, Module, Func, Args, Kwargs}) ->
    py_nif:pool_call(Pool, Ref, Module, Func, Args, Kwargs);
submit(Pool, Ref, {eval, Code, Locals}) ->
    py_nif:pool_eval(Pool, Ref, Code, Locals);
submit(Pool, Ref, {exec, Code}) ->
    py_nif:pool_exec(Pool, Ref, Code).

%% After a timeout: either the job is cancelled and will never reply, or the executor has
%% already committed to replying and the reply must be taken out of the mailbox.
-spec cancel(py_nif:job(), reference()) -> ok | py_result().
cancel(Job, Ref) ->
    case py_nif:job_cancel(Job) of
        cancelled ->
            {error, timeout};
        replied ->
            receive
                {Ref, Reply} -> reply(Reply)
            end
    end.

-spec reply(py_nif:reply()) -> ok | py_result().
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
