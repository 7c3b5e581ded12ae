%% @private
%% @doc The Erlang half of the NIF's bounded outboxes (`rust/nif/src/outbox.rs'): a receiver
%% (`py_logger' for log records, `py_tracer' for spans) acknowledges the messages it handled,
%% in batches, so that the NIF knows how many are still in flight. It acknowledges at least
%% every 256 messages while they keep arriving, and the rest as soon as its mailbox is empty
%% (the gen_server timeout 0 that {@link handled/2} and {@link idle_timeout/1} ask for).
-module(py_outbox).

-export([handled/2, idle_timeout/1]).

-define(ACK_BATCH, 256).

%% @doc One more message handled, with `Pending' handled but not yet acknowledged before it:
%% acknowledges a full batch through `Ack'. Returns the new pending count and the timeout the
%% gen_server callback should return.
-spec handled(non_neg_integer(), fun((pos_integer()) -> ok)) -> {non_neg_integer(), timeout()}.
handled(Pending, Ack) ->
    case Pending + 1 of
        N when N >= ?ACK_BATCH ->
            ok = Ack(N),
            {0, infinity};
        N ->
            {N, 0}
    end.

%% @doc The timeout a callback returns when it handled something else: 0 (acknowledge on idle)
%% while messages are pending, else none.
-spec idle_timeout(non_neg_integer()) -> timeout().
idle_timeout(0) -> infinity;
idle_timeout(_Pending) -> 0.
