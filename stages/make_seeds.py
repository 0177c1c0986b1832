"""Stage c: confident seeds from the supervision (image tags: CAM + dense CRF)."""

from pathlib import Path

import numpy as np

from wsss.config import stage_main
from wsss.crf import CRFParams
from wsss.data import open_dataset
from wsss.errors import WsssError
from wsss.io import load_npy
from wsss.pipeline import LabelStageOutput, load_keys, prepare, require_dir
from wsss.progress import Progress
from wsss.seeds.image import irn_seeds, psa_seeds


@stage_main("make_seeds")
def main(cfg) -> None:
    prepare(cfg)
    if cfg.supervision.name != "image":
        raise WsssError(f"supervision.name: seeds for '{cfg.supervision.name}' are not available in this stage yet")
    if cfg.image.method not in ("psa", "irn"):
        raise WsssError(f"image.method: must be 'psa' or 'irn', got '{cfg.image.method}'")
    dataset = open_dataset(cfg.dataset, cfg.split)
    cam_dir = require_dir(cfg.cam_dir, "CAM folder")
    keys_of = load_keys(cam_dir)
    crf = CRFParams(**cfg.crf)
    output = LabelStageOutput(Path(cfg.out_dir), dataset, {"stage": "seeds", "crf": True, "method": cfg.image.method})
    for image_id in Progress(dataset.ids, desc="make_seeds", unit="images"):
        image = dataset.load_image(image_id)
        cam = load_npy(cam_dir / "highres" / f"{image_id}.npy").astype(np.float32)
        keys = keys_of[image_id]
        if cfg.image.method == "psa":
            seeds = psa_seeds(image, cam, keys, cfg.image.alpha_low, cfg.image.alpha_high, crf)
        else:
            seeds = irn_seeds(image, cam, keys, cfg.image.fg_threshold, cfg.image.bg_threshold, crf)
        output.add(image_id, seeds)
    output.finish()


if __name__ == "__main__":
    main()
