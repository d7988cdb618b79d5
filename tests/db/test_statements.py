"""Write statements composed once per shape (db/statements.py): the text and the
parameters equal peewee's own composition, the first time and from the kept text;
shapes they do not take are composed by peewee in full; rows come out the same."""

from __future__ import annotations

import datetime as dt

import pytest
from peewee import ModelInsert, ModelUpdate

from db import database, models, statements
from db.models import (
    OutboxItem,
    Platzsuche,
    PlzCentroid,
    Telefonanruf,
    TherapeutAnfragePatient,
    Therapeutenanfrage,
    Therapist,
)
from operations.call_schedule import booked_calls
from tests import factories as f

NOW = dt.datetime(2026, 3, 2, 9, 30)


def _peewee(query):
    """The same query as peewee's own ModelInsert / ModelUpdate composes it."""
    kind = ModelInsert if isinstance(query, ModelInsert) else ModelUpdate
    plain = kind.__new__(kind)
    plain.__dict__ = query.__dict__.copy()
    return plain.sql()


def _comparable(composed):
    """(sql, params) with PostgreSQL's JSON adapters compared by what they hold."""
    sql, params = composed
    return sql, [getattr(p, "adapted", p) for p in params]


def _shaped_like_peewee(make):
    """The statement from ``make()`` composed twice (the second from the kept text)
    equals peewee's composition, and the kept text exists afterwards."""
    before = len(statements._TEXTS)
    for _ in range(2):
        query = make()
        assert _comparable(query.sql()) == _comparable(_peewee(query))
    return len(statements._TEXTS) - before


def test_inserts_and_updates_by_key_equal_peewee_composition(clean_db):
    line_columns = dict(status="angenommen", antwortergebnis="angenommen", updated_at=NOW)
    shapes = [
        lambda: TherapeutAnfragePatient.update(**line_columns).where(
            TherapeutAnfragePatient.id == 7
        ),
        # a JSON column: SQLite wraps its value in json(?), PostgreSQL adapts it
        lambda: TherapeutAnfragePatient.update(auswahl={"distance_km": 3.5}, updated_at=NOW).where(
            TherapeutAnfragePatient.id == 8
        ),
        lambda: OutboxItem.insert(task="t", payload={"a": [1, 2]}, dedupe_key="k1", created_at=NOW),
        lambda: OutboxItem.insert(
            task="t", payload={}, dedupe_key="k2", created_at=NOW
        ).on_conflict_ignore(),
        lambda: PlzCentroid.update(ort="Köln").where(PlzCentroid.plz == "50667"),  # text key
        lambda: Platzsuche.update(notizen=None).where(Platzsuche.id == 3),  # a NULL value
        # a foreign key given as an instance, a date, a time of day, a datetime, a bool
        lambda: Telefonanruf.insert(
            therapist=Therapist(id=3),
            geplantes_datum=dt.date(2026, 3, 4),
            geplante_zeit="10:30",
            dauer_minuten=5,
            created_at=NOW,
            updated_at=NOW,
            notizen=None,  # an encrypted value differs each time (a random IV)
        ),
        lambda: Therapist.update(bevorzugt_gruppentherapie=True, updated_at=NOW).where(
            Therapist.id == 2
        ),
        # comparisons joined by AND, a foreign key compared with an id, nested either way
        lambda: TherapeutAnfragePatient.update(status="x", updated_at=NOW).where(
            (TherapeutAnfragePatient.id == 1) & (TherapeutAnfragePatient.status == "y")
        ),
        lambda: Telefonanruf.update(status="abgebrochen", updated_at=NOW).where(
            (Telefonanruf.therapeutenanfrage == 5) & (Telefonanruf.status == "geplant")
        ),
        lambda: TherapeutAnfragePatient.update(status="x").where(
            (TherapeutAnfragePatient.platzsuche == 4)
            & ((TherapeutAnfragePatient.status == "y") & (TherapeutAnfragePatient.id == 2))
        ),
        lambda: OutboxItem.update(status="erledigt", done_at=NOW).where(
            OutboxItem.dedupe_key == "send_anfrage:1"
        ),
    ]
    for make in shapes:
        assert _shaped_like_peewee(make) in (0, 1)  # kept once (or by an earlier test)
    key = ("update", TherapeutAnfragePatient, type(database.db.obj))
    assert any(k[:3] == key for k in statements._TEXTS)
    calls = ("update", Telefonanruf, type(database.db.obj))  # by two comparisons
    assert any(k[:3] == calls and k[4][0] == "AND" for k in statements._TEXTS)


