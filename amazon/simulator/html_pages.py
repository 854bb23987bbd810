"""The simulator's few HTML pages (the Seller Central and Login with Amazon consent pages): one look,
never cached."""

from __future__ import annotations

import html

from werkzeug.wrappers import Response

_STYLE = """body { font: 16px/1.5 system-ui, sans-serif; max-width: 40rem; margin: 3rem auto; padding: 0 1rem;
  color: #0f1111; background: #fff; }
.muted { color: #565959; } fieldset { border: 1px solid #d5d9d9; border-radius: 8px; }
.account, .seller { display: block; padding: .4rem 0; }
button { font: inherit; padding: .5rem 1.2rem; border-radius: 8px; border: 1px solid #fcd200;
  background: #ffd814; cursor: pointer; } button.secondary { background: #fff; border-color: #d5d9d9; }
button:focus-visible { outline: 3px solid #007185; outline-offset: 2px; }"""


def html_page(title: str, body: str, status: int) -> Response:
    """A whole page around `body` (already escaped HTML)."""
    page = (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width">\n'
        f"<title>{html.escape(title)}</title>\n<style>\n{_STYLE}\n</style></head><body>{body}</body></html>"
    )
    response = Response(page, status=status, content_type="text/html; charset=utf-8")
    response.headers["Cache-Control"] = "no-store"
    return response


def redirect(location: str) -> Response:
    response = Response("", status=302)
    response.headers["Location"] = location
    response.headers["Cache-Control"] = "no-store"
    return response
