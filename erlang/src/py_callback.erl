%% @private
%% @doc Registry of the Erlang functions Python can call, and router of the calls made from
%% Python threads that are not executors.
%%
%% The registry is the public ETS table `py_callbacks' (name => fun or `{M, F}'), owned by this
%% process; the NIF keeps the set of names so that `erlang.<name>' resolves in Python at once.
%% A call made on an executor reaches the process that is waiting for the Python job (see
%% {@link py_request}); a call made on any other Python thread arrives here as
%% `{'$py_thread_callback', Channel, Name, Args}' (or, from `erlang.async_call', as
%% `{'$py_async_callback', Channel, Name, Args}') and runs in a fresh process, so a slow or
%% crashing function never blocks the router; the router monitors it, and if it is killed
%% before replying, answers `{error, <<"exit">>, Reason, <<>>}' in its place. `erlang.send' to
%% a process of another node arrives as `{'$py_send', {Pid, Message}}' and is sent on.
-module(py_callback).
-behaviour(gen_server).

-export([start_link/0, register/2, unregister/1, is_registered/1, execute/2]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).

-define(TAB, py_callbacks).
%% Characters of an Erlang reason or stack trace printed for Python (docs/errors.md).
-define(TEXT_CAP, 16384).

-type target() :: fun((list()) -> term()) | {module(), atom()}.
-type result() ::
    {ok, term()}
    | {error, Class :: binary(), Reason :: binary(), Stacktrace :: binary()}
    | {not_found, binary()}.
%% A callback's positional arguments as the NIF sends them: a list, or that list in the external
%% term format with the resources of the handles it holds (see execute/2).
-type args() :: list() | {etf, binary(), [reference()]}.
-export_type([result/0, args/0]).

%% How a runner answers: thread_reply/2 or async_reply/2.
-type reply_fun() :: fun((reference(), result()) -> ok | error).
%% The functions running for Python threads (their monitor => how to answer if they die), and
%% the processes of mailboxes (their monitor => the inbox told when they end).
-type running() :: #{reference() => {reply_fun(), reference()} | {mailbox, py_nif:inbox()}}.

%% @doc Start the registry and router, registered as `py_callback'.
-spec start_link() -> {ok, pid()} | {error, term()}.
start_link() ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

%% @doc Register `Target' under `Name' (replacing any previous one).
-spec register(binary(), target()) -> ok | {error, not_started}.
register(Name, Target) ->
    try ets:insert(?TAB, {Name, Target}) of
        true -> py_nif:callback_register(Name)
    catch
        error:badarg -> {error, not_started}
    end.

%% @doc Forget `Name' (also `ok' when it was not registered).
-spec unregister(binary()) -> ok | {error, not_started}.
unregister(Name) ->
    try ets:delete(?TAB, Name) of
        true -> py_nif:callback_unregister(Name)
    catch
        error:badarg -> {error, not_started}
    end.

