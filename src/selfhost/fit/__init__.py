"""`selfhost fit`: memory plans exact where the engine is deterministic, with a measured error elsewhere."""
