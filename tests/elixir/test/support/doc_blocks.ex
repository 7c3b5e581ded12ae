defmodule ErlangPythonElixirTests.DocBlocks do
  @moduledoc """
  Runs the ```elixir blocks of a markdown file (docs/elixir.md), so that its examples cannot
  rot: test/docs_test.exs runs them all, in order, and fails at the first one that raises or
  does not give what it shows.

  - The blocks run one after the other with the bindings of the blocks before them, as lines
    typed into one `iex` session would.
  - An assertion-style match (`{:ok, 2.0} = :py.call(:math, :sqrt, [4])`) checks itself.
  - A comment line `# => PATTERN` after some code checks that the value of that code (the
    lines since the block's start or the previous check) matches `PATTERN`, e.g.
    `# => {:ok, _}`; the pattern may go on over the next comment lines when they start with
    `#` and at least four spaces.
  - A block whose first line is `# config/NAME.exs` is a configuration file: it is read with
    `Config.Reader`, as mix reads config files, and must configure `:erlang_python`.
  - A block preceded by the line `<!-- not run: REASON -->` is not run; `REASON` says why
    (a block without one fails the suite). Use it only for what cannot run in a test.
  """

  defmodule Block do
    @moduledoc "A fenced ```elixir block: where its code starts and why it is not run, if so."
    @enforce_keys [:line, :code]
    defstruct [:line, :code, not_run: nil]

    @type t :: %__MODULE__{line: pos_integer(), code: String.t(), not_run: String.t() | nil}
  end

  defmodule Segment do
    @moduledoc "Code of a block up to a `# =>` check (or the block's end), and that check."
    @enforce_keys [:line, :code]
    defstruct [:line, :code, :expected, :expected_line]

    @type t :: %__MODULE__{
            line: pos_integer(),
            code: String.t(),
            expected: String.t() | nil,
            expected_line: pos_integer() | nil
          }
  end

  @not_run ~r/^\s*<!--\s*not run:?(.*?)-->\s*$/
  @fence ~r/^(\s*)(```+|~~~+)\s*([\w+-]*)\s*$/
  @check ~r/^\s*#\s*=>\s?(.*)$/
  @continued ~r/^\s*#\s{4,}(.*)$/
  @config ~r/\A\s*#\s*(config\/[\w.-]+\.exs)\s*\n/

  @doc "The ```elixir blocks of `markdown`, in order."
  @spec blocks(String.t()) :: [Block.t()]
  def blocks(markdown) do
    markdown
    |> String.split("\n")
    |> Enum.with_index(1)
    |> collect([], nil)
  end

  defp collect([], acc, _not_run), do: Enum.reverse(acc)

  defp collect([{line, n} | rest], acc, not_run) do
    cond do
      match = Regex.run(@not_run, line) ->
        collect(rest, acc, {String.trim(Enum.at(match, 1)), n})

      match = Regex.run(@fence, line) ->
        [_, indent, fence, lang] = match
        {body, rest} = Enum.split_while(rest, fn {l, _} -> not closes?(l, fence) end)
        rest = Enum.drop(rest, 1)

        if lang in ["elixir", "ex", "exs", "iex"] do
          code = Enum.map_join(body, "\n", fn {l, _} -> String.replace_prefix(l, indent, "") end)
          reason = if not_run, do: elem(not_run, 0)
          block = %Block{line: n + 1, code: code <> "\n", not_run: reason}
          collect(rest, [block | acc], nil)
        else
          collect(rest, acc, nil)
        end

      String.trim(line) == "" ->
        collect(rest, acc, not_run)

      true ->
        collect(rest, acc, nil)
    end
  end

  defp closes?(line, fence) do
    trimmed = String.trim(line)

    String.length(trimmed) >= String.length(fence) and
      trimmed == String.duplicate(String.first(fence), String.length(trimmed))
  end

  @doc "The code of `block` cut at its `# =>` checks."
  @spec segments(Block.t()) :: [Segment.t()]
  def segments(%Block{line: first, code: code}) do
    code
    |> String.split("\n")
    |> Enum.with_index(first)
    |> split_segments([], %Segment{line: first, code: ""})
  end

  defp split_segments([], acc, current), do: Enum.reverse(add_segment(acc, current))

  defp split_segments([{line, n} | rest], acc, current) do
    case Regex.run(@check, line) do
      [_, pattern] ->
        {more, rest} = Enum.split_while(rest, fn {l, _} -> Regex.match?(@continued, l) end)
        more = Enum.map(more, fn {l, _} -> Enum.at(Regex.run(@continued, l), 1) end)
        expected = Enum.join([pattern | more], "\n")
        done = %Segment{current | expected: expected, expected_line: n}
        split_segments(rest, [done | acc], %Segment{line: n + length(more) + 1, code: ""})

      nil ->
        split_segments(rest, acc, %Segment{current | code: current.code <> line <> "\n"})
    end
  end

  defp add_segment(acc, %Segment{code: code, expected: nil} = segment) do
    if String.trim(code) == "", do: acc, else: [segment | acc]
  end

  defp add_segment(acc, segment), do: [segment | acc]

  @doc """
  Runs `block` with `binding` (the variables the blocks before it bound); the new binding.
  Raises `ExUnit.AssertionError` for a value that does not match its `# =>` pattern, and
  whatever the code raises.
  """
  @spec run(Block.t(), Path.t(), keyword()) :: keyword()
  def run(%Block{not_run: nil, code: code, line: line} = block, file, binding) do
    case Regex.run(@config, code) do
      [_, name] -> run_config(code, file, line, name, binding)
      nil -> Enum.reduce(segments(block), binding, &run_segment(&1, file, &2))
    end
  end

  def run(%Block{}, _file, binding), do: binding

  defp run_segment(%Segment{} = segment, file, binding) do
    {value, binding} = Code.eval_string(segment.code, binding, file: file, line: segment.line)

    if segment.expected do
      check = "match?(#{segment.expected}, doc_block_value)"

      {matched, _} =
        Code.eval_string(check, [{:doc_block_value, value} | binding],
          file: file,
          line: segment.expected_line
        )

      unless matched do
        raise ExUnit.AssertionError,
          message:
            "#{file}:#{segment.expected_line}: the value of\n\n" <>
              String.trim(segment.code) <> "\n\ndoes not match `# => #{segment.expected}`",
          left: value,
          right: segment.expected
      end
    end

    binding
  end

  # A configuration file runs as mix runs one (`import Config`, `config ...`), in a file of
  # its name: it must configure :erlang_python.
  defp run_config(code, file, line, name, binding) do
    dir = Path.join(System.tmp_dir!(), "erlang_python_doc_#{System.unique_integer([:positive])}")
    path = Path.join(dir, name)
    File.mkdir_p!(Path.dirname(path))
    # Keeps the doc's line numbers in messages.
    File.write!(path, String.duplicate("\n", line - 1) <> code)

    try do
      config = Config.Reader.read!(path, env: :prod, target: :host)

      unless Keyword.has_key?(config, :erlang_python) do
        raise ExUnit.AssertionError,
          message:
            "#{file}:#{line}: #{name} does not configure :erlang_python: " <>
              inspect(config)
      end
    after
      File.rm_rf!(dir)
    end

    binding
  end
end
