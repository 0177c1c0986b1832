# Named targets: for every dataset (conf/dataset/, named folders) and supervision,
#   {dataset}_{supervision}_{product}            the supervision's default recipe (conf/supervision/<name>.yaml)
#   {dataset}_{supervision}_{recipe}_{product}   any recipe that applies (conf/recipe/<name>.yaml)
#   {dataset}_{supervision}_compare              every recipe that applies, side by side
# with product one of pseudolabels, gallery, deeplab, maskrcnn (a recipe reading another's labels, p2seg: maskrcnn). A recipe that does not apply, or an
# unknown one, ends the plan in one line that lists the valid recipes.

from wsss.workflow.plan import PRODUCTS, planned_recipe, requested_targets
from wsss.workflow.recipes import recipes_for

for _dataset in plan.datasets:
    for _supervision in ("image", "point", "scribble", "box", "weakshot"):
        _recipes = recipes_for(_supervision)
        for _product in PRODUCTS:
            _default = planned_recipe(_supervision).name
            rule:
                name: f"{_dataset}_{_supervision}_{_product}"
                input: f"{plan.results}/{_dataset}/{_supervision}/{_default}/{_product}"
                default_target: _dataset == "minivoc" and _supervision == "image" and _product == "pseudolabels"
            for _recipe in _recipes:
                if _product not in _recipe.products:
                    continue
                rule:
                    name: f"{_dataset}_{_supervision}_{_recipe.name}_{_product}"
                    input: f"{plan.results}/{_dataset}/{_supervision}/{_recipe.name}/{_product}"
        rule:
            name: f"{_dataset}_{_supervision}_compare"
            input: f"{plan.results}/{_dataset}/{_supervision}/compare"

plan.check_targets(requested_targets(workflow), {rule.name for rule in workflow.rules})
