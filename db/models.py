"""peewee models for every entity of docs/domain.md §3 plus the operational tables.

German table, field and enum names follow docs/domain.md. Rules a database can hold
live in the schema: NOT NULL, UNIQUE, foreign keys with the domain's cascades,
CHECK constraints for every enum, and a partial unique index for "at most one
aktiv Platzsuche per patient". The schema itself is created by the versioned
migrations in ``db/migrations``; ``tests/test_migrations.py`` proves that the
migrated schema matches these models on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt

from peewee import (
    SQL,
    BooleanField,
    CharField,
    Check,
    DateField,
    DateTimeField,
    DeferredForeignKey,
    DoubleField,
    ForeignKeyField,
    IntegerField,
    JSONField,
    Model,
    TextField,
)

from psymatch.domain import vocab

from .crypto import (
    EncryptedDateField,
    EncryptedJSONField,
    EncryptedTextField,
    SealableTextField,
)
from .database import db, locked
from .statements import Prepared, ShapedInsert, ShapedUpdate


def utcnow() -> dt.datetime:
    """Timestamps are stored as naive UTC (docs/domain.md, conventions)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def enum_check(column: str, values, nullable: bool = False) -> Check:
    quoted = ", ".join("'" + v.replace("'", "''") + "'" for v in values)
    condition = f"{column} IN ({quoted})"
    if nullable:
        condition = f"{column} IS NULL OR {condition}"
    return Check(condition)


def enum_field(column: str, values, *, null=False, default=None) -> CharField:
    return CharField(
        max_length=max(len(v) for v in values),
        null=null,
        default=default,
        constraints=[enum_check(column, values, nullable=null)],
    )


def json_list(**kwargs) -> JSONField:
    return JSONField(default=list, constraints=[SQL("DEFAULT '[]'")], **kwargs)


def json_object(**kwargs) -> JSONField:
    return JSONField(default=dict, constraints=[SQL("DEFAULT '{}'")], **kwargs)


class BaseModel(Model):
    class Meta:
        database = db
        legacy_table_names = False

    def save(self, force_insert=False, only=None):
        """Update only the columns that were assigned since the row was read, plus the
        JSON columns (a list or dict can change in place, unseen by peewee's dirty
        tracking). A full-row update would re-encrypt every sealed column and could
        overwrite a column another transaction changed meanwhile. Inserts are unchanged.
        """
        if only is None and not force_insert and self._pk is not None:
            only = {*self.dirty_fields, *_mutable_fields(type(self))}
            if not only:
                return False  # nothing assigned: nothing to write
        return super().save(force_insert=force_insert, only=only)

    @classmethod
    def insert(cls, data=None, /, **values):
        """peewee's ``insert``, its text composed once per shape (``db/statements.py``)."""
        return ShapedInsert(cls, cls._normalize_data(data, values))

    @classmethod
    def update(cls, data=None, /, **values):
        """peewee's ``update``, its text composed once per shape when it updates by key."""
        return ShapedUpdate(cls, cls._normalize_data(data, values))

    @classmethod
    def get_by_id(cls, pk):
        """The row with primary key ``pk`` (``DoesNotExist`` if none), as peewee's own
        ``get_by_id`` but with the statement built once per model and backend: a
        full-row SELECT costs more to compose in peewee than to run, and the hot paths
        (sending, answers, calls) read rows by id many times a second."""
        found = _read_by_id(cls, pk, for_update=False)
        if found is None:
            raise cls.DoesNotExist(f"{cls.__name__} instance matching query does not exist: {pk!r}")
        return found

    @classmethod
    def by_id(cls, pk):
        """The row with primary key ``pk`` or None (``get_by_id`` without the exception)."""
        return _read_by_id(cls, pk, for_update=False)

    @classmethod
    def locked_by_id(cls, pk):
        """The row with primary key ``pk``, locked until the transaction ends, or None:
        ``SELECT ... FOR UPDATE`` on PostgreSQL; on SQLite the IMMEDIATE write
        transaction (``write_transaction``) already holds the only write lock. The
        statement is built once, as for ``get_by_id``."""
        return _read_by_id(cls, pk, for_update=True)


