"""``sec-cybert report RUN_DIR``: :mod:`sec_cybert.sharing.report`.

This name is that module itself (not a copy of its names), so setting one of its attributes
here changes what ``build_report`` uses.
"""

import sys

from sec_cybert.sharing import report as _report

sys.modules[__name__] = _report
