%% @private
%% @doc The Erlang process of a Python mailbox (`erlang.open_mailbox()', docs/asyncio.md,
%% "Mailboxes"). `py_callback' spawns it with the mailbox's inbox (a NIF resource) and monitors
%% it; it hands every message it receives to the inbox, whose event loop the Python side
%% watches, and ends normally when Python closes the mailbox (`{'$py_mailbox_close', Inbox}',
%% or a message refused with `closed'). It is a plain process: Erlang code can link to it,
%% monitor it or kill it, and its exit reason reaches Python. It monitors `py_callback', which
%% watches it for Python: when `py_callback' ends (the application stops, or it is restarted),
%% the mailbox closes its inbox itself, so that Python is never left waiting on a process
%% nobody watches, and ends normally.
-module(py_mailbox).

-export([init/2]).

%% @doc The process's body: its loop over the messages for `Inbox'; the end of `Owner'
%% (`py_callback') closes the mailbox.
-spec init(py_nif:inbox(), pid()) -> ok.
init(Inbox, Owner) ->
    loop(Inbox, monitor(process, Owner)).

-spec loop(py_nif:inbox(), reference()) -> ok.
loop(Inbox, OwnerMonitor) ->
    receive
        {'$py_mailbox_close', Inbox} ->
            ok;
        {'DOWN', OwnerMonitor, process, _, Reason} ->
            ok = py_nif:mailbox_down(Inbox, owner_down(Reason));
        Message ->
            case deliver(Inbox, Message) of
                ok -> loop(Inbox, OwnerMonitor);
                closed -> ok
            end
    end.

%% What Python's MailboxClosedError says when py_callback ended.
-spec owner_down(term()) -> binary().
owner_down(shutdown) ->
    <<"erlang_python stopped">>;
owner_down(Reason) ->
    iolist_to_binary(io_lib:format("erlang_python's py_callback ended: ~0tp", [Reason])).

-spec deliver(py_nif:inbox(), term()) -> ok | closed.
deliver(Inbox, Message) ->
    case py_nif:mailbox_deliver(Inbox, Message) of
        dirty -> py_nif:mailbox_deliver_dirty(Inbox, Message);
        Result -> Result
    end.
