"""Datasets: each yields ``Item``s with a stable id, a working-resolution image, prompts and optional ground truth."""
