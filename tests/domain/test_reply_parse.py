"""Focused tests of psymatch.domain.reply_parse and the ``replies parse`` command."""

from __future__ import annotations

import argparse
import json
from email.message import EmailMessage

import pytest

from cli.replies import cmd_parse
from operations.emailing import headers
from psymatch import settings
from psymatch.domain import reply_parse as parse
from psymatch.domain import tokens

A, K, N, S = parse.ANGENOMMEN, parse.KAPAZITAET, parse.NICHT_GEEIGNET, parse.SONSTIGES


@pytest.fixture(autouse=True)
def signing_settings():
    before = settings.get()
    settings.override(SIGNING_KEY="test-key-1", REPLY_DOMAIN="antwort.example.org")
    yield
    settings.override(SIGNING_KEY=before.SIGNING_KEY, REPLY_DOMAIN=before.REPLY_DOMAIN)


def msg(**changes):
    values = dict(subject="Re: Hallo", sender="praxis@example.de", recipients=["x@example.de"])
    values.update(changes)
    return parse.message_from_parts(**values)


# --- identify_anfrage --------------------------------------------------------------------


def test_anfrage_from_reply_address_token():
    message = msg(recipients=[f'"psymatch" <{tokens.reply_address(42).upper()}>'])
    assert parse.identify_anfrage(message) == 42


def test_forged_token_is_ignored_and_falls_back_to_subject():
    forged = "antwort+a42.aaaaaaaaaaaaaaaa@antwort.example.org"
    assert parse.identify_anfrage(msg(recipients=[forged])) is None
    fallback = msg(recipients=[forged], subject="AW: Suche Psychotherapieplätze - Ref: A43")
    assert parse.identify_anfrage(fallback) == 43


def test_anfrage_from_in_reply_to_and_references():
    assert parse.identify_anfrage(msg(in_reply_to=[headers.message_id("anfrage", 7)])) == 7
    refs = ["<other@example.de>", headers.message_id("erinnerung", 8)]
    assert parse.identify_anfrage(msg(references=refs)) == 8
    foreign = "<anfrage-9.anfrage@evil.example>"
    assert parse.identify_anfrage(msg(in_reply_to=[foreign])) is None


def test_only_a_reply_address_or_a_signed_message_id_is_proof():
    signed = parse.locate_anfrage(msg(in_reply_to=[headers.message_id("anfrage", 7)]))
    assert (signed.anfrage_id, signed.via, signed.signed) == (7, "message_id", True)
    token = parse.locate_anfrage(msg(recipients=[tokens.reply_address(42)]))
    assert (token.anfrage_id, token.via, token.signed) == (42, "antwortadresse", True)
    # an unsigned id of earlier versions is guessable: recognised, but no proof
    legacy = parse.locate_anfrage(msg(in_reply_to=["<anfrage-2.anfrage@antwort.example.org>"]))
    assert (legacy.anfrage_id, legacy.via, legacy.signed) == (2, "message_id_unsigniert", False)
    forged = headers.message_id("anfrage", 2).replace("<anfrage-2.", "<anfrage-3.")
    assert tokens.parse_message_id(forged) is None
    subject = parse.locate_anfrage(msg(subject="AW: Ref: A2"))
    assert (subject.anfrage_id, subject.via, subject.signed) == (2, "betreff", False)


@pytest.mark.parametrize(
    "subject,expected",
    [
        ("AW: Suche Psychotherapieplätze - Ref: A4711", 4711),
        ("Re: Ref A12", 12),
        ("WG: Anfrage A99", 99),
        ("Re: A1 und A2", None),
        ("Termin", None),
    ],
)
def test_anfrage_from_subject(subject, expected):
    assert parse.identify_anfrage(msg(subject=subject)) == expected


# --- auto replies ---------------------------------------------------------------------------


