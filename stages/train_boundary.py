"""Stage (weak-shot, RETAB): train the boundary network on the base images' ground truth → ``model.pt``,
``history.json``, curves; then every image's boundary map ``<id>.png`` (255 boundary) and ``metrics.json``."""

from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from wsss.config import checkpoint_fingerprint, stage_main
from wsss.data import open_dataset
from wsss.data.cache import DecodeCache
from wsss.errors import WsssError
from wsss.affinity.training import classifier_trunk
from wsss.io import save_json, save_torch
from wsss.pipeline import fold_of, prepare, require_dir
from wsss.progress import Progress
from wsss.training import Checkpointer
from wsss.viz.curves import write_training_curves
from wsss.weakshot.boundary import (BoundaryScorer, BoundaryTrainConfig, predict_boundary, save_boundary,
                                    train_boundary)
from wsss.weakshot.folds import read_split


@stage_main("train_boundary")
def main(cfg) -> None:
    device = prepare(cfg)
    if cfg.supervision.name != "weakshot":
        raise WsssError(f"supervision: train_boundary learns from the base images of weak-shot supervision "
                        f"(supervision=weakshot), got '{cfg.supervision.name}'")
    sets = fold_of(cfg)
    dataset = open_dataset(cfg.dataset, cfg.split)
    seeds_dir = require_dir(cfg.seeds_dir, "weak-shot seeds folder")
    split = read_split(seeds_dir)
    if split.sets != sets:
        raise WsssError(f"{seeds_dir}: its split is fold {split.sets.fold}, but supervision.fold is {sets.fold}")
    if not split.base:
        raise WsssError(f"{seeds_dir / 'split' / 'base.txt'}: no base image (every image's tags name a novel class of "
                        f"fold {sets.fold}): nothing to learn boundaries from")
    backbone, state = classifier_trunk(cfg.classifier_dir, cfg.init_from_classifier)
    settings = BoundaryTrainConfig(arch=backbone["arch"], output_stride=backbone["output_stride"], width=backbone["width"],
                                   **cfg.model, **OmegaConf.to_container(cfg.train))
    checkpointer = Checkpointer(cfg.work_dir, checkpoint_fingerprint(cfg))
    model, history = train_boundary(dataset, seeds_dir, split.base, state, settings, cfg.seed, device, checkpointer,
                                    DecodeCache(cfg.decode_cache_mb))
    model.to(device)
    out = Path(cfg.out_dir)
    scorer = BoundaryScorer(settings.target_width)
    fractions = []
    for image_id in Progress(dataset.ids, desc="train_boundary[predict]", unit="images"):
        boundary = predict_boundary(model, dataset.load_image(image_id), device, cfg.flip) >= cfg.threshold
        save_boundary(out / f"{image_id}.png", boundary)
        fractions.append(float(boundary.mean()))
        if dataset.has_class_mask(image_id):
            scorer.add("base" if split.is_base(image_id) else "novel", boundary, dataset.load_class_mask(image_id))
    record = {"boundary": scorer.record(), "boundary_fraction": 100.0 * float(np.mean(fractions)) if fractions else 0.0,
              "n_base_images": len(split.base), "n_images": len(dataset.ids),
              "protocol": {"split": dataset.split, "threshold": cfg.threshold, "target_width": settings.target_width,
                           **sets.as_dict()}}
    save_json(out / "metrics.json", record)
    groups = record["boundary"]
    print("[train_boundary] " + ", ".join(f"{name}: P {g['precision']:.1f} R {g['recall']:.1f} F {g['f1']:.1f}"
                                          for name, g in groups.items()), flush=True)
    config = OmegaConf.to_container(cfg, resolve=True)
    save_torch(out / "model.pt", {"state_dict": model.cpu().state_dict(), "config": config, "backbone": backbone})
    save_json(out / "history.json", history)
    write_training_curves(cfg.out_dir, history, title=f"train_boundary · {cfg.dataset.name} fold {sets.fold}")
    checkpointer.clear()


if __name__ == "__main__":
    main()
