"""Cost of APro's training losses in a Mask R-CNN step, and of their propagation against APro's own algorithm.

    python -m benchmarks.apro_loss                        # minivoc's Mask R-CNN, 20 timed iterations per loss
    python -m benchmarks.apro_loss --iterations 5 --out results/apro_loss_try

On the embedded dataset's train boxes (``--root``, default ``data/minivoc``; made by ``snakemake
results/../data/minivoc`` or any minivoc run), with the demo model of ``conf/maskrcnn/minivoc.yaml`` (trunk not
initialised: timing only), in one process, the same batches for each:

* ``filled_box``: a full training step (forward, backward, SGD step) with the filled boxes as mask targets;
* ``apro``: the same step with APro's three losses in place of the mask loss; the time spent computing the
  propagated pseudo-labels (:func:`wsss.retrain.box_supervision.propagation_targets`: MST, two GP passes, LP) is
  measured inside it, giving the propagation's share of the step.

Then, on the RoI batches the ``apro`` steps really saw (``R × 1 × 28 × 28`` masks, ``R × 3 × 28 × 28`` guides),
each propagation op of the kernels against the reference of APro's own algorithm, same inputs:
``minimax_propagation`` (both passes) against ``minimax_propagation_apro_reference`` (single-threaded, per
channel, as APro's ``gp_cuda`` runs on the CPU) and ``local_propagation`` against APro's ``F.unfold`` form
(``kernels.reference.local_propagation``); outputs must agree (max abs difference printed).

Last, the signal the propagation losses carry (:func:`target_signal`): from a mask that fills its box, the
mean GP and LP targets on the box's object and background cells, per GP pass-1 ζ.

Printed and written to ``<out>/bench.json``. Timings need an idle machine.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Sequence

import torch
from omegaconf import OmegaConf

REPO_ROOT = Path(__file__).resolve().parent.parent


def _model_settings():
    from wsss.params import MaskRCNNSettings

    model = OmegaConf.to_container(OmegaConf.load(REPO_ROOT / "conf" / "maskrcnn" / "minivoc.yaml").model)
    model.pop("init_from_classifier")
    return MaskRCNNSettings(**model)


def _train_settings():
    return OmegaConf.load(REPO_ROOT / "conf" / "maskrcnn" / "minivoc.yaml").train


def time_steps(kind: str, samples, batches: list[list[tuple[int, int]]], seed: int, warmup: int,
               captured: list | None = None) -> dict:
    """Seconds per training step with mask loss ``kind`` over ``batches`` (the first ``warmup`` not timed)."""
    from wsss.params import BoxMaskLossSettings
    from wsss.retrain import box_supervision
    from wsss.retrain.box_supervision import AProMaskLoss
    from wsss.retrain.maskrcnn_model import build_maskrcnn, maskrcnn_parameters

    torch.manual_seed(seed)
    train = _train_settings()
    model = build_maskrcnn(_model_settings(), 21).train()
    optimizer = torch.optim.SGD(maskrcnn_parameters(model), lr=float(train.lr) * 0.1, momentum=float(train.momentum))
    apro = AProMaskLoss(model, BoxMaskLossSettings(kind="apro")) if kind == "apro" else None
    original = box_supervision.propagation_targets
    propagation_seconds = [0.0]

    def timed_targets(mask_probs, guide, box_masks, settings):
        start = time.perf_counter()
        out = original(mask_probs, guide, box_masks, settings)
        propagation_seconds[0] += time.perf_counter() - start
        if captured is not None and timing[0]:
            captured.append((mask_probs.detach().float().clone(), guide.detach().float().clone(), box_masks.clone()))
        return out

    timing = [False]
    box_supervision.propagation_targets = timed_targets
    seconds, rois = 0.0, []
    try:
        for number, batch in enumerate(batches):
            timing[0] = number >= warmup
            if number == warmup:
                propagation_seconds[0] = 0.0
            images, targets = zip(*(samples[key] for key in batch))
            start = time.perf_counter()
            losses = model(list(images), list(targets))
            if apro is not None:
                del losses["loss_mask"]
                losses.update(apro.losses())
            optimizer.zero_grad(set_to_none=True)
            sum(losses.values()).backward()
            optimizer.step()
            if timing[0]:
                seconds += time.perf_counter() - start
    finally:
        box_supervision.propagation_targets = original
    timed = len(batches) - warmup
    if captured:
        rois = [int(c[0].shape[0]) for c in captured]
    record = {"kind": kind, "iterations": timed, "seconds_per_iteration": seconds / timed}
    if apro is not None:
        record.update(propagation_seconds_per_iteration=propagation_seconds[0] / timed,
                      propagation_share=propagation_seconds[0] / seconds,
                      rois_per_iteration=sum(rois) / max(len(rois), 1))
    return record


def _best_of(fn, repeat: int = 3) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def compare_ops(captured: list) -> list[dict]:
    """Each propagation op of the kernels against APro's algorithm on the captured RoI batches (summed)."""
    from kernels import grid_mst, local_propagation, minimax_propagation
    from kernels.reference.local_propagation import local_propagation_unfold
    from kernels.tree import minimax_propagation_apro_reference
    from wsss.params import BoxMaskLossSettings

    settings = BoxMaskLossSettings(kind="apro")
    totals = {"gp": [0.0, 0.0, 0.0], "lp": [0.0, 0.0, 0.0]}
    for probs, guide, boxes in captured:
        masks = probs[:, None].contiguous()
        tree = grid_mst(guide)

        def gp_kernel():
            first = minimax_propagation(masks, tree, guide, settings.zeta_image)
            return minimax_propagation(first, tree, first, settings.zeta_mask)

        def gp_reference():
            first = minimax_propagation_apro_reference(masks, tree, guide, settings.zeta_image)
            return minimax_propagation_apro_reference(first, tree, first, settings.zeta_mask)

        lp_args = (masks, guide, settings.local_kernel, settings.local_zeta, settings.local_iterations, boxes[:, None])
        for name, fast, slow in (("gp", gp_kernel, gp_reference),
                                 ("lp", lambda: local_propagation(*lp_args),
                                  lambda: local_propagation_unfold(*lp_args, dtype=torch.float32))):
            fast_s, fast_out = _best_of(fast)
            slow_s, slow_out = _best_of(slow)
            totals[name][0] += fast_s
            totals[name][1] += slow_s
            totals[name][2] = max(totals[name][2], float((fast_out - slow_out).abs().max()))
    shapes = sorted({tuple(c[0].shape) for c in captured})
    names = {"gp": ("minimax_propagation x2 (GP passes 1, 2)", "APro gp_forward algorithm, single-threaded per channel"),
             "lp": ("local_propagation (k 5, 20 it)", "APro Local_APro: F.unfold windows, torch float32")}
    return [{"op": names[key][0], "reference": names[key][1], "batches": len(captured),
             "roi_sizes": f"R in {shapes[0][0]}..{shapes[-1][0]} x {shapes[0][1]}x{shapes[0][2]}",
             "kernel_ms": 1000 * fast / len(captured), "reference_ms": 1000 * slow / len(captured),
             "speedup": slow / fast, "max_abs_diff": diff} for key, (fast, slow, diff) in totals.items()]


