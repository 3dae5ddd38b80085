# Shortcuts for the scripts (each works on its own too).
.PHONY: demo stop test bench-webhook

demo:  ## Corb end to end on this machine (see scripts/demo.sh)
	bash scripts/demo.sh

stop:  ## stop the demo's server
	bash scripts/demo-stop.sh

test:  ## install everything and run ruff and the tests
	bash scripts/test.sh

bench-webhook:  ## the webhook behind gunicorn: req/s, p50/p99, cold start
	.venv/bin/python bench/webhook.py
