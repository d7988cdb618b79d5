"""Reproducible demo data: therapists, patients and their aktiv Platzsuchen.

``generate`` fills an empty database (or one without demo rows) with realistic,
German-looking records on real postal codes from ``plz_centroids``: dense in the
big cities, sparse in the countryside, therapists a bit more urban than
patients. Everything random comes from ``random.Random`` streams seeded from
``seed``; every timestamp is derived from ``today`` at clock times drawn from
those streams, never from the current time. The same seed and ``today`` into
another empty database therefore give identical rows, ids included.

Rows are built in Python first and written with bulk inserts in one
transaction; ids are explicit (so foreign keys and JSON references are
deterministic) and the PostgreSQL id sequences are moved past them afterwards.
"""

from __future__ import annotations

import bisect
import csv
import datetime as dt
import random
import re
import string
import time
import unicodedata
from collections.abc import Callable
from zoneinfo import ZoneInfo

from db import plz as plz_data
from db.bulk import advance_sequences, bulk_insert
from db.database import connection, db
from db.models import Patient, Platzsuche, PlzCentroid, Therapist
from psymatch import settings
from psymatch.domain import vocab
from psymatch.domain.schedule import WEEKDAYS

from . import people

EXTERNAL_PREFIX = "demo-"
NOTE_AUTHOR = "demo"
_UTC = dt.UTC


class DemoDataError(Exception):
    """Demo data cannot be generated (bad arguments or demo rows already present)."""


# --- vocabulary of plausible values ----------------------------------------------------

FEMALE_NAMES = (
    "Anna", "Maria", "Sophie", "Laura", "Lena", "Lea", "Julia", "Katharina", "Sarah", "Lisa",
    "Hannah", "Johanna", "Marie", "Emma", "Mia", "Clara", "Charlotte", "Greta", "Frieda", "Ida",
    "Paula", "Luisa", "Nele", "Jana", "Stefanie", "Sabine", "Susanne", "Petra", "Andrea",
    "Claudia", "Monika", "Birgit", "Ute", "Heike", "Karin", "Renate", "Ursula", "Gisela",
    "Christine", "Martina", "Nicole", "Sandra", "Daniela", "Simone", "Melanie", "Kerstin",
    "Anja", "Silke", "Tanja", "Jutta", "Doris", "Ingrid", "Elke", "Bärbel", "Mareike", "Jördis",
    "Käthe", "Hülya", "Ayşe", "Zoë", "Leonie", "Amélie",
)  # fmt: skip
MALE_NAMES = (
    "Alexander", "Andreas", "Benjamin", "Christian", "Daniel", "David", "Dennis", "Felix",
    "Florian", "Frank", "Jan", "Jens", "Jonas", "Jörg", "Jürgen", "Kai", "Klaus", "Lukas", "Leon",
    "Maximilian", "Michael", "Matthias", "Markus", "Martin", "Niklas", "Oliver", "Paul", "Peter",
    "Philipp", "Ralf", "Sebastian", "Stefan", "Thomas", "Tim", "Tobias", "Uwe", "Wolfgang",
    "Björn", "Sönke", "Günther", "Hans", "Helmut", "Dieter", "Bernd", "Holger", "Karl-Heinz",
    "Moritz", "Finn", "Elias", "Noah", "Emil", "Mehmet", "Ahmet", "Luca", "René", "Till",
    "Bastian", "Jörn", "Lütfi", "Jannik",
)  # fmt: skip
# Surnames use only ASCII letters, ä ö ü ß and hyphens, so that the practice-owner
# transliteration of docs/domain.md §3 (ä→ae, ö→oe, ü→ue, ß→ss) reproduces them in emails.
SURNAMES = (
    "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz",
    "Hoffmann", "Schäfer", "Koch", "Bauer", "Richter", "Klein", "Wolf", "Schröder", "Neumann",
    "Schwarz", "Zimmermann", "Braun", "Krüger", "Hofmann", "Hartmann", "Lange", "Schmitt",
    "Werner", "Schmitz", "Krause", "Meier", "Lehmann", "Schmid", "Schulze", "Maier", "Köhler",
    "Herrmann", "König", "Walter", "Mayer", "Huber", "Kaiser", "Fuchs", "Peters", "Lang",
    "Scholz", "Möller", "Weiß", "Jung", "Hahn", "Schubert", "Vogel", "Friedrich", "Keller",
    "Günther", "Frank", "Berger", "Winkler", "Roth", "Beck", "Lorenz", "Baumann", "Franke",
    "Albrecht", "Schuster", "Simon", "Ludwig", "Böhm", "Winter", "Kraus", "Martin",
    "Schumacher", "Krämer", "Vogt", "Stein", "Jäger", "Otto", "Sommer", "Groß", "Seidel",
    "Heinrich", "Brandt", "Haas", "Schreiber", "Graf", "Schulte", "Dietrich", "Ziegler", "Kuhn",
    "Kühn", "Pohl", "Engel", "Horn", "Busch", "Bergmann", "Thomas", "Voigt", "Sauer", "Arnold",
    "Wolff", "Pfeiffer", "Özdemir", "Öztürk", "Yilmaz", "Kaya", "Nowak", "Kowalski", "Strauß",
    "Gößling", "Dürr", "Förster", "Nüßlein", "Bäcker",
)  # fmt: skip
STREETS = (
    "Hauptstraße", "Bahnhofstraße", "Schulstraße", "Gartenstraße", "Dorfstraße", "Bergstraße",
    "Lindenstraße", "Kirchstraße", "Waldstraße", "Ringstraße", "Goethestraße", "Schillerstraße",
    "Mühlenweg", "Am Markt", "Wiesenweg", "Birkenweg", "Rosenstraße", "Friedhofstraße",
    "Feldstraße", "Poststraße", "Mozartstraße", "Lessingstraße", "Blumenstraße", "Talstraße",
    "Parkstraße", "Kastanienallee", "Ahornweg", "Uhlandstraße", "Beethovenstraße",
    "Friedrichstraße", "Marktplatz", "Brückenstraße", "Tannenweg", "Am Sportplatz",
    "Jahnstraße", "Eichendorffstraße", "Körnerstraße", "Mörikestraße", "Königsallee",
    "Sonnenweg", "Buchenweg", "Industriestraße", "Luisenstraße", "Wilhelmstraße",
)  # fmt: skip
TITLES = ((None, 38), ("Dipl.-Psych.", 35), ("Dr.", 25), ("Prof. Dr.", 2))
INSURERS_NATIONAL = (
    ("TK", 24), ("Barmer", 13), ("DAK-Gesundheit", 8), ("IKK classic", 4), ("KKH", 3),
    ("hkk", 2), ("HEK", 1), ("SBK", 2), ("BKK firmus", 1), ("Mobil Krankenkasse", 2),
    ("Audi BKK", 1), ("BKK VBU", 1), ("Knappschaft", 2), ("VIACTIV Krankenkasse", 1),
)  # fmt: skip
AOK_SHARE = 33  # weight of the regional AOK next to the national insurers above
AOK_BY_LAND = {
    "BY": "AOK Bayern", "BE": "AOK Nordost", "BB": "AOK Nordost", "MV": "AOK Nordost",
    "SN": "AOK PLUS", "TH": "AOK PLUS", "BW": "AOK Baden-Württemberg", "NI": "AOK Niedersachsen",
    "HH": "AOK Rheinland/Hamburg", "NW": "AOK Rheinland/Hamburg", "SH": "AOK NordWest",
    "HE": "AOK Hessen", "RP": "AOK Rheinland-Pfalz/Saarland", "SL": "AOK Rheinland-Pfalz/Saarland",
    "ST": "AOK Sachsen-Anhalt", "HB": "AOK Bremen/Bremerhaven",
}  # fmt: skip
SYMPTOM_WEIGHTS = {
    "Depression / Niedergeschlagenheit": 18, "Ängste / Panikattacken": 15,
    "Burnout / Erschöpfung": 10, "Stress / Überforderung": 10, "Schlafstörungen": 8,
    "Sorgen / Grübeln": 6, "Selbstzweifel": 6, "Innere Leere": 4, "Trauer / Verlust": 4,
    "Beziehungsprobleme": 5, "Einsamkeit": 4, "Konzentrationsprobleme": 3,
    "Negative Gedanken": 4, "Stimmungsschwankungen": 4, "Psychosomatische Beschwerden": 3,
    "Traumatische Erlebnisse": 3, "Familienkonflikte": 3, "Trennungsschmerz": 3,
    "Sozialer Rückzug": 2, "Reizbarkeit / Wutausbrüche": 2, "Essstörungen": 2, "Zwänge": 2,
    "Chronische Schmerzen": 2, "Entscheidungsschwierigkeiten": 2, "Mobbing": 1,
    "Suchtprobleme (Alkohol/Drogen)": 1, "Sexuelle Probleme": 1, "Selbstverletzung": 1,
    "Suizidgedanken": 1, "Identitätskrise": 1,
}  # fmt: skip
ICD10 = ("F32.1", "F33.1", "F41.0", "F41.1", "F43.1", "F43.2", "F42.0", "F50.0", "F45.4", "F60.3")
LANGUAGES = (
    "Englisch", "Französisch", "Türkisch", "Russisch", "Arabisch", "Spanisch", "Polnisch",
    "Italienisch", "Persisch",
)  # fmt: skip
QUALIFICATIONS = (
    "EMDR", "Traumatherapie", "Schematherapie", "DBT", "Hypnotherapie", "Paartherapie",
    "Kinder- und Jugendlichenpsychotherapie", "Suchttherapie", "Achtsamkeitsbasierte Verfahren",
)  # fmt: skip
OFFERS = (
    "Videosprechstunde", "Abendtermine", "Gruppentherapie", "Barrierefreie Praxis",
    "Termine am Samstag", "Akutsprechstunde",
)  # fmt: skip
BLOCK_REASONS = (
    "Wünscht keine weiteren Anfragen", "Praxis aufgegeben", "Keine Kassenzulassung mehr",
    "Beschwerde über Kontakthäufigkeit", "Ruhestand", "Dauerhaft keine Kapazitäten",
)  # fmt: skip
EXCLUSION_REASONS = (
    "Patient wünscht keinen Kontakt", "Therapeut hat abgelehnt", "Früher bereits in Behandlung",
    "Persönliche Bekanntschaft", "Praxis nicht barrierefrei",
)  # fmt: skip
REFERRERS = ("Hausarzt", "Freunde", "Internetsuche", "Instagram", "Krankenkasse", "Podcast")
MOBILE_PREFIXES = (
    "0151", "0152", "0157", "0159", "0160", "0162", "0163", "0170", "0171", "0172", "0173",
    "0174", "0175", "0176", "0177", "0178", "0179",
)  # fmt: skip