_BY_ID: dict[tuple, Prepared] = {}


def _read_by_id(model: type, pk, *, for_update: bool):
    """The row of ``model`` with primary key ``pk`` or None, read by a ``Prepared``
    statement (``SELECT <all columns> WHERE pk = ? LIMIT 1``, ``FOR UPDATE`` on PostgreSQL
    when locking) that peewee composes once per model, backend and locking; the instance
    is built straight from the cursor's row (``db/statements.py``)."""
    statement = _BY_ID.get((model, for_update))
    if statement is None:
        statement = _BY_ID[(model, for_update)] = Prepared(
            lambda p: _by_key(model, p.key, for_update)
        )
    return statement.first(key=pk)


def _by_key(model: type, key, for_update: bool):
    query = model.select().where(model._meta.primary_key == key).limit(1)
    return locked(query) if for_update else query


_MUTABLE: dict[type, tuple] = {}


def _mutable_fields(model: type) -> tuple:
    """The fields of ``model`` whose values are mutable containers (JSON)."""
    fields = _MUTABLE.get(model)
    if fields is None:
        fields = _MUTABLE[model] = tuple(
            f for f in model._meta.sorted_fields if isinstance(f, JSONField | EncryptedJSONField)
        )
    return fields


class TimestampedModel(BaseModel):
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)

    def save(self, *args, **kwargs):
        self.updated_at = utcnow()
        return super().save(*args, **kwargs)


# --- geo data (docs/domain.md §3) ---------------------------------------------


class PlzCentroid(BaseModel):
    plz = CharField(5, primary_key=True, constraints=[Check("length(plz) = 5")])
    ort = CharField(200)
    bundesland = CharField(100, null=True)
    bundesland_code = CharField(10, null=True)
    latitude = DoubleField()
    longitude = DoubleField()

    class Meta:
        table_name = "plz_centroids"


class Geocache(TimestampedModel):
    query = CharField(500)
    query_type = CharField(20)
    latitude = DoubleField(null=True)
    longitude = DoubleField(null=True)
    display_name = TextField(null=True)
    result_data = JSONField(null=True)
    hit_count = IntegerField(default=0)

    class Meta:
        table_name = "geocache"
        indexes = ((("query", "query_type"), True),)


class DistanceCache(BaseModel):
    origin_lat = DoubleField()
    origin_lon = DoubleField()
    dest_lat = DoubleField()
    dest_lon = DoubleField()
    travel_mode = enum_field("travel_mode", ("car", "transit"))
    distance_km = DoubleField()
    route_data = JSONField(null=True)
    hit_count = IntegerField(default=0)
    created_at = DateTimeField(default=utcnow)

    class Meta:
        table_name = "distance_cache"
        indexes = ((("origin_lat", "origin_lon", "dest_lat", "dest_lon", "travel_mode"), True),)


# --- master data ----------------------------------------------------------------


class RoundedDoubleField(DoubleField):
    """A float rounded to ``decimals`` places on every write (peewee, ``db.bulk``).

    Patient coordinates: two decimals are about 1.1 km north-south and 0.7 km east-west
    in Germany, enough for the travel-distance rule (docs/domain.md §6.4) without keeping
    where exactly a patient lives (SECURITY.md; migration 0010 rounded the stored ones)."""

    def __init__(self, decimals: int = 2, *args, **kwargs):
        self.decimals = decimals
        super().__init__(*args, **kwargs)

    def db_value(self, value):
        value = super().db_value(value)
        return None if value is None else round(value, self.decimals)


class LocatedModel(TimestampedModel):
    """Fields shared by patients and therapists: identity from intake and location."""

    external_id = CharField(100, unique=True)
    strasse = CharField(200, null=True)
    plz = CharField(5, null=True, constraints=[Check("plz IS NULL OR length(plz) = 5")])
    ort = CharField(100, null=True)
    email = CharField(254, null=True)
    telefon = CharField(50, null=True)
    # Coordinates of the location used for distances (docs/domain.md §3, §6.4) and
    # the PLZ they were derived from, so that a changed PLZ is re-geocoded.
    latitude = DoubleField(null=True)
    longitude = DoubleField(null=True)
    geo_quelle = enum_field("geo_quelle", vocab.GEO_QUELLE, null=True)
    geo_plz = CharField(5, null=True)


