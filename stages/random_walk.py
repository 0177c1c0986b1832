"""Stage e: propagate CAMs by random walk on learned affinities."""

from pathlib import Path

import numpy as np
import torch

from wsss.affinity.inference import infer_affinity, load_affinity_net
from wsss.config import stage_main
from wsss.data import open_dataset
from wsss.errors import WsssError
from wsss.io import load_npy, save_npy
from wsss.pipeline import LabelStageOutput, load_keys, prepare, require_dir
from wsss.progress import Progress
from wsss.propagation.random_walk import RandomWalkParams, cam_at_stride, propagate, upsample_scores


@stage_main("random_walk")
def main(cfg) -> None:
    device = prepare(cfg)
    if cfg.background not in ("power", "constant"):
        raise WsssError(f"background: must be 'power' or 'constant', got '{cfg.background}'")
    if cfg.steps < 1:
        raise WsssError(f"steps: must be a positive number of walk steps, got {cfg.steps}")
    dataset = open_dataset(cfg.dataset, cfg.split)
    cam_dir = require_dir(cfg.cam_dir, "CAM folder")
    keys_of = load_keys(cam_dir)
    model, radius = load_affinity_net(cfg.affinity_dir, device)
    params = RandomWalkParams(radius, cfg.beta, cfg.steps, cfg.background, cfg.alpha, cfg.bg_threshold)
    out = Path(cfg.out_dir)
    output = LabelStageOutput(out, dataset, {"stage": "random_walk", "crf": False, "background": cfg.background})
    for image_id in Progress(dataset.ids, desc="random_walk", unit="images"):
        image = dataset.load_image(image_id)
        height, width = image.shape[:2]
        keys = keys_of[image_id]
        affinity = infer_affinity(model, image, radius, device, cfg.flip)
        low_path = cam_dir / f"stride{model.stride}" / f"{image_id}.npy"
        if low_path.exists():
            cam_low = torch.from_numpy(load_npy(low_path).astype(np.float32))
        else:
            cam_low = cam_at_stride(load_npy(cam_dir / "highres" / f"{image_id}.npy"), model.stride)
        scores = upsample_scores(propagate(cam_low, affinity, params), model.stride, height, width)
        save_npy(out / "scores" / f"{image_id}.npy", scores.astype(np.float16))
        lookup = np.concatenate([[0], keys]).astype(np.uint8)
        output.add(image_id, lookup[scores.argmax(axis=0)])
    output.finish()


if __name__ == "__main__":
    main()
