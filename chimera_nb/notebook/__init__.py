"""The notebook layer: a lab (workers + in-kernel master) driven from Jupyter cells, and its
live dashboard."""

from ..masters.running import FitHandle
from .lab import Lab

__all__ = ["FitHandle", "Lab"]
