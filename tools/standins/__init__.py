"""Local stand-ins for the services outside the assistant, for the tests and the benchmarks.

One module per service: ``telegram`` (Telegram's Bot API), ``email`` (Dovecot and an
SMTP server on loopback). Each binds free loopback ports and never reaches the internet.
"""
