"""LightningModules, one file per family: thin glue between a network and a method."""

from lit_genvision.models.autoencoder import AutoencoderModel, VAEModel
from lit_genvision.models.base import GenerativeModel, PlatformModule
from lit_genvision.models.captioner import CaptionerModel
from lit_genvision.models.classifier import Classifier
from lit_genvision.models.clip import CLIPModel
from lit_genvision.models.clip_image import CLIPImageEncoder
from lit_genvision.models.clip_space import CLIPImageSpace
from lit_genvision.models.conditional import ConditionalModel
from lit_genvision.models.denoising import DenoisingModel
from lit_genvision.models.diffusion import DiffusionModel
from lit_genvision.models.first_stage import FirstStage
from lit_genvision.models.flow_matching import FlowMatchingModel, ODESampler
from lit_genvision.models.gan import GANModel
from lit_genvision.models.optim import LinearWarmup, WarmupCosine
from lit_genvision.models.pretrained import freeze, load_model, load_pretrained, record_pretrained
from lit_genvision.models.progan import ProGANModel
from lit_genvision.models.stylegan import StyleGANModel
from lit_genvision.models.text_encoders import CLIPTextEncoder
from lit_genvision.models.token_prior import TokenPriorModel
from lit_genvision.models.tokenizer import VQModel
from lit_genvision.models.unclip import UnCLIPModel

__all__ = [
    "CLIPImageEncoder",
    "CLIPImageSpace",
    "CLIPModel",
    "CLIPTextEncoder",
    "CaptionerModel",
    "AutoencoderModel",
    "VAEModel",
    "Classifier",
    "ConditionalModel",
    "DenoisingModel",
    "LinearWarmup",
    "WarmupCosine",
    "DiffusionModel",
    "FirstStage",
    "FlowMatchingModel",
    "GANModel",
    "ODESampler",
    "ProGANModel",
    "StyleGANModel",
    "GenerativeModel",
    "PlatformModule",
    "freeze",
    "load_model",
    "load_pretrained",
    "record_pretrained",
    "TokenPriorModel",
    "UnCLIPModel",
    "VQModel",
]
