"""Stage b: CAMs for every image of the split (full resolution and stride 4) + their scored label maps."""

from pathlib import Path

import numpy as np

from wsss.cam.inference import cam_to_label, compute_cams, load_classifier
from wsss.config import stage_main
from wsss.data import open_dataset
from wsss.io import save_json, save_npy
from wsss.pipeline import LabelStageOutput, prepare
from wsss.progress import Progress


@stage_main("make_cam")
def main(cfg) -> None:
    device = prepare(cfg)
    dataset = open_dataset(cfg.dataset, cfg.split)
    model = load_classifier(cfg.classifier_dir, device)
    out = Path(cfg.out_dir)
    labels = LabelStageOutput(out / "labels", dataset, {"stage": "cam", "crf": False, "bg_threshold": cfg.bg_threshold})
    keys_of: dict[str, list[int]] = {}
    for image_id in Progress(dataset.ids, desc="make_cam", unit="images"):
        image = dataset.load_image(image_id)
        keys, cam_highres, cam_low = compute_cams(
            model, image, dataset.image_labels(image_id), cfg.scales, cfg.flip, cfg.low_stride, device
        )
        save_npy(out / "highres" / f"{image_id}.npy", cam_highres.astype(np.float16))
        save_npy(out / f"stride{cfg.low_stride}" / f"{image_id}.npy", cam_low.astype(np.float16))
        keys_of[image_id] = keys.tolist()
        labels.add(image_id, cam_to_label(cam_highres, keys, cfg.bg_threshold))
    save_json(out / "keys.json", keys_of)
    labels.finish()


if __name__ == "__main__":
    main()