def test_auto_reply_detection():
    assert parse.is_auto_reply(msg(headers={"Auto-Submitted": "auto-replied"})).startswith(
        "Auto-Submitted"
    )
    assert parse.is_auto_reply(msg(headers={"Auto-Submitted": "no"}, text="Ja gerne")) is None
    assert parse.is_auto_reply(msg(subject="Abwesenheitsnotiz: Ref: A1"))
    assert parse.is_auto_reply(msg(subject="Automatic reply: Ref: A1"))
    assert parse.is_auto_reply(msg(headers={"X-Autoreply": "yes"}))
    assert parse.is_auto_reply(msg(sender="MAILER-DAEMON@mx.example.de"))
    assert parse.is_auto_reply(msg(text="Ich bin bis zum 3.9. nicht in der Praxis."))
    human = msg(text="Leider keine Kapazität, ich bin bis Oktober im Urlaub.")
    assert parse.is_auto_reply(human) is None
    decision = parse.understand(msg(headers={"Auto-Submitted": "auto-replied"}), [1, 2])
    assert decision == parse.Decision({}, False, "auto-reply: Auto-Submitted: auto-replied")


# --- quote stripping ------------------------------------------------------------------------

QUOTED = """Patient 2 gerne.

Viele Grüße
Dr. X
Tel. 030 123 456

Am Di., 19. Aug. 2025 um 09:12 Uhr schrieb psymatch <anfragen@psymatch.de>:
> 1) Patient 123
>    Antwort mit einem Klick:
>      Ja, ich kann ein Erstgespräch anbieten:
"""


@pytest.mark.parametrize(
    "separator",
    [
        "Am 19.08.25 um 09:12 schrieb psymatch:",
        "-----Ursprüngliche Nachricht-----",
        "-----Original Message-----",
        "On Tue, Aug 19, 2025 at 9:12 AM psymatch <a@b.de> wrote:",
        "Von: psymatch <a@b.de>\nGesendet: Dienstag, 19. August 2025\nAn: x@y.de\nBetreff: Ref",
        "---------- Forwarded message ---------",
        "-- ",
        "Mit freundlichen Grüßen",
    ],
)
def test_strip_quoted_cuts_at_every_kind_of_separator(separator):
    text = f"Leider nein.\n\n{separator}\nJa, alle drei gerne!\n"
    assert parse.strip_quoted(text) == "Leider nein."


def test_strip_quoted_removes_quote_lines_and_signature_and_is_idempotent():
    once = parse.strip_quoted(QUOTED)
    assert once == "Patient 2 gerne."
    assert parse.strip_quoted(once) == once


def test_signature_digits_are_not_patient_references():
    text = "Leider keine Kapazität.\nPraxis Dr. Y\nTel. 030 123 456\n"
    assert parse.decide(text, [123, 456]).decisions == {123: K, 456: K}
    inline = "Ich habe leider keinen Platz, rufen Sie gern Frau Z an (Tel. 030 123 456)."
    assert parse.decide(inline, [123, 456]).decisions == {123: K, 456: K}


def test_quoted_inquiry_is_not_read_as_answers():
    decision = parse.decide(QUOTED, [123, 456])
    # patient 2 of [123, 456] is 456; 123 is not mentioned: declined (domain §0.14)
    assert decision.decisions == {123: K, 456: A}
    assert parse.decide(QUOTED, [2]).decisions == {2: A}


# --- decide -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text,ids,expected",
    [
        ("Leider habe ich derzeit keine freien Plätze.", [11, 22], {11: K, 22: K}),
        ("Patient 2 gerne, die anderen leider nicht.", [11, 22, 33], {11: S, 22: A, 33: S}),
        ("#22 gerne, #11 passt nicht zu meinem Schwerpunkt.", [11, 22], {11: N, 22: A}),
        ("Den ersten und dritten gerne, den zweiten nicht.", [7, 8, 9], {7: A, 8: S, 9: A}),
        ("Alle drei gerne!", [7, 8, 9], {7: A, 8: A, 9: A}),
        # domain §0.14: an acceptance silent on the others declines them for capacity
        ("Patient 2 nehme ich.", [1, 2, 3], {1: K, 2: A, 3: K}),
        # issue 17: conditional offers, compact lists, logistics beside the decision
        ("Ich könnte Patient 2 ein Erstgespräch anbieten.", [1, 2], {1: K, 2: A}),
        ("1 ja 2 ja 3 nein", [7, 8, 9], {7: A, 8: A, 9: S}),
        ("1+3 ja", [7, 8, 9], {7: A, 8: K, 9: A}),
        ("Gerne beide! Wann können Sie anrufen? Ich bin Di 8–9 erreichbar.", [4, 5], {4: A, 5: A}),
        ("Ja gerne!", [555], {555: A}),
        ("Leidr keine Kapazitat.", [555], {555: K}),
        ("Ich gehe in den Ruhestand, leider nicht.", [5, 6], {5: S, 6: S}),
        ("Yes, I can take patient 2. No capacity for the others.", [4, 5], {4: K, 5: A}),
        ("1) Patient 11: [x] ja  [ ] keine Kapazität  [ ] nicht geeignet\n"
         "2) Patient 22: nein (Kapazität)", [11, 22], {11: A, 22: K}),
    ],
)  # fmt: skip
def test_decided(text, ids, expected):
    decision = parse.decide(text, ids)
    assert not decision.review, decision.reason
    assert decision.decisions == expected


