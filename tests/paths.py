"""Where the tests find things, whichever folder a test module sits in."""

from pathlib import Path

TESTS = Path(__file__).resolve().parent
PROJECT = TESTS.parent
# The shared MIME corpus lies beside the checkout (../shared), in CI too; POSTANE_CORPUS points elsewhere.
CORPUS_BESIDE_THE_CHECKOUT = PROJECT.parent / "shared" / "corpus" / "mime"
