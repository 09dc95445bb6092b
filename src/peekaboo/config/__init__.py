"""Typed configuration: schemas registered in Hydra's ConfigStore, validation, and building objects."""