# Big cities: (tier, area code). Tier 1 PLZs weigh most, tier 2 less; the rest of the
# country shares the remainder. Names are GeoNames place names; for the cities in
# CITY_DISTRICTS also "<city> <district>" matches.
CITIES = {
    "Berlin": (1, "030"), "Hamburg": (1, "040"), "München": (1, "089"), "Köln": (1, "0221"),
    "Frankfurt am Main": (1, "069"), "Stuttgart": (2, "0711"), "Düsseldorf": (2, "0211"),
    "Leipzig": (2, "0341"), "Dortmund": (2, "0231"), "Essen": (2, "0201"), "Bremen": (2, "0421"),
    "Dresden": (2, "0351"), "Hannover": (2, "0511"), "Nürnberg": (2, "0911"),
    "Duisburg": (2, "0203"), "Bochum": (2, "0234"), "Wuppertal": (2, "0202"),
    "Bielefeld": (2, "0521"), "Bonn": (2, "0228"), "Münster": (2, "0251"),
    "Mannheim": (2, "0621"), "Karlsruhe": (2, "0721"), "Augsburg": (2, "0821"),
    "Wiesbaden": (2, "0611"), "Kiel": (2, "0431"), "Freiburg im Breisgau": (2, "0761"),
    "Heidelberg": (2, "06221"), "Mainz": (2, "06131"), "Göttingen": (2, "0551"),
    "Tübingen": (2, "07071"), "Potsdam": (2, "0331"), "Aachen": (2, "0241"),
    "Braunschweig": (2, "0531"), "Kassel": (2, "0561"), "Magdeburg": (2, "0391"),
    "Erfurt": (2, "0361"), "Rostock": (2, "0381"), "Halle": (2, "0345"), "Lübeck": (2, "0451"),
    "Regensburg": (2, "0941"), "Würzburg": (2, "0931"), "Darmstadt": (2, "06151"),
    "Oldenburg": (2, "0441"), "Osnabrück": (2, "0541"), "Saarbrücken": (2, "0681"),
    "Chemnitz": (2, "0371"),
}  # fmt: skip
CITY_DISTRICTS = ("Berlin", "Hamburg", "Stuttgart", "Dresden")
# PLZ weight per tier: (patients, therapists); therapists cluster in cities even more.
TIER_WEIGHTS = {0: (1.0, 1.0), 1: (4.0, 8.0), 2: (2.5, 4.5)}
# First digit of the PLZ -> first digit of a plausible area code for the region.
AREA_DIGIT = {"0": "3", "1": "3", "2": "4", "3": "5", "4": "2", "5": "2", "6": "6", "7": "7"}