class Patient(LocatedModel):
    # Names and contact data are encrypted at rest (db/crypto.py, migration 0005), and so
    # is the health data (migration 0010): symptoms, birth date, insurer, GP, payment
    # reference, previous therapy, referrer. The lengths of docs/domain.md §3 are checked
    # by the validation, not by the column. Coordinates are kept to about 1 km.
    strasse = EncryptedTextField(200, null=True)
    email = EncryptedTextField(254, null=True)
    telefon = EncryptedTextField(50, null=True)
    anrede = enum_field("anrede", vocab.ANREDE)
    geschlecht = enum_field("geschlecht", vocab.GESCHLECHT)
    vorname = EncryptedTextField(100)
    nachname = EncryptedTextField(100)
    latitude = RoundedDoubleField(null=True)
    longitude = RoundedDoubleField(null=True)
    hausarzt = EncryptedTextField(200, null=True)
    krankenkasse = EncryptedTextField(100, null=True)
    krankenversicherungsnummer = EncryptedTextField(50, null=True)
    geburtsdatum = EncryptedDateField(null=True)
    symptome = EncryptedJSONField(default=list)
    erfahrung_mit_psychotherapie = BooleanField(null=True)
    letzte_sitzung_vorherige_psychotherapie = EncryptedDateField(null=True)
    vertraege_unterschrieben = BooleanField(default=False)
    zahlungsreferenz = EncryptedTextField(8, null=True)
    zahlung_eingegangen = BooleanField(default=False)
    startdatum = DateField(null=True)
    status = enum_field("status", vocab.PATIENTENSTATUS, default="offen")
    zeitliche_verfuegbarkeit = json_object()
    raeumliche_verfuegbarkeit = json_object()
    verkehrsmittel = enum_field("verkehrsmittel", vocab.VERKEHRSMITTEL, null=True)
    offen_fuer_gruppentherapie = BooleanField(null=True)
    offen_fuer_diga = BooleanField(null=True)
    ausgeschlossene_therapeuten = json_list()
    bevorzugtes_therapeutengeschlecht = enum_field(
        "bevorzugtes_therapeutengeschlecht", vocab.THERAPEUTENGESCHLECHT_PRAEFERENZ, default="Egal"
    )
    bevorzugtes_therapieverfahren = enum_field(
        "bevorzugtes_therapieverfahren", vocab.THERAPIEVERFAHREN, default="egal"
    )
    letzter_kontakt = DateField(null=True)
    erster_therapieplatz_am = DateField(null=True)
    funktionierender_therapieplatz_am = DateField(null=True)
    empfehler_der_unterstuetzung = EncryptedTextField(null=True)
    # Keyed blind index of the normalised name tokens, email and phone (migration 0013,
    # operations/people.py): found by a person search without decrypting every patient.
    suchindex = TextField(null=True)

    class Meta:
        table_name = "patienten"


