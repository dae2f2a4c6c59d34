"""The live dashboard of a lab, split by job.

* :mod:`.state`: what the master's events, the cluster's fault calls and the status probes
  say, written down as it happens;
* :mod:`.reading`: what the master's records and spans say, read a little at a time;
* :mod:`.views` and :mod:`.replay`: each part of the picture as plain data;
* :mod:`.live` and :mod:`.browser`: the widget the browser draws, and its JavaScript;
* :mod:`.controls` and :mod:`.following`: the buttons, and which master is shown;
* :mod:`.dashboard`: the widget that puts them together and the thread that updates it.
"""

from .dashboard import Dashboard

__all__ = ["Dashboard"]
