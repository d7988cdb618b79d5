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


def test_repeated_mime_headers_are_parsed_once_and_serialise_as_the_stock_ones():
    first, second = _message(mail_policy.SMTP), _message(mail_policy.SMTP)
    firsts = {k: v for k, v in first.get_payload()[0].items()}
    seconds = {k: v for k, v in second.get_payload()[0].items()}
    assert firsts["Content-Type"] is seconds["Content-Type"]  # one parsed header, shared
    assert firsts["Content-Transfer-Encoding"] is seconds["Content-Transfer-Encoding"]
    assert first["From"] is second["From"]  # the sender, set as the same Address
    assert first["Subject"] is not second["Subject"]  # other headers: each its own
    assert first["To"] is not second["To"]
    # a shared header does not leak a change of one message into another
    first.get_payload()[0].set_param("charset", "iso-8859-1")
    assert second.get_payload()[0]["Content-Type"].params["charset"] == "utf-8"
    stock = _message(email.policy.SMTP)
    for ours in (second, _message(mail_policy.SMTP)):
        assert ours.as_bytes().replace(
            ours.get_boundary().encode(), b"B"
        ) == stock.as_bytes().replace(stock.get_boundary().encode(), b"B")


def test_the_parsed_headers_kept_are_bounded():
    registry = mail_policy.OnceBuiltHeaderRegistry()
    plain = registry("Content-Type", "text/plain")
    assert registry("Content-Type", "text/plain") is plain
    for number in range(500):  # a multipart's boundary is new in every message
        registry("Content-Type", f'multipart/alternative; boundary="b{number}"')
        assert len(registry._headers) <= mail_policy._REPEATED_KEPT
    assert registry("Content-Type", "text/plain") == plain  # parsed anew, the same header
