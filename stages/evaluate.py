"""Score a folder of label PNGs (or an instance json) against a dataset split and write metrics.json."""

import json
from pathlib import Path

from wsss.config import stage_main
from wsss.data import open_dataset
from wsss.errors import WsssError
from wsss.evaluation import evaluate_instance_json, evaluate_label_folder
from wsss.io import save_json


@stage_main("evaluate")
def main(cfg) -> None:
    pred = Path(cfg.pred)
    kind = cfg.kind if cfg.kind != "auto" else ("instance" if pred.suffix == ".json" else "semantic")
    if kind not in ("semantic", "instance"):
        raise WsssError(f"kind: {cfg.kind!r} is not auto, semantic or instance")
    dataset = open_dataset(cfg.dataset, cfg.split)
    protocol = {"dataset": cfg.dataset.name, "kind": kind, **dict(cfg.protocol)}
    out = Path(cfg.out_dir)
    if kind == "semantic":
        record, per_image = evaluate_label_folder(dataset, pred, protocol, cfg.allow_missing, cfg.require_gt)
        save_json(out / "per_image.json", per_image)
        headline = f"mIoU {record['miou']:.2f} (precision {record['precision']:.1f}, recall {record['recall']:.1f}, coverage {record['coverage']:.1f})"
    else:
        record = evaluate_instance_json(dataset, pred, protocol, list(cfg.iou_thresholds), cfg.use_07_metric, cfg.require_gt)
        headline = ", ".join(f"{k} {v:.2f}" for k, v in record.items() if isinstance(v, float))
    save_json(out / "metrics.json", record)
    print(f"protocol: {json.dumps(record['protocol'], sort_keys=True)}", flush=True)
    print(f"[evaluate] {headline} over {record['n_images']} images -> {out / 'metrics.json'}", flush=True)


if __name__ == "__main__":
    main()
