"""Benchmark the compiled kernels against the papers' formulations: ``python -m kernels.bench``.

    python -m kernels.bench [--quick] [--device cpu|cuda] [--json PATH] [--only SUBSTR] [--threads N]

Prints a table and writes a JSON list of records (default ``results/kernels/bench.json``), one per
(op, size, device)::

    {"op": "random_walk", "impl": "wsss C++ (2 threads)", "device": "cpu",
     "reference": "IRN dense T^256 ...", "shape": "values 1x21x94x125 ...",
     "ms": 84.1, "reference_ms": 155000.0, "speedup": 1843.0, "max_abs_diff": 3e-07}

``ms`` is the median of several runs of the kernel (after a warm-up; at least 5 and at least 0.5 s
worth), ``reference_ms`` the same for the reference (a single run when it takes seconds), both on
``device`` and in the same process, so both see the same machine load;
``speedup = reference_ms / ms``; ``max_abs_diff`` compares the two outputs (the reference runs in
the kernel's dtype, as the papers' code does).

Registry for other kernel families: every module named in :data:`CONTRIBUTORS` that exists (e.g.
``kernels/bench_tree.py``, part B: MST, minimax tree propagation, tree filter) must define::

    def cases(quick: bool, device: str) -> list[dict]

returning records with exactly the keys above (:func:`record` builds one, :func:`time_ms` times a
callable with CUDA synchronisation). ``quick`` must keep the whole module to a few seconds on 2 CPU
cores (small sizes, no dense references beyond ~2k nodes); ``device`` is ``"cpu"`` or ``"cuda"``
(the caller has checked it is usable). The module is imported only here, so it may import the
references and kernels freely; an ImportError inside it is reported, not hidden.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

#: Optional modules contributing benchmark cases through ``cases(quick, device)``.
CONTRIBUTORS = ("kernels.bench_tree",)

KEYS = ("op", "impl", "device", "reference", "shape", "ms", "reference_ms", "speedup", "max_abs_diff")
DEFAULT_JSON = Path("results/kernels/bench.json")


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_ms(fn: Callable[[], object], device: str, repeat: int = 5, warmup: int = 1,
            min_total_s: float = 0.5, max_repeat: int = 200) -> tuple[float, object]:
    """Median wall time of ``fn()`` in milliseconds, and its last result.

    Runs ``warmup`` untimed calls, then at least ``repeat`` timed ones and more (up to ``max_repeat``)
    until ``min_total_s`` seconds are spent, so that short calls get enough samples for a stable
    median on a shared machine.
    """
    result = None
    for _ in range(warmup):
        result = fn()
    _sync(device)
    times: list[float] = []
    while len(times) < max(1, repeat) or (sum(times) < min_total_s * 1000.0 and len(times) < max_repeat):
        start = time.perf_counter()
        result = fn()
        _sync(device)
        times.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times), result


def max_abs_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.detach().double().cpu() - b.detach().double().cpu()).abs().max()) if a.numel() else 0.0


def record(op: str, impl: str, device: str, reference: str, shape: str, ms: float, reference_ms: float,
           diff: float) -> dict:
    """One benchmark record (the JSON format shared by every contributor)."""
    return {"op": op, "impl": impl, "device": device, "reference": reference, "shape": shape, "ms": round(ms, 4),
            "reference_ms": round(reference_ms, 4), "speedup": round(reference_ms / ms, 2) if ms > 0 else None,
            "max_abs_diff": diff}


def _impl(device: str) -> str:
    return f"wsss C++ ({torch.get_num_threads()} threads)" if device == "cpu" else "wsss CUDA"


def _regions(batch: int, height: int, width: int, generator: torch.Generator) -> torch.Tensor:
    """Piecewise-smooth synthetic features ``(B, 16, H, W)``: random blobs, so affinities look like real ones."""
    coarse = torch.rand(batch, 16, max(2, height // 12), max(2, width // 12), generator=generator)
    smooth = torch.nn.functional.interpolate(coarse, size=(height, width), mode="nearest")
    return 3.0 * smooth + 0.05 * torch.rand(batch, 16, height, width, generator=generator)


# --------------------------------------------------------------------------- grid cases


def _random_walk_case(quick: bool, device: str, name: str, size: tuple[int, int], beta: float, repeat: int) -> list[dict]:
    from kernels import pair_affinity_from_features, random_walk
    from kernels.reference.random_walk import random_walk_dense

    generator = torch.Generator().manual_seed(0)
    height, width = size
    values = torch.rand(1, 21, height, width, generator=generator).to(device)
    affinity = pair_affinity_from_features(_regions(1, height, width, generator), 5).to(device)
    ms, out = time_ms(lambda: random_walk(values, affinity, 5, beta, 256), device, repeat=repeat)
    ref_ms, ref = time_ms(lambda: random_walk_dense(values, affinity, 5, beta, 256, dtype=torch.float32), device,
                          repeat=1 if height * width > 2000 else 3, warmup=0 if height * width > 2000 else 1)
    n = height * width
    shape = f"values 1x21x{height}x{width} (N={n}), r=5, beta={beta:g}, 256 steps, float32"
    return [record("random_walk", _impl(device), device, f"{name}: dense T (N x N) squared 8 times, v @ T, torch float32",
                   shape, ms, ref_ms, max_abs_diff(out, ref))]


def random_walk_cases(quick: bool, device: str) -> list[dict]:
    irn = (24, 32) if quick else (94, 125)  # IRN: stride 4 of a 500x375 VOC image
    psa = (24, 32) if quick else (47, 63)   # PSA: stride 8 of the same image
    records = _random_walk_case(quick, device, "IRN", irn, 10.0, repeat=5)
    if not quick:
        records += _random_walk_case(quick, device, "PSA", psa, 8.0, repeat=10)
    return records


def pair_affinity_cases(quick: bool, device: str) -> list[dict]:
    """AffinityNet's training op, forward + backward, against the plain PyTorch form (autograd on slices)."""
    from kernels import direction_offsets, pair_affinity_from_features
    from kernels.random_walk import _pair_affinity_torch

    generator = torch.Generator().manual_seed(2)
    batch, channels, height, width = (2, 8, 16, 20) if quick else (8, 32, 40, 40)  # the demo's batch at stride 4
    features = torch.randn(batch, channels, height, width, generator=generator).to(device).requires_grad_()
    weights = torch.rand(batch, len(direction_offsets(5)), height, width, generator=generator).to(device)

    def both(fn):
        def run():
            affinity = fn(features, 5)
            (grad,) = torch.autograd.grad(affinity, features, weights)
            return torch.cat([affinity.flatten(), grad.flatten()])
        return run

    ms, out = time_ms(both(pair_affinity_from_features), device)
    ref_ms, ref = time_ms(both(_pair_affinity_torch), device)
    shape = f"features {batch}x{channels}x{height}x{width}, r=5, forward + backward, float32"
    return [record("pair_affinity", _impl(device), device, "PSA form: per-direction slices, torch autograd", shape,
                   ms, ref_ms, max_abs_diff(out, ref))]


