"""The documentation's screenshots, rendered by a real browser from demo data in a
throw-away store: ``console`` (docs/screenshots/queue.png and ticket.png) and ``stats``
(docs/screenshots/stats.png). Nothing here touches the configured database."""
