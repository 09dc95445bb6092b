"""The depth guide: its effect on the bilateral weights, the per-image map cache, missing weights."""

import math

import pytest
import torch

from peekaboo.errors import ModelLoadError
from peekaboo.guides.depth import DepthGuide, depth_guide, normalize_depth
from peekaboo.params.bilateral import bilateral_weights

CENTRE, RIGHT = 4, 5  # offsets (dy, dx) = (0, 0) and (0, +1) in the 3x3 row-major neighbourhood


def step_scene(raw_step: float):
    """A flat grey image whose raw depth steps from 0 (columns < 8) to ``raw_step`` (columns >= 8)."""
    images = torch.full((1, 3, 16, 16), 0.5)
    depth = torch.zeros(1, 1, 16, 16)
    depth[..., 8:] = raw_step
    return images, depth


def test_depth_step_cuts_the_weights_across_it_exactly_as_the_range_kernel_says():
    images, depth = step_scene(raw_step=20 * 0.08)  # divide by 20: a guide step of exactly the tolerance 0.08
    guide = depth_guide(images, normalize_depth(depth, "divide", 20.0), rgb_scale=1.0, depth_scale=1.0)
    assert guide.shape == (1, 4, 16, 16)
    weights = bilateral_weights(guide, kernel_size=3, tolerance=0.08, sigma=5.0)
    rgb_only = bilateral_weights(images, kernel_size=3, tolerance=0.08, sigma=5.0)
    # At the last column before the step the right neighbour lies across it: its weight relative to the centre
    # drops from the spatial factor alone to spatial * exp(-0.5 * (0.08 / 0.08)^2).
    spatial = math.exp(-1 / 50)
    across = weights[0, RIGHT, 5, 7] / weights[0, CENTRE, 5, 7]
    assert float(across) == pytest.approx(spatial * math.exp(-0.5), rel=1e-5)
    assert float(rgb_only[0, RIGHT, 5, 7] / rgb_only[0, CENTRE, 5, 7]) == pytest.approx(spatial, rel=1e-5)
    # Away from the step (within one depth plane) nothing changes.
    torch.testing.assert_close(weights[..., 2:6], rgb_only[..., 2:6])
    # A larger depth_scale makes the step a wall; depth_scale = 0 is exactly the RGB guide.
    wall = bilateral_weights(depth_guide(images, normalize_depth(depth, "divide", 20.0), 1.0, 10.0))
    assert float(wall[0, RIGHT, 5, 7]) < 1e-20
    flat = bilateral_weights(depth_guide(images, normalize_depth(depth, "divide", 20.0), 1.0, 0.0))
    assert torch.equal(flat, rgb_only)


def test_minmax_normalisation_maps_each_image_to_the_unit_range():
    depth = torch.stack([torch.linspace(3, 7, 64).view(1, 8, 8), torch.full((1, 8, 8), 2.0)])
    normalised = normalize_depth(depth, "minmax")
    assert float(normalised[0].min()) == 0.0 and float(normalised[0].max()) == pytest.approx(1.0)
    assert torch.equal(normalised[1], torch.zeros(1, 8, 8))  # a constant map stays finite


def test_depth_maps_are_computed_once_per_image(peekaboo_cache, tmp_path):
    images = torch.rand(2, 3, 24, 24)
    first = DepthGuide(tiny=True, maps_dir=str(tmp_path / "maps"))
    first.setup(torch.device("cpu"))
    guide = first(images, [])
    assert guide.shape == (2, 4, 24, 24) and first.computed == 2
    assert len(list((tmp_path / "maps").glob("*.npy"))) == 2
    assert float(guide[:, 3].std()) > 0  # the tiny DPT's depth varies over the image
    # A new guide (a later run of a sweep) reads the maps; a different image is computed.
    second = DepthGuide(tiny=True, maps_dir=str(tmp_path / "maps"), depth_scale=2.0)
    second.setup(torch.device("cpu"))
    again = second(images, [])
    assert second.computed == 0
    torch.testing.assert_close(again[:, 3], 2 * guide[:, 3])
    second(torch.rand(1, 3, 24, 24), [])
    assert second.computed == 1


def test_missing_depth_weights_name_the_key_and_the_path(tmp_path):
    guide = DepthGuide(path=str(tmp_path / "no_dpt_here"))
    with pytest.raises(ModelLoadError) as err:
        guide.setup(torch.device("cpu"))
    assert "guidance_map.path" in str(err.value) and "no_dpt_here" in str(err.value)


def test_a_checkpoint_needing_timm_asks_for_the_extra(monkeypatch, tmp_path):
    import transformers

    def needs_timm(*args, **kwargs):
        raise ImportError("DPTViTHybridEmbeddings requires the timm library but it was not found in your environment")

    monkeypatch.setattr(transformers.DPTForDepthEstimation, "from_pretrained", needs_timm)
    with pytest.raises(ModelLoadError, match=r"pip install 'peekaboo\[timm\]'"):
        DepthGuide(path=str(tmp_path)).setup(torch.device("cpu"))
