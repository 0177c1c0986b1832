"""Stage g: export the final pseudo-labels (VOC palette PNGs) with their metrics."""

from pathlib import Path

from wsss.config import stage_main
from wsss.errors import WsssError
from wsss.io import load_label_png
from wsss.pipeline import LabelStageOutput, fold_of, open_shard, prepare, require_dir
from wsss.progress import Progress
from wsss.weakshot.folds import read_split


@stage_main("export_pseudolabels")
def main(cfg) -> None:
    prepare(cfg)
    dataset, shard = open_shard(cfg)
    source = require_dir(cfg.source_dir, "final label folder")
    protocol = {"stage": "pseudolabels", "source": str(source), "supervision": cfg.supervision.name}
    ground_truth = None  # weak-shot: the seeds folder, whose base images hold their ground truth
    if cfg.seeds_dir:
        ground_truth = require_dir(cfg.seeds_dir, "weak-shot seeds folder")
        split = read_split(ground_truth)
        protocol["base_images_from"] = str(ground_truth)
    output = LabelStageOutput(Path(cfg.out_dir), dataset, protocol, fold=fold_of(cfg), shard=shard)
    for image_id in Progress(dataset.ids, desc="export_pseudolabels", unit="images"):
        folder = ground_truth if ground_truth is not None and split.is_base(image_id) else source
        label = load_label_png(folder / f"{image_id}.png")
        height, width = dataset.image_size(image_id)
        if label.shape != (height, width):
            raise WsssError(f"{folder / (image_id + '.png')}: size {label.shape[1]}x{label.shape[0]} "
                            f"differs from its image {width}x{height}")
        output.add(image_id, label)
    output.finish()


if __name__ == "__main__":
    main()
