"""Networks and blocks: pure torch.nn, no Lightning, no losses."""

from lit_genvision.nn.autoencoder import ConvDecoder, ConvEncoder
from lit_genvision.nn.captioner import CaptionDecoder
from lit_genvision.nn.causal_video import CausalVideoDecoder, CausalVideoEncoder
from lit_genvision.nn.clip import CLIP, CLIPImageTower
from lit_genvision.nn.conditioned import ConditionedNet, Encoded
from lit_genvision.nn.conditions import (
    Condition,
    ImageEmbedding,
    KnownRegion,
    Label,
    Layout,
    SemanticEncoder,
    SemanticMap,
    Text,
    Vector,
    layout_to_map,
)
from lit_genvision.nn.convnet import FastResNet, SmallConvNet
from lit_genvision.nn.dit import DIT_SIZES, DiT
from lit_genvision.nn.embeddings import TimestepEmbedding, sinusoidal_embedding
from lit_genvision.nn.gan import DCGANDiscriminator, DCGANGenerator
from lit_genvision.nn.lpips import LPIPS
from lit_genvision.nn.patches import (
    AxialRotaryEmbedding,
    RotaryEmbedding,
    apply_rotary,
    patchify,
    sincos_1d,
    sincos_2d,
    sincos_3d,
    unpatchify,
)
from lit_genvision.nn.patchgan import PatchGANDiscriminator
from lit_genvision.nn.prior import PriorTransformer
from lit_genvision.nn.progan import ProGANDiscriminator, ProGANGenerator
from lit_genvision.nn.stylegan import MappingNetwork, StyleGANDiscriminator, StyleGANGenerator
from lit_genvision.nn.text import (
    CLIPTextTower,
    HFTextEncoder,
    LearnedTextEmbedding,
    TextEncoder,
    TextEncoding,
)
from lit_genvision.nn.text_tokenizer import BPETokenizer, build_bpe_from_texts
from lit_genvision.nn.token_prior import TokenTransformer
from lit_genvision.nn.transformer import KVCache, Transformer, TransformerBlock
from lit_genvision.nn.unet import AttentionBlock, DownBlock, ResidualBlock, UNet, UpBlock
from lit_genvision.nn.vit import ViTDecoder, ViTEncoder
from lit_genvision.nn.vqgan import VQGANDecoder, VQGANEncoder

__all__ = [
    "PriorTransformer",
    "Condition",
    "ConditionedNet",
    "Encoded",
    "ImageEmbedding",
    "KnownRegion",
    "Label",
    "Layout",
    "SemanticMap",
    "Text",
    "Vector",
    "MappingNetwork",
    "ProGANDiscriminator",
    "ProGANGenerator",
    "StyleGANDiscriminator",
    "StyleGANGenerator",
    "SemanticEncoder",
    "layout_to_map",
    "DIT_SIZES",
    "DiT",
    "CLIP",
    "CLIPImageTower",
    "CaptionDecoder",
    "DCGANDiscriminator",
    "DCGANGenerator",
    "ConvDecoder",
    "ConvEncoder",
    "FastResNet",
    "SmallConvNet",
    "AttentionBlock",
    "DownBlock",
    "ResidualBlock",
    "TimestepEmbedding",
    "UNet",
    "UpBlock",
    "sinusoidal_embedding",
    "AxialRotaryEmbedding",
    "KVCache",
    "RotaryEmbedding",
    "Transformer",
    "TransformerBlock",
    "apply_rotary",
    "patchify",
    "sincos_1d",
    "sincos_2d",
    "sincos_3d",
    "unpatchify",
    "VQGANDecoder",
    "VQGANEncoder",
    "CausalVideoDecoder",
    "CausalVideoEncoder",
    "ViTDecoder",
    "ViTEncoder",
    "PatchGANDiscriminator",
    "LPIPS",
    "BPETokenizer",
    "CLIPTextTower",
    "HFTextEncoder",
    "LearnedTextEmbedding",
    "TextEncoder",
    "TextEncoding",
    "TokenTransformer",
    "build_bpe_from_texts",
]
