%% @private
%% @doc Erlang stubs of the `py_nif' NIF library (built from `rust/nif', installed as
%% `priv/py_nif.so').
%%
%% Loading the library does not start Python: {@link interp_init/1} does, once per OS process.
%% Every stub raises `nif_not_loaded' until the library replaces it. This module is internal;
%% the public API is {@link py}.
-module(py_nif).

-export([
    interp_init/1,
    interp_info/0,
    interp_allow_process_exit/1,
    pool_new/1,
    pool_stop/1,
    pool_stats/1,
    pool_fairness_stats/0,
    pool_call/6,
    pool_call_dirty/6,
    pool_call_etf/6,
    pool_eval/4,
    pool_eval_dirty/4,
    pool_exec/3,
    subinterp_pool_start/2,
    subinterp_pool_stop/1,
    subinterp_pool_size/1,
    subinterp_pool_set_path/2,
    subinterp_call/6,
    subinterp_call_dirty/6,
    subinterp_eval/4,
    subinterp_eval_dirty/4,
    subinterp_exec/4,
    job_cancel/1,
    job_route_callbacks/2,
    job_decode_reply/1,
    pool_next/4,
    pool_async/7,
    pool_async_dirty/7,
    context_bind/1,
    context_unbind/1,
    context_is_bound/1,
    callback_reply/3,
    callback_reply_dirty/3,
    callback_thread_reply/2,
    callback_thread_reply_dirty/2,
    callback_register/1,
    callback_unregister/1,
    callback_set_router/1,
    callback_async_reply/2,
    callback_async_reply_dirty/2,
    callback_async_pending/0,
    mailbox_deliver/2,
    mailbox_deliver_dirty/2,
    mailbox_attach/2,
    mailbox_down/2,
    semaphore_new/1,
    semaphore_try_acquire/1,
    semaphore_acquire/1,
    semaphore_cancel/2,
    semaphore_release/1,
    semaphore_current/1,
    semaphore_max/1,
    semaphore_set_max/2,
    semaphore_close/1,
    log_set_receiver/2,
    log_set_threshold/1,
    log_set_max_in_flight/1,
    log_ack/1,
    log_stats/0,
    log_set_diagnostics/2,
    trace_set_receiver/1,
    trace_enable/1,
    trace_set_max_in_flight/1,
    trace_ack/1,
    trace_stats/0,
    trace_parent_swap/1,
    trace_parent_swap/2,
    trace_parent_inherit/1
]).
-export([priv_dir/0]).

-export_type([
    interp_opts/0,
    interp_info/0,
    pool/0,
    pool_stats/0,
    fairness_stats/0,
    job/0,
    target/0,
    reply/0,
    thread_channel/0,
    async_channel/0,
    inbox/0,
    semaphore/0,
    log_stats/0,
    diagnostics_level/0,
    trace_stats/0,
    trace_parent/0,
    handle/0,
    context/0,
    submit_error/0,
    kwargs/0,
    subinterp_pool/0
]).

