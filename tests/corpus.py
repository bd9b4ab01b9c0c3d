"""The shared corpus of real-world messages (../shared/corpus/mime, or POSTANE_CORPUS): where it is,
its manifest, and the mark for tests that need it. Without it those tests skip with a clear reason;
CI (.ci/run, POSTANE_CORPUS_REQUIRED) fails instead."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.paths import CORPUS_BESIDE_THE_CHECKOUT

CORPUS = Path(os.environ.get("POSTANE_CORPUS", CORPUS_BESIDE_THE_CHECKOUT))
FOUND = (CORPUS / "manifest.json").is_file()
MISSING = (
    f"the shared MIME corpus is not at {CORPUS}: put ../shared beside the checkout, or set POSTANE_CORPUS"
)
if not FOUND and os.environ.get("POSTANE_CORPUS_REQUIRED"):  # CI (.ci/run): a missing corpus is a failure
    raise RuntimeError(MISSING)

needs_corpus = pytest.mark.skipif(not FOUND, reason=MISSING)
MANIFEST: list[dict[str, Any]] = (
    json.loads((CORPUS / "manifest.json").read_text())["messages"] if FOUND else []
)
