"""Make the example plugins importable without installing them (CI installs only sec-cybert)."""

from __future__ import annotations

import sys
from pathlib import Path

_EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "plugins"
for _src in sorted(_EXAMPLES.glob("*/src")):
    if str(_src) not in sys.path:
        sys.path.insert(0, str(_src))
