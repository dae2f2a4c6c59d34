"""The seed project: Chimera's way of running a cluster, unchanged for the student.

* :mod:`~chimera_nb.seed.settings`: the ``CHIMERA_*`` variables (:class:`ChimeraSettings`,
  :func:`load_settings`), checked before anything starts;
* :mod:`~chimera_nb.seed.project`: the folder layout (:class:`SeedProject`):
  ``chimera_workers/<name>.py`` and ``chimera_train_data/<name>/``;
* :mod:`~chimera_nb.seed.runner`: :func:`run`, which starts the workers with the backend
  ``CHIMERA_BACKEND`` names and serves a master until Ctrl-C.
"""

from .project import SeedProject
from .runner import run
from .settings import ChimeraSettings, load_settings

__all__ = ["ChimeraSettings", "SeedProject", "load_settings", "run"]
