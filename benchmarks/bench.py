"""``make bench`` (``python -m benchmarks.bench``): throughput of the original's loop vs the batched engine.

For each workload (the toy world at 32 px; tiny_sd encoding at 64 and at 128 px, the mask at half that size as
the original's 256 -> 512), with the paper's main parametrization (RGB bilateral):

(a) the original's structure, one item at a time with one SDS call per background sample
    (``PeekabooModule.optimize_one_at_a_time``: tested to equal the engine at batch 1);
(b) the batched engine (``PeekabooModule.optimize_batch``) at several batch sizes.

Each row is the median wall time of one iteration after warm-up iterations (the fastest of ``--repeats``
runs, since other processes only ever slow a run down; a workload's rows take turns), the peak memory
while the row ran (CPU: the process's resident high-water mark, reset per run through
``/proc/self/clear_refs``; CUDA: ``max_memory_allocated``), and ``x baseline``: per-item throughput
relative to the workload's first row, (a). Extra rows: the cost knobs on the largest tiny_sd workload,
our bilateral operator against ``kornia``'s joint bilateral blur (40 applications, forward and
backward), and SD1.5's largest self-attention layer (4096 tokens, 8 heads of 40, cond + uncond) through
SDPA in fp32 and bf16 and, on a CPU, our blocked bf16 attention. ``--full`` adds one full-size SD1.5 step
(VAE encode with gradient at 512, one batched cond/uncond UNet call on 64x64 latents, backward into the
composite) built from the SD1.5 configs with random weights, in fp32 and in bf16 + channels_last;
``img/h`` is images per hour at the paper's 300 iterations.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from peekaboo.cpu_memory import freed_memory_kept, keep_freed_memory, release_freed_memory

PAPER_ITERATIONS = 300
LOOP = "one-item loop"


@dataclass
class Row:
    workload: str
    mode: str  # LOOP (the baseline of its workload), "engine", or another named way of doing the same work
    batch: int  # items processed per iteration
    seconds: float  # median wall time of one iteration (all items of the batch)
    peak_mib: float  # peak memory while the row ran
    added_mib: float  # peak minus the memory in use when the row started
    segmentation: bool = True  # one iteration is one Peekaboo step (False: a component, no images per hour)

    @property
    def per_item(self) -> float:
        return self.seconds / self.batch

    @property
    def images_per_hour(self) -> float | None:
        return 3600.0 / (self.per_item * PAPER_ITERATIONS) if self.segmentation else None


def speedups(rows: list[Row]) -> list[float]:
    """Per-item throughput of each row relative to its workload's baseline (its first row)."""
    baselines: dict[str, Row] = {}
    for row in rows:
        baselines.setdefault(row.workload, row)
    return [baselines[row.workload].per_item / row.per_item for row in rows]


def format_table(rows: list[Row]) -> str:
    header = "| workload | mode | batch | ms/iter | ms/item-iter | x baseline | peak MiB | +MiB | img/h@300 |"
    lines = [header, "|" + "---|" * header.count(" | ") + "---|"]
    for row, ratio in zip(rows, speedups(rows), strict=True):
        lines.append(
            f"| {row.workload} | {row.mode} | {row.batch} | {row.seconds * 1e3:.1f} | {row.per_item * 1e3:.1f} | "
            f"{ratio:.2f} | {row.peak_mib:.0f} | {row.added_mib:.0f} | "
            + ("-" if row.images_per_hour is None else f"{row.images_per_hour:.1f}")
            + " |"
        )
    return "\n".join(lines)


