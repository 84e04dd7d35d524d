"""Channel adapters: each turns its provider's payload into an InboundMessage and
delivers outbound messages through its provider. Nothing outside a channel's
own package sees that provider's types."""
