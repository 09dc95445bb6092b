"""Files: atomic writes, PNG/GIF encoding, overlays and contact sheets."""
