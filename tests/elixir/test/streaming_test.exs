defmodule ErlangPythonElixirTests.StreamingTest do
  # Python generators as lazy Elixir streams: the PyStream module of docs/elixir.md (loaded
  # from the doc itself, so that the module tested is the one documented), over
  # :py.stream_next/2.
  use ExUnit.Case

  alias ErlangPythonElixirTests.DocBlocks

  # Defined at run time, from the doc.
  @compile {:no_warn_undefined, PyStream}

  setup_all do
    doc = File.read!(Path.expand("../../../docs/elixir.md", __DIR__))
    [block] = for b <- DocBlocks.blocks(doc), b.code =~ "defmodule PyStream do", do: b
    DocBlocks.run(block, "docs/elixir.md", [])

    :ok =
      :py.exec("""
      st_log = []

      def st_numbers(limit=None, fail_at=None):
          n = 0
          try:
              while limit is None or n < limit:
                  if n == fail_at:
                      raise ValueError(f'no {n}')
                  st_log.append(n)
                  yield n
                  n += 1
          finally:
              st_log.append('closed')
      """)
  end

  setup do
    {:ok, :none} = :py.eval("st_log.clear()")
    :ok
  end

  defp numbers(kwargs \\ []) do
    {:ok, {:generator, _} = gen} = :py.call(:__main__, :st_numbers, [], kwargs)
    gen
  end

  defp log do
    {:ok, log} = :py.eval("st_log")
    log
  end

  test "nothing is produced until the stream is run" do
    stream = PyStream.from(numbers(), 1) |> Stream.map(&(&1 * 10))
    assert log() == []
    assert Enum.take(stream, 2) == [0, 10]
  end

  test "with a batch of 1, only the items consumed are produced; halting closes the generator" do
    assert numbers() |> PyStream.from(1) |> Enum.take(3) == [0, 1, 2]
    assert log() == [0, 1, 2, "closed"]
  end

  test "a batch of N produces at most N items ahead of the consumer" do
    assert numbers() |> PyStream.from(4) |> Enum.take(5) == [0, 1, 2, 3, 4]
    assert log() == [0, 1, 2, 3, 4, 5, 6, 7, "closed"]
    {:ok, :none} = :py.eval("st_log.clear()")

    assert numbers() |> PyStream.from() |> Stream.take_while(&(&1 < 3)) |> Enum.to_list() ==
             [0, 1, 2]

    assert length(log()) == 101
  end

  test "an exhausted generator streams all of its items and ends" do
    assert numbers(limit: 5) |> PyStream.from(2) |> Enum.to_list() == [0, 1, 2, 3, 4]
    assert log() == [0, 1, 2, 3, 4, "closed"]
    assert numbers(limit: 0) |> PyStream.from() |> Enum.to_list() == []
  end

  test "any iterator streams, infinite ones included" do
    {:ok, gen} = :py.eval("iter(['a', 'b', 'c'])")
    assert gen |> PyStream.from(2) |> Enum.to_list() == ["a", "b", "c"]
    {:ok, gen} = :py.eval("iter(['a', 'b', 'c'])")
    # Halting early tries to close it (it is no generator), with no effect on the stream.
    assert gen |> PyStream.from(1) |> Enum.take(1) == ["a"]
    {:ok, count} = :py.eval("__import__('itertools').count(1)")

    assert count |> PyStream.from(7) |> Stream.filter(&(rem(&1, 3) == 0)) |> Enum.take(4) ==
             [3, 6, 9, 12]
  end

  test "an exception while iterating raises in the consumer" do
    stream = numbers(fail_at: 3) |> PyStream.from(2)
    error = assert_raise RuntimeError, fn -> Enum.to_list(stream) end
    assert error.message == ~s(the Python iterator failed: {:ValueError, "no 3"})
    assert log() == [0, 1, 2, "closed"]
  end

  test "streams compose with Stream and Enum" do
    pairs = Stream.zip(PyStream.from(numbers(), 3), PyStream.from(numbers(), 3))
    assert Enum.take(pairs, 2) == [{0, 0}, {1, 1}]
    chunks = numbers(limit: 7) |> PyStream.from(3) |> Stream.chunk_every(3) |> Enum.to_list()
    assert chunks == [[0, 1, 2], [3, 4, 5], [6]]
  end
end
