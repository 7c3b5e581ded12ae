%% @private
%% @doc The Erlang process of a Python mailbox (`erlang.open_mailbox()', docs/asyncio.md,
%% "Mailboxes"). `py_callback' spawns it with the mailbox's inbox (a NIF resource) and monitors
%% it; it hands every message it receives to the inbox, whose event loop the Python side
%% watches, and ends normally when Python closes the mailbox (`{'$py_mailbox_close', Inbox}',
%% or a message refused with `closed'). It is a plain process: Erlang code can link to it,
%% monitor it or kill it, and its exit reason reaches Python.
-module(py_mailbox).

-export([init/1]).

%% @doc The process's body: its loop over the messages for `Inbox'.
-spec init(py_nif:inbox()) -> ok.
init(Inbox) ->
    loop(Inbox).

-spec loop(py_nif:inbox()) -> ok.
loop(Inbox) ->
    receive
        {'$py_mailbox_close', Inbox} ->
            ok;
        Message ->
            case deliver(Inbox, Message) of
                ok -> loop(Inbox);
                closed -> ok
            end
    end.

-spec deliver(py_nif:inbox(), term()) -> ok | closed.
deliver(Inbox, Message) ->
    case py_nif:mailbox_deliver(Inbox, Message) of
        dirty -> py_nif:mailbox_deliver_dirty(Inbox, Message);
        Result -> Result
    end.
