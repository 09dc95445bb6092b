"""Alpha-mask (and image) parametrizations: raster or Fourier-feature fields, optionally bilateral-filtered."""
