defmodule ErlangPythonElixirTests.DocsTest do
  # Every ```elixir block of docs/elixir.md runs, in order (test/support/doc_blocks.ex).
  use ExUnit.Case

  alias ErlangPythonElixirTests.DocBlocks
  alias ErlangPythonElixirTests.DocBlocks.Block

  @doc_path Path.expand("../../../docs/elixir.md", __DIR__)
  @external_resource @doc_path

  # Shown in messages and stack traces, relative to the repository.
  @shown "docs/elixir.md"

  test "every elixir block of docs/elixir.md runs and gives what it shows" do
    blocks = DocBlocks.blocks(File.read!(@doc_path))
    assert length(blocks) > 30
    Enum.reduce(blocks, [], fn block, binding -> DocBlocks.run(block, @shown, binding) end)
  end

  test "a block of docs/elixir.md is not run only with a reason, and rarely" do
    not_run =
      for %Block{not_run: reason} = b <- DocBlocks.blocks(File.read!(@doc_path)),
          reason != nil,
          do: {b.line, reason}

    assert [] == for({line, ""} <- not_run, do: "#{@shown}:#{line}")
    assert length(not_run) <= 3, "blocks not run: #{inspect(not_run)}"
  end

  describe "the block runner" do
    test "runs blocks in order, with the bindings of the blocks before" do
      markdown = """
      ```elixir
      x = 20
      ```

      ```erlang
      not_elixir().
      ```

      ```elixir
      x + 1
      # => 21
      {:ok, y} = {:ok, x * 2}
      y
      # => 40
      ```
      """

      [first, second] = DocBlocks.blocks(markdown)
      assert %Block{line: 2} = first
      assert %Block{line: 10} = second
      binding = DocBlocks.run(second, "t.md", DocBlocks.run(first, "t.md", []))
      assert binding[:y] == 40
    end

    test "fails on a value that does not match its # => pattern, naming the line" do
      markdown = """
      ```elixir
      1 + 1
      # => {:ok,
      #        3}
      ```
      """

      [block] = DocBlocks.blocks(markdown)
      assert [%{expected: "{:ok,\n3}", expected_line: 3}] = DocBlocks.segments(block)
      error = assert_raise ExUnit.AssertionError, fn -> DocBlocks.run(block, "t.md", []) end
      assert error.message =~ "t.md:3"
      assert error.left == 2
    end

    test "fails on a failed assertion-style match" do
      [block] = DocBlocks.blocks("```elixir\n{:ok, 3} = {:ok, 1 + 1}\n```\n")
      assert_raise MatchError, fn -> DocBlocks.run(block, "t.md", []) end
    end

    test "skips a block marked not run, and records the reason" do
      markdown = """
      <!-- not run: needs a network -->

      ```elixir
      raise "never"
      ```
      """

      [block] = DocBlocks.blocks(markdown)
      assert block.not_run == "needs a network"
      assert DocBlocks.run(block, "t.md", a: 1) == [a: 1]
    end

    test "reads a # config/NAME.exs block as a configuration file" do
      good = "```elixir\n# config/runtime.exs\nimport Config\nconfig :erlang_python, x: 1\n```\n"
      [block] = DocBlocks.blocks(good)
      assert DocBlocks.run(block, "t.md", []) == []
      bad = "```elixir\n# config/runtime.exs\nimport Config\nconfig :other, x: 1\n```\n"
      [block] = DocBlocks.blocks(bad)
      assert_raise ExUnit.AssertionError, fn -> DocBlocks.run(block, "t.md", []) end
    end
  end
end
