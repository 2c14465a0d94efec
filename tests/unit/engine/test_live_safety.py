"""Live-mode safety rules, credentials and redaction: every refusal has its test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.errors import ConfigError, CredentialsError, SafetyError
from engine.live.safety import check_live
from engine.live.secrets import Credentials, Redactor, Secret, load_credentials
from engine.live.session import SessionOptions, run_session
from engine.loading import config_hash, parse_config

BASE = """
name = "live-safety"
start = 2024-01-01T00:00:00Z
end = 2024-02-01T00:00:00Z
[[venues]]
name = "binance"
instruments = ["BTC-USDT-PERP"]
starting_balances = ["1000 USDT"]
[strategy]
path = "strategies.demo:FundingShort"
[strategy.params]
instrument_ids = ["binance:BTC-USDT-PERP"]
"""
RISK = """
[risk.max_notional_per_order]
"binance:BTC-USDT-PERP" = 5000
"""
KEY = "abcdefghKEY0123456789"
SECRET = "zyxwvutsSECRET9876543210"  # noqa: S105 - a fake key the tests hunt for
ENV = {"CARRYLAB_BINANCE_API_KEY": KEY, "CARRYLAB_BINANCE_API_SECRET": SECRET}


def _creds() -> dict[str, Credentials]:
    return load_credentials(["binance"], environ=ENV, redactor=Redactor())


def _config(text: str = BASE + RISK):  # type: ignore[no-untyped-def]
    return parse_config(text.encode())


def _never(_: str) -> str:
    raise AssertionError("the operator must not be asked before the other rules pass")


def test_live_without_the_live_flag_is_refused() -> None:
    with pytest.raises(SafetyError, match="explicit --live flag"):
        check_live(_config(), confirmed=False, replay=False, credentials=_creds(), interactive=True, ask=_never)


def test_live_on_replayed_data_is_refused() -> None:
    with pytest.raises(SafetyError, match="replay runs only in --mode paper"):
        check_live(_config(), confirmed=True, replay=True, credentials=_creds(), interactive=False, ask=_never)


def test_live_without_risk_limits_is_refused() -> None:
    expected = r"notional limit for every instrument, was missing for \['binance:BTC-USDT-PERP'\]"
    with pytest.raises(SafetyError, match=expected):
        check_live(_config(BASE), confirmed=True, replay=False, credentials=_creds(), interactive=True, ask=_never)


def test_live_without_credentials_is_refused_naming_the_variables() -> None:
    with pytest.raises(CredentialsError, match="CARRYLAB_BINANCE_API_KEY and CARRYLAB_BINANCE_API_SECRET"):
        check_live(_config(), confirmed=True, replay=False, credentials={}, interactive=True, ask=_never)


@pytest.mark.parametrize("answer", ["", "yes", "y", "NO"])
def test_live_on_a_terminal_needs_the_operator_to_type_yes(answer: str) -> None:
    with pytest.raises(SafetyError, match="operator to type YES"):
        check_live(
            _config(), confirmed=True, replay=False, credentials=_creds(), interactive=True, ask=lambda _: answer
        )


def test_live_passes_with_flag_limits_credentials_and_yes() -> None:
    check_live(_config(), confirmed=True, replay=False, credentials=_creds(), interactive=True, ask=lambda _: "YES\n")


def test_run_session_refuses_live_before_building_anything(tmp_path: Path) -> None:
    options = SessionOptions(mode="live", confirmed_live=False, environ=ENV, out_dir=None, state_dir=tmp_path)
    with pytest.raises(SafetyError, match="explicit --live flag"):
        run_session(_config(), options)


def test_cli_refuses_live_without_flag_with_exit_code_6(tmp_path: Path) -> None:
    from engine.live.__main__ import main

    config = tmp_path / "live.toml"
    config.write_text(BASE + RISK)
    assert main([str(config), "--mode", "live", "--state-dir", str(tmp_path)]) == 6


def test_credentials_in_the_config_file_are_rejected() -> None:
    text = BASE + '[live.connections.binance]\napi_key = "x"\n'
    with pytest.raises(ConfigError, match="unknown field `api_key`"):
        parse_config(text.encode())


def test_live_section_is_optional_and_leaves_backtest_hashes_unchanged() -> None:
    plain = _config(BASE)
    with_live = _config(BASE + '[live]\n[live.connections.binance]\nbase_url_http = "http://127.0.0.1:1"\n')
    assert plain.live is None
    assert with_live.live is not None
    assert config_hash(plain) != config_hash(with_live)
    assert '"live"' not in __import__("engine.loading", fromlist=["config_json"]).config_json(plain)


def test_live_connections_must_name_configured_venues() -> None:
    with pytest.raises(ConfigError, match=r"live\.connections: expected configured venues"):
        _config(BASE + "[live.connections.okx]\ntestnet = true\n")


def test_secret_never_shows_its_value() -> None:
    secret = Secret(KEY)
    credentials = _creds()["binance"]
    for text in (repr(secret), str(secret), f"{secret}", f"{secret!r}", repr(credentials), str(credentials)):
        assert KEY not in text
        assert SECRET not in text
    assert secret.reveal() == KEY
    with pytest.raises(TypeError, match="cannot be pickled"):
        __import__("pickle").dumps(secret)


def test_secrets_file_is_read_and_environment_wins(tmp_path: Path) -> None:
    path = tmp_path / "secrets.toml"
    path.write_text(f'[binance]\napi_key = "file{KEY}"\napi_secret = "{SECRET}"\n')
    path.chmod(0o600)
    found = load_credentials(["binance"], environ={}, secrets_file=path, redactor=Redactor())
    assert found["binance"].api_key.reveal() == f"file{KEY}"
    assert found["binance"].source == "secrets file"
    mixed = load_credentials(
        ["binance"], environ={"CARRYLAB_BINANCE_API_KEY": KEY}, secrets_file=path, redactor=Redactor()
    )
    assert mixed["binance"].api_key.reveal() == KEY
    assert mixed["binance"].api_secret.reveal() == SECRET


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_secrets_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "secrets.toml"
    path.write_text(f'[binance]\napi_key = "{KEY}"\napi_secret = "{SECRET}"\n')
    path.chmod(0o644)
    with pytest.raises(CredentialsError, match="chmod 600"):
        load_credentials(["binance"], environ={}, secrets_file=path, redactor=Redactor())


def test_malformed_secrets_file_error_does_not_quote_it(tmp_path: Path) -> None:
    path = tmp_path / "secrets.toml"
    path.write_text(f"[binance]\napi_key = {SECRET}\n")
    path.chmod(0o600)
    with pytest.raises(CredentialsError, match="does not parse") as caught:
        load_credentials(["binance"], environ={}, secrets_file=path, redactor=Redactor())
    assert SECRET not in str(caught.value)


def test_redactor_masks_every_registered_secret_and_ignores_short_values() -> None:
    redactor = Redactor()
    redactor.add([Secret(KEY), Secret(SECRET), Secret("abc")])
    assert redactor.redact(f"GET /x?key={KEY}&sig={SECRET} abc") == "GET /x?key=***&sig=*** abc"
