"""HTML panes whose text changes cost the server little.

Panel's :class:`panel.pane.HTML` answers a new ``object`` by deriving every property of its
Bokeh model again, its design's stylesheets included (new stylesheet models each time, about
2-4 ms per change on the development machine), although only the model's ``text`` can change
with it: every other parameter is sent by Panel's own watchers when it changes. The
dashboard sets the text of several panes on every measure change, on the event loop every
session shares.
"""

from __future__ import annotations

from typing import Any

import panel as pn
import param


class TextPane(pn.pane.HTML):
    """:class:`panel.pane.HTML` that sends only the new text when its ``object`` (or how it
    is sanitized) changes; what the browser receives is the same. Its ``html_attributes``
    (those of its element) change without a new layout of the page (unlike its
    ``css_classes``: BokehJS lays the whole page out again for each change of those)."""

    html_attributes = param.Dict(
        default={}, doc="Attributes of the pane's element, e.g. a data- attribute CSS reads"
    )

    def _update(self, ref: str, model: Any) -> None:
        if self.enable_streaming:  # Panel's own update streams the text's new part
            super()._update(ref, model)
            return
        # the text exactly as Panel derives it (escaped, sanitized if asked)
        model.update(**self._process_param_change({"object": self.object}))


__all__ = ["TextPane"]
