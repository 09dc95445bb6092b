"""Each baseline through run.py on tiny_sd, as a user runs it, and the start-up checks of the method group."""

import csv
import json

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import compose, run_cli, write_cocostuff_layout
from experiments.tables import TABLES
from peekaboo.baselines.attn_gmm import orphan_filter
from peekaboo.cli import sweep_objective
from peekaboo.config.validate import validate
from peekaboo.data.cocostuff import COARSE_NAMES
from peekaboo.data.image import ImageDataset
from peekaboo.engine.random import UnitRandom
from peekaboo.errors import ConfigError
from peekaboo.io.images import resize_map

COMMON = ["model=tiny_sd", "trainer.enable_progress_bar=false"]


@pytest.fixture(scope="module")
def dog(dog_image):
    root = dog_image
    return [
        "data=image",
        f"data.path={root / 'dog.png'}",
        "data.prompt=dog",
        f"data.mask={root / 'dog_mask.png'}",
        "data.resolution=32",
    ]


def read_png(path):
    return np.asarray(Image.open(path))


def test_baselines_need_stable_diffusion_and_name_their_runs():
    with pytest.raises(ConfigError) as err:
        validate(compose(["method=diffseg", "model=toy"]))
    assert err.value.key == "model" and "sd14" in str(err.value) and "tiny_sd" in str(err.value)
    with pytest.raises(ConfigError) as err:
        validate(compose(["method=attn_gmm", "model=tiny_sd", "method.template=a photo"]))
    assert err.value.key == "method.template"
    assert compose(["method=daam", "model=tiny_sd"]).run_name == "tiny_sd_daam"
    assert compose([]).run_name == "toy_raster_bilateral"  # Peekaboo runs keep their names


