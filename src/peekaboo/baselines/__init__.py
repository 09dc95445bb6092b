"""Training-free baselines from the same field on the same prior interface: DiffSeg, attention GMM, DAAM."""
