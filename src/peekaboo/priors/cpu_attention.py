"""bf16 attention on a CPU without AMX: fp32 scores from bf16 products, one block of queries at a time.

torch's CPU flash kernel gains nothing from bf16 on CPUs with AVX512-BF16 but without AMX, and SD1.5's largest
self-attention layers are a large share of the bf16 SDS step. Explicit products are faster, but diffusers'
``AttnProcessor`` rounds the scores to bf16 before the softmax, several times flash's error.

``attend_in_blocks`` keeps the scores in fp32 and still multiplies in bf16. The bf16 inputs are upcast to fp32
(exactly) and multiplied under ``torch.backends.mkldnn.matmul.fp32_precision = "bf16"``, which runs oneDNN's
bf16 product with fp32 accumulation and fp32 output; rounding bf16 values to bf16 changes nothing, so the
scores are those of a bf16 x bf16 -> fp32 product, which torch has no other CPU kernel for. The softmax runs in
fp32 and the probabilities meet the values in the same bf16 product. Queries go through in blocks of
``budget`` scores (4 MiB of fp32), which stay in cache between the three steps: faster than flash, with flash's
accuracy (docs/performance.md). Inference only: a call that needs gradients, or has a mask, goes to SDPA.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F

from peekaboo.priors.attention_processor import ProjectedAttention

SCORE_BUDGET = 2**20  # fp32 scores per block (4 MiB): stays in cache between the three steps


def blocked_attention_pays(device: torch.device, dtype: torch.dtype) -> bool:
    """bf16 on a CPU with AVX512-BF16 and without AMX: where it was measured faster than flash.

    With AMX, torch's flash kernel uses AMX tiles and was not measured against; GPUs keep their fused kernels.
    """
    return (
        device.type == "cpu"
        and dtype == torch.bfloat16
        and torch.backends.mkldnn.is_available()
        and torch.cpu._is_avx512_bf16_supported()
        and not torch.cpu._is_amx_tile_supported()
    )


@contextmanager
def bf16_products() -> Iterator[None]:
    """fp32 matrix products run as oneDNN bf16 products (fp32 accumulation and output) inside the block."""
    matmul = torch.backends.mkldnn.matmul
    previous = matmul.fp32_precision
    matmul.fp32_precision = "bf16"
    try:
        yield
    finally:
        matmul.fp32_precision = previous


def attend_in_blocks(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, scale: float, budget: int = SCORE_BUDGET
) -> torch.Tensor:
    """``softmax(q k^T * scale) v`` for (B, heads, N|M, d) bf16 tensors, in the queries' dtype, without gradients.

    The scale multiplies the fp32 scores (scaling the bf16 queries first would round them), and the blocks
    hold ``rows`` queries of ``group`` heads, the largest that fit ``budget`` scores.
    """
    if not query.dtype == key.dtype == value.dtype == torch.bfloat16:
        raise ValueError(f"attend_in_blocks takes bf16 tensors (its products round to bf16), got {query.dtype}")
    batch, heads, n, _ = query.shape
    m = key.shape[2]
    flat = batch * heads
    q = query.to(torch.float32, memory_format=torch.contiguous_format).view(flat, n, -1)
    k_t = key.to(torch.float32, memory_format=torch.contiguous_format).view(flat, m, -1).transpose(1, 2)
    v = value.to(torch.float32, memory_format=torch.contiguous_format).view(flat, m, -1)
    out = query.new_empty(flat, n, v.shape[-1])
    rows = min(n, max(1, budget // m))
    group = max(1, budget // (rows * m))
    scores = q.new_empty(min(group, flat), rows, m)
    with bf16_products():
        for first in range(0, flat, group):
            heads_ = slice(first, first + group)
            for start in range(0, n, rows):
                q_block = q[heads_, start : start + rows]
                block = scores[: q_block.shape[0], : q_block.shape[1]]
                torch.baddbmm(block, q_block, k_t[heads_], beta=0, alpha=scale, out=block)
                out[heads_, start : start + rows] = torch.bmm(block.softmax(-1), v[heads_])
    return out.view(batch, heads, n, -1)


class BlockedAttention(ProjectedAttention):
    """diffusers attention processor for bf16 inference on a CPU (see the module docstring); falls back to SDPA
    for calls that need gradients, carry a mask, or are not bf16 on a CPU."""

    def __init__(self, budget: int = SCORE_BUDGET):
        self.budget = budget

    def attend(
        self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, scale: float, mask: torch.Tensor | None
    ) -> torch.Tensor:
        needs_grad = torch.is_grad_enabled() and (query.requires_grad or key.requires_grad or value.requires_grad)
        if needs_grad or mask is not None or query.device.type != "cpu" or query.dtype != torch.bfloat16:
            return F.scaled_dot_product_attention(query, key, value, attn_mask=mask, scale=scale)
        return attend_in_blocks(query, key, value, scale, self.budget)
