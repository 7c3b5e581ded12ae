%% @private
%% @doc The request engine behind {@link py}: where a request goes, how it is submitted, and
%% the one loop that waits for replies while serving the Erlang functions their Python code
%% calls.
%%
%% Everything runs in the calling process; no request passes through another process. A
%% request goes to the executor waiting for the callback this process is running (see
%% `docs/architecture.md', "Python calls Erlang"), else to the context the process is bound to,
%% else to the pool `py_pool' published. The reply of a job is one `{Ref, Reply}' message;
%% before it, the job may send any number of `{Ref, {'$py_callback', Id, Name, Args}}': each
%% is run by a process of its own, linked to the waiting one, which answers the executor with
%% `py_nif:callback_reply/3', so the wait (and its deadline) goes on while the function runs.
%% When the deadline passes the job is cancelled, the function still running for it is killed,
%% and either no reply will ever come or the reply that was already on its way is taken;
%% nothing of the job is left in the mailbox.
-module(py_request).

-include("py_keys.hrl").

-export([
    pool/0,
    call/3,
    run/3,
    start/1,
    await/2,
    taken/2,
    gather/2,
    parallel/3,
    collect/2,
    new_context/0,
    bind/0,
    unbind/0,
    is_bound/0,
    last_traceback/0
]).

%% Called as ?MODULE:keep/1 so that the compiler keeps its argument alive.
-export([keep/1]).
%% py_callback decodes the arguments of callbacks that come in the external term format.
-export([decode_etf/2]).

-export_type([request/0, where/0, outcome/0]).

%% What py asks for; names and code are already UTF-8 binaries.
-type request() ::
    {call, binary(), binary(), list(), py_nif:kwargs()}
    | {eval, binary(), map()}
    | {exec, binary()}
    | {next, py_nif:handle(), pos_integer()}
    | {async, binary(), binary(), list(), py_nif:kwargs(), boolean()}
    | {exec_on, non_neg_integer(), binary()}.
%% `default': the executor of the callback being served, the bound context or the pool (see
%% target/1); a context: that context; a pool: that pool (`py_pool' configures the one it
%% starts before it publishes it).
%% `subinterp': any own-GIL sub-interpreter of the pool py_subinterp owns (exec: every one of
%% them; docs/parallelism.md).
-type where() :: default | subinterp | py_nif:context() | py_nif:pool().
%% What a request gives back: `ok' for exec, `{done, Items}' for the last batch of an iterator.
-type outcome() :: ok | {ok, term()} | {error, term()} | {done, [term()]}.

%% Where a request is queued: the NIF's targets, or the sub-interpreter pool.
-type target() :: py_nif:target() | {subinterp, py_nif:subinterp_pool()}.

-type deadline() :: integer() | infinity.
%% The requests being waited for: reference => job, or `undefined' for a request that never
%% started (its error is already in the mailbox) or was already awaited.
-type pending() :: #{reference() => py_nif:job() | undefined}.
%% The outcomes collected so far.
-type done() :: #{reference() => outcome()}.
%% The process running the callbacks of each pending request (a job makes one callback at a
%% time: it waits for the answer), from its first callback until it replies.
-type serving() :: #{reference() => pid()}.
%% How a wait ended: every request replied (or one replied with an error and the others were
%% given up), or the deadline passed and every request still pending was cancelled, its
%% outcome then being the reply that was already on its way or `{error, timeout}'.
-type ended() :: {replied | expired, done()}.

%% Items taken from a Python iterator per round trip by collect/2.
-define(STREAM_BATCH, 1000).
%% External-term-format results from this size on are decoded on a dirty scheduler: below it
%% `binary_to_term/2' takes well under a millisecond whatever the bytes hold.
-define(ETF_DIRTY_BYTES, 16384).

%%% Where requests go

%% @doc The executor pool, or `{error, not_started}' while the application is not running.
-spec pool() -> {ok, py_nif:pool()} | {error, not_started}.
pool() ->
    case persistent_term:get(?PY_POOL_KEY, undefined) of
        undefined -> {error, not_started};
        Pool -> {ok, Pool}
    end.