class Therapist(LocatedModel):
    anrede = enum_field("anrede", vocab.ANREDE)
    geschlecht = enum_field("geschlecht", vocab.GESCHLECHT)
    titel = CharField(20, null=True)
    vorname = CharField(100)
    nachname = CharField(100)
    fax = CharField(50, null=True)
    webseite = CharField(300, null=True)
    kassensitz = BooleanField(default=True)
    telefonische_erreichbarkeit = json_object()
    fremdsprachen = json_list()
    psychotherapieverfahren = enum_field(
        "psychotherapieverfahren", vocab.THERAPIEVERFAHREN, null=True
    )
    zusatzqualifikationen = TextField(null=True)
    besondere_leistungsangebote = TextField(null=True)
    letzter_kontakt_email = DateField(null=True)
    letzter_kontakt_telefon = DateField(null=True)
    letztes_persoenliches_gespraech = DateField(null=True)
    potenziell_verfuegbar = BooleanField(default=False)
    # Staff notes about a therapist are encrypted at rest (migration 0010).
    potenziell_verfuegbar_notizen = EncryptedTextField(null=True)
    ueber_curavani_informiert = BooleanField(default=False)
    naechster_kontakt_moeglich = DateField(null=True, index=True)
    bevorzugte_diagnosen = json_list()
    bevorzugte_symptome = json_list()
    alter_min = IntegerField(null=True, constraints=[Check("alter_min IS NULL OR alter_min >= 0")])
    alter_max = IntegerField(null=True, constraints=[Check("alter_max IS NULL OR alter_max >= 0")])
    geschlechtspraeferenz = enum_field(
        "geschlechtspraeferenz", vocab.THERAPEUTENGESCHLECHT_PRAEFERENZ, null=True
    )
    arbeitszeiten = json_object()
    bevorzugt_gruppentherapie = BooleanField(default=False)
    status = enum_field("status", vocab.THERAPEUTENSTATUS, default="aktiv")
    sperrgrund = EncryptedTextField(null=True)
    sperrdatum = DateField(null=True)
    notizen = EncryptedTextField(default="")
    # Sender addresses staff confirmed for this practice besides its email (normalised;
    # migration 0009): replies from them are recorded automatically (operations/senders.py).
    bestaetigte_absender = json_list()
    # A permanent delivery failure showed the email address invalid (migration 0014):
    # inquiries go by phone until staff enter an address (operations/therapist_contact.py).
    email_ungueltig_seit = DateTimeField(null=True)

    class Meta:
        table_name = "therapeuten"
        indexes = ((("status", "plz"), False),)


# --- the search and the bundles --------------------------------------------------


class Platzsuche(TimestampedModel):
    patient = ForeignKeyField(Patient, backref="platzsuchen", on_delete="RESTRICT")
    status = enum_field("status", vocab.SUCHSTATUS, default="aktiv")
    ausgeschlossene_therapeuten = json_list()
    vermittelter_therapeut = ForeignKeyField(
        Therapist, null=True, backref="vermittelte_suchen", on_delete="RESTRICT"
    )
    erfolgreiche_vermittlung_datum = DateTimeField(null=True)
    notizen = EncryptedTextField(default="")  # staff notes: encrypted (migration 0010)

    class Meta:
        table_name = "platzsuche"


# "At most one aktiv Platzsuche per patient" (docs/domain.md §3), held by the database.
Platzsuche.add_index(
    Platzsuche.index(
        Platzsuche.patient, unique=True, name="platzsuche_one_aktiv_per_patient"
    ).where(Platzsuche.status == "aktiv")
)