class PeakMemory:
    """Peak memory of one measured row: CUDA allocator statistics, or the process's RSS high-water mark."""

    def __init__(self, device: torch.device):
        self.device = device
        self.start_mib = 0.0

    @staticmethod
    def _status(field: str) -> float:
        match = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.MULTILINE)
        return int(match.group(1)) / 1024 if match else float("nan")

    def reset(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.start_mib = torch.cuda.memory_allocated(self.device) / 2**20
            return
        release_freed_memory()  # else memory kept from an earlier row counts towards this one's peak
        with contextlib.suppress(OSError):
            Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS (Linux)
        self.start_mib = self._status("VmRSS") if Path("/proc/self/status").exists() else float("nan")

    def peak(self) -> float:
        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated(self.device) / 2**20
        return self._status("VmHWM") if Path("/proc/self/status").exists() else float("nan")


class Clock:
    """Timestamps at the end of each iteration (synchronising a GPU first); median after warm-up."""

    def __init__(self, device: torch.device, warmup: int):
        self.device, self.warmup, self.stamps = device, warmup, []

    def tick(self, *_: int) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.stamps.append(time.perf_counter())

    def median(self) -> float:
        """Median duration of the iterations after the first ``warmup`` >= 1 (stamps mark their ends)."""
        ends = self.stamps[self.warmup - 1 :]
        return statistics.median(b - a for a, b in zip(ends, ends[1:], strict=False))


@dataclass
class Case:
    """One row to measure: ``run(tick)`` does warm-up + measured iterations and calls ``tick`` after each."""

    workload: str
    mode: str
    batch: int
    run: Callable
    segmentation: bool = True


def measure(cases: list[Case], device: torch.device, warmup: int, repeats: int = 1) -> list[Row]:
    """One row per case: ``repeats`` runs of each, the fastest median kept (other processes only ever slow a run
    down) and the highest peak memory. The cases take turns, so a slow phase of a shared machine slows one run
    of every row of the comparison instead of all runs of one row, and the ratios stay put."""
    seconds = [float("inf")] * len(cases)
    peak, added = [0.0] * len(cases), [0.0] * len(cases)
    for _ in range(repeats):
        for i, case in enumerate(cases):
            memory, clock = PeakMemory(device), Clock(device, warmup)
            memory.reset()
            case.run(clock.tick)
            run_peak = memory.peak()
            seconds[i], peak[i] = min(seconds[i], clock.median()), max(peak[i], run_peak)
            added[i] = max(added[i], run_peak - memory.start_mib)
    return [
        Row(c.workload, c.mode, c.batch, seconds[i], peak[i], added[i], c.segmentation) for i, c in enumerate(cases)
    ]


# label -> overrides; the mask is at half the encoding resolution, as the original's 256 -> 512
WORKLOADS = {
    "toy": ("toy world 32px", ["model=toy", "data=toy", "data.size=32"]),
    "tiny_sd64": ("tiny_sd 64px (mask 32)", ["model=tiny_sd", "model.resolution=64", "data=toy", "data.size=32"]),
    "tiny_sd128": ("tiny_sd 128px (mask 64)", ["model=tiny_sd", "model.resolution=128", "data=toy", "data.size=64"]),
}
# cost knobs, measured on the largest tiny_sd workload at the largest batch
KNOBS = {
    "engine, latent compositing": ["loss.sds.composite=latent"],
    "engine, bf16 + channels_last": ["model.dtype=bf16", "model.channels_last=true"],
}


def module_for(overrides: list[str], iterations: int | None, device: torch.device, batch: int):
    """A prepared module (RGB bilateral, no timelapse) and ``batch`` items; ``iterations`` None keeps the preset's."""
    from peekaboo.config.build import build
    from peekaboo.config.compose import compose
    from peekaboo.lightning.module import PeekabooModule

    steps = [] if iterations is None else [f"schedule.iterations={iterations}"]
    cfg = compose([*overrides, "param=raster_bilateral", *steps, "schedule.timelapse_every=0"])
    module = PeekabooModule(cfg)
    module.prepare(device)
    dataset = build(cfg.data)
    return module, [dataset[i] for i in range(batch)]


def engine_rows(args, device: torch.device) -> list[Row]:
    rows = []
    steps = args.warmup + args.iterations

    def loop(module, items):
        return lambda tick: module.optimize_one_at_a_time(items, tick)

    def engine(module, items):
        return lambda tick: module.optimize_batch(items, tick)

    for key in args.workloads:
        label, overrides = WORKLOADS[key]
        module, items = module_for(overrides, steps, device, max(args.batches))
        cases = [Case(label, LOOP, 1, loop(module, items[:1]))]
        cases += [Case(label, "engine", batch, engine(module, items[:batch])) for batch in args.batches]
        if key == args.workloads[-1] and key.startswith("tiny_sd"):
            batch = max(args.batches)
            for mode, knob in KNOBS.items():
                module, items = module_for([*overrides, *knob], steps, device, batch)
                cases.append(Case(label, mode, batch, engine(module, items)))
        rows += measure(cases, device, args.warmup, args.repeats)
    return rows


def bilateral_rows(args, device: torch.device, iterations: int = 40, measured: int = 2) -> list[Row]:
    """Our precomputed operator vs kornia's joint bilateral blur, ``iterations`` applications, forward + backward.

    One warm-up and ``measured`` timed passes, one run: the difference is large and kornia is slow at 256 px."""
    from kornia.filters import joint_bilateral_blur

    from peekaboo.params.bilateral import BilateralOperator, bilateral_weights

    size = args.bilateral_size
    label = f"bilateral {size}px x{iterations} fwd+bwd"
    rows = []
    for batch in (1, max(args.batches)):
        guide = torch.rand(batch, 3, size, size, device=device)
        operator = BilateralOperator(bilateral_weights(guide), iterations)  # once per image, outside the loop

        def ours(tick, guide=guide, operator=operator):
            for _ in range(1 + measured):
                x = torch.randn(guide.shape[0], 1, size, size, device=device, requires_grad=True)
                operator(x).sum().backward()
                tick()

        def theirs(tick, guide=guide):
            for _ in range(1 + measured):
                x = torch.randn(guide.shape[0], 1, size, size, device=device, requires_grad=True)
                y = x
                for _ in range(iterations):
                    y = joint_bilateral_blur(y, guide, 3, 0.08, (5.0, 5.0), "constant", "l2")
                y.sum().backward()
                tick()

        cases = [
            Case(label, "kornia joint_bilateral_blur", batch, theirs, segmentation=False),
            Case(label, "ours (weights once, transposed backward)", batch, ours, segmentation=False),
        ]
        rows += measure(cases, device, warmup=1)
    return rows


ATTENTION_SHAPE = (2, 8, 4096, 40)  # SD1.5's largest self-attention: cond + uncond, 8 heads of 40, 64x64 tokens


def attention_rows(args, device: torch.device, measured: int = 3) -> list[Row]:
    """SD1.5's largest self-attention layer (inference): SDPA in fp32 and bf16, and on a CPU our blocked bf16."""
    from peekaboo.priors.cpu_attention import attend_in_blocks

    _, heads, tokens, dim = ATTENTION_SHAPE
    label = f"attention {tokens} tokens, {heads}x{dim} heads, cond+uncond"
    generator = torch.Generator(device).manual_seed(0)
    q, k, v = (torch.randn(ATTENTION_SHAPE, device=device, generator=generator) for _ in range(3))

    def timed(attend, dtype):
        inputs = [t.to(dtype) for t in (q, k, v)]

        def run(tick):
            with torch.no_grad():
                for _ in range(1 + measured):
                    attend(*inputs)
                    tick()

        return run

    def blocked(q, k, v):
        return attend_in_blocks(q, k, v, dim**-0.5)

    sdpa = torch.nn.functional.scaled_dot_product_attention
    cases = [
        Case(label, "SDPA fp32", 1, timed(sdpa, torch.float32), segmentation=False),
        Case(label, "SDPA bf16", 1, timed(sdpa, torch.bfloat16), segmentation=False),
    ]
    if device.type == "cpu":
        ours = timed(blocked, torch.bfloat16)
        cases.append(Case(label, "blocked bf16 (model.attention=auto)", 1, ours, segmentation=False))
    return measure(cases, device, warmup=1, repeats=args.repeats)


SD15_UNET = dict(
    sample_size=64,
    in_channels=4,
    out_channels=4,
    layers_per_block=2,
    block_out_channels=(320, 640, 1280, 1280),
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    cross_attention_dim=768,
    attention_head_dim=8,
    norm_num_groups=32,
    flip_sin_to_cos=True,
    freq_shift=0,
    downsample_padding=1,
    act_fn="silu",
)
SD15_VAE = dict(
    in_channels=3,
    out_channels=3,
    latent_channels=4,
    layers_per_block=2,
    block_out_channels=(128, 256, 512, 512),
    down_block_types=("DownEncoderBlock2D",) * 4,
    up_block_types=("UpDecoderBlock2D",) * 4,
    norm_num_groups=32,
    act_fn="silu",
    sample_size=512,
    scaling_factor=0.18215,
)
SD15_RESOLUTION, SD15_TOKENS = 512, 77  # encoded size (the mask is at half, as the original) and prompt length


def full_rows(args, device: torch.device) -> list[Row]:
    """One SDS step of full-size SD1.5 (random weights): fp32, then bf16 + channels_last, then the cost knobs."""
    from diffusers import AutoencoderKL, UNet2DConditionModel

    from peekaboo.engine.random import UnitRandom
    from peekaboo.engine.scene import Layers
    from peekaboo.guidance.sds import ScoreDistillation
    from peekaboo.priors.noise_schedule import scaled_linear_alphas_cumprod
    from peekaboo.priors.stable_diffusion import StableDiffusionPrior

    torch.manual_seed(0)
    unet, vae = UNet2DConditionModel(**SD15_UNET), AutoencoderKL(**SD15_VAE)
    batches = [1] if device.type == "cpu" else sorted({1, *args.batches})
    rows = []
    size, width = SD15_RESOLUTION // 2, SD15_UNET["cross_attention_dim"]
    settings = [  # (mode, dtype, channels_last, SDS cost knobs); casting is in place, so fp32 comes first
        ("fp32", "fp32", False, {}),
        ("bf16 + channels_last", "bf16", True, {}),
        (f"bf16, loss.sds.resolution={size}", "bf16", True, {"resolution": size}),
        ("bf16, loss.sds.composite=latent", "bf16", True, {"composite": "latent", "colour_lattice": 2}),
    ]
    print(format_table([]), flush=True)  # the rows follow as they are measured (minutes each on a CPU)
    for mode, dtype, channels_last, knobs in settings:
        prior = StableDiffusionPrior.from_modules(
            unet,
            vae,
            scaled_linear_alphas_cumprod(),
            dtype=dtype,
            channels_last=channels_last,
            resolution=SD15_RESOLUTION,
            device=device,
        )
        sds = ScoreDistillation(prior, guidance_scale=100.0, **knobs)
        if sds.compositor is not None:  # the one-time colour lookup, built before timing and memory are taken
            sds.compositor.colour_latents(torch.rand(1, 3, device=device))
        for batch in batches:
            rng = UnitRandom(range(batch), device)
            image = torch.rand(batch, 3, size, size, device=device)
            cond = torch.randn(batch, SD15_TOKENS, width, device=device)
            uncond = torch.randn(1, SD15_TOKENS, width, device=device)
            logits = torch.zeros(batch, 1, size, size, device=device, requires_grad=True)

            def step(tick, sds=sds, image=image, cond=cond, uncond=uncond, logits=logits, rng=rng, counts=[1] * batch):
                for iteration in range(args.full_warmup + args.full_iterations):
                    alpha = torch.sigmoid(logits)
                    colour = rng.rand(counts, 3)
                    composite = alpha * image + (1 - alpha) * colour[:, :, None, None]
                    out = sds(composite, cond, uncond, rng, counts, iteration, Layers(image, alpha, colour))
                    out.loss.sum().backward()
                    tick()

            rows += measure([Case(f"SD1.5 {SD15_RESOLUTION}px SDS step", mode, batch, step)], device, args.full_warmup)
            print(format_table(rows).splitlines()[-1], flush=True)
    return rows


STOPPING_PARAMS = ("raster_bilateral", "fourier_bilateral")
CURVE_EVERY = 25  # the mIoU-vs-iterations curve: masks at iterations 25, 50, ...
FIXED, CONVERGED = "fixed schedule", "converged + continuous"


@dataclass
class StoppingRow:
    """One way of segmenting the same toy scenes: its wall time for all of them and their mIoU."""

    workload: str
    mode: str  # FIXED (the baseline of its workload) or CONVERGED
    batch: int  # items per fixed batch, or slots of the continuous batch
    scenes: int
    seconds: float  # wall time for every scene (scenes and prompts built, no files written)
    mean_iterations: float  # optimisation steps per scene
    mIoU: float  # noqa: N815 (the metric's name in metrics.json)
    curve: dict[int, float] | None = None  # mIoU after each CURVE_EVERY iterations (the fixed row only)

    @property
    def images_per_hour(self) -> float:
        return 3600.0 * self.scenes / self.seconds


def stopping_module(model: str, param: str, scenes: int, device: torch.device, extra: list[str]):
    """The default recipe of ``model`` and ``param`` on ``scenes`` toy scenes (no timelapse), and the scenes."""
    from peekaboo.config.build import build
    from peekaboo.config.compose import compose
    from peekaboo.lightning.module import PeekabooModule

    cfg = compose(
        [
            f"model={model}",
            "data=toy",
            f"data.num_scenes={scenes}",
            f"param={param}",
            "schedule.timelapse_every=0",
            *extra,
        ]
    )
    module = PeekabooModule(cfg)
    module.prepare(device)
    dataset = build(cfg.data)
    return module, [dataset[i] for i in range(scenes)]


def miou(module, items, alphas: list[torch.Tensor]) -> float:
    """Mean IoU at the task's threshold of one (..., H, W) mask per item against its ground truth."""
    from peekaboo.evaluation.metrics import score_alpha

    threshold = module._state["task"].threshold
    masks = [a.reshape(a.shape[-2:]).numpy() for a in alphas]
    return statistics.fmean(
        score_alpha(a, item.mask, (threshold,))["iou"][0] for a, item in zip(masks, items, strict=True)
    )


def stopping_rows(args, device: torch.device) -> list[StoppingRow]:
    """Per model and parametrization: the recipe's fixed schedule in batches of ``--stopping-batch`` against
    ``schedule.stop=converged`` with continuous batching in as many slots, on the same scenes; and the curve of
    mIoU against iterations (one run of ``--curve-iterations`` fixed iterations, a mask every CURVE_EVERY)."""
    rows = []
    batch, scenes = args.stopping_batch, args.stopping_scenes
    for model in args.stopping_models:
        for param in args.stopping_params:
            label = f"{model} {param} ({scenes} scenes)"
            steps = [] if args.stopping_iterations is None else [f"schedule.iterations={args.stopping_iterations}"]
            module, items = stopping_module(model, param, scenes, device, steps)
            chunks = [items[i : i + batch] for i in range(0, scenes, batch)]
            start = time.perf_counter()
            fixed = [module.optimize_batch(chunk)[1].outputs["alpha"] for chunk in chunks]
            seconds = time.perf_counter() - start
            fixed_alphas = [a for chunk in fixed for a in chunk]
            iterations = module.cfg.schedule.iterations
            curve_module, _ = stopping_module(
                model,
                param,
                scenes,
                device,
                [f"schedule.iterations={args.curve_iterations}", f"schedule.timelapse_every={CURVE_EVERY}"],
            )
            frames = [f for chunk in chunks for f in curve_module.optimize_batch(chunk)[1].frames["alpha"].unbind(1)]
            taken = [*range(0, args.curve_iterations, CURVE_EVERY), args.curve_iterations]
            curve = {n: miou(module, items, [f[k] for f in frames]) for k, n in enumerate(taken) if n}
            rows.append(
                StoppingRow(label, FIXED, batch, scenes, seconds, iterations, miou(module, items, fixed_alphas), curve)
            )
            module, items = stopping_module(model, param, scenes, device, [*steps, "schedule.stop=converged"])
            start = time.perf_counter()
            finished = module.optimize_stream(items, slots=batch)
            seconds = time.perf_counter() - start
            by_id = {item.item_id: result for item, _, result in finished}
            results = [by_id[item.item_id] for item in items]
            mean_iterations = statistics.fmean(r.unit_iterations[0] for r in results)
            alphas = [r.outputs["alpha"] for r in results]
            rows.append(
                StoppingRow(label, CONVERGED, batch, scenes, seconds, mean_iterations, miou(module, items, alphas))
            )
            print(format_stopping(rows[-2:]).splitlines()[-1], flush=True)
    return rows


def stopping_ratios(rows: list[StoppingRow]) -> list[float]:
    """Images per hour of each row relative to its workload's fixed schedule."""
    baselines = {row.workload: row for row in rows if row.mode == FIXED}
    return [row.images_per_hour / baselines[row.workload].images_per_hour for row in rows]


def format_stopping(rows: list[StoppingRow]) -> str:
    header = (
        "| workload | mode | batch | s (all scenes) | iterations/scene | img/h | x baseline | mIoU | mIoU - fixed |"
    )
    lines = [header, "|" + "---|" * header.count(" | ") + "---|"]
    fixed = {row.workload: row.mIoU for row in rows if row.mode == FIXED}
    for row, ratio in zip(rows, stopping_ratios(rows), strict=True):
        lines.append(
            f"| {row.workload} | {row.mode} | {row.batch} | {row.seconds:.1f} | {row.mean_iterations:.0f} | "
            f"{row.images_per_hour:.0f} | {ratio:.2f} | {row.mIoU:.3f} | {row.mIoU - fixed[row.workload]:+.3f} |"
        )
    return "\n".join(lines)


def format_curves(rows: list[StoppingRow]) -> str:
    """mIoU after 25, 50, ... fixed iterations, one line per workload."""
    curves = [row for row in rows if row.curve]
    if not curves:
        return ""
    steps = list(curves[0].curve)
    lines = ["| workload | " + " | ".join(str(n) for n in steps) + " |", "|---|" + "---|" * len(steps)]
    lines += [f"| {row.workload} | " + " | ".join(f"{row.curve[n]:.3f}" for n in steps) + " |" for row in curves]
    return "\n".join(lines)


def toy_scene_seconds(device: torch.device) -> tuple[float, int]:
    """Wall time of one toy scene with the toy preset's iteration count, artifacts included."""
    module, items = module_for(["model=toy", "data=toy", "data.size=32"], None, device, 1)
    start = time.perf_counter()
    module.predict_step(items, 0)
    return time.perf_counter() - start, module.cfg.schedule.iterations


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="also time one full-size SD1.5 step (random weights)")
    parser.add_argument("--batches", default="1,4,8", help="engine batch sizes (default 1,4,8)")
    parser.add_argument("--workloads", default=",".join(WORKLOADS), help=f"among {', '.join(WORKLOADS)}")
    parser.add_argument("--iterations", type=int, default=5, help="measured iterations per row")
    parser.add_argument("--warmup", type=int, default=2, help="iterations excluded from the timing")
    parser.add_argument("--repeats", type=int, default=3, help="runs per row; the fastest median is reported")
    parser.add_argument("--full-iterations", type=int, default=3, help="measured SD1.5 steps per row")
    parser.add_argument(
        "--full-warmup",
        type=int,
        default=3,
        help="SD1.5 steps excluded from the timing: after the row before, the allocator takes about three steps "
        "to stop faulting pages in (docs/performance.md)",
    )
    parser.add_argument("--no-bilateral", dest="bilateral", action="store_false")
    parser.add_argument("--bilateral-size", type=int, default=256, help="mask size of the bilateral rows (256)")
    parser.add_argument("--no-attention", dest="attention", action="store_false", help="skip the attention rows")
    parser.add_argument("--no-scene", dest="scene", action="store_false", help="skip the toy scene timing")
    parser.add_argument(
        "--stopping-models",
        default="toy,toy_sd",
        help="models of the convergence-stopping rows ('' skips them; default toy,toy_sd: the analytic and the "
        "trained toy prior)",
    )
    parser.add_argument(
        "--stopping-params",
        default=",".join(STOPPING_PARAMS),
        help=f"parametrizations of the stopping rows (default {','.join(STOPPING_PARAMS)})",
    )
    parser.add_argument("--stopping-scenes", type=int, default=16, help="toy scenes of the stopping rows (16)")
    parser.add_argument("--stopping-batch", type=int, default=8, help="batch size / slots of the stopping rows (8)")
    parser.add_argument(
        "--stopping-iterations", type=int, help="schedule.iterations of the stopping rows (default: the recipe's)"
    )
    parser.add_argument("--curve-iterations", type=int, default=300, help="length of the mIoU-vs-iterations curve")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    args = parser.parse_args(argv)
    args.batches = [int(b) for b in args.batches.split(",")]
    args.workloads = [w for w in args.workloads.split(",") if w]  # "" skips them (e.g. --full alone)
    args.stopping_models = [m for m in args.stopping_models.split(",") if m]
    args.stopping_params = [p for p in args.stopping_params.split(",") if p]
    unknown = [w for w in args.workloads if w not in WORKLOADS]
    if unknown:
        parser.error(f"unknown workloads {unknown}; choose among {', '.join(WORKLOADS)}")
    if min(args.warmup, args.iterations, args.repeats, args.full_warmup, args.full_iterations, args.stopping_batch) < 1:
        parser.error("warm-up and measured iteration counts and repeats must be >= 1")
    return args


