"""Scoring and reporting a run: metrics, per-item results on disk, post-processing, contact sheets."""