-nifs([
    interp_init/1,
    interp_info/0,
    interp_allow_process_exit/1,
    pool_new/1,
    pool_stop/1,
    pool_stats/1,
    pool_fairness_stats/0,
    pool_call/6,
    pool_call_dirty/6,
    pool_call_etf/6,
    pool_eval/4,
    pool_eval_dirty/4,
    pool_exec/3,
    subinterp_pool_start/2,
    subinterp_pool_stop/1,
    subinterp_pool_size/1,
    subinterp_pool_set_path/2,
    subinterp_call/6,
    subinterp_call_dirty/6,
    subinterp_eval/4,
    subinterp_eval_dirty/4,
    subinterp_exec/4,
    job_cancel/1,
    job_route_callbacks/2,
    job_decode_reply/1,
    pool_next/4,
    pool_async/7,
    pool_async_dirty/7,
    context_bind/1,
    context_unbind/1,
    context_is_bound/1,
    callback_reply/3,
    callback_reply_dirty/3,
    callback_thread_reply/2,
    callback_thread_reply_dirty/2,
    callback_register/1,
    callback_unregister/1,
    callback_set_router/1,
    callback_async_reply/2,
    callback_async_reply_dirty/2,
    callback_async_pending/0,
    mailbox_deliver/2,
    mailbox_deliver_dirty/2,
    mailbox_attach/2,
    mailbox_down/2,
    semaphore_new/1,
    semaphore_try_acquire/1,
    semaphore_acquire/1,
    semaphore_cancel/2,
    semaphore_release/1,
    semaphore_current/1,
    semaphore_max/1,
    semaphore_set_max/2,
    semaphore_close/1,
    log_set_receiver/2,
    log_set_threshold/1,
    log_set_max_in_flight/1,
    log_ack/1,
    log_stats/0,
    log_set_diagnostics/2,
    trace_set_receiver/1,
    trace_enable/1,
    trace_set_max_in_flight/1,
    trace_ack/1,
    trace_stats/0,
    trace_parent_swap/1,
    trace_parent_swap/2,
    trace_parent_inherit/1
]).

-on_load(load/0).

-type interp_opts() :: #{
    executable => binary() | undefined,
    sys_path => [binary()],
    max_depth => pos_integer(),
    malloc_pad => non_neg_integer()
}.
-type interp_info() :: #{
    execution_mode := multi_executor | free_threaded | subinterp,
    subinterp_supported := boolean(),
    python_version := binary(),
    initialized := boolean(),
    %% The interpreter the library starts when none is configured, and its version ("3.12",
    %% "3.13t" when free-threaded), which a configured one must have.
    built_for := #{version := binary(), executable := binary()}
}.
%% A NIF resource: the executor threads and their shared queue.
-type pool() :: reference().
-type pool_stats() :: #{
    executors := non_neg_integer(),
    queued := non_neg_integer(),
    running := non_neg_integer(),
    bound := non_neg_integer()
}.
-type fairness_stats() :: #{
    line := non_neg_integer(),
    gate_taken := boolean(),
    waited := non_neg_integer(),
    yielded := non_neg_integer()
}.
%% A NIF resource: one submitted request, used to cancel it.
-type job() :: reference().
%% Where a request goes: a pool (any executor), or a job whose executor is waiting for a
%% callback the calling process serves (the request then nests on that executor).
-type target() :: pool() | context() | job().
%% Why a request was not queued: the pool stopped, every executor is bound, or the context
%% was released.
-type submit_error() :: stopped | no_workers_available | not_bound.
%% A NIF resource: the pool of own-GIL sub-interpreters (docs/parallelism.md).
-type subinterp_pool() :: reference().
%% A NIF resource: an executor checked out of a pool, with a private namespace.
-type context() :: reference().
%% Keyword arguments: a map, or a list of `{Name, Value}' pairs with atom names (the
%% conversion checks the names; see `docs/type-conversion.md').
-type kwargs() :: map() | [{atom(), term()}].
%% A NIF resource: the one-shot reply channel of a callback made on a non-executor thread.
-type thread_channel() :: reference().
%% A NIF resource: the channel of an `erlang.async_call' waiting for its Erlang function.
-type async_channel() :: reference().
%% A NIF resource: the inbox of a Python mailbox (`erlang.open_mailbox()'), held by its process.
-type inbox() :: reference().
%% A NIF resource holding a Python object (an opaque value, or the iterator of a generator).
-type handle() :: reference().
%% A NIF resource: the counting semaphore of py_semaphore.
-type semaphore() :: reference().
%% Records dropped since the library loaded, records sent to py_logger and not yet
%% acknowledged, the bound on the latter, the native level threshold (Python numbers), and
%% the NIF's own diagnostics dropped because too many were waiting.
-type log_stats() :: #{
    dropped := non_neg_integer(),
    in_flight := non_neg_integer(),
    max_in_flight := pos_integer(),
    threshold := integer(),
    diagnostics_dropped := non_neg_integer()
}.
%% The most verbose level of the NIF's diagnostics that is sent.
-type diagnostics_level() :: debug | info | warning | error | none.
%% Spans dropped since the library loaded because too many were in flight, spans sent to
%% py_tracer and not yet acknowledged, the bound on the latter, whether tracing is on, and how
%% many processes have a trace parent set.
-type trace_stats() :: #{
    enabled := boolean(),
    dropped := non_neg_integer(),
    in_flight := non_neg_integer(),
    max_in_flight := pos_integer(),
    parents := non_neg_integer()
}.
%% `{TraceId, SpanId}': a 128-bit trace id and a 64-bit span id.
-type trace_parent() :: {non_neg_integer(), non_neg_integer()}.
%% The second element of the one `{Ref, Reply}' message a job sends to its caller.
-type reply() ::
    ok
    | {ok, term()}
    | {ok_etf, binary()}
    | {done_etf, binary()}
    | {ok_etf, binary(), Handles :: [reference()]}
    | {done_etf, binary(), Handles :: [reference()]}
    | {error, term()}
    | {done, [term()]}
    | {error, {atom() | binary(), binary()}, Traceback :: binary()}.

