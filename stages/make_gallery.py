"""Inspection stage: the HTML gallery of every label stage of a run (see :mod:`wsss.viz.gallery`)."""

from pathlib import Path

from wsss.config import stage_main
from wsss.data import open_dataset
from wsss.errors import WsssError
from wsss.viz.curves import curve_label
from wsss.viz.gallery import GallerySettings, build_gallery
from wsss.viz.stages import CAM_BILINEAR_STAGE, bilinear_cam_folder, discover_label_stages


@stage_main("make_gallery")
def main(cfg) -> None:
    dataset = open_dataset(cfg.dataset, cfg.split)
    out = Path(cfg.out_dir)
    if not Path(cfg.stages_dir).is_dir():
        raise WsssError(f"{cfg.stages_dir}: stage folder not found (run the pipeline first)")
    cam_dir = Path(cfg.cam_dir) if cfg.cam_dir and Path(cfg.cam_dir).is_dir() else None
    extra = {"seeds": Path(cfg.seeds_dir)} if cfg.seeds_dir else {}
    # MSA: cam is the superpixel-upsampled CAMs; the same CAMs upsampled bilinearly are shown beside them
    bilinear = bilinear_cam_folder(cam_dir)
    if bilinear is not None:
        extra[CAM_BILINEAR_STAGE] = bilinear
    superpixel_dir = Path(cfg.superpixel_dir) if cfg.superpixel_dir else None
    stages = discover_label_stages(cfg.stages_dir, cam_dir, list(cfg.stage_order), [*cfg.exclude, out],
                                   split=cfg.split, extra=extra)
    if not stages:
        raise WsssError(f"{cfg.stages_dir}: no label stage found (no sub-folder with metrics.json or <id>.png)")
    settings = GallerySettings(
        thumb_size=cfg.thumb_size, jpeg_quality=cfg.jpeg_quality, page_size=cfg.page_size, max_cams=cfg.max_cams,
        max_images=cfg.max_images, report_samples=cfg.report_samples, report_tile=cfg.report_tile,
        title=f"{cfg.dataset.name} / {cfg.supervision.name} / {Path(cfg.stages_dir).name} — every stage",
    )
    meta = {"dataset": cfg.dataset.name, "supervision": cfg.supervision.name, "recipe": Path(cfg.stages_dir).name,
            "split": cfg.split, "stages": ", ".join(s.name for s in stages)}
    # training curves: the recipe's classifier and AffinityNet (when it uses them), upstream of the labels; not
    # the retrained models, which run after the labels (the page would depend on the order jobs ran in)
    trained = [Path(d) for d in (cfg.classifier_dir, cfg.affinity_dir) if d]
    curves = {curve_label(folder, cfg.paths.results): folder for folder in trained}
    build_gallery(dataset, stages, out, cam_dir, settings, meta, curves, superpixel_dir)


if __name__ == "__main__":
    main()
