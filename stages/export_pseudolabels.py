"""Stage g: export the final pseudo-labels (VOC palette PNGs) with their metrics."""

from pathlib import Path

from wsss.config import stage_main
from wsss.data import open_dataset
from wsss.errors import WsssError
from wsss.io import load_label_png
from wsss.pipeline import LabelStageOutput, prepare, require_dir
from wsss.progress import Progress


@stage_main("export_pseudolabels")
def main(cfg) -> None:
    prepare(cfg)
    dataset = open_dataset(cfg.dataset, cfg.split)
    source = require_dir(cfg.source_dir, "final label folder")
    output = LabelStageOutput(Path(cfg.out_dir), dataset,
                              {"stage": "pseudolabels", "source": str(source), "supervision": cfg.supervision.name})
    for image_id in Progress(dataset.ids, desc="export_pseudolabels", unit="images"):
        label = load_label_png(source / f"{image_id}.png")
        height, width = dataset.image_size(image_id)
        if label.shape != (height, width):
            raise WsssError(f"{source / (image_id + '.png')}: size {label.shape[1]}x{label.shape[0]} "
                            f"differs from its image {width}x{height}")
        output.add(image_id, label)
    output.finish()


if __name__ == "__main__":
    main()
