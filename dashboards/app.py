"""The negotiator dashboard as a Panel script: ``panel serve dashboards/app.py``.

The same app is served by ``tradepolicy dashboard``; the logic lives in
:mod:`tradepolicy.dashboard` so notebooks can reuse it.
"""

from tradepolicy.dashboard import create_app

create_app().servable()
