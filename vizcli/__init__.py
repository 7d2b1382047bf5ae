"""vizcli: look inside PyTorch models from the command line.

The package is usable from Python as well: ``vizcli.models.resolve_model``,
``vizcli.images.load_image`` and ``vizcli.summary.summarize`` are the entry points.
Importing :mod:`vizcli` itself is cheap; torch is imported only by the modules that need it.
"""

__version__ = "0.1.0"
