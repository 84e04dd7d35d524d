"""Speed and throughput, one module per results file: ``speed`` (the full path against
Rasa's bare webhook, results/speed.md), ``email`` (the e-mail worker and its crash run,
results/email.md), ``telegram`` (Telegram's per-message overhead, results/telegram.md)."""
