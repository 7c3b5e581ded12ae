defmodule ErlangPythonElixirTests.CallbacksTest do
  # Elixir functions registered with :py.register_function and called from Python.
  use ExUnit.Case

  defmodule Shouting do
    def shout([text]), do: String.upcase(text) <> "!"
  end

  defmodule OutOfStock do
    defexception [:item]
    @impl true
    def message(%{item: item}), do: "no #{item} left"
  end

  setup_all do
    :ok =
      :py.exec("""
      def cbt_catch(name, *args):
          try:
              return ("ok", erlang.call(name, *args))
          except erlang.ErlangError as e:
              return (e.erlang_class, e.reason, str(e), isinstance(e, RuntimeError))
      """)
  end

  test "anonymous functions get one list of the positional arguments" do
    :ok = :py.register_function(:cbt_add, fn [a, b] -> a + b end)
    :ok = :py.register_function(:cbt_args, fn args -> args end)
    assert {:ok, 5} = :py.eval("erlang.cbt_add(2, 3)")
    assert {:ok, 5} = :py.eval("erlang.call('cbt_add', 2, 3)")
    assert {:ok, 5} = :py.eval("__import__('erlang').cbt_add(2, 3)")
    assert {:ok, []} = :py.eval("erlang.cbt_args()")
    assert {:ok, [1, "a", [2], {3}]} = :py.eval("erlang.cbt_args(1, 'a', [2], (3,))")
    # Results convert back to Python by the usual rules.
    :ok = :py.register_function(:cbt_values, fn [] -> %{a: [nil, :x, {1, "s"}, 2 ** 80]} end)

    assert {:ok, "{'a': [None, 'x', (1, 's'), 1208925819614629174706176]}"} =
             :py.eval("repr(erlang.cbt_values())")
  end

  test "captures: a function of a list as it is, &apply/3 to spread the arguments" do
    :ok = :py.register_function(:cbt_sum, &Enum.sum/1)
    :ok = :py.register_function("cbt_upcase", &apply(String, :upcase, &1))
    :ok = :py.register_function(:cbt_shout, &Shouting.shout/1)
    :ok = :py.register_function(:cbt_reverse, Enum, :reverse)
    assert {:ok, 10} = :py.eval("erlang.cbt_sum(1, 2, 3, 4)")
    assert {:ok, "ADA"} = :py.eval("erlang.cbt_upcase('ada')")
    assert {:ok, "HI!"} = :py.eval("erlang.cbt_shout('hi')")
    assert {:ok, [3, 2, 1]} = :py.eval("erlang.cbt_reverse(1, 2, 3)")
  end

  test "a capture of a function that does not take a list fails in Python, not in Elixir" do
    :ok = :py.register_function(:cbt_upcase_list, &String.upcase/1)

    assert {:ok, {"error", "function_clause", "error: function_clause", true}} =
             :py.call(:__main__, :cbt_catch, ["cbt_upcase_list", "ada"])
  end

  test "a function of another arity or a charlist name is refused when registering" do
    assert_raise FunctionClauseError, fn -> :py.register_function(:cbt_two, fn _, _ -> 1 end) end
    assert_raise FunctionClauseError, fn -> :py.register_function(:cbt_zero, fn -> 1 end) end
    assert_raise FunctionClauseError, fn -> :py.register_function(~c"cbt", fn _ -> 1 end) end
    assert_raise FunctionClauseError, fn -> :py.register_function(:cbt, "Enum", :sum) end
  end

  test "an Elixir exception is an erlang.ErlangError that reads as Elixir prints it" do
    :ok =
      :py.register_function(:cbt_ratio, fn
        [_, 0] -> raise ArgumentError, "cannot divide by zero"
        [a, b] -> a / b
      end)

    assert {:ok, {"ok", 0.5}} = :py.call(:__main__, :cbt_catch, ["cbt_ratio", 1, 2])
    banner = "** (ArgumentError) cannot divide by zero"

    assert {:ok, {"error", ^banner, "error: " <> ^banner, true}} =
             :py.call(:__main__, :cbt_catch, ["cbt_ratio", 1, 0])

    # Uncaught in Python, the call returns it; the traceback names the Python frame.
    assert {:error, {:ErlangError, "error: " <> ^banner}} = :py.eval("erlang.cbt_ratio(1, 0)")
    assert :py.last_traceback() =~ "ErlangError"

    # An exception of one's own, with message/1.
    :ok = :py.register_function(:cbt_stock, fn [item] -> raise OutOfStock, item: item end)

    assert {:ok,
            {"error", "** (ErlangPythonElixirTests.CallbacksTest.OutOfStock) no tea left", _, true}} =
             :py.call(:__main__, :cbt_catch, ["cbt_stock", "tea"])

    # Erlang errors raised by Elixir code keep their Erlang reason.
    :ok = :py.register_function(:cbt_div, fn [a, b] -> div(a, b) end)
    assert {:error, {:ErlangError, "error: badarith"}} = :py.eval("erlang.cbt_div(1, 0)")
    :ok = :py.register_function(:cbt_match, fn [x] -> {:ok, _} = x end)

    assert {:ok, {"error", "{badmatch,<<\"nope\">>}", _, true}} =
             :py.call(:__main__, :cbt_catch, ["cbt_match", "nope"])
  end

  test "exit and throw are erlang.ErlangError too, with their class" do
    :ok = :py.register_function(:cbt_exit, fn _ -> exit(:bye) end)
    :ok = :py.register_function(:cbt_throw, fn _ -> throw({:thrown, 1}) end)
    assert {:ok, {"exit", "bye", "exit: bye", true}} = :py.call(:__main__, :cbt_catch, ["cbt_exit"])

    assert {:ok, {"throw", "{thrown,1}", "throw: {thrown,1}", true}} =
             :py.call(:__main__, :cbt_catch, ["cbt_throw"])
  end

  test "a long Elixir exception message is capped" do
    :ok = :py.register_function(:cbt_long, fn _ -> raise String.duplicate("x", 20_000) end)
    assert {:ok, {"error", reason, _, true}} = :py.call(:__main__, :cbt_catch, ["cbt_long"])
    assert String.length(reason) == 16_384 + 3
    assert String.ends_with?(reason, "xxx...")
  end

  test "the function runs in a process of its own and may call Python again" do
    me = self()
    :ok = :py.register_function(:cbt_self, fn [] -> self() end)
    assert {:ok, pid} = :py.eval("erlang.cbt_self()")
    assert is_pid(pid) and pid != me
    :ok = :py.exec("def cbt_depth(n):\n    return 0 if n == 0 else 1 + erlang.cbt_down(n - 1)\n")

    :ok =
      :py.register_function(:cbt_down, fn [n] ->
        {:ok, v} = :py.call(:__main__, :cbt_depth, [n])
        v
      end)

    assert {:ok, 30} = :py.call(:__main__, :cbt_depth, [30])
  end

  test "an unregistered name is an AttributeError, or an ErlangError through erlang.call" do
    :ok = :py.register_function(:cbt_gone, fn _ -> :ok end)
    :ok = :py.unregister_function(:cbt_gone)
    assert {:error, {:AttributeError, _}} = :py.eval("erlang.cbt_gone()")

    assert {:error, {:ErlangError, "Function 'cbt_gone' not registered"}} =
             :py.eval("erlang.call('cbt_gone')")
  end
end
