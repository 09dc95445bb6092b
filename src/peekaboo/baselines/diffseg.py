"""``method=diffseg``: DiffSeg (Tian et al., "Diffuse, Attend, and Segment", CVPR 2024), unsupervised, no prompt.

The recipe of the authors' code: the clean latent (VAE posterior mean x 0.18215) goes through the UNet once at
t = 300 with the empty prompt (no noise, no guidance); the self-attention maps of all 16 layers are averaged over
heads and over the layers of each resolution, then aggregated to the largest resolution S (64 for SD at 512 px):
each query's key map is bilinearly upsampled to S x S and renormalised to sum 1, queries are repeated (nearest) to
S x S, and resolutions are summed with weights proportional to their side (64, 32, 16, 8) / 120. Merging: an
anchor grid (16 x 16 at 1, 5, ..., 61 of 64); iteration 0 replaces each anchor by the mean of every pixel map
within symmetric-KL/2 distance ``tau`` of the anchor's map, later iterations greedily merge the proposals within
``tau``; 3 iterations. Labels: the proposals are bilinearly upsampled x8 and each pixel takes the argmax.

Everything runs in fp32 by default, and the symmetric KL of all pairs is two matrix products plus the rows' negative
entropies. The original computes the first iteration's KL in fp16: a probability below fp16's smallest subnormal
becomes 0, its log -inf, and every KL with that map NaN, so such a pixel joins no anchor and such an anchor no
proposal (its NaN proposal drops out at the next iteration); ``kl_first_iteration_dtype=fp16`` reproduces that.
The optional K-means refinement of the original notebook is not implemented.
"""

from __future__ import annotations

import time
from typing import Any

import torch
import torch.nn.functional as F
from omegaconf import DictConfig

from peekaboo.baselines.attention import capture_attention
from peekaboo.baselines.base import AttentionBaseline
from peekaboo.baselines.configs import KLDtype
from peekaboo.data.base import Item
from peekaboo.errors import ConfigError
from peekaboo.tasks.base import ItemArtifacts
from peekaboo.tasks.labels import label_artifacts

MAX_ANCHORS_PER_SIDE = 16  # 256 proposals at most: segment ids fit a palette PNG


def aggregate_self_attention(maps: dict[int, torch.Tensor], size: int) -> torch.Tensor:
    """Per-resolution self-attention (B, r^2, r^2) -> (B, size^2, size^2), rows summing to 1 (see module doc)."""
    total = float(sum(maps))
    out = None
    for r, attention in sorted(maps.items(), reverse=True):
        if size % r:
            raise ValueError(f"attention resolution {r} does not divide the aggregation size {size}")
        batch, ratio = attention.shape[0], size // r
        keys = attention.float().reshape(batch * r * r, 1, r, r)
        if r != size:
            keys = F.interpolate(keys, size=(size, size), mode="bilinear", align_corners=False)
        keys = keys.reshape(batch, r, r, size * size)
        keys = keys / keys.sum(-1, keepdim=True)
        keys = keys.repeat_interleave(ratio, 1).repeat_interleave(ratio, 2).reshape(batch, size * size, size * size)
        out = keys.mul_(r / total) if out is None else out.add_(keys, alpha=r / total)
    return out


def anchor_grid(size: int, per_side: int) -> torch.Tensor:
    """Flat indices (row-major) of a per_side x per_side grid on size x size, as the original: points
    start + step * k with step = (size - 1) // (per_side - 1), centred (1, 5, ..., 61 for 16 on 64)."""
    per_side = min(per_side, size)
    step = (size - 1) // (per_side - 1) if per_side > 1 else 0
    start = (size - 1 - step * (per_side - 1)) // 2
    coords = start + step * torch.arange(per_side)
    return (coords[:, None] * size + coords[None, :]).flatten()


