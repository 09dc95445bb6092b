"""``make bench`` smoke test with tiny sizes: the table's structure and its ratios (no timing assertions)."""

import json

import pytest

from benchmarks import bench


def test_ratios_are_per_item_throughput_relative_to_the_workload_baseline():
    rows = [
        bench.Row("w", bench.LOOP, 1, 0.10, 500, 10),
        bench.Row("w", "engine", 4, 0.20, 520, 30),
        bench.Row("v", "kornia", 8, 0.80, 900, 400, segmentation=False),
        bench.Row("v", "ours", 8, 0.20, 600, 0, segmentation=False),
    ]
    assert bench.speedups(rows) == pytest.approx([1.0, 2.0, 1.0, 4.0])
    assert rows[1].images_per_hour == pytest.approx(3600 / (0.05 * 300)) and rows[2].images_per_hour is None
    table = bench.format_table(rows).splitlines()
    assert len(table) == 2 + len(rows) and all(line.count("|") == 10 for line in table)
    assert table[3].split("|")[6].strip() == "2.00" and table[4].split("|")[-2].strip() == "-"


def test_bench_runs_end_to_end_with_tiny_sizes(monkeypatch, capsys, tmp_path, peekaboo_cache):
    # a miniature "full-size" step: the same code path as --full with networks small enough for a test
    monkeypatch.setattr(bench, "SD15_RESOLUTION", 64)
    monkeypatch.setattr(bench, "SD15_TOKENS", 8)
    monkeypatch.setitem(bench.SD15_UNET, "block_out_channels", (32, 32, 64, 64))
    monkeypatch.setitem(bench.SD15_UNET, "cross_attention_dim", 32)
    monkeypatch.setitem(bench.SD15_UNET, "norm_num_groups", 16)
    monkeypatch.setitem(bench.SD15_UNET, "layers_per_block", 1)
    monkeypatch.setitem(bench.SD15_VAE, "block_out_channels", (8, 16, 16, 16))
    monkeypatch.setitem(bench.SD15_VAE, "norm_num_groups", 8)
    monkeypatch.setitem(bench.SD15_VAE, "layers_per_block", 1)
    monkeypatch.setattr(bench, "ATTENTION_SHAPE", (2, 2, 64, 8))
    rows = bench.main(
        [
            "--workloads=toy,tiny_sd64",
            "--batches=1,2",
            "--warmup=1",
            "--iterations=1",
            "--bilateral-size=16",
            "--full",
            "--full-iterations=1",
            "--full-warmup=1",
            "--no-scene",
            "--stopping-params=raster_bilateral",
            "--stopping-scenes=3",
            "--stopping-batch=2",
            "--stopping-iterations=3",
            "--curve-iterations=25",
            f"--json={tmp_path / 'rows.json'}",
        ]
    )
    out = capsys.readouterr().out
    kinds = [(r.workload, r.mode, r.batch) for r in rows]
    for workload in ("toy world 32px", "tiny_sd 64px (mask 32)"):
        assert [k for k in kinds if k[0] == workload] == [
            (workload, bench.LOOP, 1),
            (workload, "engine", 1),
            (workload, "engine", 2),
            *([(workload, mode, 2) for mode in bench.KNOBS] if workload.startswith("tiny") else []),
        ]
    assert [r.mode for r in rows if r.workload.startswith("bilateral")] == [
        "kornia joint_bilateral_blur",
        "ours (weights once, transposed backward)",
    ] * 2
    assert [r.mode for r in rows if r.workload.startswith("attention")] == [
        "SDPA fp32",
        "SDPA bf16",
        "blocked bf16 (model.attention=auto)",
    ]
    assert [r.mode for r in rows if r.workload.startswith("SD1.5")] == [
        "fp32",
        "bf16 + channels_last",
        "bf16, loss.sds.resolution=32",
        "bf16, loss.sds.composite=latent",
    ]
    assert all(r.seconds > 0 and r.peak_mib > 0 for r in rows)
    assert "| workload | mode | batch |" in out and "toy world, one mask, one background, 32x32:" in out
    assert "bf16 + channels_last / fp32 =" in out and "CPU cores, freed memory " in out
    records = json.loads((tmp_path / "rows.json").read_text())
    assert len(records) == len(rows) + 4 and all("x_baseline" in r for r in records)
    stopping = [r["workload"] for r in records[len(rows) :]]  # by default on the analytic and the trained toy prior
    assert [w.split()[0] for w in stopping] == ["toy", "toy", "toy_sd", "toy_sd"]
    fixed, converged = records[-2:]  # the convergence-stopping rows: same scenes, fixed schedule first
    assert (fixed["mode"], converged["mode"]) == (bench.FIXED, bench.CONVERGED) and fixed["x_baseline"] == 1
    assert fixed["scenes"] == converged["scenes"] == 3 and 0 <= fixed["mIoU"] <= 1 and 0 <= converged["mIoU"] <= 1
    assert fixed["mean_iterations"] == converged["mean_iterations"] == 3  # min_iterations 50: none stops early
    assert list(fixed["curve"]) == ["25"] and converged["curve"] is None
    assert "mIoU after n fixed iterations" in out


def test_stopping_ratios_compare_images_per_hour_with_the_fixed_schedule():
    rows = [
        bench.StoppingRow("w", bench.FIXED, 8, 16, 100.0, 200, 0.90, {25: 0.5, 50: 0.9}),
        bench.StoppingRow("w", bench.CONVERGED, 8, 16, 40.0, 70, 0.895),
    ]
    assert rows[0].images_per_hour == pytest.approx(3600 * 16 / 100)
    assert bench.stopping_ratios(rows) == pytest.approx([1.0, 2.5])
    table = bench.format_stopping(rows).splitlines()
    assert table[3].split("|")[7].strip() == "2.50" and table[3].split("|")[9].strip() == "-0.005"
    assert bench.format_curves(rows).splitlines()[2] == "| w | 0.500 | 0.900 |"
