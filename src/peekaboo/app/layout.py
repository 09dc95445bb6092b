"""The demo's page: Gradio components wired to ``peekaboo.app.logic``; handlers only translate between the two."""

from __future__ import annotations

import contextlib
import html
import tempfile
import threading
import time
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
from PIL import Image

from peekaboo.app import logic

# One job at a time across both tabs: they share the cached models, and a CPU has no room for two.
CONCURRENCY_ID = "peekaboo"
# (browser session, tab) -> the running job's stop flag; Stop runs outside the queue, so it is never stuck behind it.
_STOP_FLAGS: dict[tuple[str | None, str], threading.Event] = {}
STOPPED = "stopped: press the button again to restart"
STATUS_INTERVAL = 0.25  # seconds between status-only updates; timelapse frames are always shown
EXAMPLES = ((0, "red circle"), (3, "blue square"))  # toy scenes (seed, target) offered under the upload box
# System fonts only: the page must not wait on a font server (it may be offline, as in the tests).
THEME = gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])


def build(workdir: Path) -> gr.Blocks:
    """The two-tab page; downloads and example images are written under ``workdir``."""
    examples = _write_examples(workdir / "examples")
    with gr.Blocks(title="Peekaboo", analytics_enabled=False) as demo:
        gr.Markdown(
            "# Peekaboo\nZero-shot segmentation with a text-to-image diffusion prior, no training: an alpha mask is "
            "optimised per prompt so that the masked image matches the prompt. The toy world runs in seconds on a "
            "CPU; Stable Diffusion needs its weights in a local folder (and a GPU to be quick)."
        )
        with gr.Tab("Segment"):
            _segment_tab(workdir, examples)
        with gr.Tab("Text to RGBA"):
            _rgba_tab(workdir)
    return demo


def _model_controls(prefix: str) -> tuple[gr.Radio, gr.Textbox]:
    model = gr.Radio(
        list(logic.MODEL_CHOICES),
        value="toy",
        label="Model",
        info="The toy world knows only '<colour> <shape>' prompts (red/green/blue/yellow circle/square/triangle).",
        elem_id=f"{prefix}-model",
    )
    folder = gr.Textbox(
        label="SD weights folder",
        placeholder="/path/to/stable-diffusion-v1-5 (a diffusers folder with model_index.json)",
        visible=False,
        elem_id=f"{prefix}-folder",
    )
    model.change(lambda choice: gr.Textbox(visible=choice == logic.SD_FOLDER), model, folder)
    return model, folder


def _segment_tab(workdir: Path, examples: list[list[str]]) -> None:
    with gr.Row():
        with gr.Column():
            image = gr.Image(label="Image", type="numpy", image_mode="RGB", sources=["upload", "clipboard"],
                             elem_id="seg-image")
            prompts = gr.Textbox(label="Prompts (comma- or newline-separated)", lines=2,
                                 placeholder="red circle, blue square", elem_id="seg-prompts")
            model, folder = _model_controls("seg")
            with gr.Row():
                param = gr.Dropdown(list(logic.PARAMETRIZATIONS), value="raster_bilateral", label="Parametrization",
                                    elem_id="seg-param")
                iterations = gr.Slider(1, 1000, value=100, step=1, label="Iterations", elem_id="seg-iterations")
            with gr.Row():
                run = gr.Button("Segment", variant="primary", elem_id="seg-run", scale=3)
                stop = gr.Button("Stop", elem_id="seg-stop", scale=1)
            gr.Examples(examples, inputs=[image, prompts], label="Toy-world examples")
        with gr.Column():
            status = gr.Textbox(label="Status", interactive=False, elem_id="seg-status")
            masks = gr.Image(label="Masks, one per prompt (live while optimising)", format="png", interactive=False,
                             elem_id="seg-masks")
            files = gr.File(label="Downloads: mask PNGs, RGBA cut-outs, COCO RLE", file_count="multiple",
                            interactive=False, elem_id="seg-files")

    def on_segment(
        image, prompts, model, folder, param, iterations, request: gr.Request, progress=gr.Progress()  # noqa: B008
    ):
        def show(alphas: np.ndarray) -> np.ndarray:
            return logic.preview(image, alphas)

        with _stop_flag(request, "segment") as stop_flag:
            job = logic.segment(image, prompts, model, folder, param, iterations, stop_flag)
            result = yield from _follow(job, show, progress)
        if result is None:
            return
        paths = logic.write_segmentation(result, tempfile.mkdtemp(dir=workdir))
        yield (
            f"done: {len(result.prompts)} mask(s) for {', '.join(result.prompts)} in {result.seconds:.1f} s "
            f"({result.iterations} iterations)",
            logic.spotlight(result.image, result.masks.astype(np.float32)),
            [str(path) for path in paths],
        )

    run.click(on_segment, [image, prompts, model, folder, param, iterations], [status, masks, files],
              concurrency_id=CONCURRENCY_ID)
    stop.click(_stopper("segment"), queue=False)


