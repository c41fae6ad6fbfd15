"""The clickstream Pulumi program (entry point: ``infra/__main__.py``).

Installed with the project, so the program's modules import each other (and the shared
contract in ``pipeline.contract``) by their package names.
"""
