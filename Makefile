# The two commands of the README's quick start, and the pieces they are made of.
.PHONY: setup up down reset run test

setup:
	./scripts/setup.sh

up: setup
	.venv/bin/devstack up

down:
	.venv/bin/devstack down

reset:
	.venv/bin/devstack reset

run: up
	.venv/bin/pipeline run

test: export SETUP_TEST_TOOLS = 1
test: up
	.venv/bin/pytest