class Therapeutenanfrage(BaseModel):
    therapist = ForeignKeyField(
        Therapist, backref="anfragen", on_delete="RESTRICT", column_name="therapist_id"
    )
    erstellt_datum = DateTimeField(default=utcnow)
    gesendet_datum = DateTimeField(null=True)
    antwort_datum = DateTimeField(null=True)
    antworttyp = enum_field("antworttyp", vocab.ANTWORTTYP, null=True)
    anfragegroesse = IntegerField(constraints=[Check("anfragegroesse >= 1")])
    angenommen_anzahl = IntegerField(default=0, constraints=[Check("angenommen_anzahl >= 0")])
    abgelehnt_anzahl = IntegerField(default=0, constraints=[Check("abgelehnt_anzahl >= 0")])
    keine_antwort_anzahl = IntegerField(default=0, constraints=[Check("keine_antwort_anzahl >= 0")])
    notizen = EncryptedTextField(default="")  # staff notes: encrypted (migration 0010)
    # The email / call tables point back at the Anfrage, so these three are
    # deferred: the migration adds their constraints once both tables exist.
    email = DeferredForeignKey("Email", null=True, on_delete="SET NULL", column_name="email_id")
    phone_call = DeferredForeignKey(
        "Telefonanruf", null=True, on_delete="SET NULL", column_name="phone_call_id"
    )
    reminder_email = DeferredForeignKey(
        "Email", null=True, on_delete="SET NULL", column_name="reminder_email_id"
    )
    erinnerung_gesendet_datum = DateTimeField(null=True)
    # How the bundle came about: an automatic round or staff composition (docs/domain.md §6.1).
    ausloeser = enum_field("ausloeser", ("runde", "personal"), default="personal")
    # An out-of-office reply named a return date: follow-up and expiry wait until this
    # local day, the working day after it (migration 0014).
    nachverfolgung_ab = DateField(null=True)
    # The Anfrage whose conflict notice offered this one's patients instead (docs/domain.md
    # §10, issue 15.3): the alternatives are a real Anfrage the therapist answers like any
    # other. A plain id, not a foreign key: SQLite cannot drop a referencing column.
    konflikt_anfrage_id = IntegerField(null=True, index=True)

    class Meta:
        table_name = "therapeutenanfrage"
        constraints = [
            # answered <=> a response type is recorded (docs/domain.md §3)
            Check("(antwort_datum IS NULL) = (antworttyp IS NULL)"),
        ]
        indexes = ((("therapist", "antwort_datum"), False),)


class TherapeutAnfragePatient(TimestampedModel):
    therapeutenanfrage = ForeignKeyField(Therapeutenanfrage, backref="zeilen", on_delete="CASCADE")
    platzsuche = ForeignKeyField(Platzsuche, backref="anfragezeilen", on_delete="CASCADE")
    patient = ForeignKeyField(Patient, backref="anfragezeilen", on_delete="RESTRICT")
    position_in_anfrage = IntegerField(constraints=[Check("position_in_anfrage >= 1")])
    status = enum_field("status", vocab.ANFRAGE_PATIENT_STATUS, default="anstehend")
    antwortergebnis = enum_field("antwortergebnis", vocab.PATIENTENERGEBNIS, null=True)
    antwortnotizen = EncryptedTextField(null=True)  # encrypted (migration 0010)
    # Why the selection chose this patient: soft filters passed, relaxation level,
    # distance, waiting days (explainable bundles, docs/domain.md §6.7). Migration 0003.
    auswahl = JSONField(null=True)

    @classmethod
    def lines_of(cls, anfrage_id: int, *, offered_only: bool = False) -> list:
        """The lines of Anfrage ``anfrage_id`` in bundle order (with ``offered_only``
        those still ``anstehend``): read whenever an Anfrage is sent or answered, by a
        statement composed once (``db.statements.Prepared``)."""
        return (_OFFERED_LINES if offered_only else _LINES).rows(anfrage=anfrage_id)

    @classmethod
    def line_of(cls, anfrage_id: int, patient_id: int):
        """The line of ``patient_id`` in Anfrage ``anfrage_id``, or None."""
        return _LINE.first(anfrage=anfrage_id, patient=patient_id)

    class Meta:
        table_name = "therapeut_anfrage_patient"
        indexes = (
            (("therapeutenanfrage", "platzsuche"), True),
            (("therapeutenanfrage", "position_in_anfrage"), True),
            (("platzsuche", "status"), False),
        )


_LINES = Prepared(
    lambda p: (
        TherapeutAnfragePatient.select()
        .where(TherapeutAnfragePatient.therapeutenanfrage == p.anfrage)
        .order_by(TherapeutAnfragePatient.position_in_anfrage)
    )
)
_OFFERED_LINES = Prepared(
    lambda p: (
        TherapeutAnfragePatient.select()
        .where(
            (TherapeutAnfragePatient.therapeutenanfrage == p.anfrage)
            & (TherapeutAnfragePatient.status == "anstehend")
        )
        .order_by(TherapeutAnfragePatient.position_in_anfrage)
    )
)
_LINE = Prepared(
    lambda p: (
        TherapeutAnfragePatient.select()
        .where(
            (TherapeutAnfragePatient.therapeutenanfrage == p.anfrage)
            & (TherapeutAnfragePatient.patient == p.patient)
        )
        .limit(1)
    )
)


