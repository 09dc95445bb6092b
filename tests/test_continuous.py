"""Convergence stopping and continuous batching keep every unit's result its own.

A unit stopped after n steps has the mask of a fixed run of n iterations, whether it ran alone, in a fixed batch
or was refilled into a continuous batch next to units at other iterations (its schedules and draws follow its own
iteration and streams). Tolerances as tests/test_batching.py: batching changes float rounding only.
"""

import csv
import dataclasses
import io
import json

import pytest
import torch

from conftest import compose, module_and_items, run_cli
from peekaboo.config.validate import validate
from peekaboo.engine.continuous import UnitOutcome, stack_outcomes
from peekaboo.engine.stopping import ChangeMetric, ConvergenceCriterion, StopReason
from peekaboo.errors import ConfigError

# per-iteration schedules, so a unit that read its neighbours' iteration would get another result
CONVERGED = [
    "schedule.iterations=40",
    "schedule.stop=converged",
    "schedule.converged.metric=mean_abs",
    "schedule.converged.every=5",
    "schedule.converged.window=10",
    "schedule.converged.min_iterations=10",
    "schedule.converged.tolerance=0.045",
    "loss.lambda_alpha=[[0,0.1],[20,0.3]]",
    "loss.sds.min_step=[[0,0.3],[30,0.02]]",
]


def alphas(finished):
    return {item.item_id: result.outputs["alpha"] for item, _, result in finished}


@pytest.fixture(scope="module")
def converged_run():
    module, items = module_and_items("toy", "raster_bilateral", 6, *CONVERGED)
    return module, items, module.optimize_stream(items, slots=3)


def test_units_stop_at_their_own_iterations_and_the_slots_are_refilled(converged_run):
    module, items, finished = converged_run
    iterations = {item.item_id: result.unit_iterations[0] for item, _, result in finished}
    stopped = {item.item_id: result.stopped[0] for item, _, result in finished}
    assert sorted(iterations) == sorted(item.item_id for item in items)
    assert len(set(iterations.values())) >= 3  # units left at different times: slots were refilled mid-run
    assert all(n % 5 == 0 and 10 <= n <= 40 for n in iterations.values())
    assert {stopped[i] for i, n in iterations.items() if n < 40} == {"converged"}
    for _, _, result in finished:  # the history covers exactly the steps the unit ran
        assert result.history["sds"].shape == (result.unit_iterations[0], 1)
    # the first to finish is the quickest of the first three admitted
    first = [item.item_id for item in items[:3]]
    assert finished[0][0].item_id in first and iterations[finished[0][0].item_id] == min(iterations[i] for i in first)


def test_a_converged_unit_equals_its_run_alone_and_a_fixed_run_of_as_many_iterations(converged_run):
    module, items, finished = converged_run
    shared = alphas(finished)
    alone = alphas(module.optimize_stream(items, slots=1))
    for item_id in shared:
        torch.testing.assert_close(shared[item_id], alone[item_id], rtol=0, atol=1e-4)
    fixed_cfg = module.cfg.schedule.iterations
    try:
        for item, _, result in finished:
            module.cfg.schedule.iterations = result.unit_iterations[0]
            _, fixed = module.optimize_batch([item])
            torch.testing.assert_close(fixed.outputs["alpha"], shared[item.item_id], rtol=0, atol=1e-4)
        # in a fixed batch of units that all run as long as the longest
        module.cfg.schedule.iterations = 40
        longest = [item for item, _, result in finished if result.unit_iterations[0] == 40]
        _, batch = module.optimize_batch(longest + [items[0]])
        for n, item in enumerate(longest):
            torch.testing.assert_close(batch.outputs["alpha"][n : n + 1], shared[item.item_id], rtol=0, atol=1e-4)
    finally:
        module.cfg.schedule.iterations = fixed_cfg


def test_with_a_fixed_stop_the_continuous_batch_gives_todays_results():
    module, items = module_and_items("toy", "fourier_bilateral", 5, "schedule.iterations=6")
    stream = module.item_stream(slots=2)  # schedule.stop=fixed: no criterion, every unit runs 6 steps
    stream.submit(items)
    with torch.enable_grad():
        finished = stream.run(drain=True)
    _, batch = module.optimize_batch(items[:2])
    _, rest = module.optimize_batch(items[2:])
    today = torch.cat([batch.outputs["alpha"], rest.outputs["alpha"]])
    streamed = torch.cat([alphas(finished)[item.item_id] for item in items])
    torch.testing.assert_close(streamed, today, rtol=0, atol=1e-4)
    assert (today - torch.sigmoid(torch.zeros(()))).abs().amax() > 0.01  # the masks moved: not vacuous
    assert {result.stopped[0] for _, _, result in finished} == {"iterations"}


