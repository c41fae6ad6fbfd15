"""End-to-end tests, each in a private pipeline world (the ``world`` fixture of tests/integration/conftest.py)."""