# Names of company ("Großkunden") postal codes, used only when the GeoNames file is missing.
_COMPANY_NAME = re.compile(
    r"GmbH|\bAG\b|\bKG\b|e\.\s?V\.|Agentur|AOK|BKK|[Kk]rankenkasse|[Vv]ersicherung|Bank\b|"
    r"Verlag|Deutsche Post|Stadtverwaltung|Gericht\b|Universit|Klinik|\bSE\b|Service|"
    r"Gesellschaft|Verwaltung|Finanzamt|HUK|[&@\d]|^[a-z]"
)

# --- small helpers ------------------------------------------------------------------------

_TRANSLIT = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss"})


def ascii_name(text: str) -> str:
    """Lowercase ASCII form for email addresses: ä→ae, ö→oe, ü→ue, ß→ss, accents dropped."""
    lowered = text.lower().translate(_TRANSLIT)
    decomposed = unicodedata.normalize("NFKD", lowered)
    return "".join(c for c in decomposed if c in string.ascii_lowercase or c in "-.")


class _Picker:
    """Weighted choice from ``(value, weight)`` pairs via cumulative weights."""

    def __init__(self, pairs):
        self.values = [value for value, _weight in pairs]
        self.cum = []
        total = 0.0
        for _value, weight in pairs:
            total += weight
            self.cum.append(total)
        self.total = total

    def __call__(self, rng: random.Random):
        return self.values[bisect.bisect(self.cum, rng.random() * self.total)]


_TITLE = _Picker(TITLES)
_NATIONAL_INSURER = _Picker(INSURERS_NATIONAL)
_NATIONAL_WEIGHT = sum(weight for _name, weight in INSURERS_NATIONAL)
_SYMPTOM = _Picker(list(SYMPTOM_WEIGHTS.items()))


class _Clock:
    """Local dates and clock times (TIMEZONE) turned into naive UTC timestamps."""

    def __init__(self, today: dt.date, zone: str):
        self.today = today
        self.zone = ZoneInfo(zone)
        self._days: dict[int, dt.datetime] = {}

    def at(self, days_ago: int, minute_of_day: int) -> dt.datetime:
        """UTC of a local clock time on ``today - days_ago`` (times after 04:00 only).

        The UTC offset of each local date is computed once: daylight-saving
        switches happen before 04:00, so the offset at noon holds all day.
        """
        base = self._days.get(days_ago)
        if base is None:
            midnight = dt.datetime.combine(self.today - dt.timedelta(days=days_ago), dt.time())
            noon = (midnight + dt.timedelta(hours=12)).replace(tzinfo=self.zone)
            base = self._days[days_ago] = midnight - noon.utcoffset()
        return base + dt.timedelta(minutes=minute_of_day)

    def local(self, utc: dt.datetime) -> dt.datetime:
        return utc.replace(tzinfo=_UTC).astimezone(self.zone).replace(tzinfo=None)

    def note(self, utc: dt.datetime, text: str) -> str:
        return f"[{self.local(utc):%Y-%m-%d %H:%M} ({NOTE_AUTHOR})] {text}"


_HM = [f"{m // 60:02d}:{m % 60:02d}" for m in range(24 * 60 + 1)]  # "08:00"
_H_MM = [f"{m // 60}:{m % 60:02d}" for m in range(24 * 60 + 1)]  # "8:00"


def _hm(minute: int) -> str:
    return _HM[minute]


def _one(rng: random.Random, seq):
    """A uniform choice from ``seq`` (one ``random()`` call, cheaper than ``rng.choice``)."""
    return seq[int(rng.random() * len(seq))]


def _sample(rng: random.Random, seq, k: int) -> list:
    """``k`` distinct elements of ``seq`` in random order (a partial Fisher-Yates shuffle)."""
    pool = list(seq)
    size = len(pool)
    for i in range(k):
        j = i + int(rng.random() * (size - i))
        pool[i], pool[j] = pool[j], pool[i]
    return pool[:k]


def _int(rng: random.Random, low: int, high: int) -> int:
    """A uniform integer in ``low..high`` (inclusive)."""
    return low + int(rng.random() * (high - low + 1))


def _gender(rng: random.Random, female_share: float) -> tuple[str, str, str]:
    """(geschlecht, anrede, vorname) with anrede and first name matching the gender."""
    u = rng.random()
    if u < female_share:
        return "weiblich", "Frau", _one(rng, FEMALE_NAMES)
    if u < 0.99:
        return "männlich", "Herr", _one(rng, MALE_NAMES)
    geschlecht = "divers" if u < 0.995 else "keine_Angabe"
    if rng.random() < 0.5:
        return geschlecht, "Frau", _one(rng, FEMALE_NAMES)
    return geschlecht, "Herr", _one(rng, MALE_NAMES)


def _surname(rng: random.Random) -> str:
    if rng.random() < 0.03:
        first, second = _sample(rng, SURNAMES, 2)
        return f"{first}-{second}"
    return _one(rng, SURNAMES)


def _area_code(place) -> str:
    if place.city is not None:
        return CITIES[place.city][1]
    digit = AREA_DIGIT.get(place.plz[0], place.plz[0])
    return f"0{digit}{int(place.plz) * 7919 % 900 + 100}"