def test_change_metrics():
    now = torch.zeros(1, 4, 4)
    now[0, :2] = 0.9  # half the pixels
    then = torch.zeros(1, 4, 4)
    then[0, :1] = 0.9  # a quarter of them
    mean_abs = ConvergenceCriterion(metric=ChangeMetric.mean_abs)
    iou = ConvergenceCriterion(metric="iou", threshold=0.5)
    assert mean_abs.change(now, then).item() == pytest.approx(0.9 * 4 / 16)
    assert iou.change(now, then).item() == pytest.approx(1 - 4 / 8)
    assert iou.change(torch.zeros(1, 4, 4), torch.zeros(1, 4, 4)).item() == 0  # two empty masks agree
    criterion = ConvergenceCriterion(window=50, min_iterations=100, every=25)
    assert [criterion.due(i) for i in (25, 30, 50)] == [True, False, True]
    assert [criterion.can_stop(i) for i in (75, 100)] == [False, True]
    assert ConvergenceCriterion().metric is ChangeMetric.iou  # the default (docs/performance_stopping.md)


@pytest.mark.parametrize(
    ("overrides", "key", "message"),
    [
        (["schedule.stop=converged", "schedule.converged.window=30"], "schedule.converged.window", "multiple of"),
        (["schedule.stop=converged", "schedule.converged.threshold=1"], "schedule.converged.threshold", "between"),
        (["schedule.stop=converged", "schedule.converged.every=0"], "schedule.converged.every", ">= 1"),
        (["schedule.stop=converged", "experiment=rgba"], "schedule.stop", "task=segment"),
        (["schedule.stop=sometimes"], "schedule.stop", "sometimes"),
    ],
)
def test_bad_stopping_settings_name_the_key(overrides, key, message):
    with pytest.raises(Exception) as err:
        validate(compose(overrides))
    assert key in str(err.value) and message in str(err.value)
    if isinstance(err.value, ConfigError):
        assert err.value.key == key


def test_trainer_predict_writes_every_item_with_its_iterations_and_resumes(tmp_path):
    args = [
        "data.num_scenes=5",
        "data.size=32",
        "trainer.batch_size=2",
        "schedule.timelapse_every=10",
        "trainer.enable_progress_bar=false",
        f"hydra.run.dir={tmp_path}/run",
        *CONVERGED,
    ]
    result = run_cli(args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    items = sorted((tmp_path / "run" / "items").iterdir())
    assert len(items) == 5
    stamps = {}
    for item in items:
        record = json.loads((item / "result.json").read_text())
        entry = record["results"][0]
        assert record["status"] == "complete" and entry["stopped"] in ("converged", "iterations")
        assert 10 <= entry["iterations"] <= 40 and (entry["stopped"] == "iterations") == (entry["iterations"] == 40)
        rows = list(csv.DictReader((item / "history.csv").open()))
        assert len(rows) == entry["iterations"]
        assert record["timelapse_iterations"][-1] == entry["iterations"]
        stamps[item] = (item / "result.json").stat().st_mtime_ns
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["n"] == 5 and 0 < metrics["mIoU"] <= 1
    assert run_cli(args, cwd=tmp_path).returncode == 0  # resumed: every item complete, nothing redone
    assert all((item / "result.json").stat().st_mtime_ns == stamp for item, stamp in stamps.items())


def test_an_items_prompts_stop_on_their_own_and_keep_their_own_histories():
    module, items = module_and_items("toy", "raster_bilateral", 4, *CONVERGED)
    item = items[0]
    prompts = [item.prompts[0], item.meta["distractors"][0]["prompt"]]
    both = dataclasses.replace(item, prompts=prompts)
    (_, units, result), *_ = module.optimize_stream([both], slots=2)
    artifacts = module._state["task"].artifacts([both], units, result, {})[0]
    for k, prompt in enumerate(prompts):
        (_, _, alone), *_ = module.optimize_stream([dataclasses.replace(item, prompts=[prompt])], slots=1)
        torch.testing.assert_close(result.outputs["alpha"][k : k + 1], alone.outputs["alpha"], rtol=0, atol=1e-4)
        entry = artifacts.record["results"][k]
        assert entry["iterations"] == alone.unit_iterations[0] and entry["stopped"] == alone.stopped[0]
        rows = list(csv.DictReader(io.StringIO(artifacts.files[f"{entry['dir']}/history.csv"].decode())))
        assert len(rows) == entry["iterations"] and len(artifacts.history["sds"][k]) == entry["iterations"]


def test_stacked_units_pad_histories_with_nan_and_timelapses_with_their_last_frame():
    def outcome(key, n):
        frames = torch.arange(len(range(0, n, 2)) + 1, dtype=torch.float32).view(-1, 1, 1, 1)  # every 2nd + final
        return UnitOutcome(
            key,
            {"alpha": torch.full((1, 1, 1, 1), float(n))},
            {"sds": torch.ones(n)},
            {"alpha": frames},
            list(range(0, n, 2)) + [n],
            n,
            StopReason.converged if n < 5 else StopReason.iterations,
            float(n),
        )

    result = stack_outcomes([outcome("a", 3), outcome("b", 5)])
    assert result.unit_iterations == [3, 5] and result.stopped == ["converged", "iterations"]
    assert result.iterations == 5 and result.seconds == 8 and result.frame_iterations == [0, 2, 4, 5]
    assert result.history["sds"].shape == (5, 2) and result.history["sds"][3:, 0].isnan().all()
    assert result.frames["alpha"][:, 0].flatten().tolist() == [0, 1, 2, 2]  # the final frame held
    assert result.outputs["alpha"].flatten().tolist() == [3, 5]
