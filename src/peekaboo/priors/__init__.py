"""Diffusion priors: the frozen text-to-image models that score composites (Stable Diffusion, tiny, toy)."""
