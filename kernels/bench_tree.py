"""Benchmark cases of the tree ops against the papers' algorithms (used by ``python -m kernels.bench``).

``cases(quick, device)`` times every op on synthetic images and returns one record per case::

    {"op", "impl", "device", "reference", "shape", "ms", "reference_ms", "speedup", "max_abs_diff"}

* ``grid_mst``: our MST (CPU Kruskal / CUDA Borůvka) vs SciPy's ``minimum_spanning_tree`` on the
  same grid graph (NumPy edge weights + CSR graph + MST: guide in, tree out, as a user would do it);
  ``max_abs_diff`` compares the total tree weights.
* ``minimax_propagation``: vs APro's algorithm written straightforwardly in C++
  (``minimax_propagation_apro_reference``: single thread, channel by channel, sort + union-find with
  lazy tags each time, as APro's heads call it once per instance); outputs compared.
* ``tree_filter`` (forward): vs TreeFilter's BFS + two-pass algorithm in plain NumPy/Python.

The reference always runs on the CPU. Times are the best of a few runs after a warm-up. Run
directly with ``python -m kernels.bench_tree [--quick] [--device cpu|cuda]``.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Callable

import torch
import torch.nn.functional as F

from kernels import tree as ops
from kernels.reference import tree as ref

ZETA = 0.05


def _image(shape: tuple[int, int, int, int], seed: int) -> torch.Tensor:
    """Smooth synthetic image (bilinear-upsampled coarse noise + fine noise), like a resized photo."""
    b, c, h, w = shape
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.rand(b, c, max(1, h // 16), max(1, w // 16), generator=gen)
    smooth = F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)
    return smooth + 0.05 * torch.rand(b, c, h, w, generator=gen)


def _best_ms(fn: Callable[[], object], reps: int, device: str) -> tuple[object, float]:
    def sync() -> None:
        if device == "cuda":
            torch.cuda.synchronize()

    start = time.perf_counter()
    result = fn()  # warm-up (and the result); its time counts only when reps == 0
    sync()
    best = time.perf_counter() - start if reps == 0 else float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - start)
    return result, best * 1e3


def _record(op: str, impl: str, device: str, reference: str, shape, ms: float, reference_ms: float,
            diff: float) -> dict:
    return {"op": op, "impl": impl, "device": device, "reference": reference, "shape": list(shape),
            "ms": round(ms, 3), "reference_ms": round(reference_ms, 3),
            "speedup": round(reference_ms / ms, 2) if ms > 0 else float("inf"), "max_abs_diff": float(diff)}


def _scipy_mst(guide: torch.Tensor) -> list[float]:
    return ref.scipy_mst_total_weight(guide)


def _tree_weight(tree: torch.Tensor, guide: torch.Tensor) -> list[float]:
    flat = guide.double().numpy().reshape(guide.shape[0], guide.shape[1], -1)
    return [float((ref.squared_distances(flat[b], tree[b].numpy()) + 1.0).sum()) for b in range(len(tree))]


def mst_cases(quick: bool, device: str) -> list[dict]:
    shapes = [(1, 3, 256, 256)] if quick else [(1, 3, 256, 256), (1, 3, 512, 512), (8, 3, 128, 128)]
    records = []
    for shape in shapes:
        guide = _image(shape, seed=1)
        tree, ms = _best_ms(lambda: ops.grid_mst(guide.to(device)), 2 if quick else 5, device)
        totals, ref_ms = _best_ms(lambda: _scipy_mst(guide), 1 if quick else 3, "cpu")
        diff = max(abs(a - b) for a, b in zip(_tree_weight(tree.cpu(), guide), totals))
        impl = "borůvka (device)" if device == "cuda" else "kruskal (radix sort, union-find)"
        records.append(_record("grid_mst", impl, device, "scipy minimum_spanning_tree", shape, ms, ref_ms, diff))
    return records


def minimax_cases(quick: bool, device: str) -> list[dict]:
    sizes = [256] if quick else [256, 512]
    records = []
    for size in sizes:
        embed = _image((1, 3, size, size), seed=2)
        tree = ops.grid_mst(embed)
        for channels in (1, 21):
            values = torch.rand(1, channels, size, size, generator=torch.Generator().manual_seed(3))
            args = (values.to(device), tree.to(device), embed.to(device))
            out, ms = _best_ms(lambda: ops.minimax_propagation(*args, ZETA), 2 if quick else 5, device)
            want, ref_ms = _best_ms(lambda: ops.minimax_propagation_apro_reference(values, tree, embed, ZETA),
                                    0 if quick else 1, "cpu")
            diff = (out.cpu().double() - want.double()).abs().max().item()
            records.append(_record("minimax_propagation", "kruskal reconstruction tree, shared by channels", device,
                                   "APro algorithm (C++, 1 thread, per channel)", values.shape, ms, ref_ms, diff))
    return records


def tree_filter_cases(quick: bool, device: str) -> list[dict]:
    shapes = [(1, 1, 128, 128), (1, 21, 128, 128)] if quick else [(1, 1, 256, 256), (1, 21, 256, 256),
                                                                   (1, 1, 512, 512)]
    records = []
    for shape in shapes:
        embed = _image((shape[0], 3, *shape[2:]), seed=4)
        tree = ops.grid_mst(embed)
        features = torch.rand(*shape, generator=torch.Generator().manual_seed(5))
        args = (features.to(device), embed.to(device), tree.to(device))
        out, ms = _best_ms(lambda: ops.tree_filter(*args), 2 if quick else 5, device)
        want, ref_ms = _best_ms(lambda: ref.tree_filter_bfs(features, embed, tree), 0, "cpu")
        diff = (out.cpu().double() - want).abs().max().item()
        records.append(_record("tree_filter", "BFS + two passes (forward)", device,
                               "TreeFilter algorithm (NumPy, Python loop)", shape, ms, ref_ms, diff))
    return records


def cases(quick: bool, device: str) -> list[dict]:
    """All tree-op benchmark records on ``device`` (``cpu`` or ``cuda``; [] for cuda without a GPU)."""
    if device == "cuda" and not torch.cuda.is_available():
        return []
    return mst_cases(quick, device) + minimax_cases(quick, device) + tree_filter_cases(quick, device)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark the tree kernels against the papers' algorithms.")
    parser.add_argument("--quick", action="store_true", help="small sizes, fewer repetitions")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--json", action="store_true", help="print the records as JSON lines")
    args = parser.parse_args(argv)
    for record in cases(args.quick, args.device):
        if args.json:
            print(json.dumps(record))
        else:
            print(f"{record['op']:<20} {str(tuple(record['shape'])):<20} {record['device']:<5} "
                  f"{record['ms']:>9.2f} ms  ref {record['reference_ms']:>9.2f} ms  x{record['speedup']:<7} "
                  f"max|diff| {record['max_abs_diff']:.1e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
