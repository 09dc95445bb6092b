"""Guidance: differentiable scores of composites against prompts (score distillation; CLIP)."""
