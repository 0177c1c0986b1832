"""Stage: MSA's superpixel network (SCN) learnt without labels on the split's images → ``model.pt``,
``history.json``, curves; then for every image of the split ``assoc/<id>.npy`` (the association Q, uint8),
``labels/<id>.png`` (hard superpixel ids, 16-bit) and ``metrics.json``: boundary recall, undersegmentation error
and ASA of the learned superpixels, the regular grid and SLIC at the same number of superpixels."""

from pathlib import Path

from omegaconf import OmegaConf

from wsss.config import checkpoint_fingerprint, stage_main
from wsss.data import open_dataset
from wsss.data.cache import DecodeCache
from wsss.data.transforms import to_batch
from wsss.io import save_json, save_torch
from wsss.pipeline import prepare
from wsss.progress import Progress
from wsss.superpixel.files import save_assoc, save_superpixel_png
from wsss.superpixel.metrics import (BOUNDARY_TOLERANCE, SuperpixelScorer, grid_cell_count, grid_labels,
                                     hard_labels, slic_labels)
from wsss.superpixel.model import MODEL_FILE, image_assoc
from wsss.superpixel.training import SuperpixelTrainConfig, train_superpixel
from wsss.training import Checkpointer
from wsss.viz.curves import write_training_curves

#: the superpixel maps metrics.json compares, all at the grid's number of cells
METHODS = ("learned", "grid", "slic")


@stage_main("train_superpixel")
def main(cfg) -> None:
    device = prepare(cfg)
    dataset = open_dataset(cfg.dataset, cfg.split)
    train_ids = dataset.ids[:cfg.train_images] if cfg.train_images > 0 else dataset.ids
    settings = SuperpixelTrainConfig(**cfg.model, **cfg.loss, **OmegaConf.to_container(cfg.train))
    checkpointer = Checkpointer(cfg.work_dir, checkpoint_fingerprint(cfg))
    model, history = train_superpixel(dataset, train_ids, settings, cfg.seed, device, checkpointer,
                                      DecodeCache(cfg.decode_cache_mb))
    model.to(device)
    out = Path(cfg.out_dir)
    cell = settings.cell
    scorers = {method: SuperpixelScorer() for method in METHODS}
    for image_id in Progress(dataset.ids, desc="train_superpixel[predict]", unit="images"):
        image = dataset.load_image(image_id)
        height, width = image.shape[:2]
        assoc = image_assoc(model, to_batch(image, device))[0].cpu().numpy()
        stored = save_assoc(out, image_id, assoc)  # the learned superpixels are those of the file
        learned = hard_labels(stored, cell)[:height, :width]
        save_superpixel_png(out, image_id, learned)
        if dataset.has_class_mask(image_id):
            gt = dataset.load_class_mask(image_id)
            scorers["learned"].add(learned, gt)
            scorers["grid"].add(grid_labels(height, width, cell), gt)
            scorers["slic"].add(slic_labels(image, grid_cell_count(height, width, cell), cfg.slic_compactness), gt)
    record = {"methods": {method: scorer.record() for method, scorer in scorers.items()},
              "n_images": len(dataset.ids), "n_train_images": len(train_ids),
              "protocol": {"split": dataset.split, "cell": cell, "boundary_tolerance_px": BOUNDARY_TOLERANCE,
                           "ignore_index": 255, "units": "percent",
                           "count": "the grid's cells; SLIC asked for as many (n_segments)",
                           "slic_compactness": cfg.slic_compactness}}
    save_json(out / "metrics.json", record)
    print("[train_superpixel] " + "; ".join(
        f"{method}: BR {r['boundary_recall']:.1f} UE {r['undersegmentation_error']:.1f} ASA {r['asa']:.1f} "
        f"({r['superpixels_per_image']:.1f} superpixels, {r['boundary_pixels']:.1f} % boundary pixels)" for method, r in record["methods"].items()), flush=True)
    config = OmegaConf.to_container(cfg, resolve=True)
    save_torch(out / MODEL_FILE, {"state_dict": model.cpu().state_dict(), "cell": cell, "width": settings.width,
                                  "config": config})
    save_json(out / "history.json", history)
    write_training_curves(cfg.out_dir, history, title=f"train_superpixel · {cfg.dataset.name}")
    checkpointer.clear()


if __name__ == "__main__":
    main()
