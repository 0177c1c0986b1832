"""Stage c: confident seeds from the supervision (image tags: CAM + dense CRF; points, scribbles, boxes).

Image tags: ``workers`` processes run the two CRFs of each image (:func:`wsss.parallel.ordered_map`, results in
dataset order): the outputs are those of ``workers=1``, byte for byte.
"""

from pathlib import Path

import numpy as np

from wsss.config import stage_main
from wsss.crf import CRFParams
from wsss.data import open_dataset
from wsss.errors import WsssError
from wsss.io import load_npy, save_json
from wsss.parallel import ordered_map, resolve_workers
from wsss.pipeline import LabelStageOutput, load_keys, prepare, require_dir
from wsss.progress import Progress
from wsss.seeds.box import GrabCutReport
from wsss.seeds.image import ImageSeedJob, image_seeds
from wsss.seeds.weak import WeakSeedBuilder


@stage_main("make_seeds")
def main(cfg) -> None:
    prepare(cfg)
    if cfg.supervision.name != "image":
        weak_seeds(cfg)
        return
    if cfg.cam != "classifier":
        raise WsssError("cam=none: image-level seeds need the CAMs (CAM-free runs are for point, scribble, box)")
    job = ImageSeedJob(cfg.image.method, cfg.image.alpha_low, cfg.image.alpha_high, cfg.image.fg_threshold,
                       cfg.image.bg_threshold, CRFParams(**cfg.crf))
    dataset = open_dataset(cfg.dataset, cfg.split)
    workers = resolve_workers(cfg.workers, int(cfg.num_threads), len(dataset.ids))
    cam_dir = require_dir(cfg.cam_dir, "CAM folder")
    keys_of = load_keys(cam_dir)
    output = LabelStageOutput(Path(cfg.out_dir), dataset, {"stage": "seeds", "crf": True, "method": cfg.image.method})
    # images and CAMs are read here (the readers' checks), a few ahead of the workers' CRFs
    items = ((image_id, dataset.load_image(image_id),
              load_npy(cam_dir / "highres" / f"{image_id}.npy").astype(np.float32), keys_of[image_id])
             for image_id in dataset.ids)
    results = ordered_map(image_seeds, items, workers=workers, context=job, desc="make_seeds")
    for image_id, seeds in Progress(results, total=len(dataset.ids), desc="make_seeds", unit="images"):
        output.add(image_id, seeds)
    output.finish()


def weak_seeds(cfg) -> None:
    """Points, scribbles, boxes: ``wsss.seeds.weak`` per image (CAM evidence unless ``cam=none``)."""
    kind = cfg.supervision.name
    builder = WeakSeedBuilder.from_config(cfg)
    dataset = open_dataset(cfg.dataset, cfg.split, annotations=cfg.supervision.annotations if kind == "box" else "Annotations")
    cam_dir = require_dir(cfg.cam_dir, "CAM folder") if builder.uses_cam else None
    keys_of = load_keys(cam_dir) if cam_dir is not None else {}
    output = LabelStageOutput(Path(cfg.out_dir), dataset, {"stage": "seeds", "supervision": kind, "cam": cfg.cam})
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
