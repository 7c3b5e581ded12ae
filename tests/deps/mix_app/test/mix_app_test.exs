defmodule MixAppTest do
  use ExUnit.Case

  test "erlang_python runs Python from a project that depends on it" do
    assert MixApp.check() == :ok
  end
end
