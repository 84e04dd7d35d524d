"""Telling citizens without being asked: status notices on their tickets, and the city's announcements.

Both go only to citizens who agreed (``bot.identity.consent``: ``notifications``, ``announcements``
or ``announcements:<topic>``), through the outbox like every other message, and both carry their
consent as a delivery condition, so a "stop" between queuing and sending is honoured.
"""
