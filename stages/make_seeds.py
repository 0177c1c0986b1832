"""Stage c: confident seeds from the supervision (image tags: CAM + dense CRF; points, scribbles, boxes)."""

from pathlib import Path

import numpy as np

from wsss.config import stage_main
from wsss.crf import CRFParams
from wsss.data import open_dataset
from wsss.errors import WsssError
from wsss.io import load_npy, save_json
from wsss.pipeline import LabelStageOutput, load_keys, prepare, require_dir
from wsss.progress import Progress
from wsss.seeds.box import GrabCutReport
from wsss.seeds.image import irn_seeds, psa_seeds
from wsss.seeds.weak import WeakSeedBuilder


@stage_main("make_seeds")
def main(cfg) -> None:
    prepare(cfg)
    if cfg.supervision.name != "image":
        weak_seeds(cfg)
        return
    if cfg.cam != "classifier":
        raise WsssError("cam=none: image-level seeds need the CAMs (CAM-free runs are for point, scribble, box)")
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
