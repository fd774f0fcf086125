"""sec-cybert-freeze: an example sec_cybert plugin that adds a stage kind, a hardware profile and
a tracker through the hooks only.

* ``freeze-embeddings`` (stage): MLM pretraining with the input embeddings frozen for the first
  ``steps`` optimizer steps, then trained too;
* ``ci-runner`` (hardware profile): CPU settings for a small CI machine;
* ``jsonl`` (tracker): every tracking call as one JSON line in ``<run_dir>/tracking.jsonl``.

``plugin.py`` holds the hooks; the entry point in ``pyproject.toml`` names it.
"""

from sec_cybert_freeze.profile import CIRunnerProfile
from sec_cybert_freeze.stage import FreezeEmbeddingsStage
from sec_cybert_freeze.tracker import JsonlTracker

__all__ = ["CIRunnerProfile", "FreezeEmbeddingsStage", "JsonlTracker"]
