"""The batched per-unit optimisation engine: scenes, objectives, per-unit random streams, the loop."""
