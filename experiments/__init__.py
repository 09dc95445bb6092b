"""Regenerating the paper's tables and figures: renderers run by `render` entries of conf/experiment/ presets."""
