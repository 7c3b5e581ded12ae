defmodule ErlangPythonElixirTests.ConversionTest do
  # Elixir values into Python and Python values back, as docs/elixir.md ("Conversion") says.
  use ExUnit.Case, async: true

  defmodule User do
    defstruct name: "ada", age: 36, tags: []
  end

  # What Python sees: the type name and the repr of the converted argument.
  defp seen(value) do
    {:ok, seen} = :py.call(:builtins, :eval, ["(type(v).__name__, repr(v))", %{}, %{v: value}])
    seen
  end

  defp back(python_expression) do
    {:ok, value} = :py.call(:builtins, :eval, [python_expression, %{}])
    value
  end

  test "nil, booleans and atoms" do
    assert seen(nil) == {"NoneType", "None"}
    assert seen(true) == {"bool", "True"}
    assert seen(false) == {"bool", "False"}
    assert seen(:none) == {"NoneType", "None"}
    assert seen(:undefined) == {"NoneType", "None"}
    assert seen(:ok) == {"str", "'ok'"}
    assert seen(:é日本) == {"str", "'é日本'"}
    assert seen(String) == {"str", "'Elixir.String'"}
    # Back: None is :none, never nil; an atom came back as a string.
    assert back("None") == :none
    assert back("(True, False)") == {true, false}
    assert {:ok, "ok"} = :py.call(:builtins, :str, [:ok])
    assert {:ok, "None"} = :py.call(:builtins, :str, [nil])
  end

  test "strings, binaries and charlists" do
    assert seen("héllo") == {"str", "'héllo'"}
    assert seen("") == {"str", "''"}
    assert seen(<<255, 0>>) == {"bytes", "b'\\xff\\x00'"}
    assert seen(~c"abc") == {"list", "[97, 98, 99]"}
    assert seen(~c"") == {"list", "[]"}
    assert back("'héllo'") == "héllo"
    assert back("b'\\xff'") == <<255>>
    assert back("bytearray(b'ab')") == "ab"
    # A list of small integers is a list, which is a charlist in Elixir.
    assert back("[97, 98, 99]") == ~c"abc"
    assert {:ok, ~c"abc"} = :py.call(:builtins, :list, [~c"abc"])
    assert {:error, {:TypeError, _}} = :py.call(:builtins, :repr, [<<1::3>>])
  end

  test "integers of any size and floats" do
    big = 2 ** 200 + 1
    assert seen(big) == {"int", Integer.to_string(big)}
    assert seen(-big) == {"int", Integer.to_string(-big)}
    assert seen(1.5) == {"float", "1.5"}
    assert back("2 ** 200 + 1") == big
    assert back("-(2 ** 64)") == -18_446_744_073_709_551_616
    assert back("0.1 + 0.2") == 0.30000000000000004
    assert back("(float('nan'), float('inf'), -float('inf'))") == {:nan, :infinity, :neg_infinity}
    assert {:ok, 1.0e300} = :py.call(:builtins, :float, [1.0e300])
  end

  test "tuples, lists and keyword lists as values" do
    assert seen({}) == {"tuple", "()"}
    assert seen({1, "a", {:b}}) == {"tuple", "(1, 'a', ('b',))"}
    assert seen([1, [2, [3]]]) == {"list", "[1, [2, [3]]]"}
    assert seen(a: 1, b: "x") == {"list", "[('a', 1), ('b', 'x')]"}
    assert back("(1, ('a', []))") == {1, {"a", []}}
    assert back("()") == {}
    assert back("[('a', 1)]") == [{"a", 1}]

    assert {:error, {:TypeError, "cannot convert an improper Erlang list to Python"}} =
             :py.call(:builtins, :repr, [[1 | 2]])
  end

  test "maps with atom and string keys; keys come back as strings" do
    assert seen(%{a: 1}) == {"dict", "{'a': 1}"}
    assert seen(%{"a" => %{b: [1]}}) == {"dict", "{'a': {'b': [1]}}"}
    assert seen(%{1 => :x, {1, 2} => nil}) |> elem(0) == "dict"

    assert {:ok, %{"a" => 1, "b" => %{"c" => [true]}}} =
             :py.call(:builtins, :dict, [%{a: 1, b: %{c: [true]}}])

    assert back("{1: 'x', (1, 2): None}") == %{1 => "x", {1, 2} => :none}
    assert {:error, {:ValueError, message}} = :py.call(:builtins, :dict, [%{:a => 1, "a" => 2}])
    assert message =~ "become the same Python dict key ('a')"
  end

  test "a struct is a dict with a '__struct__' key, and comes back as a plain map" do
    user = %User{name: "ada", tags: [:admin]}

    assert seen(user) ==
             {"dict",
              "{'__struct__': 'Elixir.ErlangPythonElixirTests.ConversionTest.User', " <>
                "'age': 36, 'name': 'ada', 'tags': ['admin']}"}

    assert {:ok, back} = :py.call(:builtins, :dict, [user])
    refute is_struct(back)

    assert back == %{
             "__struct__" => "Elixir.ErlangPythonElixirTests.ConversionTest.User",
             "age" => 36,
             "name" => "ada",
             "tags" => ["admin"]
           }

    # Map.from_struct/1 leaves __struct__ out.
    assert seen(Map.from_struct(user)) == {"dict", "{'age': 36, 'name': 'ada', 'tags': ['admin']}"}
    # A dict shaped like a struct is still a map: no atom is made from Python data.
    assert %{"__struct__" => "Elixir.URI", "host" => "x"} =
             back("{'__struct__': 'Elixir.URI', 'host': 'x'}")

    # Structs of the standard library are maps too.
    {:ok, date} = :py.call(:builtins, :dict, [~D[2024-02-29]])
    assert %{"__struct__" => "Elixir.Date", "year" => 2024, "month" => 2, "day" => 29} = date
    assert %{"__struct__" => "Elixir.MapSet"} = back_of(MapSet.new([1]))
  end

  defp back_of(value) do
    {:ok, value} = :py.call(:copy, :copy, [value])
    value
  end

  test "pids, references and handles come back as themselves; functions are refused" do
    me = self()
    ref = make_ref()
    assert {:ok, ^me} = :py.call(:copy, :copy, [me])
    assert {:ok, {^me, ^ref}} = :py.call(:copy, :deepcopy, [{me, ref}])
    assert {"Pid", _} = seen(me)
    {:ok, range} = :py.call(:builtins, :range, [3])
    assert is_reference(range)
    assert {:ok, [0, 1, 2]} = :py.call(:builtins, :list, [range])

    assert {:error, {:TypeError, "cannot convert an Erlang fun to Python"}} =
             :py.call(:builtins, :repr, [fn -> :ok end])

    assert {:error, {:TypeError, _}} = :py.call(:builtins, :repr, [&String.upcase/1])
  end
end
