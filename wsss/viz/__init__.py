"""Inspection of a run: pictures of label maps and CAMs (:mod:`.render`), generic discovery of the
label stages of a run (:mod:`.stages`) and the static HTML gallery plus report figures (:mod:`.gallery`).

The page's HTML template, CSS and JavaScript live in ``wsss/viz/assets/``.
"""
