"""``/r/<token>``: the one-click answer links of inquiry emails.

GET only shows a German confirmation page (mail scanners and link previews follow GET
links, so GET never records anything); the button "Bestätigen" POSTs to the same URL.

Why a click is stored, not recorded at once: ``record_response`` takes the answers for
*all* pending patients of an Anfrage in one go (docs/domain.md §9.1), while a link
answers for one patient. So a confirmed click is stored as a ``LinkKlick`` (one per
Anfrage and patient: a second click for the same patient shows what is noted, it does not
change it) with its ``process_link_klick`` outbox item, and processed right away in the
request (``operations.replies.process_click``; the outbox item repeats that later,
harmlessly). Processing records the answer when every pending patient of the Anfrage has a
click, with all the clicks together (``source="link"``), and marks them ``verarbeitet``;
until then the clicks stay ``neu`` and the page says "Ihre Antwort ist vermerkt" and which
patients are still open. An email reply that answers the Anfrage first retires waiting
clicks (``ignoriert``). A click on an Anfrage that is answered already stores nothing and
shows the recorded outcome for that patient. The clicking address is stored encrypted.

Token problems store nothing: forged -> 401 page, expired -> 406 page (naming the Anfrage
and asking for an email reply), unknown Anfrage or patient -> 404 page, database down ->
503 page.

``/v/<token>``: the three links of a placement email to the patient (docs/domain.md
§11.3), the same GET-confirms / POST-records pattern. The POST goes straight to
``operations.placements.record_placement_outcome`` (source ``link``, actor ``patient``),
which is idempotent: a second click, or another of the three links after an answer,
changes nothing and the page says what is on record. A placement that ended otherwise
(staff, another therapist) answers 409 and stores nothing.
"""

from __future__ import annotations

import logging

import peewee
from flask import Blueprint, Flask, render_template_string, request

from db import database
from db.models import Platzsuche, TherapeutAnfragePatient, Therapeutenanfrage, utcnow
from operations import placements
from operations.errors import OperationError
from operations.replies import (
    is_answered,
    noted_click,
    process_click,
    store_click,
    waiting_clicks,
)
from psymatch import settings
from psymatch.domain import vocab
from psymatch.domain.tokens import (
    ExpiredToken,
    ForgedToken,
    LinkClaim,
    PlacementClaim,
    read_link_token,
    read_placement_token,
)

log = logging.getLogger(__name__)
bp = Blueprint("links", __name__)
PLACEMENT_LABELS = vocab.VERMITTLUNGSERGEBNIS_LABELS

LABELS = {
    "angenommen": "Ja – ich kann den Patienten / die Patientin aufnehmen",
    "abgelehnt_Kapazitaet": "Nein – keine Kapazität",
    "abgelehnt_nicht_geeignet": "Nein – nicht geeignet",
    "abgelehnt_sonstiges": "Nein – sonstiger Grund",
    "in_Sitzungen": "in Sitzungen",
    "nicht_erschienen": "nicht erschienen",
}

_PAGE = """<!DOCTYPE html>
<html lang="de"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{{ title }} – {{ service }}</title>
<style>
body { font-family: Arial, Helvetica, sans-serif; margin: 32px auto; max-width: 40em;
       color: #222; padding: 0 16px; line-height: 1.5; }
.box { border: 1px solid #ccc; border-radius: 6px; padding: 16px; background: #fafafa; }
button { font-size: 1.1em; padding: 8px 24px; cursor: pointer; }
</style></head><body>
<h1>{{ title }}</h1>
{% if claim %}<div class="box">
<p>Anfrage <strong>A{{ claim.anfrage_id }}</strong>,
Patient <strong>{{ claim.patient_id }}</strong></p>
{% if answer_label %}<p>Ihre Antwort: <strong>{{ answer_label }}</strong></p>{% endif %}
</div>{% endif %}
{% for line in lines %}<p>{{ line }}</p>{% endfor %}
{% if confirm %}
<form method="post" action="">
<p><button type="submit">Bestätigen</button></p>
</form>
{% endif %}
<p style="color:#666">{{ service }} · Fragen? Telefon {{ phone }}</p>
</body></html>
"""


def _page(status: int, title: str, lines=(), claim=None, answer=None, confirm=False):
    s = settings.get()
    html = render_template_string(
        _PAGE,
        title=title,
        lines=list(lines),
        claim=claim,
        answer_label=LABELS.get(answer, answer) if answer else None,
        confirm=confirm,
        service=s.SERVICE_NAME,
        phone=s.CONTACT_PHONE,
    )
    response = (html, status, {"Content-Type": "text/html; charset=utf-8"})
    return response


