defmodule MixApp do
  @moduledoc """
  What an Elixir project depending on erlang_python checks once it is built (tests/deps/run.sh):
  Python runs, the `erlang` package is the one in erlang_python's priv/, the application's own
  Python module (priv/python, configured in config/config.exs) is found, and Python calls back
  into an Elixir function.
  """

  @spec check() :: :ok
  def check do
    {:ok, _} = Application.ensure_all_started(:mix_app)
    {:ok, 4.0} = :py.call(:math, :sqrt, [16])
    priv = Path.expand(List.to_string(:code.priv_dir(:erlang_python)))
    {:ok, package} = :py.eval("__import__('erlang').__file__")

    unless String.starts_with?(package, priv) do
      raise "the erlang package #{package} is not in erlang_python's priv #{priv}"
    end
    {:ok, "hello joe from mix_app"} = :py.call(:mix_helper, :greet, ["joe"])
    :ok = :py.register_function(:mix_double, fn [n] -> 2 * n end)
    {:ok, 42} = :py.eval("__import__('erlang').call('mix_double', 21)")
    %{built_for: %{version: version}} = :py_nif.interp_info()
    IO.puts("mix_app: ok (Python #{version}, erlang package #{package})")
  end
end
