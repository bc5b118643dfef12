from tests_helpers import tiny_checkpoint  # noqa: F401