def _landline(rng: random.Random, area: str) -> str:
    number = str(_int(rng, 10**5, 10**8 - 1))[: 9 - len(area) + _int(rng, 0, 2)]
    style = rng.random()
    if style < 0.6:
        return f"{area} {number}"
    if style < 0.8:
        return f"{area}/{number}"
    return f"+49 {area[1:]} {number}"


def _mobile(rng: random.Random) -> str:
    prefix = _one(rng, MOBILE_PREFIXES)
    number = str(_int(rng, 10**6, 10**8 - 1))
    if rng.random() < 0.7:
        return f"{prefix} {number}"
    return f"+49 {prefix[1:]} {number}"


def _street(rng: random.Random) -> str:
    number = _int(rng, 1, 120) if rng.random() < 0.8 else _int(rng, 1, 25)
    suffix = _one(rng, "abc") if rng.random() < 0.07 else ""
    return f"{_one(rng, STREETS)} {number}{suffix}"


def _unique(used: set, local: str, domain: str) -> str:
    """``local@domain``, numbered (local2, local3, ...) when the address is taken."""
    address, counter = f"{local}@{domain}", 1
    while address in used:
        counter += 1
        address = f"{local}{counter}@{domain}"
    used.add(address)
    return address


def _kvnr(rng: random.Random) -> str:
    """Krankenversichertennummer: letter, 8 digits and the check digit of the real scheme."""
    letter = _one(rng, string.ascii_uppercase)
    digits = [_int(rng, 0, 9) for _ in range(8)]
    letter_value = f"{ord(letter) - 64:02d}"
    sequence = [int(letter_value[0]), int(letter_value[1]), *digits]
    total = 0
    for index, digit in enumerate(sequence):
        product = digit * (1 if index % 2 == 0 else 2)
        total += product // 10 + product % 10
    return letter + "".join(map(str, digits)) + str(total % 10)


# --- places ----------------------------------------------------------------------------------


class _Place:
    __slots__ = ("plz", "ort", "land", "lat", "lon", "city", "tier")

    def __init__(self, plz, ort, land, lat, lon):
        self.plz, self.ort, self.land, self.lat, self.lon = plz, ort, land, lat, lon
        self.city = _city_of(ort)
        self.tier = CITIES[self.city][0] if self.city else 0


def _city_of(ort: str) -> str | None:
    if ort in CITIES:
        return ort
    head = ort.split(" ", 1)[0]
    if head in CITY_DISTRICTS and ort != head:
        return head
    return None


def _residential_names() -> dict[str, str] | None:
    """PLZ -> first residential place name from the GeoNames file, or None without the file.

    Company postal codes ("Großkunden-PLZ") carry a numeric state code in GeoNames;
    a PLZ counts as residential when at least one of its rows has a letter code.
    """
    try:
        with plz_data.open_geonames() as handle:
            names: dict[str, str] = {}
            for row in csv.DictReader(handle):
                if row["state_code"].isalpha() and row["postal_code"] not in names:
                    names[row["postal_code"]] = row["place_name"].split(",")[0].strip()
            return names
    except (OSError, plz_data.GeonamesMissing):
        return None


def load_places() -> tuple[list[_Place], str]:
    """Residential PLZ centroids sorted by PLZ, and a word on how they were chosen."""
    rows = (
        PlzCentroid.select(
            PlzCentroid.plz,
            PlzCentroid.ort,
            PlzCentroid.bundesland_code,
            PlzCentroid.latitude,
            PlzCentroid.longitude,
        )
        .order_by(PlzCentroid.plz)
        .tuples()
    )
    names = _residential_names()
    places = []
    for code, ort, land, lat, lon in rows:
        if names is not None:
            if code not in names:
                continue
            ort = names[code] or ort
        elif _COMPANY_NAME.search(ort or ""):
            continue
        places.append(_Place(code, (ort or "")[:100], land, lat, lon))
    source = "GeoNames residential codes" if names is not None else "name heuristic"
    return places, source


# --- schedules -------------------------------------------------------------------------------


def _patient_schedule(rng: random.Random) -> dict[str, list[str]]:
    """Weekly availability with several ranges; employed people mostly evenings."""
    kind = rng.random()
    days: dict[str, list[str]] = {}
    if kind < 0.45:  # employed: evenings, early mornings, Saturdays
        for day in _sample(rng, WEEKDAYS[:5], _int(rng, 3, 5)):
            start = _one(rng, (16 * 60, 16 * 60 + 30, 17 * 60, 17 * 60 + 30, 18 * 60))
            end = min(start + _one(rng, (150, 180, 210, 240)), 21 * 60)
            days[day] = [f"{_hm(start)}-{_hm(end)}"]
            if rng.random() < 0.25:
                days[day].insert(0, "07:00-08:30")
        if rng.random() < 0.5:
            days["samstag"] = [f"{_hm(_one(rng, (8, 9, 10)) * 60)}-14:00"]
    elif kind < 0.8:  # flexible: mornings and afternoons on most weekdays
        for day in _sample(rng, WEEKDAYS[:5], _int(rng, 3, 5)):
            ranges = []
            if rng.random() < 0.85:
                ranges.append(f"{_hm(_one(rng, (8, 9)) * 60)}-12:00")
            if rng.random() < 0.85 or not ranges:
                ranges.append(f"13:00-{_hm(_one(rng, (16, 17, 18, 19)) * 60)}")
            days[day] = ranges
    else:  # part time: either mornings or afternoons
        morning = rng.random() < 0.5
        for day in _sample(rng, WEEKDAYS[:5], _int(rng, 3, 5)):
            if morning:
                days[day] = [f"{_hm(_one(rng, (7, 8, 9)) * 60)}-{_hm(_one(rng, (12, 13)) * 60)}"]
            else:
                days[day] = [f"{_hm(_one(rng, (13, 14)) * 60)}-{_hm(_one(rng, (18, 19, 20)) * 60)}"]
        if len(days) < 4:
            days.setdefault("freitag", ["14:00-18:00"])
    return {day: days[day] for day in WEEKDAYS if day in days}


