"""Retraining (instance): Mask R-CNN on the instance pseudo-labels, or on the boxes alone (``mask_loss.kind``
``filled_box`` | ``apro``), → ``<out_dir>/model.pt`` and val metrics.

Writes ``model.pt``, ``history.json``, ``metrics.json`` (``ap50``, ``ap75``: VOC
mask mAP_r; ``AP``: COCO mask AP; ``AP_bbox``; per-class AP50; full COCOeval
summaries) and, with ``eval.save_predictions``, ``predictions.json`` (COCO
results) and ``gt.json`` (the val ground truth as COCO json), and the training curves (``curves.png``,
``tensorboard/``: the losses, learning rate and val mAP). Checkpoints go to
``work_dir`` so an interrupted run resumes.

Several GPUs in one job: ``torchrun --nproc_per_node=N -m stages.train_maskrcnn <overrides>``
(DDP; rank 0 evaluates and writes).
"""

from pathlib import Path

from omegaconf import OmegaConf

from wsss.config import checkpoint_fingerprint, stage_main
from wsss.data import open_dataset
from wsss.errors import WsssError
from wsss.io import load_json, save_json, save_torch
from wsss.pipeline import prepare, require_dir
from wsss.retrain.iterative import setup_distributed, teardown_distributed
from wsss.retrain.maskrcnn import MaskRCNNTrainSettings, evaluate_maskrcnn, train_maskrcnn
from wsss.retrain.maskrcnn_model import MaskRCNNSettings
from wsss.params import BoxMaskLossSettings
from wsss.training import Checkpointer
from wsss.viz.curves import write_training_curves


@stage_main("train_maskrcnn")
def main(cfg) -> None:
    device = prepare(cfg)
    ctx, device = setup_distributed(device)
    mask_loss = BoxMaskLossSettings(**OmegaConf.to_container(cfg.mask_loss))
    if mask_loss.kind == "mask":
        instances_file = require_dir(cfg.instances_dir, "instance pseudo-label folder") / "instances.json"
        coco, trained_on = load_json(instances_file), str(instances_file)
    elif cfg.supervision.name != "box":
        raise WsssError(f"mask_loss.kind: '{mask_loss.kind}' trains from boxes, but supervision is '{cfg.supervision.name}'")
    else:
        coco, trained_on = None, f"{cfg.supervision.name} annotations ({mask_loss.kind} mask loss)"
    dataset = open_dataset(cfg.dataset, cfg.dataset.train_split, cfg.supervision.annotations)
    model_cfg = OmegaConf.to_container(cfg.model)
    init_trunk = str(require_dir(cfg.classifier_dir, "classifier") / "model.pt") if model_cfg.pop("init_from_classifier") else ""
    model_settings = MaskRCNNSettings(**model_cfg, init_trunk=init_trunk)
    settings = MaskRCNNTrainSettings(**OmegaConf.to_container(cfg.train))
    checkpointer = Checkpointer(cfg.work_dir, checkpoint_fingerprint(cfg))
    num_classes = int(cfg.dataset.num_classes)
    model, history = train_maskrcnn(dataset, coco, model_settings, settings, cfg.seed, device, checkpointer, ctx,
                                    num_classes, trained_on, mask_loss=mask_loss)
    if not ctx.is_main:
        teardown_distributed(ctx)
        return
    out = Path(cfg.out_dir)
    save_torch(out / "model.pt", {"state_dict": {k: v.cpu() for k, v in model.state_dict().items()},
                                  "config": OmegaConf.to_container(cfg, resolve=True), "num_classes": num_classes})
    save_json(out / "history.json", history)
    val = open_dataset(cfg.dataset, cfg.eval_split, cfg.supervision.annotations)
    record, scorer = evaluate_maskrcnn(model, val, device, model_settings.min_size_test, cfg.eval.mask_threshold,
                                       {"trained_on": trained_on, "supervision": cfg.supervision.name,
                                        "mask_loss": mask_loss.kind})
    if cfg.eval.save_predictions:
        save_json(out / "predictions.json", scorer.results)
        save_json(out / "gt.json", scorer.ground_truth())
    if record is not None:
        save_json(out / "metrics.json", record)
        print(f"[train_maskrcnn] {cfg.eval_split}: mAP50 {record['ap50']:.2f}, mAP75 {record['ap75']:.2f} (VOC mAP_r), "
              f"COCO AP {record['AP']:.2f} (box AP {record['AP_bbox']:.2f})", flush=True)
    scores = {key: (record or {}).get(key) for key in ("ap50", "ap75", "AP")}
    write_training_curves(out, history, final=scores,
                          title=f"train_maskrcnn · {cfg.dataset.name} ({cfg.eval_split} AP at the end)")
    checkpointer.clear()
    teardown_distributed(ctx)


if __name__ == "__main__":
    main()
