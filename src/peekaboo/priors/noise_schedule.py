"""The Stable Diffusion noise schedule, shared by every prior so SDS sees identical timesteps."""

import torch


def scaled_linear_alphas_cumprod(
    beta_start: float = 0.00085, beta_end: float = 0.012, num_train_timesteps: int = 1000
) -> torch.Tensor:
    """alphas_cumprod of diffusers' ``scaled_linear`` schedule (SD 1.x/2.x), float32, computed in float64."""
    betas = torch.linspace(beta_start**0.5, beta_end**0.5, num_train_timesteps, dtype=torch.float64) ** 2
    return torch.cumprod(1.0 - betas, dim=0).to(torch.float32)
