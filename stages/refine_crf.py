"""Stage f: dense-CRF refinement of propagated scores (``keep_seeds``: confident seeds keep their labels)."""

from pathlib import Path

import numpy as np

from wsss.config import stage_main
from wsss.crf import CRFParams, crf_from_probs, keep_confident_seeds
from wsss.data import open_dataset
from wsss.io import load_label_png, load_npy, save_npy
from wsss.pipeline import LabelStageOutput, load_keys, prepare, require_dir
from wsss.progress import Progress


@stage_main("refine_crf")
def main(cfg) -> None:
    prepare(cfg)
    dataset = open_dataset(cfg.dataset, cfg.split)
    scores_dir = require_dir(Path(cfg.scores_dir) / "scores", "propagated scores")
    keys_of = load_keys(cfg.scores_dir)
    crf = CRFParams(**cfg.crf)
    seeds_dir = require_dir(cfg.seeds_dir, "seeds folder (keep_seeds)") if cfg.keep_seeds else None
    out = Path(cfg.out_dir)
    output = LabelStageOutput(out, dataset, {"stage": "crf", "crf": True})
    for image_id in Progress(dataset.ids, desc="refine_crf", unit="images"):
        image = dataset.load_image(image_id)
        scores = load_npy(scores_dir / f"{image_id}.npy").astype(np.float32)
        refined = crf_from_probs(image, scores, crf)
        save_npy(out / "scores" / f"{image_id}.npy", refined.astype(np.float16))
        lookup = np.concatenate([[0], keys_of[image_id]]).astype(np.uint8)
        labels = lookup[refined.argmax(axis=0)]
        if seeds_dir is not None:
            labels = keep_confident_seeds(labels, load_label_png(seeds_dir / f"{image_id}.png"), f"{seeds_dir}/{image_id}.png")
        output.add(image_id, labels)
    output.finish()


if __name__ == "__main__":
    main()