def _claim(token: str) -> LinkClaim | tuple:
    """The claim, or the error page to answer with."""
    try:
        return read_link_token(token, utcnow())
    except ExpiredToken as expired:
        c = expired.claim
        return _page(
            406,
            "Link abgelaufen",
            [
                f"Dieser Antwort-Link für Anfrage A{c.anfrage_id} ist abgelaufen.",
                "Bitte antworten Sie einfach auf unsere E-Mail oder rufen Sie uns an.",
            ],
        )
    except ForgedToken:
        return _page(
            401,
            "Link ungültig",
            [
                "Dieser Link ist nicht gültig. Bitte verwenden Sie den Link aus unserer "
                "E-Mail unverändert oder antworten Sie auf die E-Mail."
            ],
        )


def _context(claim: LinkClaim):
    anfrage = Therapeutenanfrage.by_id(claim.anfrage_id)
    line = None
    if anfrage is not None:
        line = TherapeutAnfragePatient.get_or_none(
            (TherapeutAnfragePatient.therapeutenanfrage == anfrage.id)
            & (TherapeutAnfragePatient.patient == claim.patient_id)
        )
    return anfrage, line


def _waiting(anfrage_id: int) -> list[int]:
    clicked = {click.patient_id for click in waiting_clicks(anfrage_id)}
    return [
        line.patient_id
        for line in TherapeutAnfragePatient.select()
        .where(
            (TherapeutAnfragePatient.therapeutenanfrage == anfrage_id)
            & TherapeutAnfragePatient.status.in_(("anstehend", "keine_antwort"))
        )
        .order_by(TherapeutAnfragePatient.position_in_anfrage)
        if line.patient_id not in clicked
    ]


def _state_page(claim: LinkClaim, anfrage, line, *, just_clicked: bool = False):
    """What is known for this patient: recorded outcome, a noted click, or nothing yet."""
    if is_answered(anfrage):
        outcome = line.antwortergebnis
        lines = [f"Für diese Anfrage ist bereits eine Antwort erfasst (A{anfrage.id})."]
        if outcome:
            lines.append(f"Erfasst für Patient {claim.patient_id}: {LABELS.get(outcome, outcome)}.")
        if just_clicked:
            lines.append("Vielen Dank!")
        elif outcome and outcome != claim.answer:
            lines.append(
                "Wenn sich daran etwas geändert hat, antworten Sie bitte auf unsere E-Mail."
            )
        return _page(200, "Antwort erfasst", lines, claim=claim)
    click = noted_click(claim.anfrage_id, claim.patient_id)
    if click is not None:
        noted = click.answer
        lines = [f"Für Patient {claim.patient_id} ist vermerkt: {LABELS.get(noted, noted)}."]
        if noted != claim.answer and not just_clicked:
            lines.append(
                "Diese Antwort war bereits vermerkt; für Änderungen antworten Sie bitte "
                "auf unsere E-Mail."
            )
        waiting = _waiting(anfrage.id)
        if waiting:
            lines.append(
                "Ihre Antwort wird übernommen, sobald für alle Patienten dieser Anfrage eine "
                "Antwort vorliegt. Noch offen: " + ", ".join(f"Patient {p}" for p in waiting) + "."
            )
        return _page(200, "Ihre Antwort ist vermerkt", lines, claim=claim, answer=noted)
    return None


def _with_database(handler):
    try:
        with database.connection():
            return handler()
    except (peewee.OperationalError, peewee.InterfaceError) as exc:
        log.warning("link page: database unavailable: %s", exc)
        return _page(
            503,
            "Vorübergehend nicht erreichbar",
            ["Bitte versuchen Sie es in einigen Minuten noch einmal."],
        )


def _not_found(claim: LinkClaim):
    return _page(
        404,
        "Anfrage nicht gefunden",
        [f"Zu Anfrage A{claim.anfrage_id} und Patient {claim.patient_id} gibt es keinen Eintrag."],
        claim=claim,
    )


@bp.get("/r/<token>")
def show(token: str):
    claim = _claim(token)
    if not isinstance(claim, LinkClaim):
        return claim

    def handle():
        anfrage, line = _context(claim)
        if line is None:
            return _not_found(claim)
        state = _state_page(claim, anfrage, line)
        if state is not None:
            return state
        return _page(
            200,
            "Antwort bestätigen",
            ["Bitte bestätigen Sie Ihre Antwort mit einem Klick auf „Bestätigen“."],
            claim=claim,
            answer=claim.answer,
            confirm=True,
        )

    return _with_database(handle)