def test_prompted_baselines_write_scored_masks_and_join_the_paper_table(dog, tmp_path, peekaboo_cache):
    """Table 2's sweep over the baseline rows (as a user compares methods): each job scored like Peekaboo, and
    both appended to table.csv beside the paper's rows."""
    args = ["experiment=table2_voc_c", "row=attn_gmm,daam", *COMMON, *dog, f"hydra.sweep.dir={tmp_path}/sweep"]
    result = run_cli(args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    for job, method, side in (("0", "attn_gmm", 8), ("1", "daam", 32)):
        check_prompted_job(tmp_path / "sweep" / job, method, side)
    with (tmp_path / "sweep" / "table.csv").open() as handle:
        table = list(csv.DictReader(handle))
    assert [row["row"] for row in table] == [row.row for row in TABLES["voc_c"].rows] + ["attn_gmm", "daam"]
    for row, job in zip(table[-2:], ("0", "1"), strict=True):
        metrics = json.loads((tmp_path / "sweep" / job / "metrics.json").read_text())
        assert row["type"] == "Baselines (not in the paper)" and row["job"] == job and row["paper mIoU"] == ""
        assert float(row["ours mIoU"]) == pytest.approx(metrics["mIoU"])
        assert float(row["ours best-thr mIoU"]) == pytest.approx(metrics["best_threshold"]["mIoU"])
    assert table[-1]["method"] == "DAAM heat map"


def test_table_rows_select_their_groups():
    clip = compose(["row=clip"])
    assert clip.loss.sds is None and clip.loss.clip.clip_coef == 500 and clip.param.name == "raster_bilateral"
    depth = compose(["row=depth_bilateral"])
    assert depth.guidance_map.name == "depth" and depth.param.name == "raster_bilateral" and depth.loss.sds
    assert compose(["row=daam", "model=tiny_sd"]).method.name == "daam"


def check_prompted_job(run, method, side):
    item = run / "items" / "dog"
    record = json.loads((item / "result.json").read_text())
    full_frame = {"alpha_full.png", "mask_full.png", "overlay_full.png"}  # the method's mask in the input's frame
    assert set(record["files"]) == {"alpha.png", "alpha.npy", "mask.png", "overlay.png", *full_frame}
    assert record["variant"]["method"] == method and record["prompts"] == ["dog"]
    alpha = np.load(item / "alpha.npy")
    mask = read_png(item / "mask.png") > 127
    assert alpha.shape == (side, side) and alpha.min() == 0.0 and alpha.max() == pytest.approx(1.0, abs=1e-4)
    if method == "daam":
        assert np.array_equal(mask, alpha > 0.4)  # its own threshold, not task.threshold
    else:  # the GMM threshold of the raw map is a level of alpha (its min-max scaling), then the orphan filter
        assert any(np.array_equal(mask, orphan_filter(alpha > level)) for level in np.unique(alpha))
    assert read_png(item / "overlay.png").shape == (48, 48, 3)  # the centre crop at native resolution
    # the IoU is that of the method's mask resized to the ground truth's crop (bilinear, > 0.5)
    gt = np.zeros((48, 48), bool)
    gt[10:38, 12:36] = True
    shown = resize_map(mask.astype(np.float32), (48, 48)) > 0.5
    assert record["iou"] == pytest.approx((shown & gt).sum() / (shown | gt).sum())
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["n"] == 1 and metrics["mIoU"] == pytest.approx(record["iou"])


def test_diffseg_on_cocostuff27_layout(tmp_path, peekaboo_cache):
    fine = np.full((40, 48), 255, np.uint8)
    fine[:, :20] = 0  # person
    fine[:, 20:] = 156  # sky
    fine[30:, :] = 123  # grass -> plant
    write_cocostuff_layout(tmp_path / "coco", ["a", "b"], fine)
    args = ["method=diffseg", "data=cocostuff27", f"data.root={tmp_path / 'coco'}", "data.resolution=64"]
    result = run_cli([*COMMON, *args, f"hydra.run.dir={tmp_path}/run"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    records = []
    for item_id in ("a", "b"):
        item = tmp_path / "run" / "items" / item_id
        record = json.loads((item / "result.json").read_text())
        assert set(record["files"]) == {"labels.png", "labels.npy", "overlay.png"}
        labels = np.load(item / "labels.npy")
        assert labels.shape == (64, 64)  # tiny_sd's 8x8 latent, upsampled x8
        assert np.array_equal(read_png(item / "labels.png"), labels)  # palette PNG: values are segment ids
        assert record["segments"] == len(np.unique(labels)) == labels.max() + 1
        assert read_png(item / "overlay.png").shape == (40, 40, 3)
        scores = record["hungarian"]
        assert scores["num_classes"] == 27 and scores["total"] == 40 * 40  # crop, no void pixels left
        present = np.zeros(27, int)  # the crop (columns 4-43): person 16 x 30, sky 24 x 30, plant 40 x 10 pixels
        for name, pixels in (("person", 480), ("sky", 720), ("plant", 400)):
            present[COARSE_NAMES.index(name)] = pixels
        assert np.add(scores["tp"], scores["fn"]).tolist() == present.tolist()
        assert 0 < scores["pixel_accuracy"] <= 1 and 0 < scores["mIoU"] <= 1
        records.append(scores)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    tp = sum(sum(r["tp"]) for r in records)
    assert metrics["hungarian_n"] == 2
    assert sweep_objective(metrics) == metrics["hungarian_mIoU"] > 0  # what run.py returns to a sweeper
    assert metrics["hungarian_pixel_accuracy"] == pytest.approx(tp / 3200)
    assert metrics["hungarian_pixel_accuracy_per_image"] == pytest.approx(
        np.mean([r["pixel_accuracy"] for r in records])
    )
    with (tmp_path / "run" / "per_item.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [r["item_id"] for r in rows] == ["a", "b"] and float(rows[0]["hungarian_mIoU"]) == pytest.approx(
        records[0]["mIoU"]
    )


def test_attention_gmm_unit_does_not_depend_on_its_batch(dog, peekaboo_cache):
    """A unit's noise follows its own seed: alone or batched with another item, the same map."""
    from peekaboo.baselines.attn_gmm import AttentionGMMModule
    from peekaboo.tasks.base import units_of

    cfg = compose([*COMMON, "method=attn_gmm", *dog, "method.steps=3", "method.steps_per_call=2"])
    module = AttentionGMMModule(cfg, {})
    module.setup("predict")
    data = ImageDataset(cfg.data.path, ["dog", "red square"], resolution=32)
    item = data[0]
    other = ImageDataset(cfg.data.path, "blue background", resolution=32, item_id="other")[0]
    other.index = 5
    alone = module.attention_maps([item], units_of([item], 0))
    batched = module.attention_maps([other, item], units_of([other, item], 0))
    assert alone.shape == (2, 8, 8) and batched.shape == (3, 8, 8)
    assert np.allclose(alone.numpy(), batched[1:].numpy(), atol=1e-5)
    assert not np.allclose(alone[0].numpy(), alone[1].numpy())  # two prompts of one item: two maps
    # the posterior sample (the authors'): the mean plus std x the first draw of the unit's own stream
    units = units_of([other, item], 0)
    posterior = module.encode_items([other, item])
    sampled = module.unit_latents([other, item], units, UnitRandom([u.seed for u in units], "cpu"))
    for n, unit in enumerate(units):
        noise = UnitRandom([unit.seed], "cpu").randn([1], *module.prior.latent_shape)
        expected = posterior.mean[unit.item] + posterior.std[unit.item] * noise[0]
        torch.testing.assert_close(sampled[n], expected, rtol=0, atol=1e-6)
    assert (sampled[0] - posterior.mean[0]).abs().max() > 1e-3  # not the mean
    module.cfg.method.posterior = "mean"
    means = module.unit_latents([other, item], units, UnitRandom([u.seed for u in units], "cpu"))
    assert torch.equal(means, posterior.mean[[u.item for u in units]])
