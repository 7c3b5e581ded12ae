#!/usr/bin/env escript
%% -*- erlang -*-
%%! +pc unicode
%%
%% Python work on several BEAM nodes over Erlang distribution (docs/scalability.md):
%%
%%   escript examples/distributed.escript _build/py3.12/lib/erlang_python/ebin
%%
%% Each node is an OS process with its own interpreter, so its own GIL: pure-Python work that
%% runs one call at a time inside one node runs in parallel across nodes. This example starts
%% a second node on this machine (peer), starts erlang_python there, and spreads calls over
%% both nodes with erpc. The results and the two interpreters are checked; the timings are
%% printed, not checked.
-mode(compile).

-define(CALLS, 4).
-define(WORK, 2000000).

main(Args) ->
    Dir = filename:dirname(escript:script_name()),
    {ok, example, Beam} = compile:file(filename:join(Dir, "example.erl"), [binary, report]),
    {module, example} = code:load_binary(example, "example.erl", Beam),
    example:main(Args, "distributed", [], fun run/2).

run(_Args, Dir) ->
    example:step("a second node"),
    {Peer, Node} = start_peer(Dir),
    Nodes = [node(), Node],
    Pids = [begin {ok, P} = erpc:call(N, py, call, [os, getpid, []]), P end || N <- Nodes],
    io:format("  nodes ~p~n  their Python processes (os.getpid()) ~p~n", [Nodes, Pids]),
    2 = length(lists:usort(Pids)),

    example:step("the same calls on one node and on two"),
    {ok, Expected} = py:call(fanout, spin, [?WORK]),
    Calls = lists:seq(1, ?CALLS),
    One = example:best_of(3, fun() -> spread([node()], Calls, Expected) end),
    Two = example:best_of(3, fun() -> spread(Nodes, Calls, Expected) end),
    io:format("  ~b x fanout.spin(~b), pure Python:~n"
              "    on 1 node  ~6b ms~n"
              "    on 2 nodes ~6b ms (~.1fx; ~b cores here)~n",
              [?CALLS, ?WORK, round(One * 1000), round(Two * 1000), One / Two,
               erlang:system_info(logical_processors_available)]),

    example:step("erpc:multicall"),
    [{ok, {ok, V}}, {ok, {ok, V}}] =
        example:show("erpc:multicall(Nodes, py, eval, [<<\"sum(range(10))\">>])",
                     erpc:multicall(Nodes, py, eval, [<<"sum(range(10))">>])),
    45 = V,
    ok = peer:stop(Peer).

%% Starts distribution here and a peer node on this host with erlang_python running and the
%% examples' Python modules on its sys.path.
start_peer(Dir) ->
    Unique = os:getpid(),
    %% epmd, which `erl -sname` would have started.
    _ = os:cmd("epmd -daemon"),
    {ok, _} = net_kernel:start(list_to_atom("examples_" ++ Unique), #{name_domain => shortnames}),
    Ebin = filename:dirname(code:which(py)),
    {ok, Peer, Node} = peer:start_link(#{name => "examples_peer_" ++ Unique,
                                         args => ["-pa", Ebin, "-kernel", "logger_level",
                                                  "warning"]}),
    {ok, _} = erpc:call(Node, application, ensure_all_started, [erlang_python]),
    ok = erpc:call(Node, py, add_python_path, [filename:join(Dir, "python")]),
    %% Import fanout there before calls run concurrently: the import is no part of the
    %% timings, and py:call's import does not yet wait for an import of the same module in
    %% progress on another executor (a second caller can see it half-built).
    {ok, _} = erpc:call(Node, py, call, [fanout, spin, [1]]),
    {Peer, Node}.

%% The calls spread round-robin over Nodes, all at once; each checks its result.
spread(Nodes, Calls, Expected) ->
    Count = length(Nodes),
    example:pmap(fun(I) ->
        Node = lists:nth(I rem Count + 1, Nodes),
        {ok, Expected} = erpc:call(Node, py, call, [fanout, spin, [?WORK]], 60000)
    end, Calls).
