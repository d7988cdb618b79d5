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

# --- German labels for staff (console Personen, issue 15.2): no raw enum code is shown ---

PATIENTENSTATUS_LABELS = {
    "offen": "offen",
    "auf_der_Suche": "auf der Suche",
    "in_Therapie": "in Therapie",
    "Therapie_abgeschlossen": "Therapie abgeschlossen",
    "Suche_abgebrochen": "Suche abgebrochen",
    "Therapie_abgebrochen": "Therapie abgebrochen",
}
THERAPEUTENSTATUS_LABELS = {"aktiv": "aktiv", "gesperrt": "gesperrt", "inaktiv": "inaktiv"}
SUCHSTATUS_LABELS = {
    "aktiv": "aktiv",
    "erfolgreich": "erfolgreich",
    "pausiert": "pausiert",
    "abgebrochen": "abgebrochen",
}
ANTWORTTYP_LABELS = {
    "vollstaendige_Annahme": "alle angenommen",
    "teilweise_Annahme": "teilweise angenommen",
    "vollstaendige_Ablehnung": "alle abgelehnt",
    "keine_Antwort": "ohne Antwort geschlossen",
}
ANFRAGE_PATIENT_STATUS_LABELS = {
    "anstehend": "offen",
    "angenommen": "angenommen",
    "abgelehnt": "abgelehnt",
    "keine_antwort": "keine Antwort",
    "anderweitig_vermittelt": "anderweitig vermittelt",
}
EMAILSTATUS_LABELS = {
    "Entwurf": "Entwurf",
    "In_Warteschlange": "in Warteschlange",
    "Wird_gesendet": "wird gesendet",
    "Gesendet": "gesendet",
    "Fehlgeschlagen": "fehlgeschlagen",
}
EMAIL_ART_LABELS = {
    "anfrage": "Anfrage",
    "erinnerung": "Erinnerung",
    "annahme_bestaetigung": "Annahmebestätigung",
    "konflikt": "Konflikthinweis",
    "vermittlung": "Vermittlungsmail",
    "sonstige": "sonstige",
}
TELEFONANRUFSTATUS_LABELS = {
    "geplant": "geplant",
    "abgeschlossen": "erreicht",
    "fehlgeschlagen": "nicht erreicht",
    "abgebrochen": "abgesagt",
}
INBOUND_STATUS_LABELS = {
    "neu": "neu",
    "verarbeitet": "verarbeitet",
    "pruefung": "zur Prüfung",
    "ignoriert": "ignoriert",
    "fehler": "Fehler",
}
ANREDE_LABELS = {"Herr": "Herr", "Frau": "Frau"}
GESCHLECHT_LABELS = {
    "männlich": "männlich",
    "weiblich": "weiblich",
    "divers": "divers",
    "keine_Angabe": "keine Angabe",
}
THERAPEUTENGESCHLECHT_PRAEFERENZ_LABELS = {
    "Männlich": "männlich",
    "Weiblich": "weiblich",
    "Egal": "egal",
}
THERAPIEVERFAHREN_LABELS = {
    "egal": "egal",
    "Verhaltenstherapie": "Verhaltenstherapie",
    "tiefenpsychologisch_fundierte_Psychotherapie": "tiefenpsychologisch fundierte Psychotherapie",
}
VERKEHRSMITTEL_LABELS = {"Auto": "Auto", "ÖPNV": "ÖPNV"}
AUSLOESER_LABELS = {"runde": "automatische Runde", "personal": "vom Team zusammengestellt"}
# Enum fields of patients and therapists and their labels (for forms and the record view).
ENUM_FIELD_LABELS = {
    "anrede": ANREDE_LABELS,
    "geschlecht": GESCHLECHT_LABELS,
    "geschlechtspraeferenz": THERAPEUTENGESCHLECHT_PRAEFERENZ_LABELS,
    "bevorzugtes_therapeutengeschlecht": THERAPEUTENGESCHLECHT_PRAEFERENZ_LABELS,
    "psychotherapieverfahren": THERAPIEVERFAHREN_LABELS,
    "bevorzugtes_therapieverfahren": THERAPIEVERFAHREN_LABELS,
    "verkehrsmittel": VERKEHRSMITTEL_LABELS,
}
FIELD_LABELS = {
    "external_id": "Externe ID",
    "anrede": "Anrede",
    "geschlecht": "Geschlecht",
    "titel": "Titel",
    "vorname": "Vorname",
    "nachname": "Nachname",
    "strasse": "Straße",
    "plz": "PLZ",
    "ort": "Ort",
    "email": "E-Mail",
    "telefon": "Telefon",
    "fax": "Fax",
    "webseite": "Webseite",
    "kassensitz": "Kassensitz",
    "telefonische_erreichbarkeit": "Telefonische Erreichbarkeit",
    "arbeitszeiten": "Arbeitszeiten",
    "fremdsprachen": "Fremdsprachen",
    "psychotherapieverfahren": "Psychotherapieverfahren",
    "zusatzqualifikationen": "Zusatzqualifikationen",
    "besondere_leistungsangebote": "Besondere Leistungsangebote",
    "letzter_kontakt_email": "Letzter Kontakt per E-Mail",
    "letzter_kontakt_telefon": "Letzter Kontakt per Telefon",
    "letztes_persoenliches_gespraech": "Letztes persönliches Gespräch",
    "potenziell_verfuegbar": "Potenziell verfügbar",
    "potenziell_verfuegbar_notizen": "Notizen zur Verfügbarkeit",
    "ueber_curavani_informiert": "Über Curavani informiert",
    "bevorzugte_diagnosen": "Bevorzugte Diagnosen (ICD-10)",
    "bevorzugte_symptome": "Bevorzugte Symptome",
    "alter_min": "Mindestalter",
    "alter_max": "Höchstalter",
    "geschlechtspraeferenz": "Bevorzugtes Geschlecht der Patient/innen",
    "bevorzugt_gruppentherapie": "Bevorzugt Gruppentherapie",
    "status": "Status",
    "sperrgrund": "Sperrgrund",
    "sperrdatum": "Sperrdatum",
    "naechster_kontakt_moeglich": "Nächster Kontakt möglich ab",
    "hausarzt": "Hausarzt/Hausärztin",
    "krankenkasse": "Krankenkasse",
    "krankenversicherungsnummer": "Versichertennummer",
    "geburtsdatum": "Geburtsdatum",
    "symptome": "Symptome",
    "erfahrung_mit_psychotherapie": "Erfahrung mit Psychotherapie",
    "letzte_sitzung_vorherige_psychotherapie": "Letzte Sitzung der vorherigen Therapie",
    "vertraege_unterschrieben": "Verträge unterschrieben",
    "zahlungsreferenz": "Zahlungsreferenz",
    "zahlung_eingegangen": "Zahlung eingegangen",
    "startdatum": "Startdatum",
    "zeitliche_verfuegbarkeit": "Zeitliche Verfügbarkeit",
    "raeumliche_verfuegbarkeit": "Maximale Entfernung (km)",
    "offen_fuer_gruppentherapie": "Offen für Gruppentherapie",
    "offen_fuer_diga": "Offen für DiGA",
    "ausgeschlossene_therapeuten": "Dauerhaft ausgeschlossene Therapeut/innen (IDs)",
    "bevorzugtes_therapeutengeschlecht": "Bevorzugtes Geschlecht der Therapeut/in",
    "bevorzugtes_therapieverfahren": "Bevorzugtes Therapieverfahren",
    "letzter_kontakt": "Letzter Kontakt",
    "verkehrsmittel": "Verkehrsmittel",
    "erster_therapieplatz_am": "Erster Therapieplatz am",
    "funktionierender_therapieplatz_am": "Funktionierender Therapieplatz am",
    "empfehler_der_unterstuetzung": "Empfohlen durch",
}
# Audit actions as staff read them in a person's timeline.
AUDIT_ACTION_LABELS = {
    "create_platzsuche": "Suche eröffnet",
    "update_platzsuche": "Suche geändert",
    "exclude_therapist": "Therapeut/in ausgeschlossen",
    "remove_exclusion": "Ausschluss aufgehoben",
    "record_response": "Antwort erfasst",
    "record_patient_outcome": "Ergebnis nach Annahme erfasst",
    "close_without_response": "Anfrage ohne Antwort geschlossen",
    "record_placement_outcome": "Rückmeldung zur Vermittlung erfasst",
    "placement_reminder": "Erinnerung zur Vermittlung",
    "request_placement_email": "Vermittlungsmail angefordert",
    "conflict_notice": "Konflikthinweis",
    "send_anfrage": "Anfrage gesendet",
    "request_send": "Anfrage zum Versand eingeplant",
    "create_anfrage": "Anfrage erstellt",
    "follow_up": "Nachfassen",
    "set_call_status": "Anrufstatus gesetzt",
    "reschedule_call": "Anruf verschoben",
    "resend_email": "E-Mail erneut gesendet",
    "override_cooling": "Abkühlung überschrieben",
    "confirm_sender": "Absender bestätigt",
    "patient_exported": "Daten exportiert",
    "patient_erased": "Daten gelöscht",
    "edit_patient": "Daten geändert",
    "edit_therapist": "Daten geändert",
    "set_potenziell_verfuegbar": "Verfügbarkeit geändert",
    "set_therapist_status": "Status geändert",
    "decide_reply": "Antwort entschieden",
    "dismiss_reply": "Antwort verworfen",
    "decide_link_klick": "Klick entschieden",
    "dismiss_link_klick": "Klick verworfen",
}