def _rgba_tab(workdir: Path) -> None:
    with gr.Row():
        with gr.Column():
            prompt = gr.Textbox(label="Prompt", placeholder="red circle", elem_id="rgba-prompt")
            model, folder = _model_controls("rgba")
            iterations = gr.Slider(1, 10_000, value=300, step=1, label="Iterations", elem_id="rgba-iterations",
                                   info="300 suit the toy world; SD's recipe runs thousands, on a GPU")
            with gr.Row():
                run = gr.Button("Generate", variant="primary", elem_id="rgba-run", scale=3)
                stop = gr.Button("Stop", elem_id="rgba-stop", scale=1)
        with gr.Column():
            status = gr.Textbox(label="Status", interactive=False, elem_id="rgba-status")
            output = gr.Image(label="RGBA image (alpha live while optimising)", format="png", image_mode="RGBA",
                              interactive=False, elem_id="rgba-image")
            file = gr.File(label="Download", interactive=False, elem_id="rgba-file")

    def on_generate(prompt, model, folder, iterations, request: gr.Request, progress=gr.Progress()):  # noqa: B008
        with _stop_flag(request, "rgba") as stop_flag:
            job = logic.generate_rgba(prompt, model, folder, iterations, stop_flag)
            result = yield from _follow(job, logic.alpha_preview, progress)
        if result is None:
            return
        path = logic.write_rgba(result, tempfile.mkdtemp(dir=workdir))
        yield f"done: '{result.prompt}' in {result.seconds:.1f} s", logic.enlarged(result.rgba), str(path)

    run.click(on_generate, [prompt, model, folder, iterations], [status, output, file], concurrency_id=CONCURRENCY_ID)
    stop.click(_stopper("rgba"), queue=False)


def _follow(
    job: Generator[logic.Progress, None, Any], show: Callable[[np.ndarray], np.ndarray], progress: gr.Progress
) -> Generator[tuple, None, Any]:
    """Page updates (status, image, files) while ``job`` runs; returns its result, or None after showing an error."""
    yield "starting...", gr.skip(), None
    shown = 0.0
    try:
        while True:
            step = next(job)
            if step.alphas is None and time.monotonic() - shown < STATUS_INTERVAL:
                continue  # a status line per iteration would only flood the page
            shown = time.monotonic()
            progress((step.iteration, step.total), desc="optimising", unit="iterations")
            frame = gr.skip() if step.alphas is None else show(step.alphas)
            yield f"iteration {step.iteration}/{step.total}", frame, gr.skip()
    except StopIteration as finished:
        return finished.value
    except logic.Cancelled:
        yield STOPPED, gr.skip(), gr.skip()
        return None
    except Exception as error:  # every failure becomes a message in the page, never a traceback
        message = logic.describe_error(error)
        gr.Warning(html.escape(message))  # the toast renders HTML: '<colour> <shape>' must stay text
        yield f"error: {message}", gr.skip(), gr.skip()
        return None


@contextlib.contextmanager
def _stop_flag(request: gr.Request, tab: str) -> Iterator[threading.Event]:
    """The flag that this browser session's Stop button of ``tab`` sets while a job of that tab runs."""
    key = (request.session_hash, tab)
    flag = _STOP_FLAGS[key] = threading.Event()
    try:
        yield flag
    finally:
        if _STOP_FLAGS.get(key) is flag:
            del _STOP_FLAGS[key]


def _stopper(tab: str) -> Callable[[gr.Request], None]:
    """The Stop button's handler of ``tab``: sets the flag of this session's running job, if any."""

    def stop(request: gr.Request) -> None:
        flag = _STOP_FLAGS.get((request.session_hash, tab))
        if flag is not None:
            flag.set()

    return stop


def _write_examples(directory: Path) -> list[list[str]]:
    directory.mkdir(parents=True, exist_ok=True)
    rows = []
    for seed, prompt in EXAMPLES:
        image, _ = logic.toy_example(seed, prompt)
        path = directory / f"toy_{logic.slug(prompt)}.png"
        Image.fromarray(image).save(path)
        rows.append([str(path), prompt])
    return rows
