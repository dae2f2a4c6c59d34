"""The original Chimera's module paths, so that its published examples run with only the
package renamed: ``from chimera.nodes import ParameterServerMaster`` becomes
``from chimera_nb.nodes import ParameterServerMaster``.

Thin aliases of the kit's own classes (:mod:`chimera_nb.masters`, :mod:`chimera_nb.workers`);
new code imports from ``chimera_nb`` directly.
"""

from ..masters import AggregationMaster, ParameterServerMaster

__all__ = ["AggregationMaster", "ParameterServerMaster"]
