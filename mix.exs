# Mix project of the OTP application `erlang_python`, so that an Elixir project can depend on this
# repository (`path:` or `git:`) with no rebar3 and no hex package. It compiles the same Erlang
# sources as rebar.config (src, a link to erlang/src) and, first, builds the NIF with scripts/build_nif.sh: cargo,
# for the Python that ERLANG_PYTHON_EXECUTABLE names (else python3 on PATH), installed with the
# `erlang` Python package into priv/, which releases carry (docs/elixir.md).

defmodule Mix.Tasks.Compile.ErlangPythonNif do
  @moduledoc false
  use Mix.Task.Compiler

  @impl Mix.Task.Compiler
  def run(_args) do
    script = Path.join(__DIR__, "scripts/build_nif.sh")

    case System.cmd("sh", [script], into: IO.stream(:stdio, :line), stderr_to_stdout: true) do
      {_, 0} ->
        # priv/ may have been created just now: link it into the build directory again.
        Mix.Project.build_structure()
        {:ok, []}

      {_, status} ->
        Mix.shell().error("erlang_python: building the NIF failed (exit status #{status})")
        {:error, []}
    end
  end
end

defmodule ErlangPython.MixProject do
  use Mix.Project

  # The one description of the application is its .app.src (rebar3 reads it as such).
  {:ok, [{:application, :erlang_python, app}]} =
    :file.consult(Path.join(__DIR__, "erlang/src/erlang_python.app.src"))

  @app app

  def project do
    [
      app: :erlang_python,
      version: List.to_string(@app[:vsn]),
      language: :erlang,
      erlc_options: [:debug_info, :warn_missing_spec, :warn_untyped_record],
      compilers: [:erlang_python_nif | Mix.compilers()],
      deps: []
    ]
  end

  def application do
    [
      description: @app[:description],
      mod: @app[:mod],
      registered: @app[:registered],
      applications: @app[:applications],
      env: @app[:env]
    ]
  end
end
