"""Settings: one declaration drives defaults, environment, config file, flags and docs."""

from __future__ import annotations

from pathlib import Path

import pytest

from liftkit.settings import Settings, markdown_table

DOCS = Path(__file__).resolve().parents[1] / "docs" / "server.md"


def test_precedence_is_flag_then_environment_then_file_then_default(tmp_path: Path) -> None:
    (tmp_path / "liftkit.toml").write_text('port = 7000\nhost = "0.0.0.0"\nlog_level = "debug"\n')
    environ = {"LIFTKIT_DATA_DIR": str(tmp_path), "LIFTKIT_PORT": "7100", "LIFTKIT_HOST": "::"}
    settings = Settings.load({"port": 7200, "host": None}, environ=environ)
    assert settings.port == 7200  # flag
    assert settings.host == "::"  # environment (the flag was not given)
    assert settings.log_level == "debug"  # file
    assert settings.payload_max_age == Settings().payload_max_age  # default
    assert settings.data_dir == tmp_path


def test_config_file_may_use_a_liftkit_table(tmp_path: Path) -> None:
    path = tmp_path / "custom.toml"
    path.write_text("[liftkit]\npayload_max_age = 5\n")
    assert Settings.load(environ={}, config_file=path).payload_max_age == 5


def test_bad_settings_are_clear_errors(tmp_path: Path) -> None:
    (tmp_path / "liftkit.toml").write_text("prot = 1\n")
    with pytest.raises(ValueError, match="unknown setting"):
        Settings.load(environ={"LIFTKIT_DATA_DIR": str(tmp_path)})
    with pytest.raises(ValueError, match="setting port: 'eighty' is not a valid int"):
        Settings.load({"port": "eighty"}, environ={})
    with pytest.raises(ValueError, match="does not exist"):
        Settings.load(environ={}, config_file=tmp_path / "missing.toml")


def test_registry_url_defaults_to_sqlite_in_the_data_dir(tmp_path: Path) -> None:
    assert Settings(data_dir=tmp_path).registry_url == f"sqlite:///{tmp_path / 'registry.db'}"
    url = "postgresql://db/liftkit"
    assert Settings(data_dir=tmp_path, database_url=url).registry_url == url


def test_the_docs_show_every_setting() -> None:
    assert markdown_table() in DOCS.read_text()
