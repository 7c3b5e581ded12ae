%% @private
%% @doc The application environment of `erlang_python': every module reads its variables here,
%% and {@link default/1} is the one table of their defaults. `erlang_python.app.src' lists the
%% keys and sets none, so a variable is set only when the user set it.
%%
%% Each reader checks its values as it always did (see `docs/erlang-api.md', Configuration).
-module(py_config).

-export([get/1, find/1, default/1, warn_ignored/0]).

-export_type([key/0]).

%% A variable with a default here.
-type key() ::
    num_workers
    | max_concurrent
    | malloc_pad
    | state_max_keys
    | log_level
    | log_max_in_flight
    | nif_log_level
    | default_handler_filter
    | trace_max_spans
    | trace_max_in_flight
    | allow_process_exit
    | asyncio_policy
    | python_path
    | http.
%% A variable that has no default here: unset means something of its own (`num_executors':
%% use `num_workers'; `python_executable': see py_pool; `max_depth': the NIF's own default).
%% `num_subinterp_workers': the size of the sub-interpreter pool, default the number of
%% schedulers online (py_subinterp, docs/parallelism.md).
-type optional_key() :: num_executors | python_executable | max_depth | num_subinterp_workers.

%% Variables of erlang_python 1.6 that mean nothing here, and what to set instead.
-define(IGNORED, [
    {num_async_workers,
        "async_call runs the call on an executor and its coroutine on one asyncio event loop, "
        "so there are no async workers; use num_executors to size the executor pool"}
]).

%% @doc The value of application variable `Key', or its default.
-spec get(key()) -> term().
get(Key) ->
    application:get_env(erlang_python, Key, default(Key)).

%% @doc The value of application variable `Key' if the user set it.
-spec find(key() | optional_key()) -> {ok, term()} | undefined.
find(Key) ->
    application:get_env(erlang_python, Key).

%% @doc The default of application variable `Key'.
-spec default(key()) -> term().
default(num_workers) -> max(2, erlang:system_info(schedulers));
default(max_concurrent) -> erlang:system_info(schedulers) * 2 + 1;
%% glibc mmap threshold and top pad for the OS process (docs/getting-started.md): large Python
%% objects reuse memory instead of page-faulting it in on every allocation.
default(malloc_pad) -> 16 * 1024 * 1024;
default(state_max_keys) -> 100000;
default(log_level) -> debug;
default(log_max_in_flight) -> 10000;
default(nif_log_level) -> info;
%% py_logger lets erlang_python's logger domains through OTP's default handler
%% (docs/logging.md, "Where events are printed").
default(default_handler_filter) -> true;
default(trace_max_spans) -> 10000;
default(trace_max_in_flight) -> 10000;
%% Python calls that would end the OS process (the node) raise ProcessExitRefusedError.
default(allow_process_exit) -> false;
%% asyncio's policy is erlang.ErlangEventLoopPolicy, so asyncio.run in code called from Erlang
%% runs on an erlang.ErlangEventLoop, as in erlang_python 1.6 (docs/asyncio.md).
default(asyncio_policy) -> true;
%% The application's directories on sys.path (py_pool; docs/getting-started.md). `""' (the
%% default of erlang_python 1.6, where it did nothing) is the same empty list.
default(python_path) -> [];
default(http) -> [].


%% @doc Log a warning for each variable of erlang_python 1.6 that is set and ignored here,
%% naming what to set instead. `py_pool' calls it when it starts the pool.
-spec warn_ignored() -> ok.
warn_ignored() ->
    lists:foreach(
        fun({Key, Instead}) ->
            case application:get_env(erlang_python, Key) of
                {ok, _} ->
                    logger:warning(
                        "erlang_python: application variable ~ts (erlang_python 1.6) is "
                        "ignored: ~ts",
                        [Key, Instead],
                        #{domain => [erlang_python]}
                    );
                undefined ->
                    ok
            end
        end,
        ?IGNORED
    ).