def test_shapes_not_taken_are_composed_by_peewee_in_full(clean_db):
    line = TherapeutAnfragePatient
    search = f.search()
    shapes = [
        lambda: line.update(position_in_anfrage=line.position_in_anfrage + 1).where(line.id == 1),
        lambda: line.update(status="x").where(line.id.in_([1, 2])),
        lambda: line.update(status="x").where((line.id == 1) | (line.status == "y")),
        lambda: line.update(status="x").where((line.id == 1) & (line.status != "y")),
        lambda: line.update(status="x").where((line.id == 1) & line.antwortergebnis.is_null()),
        lambda: line.update(status="x").where(line.platzsuche == search),  # an instance
        lambda: line.update(status="x").where(line.platzsuche == "4"),  # not an id
        lambda: line.update(status="x"),
        lambda: OutboxItem.insert(task="t", payload={}, dedupe_key="k", created_at=NOW).on_conflict(
            conflict_target=[OutboxItem.dedupe_key], update={OutboxItem.attempts: 0}
        ),
    ]
    for make in shapes:
        assert _shaped_like_peewee(make) == 0


def test_a_default_left_out_is_filled_per_statement(clean_db):
    first = OutboxItem.insert(task="t", dedupe_key="d1").execute()
    second = OutboxItem.insert(task="t", dedupe_key="d2").execute()
    rows = {o.id: o for o in OutboxItem.select()}
    assert rows[first].payload == {} and rows[second].payload == {}
    assert (rows[first].status, rows[first].attempts) == ("offen", 0)


def test_rows_written_through_kept_text_read_back_as_written(clean_db):
    search = f.search()
    lines = []
    for _ in range(3):  # the first composes, the others use the kept text
        anfrage = Therapeutenanfrage.create(therapist=f.therapist(), anfragegroesse=1)
        lines.append(
            TherapeutAnfragePatient.create(
                therapeutenanfrage=anfrage,
                platzsuche=search,
                patient=search.patient_id,
                position_in_anfrage=1,
            )
        )
    for number, line in enumerate(lines):
        line.antwortergebnis = "angenommen"
        line.auswahl = {"distance_km": number + 0.5, "tags": ["ä", number]}
        line.save()
    for number, line in enumerate(lines):
        read = TherapeutAnfragePatient.by_id(line.id)
        assert read.antwortergebnis == "angenommen"
        assert read.auswahl == {"distance_km": number + 0.5, "tags": ["ä", number]}
    # a JSON column written through the kept text is stored as peewee stores it
    stored = (
        TherapeutAnfragePatient.select(TherapeutAnfragePatient.auswahl.cast("text"))
        .where(TherapeutAnfragePatient.id == lines[1].id)
        .scalar()
    )
    plain = ModelUpdate(
        TherapeutAnfragePatient, {TherapeutAnfragePatient.auswahl: lines[1].auswahl}
    )
    plain.where(TherapeutAnfragePatient.id == lines[2].id).execute()
    again = (
        TherapeutAnfragePatient.select(TherapeutAnfragePatient.auswahl.cast("text"))
        .where(TherapeutAnfragePatient.id == lines[2].id)
        .scalar()
    )
    assert stored == again


