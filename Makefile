.PHONY: setup run test eval bench

# Set up everything (idempotent) and run the assistant with the embedded SQLite store.
run: setup
	.venv/bin/python -m bot run

# The whole test suite.
test:
	bash scripts/test.sh

setup:
	bash scripts/setup.sh

# Understanding figures: own held-out, dev and typo'd dev sets, the covid_q_govfaq benchmark, and
# CLINC150 as last recorded by `.venv/bin/python -m tools eval-clinc` (slow: run it on its own).
eval: setup
	.venv/bin/python -m tools eval

# Latency and throughput of the full path against Rasa's bare webhook.
bench: setup
	.venv/bin/python -m tools bench
