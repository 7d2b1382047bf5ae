"""Pixels: colormaps, grids of maps and filters, CAM overlays. Pure functions of arrays;
nothing here writes a file or prints."""
