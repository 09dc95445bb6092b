"""``method=attn_gmm``: the preliminary masks of concept distillation (Dombrowski et al.), training-free.

The prompt "a photo of a {object}" conditions the UNet (no classifier-free guidance) on 40 independent noisings of
the clean latent (a VAE posterior sample x 0.18215, as the authors; ``posterior=mean`` uses the mean) at t = 781,
761, ..., 1, the 40 lowest steps of the DDIM-50 grid. The cross-attention probability of the object's token(s)
(mean over a multi-token object's tokens) is read from all 16 cross-attention layers, averaged over heads,
nearest-upsampled to the largest resolution (64 x 64 for SD), and averaged over layers and steps. A 2-component
Gaussian mixture on the map's values (raw, as the authors; ``gmm_values=minmax`` fits the [0, 1]-normalised map)
gives the threshold (the mean of the two means), and a 3 x 3 box mean of the binary map thresholded at 0.5 removes
orphan pixels (the authors leave the 1-pixel border as thresholded; ``orphan_border=reflect`` filters it too, with
reflected edges). The soft map written (``alpha``) is the map normalised to [0, 1] per instance. The later stages
of the paper fine-tune SD and train a U-Net: not training-free, out of scope. Noisings are batched:
``steps_per_call`` of them (for every unit of the batch) per UNet call.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from scipy.ndimage import uniform_filter

from peekaboo.baselines.attention import capture_attention
from peekaboo.baselines.base import PromptedBaseline, ddim_timesteps
from peekaboo.baselines.configs import GMMValues, OrphanBorder, Posterior
from peekaboo.data.base import Item
from peekaboo.engine.random import UnitRandom
from peekaboo.errors import ConfigError
from peekaboo.tasks.base import Unit
from peekaboo.tasks.segment import UnitMaps


def minmax(values: np.ndarray) -> np.ndarray:
    """Scale to [0, 1]; a constant map becomes all zeros."""
    low, span = values.min(), np.ptp(values)
    return (values - low) / span if span > 0 else np.zeros_like(values)


def gmm_threshold(values: np.ndarray, seed: int) -> float:
    """The mean of the two component means of a 2-component Gaussian mixture fitted to ``values``."""
    from sklearn.mixture import GaussianMixture

    mixture = GaussianMixture(n_components=2, random_state=seed % 2**32).fit(values.reshape(-1, 1).astype(np.float64))
    return float(mixture.means_.mean())


def orphan_filter(mask: np.ndarray, size: int = 3, threshold: float = 0.5, border: OrphanBorder = OrphanBorder.keep):
    """A (H, W) bool mask -> its ``size`` x ``size`` box mean > ``threshold`` (see OrphanBorder for the edge)."""
    if size <= 1:
        return mask
    filtered = uniform_filter(mask.astype(np.float64), size=size, mode="reflect") > threshold
    if border is OrphanBorder.keep:
        edge = size // 2
        filtered[:edge], filtered[-edge:] = mask[:edge], mask[-edge:]
        filtered[:, :edge], filtered[:, -edge:] = mask[:, :edge], mask[:, -edge:]
    return filtered


def gmm_mask(
    heat: np.ndarray,
    seed: int,
    orphan_size: int = 3,
    orphan_threshold: float = 0.5,
    border: OrphanBorder = OrphanBorder.keep,
) -> np.ndarray:
    """Binary mask of a (H, W) map: map > GMM threshold, then the orphan filter."""
    if np.ptp(heat) == 0:
        return np.zeros(heat.shape, bool)
    return orphan_filter(heat > gmm_threshold(heat, seed), orphan_size, orphan_threshold, border)


class AttentionGMMModule(PromptedBaseline):
    @classmethod
    def check_config(cls, cfg: DictConfig) -> None:
        super().check_config(cfg)
        method = cfg.method
        if not 1 <= method.ddim_steps <= 1000:
            raise ConfigError("method.ddim_steps", f"must lie in [1, 1000], got {method.ddim_steps}")
        if not 1 <= method.steps <= method.ddim_steps:
            raise ConfigError("method.steps", f"must lie in [1, method.ddim_steps={method.ddim_steps}]")
        if method.steps_per_call < 1:
            raise ConfigError("method.steps_per_call", f"must be >= 1, got {method.steps_per_call}")
        if method.orphan_size < 1 or method.orphan_size % 2 == 0:
            raise ConfigError("method.orphan_size", f"must be a positive odd integer, got {method.orphan_size}")
        if not 0 <= method.orphan_threshold < 1:
            raise ConfigError("method.orphan_threshold", f"must lie in [0, 1), got {method.orphan_threshold}")

    def unit_latents(self, items: list[Item], units: list[Unit], rng: UnitRandom) -> torch.Tensor:
        """Each unit's clean latent: its item's posterior mean, plus std x the first draw of its stream (sample)."""
        posterior = self.encode_items(items)
        index = torch.tensor([u.item for u in units], device=self.prior.device)
        if Posterior(self.cfg.method.posterior) is Posterior.mean or posterior.std is None:
            return posterior.mean[index]
        return posterior.mean[index] + posterior.std[index] * rng.randn([1] * len(units), *self.prior.latent_shape)

    def attention_maps(self, items: list[Item], units: list[Unit]) -> torch.Tensor:
        """(U, S, S) mean cross-attention of each unit's prompt tokens over layers and noisings."""
        method, prior = self.cfg.method, self.prior
        embeddings, token_weights = self.conditioning(units)
        rng = UnitRandom([u.seed for u in units], prior.device)
        latents = self.unit_latents(items, units, rng)
        timesteps = ddim_timesteps(method.ddim_steps, method.steps)
        size, total = self.latent_size, None
        for start in range(0, len(timesteps), method.steps_per_call):
            chunk = timesteps[start : start + method.steps_per_call]
            n = len(chunk)  # unit-major samples: unit u owns rows u * n ... u * n + n - 1
            t = torch.tensor(chunk, device=prior.device).repeat(len(units))
            noisy = self.noised(latents.repeat_interleave(n, 0), t, rng.randn([n] * len(units), *prior.latent_shape))
            with capture_attention(prior.unet, size, "cross") as store:
                prior.predict_noise(noisy, t, embeddings.repeat_interleave(n, 0))
            layers = sum(store.count(r) for r in store)
            for r in store:  # layer sum at resolution r -> prompt tokens -> sum over the chunk's noisings
                tokens = torch.einsum(
                    "bqk,bk->bq", store.mean(r) * store.count(r), token_weights.repeat_interleave(n, 0)
                )
                maps = tokens.view(len(units), n, 1, r, r).sum(1)
                maps = F.interpolate(maps, size=(size, size), mode="nearest")[:, 0] / layers
                total = maps if total is None else total + maps
        return total / len(timesteps)

    def unit_maps(self, items: list[Item], units: list[Unit]) -> UnitMaps:
        method = self.cfg.method
        heat = self.attention_maps(items, units).cpu().numpy()
        alpha = np.stack([minmax(h) for h in heat])
        fitted = heat if GMMValues(method.gmm_values) is GMMValues.raw else alpha
        border = OrphanBorder(method.orphan_border)
        masks = np.stack(
            [
                gmm_mask(values, u.seed, method.orphan_size, method.orphan_threshold, border)
                for values, u in zip(fitted, units, strict=True)
            ]
        )
        return UnitMaps(
            alpha=torch.from_numpy(alpha).float()[:, None],
            masks=torch.from_numpy(masks)[:, None],
            iterations=method.steps,
        )