# --- Prepared reads ---------------------------------------------------------------------------


def test_prepared_rows_equal_peewee_own_query_on_every_field(clean_db):
    search = f.search()
    anfrage = Therapeutenanfrage.create(therapist=f.therapist(), anfragegroesse=1)
    for position, other in enumerate((search, f.search()), 1):
        TherapeutAnfragePatient.create(
            therapeutenanfrage=anfrage,
            platzsuche=other,
            patient=other.patient_id,
            position_in_anfrage=position,
            auswahl={"distance_km": position},
        )
    by_peewee = list(
        TherapeutAnfragePatient.select()
        .where(TherapeutAnfragePatient.therapeutenanfrage == anfrage.id)
        .order_by(TherapeutAnfragePatient.position_in_anfrage)
    )
    for _ in range(2):  # composed, then from the kept text (rows built from the cursor)
        lines = TherapeutAnfragePatient.lines_of(anfrage.id)
        assert models._LINES._text(database.db.obj)[-1] is not None
        assert [type(li) for li in lines] == [TherapeutAnfragePatient] * 2
        assert [li.__data__ for li in lines] == [li.__data__ for li in by_peewee]
        assert not any(li.is_dirty() for li in lines)
    # a foreign key read back resolves to its row, as on an instance peewee built
    assert lines[0].therapeutenanfrage.id == anfrage.id
    assert lines[1].platzsuche_id == by_peewee[1].platzsuche_id
    assert lines[1].__rel__ == {} and not lines[1].is_dirty()
    # a model instance for a foreign key is converted to its id, as peewee converts it
    assert [li.id for li in TherapeutAnfragePatient.lines_of(anfrage)] == [li.id for li in lines]
    line = TherapeutAnfragePatient.line_of(anfrage.id, search.patient_id)
    assert line.__data__ == by_peewee[0].__data__
    assert TherapeutAnfragePatient.line_of(anfrage.id, 999_999) is None
    line.status = "abgelehnt"
    line.save()
    offered = TherapeutAnfragePatient.lines_of(anfrage.id, offered_only=True)
    assert [li.id for li in offered] == [by_peewee[1].id]


def test_prepared_tuples_with_a_date_parameter_and_constants(clean_db):
    therapist = f.therapist()
    for day, status in ((2, "geplant"), (5, "abgebrochen"), (9, "fehlgeschlagen")):
        Telefonanruf.create(
            therapist=therapist,
            geplantes_datum=dt.date(2026, 3, day),
            geplante_zeit="10:30",
            dauer_minuten=5,
            status=status,
        )
    after = dt.date(2026, 3, 1)
    expected = [
        (row.geplantes_datum, row.geplante_zeit, row.dauer_minuten)
        for row in Telefonanruf.select()
        .where(
            (Telefonanruf.therapist == therapist.id)
            & Telefonanruf.status.in_(("geplant", "abgeschlossen", "fehlgeschlagen"))
            & (Telefonanruf.geplantes_datum > after)
        )
        .order_by(Telefonanruf.id)
    ]
    got = booked_calls(Telefonanruf.therapist, therapist.id, after)
    assert [(d, m) for d, _t, m in got] == [(d, m) for d, _t, m in expected]
    assert [d.day for d, _t, _m in got] == [2, 9]  # the cancelled call does not block
    assert booked_calls(Telefonanruf.therapist, therapist.id, dt.date(2026, 3, 5)) == got[1:]


def test_prepared_refuses_a_parameter_it_does_not_know_or_misses(clean_db):
    with pytest.raises(TypeError, match="unknown"):
        statements.Prepared(lambda p: PlzCentroid.select().where(PlzCentroid.plz == p.plz)).rows(
            plz="10115", ort="Berlin"
        )
    with pytest.raises(TypeError, match="missing"):
        statements.Prepared(lambda p: PlzCentroid.select().where(PlzCentroid.plz == p.plz)).rows()
