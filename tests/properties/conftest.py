"""Property-based tests (hypothesis): profiles and the tiny tokenizer they share.

Two profiles, chosen with the ``HYPOTHESIS_PROFILE`` environment variable:

* ``ci`` (the default): ``derandomize=True``, so every run tries the same inputs (a seed derived
  from each test) and a CI run cannot be flaky; no example database, no deadline (a loaded
  2-core runner must not fail a test for being slow). Each test's ``max_examples`` is sized so
  the whole directory runs in well under 40 s on 2 CPU cores.
* ``thorough``: random seeds and 20x the examples of every test, for a longer exploration on a
  workstation::

      HYPOTHESIS_PROFILE=thorough python -m pytest tests/properties -p no:cacheprovider \
          --hypothesis-show-statistics

  A failure prints the minimal example and a ``@reproduce_failure`` blob to paste above the test.
  ``HYPOTHESIS_SCALE=N`` multiplies every test's examples by N in either profile (e.g.
  ``HYPOTHESIS_PROFILE=thorough HYPOTHESIS_SCALE=100`` for an overnight run).

Tests size their examples with :func:`prop_support.examples`, which reads the loaded profile.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

# Timing-based health checks would make a loaded CI runner fail a correct test.
_QUIET = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example]

settings.register_profile(
    "ci",
    max_examples=100,
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=_QUIET,
)
settings.register_profile(
    "thorough",
    max_examples=2000,
    derandomize=False,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=_QUIET,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="module")
def tokenizer():
    """A byte-level BPE tokenizer trained on the fly (once per module), as the chunking tests do."""
    from prop_support import tiny_tokenizer

    return tiny_tokenizer()
