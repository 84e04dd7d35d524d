"""The web channel: the citizens' chat page (``/chat``) and the pending replies that pull clients
of the generic API fetch. The web has no push: an agent's later reply waits ``pending`` until the
page or the client asks for it."""
