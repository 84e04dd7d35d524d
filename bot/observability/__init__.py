"""Metrics and logs shared by every process (API workers, channel workers, deliveries, the action server).

A foundation: the core, the outbox, the channels and the API record into it; it imports
none of them. What must read the store at scrape time (tickets per department) lives in
``bot.api.observability``. See docs/observability.md.
"""