def symmetric_kl(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """(KL(p_i || q_j) + KL(q_j || p_i)) / 2 for all rows of p (N, D) and q (M, D): two matrix products."""
    tiny = torch.finfo(p.dtype).tiny  # an underflowed probability contributes p log p = 0, not NaN
    log_p, log_q = p.clamp_min(tiny).log(), q.clamp_min(tiny).log()
    neg_entropy_p, neg_entropy_q = (p * log_p).sum(1), (q * log_q).sum(1)
    return 0.5 * (neg_entropy_p[:, None] + neg_entropy_q[None, :] - p @ log_q.T - log_p @ q.T)


def greedy_merge(proposals: torch.Tensor, tau: float) -> torch.Tensor:
    """One later merging iteration: in order, each proposal not merged yet becomes the mean of every proposal
    within ``tau`` of it (including ones merged before, as the original), and all of those count as merged."""
    close = (symmetric_kl(proposals, proposals) < tau).cpu()
    close.fill_diagonal_(True)
    merged = torch.zeros(len(proposals), dtype=torch.bool)
    out = []
    for i in range(len(proposals)):
        if merged[i]:
            continue
        merged |= close[i]
        out.append(proposals[close[i].to(proposals.device)].mean(0))
    return torch.stack(out)


def anchor_members(attention: torch.Tensor, anchors: torch.Tensor, tau: float, dtype: KLDtype) -> torch.Tensor:
    """(A, N) bool: pixel j joins anchor i when their symmetric KL / 2 is below ``tau``.

    fp16 (the original): the maps are rounded to float16; a map holding a 0 there (an underflow) has NaN KLs with
    every map, and NaN < tau is false, so it joins nothing and nothing joins it (not even itself)."""
    if dtype is KLDtype.fp32:
        member = symmetric_kl(attention[anchors], attention) < tau
        member[torch.arange(len(anchors), device=attention.device), anchors] = True  # an anchor always joins itself
        return member
    half = attention.half()
    finite = (half > 0).all(1)  # the maps whose fp16 KLs are numbers
    rounded = half.float()
    return (symmetric_kl(rounded[anchors], rounded) < tau) & finite[anchors, None] & finite[None, :]


def merge_attention(
    attention: torch.Tensor, anchors: torch.Tensor, tau: float, iterations: int, dtype: KLDtype = KLDtype.fp32
) -> torch.Tensor:
    """Pixel maps (N, N) (row i: where pixel i attends, sums to 1) -> proposals (K, N) after ``iterations``.

    Anchors that no map joins (fp16 only) give no proposal: the original's NaN proposal, dropped by its next
    iteration (its KL with itself is NaN)."""
    attention = attention.float()
    member = anchor_members(attention, anchors.to(attention.device), tau, dtype).float()
    size = member.sum(1, keepdim=True)
    kept = size[:, 0] > 0
    if not kept.any():
        raise ValueError(
            "every DiffSeg anchor map underflows in fp16 (method.kl_first_iteration_dtype=fp16): no proposal is left; "
            "use method.kl_first_iteration_dtype=fp32"
        )
    proposals = (member[kept] @ attention) / size[kept]
    for _ in range(iterations - 1):
        proposals = greedy_merge(proposals, tau)
    return proposals


class DiffSegModule(AttentionBaseline):
    @classmethod
    def check_config(cls, cfg: DictConfig) -> None:
        super().check_config(cfg)
        method = cfg.method
        if not 0 <= method.timestep < 1000:
            raise ConfigError("method.timestep", f"must lie in [0, 999], got {method.timestep}")
        if method.tau <= 0:
            raise ConfigError("method.tau", f"must be > 0, got {method.tau}")
        if method.iterations < 1:
            raise ConfigError("method.iterations", f"must be >= 1, got {method.iterations}")
        if not 1 <= method.anchors <= MAX_ANCHORS_PER_SIDE:
            raise ConfigError("method.anchors", f"must lie in [1, {MAX_ANCHORS_PER_SIDE}], got {method.anchors}")
        if method.upsample < 1:
            raise ConfigError("method.upsample", f"must be >= 1, got {method.upsample}")
        if method.num_classes is not None and not 1 <= method.num_classes <= 255:
            raise ConfigError("method.num_classes", f"must lie in [1, 255] or be null, got {method.num_classes}")

    def segment_scores(self, items: list[Item]) -> torch.Tensor:
        """Each item's merged proposals (K, S, S) on the CPU (K differs between items)."""
        method = self.cfg.method
        latents = self.clean_latents(items)
        timesteps = torch.full((len(items),), method.timestep, device=self.prior.device, dtype=torch.long)
        embeddings = self.embed([method.prompt] * len(items))
        with capture_attention(self.prior.unet, self.latent_size, "self") as store:
            self.prior.predict_noise(latents, timesteps, embeddings)
        maps = {r: store.mean(r) for r in store}
        size = max(maps)
        aggregated = aggregate_self_attention(maps, size)
        anchors = anchor_grid(size, method.anchors)
        return [
            merge_attention(attention, anchors, method.tau, method.iterations, KLDtype(method.kl_first_iteration_dtype))
            .view(-1, size, size)
            .cpu()
            for attention in aggregated
        ]

    @torch.no_grad()
    def predict_step(self, batch: list[Item], batch_idx: int) -> list[ItemArtifacts]:
        method = self.cfg.method
        start = time.perf_counter()
        proposals = self.segment_scores(batch)
        seconds = time.perf_counter() - start
        timings: dict[str, Any] = {
            "batch_seconds": seconds,
            "batch_units": len(batch),
            "seconds": seconds / len(batch),
            "iterations": 1,  # UNet passes per item
        }
        return [
            label_artifacts(
                item, scores, method.upsample, method.num_classes, self.cfg.seed + item.index, timings, self.record
            )
            for item, scores in zip(batch, proposals, strict=True)
        ]