%% Requests made while serving a Python callback nest on the executor waiting for it; those of
%% a bound process go to its context; the others to the pool.
-spec target(where()) -> {ok, target()} | {error, term()}.
target(default) ->
    case pool() of
        {ok, Pool} ->
            case get(?PY_SERVING_KEY) of
                undefined ->
                    case get(?PY_CONTEXT_KEY) of
                        undefined -> {ok, Pool};
                        Context -> {ok, Context}
                    end;
                Job ->
                    {ok, Job}
            end;
        {error, _} = Error ->
            Error
    end;
target(subinterp) ->
    case py_subinterp:pool() of
        {ok, Pool} -> {ok, {subinterp, Pool}};
        {error, _} = Error -> Error
    end;
target(Context) ->
    {ok, Context}.

%%% Synchronous requests

%% @doc Run `Request' with a `py_semaphore' slot, waiting up to `Timeout' in all: for the slot
%% (`{error, {overloaded, Current, Max}}' if none frees up), then for the reply. A request made
%% while serving a callback takes no slot: the executor it nests on is already counted.
-spec call(where(), request(), timeout()) -> outcome().
call(Where, Request, Timeout) ->
    case target(Where) of
        {ok, Target} ->
            case get(?PY_SERVING_KEY) of
                undefined -> limited(Target, Request, Timeout);
                _ -> send(Target, Request, Timeout)
            end;
        {error, _} = Error ->
            Error
    end.

%% @doc Run `Request' and wait up to `Timeout' for its outcome; no semaphore slot.
-spec run(where(), request(), timeout()) -> outcome().
run(Where, Request, Timeout) ->
    case target(Where) of
        {ok, Target} -> send(Target, Request, Timeout);
        {error, _} = Error -> Error
    end.

-spec limited(target(), request(), timeout()) -> outcome().
limited(Target, Request, Timeout) ->
    try py_semaphore:acquire(Timeout) of
        ok ->
            try
                send(Target, Request, Timeout)
            after
                py_semaphore:release()
            end;
        {error, max_concurrent} ->
            overloaded()
    catch
        %% The application stopped while this call waited for a slot.
        error:badarg -> {error, not_started}
    end.

-spec overloaded() -> {error, {overloaded, non_neg_integer(), pos_integer()} | not_started}.
overloaded() ->
    try
        {error, {overloaded, py_semaphore:current(), py_semaphore:max_concurrent()}}
    catch
        error:badarg -> {error, not_started}
    end.

%% The hot path: make_ref/0 and a receive that matches on that reference sit in one function,
%% so the compiler's selective-receive optimisation skips the messages that were already in
%% the mailbox before the request was sent. Whatever arrives is then handled by the same code
%% as in wait/3.
-spec send(target(), request(), timeout()) -> outcome().
send({subinterp, Pool} = Target, {exec, Code}, Timeout) ->
    %% Each sub-interpreter has its own `__main__': statements run in every one of them, so
    %% that what they define is there whichever sub-interpreter a later request lands on.
    Requests = [{exec_on, I, Code} || I <- lists:seq(0, py_nif:subinterp_pool_size(Pool) - 1)],
    %% Each runs to its end, so that no sub-interpreter is left with half of the statements
    %% run because another one failed; the first error (in worker order) is returned.
    {ok, Outcomes} = all(Target, Requests, Timeout),
    case [Error || {error, _} = Error <- Outcomes] of
        [] -> ok;
        [Error | _] -> Error
    end;
send(Target, Request, Timeout) ->
    Deadline = deadline(Timeout),
    Ref = make_ref(),
    case submit(Target, Ref, Request, etf) of
        {error, _} = Error ->
            Error;
        Job ->
            Outcome =
                receive
                    {Ref, {'$py_callback', _, _, _} = Callback} ->
                        outcome(Ref, handle(Ref, Callback, #{Ref => Job}, Deadline, #{}, #{}));
                    {Ref, Reply} ->
                        %% The common case, a reply and nothing else: no wait state to build.
                        reply(Reply)
                after Timeout ->
                    outcome(Ref, expire(#{Ref => Job}, #{}, #{}))
                end,
            %% Arguments sent in the external term format hold their opaque handles only as
            %% references: the request keeps the handles themselves alive meanwhile.
            ?MODULE:keep(Request),
            Outcome
    end.

%% @private Does nothing with `Term': a remote call the compiler cannot drop, so that `Term'
%% stays alive (referenced by the caller's stack) until this call.
-spec keep(term()) -> ok.
keep(_Term) ->
    ok.

%% Queues `Request' on `Target'. The reply will come as `{Ref, Reply}'.
-spec submit(target(), reference(), request()) ->
    py_nif:job()
    | {error, not_started | no_workers_available | subinterpreters_not_supported
              | {'TypeError', binary()}}.
submit(Target, Ref, Request) ->
    submit(Target, Ref, Request, copy).

%% `etf': the caller keeps `Request' alive until the reply (see send/3), so big arguments may
%% go in the external term format; `copy': they are always copied as terms.
-spec submit(target(), reference(), request(), etf | copy) ->
    py_nif:job()
    | {error, not_started | no_workers_available | subinterpreters_not_supported
              | {'TypeError', binary()}}.
submit(Target, Ref, Request, Big) ->
    case submit_nif(Target, Ref, Request, Big) of
        {error, Reason} -> submit_failed(Reason);
        Job -> Job
    end.

-spec submit_nif(target(), reference(), request(), etf | copy) ->
    py_nif:job() | {error, py_nif:submit_error() | subinterpreters_not_supported | handle}.
submit_nif({subinterp, Pool}, Ref, {call, Module, Func, Args, Kwargs}, _Big) ->
    case py_nif:subinterp_call(Pool, Ref, Module, Func, Args, Kwargs) of
        dirty -> py_nif:subinterp_call_dirty(Pool, Ref, Module, Func, Args, Kwargs);
        Submitted -> Submitted
    end;
submit_nif({subinterp, Pool}, Ref, {eval, Code, Locals}, _Big) ->
    case py_nif:subinterp_eval(Pool, Ref, Code, Locals) of
        dirty -> py_nif:subinterp_eval_dirty(Pool, Ref, Code, Locals);
        Submitted -> Submitted
    end;
submit_nif({subinterp, Pool}, Ref, {exec_on, Index, Code}, _Big) ->
    py_nif:subinterp_exec(Pool, Ref, Code, Index);
submit_nif(Target, Ref, {call, Module, Func, Args, Kwargs}, Big) ->
    case py_nif:pool_call(Target, Ref, Module, Func, Args, Kwargs) of
        etf when Big =:= etf ->
            %% term_to_binary/1 yields: a big list is encoded without holding the scheduler.
            py_nif:pool_call_etf(Target, Ref, Module, Func, term_to_binary(Args), Kwargs);
        Big1 when Big1 =:= dirty; Big1 =:= etf ->
            py_nif:pool_call_dirty(Target, Ref, Module, Func, Args, Kwargs);
        Submitted -> Submitted
    end;
submit_nif(Target, Ref, {eval, Code, Locals}, _Big) ->
    case py_nif:pool_eval(Target, Ref, Code, Locals) of
        dirty -> py_nif:pool_eval_dirty(Target, Ref, Code, Locals);
        Submitted -> Submitted
    end;
submit_nif(Target, Ref, {exec, Code}, _Big) ->
    py_nif:pool_exec(Target, Ref, Code);
submit_nif(Target, Ref, {next, Handle, Max}, _Big) ->
    py_nif:pool_next(Target, Ref, Handle, Max);
submit_nif(Target, Ref, {async, Module, Func, Args, Kwargs, Stream}, _Big) ->
    case py_nif:pool_async(Target, Ref, Module, Func, Args, Kwargs, Stream) of
        dirty -> py_nif:pool_async_dirty(Target, Ref, Module, Func, Args, Kwargs, Stream);
        Submitted -> Submitted
    end.

%% What the caller gets when a request (or a context) could not be had: the pool stopped (the
%% application is stopping), every executor is bound, or the context was released
%% (`context_not_bound', raised as erlang_python 1.6 does).
-spec submit_failed(py_nif:submit_error() | subinterpreters_not_supported | handle) ->
    {error, not_started | no_workers_available | subinterpreters_not_supported
            | {'TypeError', binary()}}.
submit_failed(stopped) -> {error, not_started};
submit_failed(no_workers_available) -> {error, no_workers_available};
submit_failed(not_bound) -> error(context_not_bound);
submit_failed(subinterpreters_not_supported) -> {error, subinterpreters_not_supported};
submit_failed(handle) ->
    %% docs/parallelism.md: a handle stands for an object of the main interpreter.
    {error, {'TypeError', <<"an opaque handle (a Python object of the main interpreter) cannot "
                            "be passed to a sub-interpreter; use the main pool">>}}.

%%% Asynchronous requests

%% @doc Submit `Request' (to the default target) without waiting; its outcome is collected by
%% {@link await/2} in this process. A request that cannot start leaves its error in the
%% mailbox, for await/2 to return.
-spec start(request()) -> reference().
start(Request) ->
    case start_job(Request) of
        {Ref, undefined} ->
            Ref;
        {Ref, Job} ->
            _ = put(?PY_ASYNC_KEY(Ref), Job),
            Ref
    end.

-spec start_job(request()) -> {reference(), py_nif:job() | undefined}.
start_job(Request) ->
    Ref = make_ref(),
    case target(default) of
        {ok, Target} ->
            case submit(Target, Ref, Request) of
                {error, _} = Error ->
                    self() ! {Ref, Error},
                    {Ref, undefined};
                Job ->
                    {Ref, Job}
            end;
        {error, _} = Error ->
            self() ! {Ref, Error},
            {Ref, undefined}
    end.

%% @doc Wait up to `Timeout' for the outcome of the request {@link start/1} returned `Ref'
%% for. A reference that is not (or no longer) pending gets what is in the mailbox under it,
%% else `{error, timeout}'.
-spec await(reference(), timeout()) -> outcome().
await(Ref, Timeout) ->
    outcome(Ref, wait(#{Ref => erase(?PY_ASYNC_KEY(Ref))}, deadline(Timeout), #{}, #{})).

%% @doc The outcome of the request {@link start/1} returned `Ref' for, from the message
%% `{Ref, Reply}' that the caller took from its mailbox itself (a reply, not a callback
%% request): what {@link await/2} would return for it, without putting the message back for
%% await/2 to take again.
-spec taken(reference(), py_nif:reply()) -> outcome().
taken(Ref, Reply) ->
    _ = erase(?PY_ASYNC_KEY(Ref)),
    reply(Reply).

%% @doc Start every request and wait up to `Timeout' in all for their outcomes: `{ok, Values}'
%% in the order of `Requests' when each gave `{ok, Value}'; the first error as soon as it
%% comes, the others given up; `{error, timeout}', every request given up, when the time runs
%% out.
-spec gather([request()], timeout()) -> {ok, [term()]} | {error, term()}.
gather(Requests, Timeout) ->
    Deadline = deadline(Timeout),
    Jobs = [start_job(Request) || Request <- Requests],
    case wait(maps:from_list(Jobs), Deadline, #{}, #{}) of
        {replied, Done} ->
            case [Error || {error, _} = Error <- maps:values(Done)] of
                [] -> {ok, [value(maps:get(Ref, Done)) || {Ref, _} <- Jobs]};
                [Error | _] -> Error
            end;
        {expired, _} ->
            {error, timeout}
    end.

-spec value({ok, term()}) -> term().
value({ok, Value}) -> Value.

%% @doc Run every request at `Where' at once and wait up to `Timeout' in all: the outcome of
%% each, in the order of `Requests' (`{error, timeout}' for those the time ran out on, which
%% are given up). No semaphore slot (as erlang_python 1.6's parallel/1).
-spec parallel(where(), [request()], timeout()) -> {ok, [outcome()]} | {error, term()}.
parallel(Where, Requests, Timeout) ->
    case target(Where) of
        {ok, Target} -> all(Target, Requests, Timeout);
        {error, _} = Error -> Error
    end.

%% Starts `Requests' at `Target' and waits for every one of them (an error does not give the
%% others up): `{ok, Outcomes}' in the order of `Requests', those the time ran out on
%% `{error, timeout}'.
-spec all(target(), [request()], timeout()) -> {ok, [outcome()]}.
all(Target, Requests, Timeout) ->
    Deadline = deadline(Timeout),
    Jobs = [submit_at(Target, Request) || Request <- Requests],
    {_, Done} = wait(maps:from_list(Jobs), Deadline, #{}, #{}, every),
    {ok, [maps:get(Ref, Done) || {Ref, _} <- Jobs]}.

%% Queues `Request' at `Target'; a request that cannot start leaves its error in the mailbox.
-spec submit_at(target(), request()) -> {reference(), py_nif:job() | undefined}.
submit_at(Target, Request) ->
    Ref = make_ref(),
    case submit(Target, Ref, Request) of
        {error, _} = Error ->
            self() ! {Ref, Error},
            {Ref, undefined};
        Job ->
            {Ref, Job}
    end.

%%% The wait

%% Waits for the replies of every request in `Pending', in whatever order they come, starting
%% the callbacks their executors make. The first error ends the wait and gives the others up.
-spec wait(pending(), deadline(), done(), serving()) -> ended().
wait(Pending, Deadline, Done, Serving) ->
    wait(Pending, Deadline, Done, Serving, first_error).

%% With `every', an error does not end the wait: each request's outcome is collected.
-spec wait(pending(), deadline(), done(), serving(), first_error | every) -> ended().
wait(Pending, _Deadline, Done, _Serving, _Mode) when map_size(Pending) =:= 0 ->
    {replied, Done};
wait(Pending, Deadline, Done, Serving, Mode) ->
    receive
        {Ref, Message} when is_map_key(Ref, Pending) ->
            handle(Ref, Message, Pending, Deadline, Done, Serving, Mode)
    after remaining(Deadline) ->
        expire(Pending, Done, Serving)
    end.

%% A callback request: starts the function Python called and goes on waiting. A reply: its
%% outcome is done.
-spec handle(reference(), term(), pending(), deadline(), done(), serving()) -> ended().
handle(Ref, Message, Pending, Deadline, Done, Serving) ->
    handle(Ref, Message, Pending, Deadline, Done, Serving, first_error).

-spec handle(reference(), term(), pending(), deadline(), done(), serving(),
             first_error | every) -> ended().
handle(Ref, {'$py_callback', Id, Name, Args}, Pending, Deadline, Done, Serving, Mode) ->
    Worker = case Serving of
                 #{Ref := Pid} ->
                     Pid ! {'$py_serve', Id, Name, Args},
                     Pid;
                 #{} ->
                     serve(Ref, maps:get(Ref, Pending), Id, Name, Args)
             end,
    wait(Pending, Deadline, Done, Serving#{Ref => Worker}, Mode);
handle(Ref, Reply, Pending, Deadline, Done, Serving0, Mode) ->
    Rest = maps:remove(Ref, Pending),
    %% The job has replied, so its callbacks are all answered: the worker is idle.
    Serving = case maps:take(Ref, Serving0) of
                  {Worker, Others} ->
                      Worker ! '$py_served',
                      Others;
                  error ->
                      Serving0
              end,
    case reply(Reply) of
        {error, _} = Error when map_size(Rest) > 0, Mode =:= first_error ->
            _ = expire(Rest, #{}, Serving),
            {replied, Done#{Ref => Error}};
        Outcome ->
            wait(Rest, Deadline, Done#{Ref => Outcome}, Serving, Mode)
    end.

%% Gives up on every pending request: kills the function still running for it, cancels it,
%% and leaves nothing of it in the mailbox.
-spec expire(pending(), done(), serving()) -> ended().
expire(Pending, Done, Serving) ->
    maps:foreach(fun(Ref, Pid) when is_map_key(Ref, Pending) -> abandon(Pid);
                    (_Ref, _Pid) -> ok
                 end, Serving),
    {expired, maps:fold(fun(Ref, Job, Acc) -> Acc#{Ref => cancel(Job, Ref)} end, Done, Pending)}.

%% Stops the process running a callback nobody waits for any more (unlinked first: its death
%% must not take this process with it). Its own requests, nested on the executor, are
%% cancelled when it dies.
-spec abandon(pid()) -> ok.
abandon(Pid) ->
    unlink(Pid),
    exit(Pid, kill),
    ok.

%% Either the job is cancelled and will never reply, or the executor has already committed to
%% replying and the reply must be taken out of the mailbox.
-spec cancel(py_nif:job() | undefined, reference()) -> outcome().
cancel(undefined, Ref) ->
    flush(Ref),
    {error, timeout};
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

-spec outcome(reference(), ended()) -> outcome().
outcome(Ref, {_, Done}) ->
    maps:get(Ref, Done).

-spec reply(py_nif:reply()) -> outcome().
reply({ok_etf, Etf}) ->
    %% A result in the external term format: from a sub-interpreter (docs/parallelism.md), or
    %% one holding big maps (docs/type-conversion.md). Only atoms of the conversion table and
    %% the nodes of pids and references that came in.
    {ok, decode_etf(Etf)};
reply({done_etf, Etf}) ->
    {done, decode_etf(Etf)};
reply({ok_etf, Etf, Handles}) ->
    {ok, decode_etf(Etf, Handles)};
reply({done_etf, Etf, Handles}) ->
    {done, decode_etf(Etf, Handles)};
reply({error, Reason, Traceback}) ->
    _ = put(?PY_TRACEBACK_KEY, Traceback),
    {error, Reason};
reply(Reply) ->
    Reply.

%% `binary_to_term/2' builds each map of more than 32 keys in one step that does not yield
%% (10-20 ms for 100k keys on OTP 25): big results are decoded on a dirty scheduler instead.
-spec decode_etf(binary()) -> term().
decode_etf(Etf) when byte_size(Etf) < ?ETF_DIRTY_BYTES ->
    binary_to_term(Etf, [safe]);
decode_etf(Etf) ->
    py_nif:job_decode_reply(Etf).

%% @doc The term in `Etf', bytes the NIF wrote that may hold opaque handles (a result's, or the
%% arguments of a callback, {@link py_callback:execute/2}): the references of NIF resources,
%% which decoding in this node turns back into the resources only while they live. `Handles'
%% (the resources, sent beside the bytes) keeps them alive until the bytes are decoded: it is
%% used after the decode, so a garbage collection while `binary_to_term/2' yields cannot free it.
%% Decoded as replies are: in this process under 16 KiB, otherwise on a dirty scheduler.
-spec decode_etf(binary(), [reference()]) -> term().
decode_etf(Etf, Handles) ->
    Value = decode_etf(Etf),
    ?MODULE:keep(Handles),
    Value.

%% Starts a process of its own (as erlang_python 1.6 runs callback functions) that runs the
%% function registered as `Name' for callback `Id' of `Job', answers the executor, then runs the
%% job's next callbacks, one at a time (the executor waits for each answer), until the job has
%% replied (`'$py_served''). The executor sends those straight to it (`job_route_callbacks/2'):
%% `{Ref, {'$py_callback', ...}}'; one that reached the caller first is passed on as
%% `{'$py_serve', ...}'. Its own requests go to the executor
%% that waits for it (see target/1), under the caller's trace parent. It is linked to this
%% process: if this process dies, so does the function; a function that kills its own process
%% (`exit(self(), kill)') takes this one along, as it did when functions ran here. A function
%% that returns after its caller gave up answers a cancelled job, which ignores it.
-spec serve(reference(), py_nif:job(), non_neg_integer(), binary(), py_callback:args()) ->
    pid().
serve(Ref, Job, Id, Name, Args) ->
    Caller = self(),
    Pid = spawn_link(fun() ->
                             _ = put(?PY_SERVING_KEY, Job),
                             %% Its requests carry the caller's trace parent
                             %% (py:with_trace_parent/2).
                             ok = py_nif:trace_parent_inherit(Caller),
                             serve_loop(Ref, Job, Id, Name, Args)
                     end),
    ok = py_nif:job_route_callbacks(Job, Pid),
    Pid.

-spec serve_loop(reference(), py_nif:job(), non_neg_integer(), binary(), py_callback:args()) ->
    ok.
serve_loop(Ref, Job, Id, Name, Args) ->
    answer(Job, Id, py_callback:execute(Name, Args)),
    receive
        {Ref, {'$py_callback', Next, NextName, NextArgs}} ->
            serve_loop(Ref, Job, Next, NextName, NextArgs);
        {'$py_serve', Next, NextName, NextArgs} ->
            serve_loop(Ref, Job, Next, NextName, NextArgs);
        '$py_served' ->
            ok
    end.

%% Answers callback `Id' of `Job'; a result too big to copy on a normal scheduler goes through
%% the NIF's dirty twin.
-spec answer(py_nif:job(), non_neg_integer(), py_callback:result()) -> ok.
answer(Job, Id, Result) ->
    case py_nif:callback_reply(Job, Id, Result) of
        ok -> ok;
        dirty -> py_nif:callback_reply_dirty(Job, Id, Result)
    end.

-spec deadline(timeout()) -> deadline().
deadline(infinity) -> infinity;
deadline(Timeout) -> erlang:monotonic_time(millisecond) + Timeout.

-spec remaining(deadline()) -> timeout().
remaining(infinity) -> infinity;
remaining(Deadline) -> max(0, Deadline - erlang:monotonic_time(millisecond)).

%% @doc The formatted traceback of the last Python exception returned to this process.
-spec last_traceback() -> binary() | undefined.
last_traceback() ->
    get(?PY_TRACEBACK_KEY).

%%% Streaming

%% @doc The items of what a call or an eval returned: each item of a generator or iterator,
%% taken `1000' per request of up to `Timeout' each; any other value as a one-element list.
-spec collect(outcome(), timeout()) -> {ok, [term()]} | {error, term()}.
collect({ok, {generator, Handle}}, Timeout) ->
    collect(Handle, [], Timeout);
collect({ok, Value}, _Timeout) ->
    {ok, [Value]};
collect({error, _} = Error, _Timeout) ->
    Error.

-spec collect(py_nif:handle(), [[term()]], timeout()) -> {ok, [term()]} | {error, term()}.
collect(Handle, Batches, Timeout) ->
    case run(default, {next, Handle, ?STREAM_BATCH}, Timeout) of
        {ok, Items} -> collect(Handle, [Items | Batches], Timeout);
        {done, Items} -> {ok, lists:append(lists:reverse([Items | Batches]))};
        {error, _} = Error -> Error
    end.

%%% Contexts

%% @doc Check an executor out of the pool for a context of the calling process.
-spec new_context() -> {ok, py_nif:context()} | {error, no_workers_available | not_started}.
new_context() ->
    case pool() of
        {ok, Pool} ->
            case py_nif:context_bind(Pool) of
                {ok, _} = Ok -> Ok;
                {error, Reason} -> submit_failed(Reason)
            end;
        {error, _} = Error ->
            Error
    end.

%% @doc Bind the calling process to a new context, unless it is bound already.
-spec bind() -> ok | {error, no_workers_available | not_started}.
bind() ->
    case get(?PY_CONTEXT_KEY) of
        undefined ->
            case new_context() of
                {ok, Context} ->
                    _ = put(?PY_CONTEXT_KEY, Context),
                    ok;
                {error, _} = Error ->
                    Error
            end;
        _ ->
            ok
    end.

%% @doc Release the calling process's context, if it has one.
-spec unbind() -> ok.
unbind() ->
    case erase(?PY_CONTEXT_KEY) of
        undefined -> ok;
        Context -> py_nif:context_unbind(Context)
    end.

%% @doc Whether the calling process has a context that still holds its executor.
-spec is_bound() -> boolean().
is_bound() ->
    case get(?PY_CONTEXT_KEY) of
        undefined -> false;
        Context -> py_nif:context_is_bound(Context)
    end.
