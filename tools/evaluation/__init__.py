"""How well the assistant understands: ``understanding`` (held-out, dev, typo'd dev and
covid_q_govfaq figures, results/understanding.md), ``clinc150`` (CLINC150,
results/clinc150.md) and ``tuning`` (the answer/ask/escalate thresholds, chosen on the
dev set and written to config.yml)."""
