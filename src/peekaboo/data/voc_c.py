"""``data=voc_c``: the VOC-C crops written by ``python -m peekaboo.data.build_voc_c`` (see that module for the rule).

Items are the manifest's rows in order (ids = VOC image ids); crops are already square, so they are only
resized to the working resolution; masks keep VOC's void border (255, ignored when scoring).
"""

from __future__ import annotations

from pathlib import Path

from peekaboo.data.configs import MANIFEST, Crop, Resample
from peekaboo.data.folder import ROW_NAME, FolderDataset
from peekaboo.errors import DataError

BUILD_HINT = "build it with: python -m peekaboo.data.build_voc_c voc_root=VOCdevkit/VOC2012 out=<dir>"


class VOCCDataset(FolderDataset):
    """``renames`` ({class: prompt}) replaces the manifest's prompts by class, without rebuilding."""

    def __init__(
        self,
        root: str,
        manifest: str = MANIFEST,
        resolution: int = 256,
        renames: dict[str, str] | None = None,
        resample: Resample | str = Resample.original,
    ):
        path = Path(root).expanduser()
        if not (path / manifest).is_file():
            raise DataError(
                f"data.root: {path} has no {manifest}; it must be a VOC-C directory holding {manifest}, "
                f"images/ and masks/ ({BUILD_HINT})"
            )
        super().__init__(root, manifest, resolution, Crop.none, void=True, resample=resample)
        for row in self.rows:
            if not row.get("mask") or not row.get("class"):
                raise DataError(
                    f"{row[ROW_NAME]}: no 'mask' or 'class' column value; this is not a VOC-C manifest ({BUILD_HINT})"
                )
            row["prompt"] = (renames or {}).get(row["class"], row["prompt"])
