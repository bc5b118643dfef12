"""Conditions of a denoiser, one class each: what it reads from a batch, its null, how it is derived, and how it
is encoded into the backbone's inputs (``nn.conditions.base``)."""

from lit_genvision.nn.conditions.base import (
    ENCODED_KEYS,
    Condition,
    merge_encodings,
    null_fill,
    null_text,
    null_vector,
)
from lit_genvision.nn.conditions.image_embedding import ImageEmbedding
from lit_genvision.nn.conditions.known_region import KnownRegion, as_mask, known_region_input
from lit_genvision.nn.conditions.label import Label, Vector
from lit_genvision.nn.conditions.semantic import Layout, SemanticEncoder, SemanticMap, layout_to_map
from lit_genvision.nn.conditions.text import Text

__all__ = [
    "ENCODED_KEYS",
    "Condition",
    "ImageEmbedding",
    "KnownRegion",
    "Label",
    "Layout",
    "SemanticEncoder",
    "SemanticMap",
    "Text",
    "Vector",
    "as_mask",
    "known_region_input",
    "layout_to_map",
    "merge_encodings",
    "null_fill",
    "null_text",
    "null_vector",
]
