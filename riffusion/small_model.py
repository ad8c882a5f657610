"""The riffusion-small kind's module as model folders name it (``model_index.json``): the package
:mod:`riffusion.small` under its earlier, flat name."""

from riffusion.small import *  # noqa: F401,F403
from riffusion.small import __all__  # noqa: F401
