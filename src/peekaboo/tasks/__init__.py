"""Tasks: what a batch of items becomes (a scene to optimise) and what is written for each item."""
