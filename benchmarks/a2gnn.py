"""A2GNN propagation: the stage's network against the straightforward dense reference.

    python -m benchmarks.a2gnn                          # minivoc and VOC sizes, prints the table, writes JSON
    python -m benchmarks.a2gnn --quick                  # a few epochs, a few images (a smoke run)
    python -m benchmarks.a2gnn --run results/minivoc/image/a2gnn/propagate --images 100   # + mIoU on real inputs
    python -m benchmarks.a2gnn --compose dataset=minivoc supervision=image propagation=a2gnn ... --images 100

**Speed** (synthetic inputs, the same for all rows): images at minivoc size (width 144–192, height 112–160, drawn
per image as minivoc draws them) and at VOC size (500×375), node features at A2GNN's node stride 8 (the
32-channel AffinityNet of minivoc pooled), seeds in a few blobs of 2–3 classes. Per image, in the same
process and thread setting: the reference (:mod:`benchmarks.a2gnn_reference`, dense ``N×N`` per image, the seed's
fixed 2×``epochs``), the stage's network with the same fixed schedule (``stop_patience=0``), the stage as it runs
by default (early stopping, one image at a time) and in batches of ``--batch-images``. The first three run image by
image in turn (a slow spell of a shared machine slows all three alike). Seconds per image are the
total over the images divided by their number; ``speedup`` is the reference's seconds per image over the
stage's; ``agreement`` the share of nodes whose arg-max is the same as the reference's (the two draw their
dropout masks differently, so the scores differ by training noise; without dropout they agree to 1e-5,
``tests/test_weak_propagators.py``).

**Quality** (``--run``, a finished ``propagate`` folder of the a2gnn recipe, or ``--compose`` with that job's
overrides as ``snakemake -n -p`` prints them): its inputs (AffinityNet, seeds, CAMs) on the first ``--images``
images of its split, propagated by the reference, the stage with the fixed schedule and the stage as configured,
each with the stage's own code around the network (features, random-walk blend, box masks), batch by batch in
turn, then the CRF of the recipe's ``crf`` folder (A2GNN's kernels if it has not run): mIoU against the ground truth before and after the
CRF, seconds per image of the whole propagation and of the network alone, mean epochs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.a2gnn_reference import reference_a2gnn
from wsss.params import A2GNNParams
from wsss.propagation.a2gnn import train_a2gnn_batch
from wsss.propagation.inputs import PropagationInput

MINIVOC_WIDTH, MINIVOC_HEIGHT = (144, 192), (112, 160)
NODE_STRIDE = 8
FEATURES = 32


def synthetic_image(height: int, width: int, rng: np.random.Generator) -> tuple[PropagationInput, torch.Tensor]:
    """An image of 2–3 objects (discs) on a background, features that follow the objects plus noise, and seeds:
    a blob inside each object and two in the background."""
    classes = rng.choice(np.arange(1, 21), size=rng.integers(2, 4), replace=False)
    label = np.zeros((height, width), np.int64)
    ys, xs = np.mgrid[:height, :width]
    seeds = np.full((height, width), 255, np.uint8)
    for cls in classes:
        cy, cx = rng.integers(height // 5, 4 * height // 5), rng.integers(width // 5, 4 * width // 5)
        radius = rng.uniform(0.15, 0.3) * min(height, width)
        inside = (ys - cy) ** 2 + (xs - cx) ** 2 < radius ** 2
        label[inside] = cls
        seeds[(ys - cy) ** 2 + (xs - cx) ** 2 < (radius / 3) ** 2] = cls
    seeds[: height // 10, : width // 10] = 0
    seeds[-height // 10 :, -width // 10 :] = 0
    palette = rng.integers(0, 256, (21, 3))
    image = np.clip(palette[label] + rng.normal(0, 12, (height, width, 3)), 0, 255).astype(np.uint8)
    h, w = -(-height // NODE_STRIDE), -(-width // NODE_STRIDE)
    cells = label[::NODE_STRIDE, ::NODE_STRIDE][:h, :w]
    embedding = rng.standard_normal((21, FEATURES)).astype(np.float32)
    features = embedding[cells].transpose(2, 0, 1) + 0.5 * rng.standard_normal((FEATURES, h, w)).astype(np.float32)
    return PropagationInput(image, np.sort(classes), seeds), torch.from_numpy(np.ascontiguousarray(features))


def time_per_image(run, items) -> tuple[float, list[torch.Tensor]]:
    start = time.perf_counter()
    out = run(items)
    return (time.perf_counter() - start) / len(items), out


def speed_case(name: str, sizes: list[tuple[int, int]], params: A2GNNParams, rng: np.random.Generator) -> dict:
    items = [synthetic_image(h, w, rng) for h, w in sizes]
    datas, features = [d for d, _ in items], [f for _, f in items]
    batch = max(2, params.batch_images)
    fixed = dataclasses.replace(params, stop_patience=0)
    epochs: list[int] = []
    rows = {"reference": lambda d, f: reference_a2gnn(d, f, NODE_STRIDE, params),
            "fixed": lambda d, f: train_a2gnn_batch([d], [f], NODE_STRIDE, fixed)[0],
            "stage": lambda d, f: train_a2gnn_batch([d], [f], NODE_STRIDE, params, epochs=epochs)[0]}
    seconds = dict.fromkeys(rows, 0.0)
    scores: dict[str, list[torch.Tensor]] = {row: [] for row in rows}
    for data, feature in zip(datas, features):  # the rows image by image: a slow spell of the machine hits all three
        for row, run in rows.items():
            start = time.perf_counter()
            scores[row].append(run(data, feature))
            seconds[row] += time.perf_counter() - start
    reference_s, fixed_s, stage_s = (seconds[row] / len(items) for row in rows)
    reference, fixed_out, stage = scores["reference"], scores["fixed"], scores["stage"]

    def batched(_):
        out = []
        for start in range(0, len(datas), batch):
            out += train_a2gnn_batch(datas[start : start + batch], features[start : start + batch], NODE_STRIDE, params)
        return out

    batched_s, _ = time_per_image(batched, items)

    def agreement(outputs):
        return float(np.mean([(a.argmax(0) == b.argmax(0)).float().mean().item() for a, b in zip(outputs, reference)]))

    nodes = np.mean([f.shape[-1] * f.shape[-2] for f in features])
    return {"case": name, "images": len(items), "mean_nodes": float(nodes), "reference_epochs": 2 * params.epochs,
            "threads": torch.get_num_threads(), "reference_s_per_image": reference_s,
            "fixed_schedule_s_per_image": fixed_s, "speedup_fixed_schedule": reference_s / fixed_s,
            "stage_s_per_image": stage_s, "stage_mean_epochs": float(np.mean(epochs)), "speedup": reference_s / stage_s,
            "batch_images": batch, "batched_s_per_image": batched_s, "speedup_batched": reference_s / batched_s,
            "agreement_fixed_schedule": agreement(fixed_out), "agreement": agreement(stage)}


#: ``--run`` rows: the reference network with the stage's code around it, the stage with the seed's fixed schedule,
#: the stage as configured (its early stopping)
QUALITY_ROWS = ("reference", "stage_fixed_schedule", "stage")


def propagate_config(run_dir: Path | None, overrides: list[str]):
    """A ``propagate`` job's config: its folder's ``.hydra/config.yaml``, or composed from ``overrides``."""
    from omegaconf import OmegaConf

    from wsss.config import compose

    if run_dir is not None:
        return OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    return compose("propagate", overrides)


def quality(cfg, images: int, rows: tuple[str, ...] = QUALITY_ROWS, crf_dir: Path | None = None) -> dict:
    """mIoU of the stage and the reference on an a2gnn ``propagate`` job's inputs (module docstring)."""
    from omegaconf import OmegaConf

    import wsss.propagation.a2gnn as a2gnn
    from wsss.config import compose
    from wsss.crf import CRFParams, crf_from_probs
    from wsss.data import open_dataset
    from wsss.io import load_label_png, load_npy
    from wsss.metrics import SegmentationScorer
    from wsss.pipeline import load_keys
    from wsss.propagation.run import Propagator, propagation_input

    crf_run = None if crf_dir is None else crf_dir / ".hydra" / "config.yaml"
    # the recipe's CRF as its refine_crf job ran it, or (not run yet) A2GNN's kernels, as the a2gnn recipe sets
    crf_cfg = OmegaConf.load(crf_run) if crf_run is not None and crf_run.is_file() else compose(
        "refine_crf", [f"dataset={cfg.dataset.name}", "crf=a2gnn"])
    node = OmegaConf.to_container(cfg.propagation, resolve=True)
    kind = cfg.supervision.name
    dataset = open_dataset(cfg.dataset, cfg.split,
                           annotations=cfg.supervision.annotations if kind == "box" else "Annotations")
    cam_dir = Path(cfg.cam_dir) if cfg.cam == "classifier" else None
    cam_keys = load_keys(cam_dir) if cam_dir is not None else {}
    crf = CRFParams(**crf_cfg.crf)
    ids = dataset.ids[:images]
    datas = []
    for image_id in ids:
        image = dataset.load_image(image_id)
        cam = None
        if cam_dir is not None:
            cam = (load_npy(cam_dir / "highres" / f"{image_id}.npy").astype(np.float32), cam_keys[image_id])
        datas.append(propagation_input(dataset, kind, cfg.supervision.annotations, image_id, image,
                                       load_label_png(Path(cfg.seeds_dir) / f"{image_id}.png"), cam,
                                       cam_keys.get(image_id)))
    results: dict = {"images": len(ids)}
    epochs: dict[str, list[int]] = {name: [] for name in rows}
    propagators = {name: Propagator(dict(node, stop_patience=0) if name == "stage_fixed_schedule" else node, kind,
                                    cfg.cam == "classifier", cfg.affinity_dir, "cpu", cfg.seed) for name in rows}
    seconds, network_seconds = dict.fromkeys(rows, 0.0), dict.fromkeys(rows, 0.0)
    scores: dict[str, list[np.ndarray]] = {name: [] for name in rows}
    saved = a2gnn.train_a2gnn_batch

    def one_by_one(batch_datas, batch_features, stride, params, seed=0):
        return [reference_a2gnn(d, f, stride, params, seed) for d, f in zip(batch_datas, batch_features)]

    def timed_network(name):
        def timed(*args, **kwargs):
            # the reference's network with the stage's code around it, or the stage's recording its epochs
            begin = time.perf_counter()
            try:
                if name == "reference":
                    return one_by_one(*args, **kwargs)
                return saved(*args, **kwargs, epochs=epochs[name])
            finally:
                network_seconds[name] += time.perf_counter() - begin
        return timed

    batch_size = propagators[rows[0]].batch_size
    for begin in range(0, len(datas), batch_size):  # the rows batch by batch in turn, as the speed table's images
        for name, propagator in propagators.items():
            a2gnn.train_a2gnn_batch = timed_network(name)
            start = time.perf_counter()
            try:
                scores[name] += propagator.batch(datas[begin : begin + batch_size])
            finally:
                a2gnn.train_a2gnn_batch = saved
            seconds[name] += time.perf_counter() - start
    for name in rows:
        plain, refined = SegmentationScorer(), SegmentationScorer()
        for image_id, data, score in zip(ids, datas, scores[name]):
            truth = dataset.load_class_mask(image_id)
            plain.add(data.label(score), truth)
            lookup = np.concatenate([[0], data.keys]).astype(np.uint8)
            refined.add(lookup[crf_from_probs(data.image, score, crf).argmax(axis=0)], truth)
        results[name] = {"miou": plain.record({})["miou"], "miou_crf": refined.record({})["miou"],
                         "s_per_image": seconds[name] / len(ids), "network_s_per_image": network_seconds[name] / len(ids),
                         "mean_epochs": float(np.mean(epochs[name])) if epochs[name] else 2 * propagators[name].a2gnn.epochs}
        print(f"  {name:22s} mIoU {results[name]['miou']:6.2f}  after CRF {results[name]['miou_crf']:6.2f}  "
              f"{results[name]['s_per_image']:.3f} s/img (network {results[name]['network_s_per_image']:.3f})  "
              f"{results[name]['mean_epochs']:.1f} epochs", flush=True)
    if "reference" in results:
        for name in rows:
            if name != "reference":
                results[name]["miou_crf_difference"] = results[name]["miou_crf"] - results["reference"]["miou_crf"]
                results[name]["speedup"] = results["reference"]["s_per_image"] / results[name]["s_per_image"]
                results[name]["network_speedup"] = (results["reference"]["network_s_per_image"]
                                                    / results[name]["network_s_per_image"])
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2+2 epochs, 4 minivoc-size images and 1 VOC-size")
    parser.add_argument("--images", type=int, default=16, help="minivoc-size images (speed), or --run images")
    parser.add_argument("--voc-images", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-images", type=int, default=8, help="the batched row (the stage row: its default)")
    parser.add_argument("--run", type=Path, help="a finished a2gnn propagate folder: mIoU of both on its inputs")
    parser.add_argument("--compose", nargs="+", metavar="OVERRIDE",
                        help="instead of --run: the propagate job's overrides (as `snakemake -n -p` prints them)")
    parser.add_argument("--rows", nargs="+", default=list(QUALITY_ROWS), choices=QUALITY_ROWS)
    parser.add_argument("--out", type=Path, default=Path("results/benchmarks/a2gnn.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    params = A2GNNParams(batch_images=args.batch_images, **({"epochs": 2} if args.quick else {}))
    rng = np.random.default_rng(0)
    minivoc = [(int(rng.integers(*MINIVOC_HEIGHT, endpoint=True)), int(rng.integers(*MINIVOC_WIDTH, endpoint=True)))
               for _ in range(4 if args.quick else args.images)]
    report: dict = {"params": {"epochs_per_phase": params.epochs, "radius": params.radius, "hidden": params.hidden,
                               "layers": params.layers, "batch_images": params.batch_images},
                    "speed": []}
    if args.run is None and args.compose is None:
        for name, sizes in (("minivoc", minivoc), ("voc 500x375", [(375, 500)] * (1 if args.quick else args.voc_images))):
            case = speed_case(name, sizes, params, rng)
            report["speed"].append(case)
            print(f"{name:12s} {case['mean_nodes']:6.0f} nodes  reference {case['reference_s_per_image']:7.3f} s/img  "
                  f"fixed schedule {case['fixed_schedule_s_per_image']:6.3f} ({case['speedup_fixed_schedule']:4.1f}x)  "
                  f"stage {case['stage_s_per_image']:6.3f} ({case['speedup']:4.1f}x, {case['stage_mean_epochs']:.1f} "
                  f"epochs)  batches of {case['batch_images']}: {case['batched_s_per_image']:.3f} "
                  f"({case['speedup_batched']:.1f}x)  agreement {100 * case['agreement_fixed_schedule']:5.1f}% / "
                  f"{100 * case['agreement']:5.1f}%", flush=True)
    else:
        cfg = propagate_config(args.run, args.compose or [])
        print(f"{args.images} images of {args.run or ' '.join(args.compose)}:", flush=True)
        report["quality"] = quality(cfg, args.images, tuple(args.rows),
                                    None if args.run is None else args.run.parent / "crf")
        report["quality"]["run"] = str(args.run) if args.run else " ".join(args.compose)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"written {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