def target_signal(dataset, settings, zetas: Sequence[float], images: int) -> list[dict]:
    """What the propagation losses would teach a mask that fills its box, per GP pass-1 ζ.

    For every object of the first ``images`` images: its box's RoI grown as in training, the filled box as the
    mask (what the filled-box model predicts), the guide as :class:`AProMaskLoss` builds it (blurred image on the
    RoI grid) and the object's true mask on the same grid. The mean GP and LP targets over the box's object cells
    and over its background cells: a loss that carves the box pulls background below object; equal means say
    the propagation passes no information at that ζ.
    """
    import dataclasses

    import numpy as np
    from torchvision.ops import roi_align

    from wsss.data.transforms import normalize
    from wsss.retrain.box_supervision import _grow, blurred_guide, propagation_targets, roi_box_masks

    size = 28
    context = int(round(settings.context * size))
    full = size + 2 * context
    rows = []
    for zeta in zetas:
        chosen = dataclasses.replace(settings, zeta_image=zeta)
        sums = {"gp_object": [], "gp_background": [], "lp_object": [], "lp_background": []}
        for image_id in dataset.ids[:images]:
            image = blurred_guide(torch.from_numpy(normalize(dataset.load_image(image_id)))[None], chosen)
            masks, _ = dataset.instances(image_id)
            for mask in masks:
                ys, xs = np.nonzero(mask)
                box = torch.tensor([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], dtype=torch.float32)
                grown = _grow(box, context / size)
                guide = roi_align(image, [grown], (full, full), 1.0, 2)
                box_mask = roi_box_masks(grown, box, full)
                truth = roi_align(torch.from_numpy(mask.astype(np.float32))[None, None], [grown], (full, full),
                                  1.0, 2)[0, 0] > 0.5
                global_target, local_target = propagation_targets(box_mask.clone(), guide, box_mask, chosen)
                inside = box_mask[0] > 0
                obj, background = inside & truth, inside & ~truth
                if obj.sum() < 5 or background.sum() < 5:
                    continue
                for name, target in (("gp", global_target[0]), ("lp", local_target[0])):
                    sums[f"{name}_object"].append(target[obj].mean().item())
                    sums[f"{name}_background"].append(target[background].mean().item())
        rows.append({"zeta_image": zeta, "objects": len(sums["gp_object"]),
                     **{name: float(np.mean(values)) for name, values in sums.items()}})
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=str(REPO_ROOT / "data" / "minivoc"))
    parser.add_argument("--iterations", type=int, default=20, help="timed iterations per loss")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", default=str(REPO_ROOT / "results" / "benchmarks" / "apro_loss"))
    parser.add_argument("--signal-images", type=int, default=40,
                        help="images for the target-signal table (0: skip it)")
    parser.add_argument("--signal-zetas", type=float, nargs="+", default=[0.01, 0.03, 0.1])
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    from wsss.data.voc import VOCDataset
    from wsss.io import save_json
    from wsss.retrain.iterative import BatchSchedule
    from wsss.retrain.maskrcnn import BoxSamples

    if not (Path(args.root) / "ImageSets").is_dir():
        print(f"error: {args.root}: no VOC-layout dataset (run the pipeline once, or pass --root)", file=sys.stderr)
        return 2
    samples = BoxSamples(VOCDataset(args.root, "train"), seed=args.seed)
    batch_size = int(_train_settings().batch_size)
    batches = list(BatchSchedule(len(samples), batch_size, args.iterations + args.warmup, args.seed))
    captured: list = []
    steps = [time_steps("filled_box", samples, batches, args.seed, args.warmup),
             time_steps("apro", samples, batches, args.seed, args.warmup, captured)]
    ops = compare_ops(captured)
    record = {"threads": args.threads, "cpu_count": os.cpu_count(), "batch_size": batch_size, "steps": steps,
              "apro_over_filled_box": steps[1]["seconds_per_iteration"] / steps[0]["seconds_per_iteration"],
              "ops": ops}
    print(f"Mask R-CNN training step (minivoc demo model, batch {batch_size}, {args.threads} threads):")
    for step in steps:
        line = f"  {step['kind']:<10} {step['seconds_per_iteration'] * 1000:8.1f} ms/iteration"
        if "propagation_share" in step:
            line += (f"  (propagation {step['propagation_seconds_per_iteration'] * 1000:.1f} ms = "
                     f"{100 * step['propagation_share']:.1f} % of the step, {step['rois_per_iteration']:.0f} RoIs)")
        print(line)
    print(f"  apro / filled_box: {record['apro_over_filled_box']:.2f}x")
    print("Propagation per training step, kernels against APro's algorithm (same inputs):")
    for op in ops:
        print(f"  {op['op']:<42} {op['kernel_ms']:8.2f} ms vs {op['reference_ms']:8.2f} ms  "
              f"{op['speedup']:6.1f}x  (max |diff| {op['max_abs_diff']:.1e}; {op['roi_sizes']}; {op['reference']})")
    if args.signal_images > 0:
        from wsss.params import BoxMaskLossSettings

        record["signal"] = target_signal(samples.dataset, BoxMaskLossSettings(kind="apro"), args.signal_zetas,
                                         args.signal_images)
        print(f"Targets from a filled-box mask ({args.signal_images} train images; object / background cells "
              "inside the box):")
        for row in record["signal"]:
            print(f"  GP zeta_image {row['zeta_image']:<5} GP {row['gp_object']:.3f} / {row['gp_background']:.3f}"
                  f"   LP {row['lp_object']:.3f} / {row['lp_background']:.3f}   ({row['objects']} objects)")
    save_json(Path(args.out) / "bench.json", record)
    print(f"written: {Path(args.out) / 'bench.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
