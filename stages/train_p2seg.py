"""P2Seg: the instance network trained from points + semantic pseudo-labels → ``<out_dir>/model.pt`` and its own
instances scored on ``eval_split``.

Writes ``model.pt``, ``history.json``, the training curves (``curves.png``, ``tensorboard/``) and, where
``eval_split`` has ground-truth instances, ``metrics.json`` (``ap50``, ``ap75``: VOC mask mAP_r; ``AP``: COCO mask
AP; of one instance per annotated point), ``predictions.json`` and ``gt.json``. Checkpoints go to ``work_dir``
(one folder per round) so an interrupted run resumes. The train split's instances: ``export_instances``
with ``model_dir`` set to this folder.

Several GPUs in one job: ``torchrun --nproc_per_node=N -m stages.train_p2seg <overrides>`` (DDP; rank 0
evaluates and writes).
"""

from pathlib import Path

from omegaconf import OmegaConf

from wsss.config import checkpoint_fingerprint, stage_main
from wsss.data import open_dataset
from wsss.errors import WsssError
from wsss.io import save_json, save_torch
from wsss.p2seg.train import evaluate_p2seg, train_p2seg
from wsss.params import P2SegExportSettings, P2SegModelSettings, P2SegSchedule
from wsss.pipeline import prepare, require_dir
from wsss.retrain.iterative import setup_distributed, teardown_distributed
from wsss.viz.curves import write_training_curves


@stage_main("train_p2seg")
def main(cfg) -> None:
    if cfg.supervision.name != "point":
        raise WsssError(f"supervision.name: train_p2seg learns from points, got '{cfg.supervision.name}'")
    device = prepare(cfg)
    ctx, device = setup_distributed(device)
    dataset = open_dataset(cfg.dataset, cfg.split, cfg.supervision.annotations)
    labels_dir = require_dir(cfg.labels_dir, "semantic pseudo-label folder")
    points_dir = Path(dataset.root) / cfg.supervision.annotations
    model_cfg = OmegaConf.to_container(cfg.model)
    init_trunk = str(require_dir(cfg.classifier_dir, "classifier") / "model.pt") if model_cfg.pop("init_from_classifier") else ""
    model_settings = P2SegModelSettings(**model_cfg, init_trunk=init_trunk)
    settings = P2SegSchedule(**OmegaConf.to_container(cfg.train))
    export = P2SegExportSettings(**OmegaConf.to_container(cfg.export))
    num_classes = int(cfg.dataset.num_classes)
    model, history = train_p2seg(dataset, labels_dir, points_dir, model_settings, settings, int(cfg.seed), device,
                                 cfg.work_dir, checkpoint_fingerprint(cfg), ctx, num_classes)
    if not ctx.is_main:
        teardown_distributed(ctx)
        return
    out = Path(cfg.out_dir)
    save_torch(out / "model.pt", {"state_dict": {k: v.cpu() for k, v in model.state_dict().items()},
                                  "config": OmegaConf.to_container(cfg, resolve=True), "num_classes": num_classes})
    save_json(out / "history.json", history)
    val = open_dataset(cfg.dataset, cfg.eval_split, cfg.supervision.annotations)
    record, scorer = evaluate_p2seg(model, val, Path(val.root) / cfg.supervision.annotations, device, export,
                                    {"trained_on": str(labels_dir), "supervision": cfg.supervision.name})
    if record is not None:
        save_json(out / "predictions.json", scorer.results)
        save_json(out / "gt.json", scorer.ground_truth())
        save_json(out / "metrics.json", record)
        print(f"[train_p2seg] {cfg.eval_split}: mAP50 {record['ap50']:.2f}, mAP75 {record['ap75']:.2f} (VOC mAP_r), "
              f"COCO AP {record['AP']:.2f}", flush=True)
    scores = {key: (record or {}).get(key) for key in ("ap50", "ap75", "AP")}
    write_training_curves(out, history, final=scores,
                          title=f"train_p2seg · {cfg.dataset.name} ({cfg.eval_split} AP at the end)")
    for r in range(settings.refine_rounds + 1):
        from wsss.training import Checkpointer

        Checkpointer(Path(cfg.work_dir) / f"round{r}", checkpoint_fingerprint(cfg)).clear()
    teardown_distributed(ctx)


if __name__ == "__main__":
    main()
