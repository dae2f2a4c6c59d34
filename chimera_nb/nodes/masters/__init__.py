"""The original's ``chimera.nodes.masters``: the two masters, by their old path."""

from ...masters import AggregationMaster, ParameterServerMaster

__all__ = ["AggregationMaster", "ParameterServerMaster"]
