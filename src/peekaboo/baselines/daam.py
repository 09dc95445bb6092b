"""``method=daam``: DAAM-style cross-attention heat maps (Tang et al., "What the DAAM", ACL 2023) for real images.

The clean latent (VAE posterior mean x 0.18215) is noised at each of ``timesteps`` (one fresh noise per step and
unit) and passed once through the UNet conditioned on the prompt (no guidance). Cross-attention maps of the layers
at every latent resolution except the lowest (SD at 512 px: 64, 32 and 16, not the 8 x 8 mid block) are summed
over timesteps per layer and head; DAAM's aggregation follows: each (layer, head, token) map is bicubically
upsampled to the latent size and clamped at >= 0, maps are averaged over layers and heads, the word's map is the
mean over its tokens, bicubically upsampled to the working image size and min-max normalised; mask = map > 0.4.
Summing or averaging over timesteps is the same after normalisation; the running mean is kept.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from omegaconf import DictConfig

from peekaboo.baselines.attention import attention_layers, capture_attention
from peekaboo.baselines.base import PromptedBaseline
from peekaboo.data.base import Item
from peekaboo.engine.random import UnitRandom
from peekaboo.errors import ConfigError
from peekaboo.tasks.base import Unit
from peekaboo.tasks.segment import UnitMaps


class DAAMModule(PromptedBaseline):
    @classmethod
    def check_config(cls, cfg: DictConfig) -> None:
        super().check_config(cfg)
        method = cfg.method
        if not method.timesteps or any(not 0 <= t < 1000 for t in method.timesteps):
            raise ConfigError("method.timesteps", f"must be a non-empty list in [0, 999], got {list(method.timesteps)}")
        if not 0 < method.threshold < 1:
            raise ConfigError("method.threshold", f"must lie strictly between 0 and 1, got {method.threshold}")

    def heat_maps(self, items: list[Item], units: list[Unit]) -> torch.Tensor:
        """(U, S, S) DAAM heat map of each unit's prompt at the latent size S, before upsampling and normalising."""
        prior, size = self.prior, self.latent_size
        embeddings, token_weights = self.conditioning(units)
        latents = self.clean_latents(items)[torch.tensor([u.item for u in units], device=prior.device)]
        rng = UnitRandom([u.seed for u in units], prior.device)
        cross = {layer.resolution for layer in attention_layers(prior.unet, size) if layer.kind == "cross"}
        resolutions = cross - {min(cross)}  # DAAM leaves out the 8 x 8 maps of SD at 512 px
        with capture_attention(prior.unet, size, "cross", resolutions, keep_heads=True, group="layer") as store:
            for step in self.cfg.method.timesteps:
                t = torch.full((len(units),), step, device=prior.device, dtype=torch.long)
                prior.predict_noise(
                    self.noised(latents, t, rng.randn([1] * len(units), *prior.latent_shape)), t, embeddings
                )
        heat = torch.zeros(len(units), size, size, device=prior.device)
        maps_per_unit = 0
        for layer in store:
            maps = store.mean(layer)  # (U, heads, r^2, tokens)
            heads, r = maps.shape[1], int(maps.shape[2] ** 0.5)
            for u, weights in enumerate(token_weights):
                positions = weights.nonzero()[:, 0]
                tokens = maps[u][..., positions].permute(0, 2, 1).reshape(-1, 1, r, r)
                up = F.interpolate(tokens, size=(size, size), mode="bicubic", align_corners=False).clamp_(min=0)
                heat[u] += up.view(heads, len(positions), size, size).sum(0).mean(0)
            maps_per_unit += heads
        return heat / maps_per_unit

    def unit_maps(self, items: list[Item], units: list[Unit]) -> UnitMaps:
        heat = self.heat_maps(items, units)
        side = items[0].image.shape[-1]
        heat = F.interpolate(heat[:, None], size=(side, side), mode="bicubic", align_corners=False)
        low = heat.amin(dim=(2, 3), keepdim=True)
        alpha = (heat - low) / (heat.amax(dim=(2, 3), keepdim=True) - low + 1e-8)
        return UnitMaps(
            alpha=alpha.cpu(),
            masks=(alpha > self.cfg.method.threshold).cpu(),
            iterations=len(self.cfg.method.timesteps),
        )
