"""One head of a fine-tune as a plain transformers classifier: :mod:`sec_cybert.sharing.export`.

This name is that module itself (not a copy of its names), so setting one of its attributes
here -- as a test or a plugin may -- changes what ``export_head`` uses.
"""

import sys

from sec_cybert.sharing import export as _export

sys.modules[__name__] = _export