%%% Loading

-spec load() -> ok | {error, term()}.
load() ->
    erlang:load_nif(filename:join(priv_dir(), "py_nif"), 0).

%% @doc The application's `priv' directory. Under a bare `erl -pa .../ebin' the application may
%% be unknown to the code server, so fall back to the `priv' directory beside `ebin'.
-spec priv_dir() -> file:filename().
priv_dir() ->
    case code:priv_dir(erlang_python) of
        Dir when is_list(Dir) ->
            Dir;
        {error, bad_name} ->
            Ebin = filename:dirname(beam_path()),
            filename:join(filename:dirname(Ebin), "priv")
    end.

-spec beam_path() -> file:filename().
beam_path() ->
    case code:which(?MODULE) of
        Path when is_list(Path) -> Path;
        %% cover_compiled or non_existing: only the source location is left.
        _ -> filename:join(filename:dirname(?FILE), "py_nif.beam")
    end.

%%% Interpreter (rust/nif/src/nifs/interp.rs)

%% @doc Initialise the embedded interpreter; later calls return `ok' and ignore `Opts'.
-spec interp_init(interp_opts()) -> ok | {error, term()}.
interp_init(_Opts) ->
    erlang:nif_error(nif_not_loaded).

%% @doc Build facts and whether the interpreter is initialised.
-spec interp_info() -> interp_info().
interp_info() ->
    erlang:nif_error(nif_not_loaded).

%% @doc Let Python calls that would end the OS process (the node) through (`true`), or refuse
%% them with `erlang.ProcessExitRefusedError' (`false', the default).
-spec interp_allow_process_exit(boolean()) -> ok.
interp_allow_process_exit(_Allow) ->
    erlang:nif_error(nif_not_loaded).

%%% Executor pool (rust/nif/src/nifs/pool.rs)

%% @doc Start `NumExecutors' executor threads fed by one shared queue. `{error, Message}'
%% when a thread cannot be started.
-spec pool_new(pos_integer()) -> {ok, pool()} | {error, not_initialized | binary()}.
pool_new(_NumExecutors) ->
    erlang:nif_error(nif_not_loaded).

%% @doc Close the queue and interrupt running jobs; never blocks.
-spec pool_stop(pool()) -> ok.
pool_stop(_Pool) ->
    erlang:nif_error(nif_not_loaded).

%% @doc Executor count, jobs waiting in the queue, jobs running.
-spec pool_stats(pool()) -> pool_stats().
pool_stats(_Pool) ->
    erlang:nif_error(nif_not_loaded).

