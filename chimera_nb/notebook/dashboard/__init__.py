"""The live dashboard of a lab, split by job.

* :mod:`.state`: what the master's events, the buttons and the status probes say;
* :mod:`.views` and :mod:`.flowchart_html`: the pictures, as plain functions;
* :mod:`.controls`: the buttons and what each does;
* :mod:`.dashboard`: the widget that puts them together and the thread that redraws it.
"""

from .dashboard import Dashboard

__all__ = ["Dashboard"]
