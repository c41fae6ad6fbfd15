"""The clickstream Pulumi program (entry point: ``infra/__main__.py``).

A regular package, not loose sibling modules: ``infra/platform.py`` would otherwise be
shadowed by the standard library's ``platform`` module, which Pulumi imports first. The
entry point therefore imports ``infra.config`` and ``infra.platform`` by their package names.
"""
