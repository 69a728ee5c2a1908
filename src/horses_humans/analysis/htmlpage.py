"""Self-contained HTML pages (inline style, images as data URIs: they open offline) for the report and the
comparison, and the one PNG data-URI helper, which the server's Grad-CAM answers use too.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

STYLE = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse}td,th{padding:.2em .8em;border:1px solid #ddd;text-align:left}
img{max-width:100%;height:auto}p.caption{color:#555}nav a{margin-right:1em}"""


@dataclass
class View:
    """One section of a page: a PNG (None when there is nothing to draw) and what it shows."""

    key: str
    title: str
    caption: str
    png: Path | None = None


def png_data_uri(png: bytes) -> str:
    """PNG bytes as a base64 data URI, so a page (or a JSON answer) carries the image itself."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def sections_html(views: Sequence[View]) -> str:
    """One <section> per view: title, caption and its PNG inline (when it has one)."""
    esc = html.escape
    return "".join(
        f'<section id="{v.key}"><h2>{esc(v.title)}</h2><p class="caption">{esc(v.caption)}</p>'
        + (f'<img alt="{esc(v.title)}" src="{png_data_uri(Path(v.png).read_bytes())}">' if v.png else "")
        + "</section>\n"
        for v in views
    )


def page_html(title: str, heading: str, body: str) -> str:
    """A self-contained HTML page (inline style, no external resources) around an HTML body."""
    esc = html.escape
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
        f"<style>{STYLE}</style></head><body>\n<h1>{esc(heading)}</h1>\n{body}</body></html>\n"
    )


def table_html(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A header row and body rows as an HTML table (text escaped)."""
    esc = html.escape
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"
