"""ServeSettings: paths the database stores never depend on the server's working directory."""

from __future__ import annotations

from tunesmith.serve.settings import ServeSettings


def test_a_relative_data_dir_is_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = ServeSettings(data_dir="data")
    assert settings.data_dir == tmp_path / "data" and settings.data_dir.is_absolute()
    assert settings.resolved_database_url() == f"sqlite:///{tmp_path / 'data' / 'tunesmith.db'}"
