%% Private to the application: the persistent_term key under which py_pool publishes the NIF
%% executor pool. py reads it on every request; only py_pool writes or erases it.
-define(PY_POOL_KEY, {erlang_python, pool}).
