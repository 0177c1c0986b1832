"""Stage f: dense-CRF refinement of propagated scores (``keep_seeds``: confident seeds keep their labels).

``workers`` processes run the CRF (pydensecrf2 holds the GIL), results taken in dataset order
(:func:`wsss.parallel.ordered_map`): the outputs are those of ``workers=1``, byte for byte.
"""

from pathlib import Path

from wsss.config import stage_main
from wsss.crf import CRFParams, RefineJob, refine_image
from wsss.parallel import ordered_map, resolve_workers
from wsss.pipeline import LabelStageOutput, fold_of, load_keys, open_shard, prepare, require_dir
from wsss.progress import Progress


@stage_main("refine_crf")
def main(cfg) -> None:
    prepare(cfg)
    dataset, shard = open_shard(cfg)
    workers = resolve_workers(cfg.workers, int(cfg.num_threads), len(dataset.ids))
    scores_dir = require_dir(Path(cfg.scores_dir) / "scores", "propagated scores")
    keys_of = load_keys(cfg.scores_dir)
    seeds_dir = require_dir(cfg.seeds_dir, "seeds folder (keep_seeds)") if cfg.keep_seeds else None
    out = Path(cfg.out_dir)
    output = LabelStageOutput(out, dataset, {"stage": "crf", "crf": True}, fold=fold_of(cfg), shard=shard)
    job = RefineJob(scores_dir, out, keys_of, CRFParams(**cfg.crf), seeds_dir)
    # images are decoded here (the reader's checks, nothing of it sent to the workers), a few ahead of the CRF
    images = ((image_id, dataset.load_image(image_id)) for image_id in dataset.ids)
    results = ordered_map(refine_image, images, workers=workers, context=job, desc="refine_crf")
    for image_id, labels in Progress(results, total=len(dataset.ids), desc="refine_crf", unit="images"):
        output.add(image_id, labels)  # in dataset order: the same metrics and per_image.json as the loop
    output.finish()


if __name__ == "__main__":
    main()