def _working_hours(rng: random.Random) -> dict[str, list[str]]:
    if rng.random() < 0.15:
        return {}
    schedule = {}
    for day in WEEKDAYS[:5]:
        if rng.random() < 0.85:
            start = _one(rng, (7 * 60 + 30, 8 * 60, 8 * 60 + 30, 9 * 60))
            end = _one(rng, (17 * 60, 18 * 60, 19 * 60, 20 * 60))
            if rng.random() < 0.7:
                schedule[day] = [f"{_hm(start)}-12:30", f"13:30-{_hm(end)}"]
            else:
                schedule[day] = [f"{_hm(start)}-{_hm(end)}"]
    return schedule or {"mittwoch": ["09:00-13:00"]}


_WINDOW_PATTERNS = (
    (60,), (90,), (120,), (60, 60), (30, 45), (45, 45), (60, 30), (90, 60), (60, 90),
    (60, 60, 60), (30, 30, 30), (45, 30, 45), (30, 60, 30),
)  # fmt: skip
_WINDOW_STARTS = (450, 480, 510, 540, 720, 750, 780)  # 7:30 ... 13:00


def _phone_windows(rng: random.Random) -> dict[str, list[str]]:
    """1-3 hours a week; half in canonical keys ("montag", "08:00"), half as "Mo" / "8:00"."""
    if rng.random() < 0.05:
        return {}
    clock = _HM if rng.random() < 0.5 else _H_MM
    labels = WEEKDAYS[:5] if clock is _HM else ("Mo", "Di", "Mi", "Do", "Fr")
    pattern = _one(rng, _WINDOW_PATTERNS)
    days = sorted(_sample(rng, range(5), len(pattern)))
    schedule = {}
    for day, length in zip(days, pattern, strict=True):
        start = _one(rng, _WINDOW_STARTS)
        schedule[labels[day]] = [f"{clock[start]}-{clock[start + length]}"]
    return schedule


# --- therapists ------------------------------------------------------------------------------


THERAPIST_FIELDS = (
    "id", "created_at", "updated_at", "external_id", "strasse", "plz", "ort", "email", "telefon",
    "latitude", "longitude", "geo_quelle", "geo_plz", "anrede", "geschlecht", "titel", "vorname",
    "nachname", "fax", "webseite", "kassensitz", "telefonische_erreichbarkeit", "fremdsprachen",
    "psychotherapieverfahren", "zusatzqualifikationen", "besondere_leistungsangebote",
    "letzter_kontakt_email", "letzter_kontakt_telefon", "letztes_persoenliches_gespraech",
    "potenziell_verfuegbar", "potenziell_verfuegbar_notizen", "ueber_curavani_informiert",
    "naechster_kontakt_moeglich", "bevorzugte_diagnosen", "bevorzugte_symptome", "alter_min",
    "alter_max", "geschlechtspraeferenz", "arbeitszeiten", "bevorzugt_gruppentherapie", "status",
    "sperrgrund", "sperrdatum", "notizen",
)  # fmt: skip

GROUP_START_CHANCE = 0.0395  # with sizes 2-4 (mean 2.7): about 10 % of therapists in practices
_GROUP_SIZE = _Picker(((2, 50), (3, 30), (4, 20)))
_VERFAHREN = _Picker(
    (("Verhaltenstherapie", 55), ("tiefenpsychologisch_fundierte_Psychotherapie", 38), ("egal", 7))
)
_PREFERENCE = _Picker(((None, 80), ("Egal", 12), ("Weiblich", 6), ("Männlich", 2)))


def _practice_groups(rng: random.Random, count: int) -> list[list[int]]:
    """Consecutive index runs of 2-4 therapists sharing a practice."""
    groups, index = [], 0
    while index < count:
        if rng.random() < GROUP_START_CHANCE:
            size = min(_GROUP_SIZE(rng), count - index)
            if size >= 2:
                groups.append(list(range(index, index + size)))
            index += size
        else:
            index += 1
    return groups


