"""The toy world: a known image distribution (vocabulary, shapes, scenes) whose exact diffusion prior is
``peekaboo.priors.toy.ToyPrior``, so Peekaboo can be run and checked against ground truth on a CPU."""
