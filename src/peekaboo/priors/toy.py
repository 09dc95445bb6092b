"""The toy world's exact diffusion prior: Bayes-optimal noise prediction for a known mixture of images.

For class c = (shape, colour) an image is ``x = m_k f + (1 - m_k) g + n`` per channel, with template
m_k uniform over the shape's grid placements, object colour f ~ N(mu_c, sf^2), plain background colour
g ~ N(0, sg^2) and pixel noise n ~ N(0, sn^2 I). Given x_t = a x_0 + s eps every component is
linear-Gaussian with the rank-2 design B_k = [m_k, 1 - m_k], so its evidence and posterior mean are
closed-form 2x2 algebra on a handful of inner products. Writing P = D^-1 + (a^2/tau^2) B^T B (the colour
posterior precision, so M = (tau^2/a^2) P in the spec's notation), u = B^T r and v = P^-1 u:

    log p(x_t | k) = -1/2 [ (r.r - (a^2/tau^2) u.v) / tau^2 + log det D + log det P + HW log(2 pi tau^2) ]
    E[x_0 | x_t, k] = c x_t + alpha_k m_k + beta_k,  c = a sn^2 / tau^2,
    alpha_k = (s^2/tau^2) (mu_c + (a/tau^2)(v_1 - v_2)),  beta_k = (s^2/tau^2) (a/tau^2) v_2,

summed over the three channels (log det D + log det P = the spec's logdet(I + a^2 D B^T B / tau^2); the
2 pi constant makes it a true density). Colours only shift scalars (r = x_t - a mu_c m_k), so all classes
of a step share the two matmuls with the (K x HW) template matrix: m_k . x_t, and (weights * alpha) @ masks.

Precision: the matmuls run in ``dtype`` (float32), the small (N x 3 x K and N x colours x K) algebra in float64.
Log-evidences are differences of terms of order HW / tau^2 ~ 1e5 at low t; all-float32 algebra erred by
0.03 nats at t = 20 (0.13 at t = 1) and left absolute evidences (~ -3000) with 2e-4 rounding, so class
mixtures were only consistent to ~4e-5. A guided prediction (algebra and both template products) takes about
0.7 ms for one image and 1.9 ms for eight on a 2-core CPU.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch

from peekaboo.priors.base import DiffusionPrior, LatentDistribution, per_sample_scale
from peekaboo.priors.noise_schedule import scaled_linear_alphas_cumprod
from peekaboo.toy.shapes import rasterize, template_grid
from peekaboo.toy.vocabulary import CLASSES, COLOURS, SHAPES, ToyDistribution, colour_mean, parse_prompt

NEGLIGIBLE_COEF = 1e-30  # template coefficients below this are 0 (see _mix)


class _Components(NamedTuple):
    """What ``ToyPrior._components`` derives from x_t once per call (float64): the component log-evidences,
    the factors of the posterior mean, and the noise schedule at the samples' timesteps."""

    log_ev: torch.Tensor  # (N, colour, K)
    v0: torch.Tensor  # (N, channel, K); alpha = shrink (mu + gain (v0 + a mu v1))
    v1: torch.Tensor  # (N, 1, K)
    w0: torch.Tensor  # (N, channel, K); beta = shrink gain (w0 + a mu w1)
    w1: torch.Tensor  # (N, 1, K)
    shrink: torch.Tensor  # (N, 1, 1): s^2 / tau^2
    gain: torch.Tensor  # (N, 1, 1): a / tau^2
    a: torch.Tensor  # (N, 1, 1): sqrt(abar)
    s2: torch.Tensor  # (N, 1, 1): 1 - abar
    c: torch.Tensor  # (N,): the weight of x_t in the posterior mean