def build_therapists(rng, count, places, cum, clock: _Clock, first_id: int) -> list[dict]:
    today = clock.today
    chosen = rng.choices(places, cum_weights=cum, k=count)
    groups = _practice_groups(rng, count)
    for members in groups:  # a practice: one address for all its members
        for index in members[1:]:
            chosen[index] = chosen[members[0]]
    imports = sorted(_sample(rng, range(60, 730), 6), reverse=True)  # import days (days ago)
    used_emails: set[str] = set()
    rows = []
    for index in range(count):
        place = chosen[index]
        geschlecht, anrede, vorname = _gender(rng, 0.74)
        nachname = _surname(rng)
        titel = _TITLE(rng)
        known_days = imports[index * len(imports) // count]  # days since the import
        created = clock.at(known_days, 6 * 60 + 30) + dt.timedelta(milliseconds=7 * index)
        row = {
            "id": first_id + index,
            "created_at": created,
            "updated_at": created,
            "external_id": f"{EXTERNAL_PREFIX}T{index + 1:07d}",
            "strasse": _street(rng),
            "plz": place.plz,
            "ort": place.ort,
            "email": None,
            "telefon": _landline(rng, _area_code(place)),
            "latitude": place.lat,
            "longitude": place.lon,
            "geo_quelle": "plz",
            "geo_plz": place.plz,
            "anrede": anrede,
            "geschlecht": geschlecht,
            "titel": titel,
            "vorname": vorname,
            "nachname": nachname,
            "fax": None,
            "webseite": None,
            "kassensitz": rng.random() < 0.92,
            "telefonische_erreichbarkeit": _phone_windows(rng),
            "fremdsprachen": _sample(rng, LANGUAGES, _int(rng, 1, 2)) if rng.random() < 0.3 else [],
            "psychotherapieverfahren": _VERFAHREN(rng),
            "zusatzqualifikationen": (
                ", ".join(_sample(rng, QUALIFICATIONS, _int(rng, 1, 3)))
                if rng.random() < 0.3
                else None
            ),
            "besondere_leistungsangebote": (
                ", ".join(_sample(rng, OFFERS, _int(rng, 1, 2))) if rng.random() < 0.25 else None
            ),
            "letzter_kontakt_email": None,
            "letzter_kontakt_telefon": (
                today - dt.timedelta(days=_int(rng, 1, known_days - 1))
                if rng.random() < 0.1
                else None
            ),
            "letztes_persoenliches_gespraech": (
                today - dt.timedelta(days=_int(rng, 1, known_days - 1))
                if rng.random() < 0.03
                else None
            ),
            "potenziell_verfuegbar": False,
            "potenziell_verfuegbar_notizen": None,
            "ueber_curavani_informiert": rng.random() < 0.3,
            "naechster_kontakt_moeglich": None,
            "bevorzugte_diagnosen": (
                sorted(_sample(rng, ICD10, _int(rng, 1, 3))) if rng.random() < 0.1 else []
            ),
            "bevorzugte_symptome": (
                _sample(rng, vocab.SYMPTOME, _int(rng, 2, 5)) if rng.random() < 0.2 else []
            ),
            "alter_min": None,
            "alter_max": None,
            "geschlechtspraeferenz": _PREFERENCE(rng),
            "arbeitszeiten": _working_hours(rng),
            "bevorzugt_gruppentherapie": rng.random() < 0.1,
            "status": "aktiv",
            "sperrgrund": None,
            "sperrdatum": None,
            "notizen": "",
        }
        if rng.random() < 0.25:
            row["fax"] = _landline(rng, _area_code(place))
        if rng.random() < 0.4:
            row["webseite"] = f"https://www.praxis-{ascii_name(nachname)}.example"
        ages = rng.random()
        if ages < 0.06:
            row["alter_min"] = _one(rng, (18, 21, 25, 30))
        elif ages < 0.11:
            row["alter_max"] = _one(rng, (35, 45, 55, 65))
        elif ages < 0.15:
            row["alter_min"], row["alter_max"] = _one(rng, ((18, 30), (21, 40), (25, 60), (40, 80)))
        elif ages < 0.16:
            row["alter_min"] = 0  # recorded as 0: means "no minimum" (docs/domain.md §3)
        if rng.random() < 0.2:
            row["potenziell_verfuegbar"] = True
            if rng.random() < 0.5:
                month = (today + dt.timedelta(days=_int(rng, 10, 90))).strftime("%m/%Y")
                row["potenziell_verfuegbar_notizen"] = f"Freie Kapazitäten ab {month} erwähnt"
        status = rng.random()
        if status < 0.03:
            row["status"] = "gesperrt"
            row["sperrgrund"] = _one(rng, BLOCK_REASONS)
            blocked_days = _int(rng, 1, known_days - 1)
            row["sperrdatum"] = today - dt.timedelta(days=blocked_days)
            row["updated_at"] = clock.at(blocked_days, _int(rng, 8 * 60, 18 * 60))
        elif status < 0.05:
            row["status"] = "inaktiv"
        if rng.random() < 0.1:  # answered recently: cooling for 28 days after the response
            days_left = _int(rng, 1, 27)
            row["naechster_kontakt_moeglich"] = today + dt.timedelta(days=days_left)
            answered = 28 - days_left
            row["letzter_kontakt_email"] = today - dt.timedelta(days=answered)
            answered_at = clock.at(answered, _int(rng, 8 * 60, 18 * 60))
            row["updated_at"] = max(row["updated_at"], answered_at)
        rows.append(row)

    # Practices: 2-4 therapists at one address sharing one email with a member's surname.
    in_group = set()
    for members in groups:
        first = rows[members[0]]
        shared_phone = rng.random() < 0.5
        for index in members[1:]:
            rows[index]["strasse"] = first["strasse"]
            rows[index]["webseite"] = first["webseite"]
            if shared_phone:
                rows[index]["telefon"] = first["telefon"]
        names = [ascii_name(rows[i]["nachname"]) for i in members]
        style = rng.random()
        if style < 0.15:
            a, b = _sample(rng, names, 2)
            email = _unique(used_emails, f"praxisgemeinschaft.{a}.{b}", "example.net")
        elif style < 0.6:
            email = _unique(used_emails, f"praxis.{_one(rng, names)}", "example.net")
        else:
            email = _unique(used_emails, "info", f"praxis-{_one(rng, names)}.example")
        for index in members:
            rows[index]["email"] = email
            in_group.add(index)
        if rng.random() < 0.1:  # one member recorded with a capital: same address normalised
            rows[_one(rng, members)]["email"] = email[0].upper() + email[1:]

    # Single therapists: about 15 % of all therapists have no email (phone channel only).
    no_email = 0.15 * count / max(count - len(in_group), 1)
    for index, row in enumerate(rows):
        if index in in_group or rng.random() < no_email:
            continue
        given, last = ascii_name(row["vorname"]), ascii_name(row["nachname"])
        style = rng.random()
        if style < 0.5:
            row["email"] = _unique(used_emails, f"{given}.{last}", "example.com")
        elif style < 0.8:
            row["email"] = _unique(used_emails, f"{given[0]}.{last}", "example.net")
        else:
            row["email"] = _unique(used_emails, "kontakt", f"psychotherapie-{last}.example")
    return rows


# --- patients and searches ----------------------------------------------------------------------


PATIENT_FIELDS = (
    "id", "created_at", "updated_at", "external_id", "strasse", "plz", "ort", "email", "telefon",
    "latitude", "longitude", "geo_quelle", "geo_plz", "anrede", "geschlecht", "vorname",
    "nachname", "hausarzt", "krankenkasse", "krankenversicherungsnummer", "geburtsdatum",
    "symptome", "erfahrung_mit_psychotherapie", "letzte_sitzung_vorherige_psychotherapie",
    "vertraege_unterschrieben", "zahlungsreferenz", "zahlung_eingegangen", "startdatum",
    "status", "zeitliche_verfuegbarkeit", "raeumliche_verfuegbarkeit", "verkehrsmittel",
    "offen_fuer_gruppentherapie", "offen_fuer_diga", "ausgeschlossene_therapeuten",
    "bevorzugtes_therapeutengeschlecht", "bevorzugtes_therapieverfahren", "letzter_kontakt",
    "erster_therapieplatz_am", "funktionierender_therapieplatz_am",
    "empfehler_der_unterstuetzung", "suchindex",
)  # fmt: skip
SEARCH_FIELDS = (
    "id", "created_at", "updated_at", "patient_id", "status", "ausgeschlossene_therapeuten",
    "vermittelter_therapeut_id", "erfolgreiche_vermittlung_datum", "notizen",
)  # fmt: skip

_SYMPTOM_COUNT = _Picker(((1, 25), (2, 35), (3, 25), (4, 15)))
_MAX_KM = _Picker(((10, 10), (15, 12), (20, 16), (25, 16), (30, 14), (40, 9), (50, 8), (None, 15)))
_GENDER_WISH = _Picker((("Egal", 70), ("Weiblich", 25), ("Männlich", 5)))
_METHOD_WISH = _Picker(
    (
        ("egal", 75),
        ("Verhaltenstherapie", 17),
        ("tiefenpsychologisch_fundierte_Psychotherapie", 8),
    )
)
_REFERENCE_CHARS = string.ascii_uppercase + string.digits


def _insurer(rng: random.Random, land: str | None) -> str:
    if rng.random() * (_NATIONAL_WEIGHT + AOK_SHARE) < AOK_SHARE:
        return AOK_BY_LAND.get(land or "", "AOK Bayern")
    return _NATIONAL_INSURER(rng)


def _symptoms(rng: random.Random) -> list[str]:
    wanted, chosen = _SYMPTOM_COUNT(rng), []
    while len(chosen) < wanted:
        label = _SYMPTOM(rng)
        if label not in chosen:
            chosen.append(label)
    return chosen


def _search_age(rng: random.Random) -> int:
    """Days since the search started: 1-240, recent starts more frequent."""
    return 1 + int(239 * rng.random() ** 2)


def build_patients(rng, count, share, places, cum, clock: _Clock, first_id, therapist_ids):
    """Patients (ids ordered by created_at) and the aktiv searches of ``round(share*count)``."""
    today = clock.today
    chosen = rng.choices(places, cum_weights=cum, k=count)
    searching = set(_sample(rng, range(count), round(share * count)))
    drafts = []
    for index in range(count):
        place = chosen[index]
        geschlecht, anrede, vorname = _gender(rng, 0.65)
        nachname = _surname(rng)
        age = min(80, max(18, int(rng.triangular(18, 81, 29))))
        birth = today - dt.timedelta(days=int((age + 0.01 + 0.98 * rng.random()) * 365.25))
        experienced = rng.random() < 0.4
        group = rng.random() < 0.35
        has_search = index in searching
        if has_search:
            search_days = _search_age(rng)
            search_created = clock.at(search_days, _int(rng, 8 * 60, 20 * 60))
            intake_days = search_days + _int(rng, 1, 21)
        else:
            search_days, search_created = None, None
            intake_days = _int(rng, 1, 120)
        created = clock.at(intake_days, _int(rng, 7 * 60, 22 * 60))
        row = {
            "created_at": created,
            "updated_at": search_created or created,
            "strasse": _street(rng),
            "plz": place.plz,
            "ort": place.ort,
            "email": None,
            "telefon": (
                (_mobile(rng) if rng.random() < 0.8 else _landline(rng, _area_code(place)))
                if rng.random() < 0.95
                else None
            ),
            "latitude": place.lat,
            "longitude": place.lon,
            "geo_quelle": "plz",
            "geo_plz": place.plz,
            "anrede": anrede,
            "geschlecht": geschlecht,
            "vorname": vorname,
            "nachname": nachname,
            "hausarzt": (
                f"{_one(rng, ('Dr. med.', 'Praxis Dr.', 'Dr.'))} {_one(rng, SURNAMES)}"
                if rng.random() < 0.6
                else None
            ),
            "krankenkasse": _insurer(rng, place.land),
            "krankenversicherungsnummer": _kvnr(rng),
            "geburtsdatum": birth,
            "symptome": _symptoms(rng),
            "erfahrung_mit_psychotherapie": experienced,
            "letzte_sitzung_vorherige_psychotherapie": (
                today - dt.timedelta(days=_int(rng, 120, 3650)) if experienced else None
            ),
            "vertraege_unterschrieben": has_search or rng.random() < 0.35,
            "zahlungsreferenz": None,
            "zahlung_eingegangen": has_search,
            "startdatum": clock.local(search_created).date() if has_search else None,
            "status": "auf_der_Suche" if has_search else "offen",
            "zeitliche_verfuegbarkeit": _patient_schedule(rng),
            "raeumliche_verfuegbarkeit": {},
            "verkehrsmittel": ("ÖPNV" if rng.random() < (0.65 if place.tier else 0.25) else "Auto"),
            "offen_fuer_gruppentherapie": group,
            "offen_fuer_diga": rng.random() < 0.4,
            "ausgeschlossene_therapeuten": [],
            "bevorzugtes_therapeutengeschlecht": _GENDER_WISH(rng),
            "bevorzugtes_therapieverfahren": _METHOD_WISH(rng),
            "letzter_kontakt": None,
            "erster_therapieplatz_am": None,
            "funktionierender_therapieplatz_am": None,
            "empfehler_der_unterstuetzung": _one(rng, REFERRERS) if rng.random() < 0.2 else None,
        }
        max_km = _MAX_KM(rng)
        if max_km is not None:
            row["raeumliche_verfuegbarkeit"] = {"max_km": max_km}
        elif rng.random() < 0.3:
            row["raeumliche_verfuegbarkeit"] = {"max_km": None}
        if row["vertraege_unterschrieben"]:
            if rng.random() < 0.05:
                reference = "V_" + "".join(rng.choices(_REFERENCE_CHARS, k=6))
            else:
                reference = "".join(rng.choices(_REFERENCE_CHARS, k=8))
            row["zahlungsreferenz"] = reference
        contact_days = search_days if has_search else intake_days
        if rng.random() < 0.5 and contact_days:
            row["letzter_kontakt"] = today - dt.timedelta(days=_int(rng, 0, contact_days))
        if therapist_ids and rng.random() < 0.02:
            row["ausgeschlossene_therapeuten"] = [_one(rng, therapist_ids)]
        drafts.append((created, index, row, search_created))

    drafts.sort(key=lambda draft: (draft[0], draft[1]))
    used_emails: set[str] = set()
    patients = []
    for position, (_created, _index, row, _search_created) in enumerate(drafts):
        row["id"] = first_id + position
        row["external_id"] = f"{EXTERNAL_PREFIX}P{position + 1:07d}"
        if rng.random() < 0.97:
            local = f"{ascii_name(row['vorname'])}.{ascii_name(row['nachname'])}"
            row["email"] = _unique(used_emails, local, "example.org")
        patients.append(row)
    by_search_start = sorted(
        (draft for draft in drafts if draft[3] is not None), key=lambda d: (d[3], d[2]["id"])
    )
    return patients, by_search_start


def build_searches(rng, drafts, clock: _Clock, first_id, therapists_by_region, therapist_ids):
    searches = []
    for position, (_created, _index, patient, started) in enumerate(drafts):
        notes = [clock.note(started, "Platzsuche angelegt (Demo-Daten)")]
        excluded: list = []
        updated = started
        if therapist_ids and rng.random() < 0.1:
            nearby = therapists_by_region.get(patient["plz"][:2]) or therapist_ids
            elapsed = (clock.today - clock.local(started).date()).days
            for therapist_id in _sample(rng, nearby, min(len(nearby), _int(rng, 1, 3))):
                if therapist_id in excluded or any(
                    isinstance(e, dict) and e["id"] == therapist_id for e in excluded
                ):
                    continue
                if rng.random() < 0.5:
                    excluded.append(therapist_id)
                    continue
                when = clock.at(_int(rng, 1, max(elapsed, 1)), _int(rng, 8 * 60, 19 * 60))
                when = max(when, started)
                reason = _one(rng, EXCLUSION_REASONS)
                excluded.append(
                    {"id": therapist_id, "excluded_at": when.isoformat(), "reason": reason}
                )
                notes.append(clock.note(when, f"Therapeut {therapist_id} ausgeschlossen: {reason}"))
                updated = max(updated, when)
        searches.append(
            {
                "id": first_id + position,
                "created_at": started,
                "updated_at": updated,
                "patient_id": patient["id"],
                "status": "aktiv",
                "ausgeschlossene_therapeuten": excluded,
                "vermittelter_therapeut_id": None,
                "erfolgreiche_vermittlung_datum": None,
                "notizen": "\n".join(notes),
            }
        )
    return searches


# --- writing -----------------------------------------------------------------------------------


def _next_id(model) -> int:
    return (model.select(model.id).order_by(model.id.desc()).limit(1).scalar() or 0) + 1


def demo_rows_present() -> bool:
    return any(
        model.select().where(model.external_id.startswith(EXTERNAL_PREFIX)).exists()
        for model in (Therapist, Patient)
    )


def generate(
    therapists: int,
    patients: int,
    seed: int,
    search_share: float = 0.8,
    report: Callable[[str], object] | None = print,
    today: dt.date | None = None,
) -> dict:
    """Create demo therapists, patients and aktiv searches; returns the counts and seconds.

    Refuses (``DemoDataError``) when demo rows exist already. Ids continue after
    any existing rows, so into an empty database they start at 1.
    """
    for name, value in (("therapists", therapists), ("patients", patients)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise DemoDataError(f"{name} must be a non-negative integer, got {value!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise DemoDataError(f"seed must be an integer, got {seed!r}")
    if not isinstance(search_share, int | float) or not 0 <= search_share <= 1:
        raise DemoDataError(f"search share must be between 0 and 1, got {search_share!r}")
    started = time.perf_counter()

    def say(message: str) -> None:
        if report is not None:
            report(f"demo-data: {message} ({time.perf_counter() - started:.1f} s)")

    zone = settings.get().TIMEZONE
    if today is None:
        today = dt.datetime.now(ZoneInfo(zone)).date()
    clock = _Clock(today, zone)

    with connection():
        if demo_rows_present():
            raise DemoDataError(
                "demo data already present (external_id starting with "
                f"{EXTERNAL_PREFIX!r}); use an empty database"
            )
        plz_data.ensure_loaded(report=report)
        places, source = load_places()
        if not places:
            raise DemoDataError("no PLZ centroids available: run 'psymatch geo load' first")
        patient_cum, therapist_cum, total_p, total_t = [], [], 0.0, 0.0
        for place in places:
            weight_p, weight_t = TIER_WEIGHTS[place.tier]
            total_p += weight_p
            total_t += weight_t
            patient_cum.append(total_p)
            therapist_cum.append(total_t)
        say(f"seed {seed}, today {today}, {len(places)} postal codes ({source})")

        first_therapist, first_patient = _next_id(Therapist), _next_id(Patient)
        first_search = _next_id(Platzsuche)
        therapist_rows = build_therapists(
            random.Random(f"psymatch-demo:{seed}:therapists"),
            therapists,
            places,
            therapist_cum,
            clock,
            first_therapist,
        )
        say(f"{len(therapist_rows)} therapists built")
        therapist_ids = [row["id"] for row in therapist_rows]
        by_region: dict[str, list[int]] = {}
        for row in therapist_rows:
            by_region.setdefault(row["plz"][:2], []).append(row["id"])
        patient_rng = random.Random(f"psymatch-demo:{seed}:patients")
        patient_rows, search_drafts = build_patients(
            patient_rng, patients, search_share, places, patient_cum, clock, first_patient,
            therapist_ids,
        )  # fmt: skip
        search_rows = build_searches(
            random.Random(f"psymatch-demo:{seed}:searches"),
            search_drafts,
            clock,
            first_search,
            by_region,
            therapist_ids,
        )
        for row in patient_rows:  # the person search's blind index (operations/people.py)
            row["suchindex"] = people.index_value(
                row["vorname"], row["nachname"], row["email"], row["telefon"]
            )
        say(f"{len(patient_rows)} patients and {len(search_rows)} searches built")

        with db.atomic():
            bulk_insert(Therapist, THERAPIST_FIELDS, therapist_rows)
            say(f"{len(therapist_rows)} therapists inserted")
            bulk_insert(Patient, PATIENT_FIELDS, patient_rows)
            say(f"{len(patient_rows)} patients inserted")
            bulk_insert(Platzsuche, SEARCH_FIELDS, search_rows)
            say(f"{len(search_rows)} searches inserted")
            advance_sequences((Therapist, Patient, Platzsuche))
    seconds = round(time.perf_counter() - started, 2)
    say("done")
    return {
        "therapists": len(therapist_rows),
        "patients": len(patient_rows),
        "platzsuchen": len(search_rows),
        "seconds": seconds,
    }
