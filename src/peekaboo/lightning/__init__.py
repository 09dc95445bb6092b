"""Lightning glue: the per-item optimisation module, the data module and the prediction writer."""
