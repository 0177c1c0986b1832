"""Stage d: train AffinityNet on seed pairs → ``<out_dir>/model.pt``, ``history.json`` and its training curves
(``curves.png``, ``tensorboard/``)."""

from omegaconf import OmegaConf

from wsss.affinity.training import AffinityTrainConfig, train_affinity
from wsss.config import checkpoint_fingerprint, stage_main
from wsss.data import open_dataset
from wsss.data.cache import DecodeCache
from wsss.io import load_torch, save_json, save_torch
from wsss.pipeline import prepare, require_dir
from wsss.training import Checkpointer
from wsss.viz.curves import write_training_curves


@stage_main("train_affinity")
def main(cfg) -> None:
    device = prepare(cfg)
    dataset = open_dataset(cfg.dataset, cfg.split)
    seeds_dir = require_dir(cfg.seeds_dir, "seeds folder")
    classifier = load_torch(require_dir(cfg.classifier_dir, "classifier") / "model.pt", "classifier",
                            ("config", "state_dict"))
    backbone = classifier["config"]["backbone"]
    settings = AffinityTrainConfig(arch=backbone["arch"], output_stride=backbone["output_stride"], width=backbone["width"],
                                   **cfg.model, **OmegaConf.to_container(cfg.train))
    state = classifier["state_dict"] if cfg.init_from_classifier else None
    checkpointer = Checkpointer(cfg.work_dir, checkpoint_fingerprint(cfg))
    model, history = train_affinity(dataset, seeds_dir, state, settings, cfg.seed, device, checkpointer,
                                    DecodeCache(cfg.decode_cache_mb))
    config = OmegaConf.to_container(cfg, resolve=True)
    save_torch(f"{cfg.out_dir}/model.pt", {"state_dict": model.state_dict(), "config": config,
                                           "backbone": backbone})
    save_json(f"{cfg.out_dir}/history.json", history)
    write_training_curves(cfg.out_dir, history, title=f"train_affinity · {cfg.dataset.name}")
    checkpointer.clear()


if __name__ == "__main__":
    main()
