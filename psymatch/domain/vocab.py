"""The fixed vocabulary of the domain (domain.md sections 4 and 5).

Enum values are persisted verbatim and are case-sensitive; the database
schema turns each tuple here into a CHECK constraint, and intake validation
uses the same tuples, so there is exactly one list of allowed values.
"""

ANREDE = ("Herr", "Frau")
GESCHLECHT = ("männlich", "weiblich", "divers", "keine_Angabe")
THERAPEUTENGESCHLECHT_PRAEFERENZ = ("Männlich", "Weiblich", "Egal")
THERAPIEVERFAHREN = (
    "egal",
    "Verhaltenstherapie",
    "tiefenpsychologisch_fundierte_Psychotherapie",
)
VERKEHRSMITTEL = ("Auto", "ÖPNV")

PATIENTENSTATUS = (
    "offen",
    "auf_der_Suche",
    "in_Therapie",
    "Therapie_abgeschlossen",
    "Suche_abgebrochen",
    "Therapie_abgebrochen",
)
THERAPEUTENSTATUS = ("aktiv", "gesperrt", "inaktiv")
SUCHSTATUS = ("aktiv", "erfolgreich", "pausiert", "abgebrochen")
ANTWORTTYP = (
    "vollstaendige_Annahme",
    "teilweise_Annahme",
    "vollstaendige_Ablehnung",
    "keine_Antwort",
)
ANFRAGE_PATIENT_STATUS = (
    "anstehend",
    "angenommen",
    "abgelehnt",
    "keine_antwort",
    "anderweitig_vermittelt",
)
PATIENTENERGEBNIS = (
    "angenommen",
    "abgelehnt_Kapazitaet",
    "abgelehnt_nicht_geeignet",
    "abgelehnt_sonstiges",
    "nicht_erschienen",
    "in_Sitzungen",
)
EMAILSTATUS = ("Entwurf", "In_Warteschlange", "Wird_gesendet", "Gesendet", "Fehlgeschlagen")
TELEFONANRUFSTATUS = ("geplant", "abgeschlossen", "fehlgeschlagen", "abgebrochen")

# Kinds of email psymatch sends; together with the Anfrage or patient id a
# kind is the idempotency key of a sending (architecture.md section 3).
EMAIL_ART = (
    "anfrage",  # therapist inquiry, section 12.1
    "erinnerung",  # reminder, section 12.2
    "annahme_bestaetigung",  # acceptance confirmation to the therapist
    "konflikt",  # conflict notice, section 12.5
    "vermittlung",  # placement success email to the patient, section 12.3
    "sonstige",
)

INBOUND_STATUS = ("neu", "verarbeitet", "pruefung", "ignoriert", "fehler")
OUTBOX_STATUS = ("offen", "eingereiht", "erledigt", "fehlgeschlagen")

GEO_QUELLE = ("plz", "adresse")

SYMPTOME = (
    "Depression / Niedergeschlagenheit",
    "Ängste / Panikattacken",
    "Burnout / Erschöpfung",
    "Schlafstörungen",
    "Stress / Überforderung",
    "Trauer / Verlust",
    "Reizbarkeit / Wutausbrüche",
    "Stimmungsschwankungen",
    "Innere Leere",
    "Einsamkeit",
    "Sorgen / Grübeln",
    "Selbstzweifel",
    "Konzentrationsprobleme",
    "Negative Gedanken",
    "Entscheidungsschwierigkeiten",
    "Psychosomatische Beschwerden",
    "Chronische Schmerzen",
    "Essstörungen",
    "Suchtprobleme (Alkohol/Drogen)",
    "Sexuelle Probleme",
    "Beziehungsprobleme",
    "Familienkonflikte",
    "Sozialer Rückzug",
    "Mobbing",
    "Trennungsschmerz",
    "Traumatische Erlebnisse",
    "Zwänge",
    "Selbstverletzung",
    "Suizidgedanken",
    "Identitätskrise",
)
MAX_SYMPTOME = 6
