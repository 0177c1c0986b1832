"""Stage b: CAMs for every image of the split (full resolution and stride 4) + their scored label maps.

On the CPU, ``workers`` processes of one thread each compute the CAMs (:func:`wsss.parallel.ordered_map`,
results in dataset order; a network this small on one image at a time keeps two processes busier than two
threads of one); on a GPU, one process.
"""

from pathlib import Path

from wsss.cam.inference import CamJob, cam_image
from wsss.config import stage_main
from wsss.data import open_dataset
from wsss.io import save_json
from wsss.parallel import ordered_map, resolve_workers
from wsss.pipeline import LabelStageOutput, prepare
from wsss.progress import Progress


@stage_main("make_cam")
def main(cfg) -> None:
    device = prepare(cfg)
    dataset = open_dataset(cfg.dataset, cfg.split)
    out = Path(cfg.out_dir)
    job = CamJob(Path(cfg.classifier_dir), out, tuple(cfg.scales), bool(cfg.flip), int(cfg.low_stride), float(cfg.bg_threshold),
                 str(device))
    job.model()  # a missing or broken classifier is one error here, before any worker starts
    workers = 1 if device.type != "cpu" else resolve_workers(cfg.workers, int(cfg.num_threads), len(dataset.ids))
    labels = LabelStageOutput(out / "labels", dataset, {"stage": "cam", "crf": False, "bg_threshold": cfg.bg_threshold})
    keys_of: dict[str, list[int]] = {}
    # images are decoded here (the reader's checks), a few ahead of the workers
    items = ((image_id, dataset.load_image(image_id), dataset.image_labels(image_id)) for image_id in dataset.ids)
    results = ordered_map(cam_image, items, workers=workers, context=job, desc="make_cam")
    for image_id, keys, label in Progress(results, total=len(dataset.ids), desc="make_cam", unit="images"):
        keys_of[image_id] = keys.tolist()
        labels.add(image_id, label)
    save_json(out / "keys.json", keys_of)
    labels.finish()


if __name__ == "__main__":
    main()
