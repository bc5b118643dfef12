from tests_helpers import classifier_checkpoint, tiny_checkpoint  # noqa: F401
