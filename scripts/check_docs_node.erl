%% @doc The BEAM side of `scripts/check_docs.py --run': evaluates the examples of one page of
%% documentation in a fresh node, as a reader would in an Erlang shell.
%%
%% Started as `erl -noinput -pa EBIN -pa DIR -run check_docs_node main IN OUT' with IN and OUT
%% two file descriptors (pipes to the checker). Each request is one packet (4-byte length) of
%% UTF-8 text: a command word, a newline, and the command's text; each reply one packet
%% `Status\nText'. Standard output and error belong to the examples (Python's print, logger
%% reports), never to the protocol.
%%
%% Commands:
%% - `start': starts erlang_python (and its dependencies); replies `ok'.
%% - `shell\nInput': one shell prompt's input (one or more expressions ending with a dot),
%%   evaluated with the bindings of the page's earlier prompts, as the shell does; `f()' and
%%   `f(Var)' forget bindings. Replies `ok\nValue' (the last value, printed as the shell
%%   prints it) or `exception\nLine\nText': the line (of the input) of the expression that
%%   raised, and the exception as the shell reports it (`** exception error: ...').
%% - `block\nSource': a block of expressions (a dot ends each form) with bindings of its own;
%%   replies `ok\nValue' or `exception\nText'.
%% - `python\nSource': `py:exec/1' of the source in `__main__'; replies `ok' or
%%   `exception\nText', Python's traceback (or the error, when there is none).
%% - `path\nDir': puts Dir first on Python's `sys.path' (modules a page defines), now or, if
%%   erlang_python is not running yet, before the first example that runs once it is.
%% - `quit': replies `ok' and halts.
%% Another language (Elixir: `'Elixir.Code':eval_string/3') is one more command here and a
%% block kind in the checker.
-module(check_docs_node).

-export([main/1]).

-spec main([string()]) -> no_return().
main([In, Out]) ->
    Port = open_port({fd, list_to_integer(In), list_to_integer(Out)},
                     [binary, {packet, 4}, eof]),
    loop(Port, #{}).

-spec loop(port(), erl_eval:binding_struct()) -> no_return().
loop(Port, Bindings) ->
    receive
        {Port, {data, Request}} ->
            [Command, Text] = case binary:split(Request, <<"\n">>) of
                                  [C, T] -> [C, T];
                                  [C] -> [C, <<>>]
                              end,
            ok = add_paths(),
            {Reply, Next} = command(Command, unicode:characters_to_list(Text), Bindings),
            Port ! {self(), {command, unicode:characters_to_binary(Reply)}},
            case Command of
                <<"quit">> -> halt(0);
                _ -> loop(Port, Next)
            end;
        {Port, eof} ->
            halt(0)
    end.

-spec command(binary(), string(), erl_eval:binding_struct()) ->
    {iodata(), erl_eval:binding_struct()}.
command(<<"start">>, _, Bindings) ->
    case application:ensure_all_started(erlang_python) of
        {ok, _} -> {"ok", Bindings};
        Error -> {["exception\n", io_lib:format("~tp", [Error])], Bindings}
    end;
command(<<"shell">>, Text, Bindings) ->
    shell(Text, Bindings);
command(<<"block">>, Text, Bindings) ->
    {Reply, _} = shell(Text, erl_eval:new_bindings()),
    {Reply, Bindings};
command(<<"python">>, Text, Bindings) ->
    case py:exec(unicode:characters_to_binary(Text)) of
        ok ->
            {"ok", Bindings};
        {error, Reason} ->
            %% The traceback ends with the exception and its message; other errors have none.
            Report = case {Reason, py:last_traceback()} of
                         {{_, _}, Traceback} when is_binary(Traceback) -> Traceback;
                         _ -> io_lib:format("~tp", [Reason])
                     end,
            {["exception\n", Report], Bindings}
    end;
command(<<"path">>, Dir, Bindings) ->
    put(paths, [unicode:characters_to_binary(Dir) | paths()]),
    ok = add_paths(),
    {"ok", Bindings};
command(<<"quit">>, _, Bindings) ->
    {"ok", Bindings}.

-spec paths() -> [binary()].
paths() ->
    case get(paths) of
        undefined -> [];
        Dirs -> Dirs
    end.

%% Puts the directories of `path' commands on sys.path, once erlang_python runs.
-spec add_paths() -> ok.
add_paths() ->
    case paths() =/= [] andalso is_pid(whereis(py_pool)) of
        true ->
            [{ok, none} = py:eval(<<"__import__('sys').path.insert(0, d)">>, #{d => Dir})
             || Dir <- paths()],
            put(paths, []),
            ok;
        false ->
            ok
    end.

%% Every form of Text in turn (a dot ends each), as shell prompts; the reply is the last
%% value, or the first exception.
-spec shell(string(), erl_eval:binding_struct()) -> {iodata(), erl_eval:binding_struct()}.
shell(Text, Bindings) ->
    case erl_scan:string(Text, 1, [text]) of
        {ok, Tokens, _} ->
            forms(split_forms(Tokens, [], []), Bindings, "ok");
        {error, {Line, Mod, Error}, _} ->
            {exception(Line, Mod:format_error(Error)), Bindings}
    end.

-spec forms([[erl_scan:token()]], erl_eval:binding_struct(), iodata()) ->
    {iodata(), erl_eval:binding_struct()}.
forms([], Bindings, Last) ->
    {Last, Bindings};
forms([Form | Rest], Bindings, _) ->
    case erl_parse:parse_exprs(Form) of
        {ok, Exprs} ->
            case eval(Exprs, Bindings) of
                {ok, Value, Next} -> forms(Rest, Next, ["ok\n", Value]);
                {exception, Line, Text} -> {exception(Line, Text), Bindings}
            end;
        {error, {Line, Mod, Error}} ->
            {exception(Line, Mod:format_error(Error)), Bindings}
    end.

-spec exception(erl_anno:location(), iodata()) -> iodata().
exception({Line, _Column}, Text) -> exception(Line, Text);
exception(Line, Text) -> ["exception\n", integer_to_list(Line), "\n", Text].

-spec split_forms([erl_scan:token()], [erl_scan:token()], [[erl_scan:token()]]) ->
    [[erl_scan:token()]].
split_forms([], [], Acc) ->
    lists:reverse(Acc);
split_forms([], Form, Acc) ->
    %% A block whose last form has no dot: the reader's shell would wait for one.
    lists:reverse([lists:reverse(Form, [{dot, 0}]) | Acc]);
split_forms([{dot, _} = Dot | Rest], Form, Acc) ->
    split_forms(Rest, [], [lists:reverse([Dot | Form]) | Acc]);
split_forms([Token | Rest], Form, Acc) ->
    split_forms(Rest, [Token | Form], Acc).

%% The expressions of one form in turn, so that an exception is reported at its own line.
-spec eval([erl_parse:abstract_expr()], erl_eval:binding_struct()) ->
    {ok, iodata(), erl_eval:binding_struct()} | {exception, erl_anno:line(), iodata()}.
eval([{call, _, {atom, _, f}, []}], _Bindings) ->
    {ok, "ok", erl_eval:new_bindings()};
eval([{call, _, {atom, _, f}, [{var, _, Name}]}], Bindings) ->
    {ok, "ok", erl_eval:del_binding(Name, Bindings)};
eval([Expr], Bindings) ->
    eval_one(Expr, Bindings);
eval([Expr | Rest], Bindings) ->
    case eval_one(Expr, Bindings) of
        {ok, _, Next} -> eval(Rest, Next);
        Exception -> Exception
    end.

-spec eval_one(erl_parse:abstract_expr(), erl_eval:binding_struct()) ->
    {ok, iodata(), erl_eval:binding_struct()} | {exception, erl_anno:line(), iodata()}.
eval_one(Expr, Bindings) ->
    try erl_eval:exprs([Expr], Bindings) of
        {value, Value, Next} -> {ok, pretty(Value, 1), Next}
    catch
        Class:Reason:Stack ->
            %% As the shell reports it: the frames below the example's own (erl_eval's, this
            %% module's, the boot's) are left out.
            Skip = fun(M, _F, _A) -> lists:member(M, [erl_eval, ?MODULE, init]) end,
            Format = fun(Term, Column) -> pretty(Term, Column) end,
            Tag = "** ",
            Text = erl_error:format_exception(length(Tag) + 1, Class, Reason, Stack, Skip,
                                              Format, unicode),
            {exception, erl_anno:line(element(2, Expr)), [Tag, Text]}
    end.

-spec pretty(term(), pos_integer()) -> iodata().
pretty(Term, Column) ->
    io_lib_pretty:print(Term, [{column, Column}, {line_length, 80}, {encoding, unicode}]).