def local_propagation_cases(quick: bool, device: str) -> list[dict]:
    from kernels import local_propagation
    from kernels.reference.local_propagation import local_propagation_unfold

    generator = torch.Generator().manual_seed(1)
    batch, height, width = (2, 64, 80) if quick else (8, 200, 333)  # APro SOLOv2: instances at stride 4
    values = torch.rand(batch, 1, height, width, generator=generator).to(device)
    image = _regions(batch, height, width, generator)[:, :3].div(3).to(device)
    mask = torch.zeros(batch, 1, height, width)
    mask[..., height // 5:height * 4 // 5, width // 6:width * 5 // 6] = 1.0
    mask = mask.to(device)
    ms, out = time_ms(lambda: local_propagation(values, image, 5, 0.15, 20, mask), device)
    ref_ms, ref = time_ms(lambda: local_propagation_unfold(values, image, 5, 0.15, 20, mask, dtype=torch.float32),
                          device, repeat=3)
    shape = f"values {batch}x1x{height}x{width}, image 3 ch, k=5, zeta=0.15, 20 iterations, float32"
    return [record("local_propagation", _impl(device), device, "APro LP: F.unfold windows, torch float32", shape, ms,
                   ref_ms, max_abs_diff(out, ref))]


def superpixel_cases(quick: bool, device: str) -> list[dict]:
    from kernels import superpixel_pool, superpixel_upsample
    from kernels.reference.superpixel import superpixel_pool_shifted, superpixel_upsample_shifted

    generator = torch.Generator().manual_seed(2)
    batch, channels, size, cell = (1, 21, 128, 16) if quick else (2, 21, 512, 16)  # MSA: 512 crops, 16x16 grid
    features = torch.rand(batch, channels, size, size, generator=generator).to(device)
    assoc = (4 * torch.rand(batch, 9, size, size, generator=generator)).softmax(dim=1).to(device)
    cells = torch.rand(batch, channels, size // cell, size // cell, generator=generator).to(device)
    reference = "MSA/SpixelFCN: 9 shifted avg_pool2d / nearest-upsample passes, torch float32"
    records = []
    for op, ours, ref_fn, first, shape in (
        ("superpixel_pool", superpixel_pool, superpixel_pool_shifted, features,
         f"features {batch}x{channels}x{size}x{size}, cell {cell}x{cell}, float32"),
        ("superpixel_upsample", superpixel_upsample, superpixel_upsample_shifted, cells,
         f"cells {batch}x{channels}x{size // cell}x{size // cell} -> {size}x{size}, float32"),
    ):
        ms, out = time_ms(lambda: ours(first, assoc, cell), device)
        ref_ms, ref = time_ms(lambda: ref_fn(first, assoc, (cell, cell), dtype=torch.float32), device)
        records.append(record(op, _impl(device), device, reference, shape, ms, ref_ms, max_abs_diff(out, ref)))

        # forward + backward w.r.t. both inputs (the superpixel net trains through these ops)
        def train_step(fn, *args):
            x = first.detach().requires_grad_()
            q = assoc.detach().requires_grad_()
            y = fn(x, q, *args)
            grads = torch.autograd.grad(y.square().sum(), (x, q))
            return torch.cat([g.flatten() for g in grads])

        ms, out = time_ms(lambda: train_step(ours, cell), device)
        ref_ms, ref = time_ms(lambda: train_step(lambda x, q, c: ref_fn(x, q, c, dtype=torch.float32), (cell, cell)),
                              device)
        records.append(record(f"{op} fwd+bwd", _impl(device), device, reference + " (autograd)", shape, ms, ref_ms,
                              max_abs_diff(out, ref)))
    return records


#: This module's own cases, by op family.
CASES: dict[str, Callable[[bool, str], list[dict]]] = {
    "random_walk": random_walk_cases,
    "pair_affinity": pair_affinity_cases,
    "local_propagation": local_propagation_cases,
    "superpixel": superpixel_cases,
}


def collect(quick: bool, device: str, only: str | None = None) -> list[dict]:
    """Run every registered case (own and contributed) whose name contains ``only``.

    ``only`` selects own op families by name; a contributed module runs when ``only`` names it
    (``tree`` for ``kernels.bench_tree``) or matches no own family, its records then filtered by op.
    """
    records: list[dict] = []
    own = [name for name in CASES if only is None or only in name]
    for name in own:
        records += CASES[name](quick, device)
    for module_name in CONTRIBUTORS:
        short = module_name.rsplit(".", 1)[-1].removeprefix("bench_")
        if only is not None and own and only not in short:
            continue
        if importlib.util.find_spec(module_name) is None:
            continue
        module = importlib.import_module(module_name)
        contributed = module.cases(quick, device)
        for rec in contributed:
            missing = set(KEYS) - set(rec)
            if missing:
                raise ValueError(f"{module_name}.cases: record {rec.get('op')!r} lacks {sorted(missing)}")
        if only is not None and only not in short:
            contributed = [rec for rec in contributed if only in rec["op"]]
        records += contributed
    return records


def format_table(records: list[dict]) -> str:
    header = ("op", "device", "shape", "ms", "reference", "ref ms", "speedup", "max|diff|")
    rows = [header]
    for rec in records:
        rows.append((rec["op"], rec["device"], rec["shape"], f"{rec['ms']:.3f}", rec["reference"],
                     f"{rec['reference_ms']:.1f}", f"{rec['speedup']:.1f}x" if rec["speedup"] else "-",
                     f"{rec['max_abs_diff']:.2e}"))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(header))]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: seconds instead of minutes")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"where to write the records ({DEFAULT_JSON})")
    parser.add_argument("--only", help="run only the op families / ops whose name contains this")
    parser.add_argument("--threads", type=int, help="torch / kernel CPU threads (default: torch's)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but no CUDA device is available", file=sys.stderr)
        return 1
    from kernels._loader import load_library
    from wsss.errors import WsssError

    try:
        variant = load_library()
    except WsssError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if args.device == "cuda" and variant != "cuda":
        print("error: --device cuda needs the cuda build: python -m kernels.build --variant cuda", file=sys.stderr)
        return 1
    records = collect(args.quick, args.device, args.only)
    print(format_table(records))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.json.with_name(args.json.name + ".tmp")
    tmp.write_text(json.dumps(records, indent=2) + "\n")
    tmp.replace(args.json)
    print(f"wrote {len(records)} records to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
