"""CLIP guidance on a tiny config-built CLIP: CLIP's own logits, gradient to alpha, sign, missing weights."""

import functools

import pytest
import torch

from peekaboo.engine.random import UnitRandom
from peekaboo.engine.scene import SegmentationScene
from peekaboo.errors import ModelLoadError
from peekaboo.guidance.clip import ClipGuidance
from peekaboo.guidance.objective import PeekabooObjective
from peekaboo.params.parametrization import Parametrization


@pytest.fixture(scope="module")
def tiny_clip(peekaboo_cache):
    return ClipGuidance(tiny=True)


def test_logit_is_clips_logits_per_image(tiny_clip):
    """At CLIP's own input size the term's logit is transformers' logits_per_image for the matching prompt."""
    images = torch.rand(2, 3, tiny_clip.size, tiny_clip.size)
    prompts = ["a dog", "a red cat"]
    ours = tiny_clip.logits(images, tiny_clip.embed(prompts))
    tokens = tiny_clip.tokenizer(prompts, padding=True, return_tensors="pt")
    with torch.no_grad():
        reference = tiny_clip.model(
            input_ids=tokens.input_ids,
            attention_mask=tokens.attention_mask,
            pixel_values=(images - tiny_clip.mean) / tiny_clip.std,
        ).logits_per_image
    torch.testing.assert_close(ours, reference.diagonal(), rtol=1e-5, atol=1e-5)
    out = tiny_clip(images, tiny_clip.embed(prompts), iteration=0)
    torch.testing.assert_close(out.loss, -500.0 * out.logit)


def test_gradient_reaches_alpha_and_descending_raises_the_logit(tiny_clip):
    """Through the objective (CLIP only, no alpha penalty): alpha gets a gradient; a small step along it raises
    every unit's logit and lowers the loss by clip_coef times as much."""
    torch.manual_seed(0)
    objective = PeekabooObjective(prior=None, lambda_alpha=0.0, clip=functools.partial(ClipGuidance, tiny=True))
    rng = UnitRandom([0, 1], "cpu")
    images = torch.rand(2, 3, 48, 48)
    alpha = Parametrization(rng.init, 1, 48, 48)
    scene = SegmentationScene(images, alpha)
    cond, shared = objective.conditioning(["a dog", "a cat"])
    sample_unit = torch.arange(2)

    def evaluate():
        composites = scene(UnitRandom([0, 1], "cpu"))  # the same backgrounds at every evaluation
        return objective(composites, cond, shared, rng, [1, 1], sample_unit, iteration=0)

    before = evaluate()
    before.total.backward()
    grads = [p.grad for u in range(2) for p in scene.unit_parameters(u)]
    assert all(g is not None and g.abs().sum() > 0 for g in grads)
    with torch.no_grad():
        for p in scene.parameters():
            p -= 2e-3 * p.grad / p.grad.abs().max()
    after = evaluate()
    gain = after.per_unit["clip_logit"] - before.per_unit["clip_logit"]
    assert torch.all(gain > 0), gain
    # Both sides are differences of float32 values (a total of ~6000, logits of ~5): allow their rounding, four
    # times two ulps of each, 0.8% of a change of ~1.4 (the larger step keeps that a tight check).
    ulp = torch.finfo(torch.float32).eps
    rounding = 2 * ulp * (float(before.total.detach().abs()) + 500.0 * float(before.per_unit["clip_logit"].abs().sum()))
    change = float((after.total - before.total).detach())
    assert change == pytest.approx(-500.0 * float(gain.sum()), abs=4 * rounding)


def test_missing_clip_weights_name_the_key_and_the_path(tmp_path):
    with pytest.raises(ModelLoadError) as err:
        ClipGuidance(path=str(tmp_path / "no_clip_here"))
    message = str(err.value)
    assert "loss.clip.path" in message and "no_clip_here" in message and "does not exist" in message
    with pytest.raises(ModelLoadError) as err:
        ClipGuidance(path="openai/clip-vit-base-patch32", local_files_only=True)
    assert "openai/clip-vit-base-patch32" in str(err.value) and "hf download" in str(err.value)
