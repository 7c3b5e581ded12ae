import Config

# The application's Python modules live in its priv/python.
config :erlang_python, python_path: [{:priv, :mix_app, "python"}]
