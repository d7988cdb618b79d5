from __future__ import annotations

import pytest

from psymatch import settings


def test_defaults_run_the_laptop_demo(tmp_path):
    s = settings.load(environ={}, env_file=tmp_path / "none")
    assert s.DATABASE_URL.startswith("sqlite:///") and s.DATABASE_URL.endswith("var/psymatch.db")
    assert s.embedded_redis
    assert (s.MAX_ANFRAGE_SIZE, s.ROUND_MIN_SIZE, s.MIN_ANFRAGE_SIZE) == (6, 3, 1)
    assert s.COOLING_PERIOD_WEEKS == 4 and s.FOLLOW_UP_MODE == "call"


def test_environment_wins_over_env_file(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("MAX_PARALLEL_ANFRAGEN=3\nROUTING_ENABLED=yes\nTIMEZONE=UTC\n")
    s = settings.load(environ={"TIMEZONE": "Europe/Berlin"}, env_file=env_file)
    assert s.MAX_PARALLEL_ANFRAGEN == 3
    assert s.ROUTING_ENABLED is True
    assert s.TIMEZONE == "Europe/Berlin"


@pytest.mark.parametrize(
    "environ,message",
    [
        ({"MAX_ANFRAGE_SIZE": "six"}, "MAX_ANFRAGE_SIZE must be a whole number"),
        ({"ROUTING_ENABLED": "maybe"}, "ROUTING_ENABLED must be true or false"),
        ({"FOLLOW_UP_MODE": "fax"}, "FOLLOW_UP_MODE must be call, reminder"),
        ({"ROUND_MIN_SIZE": "7"}, "ROUND_MIN_SIZE"),
        ({"AUTO_ROUNDS_ROLLOUT_PERCENT": "120"}, "between 0 and 100"),
    ],
)
def test_bad_values_are_named(tmp_path, environ, message):
    with pytest.raises(settings.SettingsError, match=message):
        settings.load(environ=environ, env_file=tmp_path / "none")


def test_child_environment_spells_out_every_setting():
    env = settings.child_environ(EXTRA="1")
    assert env["MAX_ANFRAGE_SIZE"] == str(settings.get().MAX_ANFRAGE_SIZE)
    assert env["AUTO_ROUNDS_ENABLED"] in ("true", "false") and env["EXTRA"] == "1"
