"""MSA's superpixel network (SCN): the model and its association ``Q`` (:mod:`.model`), its unsupervised loss
(:mod:`.loss`), training (:mod:`.training`), superpixel quality measures (:mod:`.metrics`) and the stage's
per-image files (:mod:`.files`)."""
