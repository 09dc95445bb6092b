"""Guide maps for the bilateral filter: what "similar pixels" means (RGB, depth)."""