%% @doc The GIL turnstile's counters, process-wide (all 0 on a free-threaded build): executors
%% waiting in `line' now, whether one is through the gate (`gate_taken', waiting for the GIL),
%% how many entries `waited' in line and how often an executor `yielded' the GIL to a lighter
%% caller's, since start.
-spec pool_fairness_stats() -> fairness_stats().
pool_fairness_stats() ->
    erlang:nif_error(nif_not_loaded).

%% @doc Enqueue `Module.Func(*Args, **Kwargs)'; the caller later receives `{Ref, Reply}'.
%% Big arguments are sent in the external term format, which the NIF writes itself, unless
%% they hold a binary over 64 bytes or a reference: then `etf' when their first terms hold
%% none (call {@link pool_call_etf/6} with `term_to_binary(Args)', or
%% {@link pool_call_dirty/6}); arguments too big for a normal scheduler: `dirty' (call
%% {@link pool_call_dirty/6}).
-spec pool_call(target(), reference(), binary(), binary(), list(), kwargs()) ->
    job() | {error, submit_error()} | dirty | etf.
pool_call(_Pool, _Ref, _Module, _Func, _Args, _Kwargs) ->
    erlang:nif_error(nif_not_loaded).

%% @doc {@link pool_call/6} on a dirty CPU scheduler, for big arguments.
-spec pool_call_dirty(target(), reference(), binary(), binary(), list(), kwargs()) ->
    job() | {error, submit_error()}.
pool_call_dirty(_Pool, _Ref, _Module, _Func, _Args, _Kwargs) ->
    erlang:nif_error(nif_not_loaded).

%% @doc {@link pool_call/6} with `ArgsEtf' the `term_to_binary/1' of the arguments list: the
%% executor makes the Python arguments straight from those bytes. Opaque handles in the
%% arguments must stay referenced by the caller until the reply comes.
-spec pool_call_etf(target(), reference(), binary(), binary(), binary(), kwargs()) ->
    job() | {error, submit_error()}.
pool_call_etf(_Pool, _Ref, _Module, _Func, _ArgsEtf, _Kwargs) ->
    erlang:nif_error(nif_not_loaded).

%% @doc Enqueue the evaluation of an expression in the shared `__main__' namespace (`dirty':
%% see {@link pool_call/6}).
-spec pool_eval(target(), reference(), binary(), map()) ->
    job() | {error, submit_error()} | dirty.
pool_eval(_Pool, _Ref, _Code, _Locals) ->
    erlang:nif_error(nif_not_loaded).

%% @doc {@link pool_eval/4} on a dirty CPU scheduler, for big locals.
-spec pool_eval_dirty(target(), reference(), binary(), map()) ->
    job() | {error, submit_error()}.
pool_eval_dirty(_Pool, _Ref, _Code, _Locals) ->
    erlang:nif_error(nif_not_loaded).

%% @doc Enqueue the execution of statements in the shared `__main__' namespace.
-spec pool_exec(target(), reference(), binary()) -> job() | {error, submit_error()}.
pool_exec(_Pool, _Ref, _Code) ->
    erlang:nif_error(nif_not_loaded).

%% Starts `Size' own-GIL sub-interpreters, each on its own thread, with `SysPath' as their
%% `sys.path' (dirty I/O scheduler: it waits for them to start).
-spec subinterp_pool_start(pos_integer(), [binary()]) ->
    {ok, subinterp_pool()}
    | {error, subinterpreters_not_supported | not_initialized | {subinterp_start_failed, binary()}}.
subinterp_pool_start(_Size, _SysPath) ->
    erlang:nif_error(nif_not_loaded).

%% Stops the sub-interpreter pool: queued requests get `{error, stopped}', running ones are
%% interrupted; each interpreter ends on its own thread (dirty I/O scheduler).
-spec subinterp_pool_stop(subinterp_pool()) -> ok.
subinterp_pool_stop(_Pool) ->
    erlang:nif_error(nif_not_loaded).

-spec subinterp_pool_size(subinterp_pool()) -> non_neg_integer().
subinterp_pool_size(_Pool) ->
    erlang:nif_error(nif_not_loaded).

