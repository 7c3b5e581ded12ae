#!/usr/bin/env escript
%% -*- erlang -*-
%%! +pc unicode
%%
%% Web apps served by the BEAM (docs/web-frameworks.md):
%%
%%   escript examples/web.escript _build/py3.12/lib/erlang_python/ebin
%%
%% A FastAPI app (examples/python/web_shop.py) whose stock lives in an ETS table: called once
%% directly with py_asgi:run/4, then served on a port by py_http next to a Flask app, and
%% requested with OTP's own HTTP client: JSON in and out, a validation error, a streamed
%% response, and many requests from Erlang processes at once.
-mode(compile).

-define(CLIENTS, 20).
-define(REQUESTS, 10).

main(Args) ->
    Dir = filename:dirname(escript:script_name()),
    {ok, example, Beam} = compile:file(filename:join(Dir, "example.erl"), [binary, report]),
    {module, example} = code:load_binary(example, "example.erl", Beam),
    example:main(Args, "web", [], fun run/2).

run(_Args, _Dir) ->
    example:step("the stock lives in Erlang"),
    Stock = ets:new(stock, [public, set]),
    true = ets:insert(Stock, [{<<"tea">>, 500}, {<<"ink">>, 3}]),
    ok = py:register_function(shop_stock, fun([Name]) ->
                                                  case ets:lookup(Stock, Name) of
                                                      [{_, N}] -> N;
                                                      [] -> none
                                                  end
                                          end),
    ok = py:register_function(shop_take, fun([Name, Qty]) -> take(Stock, Name, Qty) end),
    ok = py:register_function(shop_count, fun([]) -> ets:info(Stock, size) end),

    example:step("one request without a server: py_asgi:run/4"),
    {ok, {200, Headers, Body}} =
        example:show("py_asgi:run(web_shop, api, #{path => <<\"/items/tea\">>}, <<>>)",
                     py_asgi:run(<<"web_shop">>, <<"api">>, #{path => <<"/items/tea">>}, <<>>)),
    #{<<"item">> := <<"tea">>, <<"stock">> := 500} = json(Body),
    true = lists:member({<<"content-type">>, <<"application/json">>}, Headers),

    example:step("serve both apps on ports"),
    {ok, _} = application:ensure_all_started(inets),
    {ok, Api} = py_http:start(#{app => <<"web_shop:api">>, port => 0}),
    {ok, Legacy} = py_http:start(#{app => <<"web_shop:legacy">>, interface => wsgi, port => 0}),
    ApiUrl = fun(Path) -> url(Api, Path) end,
    io:format("  FastAPI on ~ts, Flask on ~ts~n", [ApiUrl(""), url(Legacy, "")]),

    example:step("GET and POST with JSON"),
    {200, #{<<"stock">> := 3}} = example:show("GET /items/ink", get_json(ApiUrl("/items/ink"))),
    {201, #{<<"left">> := 1}} =
        example:show("POST /orders {ink, 2}",
                     post_json(ApiUrl("/orders"), #{item => ink, quantity => 2})),
    {409, #{<<"detail">> := <<"not enough stock">>}} =
        example:show("POST /orders {ink, 2} again",
                     post_json(ApiUrl("/orders"), #{item => ink, quantity => 2})),
    {404, _} = example:show("GET /items/coal", get_json(ApiUrl("/items/coal"))),
    {422, #{<<"detail">> := [_ | _]}} =
        example:show("POST /orders {ink, -1}: validation",
                     post_json(ApiUrl("/orders"), #{item => ink, quantity => -1})),
    {200, #{<<"status">> := <<"ok">>, <<"items">> := 2}} =
        example:show("GET /health (Flask, WSGI)", get_json(url(Legacy, "/health"))),

    example:step("a streamed response"),
    {ok, {{_, 200, _}, _, Lines}} =
        httpc:request(get, {ApiUrl("/countdown/5"), []}, [{timeout, 10000}],
                      [{body_format, binary}]),
    <<"5\n4\n3\n2\n1\nliftoff\n">> = example:show("GET /countdown/5", Lines),
    io:format("  (sent chunked, each line as the app yields it; httpc joins the chunks)~n"),

    example:step("many clients at once"),
    {Seconds, Results} =
        example:timed(fun() ->
                              example:pmap(fun(_) ->
                                                   [get_json(ApiUrl("/items/tea"))
                                                    || _ <- lists:seq(1, ?REQUESTS)]
                                           end, lists:seq(1, ?CLIENTS))
                      end),
    N = ?CLIENTS * ?REQUESTS,
    N = length([ok || {200, #{<<"stock">> := 500}} <- lists:append(Results)]),
    io:format("  ~b requests from ~b processes in ~.2f s (~b requests/s)~n",
              [N, ?CLIENTS, Seconds, round(example:per_second(N, Seconds))]),

    example:step("stop the servers"),
    Url = ApiUrl("/items/tea"),
    ok = py_http:stop(Api),
    ok = py_http:stop(Legacy),
    {error, _} = httpc:request(get, {Url, []}, [{timeout, 2000}], []),
    io:format("  stopped: the port refuses connections~n").

%% The ETS update behind POST /orders: the stock left, or none when there is not enough.
take(Stock, Name, Qty) ->
    case ets:lookup(Stock, Name) of
        [{_, N}] when N >= Qty ->
            ets:update_counter(Stock, Name, -Qty);
        _ ->
            none
    end.

url(Server, Path) ->
    lists:flatten(io_lib:format("http://127.0.0.1:~b~ts", [py_http:port(Server), Path])).

get_json(Url) ->
    {ok, {{_, Status, _}, _, Body}} =
        httpc:request(get, {Url, []}, [{timeout, 10000}], [{body_format, binary}]),
    {Status, json(Body)}.

post_json(Url, Map) ->
    {ok, Json} = py:eval(<<"__import__('json').dumps(m)">>, #{m => Map}),
    {ok, {{_, Status, _}, _, Body}} =
        httpc:request(post, {Url, [], "application/json", Json}, [{timeout, 10000}],
                      [{body_format, binary}]),
    {Status, json(Body)}.

%% JSON text to an Erlang map, decoded by Python's json (OTP 25 has no json module).
json(Text) ->
    {ok, Value} = py:eval(<<"__import__('json').loads(t)">>, #{t => Text}),
    Value.