@pytest.mark.parametrize(
    "text,ids",
    [
        ("Ja, gerne.", [1, 2]),
        ("Vielleicht kann ich Patient 2 nehmen.", [1, 2]),
        ("Patient 2 gerne, rufen Sie mich an.", [1, 2]),
        ("Die Frau nehme ich gerne, den Herrn nicht.", [1, 2]),
        ("Ich kann nicht alle nehmen.", [1, 2, 3]),
        ("Patient 9 gerne.", [1, 2]),
        ("Ist Patient 2 auch vormittags verfügbar?", [1, 2]),
        ("", [1]),
        ("1) Patient 1: [x] ja  [x] keine Kapazität  [ ] nicht geeignet", [1]),
    ],
)
def test_review(text, ids):
    decision = parse.decide(text, ids)
    assert decision.review and decision.decisions == {}
    assert decision.reason


# --- message_from_bytes ---------------------------------------------------------------------


def _raw(text=None, html=None, cte="quoted-printable", **hdrs) -> bytes:
    message = EmailMessage()
    message["From"] = "Praxis <p@example.de>"
    message["To"] = tokens.reply_address(5)
    message["Subject"] = "AW: Suche Psychotherapieplätze - Ref: A5"
    message["Message-ID"] = "<abc@example.de>"
    message["In-Reply-To"] = headers.message_id("anfrage", 5)
    for key, value in hdrs.items():
        message[key.replace("_", "-")] = value
    if text is not None:
        message.set_content(text, cte=cte)
        if html is not None:
            message.add_alternative(html, subtype="html")
    else:
        message.set_content(html, subtype="html", cte=cte)
    return bytes(message)


def test_message_from_bytes_multipart_prefers_plain():
    message = parse.message_from_bytes(_raw("Patient 12 gerne – Größe", "<p>HTML</p>"))
    assert "Patient 12 gerne – Größe" in message.text
    assert message.subject.endswith("Ref: A5")
    assert message.in_reply_to == [headers.message_id("anfrage", 5)]
    assert message.message_id == "<abc@example.de>"
    assert parse.identify_anfrage(message) == 5


def test_message_from_bytes_html_only_base64_with_blockquote():
    html = (
        "<div>Leider keine Kapazit&auml;t.<br>Gru&szlig;</div>"
        "<blockquote><p>1) Patient 12</p><p>Ja, ich kann ein Erstgespräch anbieten:</p>"
        "</blockquote>"
    )
    message = parse.message_from_bytes(_raw(html=html, cte="base64"))
    assert message.text.startswith("Leider keine Kapazität.\nGruß")
    assert "> 1) Patient 12" in message.text
    assert parse.understand(message, [12]).decisions == {12: K}


def test_message_from_bytes_latin1_and_auto_submitted():
    raw = (
        b"From: a@b.de\r\nTo: c@d.de\r\nSubject: =?iso-8859-1?q?Abwesenheit?=\r\n"
        b"Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=iso-8859-1\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\nIch bin im Urlaub. Gr\xfc\xdfe\r\n"
    )
    message = parse.message_from_bytes(raw)
    assert message.text.startswith("Ich bin im Urlaub. Grüße")
    assert message.auto_submitted == "auto-replied"
    assert parse.is_auto_reply(message) == "Auto-Submitted: auto-replied"


def test_message_from_parts_uses_html_when_no_text():
    message = parse.message_from_parts(
        subject="Re", sender="a@b.de", recipients="c@d.de", html="<p>Ja gerne</p>"
    )
    assert message.text.strip() == "Ja gerne"
    assert message.recipients == ["c@d.de"]


# --- cmd_parse ------------------------------------------------------------------------------