%% @doc Give every sub-interpreter of the pool `SysPath' as its `sys.path', before the next
%% request each runs. `badarg' for an entry that is not UTF-8 or holds a NUL.
-spec subinterp_pool_set_path(subinterp_pool(), [binary()]) -> ok.
subinterp_pool_set_path(_Pool, _SysPath) ->
    erlang:nif_error(nif_not_loaded).

%% `Module.Func(*Args, **Kwargs)' in any sub-interpreter. `dirty' when the arguments are too
%% big to encode on a normal scheduler (call subinterp_call_dirty/6), `{error, handle}' when
%% they hold a handle (an object of the main interpreter).
-spec subinterp_call(subinterp_pool(), reference(), binary(), binary(), list(), kwargs()) ->
    job() | dirty | {error, stopped | handle | subinterpreters_not_supported}.
subinterp_call(_Pool, _Ref, _Module, _Func, _Args, _Kwargs) ->
    erlang:nif_error(nif_not_loaded).

%% subinterp_call/6 on a dirty CPU scheduler.
-spec subinterp_call_dirty(subinterp_pool(), reference(), binary(), binary(), list(),
                           kwargs()) ->
    job() | {error, stopped | handle | subinterpreters_not_supported}.
subinterp_call_dirty(_Pool, _Ref, _Module, _Func, _Args, _Kwargs) ->
    erlang:nif_error(nif_not_loaded).

%% `eval(Code)' in any sub-interpreter, `Locals' merged into its `__main__' first; `dirty' and
%% `{error, handle}' as for subinterp_call/6.
-spec subinterp_eval(subinterp_pool(), reference(), binary(), map()) ->
    job() | dirty | {error, stopped | handle | subinterpreters_not_supported}.
subinterp_eval(_Pool, _Ref, _Code, _Locals) ->
    erlang:nif_error(nif_not_loaded).

%% subinterp_eval/4 on a dirty CPU scheduler.
-spec subinterp_eval_dirty(subinterp_pool(), reference(), binary(), map()) ->
    job() | {error, stopped | handle | subinterpreters_not_supported}.
subinterp_eval_dirty(_Pool, _Ref, _Code, _Locals) ->
    erlang:nif_error(nif_not_loaded).

%% `exec(Code)' in sub-interpreter `Index' (0-based).
-spec subinterp_exec(subinterp_pool(), reference(), binary(), non_neg_integer()) ->
    job() | {error, stopped | subinterpreters_not_supported}.
subinterp_exec(_Pool, _Ref, _Code, _Index) ->
    erlang:nif_error(nif_not_loaded).

%% @doc Enqueue taking up to `Max' items from the iterator behind `Handle'; the reply is
%% `{ok, Items}', `{done, Items}' (exhausted) or an error.
-spec pool_next(target(), reference(), handle(), pos_integer()) -> job() | {error, submit_error()}.
pool_next(_Target, _Ref, _Handle, _Max) ->
    erlang:nif_error(nif_not_loaded).

%% @doc Enqueue a call whose awaitable result (with `Stream', async iterable) is finished on
%% the asyncio loop of `erlang._aio', which sends the reply (`dirty': see {@link pool_call/6}).
-spec pool_async(target(), reference(), binary(), binary(), list(), kwargs(), boolean()) ->
    job() | {error, submit_error()} | dirty.
pool_async(_Target, _Ref, _Module, _Func, _Args, _Kwargs, _Stream) ->
    erlang:nif_error(nif_not_loaded).

%% @doc {@link pool_async/7} on a dirty CPU scheduler, for big arguments.
-spec pool_async_dirty(target(), reference(), binary(), binary(), list(), kwargs(), boolean()) ->
    job() | {error, submit_error()}.
pool_async_dirty(_Target, _Ref, _Module, _Func, _Args, _Kwargs, _Stream) ->
    erlang:nif_error(nif_not_loaded).

