from lit_genvision.methods.samplers.base import Sampler, timestep_sequence
from lit_genvision.methods.samplers.ddim import DDIMSampler
from lit_genvision.methods.samplers.ddpm import DDPMSampler

__all__ = ["DDIMSampler", "DDPMSampler", "Sampler", "timestep_sequence"]
