# The ExUnit suite of erlang_python as an Elixir project uses it (`make test-elixir`): a mix
# project depending on this repository by path, so `mix test` compiles erlang_python as any
# dependent project does (its compiler builds the NIF; with the Makefile's environment, a
# cargo no-op) and runs the tests against the real BEAM and Python. It also runs every
# ```elixir block of docs/elixir.md (test/docs_test.exs).
defmodule ErlangPythonElixirTests.MixProject do
  use Mix.Project

  def project do
    [
      app: :erlang_python_elixir_tests,
      version: "0.1.0",
      elixir: "~> 1.14",
      elixirc_paths: ["test/support"],
      deps: [{:erlang_python, path: "../.."}]
    ]
  end

  def application do
    [extra_applications: [:logger]]
  end
end
