"""Label propagation from seeds/CAMs: random walk (PSA/IRN); more propagators plug in here."""
