"""Config layering and validation: one clear line per bad key, never a traceback."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from islandflow_tui.config import Config, ConfigError, load_config, render_example

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "c.toml"
    p.write_text(text)
    return p


def test_defaults_are_the_seeds():
    cfg = load_config(None, env={}, overrides={})
    assert cfg.flow.cluster_window_ms == 500
    assert cfg.nbbo.max_age_ms == 1000
    assert cfg.signal.mode == "smart-money"
    assert (cfg.signal.min_notional, cfg.signal.etf_min_notional) == (10_000, 50_000)
    assert (cfg.signal.bid_side_min_notional, cfg.signal.mid_min_notional) == (25_000, 20_000)
    assert cfg.signal.nbbo_max_age_ms == 1500
    assert "ARKK" in cfg.signal.etf_underlyings and len(cfg.signal.etf_underlyings) == 16


def test_file_env_and_flags_layer_in_order(tmp_path):
    path = write(
        tmp_path, "[signal]\nmin_notional = 5000\nmode = 'balanced'\n[nbbo]\nmax_age_ms = 800\n"
    )
    env = {"ISLANDFLOW_SIGNAL__MIN_NOTIONAL": "7000", "ISLANDFLOW_UI__REFRESH_HZ": "12"}
    cfg = load_config(path, env=env, overrides={"signal.min_notional": 9000.0})
    assert cfg.signal.min_notional == 9000.0  # flag beats env beats file
    assert cfg.signal.mode == "balanced"  # file
    assert cfg.nbbo.max_age_ms == 800
    assert cfg.ui.refresh_hz == 12.0  # env


@pytest.mark.parametrize(
    ("toml", "needle"),
    [
        (
            "[flow]\ncluster_window_ms = -5\n",
            "flow.cluster_window_ms = -5 is not allowed; expected an integer >= 1",
        ),
        (
            "[flow]\ncluster_window_ms = 'fast'\n",
            "flow.cluster_window_ms = 'fast' is not allowed; expected an integer",
        ),
        (
            "[signal]\nmode = 'yolo'\n",
            "signal.mode = 'yolo' is not allowed; expected one of smart-money, balanced, all",
        ),
        (
            "[signal]\nmin_notional = true\n",
            "signal.min_notional = True is not allowed; expected a number >= 0",
        ),
        ("[signal]\nbogus = 1\n", "unknown key signal.bogus"),
        ("[nope]\nx = 1\n", "unknown section [nope]"),
        ("[synthetic]\nstart = 'yesterday'\n", "synthetic.start = 'yesterday' is not allowed"),
        ("[signal]\netf_underlyings = [1, 2]\n", "signal.etf_underlyings = [1, 2] is not allowed"),
        ("[ui]\nrefresh_hz = 500\n", "expected a number from 1 to 60"),
        ("this is not toml", "is not valid TOML"),
        ("mode = 'x'\n", "must be a [section] table"),
    ],
)
def test_bad_values_name_key_value_and_allowed(tmp_path, toml, needle):
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, toml), env={})
    assert needle in str(err.value)
    assert "\n" not in str(err.value).strip() or "TOML" in str(err.value)


def test_bad_env_value_names_the_variable():
    with pytest.raises(ConfigError, match=r"unknown key nbbo\.bogus in environment variable"):
        load_config(None, env={"ISLANDFLOW_NBBO__BOGUS": "1"})
    with pytest.raises(ConfigError, match=r"nbbo.max_age_ms = 'soon'"):
        load_config(None, env={"ISLANDFLOW_NBBO__MAX_AGE_MS": "soon"})


def test_missing_explicit_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "absent.toml", env={})


def test_example_config_is_complete_and_loads(tmp_path):
    text = render_example()
    committed = (ROOT / "config.example.toml").read_text()
    assert committed == text, "config.example.toml is stale: regenerate with --print-example-config"
    data = tomllib.loads(text)
    defaults = Config().as_dict()
    assert data == defaults  # every key, with its default
    cfg = load_config(write(tmp_path, text), env={})
    assert cfg.as_dict() == defaults
    for line in text.splitlines():
        if "=" in line and not line.startswith("#"):
            idx = text.splitlines().index(line)
            assert text.splitlines()[idx - 1].startswith("# "), f"no comment above {line!r}"


def test_cli_bad_config_is_one_line_exit_2(tmp_path):
    path = write(tmp_path, "[flow]\ncluster_window_ms = -5\n")
    proc = subprocess.run(
        [sys.executable, "-m", "islandflow_tui", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "flow.cluster_window_ms = -5" in lines[0] and "Traceback" not in proc.stderr


def test_cli_help_and_version():
    helptext = subprocess.run(
        [sys.executable, "-m", "islandflow_tui", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    for flag in (
        "--config",
        "--profile",
        "--seed",
        "--start",
        "--signal-mode",
        "--preset",
        "--min-premium",
        "--theme",
        "--refresh-hz",
        "--data-dir",
        "--no-pace",
        "--print-config",
        "--version",
    ):
        assert flag in helptext
    version = subprocess.run(
        [sys.executable, "-m", "islandflow_tui", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert version.returncode == 0 and version.stdout.startswith("islandflow 0.")


def test_cli_flags_override_env(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "islandflow_tui",
            "--profile",
            "firehose",
            "--seed",
            "42",
            "--print-config",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={"ISLANDFLOW_SYNTHETIC__PROFILE": "active", "PATH": "", "HOME": str(tmp_path)},
    )
    cfg = tomllib.loads(proc.stdout)
    assert cfg["synthetic"]["profile"] == "firehose"
    assert cfg["synthetic"]["seed"] == 42
