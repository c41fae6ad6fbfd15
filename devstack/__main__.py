"""``python -m devstack``: the same as the ``devstack`` command."""

from devstack.cli import main

main()
