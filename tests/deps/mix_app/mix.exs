# An Elixir project that depends on erlang_python (tests/deps/run.sh): ERLANG_PYTHON_DEP is a
# directory (a `path:` dependency) or `git:` followed by a repository URL.
defmodule MixApp.MixProject do
  use Mix.Project

  def project do
    [
      app: :mix_app,
      version: "0.1.0",
      elixir: "~> 1.14",
      deps: deps(),
      releases: [mix_app: [include_executables_for: [:unix]]]
    ]
  end

  def application do
    [extra_applications: [:logger]]
  end

  defp deps do
    case System.fetch_env!("ERLANG_PYTHON_DEP") do
      "git:" <> url -> [{:erlang_python, git: url, branch: "main"}]
      path -> [{:erlang_python, path: path}]
    end
  end
end
