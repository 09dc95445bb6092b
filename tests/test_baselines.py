"""The baselines' algorithms on synthetic inputs with known answers: DiffSeg merging, GMM masks, prompt tokens."""

import numpy as np
import pytest
import torch

from peekaboo.baselines.attn_gmm import gmm_mask, gmm_threshold, minmax, orphan_filter
from peekaboo.baselines.base import ddim_timesteps, prompt_tokens
from peekaboo.baselines.configs import KLDtype, OrphanBorder
from peekaboo.baselines.diffseg import (
    aggregate_self_attention,
    anchor_grid,
    anchor_members,
    merge_attention,
    symmetric_kl,
)
from peekaboo.errors import DataError
from peekaboo.evaluation.metrics import hungarian_counts, hungarian_scores
from peekaboo.tasks.labels import compact, label_map


def test_symmetric_kl_matches_the_definition():
    generator = torch.Generator().manual_seed(0)
    p = torch.rand(3, 10, generator=generator).softmax(-1)
    q = torch.rand(4, 10, generator=generator).softmax(-1)
    direct = torch.tensor(
        [[0.5 * ((a * (a / b).log()).sum() + (b * (b / a).log()).sum()) for b in q] for a in p], dtype=torch.float32
    )
    assert torch.allclose(symmetric_kl(p, q), direct, atol=1e-6)
    assert symmetric_kl(p, p).diagonal().abs().max() < 1e-6
    # an underflowed probability (0) stays finite instead of producing NaN
    zero = torch.tensor([[1.0, 0.0], [0.5, 0.5]])
    assert torch.isfinite(symmetric_kl(zero, zero)).all()


