defmodule ErlangPythonElixirTests.KwargsTest do
  # Keyword lists as keyword arguments, in every :py function that takes them.
  use ExUnit.Case

  setup_all do
    :ok =
      :py.exec("""
      kwt_calls = []

      def kwt_record(*args, **kwargs):
          kwt_calls.append((args, kwargs))
          return list(kwargs.items())

      def kwt_gen(n, *, step):
          yield from range(0, n * step, step)

      async def kwt_agen(n, *, step):
          for i in range(n):
              yield i * step

      async def kwt_async(a, *, sep):
          return f"{a}{sep}{a}"
      """)
  end

  test "a keyword list is keyword arguments, in its order" do
    assert {:ok, 255} = :py.call(:builtins, :int, ["ff"], base: 16)

    assert {:ok, [{"b", 1}, {"a", "x"}, {"c", :none}]} =
             :py.call(:__main__, :kwt_record, [], b: 1, a: "x", c: nil)

    assert {:ok, 5} = :py.call(:builtins, :int, ["101"], [base: 2], 5000)
    assert {:ok, 11} = :py.call(:builtins, :int, ["11"], [])
    # Values follow the conversion rules, as positional arguments do.
    assert {:ok, [{"v", [1, "s", {1, 2}, %{"k" => true}]}]} =
             :py.call(:__main__, :kwt_record, [], v: [1, :s, {1, 2}, %{k: true}])

    # A map still works, with atom, string or charlist keys.
    assert {:ok, 255} = :py.call(:builtins, :int, ["ff"], %{"base" => 16})
    assert {:ok, 255} = :py.call(:builtins, :int, ["ff"], %{~c"base" => 16})
  end

  test "every function taking keyword arguments takes a keyword list" do
    assert {:ok, 255} = :py.await(:py.call_async(:builtins, :int, ["ff"], base: 16))
    assert {:ok, "x-x"} = :py.async_await(:py.async_call(:__main__, :kwt_async, ["x"], sep: "-"))
    assert {:ok, [0, 3, 6]} = :py.async_stream(:__main__, :kwt_agen, [3], step: 3)

    assert {:ok, ["y+y", 255]} =
             :py.async_gather([
               {:__main__, :kwt_async, ["y"], [sep: "+"]},
               {:builtins, :int, ["ff"], [base: 16]}
             ])

    assert {:ok, [0, 2, 4]} = :py.stream(:__main__, :kwt_gen, [3], step: 2)
    {:ok, ctx} = :py.bind(:new)

    try do
      assert {:ok, 255} = :py.ctx_call(ctx, :builtins, :int, ["ff"], base: 16)
      assert {:ok, 7} = :py.ctx_call(ctx, :builtins, :int, ["111"], [base: 2], 5000)
    after
      :py.unbind(ctx)
    end
  end

  @pairs "a keyword argument list holds {Name, Value} pairs whose Name is an atom"

  test "a bad keyword list is a TypeError that says why, and nothing is called" do
    {:ok, before} = :py.eval("len(kwt_calls)")

    cases = [
      {[base: 16, base: 10], "keyword argument 'base' is given more than once"},
      {[{"base", 16}], @pairs},
      {[{~c"base", 16}], @pairs},
      {[{:base, 16, 1}], @pairs},
      {[{:base}], @pairs},
      {[:base], @pairs},
      {[16], @pairs},
      {[{:base, 16} | :tail], "cannot convert an improper Erlang list to Python"}
    ]

    for {kwargs, message} <- cases do
      assert {:error, {:TypeError, ^message}} = :py.call(:__main__, :kwt_record, [], kwargs)

      assert {:error, {:TypeError, ^message}} =
               :py.await(:py.call_async(:__main__, :kwt_record, [], kwargs))

      assert {:error, {:TypeError, ^message}} =
               :py.async_await(:py.async_call(:__main__, :kwt_record, [], kwargs))

      assert {:error, {:TypeError, ^message}} = :py.stream(:__main__, :kwt_record, [], kwargs)
    end

    # A value with no Python equivalent, as anywhere else.
    assert {:error, {:TypeError, "cannot convert an Erlang fun to Python"}} =
             :py.call(:__main__, :kwt_record, [], f: &length/1)

    assert {:ok, ^before} = :py.eval("len(kwt_calls)")
  end

  test "keyword arguments that are neither a map nor a list raise, as in erlang_python 1.6" do
    assert_raise FunctionClauseError, fn -> :py.call(:math, :sqrt, [4], {:base, 16}) end
    assert_raise FunctionClauseError, fn -> :py.call(:math, :sqrt, [4], "base") end
    assert_raise FunctionClauseError, fn -> :py.call_async(:math, :sqrt, [4], 1) end
    assert_raise FunctionClauseError, fn -> :py.async_call(:math, :sqrt, [4], :base) end

    assert {:error, {:bad_call, {:math, :sqrt, [4], :base}}} =
             :py.async_gather([{:math, :sqrt, [4], :base}])
  end
end
