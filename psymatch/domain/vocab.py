"""The fixed vocabulary of the domain (docs/domain.md §3 and §4).

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
# The four answers a therapist gives for one patient of a bundle: the one list
# that responses, reply parsing, answer forms, links and the console share.
ANGENOMMEN = "angenommen"
ABGELEHNT_KAPAZITAET = "abgelehnt_Kapazitaet"
ABGELEHNT_NICHT_GEEIGNET = "abgelehnt_nicht_geeignet"
ABGELEHNT_SONSTIGES = "abgelehnt_sonstiges"
THERAPEUTENANTWORTEN = (
    ANGENOMMEN,
    ABGELEHNT_KAPAZITAET,
    ABGELEHNT_NICHT_GEEIGNET,
    ABGELEHNT_SONSTIGES,
)
# What happens after an acceptance: the initial session took place, or not.
IN_SITZUNGEN = "in_Sitzungen"
NICHT_ERSCHIENEN = "nicht_erschienen"
NACH_ANNAHME = (IN_SITZUNGEN, NICHT_ERSCHIENEN)
# Outcomes that count as an acceptance (the patient was taken, whatever followed).
ANNAHME_ERGEBNISSE = (ANGENOMMEN, IN_SITZUNGEN, NICHT_ERSCHIENEN)
PATIENTENERGEBNIS = (*THERAPEUTENANTWORTEN, NICHT_ERSCHIENEN, IN_SITZUNGEN)
# What a placed patient reports after the initial session (docs/domain.md §11.3): it took
# place and the patient begins (-> in_Sitzungen, search erfolgreich), it does not fit, or no
# appointment came about (both -> the nicht_erschienen effects with that reason).
STATTGEFUNDEN = "stattgefunden"
PASST_NICHT = "passt_nicht"
KEIN_TERMIN = "kein_termin"
VERMITTLUNGSERGEBNISSE = (STATTGEFUNDEN, PASST_NICHT, KEIN_TERMIN)
VERMITTLUNGSERGEBNIS_LABELS = {
    STATTGEFUNDEN: "Erstgespräch hat stattgefunden, ich beginne",
    PASST_NICHT: "Es passt nicht",
    KEIN_TERMIN: "Kein Termin zustande gekommen",
}
# German labels of the answers, as emails, link pages and the console show them.
ANTWORT_LABELS = {
    ANGENOMMEN: "Ja, ich kann ein Erstgespräch anbieten",
    ABGELEHNT_KAPAZITAET: "Nein, keine Kapazität",
    ABGELEHNT_NICHT_GEEIGNET: "Nein, nicht geeignet",
    ABGELEHNT_SONSTIGES: "Nein, sonstiger Grund",
    IN_SITZUNGEN: "in Sitzungen",
    NICHT_ERSCHIENEN: "nicht erschienen",
}
EMAILSTATUS = ("Entwurf", "In_Warteschlange", "Wird_gesendet", "Gesendet", "Fehlgeschlagen")
TELEFONANRUFSTATUS = ("geplant", "abgeschlossen", "fehlgeschlagen", "abgebrochen")

# Kinds of email psymatch sends; together with the Anfrage or patient id a
# kind is the idempotency key of a sending (docs/domain.md §3).
EMAIL_ART = (
    "anfrage",  # therapist inquiry, docs/domain.md §7
    "erinnerung",  # reminder, §8.1
    "annahme_bestaetigung",  # acceptance confirmation to the therapist
    "konflikt",  # conflict notice, §10
    "vermittlung",  # placement success email to the patient, §11.3
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

# Staff roles of the console, weakest first (SECURITY.md "Staff and roles"): ``lesen`` only
# reads; ``team`` does the daily work; ``admin`` also switches feature flags, erases
# patients' data and rotates keys.
STAFF_ROLES = ("lesen", "team", "admin")
