# docs/elixir.md defines modules that the tests load again (test/streaming_test.exs).
Code.put_compiler_option(:ignore_module_conflict, true)
{:ok, _} = Application.ensure_all_started(:erlang_python)
ExUnit.start(capture_log: true)
