"""The notebook layer: a lab (workers + in-kernel master) driven from Jupyter cells."""

from .lab import FitHandle, Lab

__all__ = ["FitHandle", "Lab"]
