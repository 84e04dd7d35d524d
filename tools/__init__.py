"""Measurement and test tooling: stand-ins, benchmarks, evaluation, tuning, screenshots.

Nothing here runs in production. ``tools`` and ``tests`` may import ``bot``; the
product (``bot`` and ``actions``) never imports ``tools``
(tests/test_tools_boundary.py checks it).

- ``tools.standins``: local stand-ins for what lies outside (Telegram's Bot API,
  real mail servers on loopback).
- ``tools.bench``: speed and throughput, one module per results file
  (``speed``, ``email``, ``telegram``).
- ``tools.evaluation``: understanding figures, CLINC150, threshold tuning.
- ``tools.screenshots``: the documentation's screenshots, rendered from demo data.
- ``tools.local_server``: an ASGI app on a free loopback port, for the browser
  tests and the screenshots.
- ``python -m tools``: the measurement commands (``tools/cli.py``).

A helper lives here when the tooling and the tests share it (or the tooling alone uses
it); one that only the tests use stays under ``tests/`` (e.g. the WhatsApp Graph API
stand-in in tests/channels/whatsapp/graph_standin.py).
"""
