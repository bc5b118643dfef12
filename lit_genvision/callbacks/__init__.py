"""Training services: EMA, sample grids, quality scores, RNG state, run summary."""

from lit_genvision.callbacks.class_names import ClassNames
from lit_genvision.callbacks.coverage import ClassCoverage
from lit_genvision.callbacks.ema import EMA
from lit_genvision.callbacks.rng import RNGState
from lit_genvision.callbacks.run_summary import RunSummary
from lit_genvision.callbacks.sample_grid import SampleGrid
from lit_genvision.callbacks.scoring import QualityScore

__all__ = ["ClassCoverage", "ClassNames", "EMA", "QualityScore", "RNGState", "RunSummary", "SampleGrid"]
