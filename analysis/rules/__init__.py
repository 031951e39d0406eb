"""auditlens' own Sigma rule pack (YAML files, package data).

One folder per platform (``kubernetes/``, ``linux/``, ``windows/``); each rule reads a log source
:mod:`analysis.detect.sigma.pipeline` maps. Load them with
``analysis.detect.sigma.engine.load_rules([PACK])``. docs/DETECTIONS.md lists them.
"""

from __future__ import annotations

from pathlib import Path

#: The folder holding the pack's rule files.
PACK = Path(__file__).parent
