"""Reading attention probabilities out of a diffusers Stable Diffusion UNet (for the attention baselines).

Fused attention (SDPA) never materialises the probabilities, so ``capture_attention`` swaps a capturing processor
in on the layers that are read, and only there (module names ending ``attn1`` = self-attention, ``attn2`` =
cross-attention); every other layer keeps its fast processor. The capturing processor computes
``softmax(q k^T * scale)`` explicitly in fp32 (in head chunks, to bound memory), returns the same output as the
fused processor (to float tolerance), averages over heads with the layer's own ``attn.heads`` (SD 2.x has a
different head count per block) unless asked to keep them, and adds each call into a running mean per key (a
resolution, or a layer): nothing ever holds every head of every layer and step. The original processors are put
back on exit, also when the body raises.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from peekaboo.priors.attention_processor import ProjectedAttention

KINDS = {"attn1": "self", "attn2": "cross"}
GROUPS = ("resolution", "layer")


@dataclass(frozen=True)
class AttentionLayer:
    """One attention layer of the UNet: where it is and the square query grid it attends from."""

    name: str  # module path, e.g. "up_blocks.3.attentions.2.transformer_blocks.0.attn2"
    kind: str  # "self" or "cross"
    block: str  # "down", "mid" or "up"
    resolution: int  # side of its (square) query grid for the given latent size
    heads: int


def attention_layers(unet: torch.nn.Module, latent_size: int) -> list[AttentionLayer]:
    """Every self-/cross-attention layer of a Stable Diffusion UNet with its block and query resolution.

    Down block i works at the latent size halved i times (SD's stride-2 convolutions round up), the mid block at
    the smallest size and up block j at the size of down block ``n - 1 - j``.
    """
    unet = getattr(unet, "_orig_mod", unet)  # torch.compile wrapper
    sides = [latent_size]
    for _ in range(len(unet.down_blocks) - 1):
        sides.append((sides[-1] + 1) // 2)
    layers = []
    for key in unet.attn_processors:
        name = key.removesuffix(".processor")
        kind = KINDS.get(name.rsplit(".", 1)[-1])
        top, _, rest = name.partition(".")
        if kind is None or top not in ("down_blocks", "mid_block", "up_blocks"):
            continue
        if top == "mid_block":
            block, side = "mid", sides[-1]
        else:
            index = int(rest.split(".", 1)[0])
            block, side = ("down", sides[index]) if top == "down_blocks" else ("up", sides[len(sides) - 1 - index])
        layers.append(AttentionLayer(name, kind, block, side, int(unet.get_submodule(name).heads)))
    return layers


class AttentionStore:
    """Running means of captured maps: ``mean(key)`` averages every call added under ``key`` (layers x steps)."""

    def __init__(self, layers: list[AttentionLayer]):
        self.layers = layers
        self._sums: dict[object, torch.Tensor] = {}
        self._counts: dict[object, int] = {}

    def add(self, key: object, maps: torch.Tensor) -> None:
        total = self._sums.get(key)
        if total is None:
            self._sums[key] = maps
        elif total.shape != maps.shape:
            raise ValueError(
                f"attention maps under {key!r} changed shape from {tuple(total.shape)} to {tuple(maps.shape)}: "
                "keep the batch size fixed within one capture"
            )
        else:
            total.add_(maps)
        self._counts[key] = self._counts.get(key, 0) + 1

    def __iter__(self):
        """The keys, in the order first added."""
        return iter(list(self._sums))

    def count(self, key: object) -> int:
        return self._counts[key]

    def mean(self, key: object) -> torch.Tensor:
        return self._sums[key] / self._counts[key]


def attend(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    scale: float,
    mask: torch.Tensor | None,
    keep_heads: bool,
    max_elements: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Attention output (B, heads, N, d) and probabilities in fp32: (B, heads, N, M), or their head mean (B, N, M).

    Heads are processed in chunks of at most ``max_elements`` scores, so the fp32 probabilities of a 64x64
    self-attention layer never exist for all heads at once unless they are kept.
    """
    batch, heads, n, _ = query.shape
    m = key.shape[2]
    step = max(1, min(heads, max_elements // max(1, batch * n * m)))
    outputs, kept, total = [], [], None
    for start in range(0, heads, step):
        part = slice(start, start + step)
        scores = torch.matmul(query[:, part].float(), key[:, part].float().transpose(-1, -2)) * scale
        if mask is not None:
            scores = scores + mask[:, part].float()
        probs = scores.softmax(dim=-1)
        outputs.append(torch.matmul(probs, value[:, part].float()))
        if keep_heads:
            kept.append(probs)
        else:
            total = probs.sum(1) if total is None else total.add_(probs.sum(1))
    maps = torch.cat(kept, 1) if keep_heads else total / heads
    return torch.cat(outputs, 1), maps


class CaptureProcessor(ProjectedAttention):
    """A diffusers attention processor that computes the probabilities explicitly and records them; the layer's
    output is unchanged (``ProjectedAttention`` runs diffusers' steps around the product)."""

    def __init__(self, store: AttentionStore, layer: AttentionLayer, group: str, keep_heads: bool, max_elements: int):
        self.store, self.layer, self.keep_heads, self.max_elements = store, layer, keep_heads, max_elements
        self.key = layer.resolution if group == "resolution" else layer.name

    def attend(
        self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, scale: float, mask: torch.Tensor | None
    ) -> torch.Tensor:
        queries = query.shape[2]
        if queries != self.layer.resolution**2:
            raise RuntimeError(
                f"attention layer {self.layer.name} saw {queries} queries, expected {self.layer.resolution}^2: "
                "the latent size passed to capture_attention does not match the UNet input"
            )
        out, maps = attend(query, key, value, scale, mask, self.keep_heads, self.max_elements)
        self.store.add(self.key, maps)
        return out


@contextmanager
def capture_attention(
    unet: torch.nn.Module,
    latent_size: int,
    kind: str,
    resolutions: set[int] | None = None,
    blocks: set[str] | None = None,
    keep_heads: bool = False,
    group: str = "resolution",
    max_elements: int = 2**27,
) -> Iterator[AttentionStore]:
    """Capture the ``kind`` ("self"/"cross") attention probabilities of every UNet call inside the block.

    ``resolutions``/``blocks`` select layers (None: all). ``group="resolution"`` keys the running means by query
    resolution (mean over that resolution's layers and the calls), ``group="layer"`` by layer name. Maps are
    (B, queries, keys) head means, or (B, heads, queries, keys) with ``keep_heads`` (only per layer, since head
    counts may differ between layers). The batch size must stay fixed within one capture.
    """
    if kind not in KINDS.values():
        raise ValueError(f"kind must be 'self' or 'cross', got {kind!r}")
    if group not in GROUPS:
        raise ValueError(f"group must be one of {GROUPS}, got {group!r}")
    if keep_heads and group != "layer":
        raise ValueError("keep_heads=True needs group='layer': head counts differ between layers")
    module = getattr(unet, "_orig_mod", unet)
    layers = [
        layer
        for layer in attention_layers(module, latent_size)
        if layer.kind == kind
        and (resolutions is None or layer.resolution in resolutions)
        and (blocks is None or layer.block in blocks)
    ]
    if not layers:
        raise ValueError(f"no {kind}-attention layer at resolutions {resolutions} in blocks {blocks}")
    store = AttentionStore(layers)
    originals = {}
    try:
        for layer in layers:
            attn = module.get_submodule(layer.name)
            originals[layer.name] = attn.get_processor()
            attn.set_processor(CaptureProcessor(store, layer, group, keep_heads, max_elements))
        yield store
    finally:
        for name, processor in originals.items():
            module.get_submodule(name).set_processor(processor)
