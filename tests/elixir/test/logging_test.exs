defmodule ErlangPythonElixirTests.LoggingTest do
  # Python logging into Elixir's Logger (:py.configure_logging/1).
  use ExUnit.Case

  import ExUnit.CaptureLog

  # Receives the :logger events of the Python domain (an OTP logger handler).
  defmodule Forwarder do
    def log(event, %{config: %{pid: pid}}), do: send(pid, {:logged, event})
  end

  setup do
    :ok = :py.configure_logging(%{level: :debug})

    :ok =
      :logger.add_handler(:elixir_tests_python, Forwarder, %{
        config: %{pid: self()},
        filter_default: :stop,
        filters: [python: {&:logger_filters.domain/2, {:log, :sub, [:python]}}]
      })

    on_exit(fn ->
      :logger.remove_handler(:elixir_tests_python)
      :py.configure_logging(%{level: :debug})
    end)
  end

  # The records are sent from the Python thread, handled by erlang_python's py_logger process:
  # wait until every record sent so far reached logger (the in-flight count, public API).
  defp flush(tries \\ 5000) do
    case :py.logging_stats() do
      %{in_flight: 0} ->
        :ok

      _ when tries > 0 ->
        Process.sleep(1)
        flush(tries - 1)
    end
  end

  defp python_log(code) do
    :ok = :py.exec("import logging\n" <> code)
    flush()
  end

  test "records reach Logger with their level, message and metadata" do
    log =
      capture_log([format: "$level|$message|$metadata\n", metadata: [:py_logger, :domain]], fn ->
        python_log("logging.getLogger('shop.orders').warning('low stock: %s', 'tea')")
      end)

    assert log == "warning|low stock: tea|py_logger=shop.orders domain=python \n"
  end

  test "Python levels map to Logger levels" do
    log =
      capture_log([format: "$level $message\n"], fn ->
        python_log("""
        log = logging.getLogger('levels')
        log.debug('d')
        log.info('i')
        log.warning('w')
        log.error('e')
        log.critical('c')
        log.log(15, 'between debug and info')
        log.log(25, 'between info and warning')
        log.log(45, 'between error and critical')
        """)
      end)

    assert String.split(log, "\n", trim: true) == [
             "debug d",
             "info i",
             "warning w",
             "error e",
             "critical c",
             "info between debug and info",
             "warning between info and warning",
             "critical between error and critical"
           ]
  end

  test "the level and the format of configure_logging apply" do
    :ok = :py.configure_logging(%{level: :warning, format: "%(name)s: %(levelname)s %(message)s"})

    log =
      capture_log([format: "[$level] $message\n"], fn ->
        python_log("log = logging.getLogger('cfg')\nlog.info('dropped')\nlog.error('kept %d', 1)")
      end)

    assert log == "[error] cfg: ERROR kept 1\n"
    assert %{threshold: 30} = :py.logging_stats()
  end

  test "the logger metadata: domain, py_logger, py_meta, time" do
    python_log("""
    def lt_where():
        logging.getLogger('meta').info('with extra', extra={'order': 42, 'who': 'ada'})
    lt_where()
    """)

    assert_receive {:logged, %{level: :info, msg: {~c"~ts", ["with extra"]}, meta: meta}}
    assert %{domain: [:python], py_logger: "meta", py_meta: py_meta, time: time} = meta
    assert is_integer(time)
    assert %{"funcName" => "lt_where", "lineno" => 3, "extra" => extra} = py_meta
    assert extra == %{"order" => 42, "who" => "ada"}
  end

  test "an exception logged with logger.exception carries its traceback" do
    log =
      capture_log([format: "$level $message\n"], fn ->
        python_log("""
        try:
            1 / 0
        except ZeroDivisionError:
            logging.getLogger('exc').exception('failed')
        """)
      end)

    assert log =~ ~r/\Aerror failed\nTraceback \(most recent call last\):\n/
    assert log =~ "ZeroDivisionError: division by zero"
    assert_receive {:logged, %{meta: %{py_meta: %{"exc_text" => exc_text}}}}
    assert exc_text =~ "ZeroDivisionError"
  end

  test "a bad level or options raise" do
    assert_raise ArgumentError, fn -> :py.configure_logging(%{level: :verbose}) end
    assert_raise ArgumentError, fn -> :py.configure_logging(level: :info) end
  end

  test "records below Logger's own level are dropped by Logger" do
    Logger.configure(level: :warning)

    try do
      log =
        capture_log([format: "$message\n"], fn ->
          python_log("log = logging.getLogger('lvl')\nlog.info('hidden')\nlog.error('shown')")
        end)

      assert log == "shown\n"
    after
      Logger.configure(level: :debug)
    end
  end
end
