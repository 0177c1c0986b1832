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

The reference always runs on the CPU, once; the kernel's time is the median of a few runs after a
warm-up (:func:`kernels.bench.time_ms`). Usually run through ``python -m kernels.bench``; directly:
``python -m kernels.bench_tree [--quick] [--device cpu|cuda] [--json]``.
"""

from __future__ import annotations

import argparse
import json

import scipy.sparse.csgraph  # noqa: F401  (the references import it lazily: load it before they are timed)
import torch
import torch.nn.functional as F

from kernels import tree as ops
from kernels.bench import record, time_ms
from kernels.reference import tree as ref

ZETA = 0.05


def _image(shape: tuple[int, int, int, int], seed: int) -> torch.Tensor:
    """Smooth synthetic image (bilinear-upsampled coarse noise + fine noise), like a resized photo."""
    b, c, h, w = shape
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.rand(b, c, max(1, h // 16), max(1, w // 16), generator=gen)
    smooth = F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)
    return smooth + 0.05 * torch.rand(b, c, h, w, generator=gen)


def _impl(device: str, what: str) -> str:
    where = f"C++ ({torch.get_num_threads()} threads)" if device == "cpu" else "CUDA"
    return f"wsss {where}: {what}"


def _shape(name: str, shape) -> str:
    return f"{name} {'x'.join(str(int(d)) for d in shape)}"


def _scipy_mst(guide: torch.Tensor) -> list[float]:
    return ref.scipy_mst_total_weight(guide)


def _tree_weight(tree: torch.Tensor, guide: torch.Tensor) -> list[float]:
    flat = guide.double().numpy().reshape(guide.shape[0], guide.shape[1], -1)
    return [float((ref.squared_distances(flat[b], tree[b].numpy()) + 1.0).sum()) for b in range(len(tree))]


def mst_cases(quick: bool, device: str) -> list[dict]:
    shapes = [(1, 3, 128, 128)] if quick else [(1, 3, 256, 256), (1, 3, 512, 512), (8, 3, 128, 128)]
    what = "Borůvka on the device" if device == "cuda" else "Kruskal (radix sort, union-find)"
    records = []
    for shape in shapes:
        guide = _image(shape, seed=1)
        on_device = guide.to(device)
        ms, tree = time_ms(lambda: ops.grid_mst(on_device), device, repeat=3 if quick else 5)
        ref_ms, totals = time_ms(lambda: _scipy_mst(guide), "cpu", repeat=1, warmup=0)
        diff = max(abs(a - b) for a, b in zip(_tree_weight(tree.cpu(), guide), totals))
        records.append(record("grid_mst", _impl(device, what), device,
                              "scipy minimum_spanning_tree (NumPy weights + CSR graph)", _shape("guide", shape), ms,
                              ref_ms, diff))
    return records


def minimax_cases(quick: bool, device: str) -> list[dict]:
    sizes = [128] if quick else [256, 512]
    records = []
    for size in sizes:
        embed = _image((1, 3, size, size), seed=2)
        tree = ops.grid_mst(embed)
        for channels in (1, 21):
            values = torch.rand(1, channels, size, size, generator=torch.Generator().manual_seed(3))
            args = (values.to(device), tree.to(device), embed.to(device))
            ms, out = time_ms(lambda: ops.minimax_propagation(*args, ZETA), device, repeat=3 if quick else 5)
            ref_ms, want = time_ms(lambda: ops.minimax_propagation_apro_reference(values, tree, embed, ZETA), "cpu",
                                   repeat=1, warmup=0)
            diff = (out.cpu().double() - want.double()).abs().max().item()
            impl = _impl(device, "Kruskal reconstruction tree shared by channels")
            reference = "APro algorithm (C++, 1 thread, channel by channel)"
            records.append(record("minimax_propagation", impl, device, reference, _shape("values", values.shape), ms,
                                  ref_ms, diff))
    return records


def tree_filter_cases(quick: bool, device: str) -> list[dict]:
    shapes = [(1, 1, 96, 96), (1, 21, 96, 96)] if quick else [(1, 1, 256, 256), (1, 21, 256, 256), (1, 1, 512, 512)]
    records = []
    for shape in shapes:
        embed = _image((shape[0], 3, *shape[2:]), seed=4)
        tree = ops.grid_mst(embed)
        features = torch.rand(*shape, generator=torch.Generator().manual_seed(5))
        args = (features.to(device), embed.to(device), tree.to(device))
        ms, out = time_ms(lambda: ops.tree_filter(*args), device, repeat=3 if quick else 5)
        ref_ms, want = time_ms(lambda: ref.tree_filter_bfs(features, embed, tree), "cpu", repeat=1, warmup=0)
        diff = (out.cpu().double() - want).abs().max().item()
        records.append(record("tree_filter", _impl(device, "BFS + two passes (forward)"), device,
                              "TreeFilter algorithm (NumPy, Python loop)", _shape("features", shape), ms, ref_ms,
                              diff))
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
    for rec in cases(args.quick, args.device):
        if args.json:
            print(json.dumps(rec))
        else:
            print(f"{rec['op']:<20} {rec['shape']:<22} {rec['device']:<5} "
                  f"{rec['ms']:>9.2f} ms  ref {rec['reference_ms']:>9.2f} ms  x{rec['speedup']:<7} "
                  f"max|diff| {rec['max_abs_diff']:.1e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
