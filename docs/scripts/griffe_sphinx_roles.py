"""Griffe extension for the API reference: the docstrings cross-reference with Sphinx roles
(``:func:`solve```, ``:class:`~tradepolicy.chain.Chain```), which Markdown would show
literally; render each as a code span of the name (the last part after ``~``)."""

from __future__ import annotations

import re
from typing import Any

from griffe import Extension, Object

_ROLE = re.compile(r":(?:py:)?(?:func|class|meth|attr|mod|data|obj|exc|const):`(~?)([^`]+)`")


def _span(match: re.Match[str]) -> str:
    tilde, target = match.groups()
    return f"`{target.rsplit('.', 1)[-1] if tilde else target}`"


class SphinxRoles(Extension):
    def on_object(self, *, obj: Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _ROLE.sub(_span, obj.docstring.value)