def run(capsys, tmp_path, content: bytes | str, patients="11,22", as_json=True):
    path = tmp_path / "reply.txt"
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    args = argparse.Namespace(patients=patients, json=as_json, file=str(path))
    code = cmd_parse(args)
    return code, capsys.readouterr()


def test_cmd_parse_json_for_plain_text(capsys, tmp_path):
    code, out = run(capsys, tmp_path, "Patient 22 gerne, die anderen leider nicht.")
    assert code == 0
    result = json.loads(out.out)
    assert result["decisions"] == {"11": S, "22": A}
    assert result["review"] is False


def test_cmd_parse_raw_message_and_auto_reply(capsys, tmp_path):
    code, out = run(capsys, tmp_path, _raw("Leider keine Kapazität."))
    assert json.loads(out.out)["decisions"] == {"11": K, "22": K}
    code, out = run(capsys, tmp_path, _raw("Bin im Urlaub", Auto_Submitted="auto-replied"))
    result = json.loads(out.out)
    assert code == 0 and result["review"] is True and result["decisions"] == {}
    assert result["reason"].startswith("auto-reply")


def test_cmd_parse_human_output_and_errors(capsys, tmp_path):
    code, out = run(capsys, tmp_path, "Ja gerne?", as_json=False)
    assert code == 0 and out.out.startswith("REVIEW:")
    code, out = run(capsys, tmp_path, "x", patients="11,abc")
    assert code == 1 and out.err.startswith("psymatch: error: --patients")
    args = argparse.Namespace(patients="1", json=True, file=str(tmp_path / "missing.eml"))
    assert cmd_parse(args) == 1
    assert capsys.readouterr().err.startswith("psymatch: error: cannot read")


def test_cmd_parse_shows_why_and_the_logistics(capsys, tmp_path):
    text = "Gerne beide! Wann können Sie anrufen? Ich bin Di 8–9 erreichbar."
    code, out = run(capsys, tmp_path, text, as_json=False)
    assert code == 0 and out.out.startswith("Decided automatically:")
    assert "weil: 'Gerne beide': Annahme für all" in out.out
    assert "Hinweis (Notiz, keine Entscheidung): Wann können Sie anrufen?" in out.out
    code, out = run(capsys, tmp_path, text)
    assert set(json.loads(out.out)) == {"decisions", "review", "reason"}  # contract unchanged


def test_cmd_stats_counts_a_directory_with_expectations(capsys, tmp_path):
    from cli.replies import cmd_stats

    (tmp_path / "a.txt").write_text("Patient 11 gerne, 22 leider nicht.", encoding="utf-8")
    (tmp_path / "b.txt").write_text("Vielleicht im Frühjahr.", encoding="utf-8")
    (tmp_path / "c.txt").write_text("Ja, beide gerne.", encoding="utf-8")
    expected = {
        "a.txt": {"patients": [11, 22], "expected": {"11": A, "22": S}},
        "b.txt": {"patients": [11, 22], "expected": "review"},
        "c.txt": {"patients": [11, 22], "expected": {"11": K, "22": K}},  # a wrong key
    }
    (tmp_path / "expected.json").write_text(json.dumps(expected), encoding="utf-8")
    files = [str(tmp_path / n) for n in ("a.txt", "b.txt", "c.txt", "expected.json")]
    assert cmd_stats(argparse.Namespace(patients=None, files=files)) == 0
    stats = json.loads(capsys.readouterr().out)
    assert (stats["files"], stats["decided"], stats["review"]) == (3, 2, 1)
    assert stats["review_reasons"] == {"hedged": 1}
    assert (stats["clear"], stats["clear_correct"], stats["hedges_to_review"]) == (2, 1, 1)
    assert stats["wrong_acceptances"] == 2 and stats["misses"] == ["c.txt"]
    # a file nobody describes needs --patients
    (tmp_path / "d.txt").write_text("Nein.", encoding="utf-8")
    assert cmd_stats(argparse.Namespace(patients=None, files=[str(tmp_path / "d.txt")])) == 1
    assert "give --patients" in capsys.readouterr().err
    assert cmd_stats(argparse.Namespace(patients="5", files=[str(tmp_path / "d.txt")])) == 0
    assert json.loads(capsys.readouterr().out)["decided"] == 1
