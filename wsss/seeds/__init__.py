"""Seed (confident partial label) construction, one module per supervision kind."""
