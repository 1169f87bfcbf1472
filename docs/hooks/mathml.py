"""Equations as MathML, written at build time: no JavaScript and nothing fetched when a page is read.

``pymdownx.arithmatex`` (generic mode) finds ``\\( ... \\)`` and ``$$ ... $$`` in the Markdown and leaves them
as ``<span class="arithmatex">\\(...\\)</span>`` / ``<div class="arithmatex">\\[...\\]</div>``; ``to_mathml``
replaces each with the MathML that ``latex2mathml`` writes, which every current browser renders natively.
"""

from __future__ import annotations

import html
import re

from latex2mathml.converter import convert

_INLINE = re.compile(r'<span class="arithmatex">\\\((.*?)\\\)</span>', re.S)
_BLOCK = re.compile(r'<div class="arithmatex">\\\[(.*?)\\\]</div>', re.S)


def _convert(latex: str, display: str) -> str:
    return convert(html.unescape(latex).strip(), display=display)


def to_mathml(page_html: str) -> str:
    page_html = _BLOCK.sub(lambda m: f'<div class="math">{_convert(m.group(1), "block")}</div>', page_html)
    return _INLINE.sub(lambda m: _convert(m.group(1), "inline"), page_html)
