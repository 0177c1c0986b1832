"""Retraining (semantic): DeepLabV3 on the pseudo-labels → ``<out_dir>/model.pt``, val predictions and metrics.

Writes ``model.pt``, ``history.json``, ``predictions/<id>.png`` and
``predictions_crf/<id>.png`` (each with ``metrics.json`` and ``per_image.json``),
``metrics.json`` (without CRF, the CRF record nested under ``"crf"``) and
``metrics_crf.json``, and the training curves (``curves.png``, ``tensorboard/``: loss, learning rate and
the val mIoU). Checkpoints go to ``work_dir`` so an interrupted run resumes.

Several GPUs in one job: ``torchrun --nproc_per_node=N -m stages.train_deeplab <overrides>``
(DDP; rank 0 evaluates and writes).
"""

from pathlib import Path

from omegaconf import OmegaConf

from wsss.config import checkpoint_fingerprint, stage_main
from wsss.crf import CRFParams
from wsss.data import open_dataset
from wsss.io import save_json, save_torch
from wsss.pipeline import fold_of, prepare, require_dir
from wsss.retrain.deeplab import DeepLabSettings, evaluate_deeplab, train_deeplab
from wsss.retrain.iterative import setup_distributed, teardown_distributed
from wsss.training import Checkpointer
from wsss.viz.curves import write_training_curves


@stage_main("train_deeplab")
def main(cfg) -> None:
    device = prepare(cfg)
    ctx, device = setup_distributed(device)
    dataset = open_dataset(cfg.dataset, cfg.split, cfg.supervision.annotations)
    labels_dir = require_dir(cfg.labels_dir, "pseudo-label folder")
    init_trunk = str(require_dir(cfg.classifier_dir, "classifier") / "model.pt") if cfg.model.init_from_classifier else ""
    settings = DeepLabSettings(
        arch=cfg.model.arch, width=cfg.model.width, output_stride=cfg.model.output_stride,
        aspp_rates=tuple(cfg.model.aspp_rates), head_channels=cfg.model.head_channels,
        pretrained=cfg.model.pretrained, init_checkpoint=cfg.model.init_checkpoint, init_trunk=init_trunk,
        **{**OmegaConf.to_container(cfg.train), "scale_range": tuple(cfg.train.scale_range)},
    )
    checkpointer = Checkpointer(cfg.work_dir, checkpoint_fingerprint(cfg))
    model, history = train_deeplab(dataset, labels_dir, settings, cfg.seed, device, checkpointer, ctx,
                                   int(cfg.dataset.num_classes))
    if not ctx.is_main:
        teardown_distributed(ctx)
        return
    out = Path(cfg.out_dir)
    config = OmegaConf.to_container(cfg, resolve=True)
    save_torch(out / "model.pt", {"state_dict": {k: v.cpu() for k, v in model.state_dict().items()},
                                  "config": config, "arch": settings.arch, "width": settings.width,
                                  "output_stride": settings.output_stride,
                                  "aspp_rates": list(settings.aspp_rates),
                                  "head_channels": settings.head_channels, "num_classes": int(cfg.dataset.num_classes)})
    save_json(out / "history.json", history)
    val = open_dataset(cfg.dataset, cfg.eval_split, cfg.supervision.annotations)
    crf = CRFParams(**cfg.crf) if cfg.eval.crf else None
    records = evaluate_deeplab(model, val, out, device, list(cfg.eval.scales), bool(cfg.eval.flip), crf,
                               {"trained_on": str(labels_dir), "supervision": cfg.supervision.name}, fold_of(cfg))
    if records["plain"] is not None:
        save_json(out / "metrics.json", {**records["plain"], "crf": records["crf"]})
    if records["crf"] is not None:
        save_json(out / "metrics_crf.json", records["crf"])
        print(f"[train_deeplab] val mIoU {records['plain']['miou']:.2f}, with CRF {records['crf']['miou']:.2f}", flush=True)
    scores = {"miou": (records["plain"] or {}).get("miou"), "miou_crf": (records["crf"] or {}).get("miou")}
    write_training_curves(out, history, final=scores,
                          title=f"train_deeplab · {cfg.dataset.name} ({cfg.eval_split} mIoU at the end)")
    checkpointer.clear()
    teardown_distributed(ctx)


if __name__ == "__main__":
    main()
