"""Entry point of the Pulumi program (``main: infra/`` in Pulumi.yaml).

Thin on purpose: read the stack config, build the platform component, export the outputs
contract. Everything worth testing lives in ``infra.config``, ``infra.component`` and
``infra.uris``. ``infra`` is installed with the project (``pip install -e .``), so its
modules are imported by their package names like any other.
"""

from __future__ import annotations

import pulumi

from infra.component import ClickstreamPlatform
from infra.config import load_config
from pipeline.contract import names
from pipeline.contract.outputs import Output

platform = ClickstreamPlatform(names.PROJECT, load_config())
for output in Output:
    pulumi.export(output.value, platform.stack_outputs[output])
