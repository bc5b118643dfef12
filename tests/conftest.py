import os

import torch

if not torch.cuda.is_available():  # Triton kernels run on the CPU only under the interpreter, chosen at import
    os.environ.setdefault("TRITON_INTERPRET", "1")

from tests_helpers import classifier_checkpoint, clip_ckpt, kl_ckpt, tiny_checkpoint, wide_clip_ckpt  # noqa: E402, F401
