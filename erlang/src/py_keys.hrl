%% Private to the application: every key erlang_python keeps in a process dictionary or in
%% `persistent_term'. No other module spells a key out; applications must not read or write
%% them.

%%% Process dictionary of a process that makes requests (read and written only by py_request).

%% The job whose Python callback this process is running: its requests nest on that job's
%% executor, which waits for the callback.
-define(PY_SERVING_KEY, '$py_serving').
%% The context of a process bound with py:bind/0.
-define(PY_CONTEXT_KEY, '$py_context').
%% The formatted traceback of the last Python exception returned to this process.
-define(PY_TRACEBACK_KEY, py_last_traceback).
%% The job started by py:call_async/4 or py:async_call/4 under the reference `Ref', until
%% py:await/2 collects its reply.
-define(PY_ASYNC_KEY(Ref), {py_async, Ref}).

%%% persistent_term

%% The NIF executor pool: written and erased only by py_pool, read on every request.
-define(PY_POOL_KEY, {erlang_python, pool}).
%% The sub-interpreter pool, once py_subinterp started it (docs/parallelism.md).
-define(PY_SUBINTERP_KEY, {erlang_python, subinterp_pool}).
%% The semaphore resource of py_semaphore, published by its owner process.
-define(PY_SEMAPHORE_KEY, {erlang_python, semaphore}).
%% {Counter, Max} of py_state: the atomics counting the keys of the shared state, and the bound.
-define(PY_STATE_KEY, {erlang_python, state}).
