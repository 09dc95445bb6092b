"""No host-device synchronisation inside the optimisation loop, checked without a GPU.

``torch.cuda.set_sync_debug_mode`` needs CUDA, so instead every torch call made during iterations 1..N-1 (the
first iteration may build caches) goes through a ``TorchFunctionMode`` that records the calls which force a
device -> host sync or a host -> device copy on a GPU: reading values (``item``, ``tolist``, ``bool``/``float``/
``int`` of a tensor, i.e. Python branches on tensor values), moving to the CPU, data-dependent shapes
(``nonzero``, boolean-mask indexing, ``repeat_interleave`` with tensor repeats, ``unique``) and tensors made
from Python data (``torch.tensor``/``as_tensor``). It sees Python-level calls in our code and in diffusers
(engine, objective, SDS, latent compositing, scene, parametrizations, priors), not syncs hidden inside a
single C++ operator.
"""

import traceback

import pytest
import torch
from torch.overrides import TorchFunctionMode

from conftest import module_and_items

READS_VALUES = {"item", "tolist", "numpy", "cpu", "__bool__", "__float__", "__int__", "__index__", "__array__"}
DATA_DEPENDENT = {"nonzero", "argwhere", "masked_select", "unique", "unique_consecutive", "bincount"}
FROM_HOST = {"tensor", "as_tensor", "from_numpy"}


def _syncs(name: str, args: tuple, kwargs: dict) -> bool:
    if name in READS_VALUES | DATA_DEPENDENT | FROM_HOST:
        return True
    if name == "__getitem__":
        index = args[1] if isinstance(args[1], tuple) else (args[1],)
        return any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in index)
    if name == "repeat_interleave":
        repeats = kwargs.get("repeats", args[1] if len(args) > 1 else None)
        return isinstance(repeats, torch.Tensor)
    if name == "to":  # the tests run on the CPU: only a literal "cpu" is surely the host, not the compute device
        return any(isinstance(v, str) and v.startswith("cpu") for v in (*args[1:], *kwargs.values()))
    return False


class HostSyncSpy(TorchFunctionMode):
    def __init__(self):
        super().__init__()
        self.found: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", str(func))
        if _syncs(name, args, kwargs):
            caller = next((f for f in reversed(traceback.extract_stack()[:-1]) if "torch/" not in f.filename), None)
            self.found.append(f"{name} at {caller.filename}:{caller.lineno}" if caller else name)
        return func(*args, **kwargs)


def calls_inside_the_loop(module, items) -> list[str]:
    spy, iterations = HostSyncSpy(), module.cfg.schedule.iterations

    def on_iteration(iteration: int) -> None:
        if iteration == 0:
            spy.__enter__()
        if iteration == iterations - 1:
            spy.__exit__(None, None, None)

    module.optimize_batch(items, on_iteration=on_iteration)
    return spy.found


def test_the_spy_sees_syncs():
    spy = HostSyncSpy()
    x = torch.rand(4)
    with spy:
        if x.sum() > 1:
            pass
        x[x > 0.5].sum().item()
        torch.repeat_interleave(torch.arange(2), torch.tensor([1, 2]))
        x.to("cpu")
        x * 2  # fine
    assert [f.split(" ")[0] for f in spy.found] == [
        "__bool__",
        "__getitem__",
        "item",
        "tensor",
        "repeat_interleave",
        "to",
    ]


@pytest.mark.parametrize(
    "prior,param,extra",
    [
        ("toy", "raster_bilateral", ["loss.n_backgrounds=2"]),
        ("toy", "fourier_bilateral", ["loss.sds.composite=latent"]),
        ("tiny_sd", "raster_bilateral", ["loss.sds.guidance_scale=[[0,50],[2,100]]"]),
        ("tiny_sd", "fourier", ["loss.sds.composite=latent"]),
    ],
)
def test_no_host_sync_inside_the_loop(prior, param, extra, peekaboo_cache):
    module, items = module_and_items(prior, param, 2, "schedule.iterations=3", "schedule.timelapse_every=1", *extra)
    assert calls_inside_the_loop(module, items) == []
