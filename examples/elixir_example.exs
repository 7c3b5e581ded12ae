# The tour of erlang_python from Elixir (docs/elixir.md): calls, conversions, Elixir functions
# called from Python, work spread over BEAM processes, lazy streams, shared state, asyncio, and
# the semantic search of examples/semantic_search.escript. With the examples' packages
# installed (`make examples-deps`), from the repository's root:
#
#   elixir -pa _build/py3.12/lib/erlang_python/ebin examples/elixir_example.exs
#
# Every step pattern-matches what it expects: a wrong result raises, and elixir exits with a
# non-zero status.

defmodule Tour do
  @moduledoc "Printing helpers of the tour."

  def step(name), do: IO.puts("\n== #{name} ==")

  @doc "Prints an expression and its value, and returns the value."
  defmacro show(expr) do
    quote do: Tour.print(unquote(Macro.to_string(expr)), unquote(expr))
  end

  def print(label, value) do
    if String.length(label) <= 44 do
      IO.puts("  #{String.pad_trailing(label, 44)} #{inspect(value)}")
    else
      IO.puts("  #{label}\n  #{String.duplicate(" ", 44)} #{inspect(value)}")
    end

    value
  end

  @doc "A Python iterator as a lazy Stream (the PyStream module of docs/elixir.md, shortened)."
  def stream({:generator, handle}, batch) do
    Stream.resource(
      fn -> {:more, handle} end,
      fn
        {:more, h} ->
          case :py.stream_next(h, batch) do
            {:ok, items} -> {items, {:more, h}}
            {:done, items} -> {items, :done}
          end

        :done ->
          {:halt, :done}
      end,
      fn _ -> :ok end
    )
  end
end

