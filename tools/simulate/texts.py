"""German reply texts of simulated therapists (pure).

A reply says what the model decided (``decisions``: patient id -> answer, in bundle
order) in one of three styles: ``form`` fills in the answer form of the inquiry,
``prose`` writes sentences that name each patient (``Patient 123``) or the rest, and
``vague`` writes what real therapists also write: a hedge, a description instead of
a number. Whether psymatch understands a reply is for its parser to find out; the
texts are not written to be understood.
"""

from __future__ import annotations

import random
from email.message import EmailMessage

from psymatch import mail_policy
from psymatch.domain import answer_form, vocab

GREETINGS = ("Guten Tag,", "Hallo,", "Sehr geehrte Damen und Herren,", "Liebes psymatch-Team,")
CLOSINGS = ("Viele Grüße", "Mit freundlichen Grüßen", "Beste Grüße", "LG")
ALL_DECLINED = (
    "leider habe ich derzeit keine freien Plätze.",
    "ich habe aktuell leider keine Kapazität.",
    "bei mir besteht zurzeit ein Aufnahmestopp, leider keine Kapazitäten.",
)
ACCEPT = (
    "Patient {id} kann ich gerne ein Erstgespräch anbieten.",
    "Für Patient {id} habe ich einen Platz frei.",
    "Patient {id} nehme ich gerne auf.",
)
UNSUITED = (
    "Patient {id} passt leider nicht zu meinem Schwerpunkt.",
    "Für Patient {id} bin ich leider nicht geeignet.",
)
CAPACITY = (
    "Für Patient {id} habe ich leider keine Kapazität.",
    "Patient {id} kann ich leider keinen Platz anbieten, keine Kapazität.",
)
REST_CAPACITY = "Für die anderen habe ich leider keine Kapazität."
VAGUE = (
    "Die junge Frau würde ich gerne kennenlernen, rufen Sie mich doch kurz an.",
    "Vielleicht kann ich jemanden nehmen, ich melde mich nächste Woche dazu.",
    "Können Sie mir mehr zu den Patienten sagen? Dann entscheide ich.",
    "Eventuell wird bei mir im nächsten Monat etwas frei.",
)
_MARK = {vocab.ANGENOMMEN: 0, vocab.ABGELEHNT_KAPAZITAET: 1, vocab.ABGELEHNT_NICHT_GEEIGNET: 2}


def body(decisions: dict[int, str], style: str, rng: random.Random, signer: str) -> str:
    lines = [rng.choice(GREETINGS), ""]
    if style == "form":
        lines += ["anbei meine Antwort:", ""]
        for position, (patient_id, answer) in enumerate(decisions.items(), 1):
            line = answer_form.form_line(position, patient_id)
            parts = line.split("[ ]")
            mark = _MARK[answer]
            lines.append("[ ]".join(parts[: mark + 1]) + "[x]" + "[ ]".join(parts[mark + 1 :]))
    elif style == "vague":
        lines.append(rng.choice(VAGUE))
    else:
        lines.append(_prose(decisions, rng))
    lines += ["", rng.choice(CLOSINGS), signer]
    return "\n".join(lines)


def _prose(decisions: dict[int, str], rng: random.Random) -> str:
    answers = set(decisions.values())
    if answers == {vocab.ABGELEHNT_KAPAZITAET}:
        text = rng.choice(ALL_DECLINED)
        return text[0].upper() + text[1:]
    accepted = [p for p, a in decisions.items() if a == vocab.ANGENOMMEN]
    rest = [p for p, a in decisions.items() if a != vocab.ANGENOMMEN]
    sentences = [rng.choice(ACCEPT).format(id=p) for p in accepted]
    if accepted and rest and all(decisions[p] == vocab.ABGELEHNT_KAPAZITAET for p in rest):
        sentences.append(REST_CAPACITY)
    else:
        for p in rest:
            pool = UNSUITED if decisions[p] == vocab.ABGELEHNT_NICHT_GEEIGNET else CAPACITY
            sentences.append(rng.choice(pool).format(id=p))
    return " ".join(sentences)


def reply_message(
    *,
    sender: str,
    reply_to: str,
    subject: str,
    in_reply_to: str | None,
    message_id: str,
    text: str,
) -> bytes:
    """The RFC 5322 bytes a mail provider would deliver for this reply."""
    message = EmailMessage(policy=mail_policy.DEFAULT)  # the library's default policy
    message["From"] = sender
    message["To"] = reply_to
    message["Subject"] = f"AW: {subject}"
    message["Message-ID"] = message_id
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
        message["References"] = in_reply_to
    message.set_content(text)
    return message.as_bytes()
