"""Python shipped in the application's own priv/python, found through erlang_python's
python_path setting (config/config.exs)."""


def greet(name: str) -> str:
    return f"hello {name} from mix_app"