defmodule ElixirExample do
  require Tour

  @data Path.join(__DIR__, "data")

  def main do
    Logger.configure(level: :warning)
    :ok = Application.load(:erlang_python)
    # Four executors: calls from four processes run at once.
    Application.put_env(:erlang_python, :num_executors, 4)
    {:ok, _} = Application.ensure_all_started(:erlang_python)
    # One OpenBLAS thread per executor, set before numpy is imported: the executors are the
    # parallelism (examples/example.erl says why).
    {:ok, _} = :py.eval("__import__('os').environ.setdefault('OPENBLAS_NUM_THREADS', '1')")
    # The examples' Python modules (docs/getting-started.md, "Your own Python modules").
    :ok = :py.add_python_path(Path.join(__DIR__, "python"))
    calls()
    conversions()
    callbacks()
    processes()
    streams()
    state()
    asyncio()
    semantic_search()
    :ok = Application.stop(:erlang_python)
    IO.puts("\nelixir_example: every check passed")
  end

  defp calls do
    Tour.step("calls")
    {:ok, 1.4142135623730951} = Tour.show(:py.call(:math, :sqrt, [2.0]))
    {:ok, 255} = Tour.show(:py.call(:builtins, :int, ["ff"], base: 16))
    {:ok, 42} = Tour.show(:py.eval("x * y", %{x: 6, y: 7}))

    :ok =
      :py.exec("""
      def greet(name, punct="!"):
          return f"hello, {name}{punct}"
      """)

    {:ok, "hello, elixir?"} = Tour.show(:py.call(:__main__, :greet, ["elixir"], punct: "?"))
    {:error, {:ZeroDivisionError, "division by zero"}} = Tour.show(:py.eval("1 / 0"))
  end

  defp conversions do
    Tour.step("conversions")
    # Strings are binaries, so str; maps become dicts; atoms other than nil/true/false, str.
    {:ok, ~s({"langs": ["elixir", "python"], "name": "ada"})} =
      Tour.show(
        :py.call(:json, :dumps, [%{name: "ada", langs: ["elixir", "python"]}], sort_keys: true)
      )

    values = [nil, true, :atom, {1, 2}, Integer.pow(2, 70)]

    {:ok, ["NoneType", "bool", "str", "tuple", "int"]} =
      Tour.show(:py.eval("[type(v).__name__ for v in values]", %{values: values}))

    pid = self()
    {:ok, ^pid} = Tour.show(:py.eval("p", %{p: pid}))
  end

  defp callbacks do
    Tour.step("Elixir functions called from Python")
    :ok = :py.register_function(:add, fn [a, b] -> a + b end)
    :ok = :py.register_function(:total, &Enum.sum/1)
    {:ok, 5} = Tour.show(:py.eval("erlang.add(2, 3)"))
    {:ok, 10} = Tour.show(:py.eval("erlang.total(1, 2, 3, 4)"))
    # Python fans out to Elixir: each erlang.async_call runs in a process of its own.
    :ok = :py.register_function(:square, fn [n] -> n * n end)
    {:ok, [1, 4, 9, 16]} = Tour.show(:py.call(:fanout, :gather, [:square, [1, 2, 3, 4]]))
  end

  defp processes do
    Tour.step("BEAM processes calling Python")
    # Four Tasks at once (max_concurrency: the default is one per scheduler); the calls meet at
    # a barrier in Python, so they ran at the same time, on four executors.
    threads =
      1..4
      |> Task.async_stream(fn _ -> :py.call(:fanout, :meet, ["elixir", 4]) end,
        max_concurrency: 4,
        timeout: 60_000
      )
      |> Enum.map(fn {:ok, {:ok, ident}} -> ident end)

    4 = Tour.show(threads |> Enum.uniq() |> length())
  end

  defp streams do
    Tour.step("lazy streams")
    {:ok, naturals} = :py.eval("__import__('itertools').count(1)")
    [1, 4, 9] = Tour.show(naturals |> Tour.stream(100) |> Stream.map(&(&1 * &1)) |> Enum.take(3))
    {:ok, records} = :py.call(:streams, :records, [Path.join(@data, "corpus.json")])
    32 = Tour.show(records |> Tour.stream(10) |> Enum.count())
  end

  defp state do
    Tour.step("shared state")
    config = %{"service" => "search", "version" => 3, "features" => ["embed"]}
    :ok = :py.state_store("config", config)
    {:ok, "search v3 with 1 features"} = Tour.show(:py.call(:counters, :describe, []))

    1..4
    |> Task.async_stream(fn _ -> for _ <- 1..100, do: :py.state_incr("hits") end)
    |> Stream.run()

    {:ok, 400} = Tour.show(:py.state_fetch("hits"))
    :ok = :py.state_clear()
  end

  defp asyncio do
    Tour.step("asyncio")
    {:ok, %{"item" => "tea", "eur" => 3.75}} = Tour.show(:py.call(:coroutines, :price, ["tea"]))
    # 50 coroutines that also wait until all 50 are waiting: they ran at once.
    calls = for i <- 1..50, do: {:coroutines, :price, ["#{i}"], [parties: 50]}
    {:ok, prices} = :py.async_gather(calls)
    50 = Tour.show(length(prices))
    {:ok, [0, 1, 2]} = Tour.show(:py.async_stream(:coroutines, :ticker, [3]))
  end

  defp semantic_search do
    Tour.step("semantic search")

    {:ok, %{"max_embedding_diff" => diff}} =
      :py.call(:minilm, :check_reference, [Path.join(@data, "minilm_reference.json")])

    IO.puts("  the numpy encoder is all-MiniLM-L6-v2 (within #{Float.round(diff, 9)})")

    {:ok, %{"documents" => 32}} =
      :py.call(:search_index, :build, [Path.join(@data, "corpus.json")], %{}, 120_000)

    queries = [
      {"Why does a day on one planet last longer than its year?", "venus"},
      {"who restarts a failed process", "supervision"},
      {"insects telling each other where the food is", "bees"}
    ]

    # One Task per query, all at once.
    queries
    |> Task.async_stream(fn {q, _} -> :py.call(:search_index, :search, [q, 1]) end,
      max_concurrency: length(queries),
      timeout: 60_000
    )
    |> Enum.zip(queries)
    |> Enum.each(fn {{:ok, {:ok, [%{"id" => id, "score" => score}]}}, {q, expected}} ->
      ^expected = id
      IO.puts("  #{q}\n    -> #{id} #{Float.round(score, 3)}")
    end)

    # Embeddings as one binary (the array form), searched again from the binary.
    texts = for {q, _} <- queries, do: q

    {:ok, {:py_array, :float32, [3, 384], bin} = embeddings} =
      :py.call(:search_index, :embed, [texts])

    IO.puts("  embeddings of 3 texts: {:py_array, :float32, [3, 384], <<#{byte_size(bin)} bytes>>}")
    {:ok, hits} = :py.call(:search_index, :search_vectors, [embeddings, 1])
    ["venus", "supervision", "bees"] = Tour.show(Enum.map(hits, fn [%{"id" => id}] -> id end))
  end
end

if :code.which(:py) == :non_existing do
  IO.puts(:stderr, "usage: elixir -pa _build/py3.12/lib/erlang_python/ebin #{__ENV__.file}")
  System.halt(2)
end

ElixirExample.main()