def test_anchor_grid_is_the_originals():
    grid = anchor_grid(64, 16).view(16, 16)
    assert (grid[0] % 64).tolist() == list(range(1, 62, 4))  # columns 1, 5, ..., 61
    assert (grid[:, 0] // 64).tolist() == list(range(1, 62, 4))  # rows 1, 5, ..., 61
    assert anchor_grid(8, 16).numel() == 64  # capped at the resolution: every pixel of an 8x8 grid


def test_aggregation_weights_resolutions_by_side_and_keeps_rows_normalised():
    size = 4
    one_hot = torch.eye(size * size)[None]  # 4x4: pixel i attends to itself only
    uniform = torch.full((1, 4, 4), 0.25)  # 2x2: every pixel attends uniformly
    out = aggregate_self_attention({4: one_hot, 2: uniform}, size)
    assert out.shape == (1, 16, 16)
    assert torch.allclose(out.sum(-1), torch.ones(1, 16))
    # weights 4/6 and 2/6; a uniform 2x2 map upsampled and renormalised is uniform over 16 pixels
    assert torch.allclose(out[0], (4 / 6) * torch.eye(16) + (2 / 6) / 16, atol=1e-6)


def synthetic_attention(segments: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Pixel maps that concentrate on the pixel's own segment, with noise: (N, N), rows summing to 1."""
    flat = segments.flatten()
    same = (flat[:, None] == flat[None, :]).float()
    noise = torch.randn(flat.numel(), flat.numel(), generator=torch.Generator().manual_seed(seed))
    return (4.0 * same + 0.3 * noise).softmax(-1)


def test_merging_recovers_known_segments_exactly():
    size = 32
    segments = torch.zeros(size, size, dtype=torch.long)
    segments[:, 16:] = 1
    segments[16:, 16:] = 2
    segments[24:, 16:] = 3
    segments[:8, :8] = 4
    proposals = merge_attention(synthetic_attention(segments), anchor_grid(size, 8), tau=1.1, iterations=3)
    assert proposals.shape == (5, size * size)  # one proposal per segment: the 64 anchors merged to 5
    assert torch.allclose(proposals.sum(1), torch.ones(5), atol=1e-5)
    labels = label_map(proposals.view(5, size, size), (size, size))
    counts = hungarian_counts(labels, segments.numpy(), 5)
    assert counts["tp"] == np.bincount(segments.flatten().numpy()).tolist() and sum(counts["fp"]) == 0
    # upsampled x8 (bilinear, argmax): the segments at every low-resolution pixel centre; boundaries may move by
    # less than one low-resolution pixel (denser maps of smaller segments win there), as in the original
    big = compact(label_map(proposals.view(5, size, size), (8 * size, 8 * size)))
    centres = hungarian_counts(big[4::8, 4::8], segments.numpy(), 5)
    assert hungarian_scores(**centres) == {"pixel_accuracy": 1.0, "mIoU": 1.0}
    expected = segments.repeat_interleave(8, 0).repeat_interleave(8, 1).numpy()
    assert hungarian_scores(**hungarian_counts(big, expected, 5))["pixel_accuracy"] > 0.98


def test_merging_threshold_controls_granularity():
    segments = torch.zeros(16, 16, dtype=torch.long)
    segments[8:] = 1
    attention = synthetic_attention(segments, seed=1)
    assert merge_attention(attention, anchor_grid(16, 4), tau=1.1, iterations=3).shape[0] == 2
    # a threshold larger than the distance between the two segments merges everything into one proposal
    far = symmetric_kl(attention[:1], attention[-1:]).item()
    merged = merge_attention(attention, anchor_grid(16, 4), tau=far * 4, iterations=3)
    assert merged.shape[0] == 1


def test_fp16_first_iteration_drops_underflowing_maps_as_the_original():
    segments = torch.zeros(16, 16, dtype=torch.long)
    segments[8:] = 1
    attention = synthetic_attention(segments, seed=2)
    anchors = anchor_grid(16, 4)
    # without underflow fp16 only rounds: the same members, the same proposals
    assert torch.equal(
        anchor_members(attention, anchors, 1.1, KLDtype.fp16), anchor_members(attention, anchors, 1.1, KLDtype.fp32)
    )
    underflow_anchor, underflow_pixel = int(anchors[0]), 100  # pixel 100 is no anchor
    for row in (underflow_anchor, underflow_pixel):
        attention[row, 255] = 1e-9  # below fp16's smallest subnormal (6e-8): 0 in fp16
        attention[row] /= attention[row].sum()
    fp32 = anchor_members(attention, anchors, 1.1, KLDtype.fp32)
    fp16 = anchor_members(attention, anchors, 1.1, KLDtype.fp16)
    assert fp32[0].any() and fp32[:, underflow_pixel].any()  # fp32: they merge like any other map
    assert not fp16[0].any() and not fp16[:, underflow_pixel].any()  # fp16: joined by nothing, joining nothing
    others = torch.ones(256, dtype=torch.bool)
    others[[underflow_anchor, underflow_pixel]] = False
    assert torch.equal(fp16[1:, others], fp32[1:, others])  # the other pairs are unchanged
    # the original's elementwise fp16 formula: NaN exactly for the pairs with an underflowed map
    x, y = attention[anchors].half()[:, None], attention.half()[None]
    quotient = x.log() - y.log()
    original = ((x * quotient).sum(-1) / 2 - (y * quotient).sum(-1) / 2).float()
    assert torch.equal(original < 1.1, fp16)
    assert original[0].isnan().all() and original[:, underflow_pixel].isnan().all()
    # the anchor's NaN proposal drops out: one proposal fewer after the first iteration, the same segments after 3
    assert merge_attention(attention, anchors, 1.1, 1, KLDtype.fp32).shape[0] == len(anchors)
    assert merge_attention(attention, anchors, 1.1, 1, KLDtype.fp16).shape[0] == len(anchors) - 1
    assert merge_attention(attention, anchors, 1.1, 3, KLDtype.fp16).shape[0] == 2


def test_gmm_binarises_a_bimodal_map():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:64, :64]
    disk = (yy - 30) ** 2 + (xx - 34) ** 2 < 15**2
    heat = np.where(disk, 0.8, 0.2) + 0.05 * rng.standard_normal((64, 64))
    threshold = gmm_threshold(heat, seed=0)
    assert threshold == pytest.approx(0.5, abs=0.02)  # the mean of the two modes' means
    heat[5, 5] = heat[50, 8] = 0.9  # two orphan pixels in the background
    mask = gmm_mask(heat, seed=0)
    assert not mask[5, 5] and not mask[50, 8]  # removed by the 3x3 box mean
    assert (mask == disk).mean() > 0.995  # only a few boundary pixels of the disk can be trimmed
    assert not gmm_mask(np.full((8, 8), 0.3), seed=0).any()  # a constant map has no object


def test_gmm_on_raw_values_differs_from_minmax_only_for_tiny_values():
    """A mixture is affine-equivariant but for sklearn's variance floor (reg_covar 1e-6): raw attention values with
    a spread near 1e-3 (a weakly attended token) get another threshold than the same map scaled to [0, 1]."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:64, :64]
    disk = (yy - 30) ** 2 + (xx - 34) ** 2 < 15**2
    base = np.where(disk, 0.8, 0.2) + 0.05 * rng.standard_normal((64, 64))
    for scale, same in ((1.0, True), (1e-3, False)):
        heat = base * scale
        raw = gmm_threshold(heat, seed=0)
        scaled = heat.min() + np.ptp(heat) * gmm_threshold(minmax(heat), seed=0)  # back in raw units
        if same:
            assert raw == pytest.approx(scaled, rel=1e-6)
            assert np.array_equal(gmm_mask(heat, 0), gmm_mask(minmax(heat), 0))
        else:
            assert abs(raw - scaled) > 0.1 * np.ptp(heat)  # 0.30e-3 vs 0.50e-3
            assert not np.array_equal(gmm_mask(heat, 0), gmm_mask(minmax(heat), 0))


def test_orphan_filter_keeps_the_border_as_the_authors_or_filters_it():
    mask = np.zeros((16, 16), bool)
    mask[4:12, 4:12] = True
    mask[0, 8] = mask[8, 15] = True  # orphans on the border
    mask[14, 2] = True  # an orphan inside
    kept = orphan_filter(mask, 3, 0.5, OrphanBorder.keep)
    reflected = orphan_filter(mask, 3, 0.5, OrphanBorder.reflect)
    assert kept[0, 8] and kept[8, 15] and not kept[14, 2]  # the 1-pixel border keeps its thresholded values
    assert not reflected[0, 8] and not reflected[8, 15] and not reflected[14, 2]
    assert np.array_equal(kept[1:-1, 1:-1], reflected[1:-1, 1:-1])  # the same filter inside


def test_ddim_grid_of_the_preliminary_masks():
    steps = ddim_timesteps(50, 40)
    assert len(steps) == 40 and steps[:3] == [781, 761, 741] and steps[-1] == 1


def test_prompt_token_positions(tiny_prior):
    tokenizer = tiny_prior.tokenizer  # byte-level: one token per character
    text, positions = prompt_tokens(tokenizer, "a photo of a {}", "dog")
    ids = tokenizer(text).input_ids
    assert text == "a photo of a dog" and positions == [10, 11, 12]
    assert ids[10:13] == tokenizer("dog", add_special_tokens=False).input_ids
    with pytest.raises(DataError, match="77"):
        prompt_tokens(tokenizer, "{}", "a very long referring expression " * 3)
