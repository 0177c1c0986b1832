"""Stage d: train AffinityNet on seed pairs → ``<out_dir>/model.pt``, ``history.json`` and its training curves
(``curves.png``, ``tensorboard/``)."""

from omegaconf import OmegaConf

from wsss.affinity.training import AffinityTrainConfig, classifier_trunk, train_affinity
from wsss.config import checkpoint_fingerprint, stage_main
from wsss.data import open_dataset
from wsss.data.cache import DecodeCache
from wsss.io import save_json, save_torch
from wsss.pipeline import prepare, require_dir
from wsss.training import Checkpointer
from wsss.viz.curves import write_training_curves
from wsss.weakshot.boundary import load_boundary
from wsss.weakshot.folds import read_split


@stage_main("train_affinity")
def main(cfg) -> None:
    device = prepare(cfg)
    dataset = open_dataset(cfg.dataset, cfg.split)
    seeds_dir = require_dir(cfg.seeds_dir, "seeds folder")
    backbone, state = classifier_trunk(cfg.classifier_dir, cfg.init_from_classifier)
    settings = AffinityTrainConfig(arch=backbone["arch"], output_stride=backbone["output_stride"], width=backbone["width"],
                                   **cfg.model, **OmegaConf.to_container(cfg.train))
    checkpointer = Checkpointer(cfg.work_dir, checkpoint_fingerprint(cfg))
    ignored = None
    if cfg.boundary_dir:  # weak-shot (RETAB): the novel images' predicted boundaries are left out of the pairs
        boundary_dir = require_dir(cfg.boundary_dir, "boundary folder")
        split = read_split(seeds_dir)
        ignored = lambda image_id: None if split.is_base(image_id) else load_boundary(boundary_dir, image_id)  # noqa: E731
    model, history = train_affinity(dataset, seeds_dir, state, settings, cfg.seed, device, checkpointer,
                                    DecodeCache(cfg.decode_cache_mb), ignored)
    config = OmegaConf.to_container(cfg, resolve=True)
    save_torch(f"{cfg.out_dir}/model.pt", {"state_dict": model.state_dict(), "config": config,
                                           "backbone": backbone})
    save_json(f"{cfg.out_dir}/history.json", history)
    write_training_curves(cfg.out_dir, history, title=f"train_affinity · {cfg.dataset.name}")
    checkpointer.clear()


if __name__ == "__main__":
    main()
