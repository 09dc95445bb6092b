"""``guidance_map=depth``: the paper's "Depth Bilateral" guide, ``[rgb * rgb_scale, depth_scale * depth]``.

Monocular depth comes from MiDaS v3 DPT through transformers (``Intel/dpt-large`` = DPT-Large, or
``Intel/dpt-hybrid-midas``; both run without timm). The image is resized (bicubic) to the model's input size
and normalised with the checkpoint's mean/std; the prediction (relative inverse depth, large = near) is resized
back to the working resolution. Maps are cached on disk per (model, image), so sweeps over the bilateral or
depth settings never recompute them; normalisation and scales are applied after the cache.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import DictConfig

from peekaboo.data.base import Item
from peekaboo.errors import ConfigError, ModelLoadError
from peekaboo.guides.configs import DepthNormalization
from peekaboo.guides.rgb import RGBGuide
from peekaboo.io.atomic import write_bytes
from peekaboo.priors.configs import Precision
from peekaboo.priors.hub import load_pretrained
from peekaboo.tiny import cache_root, cached_build, save_image_processor_config

_FILES = ("config.json", "model.safetensors", "preprocessor_config.json")


def normalize_depth(
    depth: torch.Tensor, normalize: DepthNormalization | str = DepthNormalization.divide, divisor: float = 20.0
) -> torch.Tensor:
    """Raw depth maps (G, 1, H, W) -> the guide's depth channel before ``depth_scale``."""
    normalize = DepthNormalization(getattr(normalize, "value", normalize))
    if normalize is DepthNormalization.divide:
        return depth / divisor
    flat = depth.flatten(1)
    low = flat.min(1).values.view(-1, 1, 1, 1)
    high = flat.max(1).values.view(-1, 1, 1, 1)
    return (depth - low) / (high - low).clamp_min(1e-8)


def depth_guide(images: torch.Tensor, depth: torch.Tensor, rgb_scale: float, depth_scale: float) -> torch.Tensor:
    """``[images * rgb_scale, depth * depth_scale]``: (G, 3, H, W) and (G, 1, H, W) -> (G, 4, H, W)."""
    return torch.cat([images * rgb_scale, depth.to(images.dtype) * depth_scale], dim=1)


