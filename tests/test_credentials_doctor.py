"""Credentials never leak; feed selection fails early with one line; doctor's lines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from islandflow_tui import cli
from islandflow_tui.commands.doctor import Check, diagnose
from islandflow_tui.config import Config, Secret, load_config
from islandflow_tui.engine import credentials as creds
from islandflow_tui.engine.core import Engine
from islandflow_tui.engine.feeds import FeedUnavailable, build_adapter, preflight
from islandflow_tui.engine.session import attach_recording

KEY, SECRET = "PKLEAKCHECK12345", "s3cr3t-value-never-shown"


def cfg_with_keys(tmp_path: Path) -> tuple[Config, Path]:
    path = tmp_path / "c.toml"
    path.write_text(f'[alpaca]\napi_key = "{KEY}"\nsecret_key = "{SECRET}"\n')
    path.chmod(0o600)
    return load_config(path, env={}), path


def test_secrets_are_masked_everywhere(tmp_path, capsys):
    cfg, path = cfg_with_keys(tmp_path)
    assert cfg.alpaca.api_key.reveal() == KEY
    for text in (repr(cfg), str(cfg.alpaca), repr(creds.alpaca(cfg, {}))):
        assert KEY not in text and SECRET not in text
    assert "'***'" in repr(cfg.alpaca.api_key)
    assert "api_key" not in cfg.as_dict()["alpaca"]  # not in the digest's input
    blank = load_config(None, env={})
    blank.paths = cfg.paths
    assert cfg.digest() == blank.digest()  # a key does not change (or leak into) the digest
    assert cli.main(["--config", str(path), "--print-config"]) == 0
    out = capsys.readouterr().out
    assert 'api_key = "***"' in out and KEY not in out and SECRET not in out


def test_secrets_never_reach_session_metadata(tmp_path):
    cfg, _ = cfg_with_keys(tmp_path)
    cfg.paths.data_dir = str(tmp_path / "data")
    cfg.feed.adapter = "alpaca"
    engine = Engine(cfg)
    recorder, _ = attach_recording(engine, cfg)
    assert recorder is not None and recorder.path is not None
    from islandflow_tui.engine.session import finish_recording

    finish_recording(engine, recorder)
    blob = "".join(p.read_text(errors="ignore") for p in recorder.path.rglob("*.json"))
    assert blob and KEY not in blob and SECRET not in blob
    meta = json.loads((recorder.path / "meta.json").read_text())
    assert meta["config_digest"] == cfg.digest()


def test_env_vars_and_config_precedence():
    cfg = Config()
    got = creds.alpaca(cfg, {"ALPACA_API_KEY": "k", "ALPACA_SECRET_KEY": "s"})
    assert (got.api_key.reveal(), got.secret_key.reveal(), got.source) == ("k", "s", "environment")
    cfg.alpaca.api_key, cfg.alpaca.secret_key = Secret("ck"), Secret("cs")
    assert creds.alpaca(cfg, {"ALPACA_API_KEY": "k"}).api_key.reveal() == "ck"
    assert creds.databento_key(Config(), {"DATABENTO_API_KEY": "db-x"}).reveal() == "db-x"
    ep = creds.ibkr(Config(), {"IBKR_HOST": "10.0.0.2", "IBKR_PORT": "4002", "IBKR_CLIENT_ID": "7"})
    assert (ep.host, ep.port, ep.client_id) == ("10.0.0.2", 4002, 7)
    assert creds.ibkr(Config(), {}).port == 7497
    with pytest.raises(creds.CredentialError, match="IBKR_PORT"):
        creds.ibkr(Config(), {"IBKR_PORT": "x"})


def test_readable_secrets_file_warns(tmp_path):
    _, path = cfg_with_keys(tmp_path)
    assert creds.config_file_warning(path) is None  # 600
    path.chmod(0o644)
    warning = creds.config_file_warning(path)
    assert warning and "alpaca.api_key" in warning and "chmod 600" in warning
    assert KEY not in warning
    plain = tmp_path / "p.toml"
    plain.write_text("[ui]\nrefresh_hz = 10\n")
    plain.chmod(0o644)
    assert creds.config_file_warning(plain) is None  # no secret, no warning


@pytest.mark.parametrize(
    ("feed", "needle"),
    [
        ("alpaca", "alpaca feed needs ALPACA_API_KEY"),
        ("databento", "databento feed"),
    ],
)
def test_feed_selection_fails_before_the_ui(feed, needle, capsys, monkeypatch, tmp_path):
    for name in ("ALPACA_API_KEY", "ALPACA_SECRET_KEY", "APCA_API_KEY_ID", "DATABENTO_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("islandflow_tui.app.make_app", lambda cfg: pytest.fail("UI started"))
    code = cli.main(["--feed", feed, "--log-dir", str(tmp_path), "--data-dir", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and needle in err[0]


def test_missing_package_is_one_line(monkeypatch):
    monkeypatch.setitem(creds.FEED_PACKAGES, "alpaca", ("no_such_module_x", "pip install x"))
    cfg = Config()
    cfg.feed.adapter = "alpaca"
    assert preflight(cfg) == "alpaca feed needs the no_such_module_x package: pip install x"
    with pytest.raises(FeedUnavailable, match="no_such_module_x"):
        build_adapter(cfg)


def test_build_adapter_builds_live_feeds():
    cfg = Config()
    cfg.feed.adapter = "ibkr"
    assert type(build_adapter(cfg)).__name__ == "IbkrFeed"
    cfg.feed.adapter = "alpaca"
    cfg.alpaca.api_key, cfg.alpaca.secret_key = Secret("k"), Secret("s")
    assert type(build_adapter(cfg)).__name__ == "AlpacaFeed"


def test_doctor_lines_and_exit_code(tmp_path, capsys):
    cfg = Config()
    cfg.paths.data_dir = str(tmp_path / "d")
    cfg.paths.log_dir = str(tmp_path / "l")
    cfg.feed.adapter = "alpaca"
    checks = diagnose(cfg, tmp_path / "none.toml", environ={})
    by = {c.name: c for c in checks}
    assert by["data dir"].status == "ok" and by["alpaca package"].status == "ok"
    assert by["alpaca credentials"].status == "FAIL"
    assert "ALPACA_API_KEY" in by["alpaca credentials"].line()
    assert "fix:" in by["alpaca credentials"].line()
    env = {"ALPACA_API_KEY": KEY, "ALPACA_SECRET_KEY": SECRET}
    probe = {"alpaca": lambda c: Check("ok", "alpaca online", "fake answer")}
    checks = diagnose(cfg, tmp_path / "none.toml", environ=env, online=True, probes=probe)
    lines = "\n".join(c.line() for c in checks)
    assert "[  ok] alpaca credentials: API key and secret found (environment)" in lines
    assert "[  ok] alpaca online: fake answer" in lines
    assert KEY not in lines and SECRET not in lines
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    cfg.paths.data_dir = str(ro / "sub")
    bad = {c.name: c for c in diagnose(cfg, tmp_path / "none.toml", environ=env)}
    import os

    if os.geteuid() != 0:  # root writes anywhere
        assert bad["data dir"].status == "FAIL" and "paths.data_dir" in bad["data dir"].fix
    code = cli.main(
        ["--data-dir", str(tmp_path / "d"), "--log-dir", str(tmp_path / "l"), "doctor", "--all"]
    )
    out = capsys.readouterr().out
    assert code == 1 and "ibkr credentials" in out and out.strip().endswith("failed")


def test_doctor_ibkr_online_against_closed_port(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = Config()
    cfg.feed.adapter = "ibkr"
    cfg.ibkr.port = port
    cfg.paths.data_dir = str(tmp_path)
    cfg.paths.log_dir = str(tmp_path)
    checks = {c.name: c for c in diagnose(cfg, tmp_path / "x.toml", online=True, environ={})}
    assert checks["ibkr online"].status == "FAIL"
    assert f"TWS/IB Gateway not reachable at 127.0.0.1:{port}" in checks["ibkr online"].message
