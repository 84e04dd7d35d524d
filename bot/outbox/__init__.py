"""The outbox: outbound messages as a durable queue in the interaction store, and their delivery.

Below the core: the core, tickets and identity queue messages here; each channel
implements ``outbound.ChannelSender`` and never sees the queue."""
