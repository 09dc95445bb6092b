"""``task.final_alpha``: the returned alpha is the one the last iteration scored (the original) or one more forward."""

import pytest
import torch

from conftest import compose, module_and_items
from peekaboo.tasks.configs import FinalAlpha


def run(param: str, iterations: int, final_alpha: FinalAlpha):
    module, items = module_and_items(
        "toy",
        param,
        2,
        f"schedule.iterations={iterations}",
        "schedule.timelapse_every=1",
        f"task.final_alpha={final_alpha.value}",
    )
    return module.optimize_batch(items)[1]


@pytest.mark.parametrize("param", ["raster_bilateral", "fourier"])
def test_before_last_step_is_the_alpha_of_iteration_n_minus_1_and_after_is_one_step_later(param):
    before = run(param, 3, FinalAlpha.before_last_step)
    after = run(param, 3, FinalAlpha.after_last_step)
    # snapshots are taken in each iteration's forward, before its step: iterations 0, 1, 2, then the output
    assert before.frame_iterations == after.frame_iterations == [0, 1, 2, 3]
    assert torch.equal(before.frames["alpha"][:3], after.frames["alpha"][:3])  # the same optimisation
    assert torch.equal(before.outputs["alpha"], before.frames["alpha"][2])  # the alpha scored at iteration N - 1
    assert (after.outputs["alpha"] - before.outputs["alpha"]).abs().amax() > 1e-3  # the last step moved it
    # after_last_step = the alpha that a 4th iteration would score
    longer = run(param, 4, FinalAlpha.before_last_step)
    torch.testing.assert_close(after.outputs["alpha"], longer.outputs["alpha"], rtol=0, atol=1e-6)


def test_the_original_is_the_default_and_a_typo_names_the_key():
    assert compose([]).task.final_alpha is FinalAlpha.before_last_step
    with pytest.raises(Exception, match="final_alpha"):
        compose(["task.final_alpha=last"])
