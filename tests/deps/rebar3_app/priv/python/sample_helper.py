"""Python shipped in the application's own priv/python, found through erlang_python's
python_path setting (config/sys.config)."""


def greet(name: str) -> str:
    return f"hello {name} from sample_app"