%% @doc Check an executor out of `Pool' for a context (monitoring the calling process).
-spec context_bind(pool()) -> {ok, context()} | {error, stopped | no_workers_available}.
context_bind(_Pool) ->
    erlang:nif_error(nif_not_loaded).

%% @doc Give a context's executor back to its pool (idempotent).
-spec context_unbind(context()) -> ok.
context_unbind(_Context) ->
    erlang:nif_error(nif_not_loaded).

%% @doc Whether the context still has its executor.
-spec context_is_bound(context()) -> boolean().
context_is_bound(_Context) ->
    erlang:nif_error(nif_not_loaded).

%%% Jobs (rust/nif/src/nifs/job.rs)

%% @doc `cancelled': no reply will arrive; `replied': the reply is on its way, receive it.
-spec job_cancel(job()) -> cancelled | replied.
job_cancel(_Job) ->
    erlang:nif_error(nif_not_loaded).

%% @doc Send the job's later callback requests (`{Ref, {'$py_callback', ...}}') to `Pid', the
%% process running its callback functions, instead of the caller.
-spec job_route_callbacks(job(), pid()) -> ok.
job_route_callbacks(_Job, _Pid) ->
    erlang:nif_error(nif_not_loaded).

%% @doc The term in `Bytes', as `binary_to_term(Bytes, [safe])' gives it, decoded on a dirty
%% CPU scheduler: for replies that come in the external term format (`{ok_etf, Bytes}',
%% `{done_etf, Bytes}'), whose big maps `binary_to_term/2' builds without yielding.
-spec job_decode_reply(binary()) -> term().
job_decode_reply(_Bytes) ->
    erlang:nif_error(nif_not_loaded).

%%% Callbacks (rust/nif/src/nifs/callback.rs)

%% @doc Answer callback `Id' of `Job' with the result of {@link py_callback:execute/2};
%% `dirty' when the result is too big to copy on a normal scheduler: call
%% {@link callback_reply_dirty/3} instead.
-spec callback_reply(job(), non_neg_integer(), py_callback:result()) -> ok | dirty.
callback_reply(_Job, _Id, _Result) ->
    erlang:nif_error(nif_not_loaded).

%% @doc {@link callback_reply/3} on a dirty CPU scheduler, for big results.
-spec callback_reply_dirty(job(), non_neg_integer(), py_callback:result()) -> ok.
callback_reply_dirty(_Job, _Id, _Result) ->
    erlang:nif_error(nif_not_loaded).

%% @doc Answer a callback made on a non-executor Python thread; `error' if already answered
%% (`dirty': see {@link callback_reply/3}).
-spec callback_thread_reply(thread_channel(), py_callback:result()) -> ok | error | dirty.
callback_thread_reply(_Channel, _Result) ->
    erlang:nif_error(nif_not_loaded).

%% @doc {@link callback_thread_reply/2} on a dirty CPU scheduler, for big results.
-spec callback_thread_reply_dirty(thread_channel(), py_callback:result()) -> ok | error.
callback_thread_reply_dirty(_Channel, _Result) ->
    erlang:nif_error(nif_not_loaded).

%% @doc Answer an `erlang.async_call'; `error' if it was cancelled or already answered
%% (`dirty': see {@link callback_reply/3}).
-spec callback_async_reply(async_channel(), py_callback:result()) -> ok | error | dirty.
callback_async_reply(_Channel, _Result) ->
    erlang:nif_error(nif_not_loaded).

%% @doc {@link callback_async_reply/2} on a dirty CPU scheduler, for big results.
-spec callback_async_reply_dirty(async_channel(), py_callback:result()) -> ok | error.
callback_async_reply_dirty(_Channel, _Result) ->
    erlang:nif_error(nif_not_loaded).

%% @doc The number of `erlang.async_call's waiting for their Erlang function.
-spec callback_async_pending() -> non_neg_integer().
callback_async_pending() ->
    erlang:nif_error(nif_not_loaded).

%% @doc Hand a message of a mailbox's process to its Python side; `closed' once Python closed
%% the mailbox, `dirty' when the message is too big to copy on a normal scheduler (then call
%% {@link mailbox_deliver_dirty/2}).
-spec mailbox_deliver(inbox(), term()) -> ok | closed | dirty.
mailbox_deliver(_Inbox, _Message) ->
    erlang:nif_error(nif_not_loaded).

%% @doc {@link mailbox_deliver/2} on a dirty CPU scheduler, for big messages.
-spec mailbox_deliver_dirty(inbox(), term()) -> ok | closed.
mailbox_deliver_dirty(_Inbox, _Message) ->
    erlang:nif_error(nif_not_loaded).

%% @doc Give a mailbox its process; `closed' when Python closed the mailbox meanwhile.
-spec mailbox_attach(inbox(), pid()) -> ok | closed.
mailbox_attach(_Inbox, _Pid) ->
    erlang:nif_error(nif_not_loaded).

%% @doc Tell a mailbox that its process ended, with its exit reason as text.
-spec mailbox_down(inbox(), binary()) -> ok.
mailbox_down(_Inbox, _Reason) ->
    erlang:nif_error(nif_not_loaded).

%% @doc Make `erlang.<Name>' resolve in Python.
-spec callback_register(binary()) -> ok.
callback_register(_Name) ->
    erlang:nif_error(nif_not_loaded).

%% @doc Make `erlang.<Name>' raise `AttributeError' again.
-spec callback_unregister(binary()) -> ok.
callback_unregister(_Name) ->
    erlang:nif_error(nif_not_loaded).

%% @doc Set the process that runs callbacks of non-executor threads; `undefined' clears it and
%% forgets every registered name.
-spec callback_set_router(pid() | undefined) -> ok.
callback_set_router(_Router) ->
    erlang:nif_error(nif_not_loaded).

%%% Semaphore (rust/nif/src/nifs/semaphore.rs)

%% @doc A semaphore with `Max' slots, none taken.
-spec semaphore_new(pos_integer()) -> semaphore().
semaphore_new(_Max) ->
    erlang:nif_error(nif_not_loaded).

%% @doc Take a slot for the calling process (monitored until it dies) if one is free and no
%% process waits for one, else `full'.
-spec semaphore_try_acquire(semaphore()) -> ok | full.
semaphore_try_acquire(_Sem) ->
    erlang:nif_error(nif_not_loaded).

%% @doc Take a slot for the calling process, or queue it behind the processes already waiting:
%% `{wait, Id}', then `{'$py_semaphore', Id}' arrives when a slot is the caller's. `full' when
%% the caller is exiting.
-spec semaphore_acquire(semaphore()) -> ok | {wait, pos_integer()} | full.
semaphore_acquire(_Sem) ->
    erlang:nif_error(nif_not_loaded).

%% @doc Give up wait `Id': `cancelled', or `granted' when the slot is already the caller's (its
%% message is in the mailbox).
-spec semaphore_cancel(semaphore(), pos_integer()) -> cancelled | granted.
semaphore_cancel(_Sem, _Id) ->
    erlang:nif_error(nif_not_loaded).

%% @doc Give a slot back (never below 0); it goes to the longest waiter, if any.
-spec semaphore_release(semaphore()) -> ok.
semaphore_release(_Sem) ->
    erlang:nif_error(nif_not_loaded).

%% @doc Slots taken.
-spec semaphore_current(semaphore()) -> non_neg_integer().
semaphore_current(_Sem) ->
    erlang:nif_error(nif_not_loaded).

%% @doc The limit.
-spec semaphore_max(semaphore()) -> pos_integer().
semaphore_max(_Sem) ->
    erlang:nif_error(nif_not_loaded).

%% @doc Change the limit; new slots go to waiters at once.
-spec semaphore_set_max(semaphore(), pos_integer()) -> ok.
semaphore_set_max(_Sem, _Max) ->
    erlang:nif_error(nif_not_loaded).

%% @doc The application stops: every waiter gets its slot at once, and nobody waits any more.
-spec semaphore_close(semaphore()) -> ok.
semaphore_close(_Sem) ->
    erlang:nif_error(nif_not_loaded).

%%% Logging (rust/nif/src/nifs/log.rs)

%% @doc Send Python log records to `Receiver' (`undefined': drop them) and set the native
%% threshold (records with a lower Python level are dropped before anything is built).
-spec log_set_receiver(pid() | undefined, integer()) -> ok.
log_set_receiver(_Receiver, _Level) ->
    erlang:nif_error(nif_not_loaded).

%% @doc Set the native threshold (Python level numbers).
-spec log_set_threshold(integer()) -> ok.
log_set_threshold(_Level) ->
    erlang:nif_error(nif_not_loaded).

%% @doc Set the bound on records sent and not yet acknowledged; past it records are dropped
%% and counted.
-spec log_set_max_in_flight(pos_integer()) -> ok.
log_set_max_in_flight(_Max) ->
    erlang:nif_error(nif_not_loaded).

%% @doc The receiver handled `N' records.
-spec log_ack(non_neg_integer()) -> ok.
log_ack(_N) ->
    erlang:nif_error(nif_not_loaded).

%% @doc Drop count, records in flight, their bound, and the native threshold.
-spec log_stats() -> log_stats().
log_stats() ->
    erlang:nif_error(nif_not_loaded).

%% @doc Set the receiver of the NIF's own diagnostics, `{py_nif_log, Level, Target, Message}'
%% (`undefined' clears it), and the most verbose level sent.
-spec log_set_diagnostics(pid() | undefined, diagnostics_level()) -> ok.
log_set_diagnostics(_Receiver, _Level) ->
    erlang:nif_error(nif_not_loaded).

%%% Tracing (rust/nif/src/nifs/trace.rs)

%% @doc Send finished Python spans (`{py_span, SpanMap}') to `Receiver' (`undefined': drop
%% them).
-spec trace_set_receiver(pid() | undefined) -> ok.
trace_set_receiver(_Receiver) ->
    erlang:nif_error(nif_not_loaded).

%% @doc Turn span recording on or off.
-spec trace_enable(boolean()) -> ok.
trace_enable(_Enabled) ->
    erlang:nif_error(nif_not_loaded).

%% @doc Set the bound on spans sent and not yet acknowledged; past it spans are dropped and
%% counted.
-spec trace_set_max_in_flight(pos_integer()) -> ok.
trace_set_max_in_flight(_Max) ->
    erlang:nif_error(nif_not_loaded).

%% @doc The receiver handled `N' spans.
-spec trace_ack(non_neg_integer()) -> ok.
trace_ack(_N) ->
    erlang:nif_error(nif_not_loaded).

%% @doc Whether tracing is on, drop count, spans in flight, their bound, processes with a
%% trace parent.
-spec trace_stats() -> trace_stats().
trace_stats() ->
    erlang:nif_error(nif_not_loaded).

%% @doc Set the trace parent of the calling process's requests (`undefined' clears it, and the
%% process is monitored while it has one); returns the previous one.
-spec trace_parent_swap(trace_parent() | undefined) -> trace_parent() | undefined.
trace_parent_swap(_Parent) ->
    erlang:nif_error(nif_not_loaded).

%% @doc `trace_parent_swap/1' for the requests of process `Pid'.
-spec trace_parent_swap(pid(), trace_parent() | undefined) -> trace_parent() | undefined.
trace_parent_swap(_Pid, _Parent) ->
    erlang:nif_error(nif_not_loaded).

%% @doc Give the calling process the trace parent of `From', if it has one.
-spec trace_parent_inherit(pid()) -> ok.
trace_parent_inherit(_From) ->
    erlang:nif_error(nif_not_loaded).