class ToyPrior(DiffusionPrior):
    """Exact epsilon-prediction for the toy world; embeddings are class-prior weights (N, n_classes).

    Templates: every shape at ``template_grid(size, template_sizes, template_stride)`` (default 366 per
    shape at 32x32, K = 1098); ``templates`` is (K, HW), shape-major, and class ``ToyClass.index`` uses
    the placements ``[shape * Kc, (shape + 1) * Kc)``. ``dtype`` (inputs, outputs, templates) float64 exists
    for exact reference checks.
    """

    def __init__(
        self,
        size: int = 32,
        sf: float = ToyDistribution.sf,
        sg: float = ToyDistribution.sg,
        sn: float = ToyDistribution.sn,
        colour_scale: float = ToyDistribution.colour_scale,
        template_sizes: tuple[float, ...] | None = None,
        template_stride: float | None = None,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ):
        self.resolution = size
        self.latent_shape = (3, size, size)
        self.dtype = dtype
        self.sf, self.sg, self.sn = sf, sg, sn
        self.grid = template_grid(size, template_sizes, template_stride)
        masks = np.concatenate([rasterize(shape, *self.grid.T, size, size) for shape in SHAPES])
        flat = torch.from_numpy(masks.reshape(len(masks), -1)).double()
        self.templates = flat.to(dtype)
        # (HW, K) copy. For one to three images MKL's product with a transposed right operand is the faster one,
        # so both template products take that form; from four images the product x_t @ templates_t is faster,
        # since both products then read the same copy (the other one is out of cache by then).
        self.templates_t = self.templates.T.contiguous()
        self.mask_sum, self.mask_sq = flat.sum(1), (flat**2).sum(1)
        self.colour_means = torch.tensor([colour_mean(c, colour_scale) for c in COLOURS], dtype=torch.float64)
        self.alphas_cumprod = scaled_linear_alphas_cumprod()
        self.to(device)

    @property
    def n_classes(self) -> int:
        return len(CLASSES)

    @property
    def templates_per_class(self) -> int:
        return len(self.grid)

    def to(self, device: torch.device | str) -> ToyPrior:
        super().to(device)
        for name in ("templates", "templates_t", "mask_sum", "mask_sq", "colour_means"):
            setattr(self, name, getattr(self, name).to(self.device))
        return self

    def encode(self, images: torch.Tensor) -> LatentDistribution:
        """Identity "VAE": latents are the image in [-1, 1]."""
        return LatentDistribution(mean=2 * images - 1)

    def embed_prompts(self, prompts: list[str]) -> torch.Tensor:
        """Class-prior weights: one-hot for '<colour> <shape>', uniform over a bare shape's colours,
        uniform over all classes for '' (the unconditional branch). Unknown prompts raise DataError."""
        weights = torch.zeros(len(prompts), self.n_classes, dtype=self.dtype)
        for row, prompt in enumerate(prompts):
            classes = CLASSES if not prompt.strip() else parse_prompt(prompt)
            weights[row, [cls.index for cls in classes]] = 1.0 / len(classes)
        return weights.to(self.device)

    def predict_noise(self, noisy: torch.Tensor, timesteps: torch.Tensor, embeddings: torch.Tensor) -> torch.Tensor:
        components = self._components(noisy, timesteps)
        return self._epsilon(noisy, components, self._mix(components, noisy, embeddings[None])[0])

    def predict_noise_cfg(
        self,
        noisy: torch.Tensor,
        timesteps: torch.Tensor,
        uncond: torch.Tensor,
        cond: torch.Tensor,
        guidance_scale: float | torch.Tensor,
    ) -> torch.Tensor:
        """Both branches from one evaluation of the components (only the class prior differs between them). The
        posterior mean is linear in the template coefficients, so the guided mixture of the two is taken before
        the one matrix product with the templates (half the product of two separate predictions)."""
        components = self._components(noisy, timesteps)
        x0 = self._mix(components, noisy, torch.stack([uncond, cond]), guidance_scale)
        return self._epsilon(noisy, components, x0[0])

    def _epsilon(self, noisy: torch.Tensor, components: _Components, x0: torch.Tensor) -> torch.Tensor:
        a, s2 = (v.to(self.dtype)[..., None] for v in (components.a, components.s2))
        return (noisy.to(self.device, self.dtype) - a * x0) / s2.sqrt()

    def predict_x0(self, noisy: torch.Tensor, timesteps: torch.Tensor, embeddings: torch.Tensor) -> torch.Tensor:
        """E[x_0 | x_t] under the mixture whose class prior is ``embeddings`` (N, n_classes)."""
        return self._mix(self._components(noisy, timesteps), noisy, embeddings[None])[0]

    def _mix(
        self,
        components: _Components,
        noisy: torch.Tensor,
        embeddings: torch.Tensor,
        guidance_scale: float | torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Posterior means (B, N, 3, H, W) from the components (``_components``) and B class priors (B, N, classes);
        with ``guidance_scale`` and B = 2 (uncond, cond), the guided mean ``x_u + scale (x_c - x_u)`` (1, N, ...).

        The colour-weighted sums of alpha and beta are taken factor by factor (``_components``): only the
        weights' colour sums (B, N, K) and colour-mean moments (B, N, channel, K) are formed."""
        log_ev, v0, v1, w0, w1, shrink, gain, a, _, c = components
        n, n_shapes, n_colours, kc = len(noisy), len(SHAPES), len(COLOURS), self.templates_per_class
        b = len(embeddings)
        # Class priors (B, N, shape x colour) in log_ev's (colour, shape-major K) layout, uniform over placements.
        log_prior = embeddings.to(self.device, torch.float64).log().view(b, n, n_shapes, n_colours).transpose(2, 3)
        logits = log_ev.view(1, n, n_colours, n_shapes, kc) + (log_prior[..., None] - math.log(kc))
        weights = torch.softmax(logits.reshape(b, n, -1), dim=-1).view(b, n, n_colours, -1)  # (B, N, colour, K)
        if guidance_scale is not None:  # x0 is linear in the weights: mix them, and form what follows once
            weights = torch.lerp(weights[:1], weights[1:], per_sample_scale(guidance_scale, weights, sample_dim=1))
        total = weights.sum(2, keepdim=True)  # (B, N, 1, K)
        moment = self.colour_means.T @ weights  # sum_colour w mu: (B, N, channel, K)
        # coef = sum_colour w alpha = shrink * (gain * v0 * total + (1 + a * gain * v1) * moment), the scalars
        # folded into the (B, N, 1, K) factors first
        coef = torch.addcmul(v0 * (shrink * gain * total), moment, shrink * (1 + a * gain * v1))
        # offset = sum_{colour, K} w beta = shrink * gain * sum_K (w0 * total + a * w1 * moment)
        offset = (shrink * gain)[..., 0] * (
            torch.linalg.vecdot(w0, total, dim=-1) + a[..., 0] * torch.linalg.vecdot(w1, moment, dim=-1)
        )
        # Most components' weights underflow float32 (softmax over 4392 components): casting them would leave
        # subnormals, which made the template product 2x slower on a CPU; below 1e-30 they cannot move x0.
        coef = coef.masked_fill(coef.abs() < NEGLIGIBLE_COEF, 0.0).to(self.dtype)
        flat = noisy.to(self.device, self.dtype).reshape(n, 3, -1)
        x0 = coef @ self.templates_t.T + (c[:, None, None] * flat + offset[..., None]).to(self.dtype)
        return x0.view(len(coef), *noisy.shape)

    def component_log_evidence(self, noisy: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        """log p(x_t | class, template) (N, n_classes, Kc) float64, summed over channels."""
        log_ev = self._components(noisy, timesteps).log_ev
        n, kc = len(noisy), self.templates_per_class
        return log_ev.view(n, len(COLOURS), len(SHAPES), kc).transpose(1, 2).reshape(n, -1, kc)

    def class_log_evidence(self, noisy: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        """log p(x_t | class) (N, n_classes) float64: log-mean-exp over the class's templates."""
        log_ev = self.component_log_evidence(noisy, timesteps)
        return torch.logsumexp(log_ev, dim=2) - math.log(self.templates_per_class)

    def sample(
        self, class_index: int, n: int, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """n clean latents (n, 3, H, W) of class ``class_index`` and their template indices in the class."""
        return self.draw(torch.full((n,), class_index), generator)

    def draw(
        self, classes: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One clean latent per class index in ``classes`` (n,): images (n, 3, H, W) and template indices."""
        n = len(classes)
        shape, colour = classes // len(COLOURS), classes % len(COLOURS)
        kc = self.templates_per_class
        picks = torch.randint(kc, (n,), generator=generator)
        masks = self.templates.cpu()[shape * kc + picks].view(n, 1, self.resolution, self.resolution)
        mu = self.colour_means.cpu()[colour].to(self.dtype).view(n, 3, 1, 1)
        f = mu + self.sf * torch.randn(n, 3, 1, 1, generator=generator, dtype=self.dtype)
        g = self.sg * torch.randn(n, 3, 1, 1, generator=generator, dtype=self.dtype)
        noise = self.sn * torch.randn(n, 3, self.resolution, self.resolution, generator=generator, dtype=self.dtype)
        return (masks * f + (1 - masks) * g + noise).to(self.device), picks.to(self.device)

    def _schedule(self, timesteps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(a, s^2, tau^2) per sample in float64; tau^2 = a^2 sn^2 + s^2, the pixel variance around a B z."""
        abar = self.alphas_cumprod[timesteps.to(self.device)].double()
        a, s2 = abar.sqrt(), 1 - abar
        return a, s2, abar * self.sn**2 + s2

    def _components(self, noisy: torch.Tensor, timesteps: torch.Tensor) -> _Components:
        """Per component: log-evidence (N, colour, K) and the factors of alpha and beta; see ``_Components``.

        Colours enter only through a_mu = a * mu_colour (a scalar per colour and channel), and every per-colour
        quantity is a polynomial in it, so nothing (N, colour, channel, K) is ever formed. With m = m_k . x_t,
        w = sum(x_t) - m, u1 = m - a_mu s, u2 = w - a_mu d (s = |m_k|^2, d = sum(m_k) - s) and
        P^-1 = [[A1, -A2], [-A2, A3]]:
            u1' - u2' = v0 + a_mu v1,  u2' = w0 + a_mu w1  (u' = P^-1 u; alpha = shrink (mu + gain (u1' - u2')),
            beta = shrink gain u2'),  u.v = q0 + a_mu q1 + a_mu^2 q2,  r.r = x.x - 2 a_mu m + a_mu^2 s,
        summed over channels with one (colour x channel) product.
        """
        if noisy.shape[1:] != self.latent_shape:
            raise ValueError(f"toy prior of resolution {self.resolution} got latents of shape {tuple(noisy.shape)}")
        n, hw = len(noisy), self.resolution**2
        x = noisy.to(self.device, self.dtype).reshape(n, 3, hw)
        a, s2, tau2 = (v.view(n, 1, 1) for v in self._schedule(timesteps))
        rho = a**2 / tau2
        # Colour posterior precision P (per sample and template; symmetric 2x2) and P^-1 = [[A1, -A2], [-A2, A3]].
        s_m, s = self.mask_sum, self.mask_sq
        d = s_m - s
        p11 = 1 / self.sf**2 + rho * s  # (N, 1, K)
        p12 = rho * d
        p22 = 1 / self.sg**2 + rho * (hw - 2 * s_m + s)
        det = p11 * p22 - p12**2
        a1, a2, a3 = p22 / det, p12 / det, p11 / det
        # Inner products with x_t: one matmul for m_k . x_t (N, channel, K).
        m = (x @ self.templates_t if n >= 4 else x @ self.templates.T).double()  # see __init__
        x = x.double()
        w = x.sum(2, keepdim=True) - m
        x_sq = (x**2).sum((1, 2))[:, None, None]  # (N, 1, 1)
        # u.v = u1 (A1 u1 - A2 u2) + u2 (A3 u2 - A2 u1) = q0 + a_mu q1 + a_mu^2 q2, with
        #   q0 = A1 m^2 - 2 A2 m w + A3 w^2,  q1 = 2 (m b1 + w w1),  q2 = A1 s^2 - 2 A2 s d + A3 d^2,
        # b1 = A2 d - A1 s and w1 = A2 s - A3 d per (N, 1, K): the per-channel work is a few products with m, w.
        b1, w1 = a2 * d - a1 * s, a2 * s - a3 * d
        q2 = a1 * s**2 - 2 * a2 * s * d + a3 * d**2  # (N, 1, K)
        # log_ev = -1/2 [(r.r - rho u.v) / tau^2 + 3 const]: the colour-free part (q0 summed over channels),
        # the part linear in a_mu (one colour x channel product of -2 m - rho q1, its scale folded into the
        # (N, 1, K) factors of m and w) and the quadratic one, so only three operations touch (N, colour, K).
        mu, mu_sq = self.colour_means, (self.colour_means**2).sum(1)[:, None]  # (colour, channel), (colour, 1)
        const = 2 * math.log(self.sf * self.sg) + det.log() + hw * (2 * math.pi * tau2).log()
        q0 = (
            a1 * torch.linalg.vecdot(m, m, dim=1)[:, None]
            - 2 * a2 * torch.linalg.vecdot(m, w, dim=1)[:, None]
            + a3 * torch.linalg.vecdot(w, w, dim=1)[:, None]
        )  # summed over channels: (N, 1, K)
        base = -0.5 * (x_sq - rho * q0) / tau2 - 1.5 * const  # (N, 1, K)
        scale = a / tau2  # -1/2 a/tau^2 (-2 m - 2 rho (m b1 + w w1)) = scale ((1 + rho b1) m + rho w1 w)
        linear = torch.addcmul(m * (scale * (1 + rho * b1)), w, scale * rho * w1)  # (N, channel, K)
        log_ev = mu @ linear  # (N, colour, K)
        log_ev += base
        log_ev.addcmul_(mu_sq, (-0.5 * a**2 / tau2) * (s - rho * q2))
        v0 = torch.addcmul(m * (a1 + a2), w, -(a2 + a3))
        v1 = (a2 + a3) * d - (a1 + a2) * s
        w0 = torch.addcmul(w * a3, m, -a2)
        return _Components(log_ev, v0, v1, w0, w1, s2 / tau2, a / tau2, a, s2, (a * self.sn**2 / tau2).view(n))
