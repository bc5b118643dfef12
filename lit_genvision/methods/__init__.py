"""The math of each method, as pure functions on tensors (no Lightning, no I/O)."""

from lit_genvision.methods.augment import AdaptiveAugment, DiffAugment
from lit_genvision.methods.contrastive import (
    INIT_LOG_SCALE,
    MAX_LOG_SCALE,
    clip_loss,
    gather_features,
    logit_scale,
    retrieval_recall,
    zero_shot_logits,
)
from lit_genvision.methods.denoising import DenoisingMethod, DiffusionMethod, FlowMethod, Start
from lit_genvision.methods.diffusion import diffusion_loss, prediction_target, q_sample, to_x0_eps
from lit_genvision.methods.flow import LinearPath, ODESampler, VPPath
from lit_genvision.methods.interpolation import interpolate_noise, slerp
from lit_genvision.methods.repaint import RePaint
from lit_genvision.methods.samplers import DDIMSampler, DDPMSampler, Sampler, timestep_sequence
from lit_genvision.methods.sampling import SampleOptions
from lit_genvision.methods.schedules import (
    CosineSchedule,
    LinearSchedule,
    NoiseSchedule,
    OffsetCosineSchedule,
    ScaledLinearSchedule,
)

__all__ = [
    "AdaptiveAugment",
    "DiffAugment",
    "CosineSchedule",
    "DDIMSampler",
    "DDPMSampler",
    "DenoisingMethod",
    "DiffusionMethod",
    "FlowMethod",
    "ODESampler",
    "RePaint",
    "SampleOptions",
    "Start",
    "LinearPath",
    "LinearSchedule",
    "ScaledLinearSchedule",
    "NoiseSchedule",
    "OffsetCosineSchedule",
    "Sampler",
    "diffusion_loss",
    "interpolate_noise",
    "prediction_target",
    "q_sample",
    "slerp",
    "timestep_sequence",
    "VPPath",
    "to_x0_eps",
    "INIT_LOG_SCALE",
    "MAX_LOG_SCALE",
    "clip_loss",
    "gather_features",
    "logit_scale",
    "retrieval_recall",
    "zero_shot_logits",
]