@bp.post("/r/<token>")
def confirm(token: str):
    claim = _claim(token)
    if not isinstance(claim, LinkClaim):
        return claim

    def handle():
        anfrage, line = _context(claim)
        if line is None:
            return _not_found(claim)
        if is_answered(anfrage):
            return _state_page(claim, anfrage, line)
        click, created = store_click(
            anfrage.id, claim.patient_id, claim.answer, request.remote_addr
        )
        if created:
            try:
                process_click(click.id)
            except peewee.OperationalError:
                raise
            except Exception:  # the outbox item processes it later
                log.exception("link click %s: processing failed, left to the worker", click.id)
        anfrage = Therapeutenanfrage.get_by_id(anfrage.id)
        line = TherapeutAnfragePatient.get_by_id(line.id)
        return _state_page(claim, anfrage, line, just_clicked=created)

    return _with_database(handle)


# --- /v/<token>: a placed patient reports on the initial session (docs/domain.md §11.3) ---


def _placement_claim(token: str) -> PlacementClaim | tuple:
    """The claim, or the error page to answer with (nothing is stored either way)."""
    try:
        return read_placement_token(token, utcnow())
    except ExpiredToken:
        return _page(
            406,
            "Link abgelaufen",
            [
                "Dieser Link ist abgelaufen.",
                "Bitte antworten Sie einfach auf unsere E-Mail oder rufen Sie uns an.",
            ],
        )
    except ForgedToken:
        return _page(
            401,
            "Link ungültig",
            [
                "Dieser Link ist nicht gültig. Bitte verwenden Sie den Link aus unserer "
                "E-Mail unverändert oder rufen Sie uns an."
            ],
        )


def _placement_state(claim: PlacementClaim, recorded: str, *, just_recorded: bool):
    lines = [f"Vermerkt: {PLACEMENT_LABELS[recorded]}."]
    if just_recorded:
        lines.append("Vielen Dank für Ihre Rückmeldung!")
        if recorded != vocab.STATTGEFUNDEN:
            lines.append("Wir suchen weiter nach einem Therapieplatz für Sie.")
    elif recorded != claim.outcome:
        lines.append(
            "Es lag bereits eine Rückmeldung vor; Ihr Klick hat nichts geändert. Hat sich "
            "etwas geändert, rufen Sie uns bitte an."
        )
    return _page(200, "Rückmeldung erfasst", lines)


def _placement_closed():
    return _page(
        409,
        "Nicht mehr offen",
        [
            "Zu dieser Vermittlung können wir keine Rückmeldung mehr annehmen. "
            "Bitte rufen Sie uns an."
        ],
    )


def _placement_search(claim: PlacementClaim):
    return Platzsuche.by_id(claim.platzsuche_id)


@bp.get("/v/<token>")
def show_placement(token: str):
    claim = _placement_claim(token)
    if not isinstance(claim, PlacementClaim):
        return claim

    def handle():
        search = _placement_search(claim)
        if search is None:
            return _page(404, "Nicht gefunden", ["Zu diesem Link gibt es keinen Eintrag."])
        recorded = placements.recorded_outcome(search, claim.therapist_id)
        if recorded is not None:
            return _placement_state(claim, recorded, just_recorded=False)
        if search.status != "aktiv" or search.vermittelter_therapeut_id != claim.therapist_id:
            return _placement_closed()
        return _page(
            200,
            "Rückmeldung bestätigen",
            [
                f"Ihre Rückmeldung: {PLACEMENT_LABELS[claim.outcome]}",
                "Bitte bestätigen Sie mit einem Klick auf „Bestätigen“.",
            ],
            confirm=True,
        )

    return _with_database(handle)


@bp.post("/v/<token>")
def confirm_placement(token: str):
    claim = _placement_claim(token)
    if not isinstance(claim, PlacementClaim):
        return claim

    def handle():
        try:
            result = placements.record_placement_outcome(
                claim.platzsuche_id,
                claim.outcome,
                actor="patient",
                source="link",
                therapist_id=claim.therapist_id,
            )
        except OperationError as error:
            if error.code == "PLATZSUCHE_NOT_FOUND":
                return _page(404, "Nicht gefunden", ["Zu diesem Link gibt es keinen Eintrag."])
            return _placement_closed()
        return _placement_state(claim, result["recorded"], just_recorded=result["changed"])

    return _with_database(handle)


def register(app: Flask) -> None:
    if bp.name not in app.blueprints:
        app.register_blueprint(bp)
