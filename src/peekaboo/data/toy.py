"""Procedural toy scenes as a dataset: ground-truth segmentation problems that need no downloads."""

from __future__ import annotations

import torch
from omegaconf import DictConfig
from torch.utils.data import Dataset

from peekaboo.config.validate import positive
from peekaboo.data.base import Item
from peekaboo.errors import DataError
from peekaboo.toy.scenes import BACKGROUNDS, make_scene, scene_seed
from peekaboo.toy.vocabulary import parse_prompt


class ToyDataset(Dataset[Item]):
    """``num_scenes`` scenes; scene i is ``make_scene(scene_seed(seed, i), ...)``, whatever the access order.

    ``prompt=None`` uses each scene's own target prompt; a given prompt fixes the target class of every
    scene instead (a bare shape fixes only its shape), so the ground-truth mask always matches the prompt.
    """

    @classmethod
    def check_config(cls, cfg: DictConfig) -> None:
        for key in ("data.size", "data.num_scenes"):
            positive(cfg, key)
        positive(cfg, "data.distractors", 0)

    def __init__(
        self,
        num_scenes: int = 16,
        size: int = 32,
        distractors: int = 1,
        background: str = "blobs",
        seed: int = 0,
        prompt: str | None = None,
    ):
        if prompt is not None:
            parse_prompt(prompt)
        if background not in BACKGROUNDS:
            raise DataError(f"unknown toy background {background!r}; expected one of {', '.join(BACKGROUNDS)}")
        self.num_scenes, self.size, self.distractors = num_scenes, size, distractors
        self.background, self.seed, self.prompt = background, seed, prompt

    @property
    def item_ids(self) -> list[str]:
        return [f"scene_{i:04d}" for i in range(self.num_scenes)]

    def __len__(self) -> int:
        return self.num_scenes

    def __getitem__(self, index: int) -> Item:
        if not 0 <= index < self.num_scenes:
            raise IndexError(f"toy scene {index} out of range [0, {self.num_scenes})")
        seed = scene_seed(self.seed, index)
        scene = make_scene(seed, self.size, self.distractors, self.background, target=self.prompt)
        image = torch.from_numpy((scene.image + 1) / 2).clamp(0, 1)
        return Item(
            index=index,
            item_id=self.item_ids[index],
            image=image,
            prompts=[self.prompt if self.prompt is not None else scene.prompt],
            mask=scene.mask,
            labels=scene.labels,
            display=None,
            meta={
                "seed": seed,
                "target": scene.target.as_dict(),
                "distractors": [d.as_dict() for d in scene.distractors],
                "background": scene.background,
            },
        )
