"""Stage b: CAMs for every image of the split (full resolution and stride 4) + their scored label maps.

``upsample=superpixel`` (MSA): the stride-16 CAMs reach full resolution through the superpixel network's
association; the label maps of the same CAMs upsampled bilinearly are written and scored beside them
(``bilinear/labels/``), so one run compares the two upsamplings.

On the CPU, ``workers`` processes of one thread each compute the CAMs (:func:`wsss.parallel.ordered_map`,
results in dataset order; a network this small on one image at a time keeps two processes busier than two
threads of one); on a GPU, one process.
"""

from pathlib import Path

from wsss.cam.inference import UPSAMPLING, CamJob, cam_image
from wsss.config import stage_main
from wsss.errors import WsssError
from wsss.io import save_json
from wsss.parallel import ordered_map, resolve_workers
from wsss.pipeline import LabelStageOutput, open_shard, prepare
from wsss.progress import Progress


@stage_main("make_cam")
def main(cfg) -> None:
    device = prepare(cfg)
    dataset, shard = open_shard(cfg)
    out = Path(cfg.out_dir)
    if cfg.upsample not in UPSAMPLING:
        raise WsssError(f"upsample: must be one of {', '.join(UPSAMPLING)}, got '{cfg.upsample}'")
    job = CamJob(Path(cfg.classifier_dir), out, tuple(cfg.scales), bool(cfg.flip), int(cfg.low_stride), float(cfg.bg_threshold),
                 str(device), str(cfg.upsample), Path(cfg.superpixel_dir))
    job.superpixel_net()  # a missing or broken classifier or superpixel net is one error here, before any worker starts
    workers = 1 if device.type != "cpu" else resolve_workers(cfg.workers, int(cfg.num_threads), len(dataset.ids))
    labels = LabelStageOutput(out / "labels", dataset, {"stage": "cam", "crf": False, "bg_threshold": cfg.bg_threshold,
                                                        "upsample": cfg.upsample}, shard=shard)
    # superpixel upsampling: the label maps of the same CAMs upsampled bilinearly, scored beside (bilinear/labels)
    bilinear = (LabelStageOutput(out / "bilinear" / "labels", dataset, {"stage": "cam", "crf": False,
                                 "bg_threshold": cfg.bg_threshold, "upsample": "bilinear"}, shard=shard)
                if cfg.upsample != "bilinear" else None)
    keys_of: dict[str, list[int]] = {}
    # images are decoded here (the reader's checks), a few ahead of the workers
    items = ((image_id, dataset.load_image(image_id), dataset.image_labels(image_id)) for image_id in dataset.ids)
    results = ordered_map(cam_image, items, workers=workers, context=job, desc="make_cam")
    for image_id, keys, label, bilinear_label in Progress(results, total=len(dataset.ids), desc="make_cam", unit="images"):
        keys_of[image_id] = keys.tolist()
        labels.add(image_id, label)
        if bilinear is not None:
            bilinear.add(image_id, bilinear_label)
    save_json(out / "keys.json", keys_of)
    if bilinear is not None:
        bilinear.finish()
    labels.finish()


if __name__ == "__main__":
    main()
