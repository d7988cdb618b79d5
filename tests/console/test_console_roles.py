"""Roles in the console: the signed-in staff member (JupyterHub's ``JUPYTERHUB_USER``) is the
actor; ``lesen`` reads only, ``admin`` alone switches flags and erases (console/common.py)."""

from __future__ import annotations

import pytest

from console.bundles import BundlesPanel
from console.flags import FlagsPanel
from console.searches import SearchesPanel
from db.models import AuditLog, FeatureFlag, Platzsuche
from operations import staff
from psymatch import settings
from tests import factories as f

PASSWORD = "ein-langes-passwort"


@pytest.fixture
def signed_in(clean_db, monkeypatch):
    """Sign in as a staff member of the given role, as JupyterHub does for a kernel."""

    def sign_in(username: str, role: str | None):
        if role is not None:
            staff.create(username, username.title(), role, PASSWORD, actor="test")
        monkeypatch.setenv("JUPYTERHUB_USER", username)
        return username

    return sign_in


def test_a_team_member_acts_under_their_own_name(signed_in):
    signed_in("erika", "team")
    patient = f.patient()
    panel = SearchesPanel(today=f.NOW.date())
    assert panel.actor == "erika"
    assert panel.erase_actor.value == "erika" and panel.erase_actor.disabled
    panel.patient_id.value = patient.id
    panel.open_button.click()
    assert "✓" in panel.status.value
    search = Platzsuche.get(Platzsuche.patient == patient.id)
    assert AuditLog.get(AuditLog.entity_id == str(search.id)).actor == "erika"


def test_a_reader_may_look_but_not_write(signed_in):
    signed_in("lesa", "lesen")
    patient = f.patient()
    f.therapist()
    f.searches(3)
    audit_before = AuditLog.select().count()
    panel = SearchesPanel(today=f.NOW.date())
    panel.patient_id.value = patient.id
    panel.open_button.click()
    assert "FORBIDDEN" in panel.status.value and "Lesen" in panel.status.value
    assert Platzsuche.select().where(Platzsuche.patient == patient.id).count() == 0
    bundles = BundlesPanel(now=f.NOW)
    bundles.plz_prefix.value = "10"
    bundles.list_button.click()  # reading: allowed
    assert "✓ 1 auswählbare" in bundles.status.value
    bundles.preview_button.click()
    assert "✓ Vorschau" in bundles.status.value
    bundles.create_button.click()  # writing: refused
    assert "FORBIDDEN" in bundles.status.value
    assert AuditLog.select().count() == audit_before


def test_flags_and_erasure_need_an_admin(signed_in):
    signed_in("erika", "team")
    search = f.search()
    flags = FlagsPanel()
    assert flags.staff.value == "erika" and flags.staff.disabled
    flags.reason.value = "Test"
    flags.enabled.value = False
    flags.save.click()
    assert "FORBIDDEN" in flags.status.value and "Admin" in flags.status.value
    assert FeatureFlag.select().count() == 0
    panel = SearchesPanel(today=f.NOW.date())
    panel.search_select.value = search.id
    panel.erase_reason.value = "Wunsch der Patientin"
    panel.erase_confirm.value = True
    panel.erase_button.click()
    assert "FORBIDDEN" in panel.status.value
    assert AuditLog.select().where(AuditLog.action == "patient_erased").count() == 0
    staff.set_role("erika", "admin", actor="test")  # applies at the next click
    flags.save.click()
    assert "✓" in flags.status.value
    assert FeatureFlag.get().updated_by == "erika"


def test_a_deactivated_or_unknown_account_cannot_act(signed_in):
    signed_in("ghost", None)  # a hub user without a psymatch account
    patient = f.patient()
    panel = SearchesPanel(today=f.NOW.date())
    panel.patient_id.value = patient.id
    panel.open_button.click()
    assert "NOT_SIGNED_IN" in panel.status.value
    assert Platzsuche.select().count() == 0


def test_production_without_jupyterhub_has_nobody_signed_in(clean_db, monkeypatch):
    monkeypatch.delenv("JUPYTERHUB_USER", raising=False)
    before = settings.get()
    settings.override(PSYMATCH_MODE="production", ENCRYPTION_KEYS=settings.DEMO_ENCRYPTION_KEY)
    try:
        patient = f.patient()
        panel = SearchesPanel(today=f.NOW.date())
        panel.patient_id.value = patient.id
        panel.open_button.click()
        assert "NOT_SIGNED_IN" in panel.status.value
    finally:
        settings.override(
            PSYMATCH_MODE=before.PSYMATCH_MODE, ENCRYPTION_KEYS=before.ENCRYPTION_KEYS
        )
    assert Platzsuche.select().count() == 0
