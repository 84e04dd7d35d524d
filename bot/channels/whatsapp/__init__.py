"""The WhatsApp Cloud API channel.

Meta posts webhooks to ``/webhooks/whatsapp`` (``webhook.py``); each signed
delivery is kept in a small inbox table (``inbox.py``) before it is
acknowledged and is then turned into ``InboundMessage``s (``payload.py``) and
answered (``processing.py``). Replies go out through the Graph API
(``graph.py``) within WhatsApp's 24-hour customer-service window, or as a
template or over another channel outside it (``window.py``).
"""
