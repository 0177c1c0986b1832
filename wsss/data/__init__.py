"""Dataset readers. :func:`open_dataset` picks the reader from the ``dataset`` config node."""

from __future__ import annotations

from wsss.errors import WsssError


def open_dataset(dataset_cfg, split: str):
    """Reader for ``split`` of the dataset described by a ``dataset`` config node (see DatasetConfig).

    ``kind: voc`` → :class:`wsss.data.voc.VOCDataset` (VOC 2012, SBD, minivoc, any VOC-layout folder).
    """
    kind = str(dataset_cfg.kind)
    if kind == "voc":
        from wsss.data.voc import VOCDataset

        return VOCDataset(dataset_cfg.root, split, gt_folder=dataset_cfg.gt_folder)
    raise WsssError(f"dataset.kind: unknown dataset kind '{kind}' (expected voc or coco)")
