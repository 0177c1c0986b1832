"""Step 3 of the image-level pipeline (and of the weak ones with ``train_affinity``): AffinityNet.

* :mod:`wsss.affinity.model`: the network (:class:`~wsss.affinity.model.AffinityNet`);
* :mod:`wsss.affinity.training`: affinity labels from seeds, PSA's loss, training (stage ``train_affinity``);
* :mod:`wsss.affinity.inference`: pair affinities of an image and loading a trained net (random walk, propagation).
"""