# --- communication ------------------------------------------------------------------


EXACTLY_ONE_RECIPIENT = Check("(therapist_id IS NULL) <> (patient_id IS NULL)")


class Email(TimestampedModel):
    therapist = ForeignKeyField(
        Therapist, null=True, backref="emails", on_delete="CASCADE", column_name="therapist_id"
    )
    patient = ForeignKeyField(Patient, null=True, backref="emails", on_delete="CASCADE")
    therapeutenanfrage = ForeignKeyField(
        Therapeutenanfrage, null=True, backref="emails", on_delete="SET NULL"
    )
    art = enum_field("art", vocab.EMAIL_ART)
    # Idempotency key of a sending, e.g. "anfrage:42" (kind + Anfrage or patient id).
    idempotenz_schluessel = CharField(100, unique=True)
    # Subject and recipient name are encrypted at rest (they may name a patient);
    # the recipient address only for patient emails (a ``Sealed`` value), therapist
    # addresses stay plaintext for the weekly rule's index (migration 0005). The
    # bodies live in ``EmailInhalt`` (migration 0007).
    betreff = EncryptedTextField(300)
    empfaenger_email = SealableTextField()
    empfaenger_name = EncryptedTextField(200, null=True)
    absender_email = CharField(254)
    absender_name = CharField(200, null=True)
    message_id = CharField(300, null=True, unique=True)
    status = enum_field("status", vocab.EMAILSTATUS, default="Entwurf")
    in_warteschlange_am = DateTimeField(null=True)
    gesendet_am = DateTimeField(null=True)
    fehlermeldung = TextField(null=True)
    wiederholungsanzahl = IntegerField(default=0)
    antwort_erhalten = BooleanField(default=False)
    antwortdatum = DateTimeField(null=True)
    antwortinhalt = EncryptedTextField(null=True)
    attachments = json_list()

    class Meta:
        table_name = "emails"
        constraints = [EXACTLY_ONE_RECIPIENT]
        indexes = ((("empfaenger_email", "in_warteschlange_am"), False),)

    @property
    def inhalt(self) -> EmailInhalt:
        """This email's bodies, read on first use (or set by whoever read them already)."""
        if "_inhalt" not in self.__dict__:
            self.__dict__["_inhalt"] = EmailInhalt.get_by_id(self.id)
        return self.__dict__["_inhalt"]

    @inhalt.setter
    def inhalt(self, value: EmailInhalt) -> None:
        self.__dict__["_inhalt"] = value


class EmailInhalt(BaseModel):
    """The bodies of one Email, in a table of their own (migration 0007).

    They are written once, with the email, and never change while it is sent, but
    they are most of its bytes (about 10 KB of Fernet tokens for an inquiry). In the
    same row, every status change of the email (claimed, sent) made SQLite rewrite
    them along with it: about 25 KB of WAL for a change of a few bytes,
    and every status read went through their overflow pages. Apart, a status change
    rewrites a row of a few hundred bytes. Encrypted at rest like the subject.
    """

    email = ForeignKeyField(Email, primary_key=True, on_delete="CASCADE")
    inhalt_markdown = EncryptedTextField(default="")
    inhalt_html = EncryptedTextField(default="")
    inhalt_text = EncryptedTextField(default="")

    class Meta:
        table_name = "email_inhalte"


class Telefonanruf(TimestampedModel):
    therapist = ForeignKeyField(
        Therapist, null=True, backref="anrufe", on_delete="CASCADE", column_name="therapist_id"
    )
    patient = ForeignKeyField(Patient, null=True, backref="anrufe", on_delete="CASCADE")
    therapeutenanfrage = ForeignKeyField(
        Therapeutenanfrage, null=True, backref="anrufe", on_delete="SET NULL"
    )
    geplantes_datum = DateField()
    geplante_zeit = CharField(5, constraints=[Check("length(geplante_zeit) = 5")])
    dauer_minuten = IntegerField(constraints=[Check("dauer_minuten > 0")])
    tatsaechliches_datum = DateField(null=True)
    tatsaechliche_zeit = CharField(5, null=True)
    status = enum_field("status", vocab.TELEFONANRUFSTATUS, default="geplant")
    # what was said on the phone: encrypted at rest (migration 0010)
    ergebnis = EncryptedTextField(null=True)
    notizen = EncryptedTextField(default="")

    class Meta:
        table_name = "telefonanrufe"
        constraints = [EXACTLY_ONE_RECIPIENT]
        indexes = ((("therapist", "geplantes_datum"), False),)