class DepthGuide(RGBGuide):
    """RGB plus a normalised MiDaS depth channel; the DPT model loads in :meth:`setup` (once per process)."""

    def __init__(
        self,
        path: str = "Intel/dpt-large",
        revision: str | None = None,
        cache_dir: str | None = None,
        local_files_only: bool = False,
        dtype: Precision | str = Precision.fp32,
        rgb_scale: float = 1.0,
        depth_scale: float = 1.0,
        normalize: DepthNormalization | str = DepthNormalization.divide,
        divisor: float = 20.0,
        cache_maps: bool = True,
        maps_dir: str | None = None,
        tiny: bool = False,
    ):
        super().__init__(rgb_scale)
        self.path, self.revision, self.cache_dir, self.local_files_only = path, revision, cache_dir, local_files_only
        self.dtype = Precision(getattr(dtype, "value", dtype)).dtype
        self.depth_scale, self.divisor = depth_scale, divisor
        self.normalize = DepthNormalization(getattr(normalize, "value", normalize))
        self.maps_dir = (Path(maps_dir).expanduser() if maps_dir else cache_root() / "depth") if cache_maps else None
        self.tiny = tiny
        self.model = None
        self.computed = 0  # depth maps computed by the model (not read from the cache) in this process

    @classmethod
    def check_config(cls, cfg: DictConfig) -> None:
        guide = cfg.guidance_map
        normalize = DepthNormalization(getattr(guide.normalize, "value", guide.normalize))
        if normalize is DepthNormalization.divide and guide.divisor <= 0:
            raise ConfigError("guidance_map.divisor", f"must be > 0, got {guide.divisor}")

    def setup(self, device: torch.device) -> None:
        """Load the DPT model (and its preprocessing constants) on ``device``; a no-op once loaded."""
        if self.model is not None:
            return
        from transformers import DPTForDepthEstimation
        from transformers.image_processing_base import ImageProcessingMixin

        if self.tiny:
            self.path, self.cache_dir, self.local_files_only = str(tiny_dpt_directory()), None, True

        def load(local_only: bool):
            kwargs = {"cache_dir": self.cache_dir, "local_files_only": local_only, "revision": self.revision}
            model = DPTForDepthEstimation.from_pretrained(self.path, **kwargs)
            return model, ImageProcessingMixin.get_image_processor_dict(self.path, **kwargs)[0]

        try:
            model, processor = load_pretrained(
                load,
                what="the depth model",
                path=self.path,
                revision=self.revision,
                cache_dir=self.cache_dir,
                local_files_only=self.local_files_only,
                probe="config.json",
                files=_FILES,
                key="guidance_map.path",
            )
        except ImportError as err:
            if "timm" not in str(err):
                raise
            raise ModelLoadError(
                f"the depth model '{self.path}' (guidance_map.path) needs timm, an optional dependency: "
                f"pip install 'peekaboo[timm]' (Intel/dpt-large and Intel/dpt-hybrid-midas do not need it)"
            ) from err
        self.device = torch.device(device)
        self.model = model.requires_grad_(False).eval().to(self.device, self.dtype)
        size = processor.get("size") or {}
        self.input_size = (int(size.get("height", 384)), int(size.get("width", 384)))
        shape = (1, 3, 1, 1)
        self.mean = torch.tensor(processor.get("image_mean", (0.5, 0.5, 0.5)), device=self.device).view(shape)
        self.std = torch.tensor(processor.get("image_std", (0.5, 0.5, 0.5)), device=self.device).view(shape)
        self.model_key = json.dumps([self.path, self.revision, str(self.dtype), self.input_size])

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """Raw DPT depth (G, 1, H, W) float32 at the images' resolution; images (G, 3, H, W) in [0, 1]."""
        x = F.interpolate(images.float(), size=self.input_size, mode="bicubic", align_corners=False, antialias=True)
        x = ((x.clamp(0, 1) - self.mean) / self.std).to(self.dtype)
        depth = self.model(pixel_values=x).predicted_depth.float().unsqueeze(1)
        return F.interpolate(depth, size=images.shape[-2:], mode="bicubic", align_corners=False)

    def depth(self, images: torch.Tensor) -> torch.Tensor:
        """Raw depth maps (G, 1, H, W) of images (G, 3, H, W), from the on-disk cache where possible."""
        if self.model is None:
            raise RuntimeError("DepthGuide.setup(device) must run before the guide is used")
        keys = [self._key(image) for image in images]
        maps: list[torch.Tensor | None] = [self._read(key) for key in keys]
        missing = [i for i, found in enumerate(maps) if found is None]
        if missing:
            computed = self.predict(images[missing].to(self.device))
            self.computed += len(missing)
            for i, depth in zip(missing, computed, strict=True):
                maps[i] = depth
                self._write(keys[i], depth)
        return torch.stack([m.to(images.device) for m in maps])

    def __call__(self, images: torch.Tensor, items: list[Item]) -> torch.Tensor:
        depth = normalize_depth(self.depth(images), self.normalize, self.divisor)
        return depth_guide(images, depth, self.rgb_scale, self.depth_scale)

    def _key(self, image: torch.Tensor) -> str:
        pixels = image.detach().float().cpu().contiguous().numpy()
        digest = hashlib.sha1(self.model_key.encode())
        digest.update(str(pixels.shape).encode())
        digest.update(pixels.tobytes())
        return digest.hexdigest()[:20]

    def _read(self, key: str) -> torch.Tensor | None:
        if self.maps_dir is None:
            return None
        try:
            return torch.from_numpy(np.load(self.maps_dir / f"{key}.npy"))
        except (OSError, ValueError):
            return None  # absent or unreadable: recompute (and overwrite)

    def _write(self, key: str, depth: torch.Tensor) -> None:
        if self.maps_dir is None:
            return
        buffer = io.BytesIO()
        np.save(buffer, depth.cpu().numpy().astype(np.float32))
        write_bytes(self.maps_dir / f"{key}.npy", buffer.getvalue())


TINY_DPT_VERSION = 1


def _build_tiny_dpt(directory: Path) -> None:
    """A 4-layer ViT DPT (32-pixel input, 8-pixel patches) with DPT-Large's preprocessing constants."""
    from transformers import DPTConfig, DPTForDepthEstimation

    config = DPTConfig(
        hidden_size=32,
        num_hidden_layers=4,
        num_attention_heads=4,
        intermediate_size=64,
        image_size=32,
        patch_size=8,
        backbone_out_indices=[0, 1, 2, 3],
        neck_hidden_sizes=[8, 16, 32, 32],
        fusion_hidden_size=16,
        head_hidden_size=8,
        initializer_range=0.15,  # outputs of MiDaS's order (0 to ~20) instead of ~1e-9 with the default 0.02
    )
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = DPTForDepthEstimation(config)
    save_image_processor_config(directory, "DPTImageProcessor", size=32, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    model.save_pretrained(directory)


def tiny_dpt_directory(cache_dir: str | None = None) -> Path:
    """The tiny DPT's directory under ``$PEEKABOO_CACHE``, built there first if needed."""
    return cached_build("tiny_dpt", {"version": TINY_DPT_VERSION}, _build_tiny_dpt, "config.json", cache_dir)
