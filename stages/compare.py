"""Stage: every recipe of a supervision side by side (table, chart, side-by-side gallery); see conf/compare.yaml."""

from pathlib import Path

from wsss.config import stage_main
from wsss.data import open_dataset
from wsss.errors import WsssError
from wsss.io import atomic_path, save_json
from wsss.pipeline import fold_of
from wsss.viz.chart import comparison_chart
from wsss.viz.gallery import GallerySettings, build_gallery
from wsss.viz.stages import LabelStage, load_metrics, load_per_image
from wsss.workflow.compare import comparison_table, table_markdown, training_curves
from wsss.workflow.layout import chain_folders
from wsss.workflow.recipes import label_recipes_for, resolve_recipe


@stage_main("compare")
def main(cfg) -> None:
    supervision = cfg.supervision.name
    recipes = [resolve_recipe(supervision, name) for name in cfg.recipes] or label_recipes_for(supervision)
    results = Path(cfg.paths.results)
    out = Path(cfg.out_dir)
    table = comparison_table(results, cfg.logs_dir, cfg.dataset.name, supervision, recipes, fold_of(cfg))
    missing = [row["name"] for row in table["recipes"] if row["final"]["miou"] is None]
    if missing:
        raise WsssError(f"{results / cfg.dataset.name / supervision}: no pseudo-label metrics for recipe(s) "
                        f"{', '.join(missing)} (run them first: snakemake {cfg.dataset.name}_{supervision}_<recipe>_pseudolabels)")
    save_json(out / "table.json", table)
    with atomic_path(out / "table.md") as temporary:
        temporary.write_text(table_markdown(table))
    dataset = open_dataset(cfg.dataset, cfg.split)
    comparison_chart(out / "chart.png", {row["name"]: row["final"]["miou"] for row in table["recipes"]},
                     {row["name"]: row["per_class_iou"] for row in table["recipes"]}, list(dataset.class_names),
                     title=f"{cfg.dataset.name} / {supervision}: final mIoU per recipe (top) and IoU per class (bottom)")
    stages = []
    for recipe in recipes:
        folder = results / chain_folders(cfg.dataset.name, supervision, recipe)["pseudolabels"]
        stages.append(LabelStage(recipe.name, folder, load_metrics(folder / "metrics.json"),
                                 load_per_image(folder / "per_image.json")))
    settings = GallerySettings(thumb_size=cfg.thumb_size, page_size=cfg.page_size, max_images=cfg.max_images,
                               report_samples=0, pairwise=True,
                               title=f"{cfg.dataset.name} / {supervision} — recipes side by side")
    cam_dir = Path(cfg.cam_dir) if cfg.cam_dir and Path(cfg.cam_dir).is_dir() else None
    build_gallery(dataset, stages, out, cam_dir, settings,
                  {"dataset": cfg.dataset.name, "supervision": supervision, "split": cfg.split,
                   "recipes": ", ".join(r.name for r in recipes)},
                  curves=training_curves(results, cfg.dataset.name, supervision, recipes))
    best = max(table["recipes"], key=lambda row: row["final"]["miou"])
    print(f"[compare] {len(recipes)} recipes; best final mIoU {best['final']['miou']:.2f} ({best['name']})", flush=True)


if __name__ == "__main__":
    main()