def main(argv: list[str] | None = None) -> list[Row]:
    from peekaboo.pipeline import quiet_libraries

    args = parse(argv)
    quiet_libraries()
    device = torch.device(args.device)
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:  # set by keep_freed_memory() below unless opted out (see peekaboo/cpu_memory.py)
        memory = "kept for reuse" if freed_memory_kept() else "returned to the OS"
        name = f"{os.cpu_count()} CPU cores, freed memory {memory}"
    load = Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").exists() else "?"
    print(
        f"device: {device} ({name}), torch {torch.__version__}, {torch.get_num_threads()} threads, load average "
        f"{load} (timings are noisy while other processes run); {args.warmup} warm-up + {args.iterations} "
        f"measured iterations per run, median, best of {args.repeats} runs"
        + (f"; SD1.5 steps: {args.full_warmup} warm-up + {args.full_iterations} measured, median" if args.full else ""),
        flush=True,
    )
    rows = engine_rows(args, device)
    if args.bilateral:
        rows += bilateral_rows(args, device)
    if args.attention:
        rows += attention_rows(args, device)
    if rows:
        print(format_table(rows), flush=True)
    toy = [r for r in rows if r.workload == WORKLOADS["toy"][0] and r.mode == "engine" and r.batch == 1]
    if toy:
        print(f"toy world, one mask, one background, 32x32: {toy[0].seconds * 1e3:.1f} ms/iteration (target <= 20)")
    if args.scene:
        seconds, iterations = toy_scene_seconds(device)
        print(
            f"toy world, one scene ({iterations} iterations, set-up and files included): {seconds:.2f} s (target <= 10)"
        )
    if args.full:
        full = full_rows(args, device)
        fp32, bf16 = full[0], next(r for r in full if r.mode == "bf16 + channels_last" and r.batch == 1)
        print(f"full SD1.5 step: bf16 + channels_last / fp32 = {bf16.seconds / fp32.seconds:.2f} (target <= 0.45)")
        if device.type == "cuda":
            best = max((r for r in full if r.mode == "bf16 + channels_last"), key=lambda r: r.images_per_hour)
            print(
                f"images per hour at {PAPER_ITERATIONS} iterations: batch 1 {bf16.images_per_hour:.0f}, "
                f"batch {best.batch} {best.images_per_hour:.0f}"
            )
        rows += full
    stopping = stopping_rows(args, device) if args.stopping_models else []
    if stopping:
        print(format_stopping(stopping), flush=True)
        print(f"mIoU after n fixed iterations (the curve behind schedule.converged):\n{format_curves(stopping)}")
    if args.json:
        records = [{**asdict(row), "x_baseline": x} for row, x in zip(rows, speedups(rows), strict=True)]
        records += [
            {**asdict(row), "images_per_hour": row.images_per_hour, "x_baseline": x}
            for row, x in zip(stopping, stopping_ratios(stopping), strict=True)
        ]
        args.json.write_text(json.dumps(records, indent=1))
    return rows


if __name__ == "__main__":
    from peekaboo.errors import PeekabooError

    keep_freed_memory()  # as run.py does: the rows measure the allocator a real run uses
    try:
        main()
    except PeekabooError as err:
        sys.exit(f"error: {err}")