%% @doc Whether a function is registered under `Name'.
-spec is_registered(binary()) -> boolean().
is_registered(Name) ->
    try
        ets:member(?TAB, Name)
    catch
        error:badarg -> false
    end.

%% @doc Run the function registered as `Name' with the list of positional arguments. Arguments
%% holding maps of more than 32 keys come from the NIF in the external term format, `{etf,
%% Bytes, Handles}' (docs/type-conversion.md, "Big maps in results"): decoded here, in the
%% process that runs the function.
-spec execute(binary(), args()) -> result().
execute(Name, {etf, Bytes, Handles}) ->
    execute(Name, py_request:decode_etf(Bytes, Handles));
execute(Name, Args) ->
    try ets:lookup(?TAB, Name) of
        [{_, Fun}] when is_function(Fun, 1) -> invoke(Fun, Args);
        [{_, {M, F}}] -> invoke(fun M:F/1, Args);
        [] -> {not_found, Name}
    catch
        error:badarg -> {not_found, Name}
    end.

-spec invoke(fun((list()) -> term()), list()) -> result().
invoke(Fun, Args) ->
    try
        {ok, Fun(Args)}
    catch
        Class:Reason:Stack ->
            {error, atom_to_binary(Class, utf8), reason_text(Class, Reason, Stack), text(Stack)}
    end.

%% An Elixir exception (a struct with `__exception__' set: `raise ArgumentError, "bad"') reads
%% as Elixir prints it, `** (ArgumentError) bad' (`Exception.format_banner/3'), instead of the
%% struct's fields printed as an Erlang map; capped as text/1 caps (docs/callbacks.md, "Errors").
%% Without Elixir loaded, or if formatting fails, the map is printed as any other reason.
-spec reason_text(atom(), term(), list()) -> binary().
reason_text(error, #{'__exception__' := true, '__struct__' := Module} = Exception, Stack)
        when is_atom(Module) ->
    try
        %% binary_to_existing_atom: without Elixir in the VM the atom does not exist, and none is
        %% minted.
        ExceptionModule = binary_to_existing_atom(<<"Elixir.Exception">>),
        Banner = ExceptionModule:format_banner(error, Exception, Stack),
        true = is_binary(Banner),
        cap(Banner)
    catch
        _:_ -> text(Exception)
    end;
reason_text(_Class, Reason, _Stack) ->
    text(Reason).

%% At most ?TEXT_CAP characters of `Text', the rest cut with `...'.
-spec cap(unicode:unicode_binary()) -> binary().
cap(Text) ->
    case string:length(Text) > ?TEXT_CAP of
        true -> unicode:characters_to_binary([string:slice(Text, 0, ?TEXT_CAP), "..."]);
        false -> Text
    end.

%% The reason or stack trace of a failed function as Python sees it (`ErlangError.reason',
%% `.stacktrace'): the term printed as Erlang text, except that a binary holding printable
%% UTF-8 text is printed as that text, unescaped. A reason that holds the error of a nested
%% Python call (`{badmatch, {error, {'ErlangError', Msg}}}') then holds `Msg' as it was
%% instead of escaped once more, so nesting adds a few bytes per level instead of doubling the
%% text, and the original cause stays readable. At most ?TEXT_CAP characters are printed; the
%% rest is cut with `...' (docs/errors.md, "Size caps").
-spec text(term()) -> binary().
text(Term) ->
    {Printed, _} = print(Term, ?TEXT_CAP),
    unicode:characters_to_binary(Printed).

%% Prints `Term' in at most about `Budget' characters; the budget left.
-spec print(term(), integer()) -> {unicode:chardata(), integer()}.
print(_Term, Budget) when Budget =< 0 ->
    {"...", Budget};
print(Bin, Budget) when is_binary(Bin) ->
    Part = binary:part(Bin, 0, min(byte_size(Bin), Budget)),
    case unicode:characters_to_list(Part) of
        Chars when is_list(Chars) ->
            case io_lib:printable_unicode_list(Chars) of
                true when Part =:= Bin -> {["<<\"", Part, "\">>"], Budget - length(Chars) - 6};
                true -> {["<<\"", Part, "...\">>"], 0};
                false -> plain(Bin, Budget)
            end;
        _ ->
            plain(Bin, Budget)
    end;
print(Tuple, Budget) when is_tuple(Tuple) ->
    {Items, Left} = print_all(tuple_to_list(Tuple), Budget - 2, [], fun print/2),
    {[${, Items, $}], Left};
print(Map, Budget) when is_map(Map) ->
    {Items, Left} = print_all(maps:to_list(Map), Budget - 3, [], fun print_pair/2),
    {["#{", Items, $}], Left};
print(List, Budget) when is_list(List), List =/= [] ->
    case io_lib:printable_unicode_list(List) of
        true -> plain(List, Budget);
        false -> print_list(List, Budget - 2, [])
    end;
print(Term, Budget) ->
    plain(Term, Budget).

%% `Term' as `~tp' prints it, cut to `Budget' characters.
-spec plain(term(), integer()) -> {unicode:chardata(), integer()}.
plain(Term, Budget) ->
    Printed = io_lib:format("~tp", [Term], [{chars_limit, max(Budget, 8)}]),
    {Printed, Budget - string:length(Printed)}.

%% `Items' printed with `Print', comma-separated, until the budget is spent.
-spec print_all([term()], integer(), [unicode:chardata()],
                fun((term(), integer()) -> {unicode:chardata(), integer()})) ->
    {unicode:chardata(), integer()}.
print_all([], Budget, Acc, _Print) ->
    {lists:join($,, lists:reverse(Acc)), Budget};
print_all(_Items, Budget, Acc, _Print) when Budget =< 0 ->
    {lists:join($,, lists:reverse(["..." | Acc])), Budget};
print_all([Item | Rest], Budget, Acc, Print) ->
    {Printed, Left} = Print(Item, Budget),
    print_all(Rest, Left - 1, [Printed | Acc], Print).

%% A map entry, `Key => Value'.
-spec print_pair({term(), term()}, integer()) -> {unicode:chardata(), integer()}.
print_pair({K, V}, Budget) ->
    {Key, Left} = print(K, Budget - 4),
    {Value, Left2} = print(V, Left),
    {[Key, " => ", Value], Left2}.

%% A list that is not text, proper or improper.
-spec print_list(maybe_improper_list(), integer(), [unicode:chardata()]) ->
    {unicode:chardata(), integer()}.
print_list([], Budget, Acc) ->
    {[$[, lists:join($,, lists:reverse(Acc)), $]], Budget};
print_list(_List, Budget, Acc) when Budget =< 0 ->
    {[$[, lists:join($,, lists:reverse(["..." | Acc])), $]], Budget};
print_list([Item | Rest], Budget, Acc) ->
    {Printed, Left} = print(Item, Budget),
    print_list(Rest, Left - 1, [Printed | Acc]);
print_list(Tail, Budget, Acc) ->
    {Printed, Left} = print(Tail, Budget),
    {[$[, lists:join($,, lists:reverse(Acc)), $|, Printed, $]], Left}.

%% Runs the function in a fresh monitored process that replies through `Reply'; remembers the
%% channel until that process ends.
-spec run(reply_fun(), reference(), binary(), args(), running()) -> running().
run(Reply, Channel, Name, Args, Running) ->
    {_Pid, Monitor} = spawn_monitor(fun() -> Reply(Channel, execute(Name, Args)) end),
    Running#{Monitor => {Reply, Channel}}.

%%% gen_server callbacks

%% @private
-spec init([]) -> {ok, running()}.
init([]) ->
    process_flag(trap_exit, true),
    ?TAB = ets:new(?TAB, [named_table, public, set, {read_concurrency, true}]),
    ok = py_nif:callback_set_router(self()),
    {ok, #{}}.

%% @private
-spec handle_call(term(), gen_server:from(), running()) ->
    {reply, {error, unknown_call}, running()}.
handle_call(_Request, _From, State) ->
    {reply, {error, unknown_call}, State}.

%% @private
-spec handle_cast(term(), running()) -> {noreply, running()}.
handle_cast(_Request, State) ->
    {noreply, State}.

%% @private
-spec handle_info(term(), running()) -> {noreply, running()} | {stop, term(), running()}.
handle_info({'$py_thread_callback', Channel, Name, Args}, Running) ->
    {noreply, run(fun thread_reply/2, Channel, Name, Args, Running)};
handle_info({'$py_async_callback', Channel, Name, Args}, Running) ->
    {noreply, run(fun async_reply/2, Channel, Name, Args, Running)};
handle_info({'$py_mailbox_open', Inbox}, Running) ->
    %% erlang.open_mailbox(): the mailbox's process, monitored so that its exit reason reaches
    %% Python.
    {Pid, Monitor} = spawn_monitor(py_mailbox, init, [Inbox, self()]),
    _ = case py_nif:mailbox_attach(Inbox, Pid) of
        ok -> ok;
        closed -> Pid ! {'$py_mailbox_close', Inbox}
    end,
    {noreply, Running#{Monitor => {mailbox, Inbox}}};
handle_info({'$py_send', {Pid, Message}}, Running) ->
    %% erlang.send to a process of another node (the NIF sends to local ones itself).
    Pid ! Message,
    {noreply, Running};
handle_info({'DOWN', Monitor, process, _Pid, Reason}, Running) ->
    case maps:take(Monitor, Running) of
        {{mailbox, Inbox}, Rest} ->
            ok = py_nif:mailbox_down(Inbox, text(Reason)),
            {noreply, Rest};
        {{Reply, Channel}, Rest} when Reason =/= normal ->
            %% Killed before it could reply (a crash inside the function is caught and
            %% replied by the runner itself): the Python caller must not wait forever.
            _ = Reply(Channel, {error, <<"exit">>, text(Reason), <<>>}),
            {noreply, Rest};
        {_, Rest} ->
            {noreply, Rest};
        error ->
            {noreply, Running}
    end;
handle_info({'EXIT', _From, Reason}, State) when Reason =/= normal ->
    {stop, Reason, State};
handle_info(_Info, State) ->
    {noreply, State}.

%% Answers a Python thread's callback; a result too big to copy on a normal scheduler goes
%% through the NIF's dirty twin.
-spec thread_reply(reference(), result()) -> ok | error.
thread_reply(Channel, Result) ->
    case py_nif:callback_thread_reply(Channel, Result) of
        dirty -> py_nif:callback_thread_reply_dirty(Channel, Result);
        Answer -> Answer
    end.

%% Answers an `erlang.async_call' (see thread_reply/2).
-spec async_reply(reference(), result()) -> ok | error.
async_reply(Channel, Result) ->
    case py_nif:callback_async_reply(Channel, Result) of
        dirty -> py_nif:callback_async_reply_dirty(Channel, Result);
        Answer -> Answer
    end.

%% @private
-spec terminate(term(), running()) -> ok.
terminate(_Reason, _State) ->
    py_nif:callback_set_router(undefined).
