"""The email policies whose header classes are built once (psymatch/mail_policy.py)
give the same messages as the standard library's own policies."""

from __future__ import annotations

import email
import email.policy
import pickle
from email.headerregistry import Address, UnstructuredHeader
from email.message import EmailMessage

from psymatch import mail_policy


def _message(policy) -> EmailMessage:
    message = EmailMessage(policy=policy)
    message["From"] = Address(display_name="psymatch Vermittlung", addr_spec="a@psymatch.example")
    message["To"] = Address(display_name="Dr. Jörg Müller", addr_spec="praxis@example.org")
    message["Subject"] = "Anfrage: 3 Patientinnen – Rückmeldung erbeten " + "lang " * 20
    message["Message-ID"] = "<anfrage-1.abc@psymatch.example>"
    message.set_content("Sehr geehrter Herr Müller,\n\nÄußerst dringend.\n")
    message.add_alternative("<p>Sehr geehrter Herr Müller, Äußerst dringend.</p>", subtype="html")
    return message


def test_built_and_parsed_messages_equal_the_standard_policies():
    ours, stock = _message(mail_policy.SMTP), _message(email.policy.SMTP)
    raw = ours.as_bytes()
    assert raw.replace(ours.get_boundary().encode(), b"B") == stock.as_bytes().replace(
        stock.get_boundary().encode(), b"B"
    )
    parsed = email.message_from_bytes(raw, policy=mail_policy.DEFAULT)
    reference = email.message_from_bytes(raw, policy=email.policy.default)
    assert [(k, str(v)) for k, v in parsed.items()] == [(k, str(v)) for k, v in reference.items()]
    assert parsed["To"].addresses[0].display_name == "Dr. Jörg Müller"
    body = parsed.get_body(("plain",)).get_content()
    assert body == reference.get_body(("plain",)).get_content()
    assert "Äußerst dringend." in body
    # a message pickles with its policy (the built classes are left behind)
    assert pickle.loads(pickle.dumps(ours)).as_bytes() == raw


def test_a_header_class_is_built_once_and_a_new_mapping_is_honoured():
    first, second = _message(mail_policy.SMTP), _message(mail_policy.SMTP)
    assert type(first["From"]) is type(second["From"])  # the stock registry makes two
    stock = email.policy.SMTP
    assert type(_message(stock)["From"]) is not type(_message(stock)["From"])
    registry = mail_policy.OnceBuiltHeaderRegistry()
    assert registry["X-Praxis"] is registry["X-Praxis"]
    registry.map_to_type("X-Praxis", UnstructuredHeader)
    assert issubclass(registry["x-praxis"], UnstructuredHeader)
