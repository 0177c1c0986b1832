"""Stage a: train the CAM classifier on image-level labels → ``<out_dir>/model.pt``, ``history.json`` and its
training curves (``curves.png``, ``tensorboard/``). With MSA's parts on (``msa.*``; rule train_classifier_msa,
conf/camnet/msa.yaml) MSA's classifier, on the association of the superpixel network in ``superpixel_dir``."""

from omegaconf import OmegaConf

from wsss.cam.training import ClassifierTrainConfig, train_classifier
from wsss.config import checkpoint_fingerprint, stage_main
from wsss.data import open_dataset
from wsss.data.cache import DecodeCache
from wsss.errors import WsssError
from wsss.params import MSASettings
from wsss.superpixel.model import load_superpixel_net
from wsss.io import save_json, save_torch
from wsss.pipeline import prepare
from wsss.training import Checkpointer
from wsss.viz.curves import write_training_curves


@stage_main("train_classifier")
def main(cfg) -> None:
    device = prepare(cfg)
    dataset = open_dataset(cfg.dataset, cfg.dataset.train_split)
    msa = MSASettings(**OmegaConf.to_container(cfg.msa))
    if msa.enabled and msa.cell != cfg.backbone.output_stride:
        raise WsssError(f"msa.cell: MSA's parts need the superpixel cell ({msa.cell}) to equal backbone.output_stride "
                        f"({cfg.backbone.output_stride})")
    if msa.needs_superpixels and cfg.train.crop % msa.cell:
        raise WsssError(f"train.crop: MSA's DCR and IPC need crops that are a multiple of the superpixel cell "
                        f"({msa.cell}), got {cfg.train.crop}")
    superpixel_net = load_superpixel_net(cfg.superpixel_dir, device) if msa.needs_superpixels else None
    if superpixel_net is not None and superpixel_net.cell != msa.cell:
        raise WsssError(f"{cfg.superpixel_dir}: the superpixel network's cell is {superpixel_net.cell}, msa.cell is {msa.cell}")
    settings = ClassifierTrainConfig(**cfg.backbone, **OmegaConf.to_container(cfg.train), msa=msa)
    val_dataset = open_dataset(cfg.dataset, cfg.val_split) if cfg.val_images > 0 else None
    checkpointer = Checkpointer(cfg.work_dir, checkpoint_fingerprint(cfg))
    model, history = train_classifier(dataset, settings, cfg.seed, device, checkpointer, val_dataset, cfg.val_images,
                                      DecodeCache(cfg.decode_cache_mb), superpixel_net)
    config = OmegaConf.to_container(cfg, resolve=True)
    save_torch(f"{cfg.out_dir}/model.pt", {"state_dict": model.state_dict(), "config": config})
    save_json(f"{cfg.out_dir}/history.json", history)
    validation = [{"epoch": record["epoch"], **record["val"]} for record in history if "val" in record]
    write_training_curves(cfg.out_dir, history, validation, title=f"train_classifier · {cfg.dataset.name}")
    checkpointer.clear()


if __name__ == "__main__":
    main()