# --- operations: inbound webhooks, outbox, audit, flags --------------------------------


class InboundMessage(BaseModel):
    """An email reply as delivered by a webhook, stored before any processing.

    ``message`` is the reply decoded at the webhook (``webhooks/providers.py``) into the
    provider-neutral form: the JSON object of ``psymatch.domain.reply_parse.Message``'s
    fields. Processing and the console read only it; ``raw_payload`` keeps the delivery as
    posted, for audit. ``message`` is NULL when the delivery could not be decoded (the
    reason is in ``review_reason``; processing marks such a reply ``fehler``).
    Only email replies live here: one-click links are ``LinkKlick`` rows, Mailgun's
    single-use tokens ``WebhookReplayMarker`` rows (migration 0008).
    Everything taken from the reply is encrypted at rest (migration 0010): the payload,
    the decoded message, sender, recipient, subject, the result and the review reason;
    nothing filters on them in SQL (the console's review queue filters by ``status``).
    """

    provider = CharField(20)
    # Provider message id or RFC Message-ID: a second delivery hits this key.
    message_key = CharField(300, unique=True)
    received_at = DateTimeField(default=utcnow)
    raw_payload = EncryptedTextField()
    message = EncryptedTextField(null=True)
    sender = EncryptedTextField(254, null=True)
    recipient = EncryptedTextField(500, null=True)
    subject = EncryptedTextField(null=True)
    therapeutenanfrage = ForeignKeyField(
        Therapeutenanfrage, null=True, backref="eingaenge", on_delete="SET NULL"
    )
    status = enum_field("status", vocab.INBOUND_STATUS, default="neu")
    result = EncryptedJSONField(null=True)
    review_reason = EncryptedTextField(null=True)
    processed_at = DateTimeField(null=True)

    class Meta:
        table_name = "inbound_messages"
        indexes = ((("status",), False),)


class WebhookReplayMarker(BaseModel):
    """A single-use webhook token (Mailgun's ``token``), remembered with the message it came
    with: the same token with the same message is a harmless redelivery, with another
    message a replay (refused). ``token`` is the SHA-256 hex of the token. Written in the
    same transaction as the message; rows older than twice the timestamp window are
    deleted now and then (``operations.replies.forget_replay_markers``)."""

    provider = CharField(20)
    token = CharField(64)
    message_key = CharField(300)
    seen_at = DateTimeField(default=utcnow)

    class Meta:
        table_name = "webhook_replay_marker"
        indexes = ((("provider", "token"), True), (("seen_at",), False))


class LinkKlick(BaseModel):
    """A confirmed one-click answer link (``webhooks/links.py``): one per Anfrage and
    patient; a second click changes nothing. Clicks wait (``neu``) until every open
    patient of the Anfrage has one, then are recorded together (``verarbeitet``); an
    email answer that comes first retires them (``ignoriert``). The clicking address is
    personal data and stored encrypted."""

    therapeutenanfrage = ForeignKeyField(
        Therapeutenanfrage, backref="klicks", on_delete="CASCADE", index=False
    )
    patient = ForeignKeyField(Patient, backref="klicks", on_delete="CASCADE")
    answer = enum_field("answer", vocab.THERAPEUTENANTWORTEN)
    clicked_at = DateTimeField(default=utcnow)
    remote_addr = EncryptedTextField(null=True)
    status = enum_field("status", vocab.INBOUND_STATUS, default="neu")
    result = JSONField(null=True)
    review_reason = TextField(null=True)
    processed_at = DateTimeField(null=True)

    class Meta:
        table_name = "link_klick"
        indexes = ((("therapeutenanfrage", "patient"), True),)


