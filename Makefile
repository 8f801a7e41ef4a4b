# Convenience targets; the scripts are the source of truth.
.PHONY: demo test dist

demo:
	go run ./firmware-agent run

test:
	./scripts/test.sh

dist:
	./scripts/dist.sh
