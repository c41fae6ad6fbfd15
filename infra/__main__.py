"""Entry point of the Pulumi program (``main: infra/`` in Pulumi.yaml).

Thin on purpose: read the stack config, build the platform component, export the outputs
contract. Everything worth testing lives in ``infra.config``, ``infra.platform`` and
``infra.uris``.

The CLI runs this file with ``runpy.run_path("infra")``, which puts the ``infra`` directory
itself first on ``sys.path``. Importing siblings from there is unsafe (``platform.py``
collides with the standard library module of that name), so the directory is taken off
``sys.path`` again and the project root is put on it instead: the program's modules are
then imported as the ``infra`` package, and ``pipeline`` resolves even without an
editable install.
"""

from __future__ import annotations

import sys
from pathlib import Path


def _use_package_imports() -> None:
    infra_dir = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != infra_dir]
    project_root = str(infra_dir.parent)
    if project_root not in sys.path:
        sys.path.insert(0, project_root)


_use_package_imports()

import pulumi  # noqa: E402

from infra.config import load_config  # noqa: E402
from infra.platform import ClickstreamPlatform  # noqa: E402
from pipeline.config.outputs import Output  # noqa: E402

platform = ClickstreamPlatform("clickstream", load_config())
for output in Output:
    pulumi.export(output.value, platform.stack_outputs[output])