class OutboxItem(BaseModel):
    """Work to enqueue, written in the same transaction as the state change it follows."""

    task = CharField(100)
    payload = json_object()
    # One key per unit of work, e.g. "send_email:anfrage:42": re-queuing is harmless.
    dedupe_key = CharField(200, unique=True)
    status = enum_field("status", vocab.OUTBOX_STATUS, default="offen")
    created_at = DateTimeField(default=utcnow)
    enqueued_at = DateTimeField(null=True)
    done_at = DateTimeField(null=True)
    attempts = IntegerField(default=0)
    last_error = TextField(null=True)

    class Meta:
        table_name = "outbox"
        indexes = ((("status", "created_at"), False),)


class KonfliktErledigung(BaseModel):
    """How staff settled the conflict of one search (patient accepted by two or more
    therapists, docs/domain.md §10; operations/conflicts.py). ``zeilen`` are the accepted
    bundle lines the settlement covered: a later acceptance opens the conflict again.
    ``umzuweisungen`` counts the reassignments (each one's emails are keyed by it)."""

    platzsuche = ForeignKeyField(
        Platzsuche, backref="konflikt_erledigung", on_delete="CASCADE", unique=True
    )
    art = enum_field("art", vocab.KONFLIKT_ERLEDIGUNGEN)
    therapist_id = IntegerField(null=True)  # who the patient goes to afterwards
    erledigt_am = DateTimeField()
    erledigt_von = CharField(100)
    notiz = EncryptedTextField(null=True)
    zeilen = json_list()
    umzuweisungen = IntegerField(default=0, constraints=[Check("umzuweisungen >= 0")])

    class Meta:
        table_name = "konflikt_erledigungen"


class AuditLog(BaseModel):
    at = DateTimeField(default=utcnow)
    actor = CharField(100)
    action = CharField(100)
    entity = CharField(50)
    entity_id = CharField(50, null=True)
    # Encrypted at rest (migration 0010): staff reasons and details may quote notes,
    # senders or answers. Audit rows are found by action, entity and id, never by these.
    details = EncryptedJSONField(null=True)
    reason = EncryptedTextField(null=True)

    class Meta:
        table_name = "audit_log"
        indexes = ((("entity", "entity_id"), False),)


class FeatureFlag(BaseModel):
    name = CharField(100, primary_key=True)
    enabled = BooleanField(default=True)
    rollout_percent = IntegerField(
        default=100, constraints=[Check("rollout_percent >= 0 AND rollout_percent <= 100")]
    )
    updated_at = DateTimeField(default=utcnow)
    updated_by = CharField(100, default="system")

    class Meta:
        table_name = "feature_flags"


class Mitarbeiter(TimestampedModel):
    """A staff account: personal sign-in to the console and its role (operations/staff.py,
    migration 0011). Never deleted, only deactivated, so audit rows keep their person."""

    benutzername = CharField(50, unique=True)
    name = CharField(100)
    rolle = enum_field("rolle", vocab.STAFF_ROLES, default="lesen")
    passwort_hash = TextField()
    aktiv = BooleanField(default=True)
    letzte_anmeldung = DateTimeField(null=True)

    class Meta:
        table_name = "mitarbeiter"


DOMAIN_MODELS = [
    PlzCentroid,
    Geocache,
    DistanceCache,
    Patient,
    Therapist,
    Platzsuche,
    Therapeutenanfrage,
    TherapeutAnfragePatient,
    Email,
    EmailInhalt,
    Telefonanruf,
]
OPERATIONS_MODELS = [
    InboundMessage,
    OutboxItem,
    AuditLog,
    FeatureFlag,
    WebhookReplayMarker,
    LinkKlick,
    Mitarbeiter,
    KonfliktErledigung,
]
ALL_MODELS = DOMAIN_MODELS + OPERATIONS_MODELS
