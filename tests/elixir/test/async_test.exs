defmodule ErlangPythonElixirTests.AsyncTest do
  # :py.async_call and friends from Elixir, and Elixir processes calling Python at once.
  use ExUnit.Case

  setup_all do
    :ok =
      :py.exec("""
      import asyncio

      at_cancelled = []

      async def at_double(n, delay=0.01):
          await asyncio.sleep(delay)
          return 2 * n

      async def at_fail(message):
          await asyncio.sleep(0)
          raise ValueError(message)

      async def at_slow(tag):
          try:
              await asyncio.sleep(30)
          except asyncio.CancelledError:
              at_cancelled.append(tag)
              raise

      async def at_items(n):
          for i in range(n):
              await asyncio.sleep(0)
              yield {'i': i}

      async def at_stock(items):
          return await asyncio.gather(*(erlang.async_call('at_stock', i) for i in items))
      """)
  end

  test "async_call runs a coroutine and async_await collects its result" do
    ref = :py.async_call(:__main__, :at_double, [21])
    assert is_reference(ref)
    assert {:ok, 42} = :py.async_await(ref)
    assert {:ok, 8} = :py.async_await(:py.async_call(:__main__, :at_double, [4], delay: 0), 5000)
    # A result that is not awaitable is the reply at once.
    assert {:ok, 3.0} = :py.async_await(:py.async_call(:math, :sqrt, [9]))
  end

  test "coroutines wait concurrently, started from many Elixir processes" do
    {time, results} =
      :timer.tc(fn ->
        1..50
        |> Task.async_stream(
          fn n -> :py.async_await(:py.async_call(:__main__, :at_double, [n, 0.2])) end,
          max_concurrency: 50
        )
        |> Enum.map(fn {:ok, {:ok, v}} -> v end)
      end)

    assert results == Enum.map(1..50, &(2 * &1))
    # 50 coroutines of 200 ms each, on two executors: together, not one after the other.
    assert time < 5_000_000
  end

  test "an exception keeps its type; a timeout cancels the coroutine" do
    assert {:error, {:ValueError, "bad"}} =
             :py.async_await(:py.async_call(:__main__, :at_fail, ["bad"]))

    assert :py.last_traceback() =~ "at_fail"
    ref = :py.async_call(:__main__, :at_slow, ["t1"])
    assert {:error, :timeout} = :py.async_await(ref, 100)
    assert {:ok, ["t1"]} = wait_for(fn -> :py.eval("at_cancelled") end, {:ok, ["t1"]})
    refute_received _
  end

  test "async_gather and async_stream" do
    assert {:ok, [2, 4, 6]} = :py.async_gather(for n <- 1..3, do: {:__main__, :at_double, [n]})

    assert {:error, {:ValueError, "g"}} =
             :py.async_gather([{:__main__, :at_double, [1]}, {:__main__, :at_fail, ["g"]}])

    assert {:ok, [%{"i" => 0}, %{"i" => 1}]} = :py.async_stream(:__main__, :at_items, [2])
  end

  test "a coroutine calls Elixir with erlang.async_call" do
    :ok = :py.register_function(:at_stock, fn [item] -> Map.get(%{"tea" => 7}, item, 0) end)
    assert {:ok, [7, 0]} = :py.async_await(:py.async_call(:__main__, :at_stock, [["tea", "ink"]]))
  end

  test "call_async and await from a Task" do
    task = Task.async(fn -> :py.await(:py.call_async(:math, :factorial, [20])) end)
    assert {:ok, 2_432_902_008_176_640_000} = Task.await(task)
  end

  # The coroutine's cancellation runs on the event loop, after the await has returned.
  defp wait_for(fun, expected, tries \\ 500) do
    case fun.() do
      ^expected ->
        expected

      _ when tries > 0 ->
        Process.sleep(10)
        wait_for(fun, expected, tries - 1)

      other ->
        other
    end
  end
end
