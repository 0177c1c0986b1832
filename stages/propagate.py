"""Stage: propagate the seeds of a supervision with the chosen propagator (random_walk | a2gnn | apro)."""

from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from wsss.config import stage_main
from wsss.data import open_dataset
from wsss.data.annotations import load_weak_annotation
from wsss.errors import WsssError
from wsss.io import load_label_png, load_npy, save_json, save_npy
from wsss.pipeline import LabelStageOutput, load_keys, prepare, require_dir
from wsss.progress import Progress
from wsss.propagation.inputs import PropagationInput
from wsss.propagation.run import Propagator
from wsss.seeds.box import class_box_masks
from wsss.seeds.evidence import cam_for_classes


@stage_main("propagate")
def main(cfg) -> None:
    device = prepare(cfg)
    kind = cfg.supervision.name
    if cfg.cam not in ("classifier", "none"):
        raise WsssError(f"cam: must be 'classifier' or 'none', got '{cfg.cam}'")
    use_cam = cfg.cam == "classifier"
    if kind == "image" and not use_cam:
        raise WsssError("cam=none: image-level supervision needs the CAMs (CAM-free runs are for point, scribble, box)")
    node = OmegaConf.to_container(cfg.propagation, resolve=True)
    propagator = Propagator(node, kind, use_cam, cfg.affinity_dir if node["name"] != "apro" else None, device, cfg.seed)
    dataset = open_dataset(cfg.dataset, cfg.split, annotations=cfg.supervision.annotations if kind == "box" else "Annotations")
    seeds_dir = require_dir(cfg.seeds_dir, "seeds folder")
    cam_dir = require_dir(cfg.cam_dir, "CAM folder") if use_cam else None
    cam_keys = load_keys(cam_dir) if cam_dir is not None else {}
    out = Path(cfg.out_dir)
    output = LabelStageOutput(out, dataset, {"stage": node["name"], "crf": False, "supervision": kind, "cam": cfg.cam})
    keys_of: dict[str, list[int]] = {}
    for image_id in Progress(dataset.ids, desc=f"propagate[{node['name']}]", unit="images"):
        image = dataset.load_image(image_id)
        seeds = load_label_png(seeds_dir / f"{image_id}.png")
        if seeds.shape != image.shape[:2]:
            raise WsssError(f"{seeds_dir / (image_id + '.png')}: seeds size {seeds.shape[1]}x{seeds.shape[0]} "
                            f"differs from its image {image.shape[1]}x{image.shape[0]}")
        allowed = None
        if kind == "image":
            keys = cam_keys[image_id]
        else:
            annotation = load_weak_annotation(dataset, kind, cfg.supervision.annotations, image_id)
            keys = annotation.classes()
            if kind == "box":
                allowed = np.concatenate([np.ones((1, *seeds.shape), bool),
                                          class_box_masks(annotation.boxes, keys, seeds.shape)])
        cam = None
        if use_cam:
            cam = cam_for_classes(load_npy(cam_dir / "highres" / f"{image_id}.npy"), cam_keys[image_id], keys)
        data = PropagationInput(image, np.asarray(keys, np.int64), seeds, cam, allowed)
        scores = propagator(data)
        save_npy(out / "scores" / f"{image_id}.npy", scores.astype(np.float16))
        keys_of[image_id] = [int(k) for k in keys]
        output.add(image_id, data.label(scores))
    save_json(out / "keys.json", keys_of)
    output.finish()


if __name__ == "__main__":
    main()
