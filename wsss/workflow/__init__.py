"""Workflow glue, apart from the algorithms: what Snakemake needs while it plans (recipes, folder layout,
per-job Hydra overrides and fingerprints, the stage rules) and what reads a finished run (status, comparison).

Nothing here imports torch: a dry run must stay cheap.
"""
