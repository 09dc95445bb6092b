"""Resuming redoes an item whose inputs changed or whose files were damaged, and keeps every other one."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from conftest import run_cli

QUICK = ["data=folder", "data.resolution=32", "schedule.iterations=2", "trainer.enable_progress_bar=false"]


def written_at(run) -> dict[str, float]:
    """Each item's result.json modification time (it changes exactly when the item is redone)."""
    return {p.parent.name: p.stat().st_mtime_ns for p in sorted((run / "items").glob("*/result.json"))}


def make_folder(root, rows: str) -> None:
    root.mkdir(exist_ok=True)
    for name, colour in (("a", (200, 30, 30)), ("b", (30, 30, 200)), ("c", (30, 200, 30)), ("d", (200, 30, 30))):
        image = np.zeros((24, 24, 3), np.uint8)
        image[6:18, 6:18] = colour
        Image.fromarray(image).save(root / f"{name}.png")
    (root / "index.csv").write_text(rows)


def test_resume_redoes_changed_or_damaged_items_and_keeps_the_rest(tmp_path):
    root, run = tmp_path / "data", tmp_path / "run"
    rows = "image,prompt,id\na.png,red square,a\nb.png,blue square,b\nc.png,green square,c\nd.png,red square,d\n"
    make_folder(root, rows)
    args = [*QUICK, f"data.root={root}", f"hydra.run.dir={run}"]
    assert run_cli(args, tmp_path).returncode == 0
    first = written_at(run)
    record = json.loads((run / "items" / "a" / "result.json").read_text())
    assert len(record["input_digest"]) == 16 and record["file_sizes"]["mask.png"] > 0

    image = np.asarray(Image.open(root / "b.png")).copy()
    image[0, 0] = (255, 255, 255)  # one pixel of b's image changes: same name, same config
    Image.fromarray(image).save(root / "b.png")
    (root / "index.csv").write_text(rows.replace("c.png,green square", "c.png,red square"))  # c's prompt changes
    alpha = run / "items" / "d" / "alpha.npy"
    alpha.write_bytes(alpha.read_bytes()[:40])  # truncated, as by a full disk
    (run / "items" / "a" / "history.csv").unlink()
    result = run_cli(args, tmp_path)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    second = written_at(run)
    assert {k for k in first if second[k] != first[k]} == {"a", "b", "c", "d"}
    assert "item 'a' is redone: its file history.csv is missing" in result.stdout
    assert "item 'b' is redone: its inputs (image, mask, prompt or index row) changed" in result.stdout
    assert "item 'c' is redone: its inputs" in result.stdout
    assert "item 'd' is redone: its file alpha.npy is 40 bytes" in result.stdout
    assert json.loads((run / "items" / "c" / "result.json").read_text())["prompts"] == ["red square"]
    np.load(alpha)  # whole again


def test_an_unreadable_result_is_redone_without_a_traceback(tmp_path):
    root, run = tmp_path / "data", tmp_path / "run"
    make_folder(root, "image,prompt,id\na.png,red square,a\nb.png,blue square,b\n")
    args = [*QUICK, f"data.root={root}", f"hydra.run.dir={run}"]
    assert run_cli(args, tmp_path).returncode == 0
    (run / "items" / "a" / "result.json").write_text("[1, 2")  # not JSON
    (run / "items" / "b" / "result.json").write_text("[1, 2]")  # JSON, but not a record
    result = run_cli(args, tmp_path)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert result.stdout.count("is redone: result.json is unreadable or incomplete") == 2
    assert json.loads((run / "metrics.json").read_text())["items"] == 2
