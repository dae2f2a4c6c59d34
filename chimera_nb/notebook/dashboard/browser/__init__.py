"""What runs in the browser: one ES module (anywidget loads it, no build step) and its CSS."""

from .charts import CHARTS_JS
from .style import CSS
from .views import VIEWS_JS

__all__ = ["CSS", "ESM"]

#: The ES module of :class:`~chimera_nb.notebook.dashboard.live.LiveView`.
ESM = CHARTS_JS + VIEWS_JS
