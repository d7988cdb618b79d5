"""``/dev/mail``: read what psymatch sent to the local mail sink (demo mode only).

``register(app)`` adds the pages only in demo mode (``PSYMATCH_MODE=demo``, which
needs the database and PUBLIC_BASE_URL on this machine) and only when ``SMTP_URL``
points at this machine (the demo sink of ``psymatch run``). In production the routes
do not exist, whatever SMTP_URL says.
The pages are read-only: a list (newest first) and one message's text part; its
HTML part is served separately under a sandboxing Content-Security-Policy.
"""

from __future__ import annotations

from flask import Blueprint, Flask, Response, abort, render_template_string

from psymatch import mailsink, settings
from webhooks import mailview

bp = Blueprint("devmail", __name__, url_prefix="/dev/mail")

_HEAD = """<!DOCTYPE html>
<html lang="de"><head><meta charset="utf-8"><title>{{ title }}</title>
<style>
body { font-family: Arial, Helvetica, sans-serif; margin: 24px; color: #222; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #ddd; vertical-align: top; }
pre { white-space: pre-wrap; background: #f6f6f6; padding: 12px; font-size: 14px; }
.meta td:first-child { color: #666; width: 8em; }
</style></head><body>
"""
_FOOT = "</body></html>\n"

_LIST = (
    _HEAD
    + """<h1>Gesendete E-Mails (Demo)</h1>
<p>{{ messages|length }} Nachricht(en) in {{ maildir }}</p>
<table>
<tr><th>Datum</th><th>An</th><th>Betreff</th></tr>
{% for m in messages %}
<tr><td>{{ m.date.strftime('%Y-%m-%d %H:%M:%S %z') }}</td><td>{{ m.to }}</td>
<td><a href="{{ url_for('devmail.show', key=m.key) }}">{{ m.subject }}</a></td></tr>
{% else %}
<tr><td colspan="3">Noch keine E-Mails.</td></tr>
{% endfor %}
</table>
"""
    + _FOOT
)

_SHOW = (
    _HEAD
    + """<p><a href="{{ url_for('devmail.index') }}">&larr; alle E-Mails</a></p>
<h1>{{ m.subject }}</h1>
<table class="meta">
<tr><td>Von</td><td>{{ m.sender }}</td></tr>
<tr><td>An</td><td>{{ m.to }}</td></tr>
<tr><td>Datum</td><td>{{ m.date.strftime('%Y-%m-%d %H:%M:%S %z') }}</td></tr>
{% for name, value in m.headers if name in ('Reply-To', 'Message-ID', 'In-Reply-To') %}
<tr><td>{{ name }}</td><td>{{ value }}</td></tr>
{% endfor %}
</table>
{% if m.html %}
<p><a href="{{ url_for('devmail.show_html', key=m.key) }}">HTML-Fassung</a></p>
{% endif %}
<pre>{{ m.text }}</pre>
"""
    + _FOOT
)


def demo_mode() -> bool:
    """Demo mode with the local mail sink: the only case the pages are served in."""
    s = settings.get()
    return s.demo_mode and mailview.is_local_smtp(s.SMTP_URL)


@bp.get("/")
def index():
    maildir = mailsink.maildir_path()
    messages = mailview.list_messages(maildir)
    return render_template_string(_LIST, title="E-Mails", messages=messages, maildir=maildir)


@bp.get("/<key>")
def show(key: str):
    message = mailview.read_message(mailsink.maildir_path(), key)
    if message is None:
        abort(404)
    return render_template_string(_SHOW, title=message.subject, m=message)


@bp.get("/<key>/html")
def show_html(key: str):
    message = mailview.read_message(mailsink.maildir_path(), key)
    if message is None or message.html is None:
        abort(404)
    response = Response(message.html, mimetype="text/html")
    # The email's HTML runs no script and reaches nothing: a sandboxed document.
    response.headers["Content-Security-Policy"] = (
        "sandbox; default-src 'none'; style-src 'unsafe-inline'"
    )
    return response


def register(app: Flask) -> bool:
    """Serve ``/dev/mail`` on ``app`` when in demo mode; returns whether it did."""
    if not demo_mode():
        return False
    if bp.name not in app.blueprints:  # create_app registers it already
        app.register_blueprint(bp)
    return True
