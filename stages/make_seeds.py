"""Stage c: confident seeds from the supervision (image tags: CAM + dense CRF; points, scribbles, boxes).

Image tags: ``workers`` processes run the two CRFs of each image (:func:`wsss.parallel.ordered_map`, results in
dataset order): the outputs are those of ``workers=1``, byte for byte.
"""

from pathlib import Path

import numpy as np

from wsss.config import stage_main
from wsss.crf import CRFParams
from wsss.errors import WsssError
from wsss.io import load_npy, save_json
from wsss.parallel import ordered_map, resolve_workers
from wsss.pipeline import LabelStageOutput, fold_of, load_keys, open_shard, prepare, require_dir
from wsss.progress import Progress
from wsss.seeds.box import GrabCutReport
from wsss.seeds.image import ImageSeedJob, image_seeds
from wsss.seeds.weak import WeakSeedBuilder
from wsss.shards import split_ids
from wsss.weakshot.folds import check_base_mask, split_images, write_split


@stage_main("make_seeds")
def main(cfg) -> None:
    prepare(cfg)
    if cfg.supervision.name == "weakshot":
        weakshot_seeds(cfg)
        return
    if cfg.supervision.name != "image":
        weak_seeds(cfg)
        return
    dataset, shard = open_shard(cfg)
    output = LabelStageOutput(Path(cfg.out_dir), dataset, {"stage": "seeds", "crf": True, "method": cfg.image.method},
                              shard=shard)
    for image_id, seeds in Progress(tag_seeds(cfg, dataset, dataset.ids), total=len(dataset.ids), desc="make_seeds",
                                    unit="images"):
        output.add(image_id, seeds)
    output.finish()


def tag_seeds(cfg, dataset, image_ids):
    """``(id, seeds)`` of image tags by the seed rule (CAM + dense CRF), for ``image_ids`` in order."""
    if cfg.cam == "none":
        raise WsssError(f"cam=none: {cfg.supervision.name} seeds need the CAMs (CAM-free runs are for point, scribble, box)")
    job = ImageSeedJob(cfg.image.method, cfg.image.alpha_low, cfg.image.alpha_high, cfg.image.fg_threshold,
                       cfg.image.bg_threshold, CRFParams(**cfg.crf))
    workers = resolve_workers(cfg.workers, int(cfg.num_threads), len(image_ids))
    cam_dir = require_dir(cfg.cam_dir, "CAM folder")
    keys_of = load_keys(cam_dir)
    # images and CAMs are read here (the readers' checks), a few ahead of the workers' CRFs
    items = ((image_id, dataset.load_image(image_id),
              load_npy(cam_dir / "highres" / f"{image_id}.npy").astype(np.float32), keys_of[image_id])
             for image_id in image_ids)
    return ordered_map(image_seeds, items, workers=workers, context=job, desc="make_seeds")


def weakshot_seeds(cfg) -> None:
    """Weak-shot: the fold's split of the images (``split.json``, ``split/``, of the whole split also in a shard
    job), ground truth on the base images, the image-tag seed rule on the novel ones."""
    dataset, shard = open_shard(cfg)
    sets = fold_of(cfg)
    split = split_images({image_id: np.flatnonzero(dataset.image_labels(image_id)) + 1
                          for image_id in split_ids(dataset)}, sets)
    out = Path(cfg.out_dir)
    write_split(out, split)
    print(f"[make_seeds[weakshot]] fold {sets.fold}: novel classes {list(sets.novel)}; {len(split.base)} base images "
          f"(ground truth), {len(split.novel)} novel images (tags)", flush=True)
    output = LabelStageOutput(out, dataset, {"stage": "seeds", "crf": True, "method": cfg.image.method,
                                             "supervision": "weakshot"}, fold=sets, shard=shard)
    images = set(dataset.ids)
    novel = iter(tag_seeds(cfg, dataset, [image_id for image_id in split.novel if image_id in images]))
    for image_id in Progress(dataset.ids, desc="make_seeds[weakshot]", unit="images"):
        if split.is_base(image_id):
            # a VOC layout's mask file; a COCO json's masks are its polygons
            path = dataset.class_mask_path(image_id) if hasattr(dataset, "class_mask_path") else f"{dataset}: {image_id}"
            if not dataset.has_class_mask(image_id):
                raise WsssError(f"{path}: a base image (its tags name no novel class of fold {sets.fold}) needs its "
                                f"ground-truth mask")
            seeds = dataset.load_class_mask(image_id)
            check_base_mask(seeds, sets, str(path), dataset.class_names)
        else:
            novel_id, seeds = next(novel)
            assert novel_id == image_id
        output.add(image_id, seeds)
    n_base = sum(split.is_base(image_id) for image_id in dataset.ids)  # counts of the job's images: shards add up
    output.finish({"split": {"n_base_images": n_base, "n_novel_images": len(dataset.ids) - n_base}})


def weak_seeds(cfg) -> None:
    """Points, scribbles, boxes: ``wsss.seeds.weak`` per image (CAM evidence unless ``cam=none``)."""
    kind = cfg.supervision.name
    builder = WeakSeedBuilder.from_config(cfg)
    dataset, shard = open_shard(cfg, annotations=cfg.supervision.annotations if kind == "box" else "Annotations")
    cam_dir = require_dir(cfg.cam_dir, "CAM folder") if builder.uses_cam else None
    keys_of = load_keys(cam_dir) if cam_dir is not None else {}
    output = LabelStageOutput(Path(cfg.out_dir), dataset, {"stage": "seeds", "supervision": kind, "cam": cfg.cam},
                              shard=shard)
    # boxes: every fallback of GrabCut to the filled box is counted by reason (grabcut.json, metrics.json, the
    # log), an OpenCV error also logged as it happens, so a run whose "GrabCut seeds" are mostly boxes shows it
    report = GrabCutReport() if kind == "box" else None
    for image_id in Progress(dataset.ids, desc=f"make_seeds[{kind}]", unit="images"):
        cam = None
        if cam_dir is not None:
            cam = (load_npy(cam_dir / "highres" / f"{image_id}.npy").astype(np.float32), keys_of[image_id])
        output.add(image_id, builder.build(dataset, image_id, cam, report))
    if report is not None:
        save_json(Path(cfg.out_dir) / "grabcut.json", report.as_dict())
        print(f"[make_seeds[box]] {report.summary()}", flush=True)
    output.finish({"grabcut": report.as_dict()} if report is not None else None)


if __name__ == "__main__":
    main()
