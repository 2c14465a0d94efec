"""Live-mode safety rules, limits, credentials and redaction: every refusal has its test.

The CLI paths that need a real non-terminal stdin (pipes, ``/dev/null``, a pseudo-terminal) run in
subprocesses in ``tests/integration/test_live_safety_cli.py``; here ``main([...])`` runs in-process
with an injected ``ask`` and ``build_node`` replaced by a function that fails the test if called.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import pytest
from nautilus_trader.model import InstrumentId

from datasets.catalog.instruments import build_instrument
from datasets.testing import fixture_spec
from engine.config import ConnectionConfig, VenueConfig
from engine.errors import ConfigError, CredentialsError, SafetyError
from engine.limits import limit_findings, max_leverage
from engine.live import session as live_session
from engine.live.logs import configure_logging, get_logger
from engine.live.safety import check_live, live_environment
from engine.live.secrets import Credentials, Redactor, Secret, encoded_forms, load_credentials
from engine.live.session import SessionOptions, run_session
from engine.live.venues import data_client, exec_client
from engine.loading import config_hash, config_json, parse_config

BASE = """
name = "live-safety"
start = 2024-01-01T00:00:00Z
end = 2024-02-01T00:00:00Z
[[venues]]
name = "binance"
instruments = ["BTC-USDT-PERP"]
starting_balances = ["10000 USDT"]
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
PRODUCTION = '\n[live.connections.binance]\nenvironment = "production"\n'
TESTNET = '\n[live.connections.binance]\nenvironment = "testnet"\n'
# A key with a quote, a backslash and non-ASCII letters: every encoder prints it differently.
AWKWARD = 'k3y"with\\back-slash-ünïcødé-€-0123456789'


def _creds() -> dict[str, Credentials]:
    return load_credentials(["binance"], environ=ENV, redactor=Redactor())


def _config(text: str = BASE + RISK + PRODUCTION):  # type: ignore[no-untyped-def]
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
        check_live(
            _config(BASE + PRODUCTION), confirmed=True, replay=False, credentials=_creds(), interactive=True, ask=_never
        )


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
        _config(BASE + '[live.connections.okx]\nenvironment = "testnet"\n')


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


def test_redactor_masks_every_registered_secret_whatever_its_length() -> None:
    redactor = Redactor()
    redactor.add([Secret(KEY), Secret(SECRET), Secret("abc")])
    assert redactor.redact(f"GET /x?key={KEY}&sig={SECRET} abc") == "GET /x?key=***&sig=*** ***"


# Environments: a config says what it may trade; paper (the default) never reaches an execution client.


def test_live_refuses_a_config_without_an_environment_in_one_line() -> None:
    with pytest.raises(SafetyError, match=r'environment = "production".*was paper for binance') as caught:
        check_live(
            _config(BASE + RISK), confirmed=True, replay=False, credentials=_creds(), interactive=True, ask=_never
        )
    assert "\n" not in str(caught.value)


def test_live_refuses_an_explicit_paper_environment() -> None:
    config = _config(BASE + RISK + '[live.connections.binance]\nenvironment = "paper"\n')
    with pytest.raises(SafetyError, match="was paper for binance; this config runs only in --mode paper"):
        check_live(config, confirmed=True, replay=False, credentials=_creds(), interactive=True, ask=_never)


def test_live_refuses_venues_in_different_environments() -> None:
    text = (
        BASE
        + RISK
        + PRODUCTION
        + (
            '[[venues]]\nname = "hyperliquid"\ninstruments = ["BTC-USDC-PERP"]\nstarting_balances = ["10000 USDC"]\n'
            '[live.connections.hyperliquid]\nenvironment = "testnet"\n'
        )
    )
    with pytest.raises(SafetyError, match="one environment for every venue"):
        live_environment(_config(text))


def test_testnet_needs_the_live_flag_only_and_never_asks() -> None:
    environment = check_live(
        _config(BASE + RISK + TESTNET), confirmed=True, replay=False, credentials=_creds(), interactive=True, ask=_never
    )
    assert environment == "testnet"


def test_testnet_config_asking_for_production_with_the_hash_is_refused() -> None:
    config = _config(BASE + RISK + TESTNET)
    with pytest.raises(SafetyError, match="confirms trading real funds, was given for a testnet config"):
        check_live(
            config,
            confirmed=True,
            replay=False,
            credentials=_creds(),
            interactive=False,
            ask=_never,
            confirm_hash=config_hash(config),
        )


def test_production_without_a_terminal_needs_the_config_hash() -> None:
    with pytest.raises(SafetyError, match=r"stdin is not a terminal to type YES on; pass --confirm-live"):
        check_live(_config(), confirmed=True, replay=False, credentials=_creds(), interactive=False, ask=_never)


def test_production_with_its_config_hash_starts_without_asking() -> None:
    config = _config()
    environment = check_live(
        config,
        confirmed=True,
        replay=False,
        credentials=_creds(),
        interactive=False,
        ask=_never,
        confirm_hash=config_hash(config),
    )
    assert environment == "production"


def test_production_with_another_config_hash_is_refused() -> None:
    config = _config()
    other = _config(BASE + RISK.replace("500", "400") + PRODUCTION)
    for wrong in ("0" * 12, config_hash(other)):
        with pytest.raises(SafetyError, match="expects the hash of this config as --dry-run prints it"):
            check_live(
                config,
                confirmed=True,
                replay=False,
                credentials=_creds(),
                interactive=True,
                ask=_never,
                confirm_hash=wrong,
            )


def test_end_of_input_at_the_prompt_is_refused() -> None:
    def end_of_input(_: str) -> str:
        raise EOFError

    with pytest.raises(SafetyError, match="to type YES, was end of input"):
        check_live(_config(), confirmed=True, replay=False, credentials=_creds(), interactive=True, ask=end_of_input)


def test_prompt_names_the_config_hash_and_ends_its_line() -> None:
    # The redacting stdout passes whole lines: a prompt without a newline would stay invisible.
    prompts: list[str] = []
    config = _config()

    def answer(prompt: str) -> str:
        prompts.append(prompt)
        return "YES"

    check_live(config, confirmed=True, replay=False, credentials=_creds(), interactive=True, ask=answer)
    assert prompts[0].endswith("\n")
    assert config_hash(config) in prompts[0]


@pytest.mark.parametrize(
    ("venue", "symbol"),
    [
        ("binance", "BTC-USDT-PERP"),
        ("bybit", "BTC-USDT-PERP"),
        ("okx", "BTC-USDT-PERP"),
        ("hyperliquid", "BTC-USDC-PERP"),
        ("kraken", "BTC-USD-PERP"),
    ],
)
def test_adapters_connect_the_configured_environment_and_paper_builds_no_execution_client(
    venue: str, symbol: str
) -> None:
    def environment(client: Any) -> str:
        # The adapters' enums print differently (``BinanceEnvironment.TESTNET``, ``<BybitEnvironment.Mainnet: 0>``).
        return repr(client.config.environment).strip("<>").split(":")[0].rsplit(".", 1)[-1].upper()

    config = VenueConfig(name=venue, instruments=[symbol], starting_balances=["10000 USDT"])
    credentials = Credentials(venue=venue, api_key=Secret(KEY), api_secret=Secret(SECRET), passphrase=Secret(SECRET))
    testnet, production = ConnectionConfig(environment="testnet"), ConnectionConfig(environment="production")
    assert environment(exec_client(config, testnet, credentials)) in ("TESTNET", "DEMO")
    assert environment(exec_client(config, production, credentials)) in ("LIVE", "MAINNET")
    assert environment(data_client(config, testnet, None)) in ("TESTNET", "DEMO")
    assert environment(data_client(config, ConnectionConfig(), None)) in ("LIVE", "MAINNET")
    with pytest.raises(SafetyError, match="a paper config never trades on a venue"):
        exec_client(config, ConnectionConfig(), credentials)


def test_default_environment_is_left_out_of_the_config_hash() -> None:
    urls = '[live.connections.binance]\nbase_url_http = "http://127.0.0.1:1"\n'
    implicit = _config(BASE + urls)
    explicit = _config(BASE + urls + 'environment = "paper"\n')
    production = _config(BASE + urls + 'environment = "production"\n')
    assert config_hash(implicit) == config_hash(explicit) != config_hash(production)
    assert '"environment"' not in config_json(implicit)


def test_the_former_testnet_key_is_an_unknown_field() -> None:
    with pytest.raises(ConfigError, match="unknown field `testnet`"):
        _config(BASE + "[live.connections.binance]\ntestnet = true\n")


# Limits that cannot bind: live refuses them, backtests and paper record them (engine.limits).


def test_sane_limits_have_no_findings() -> None:
    assert limit_findings(_config()) == []


def test_a_notional_limit_above_equity_times_leverage_cannot_bind() -> None:
    config = _config(BASE + '[risk.max_notional_per_order]\n"binance:BTC-USDT-PERP" = 1e12\n' + PRODUCTION)
    (finding,) = limit_findings(config)
    assert finding.startswith('risk.max_notional_per_order["binance:BTC-USDT-PERP"]: expected at most')
    assert "equity x leverage = 10000 x 1 = 10000 USDT" in finding
    assert "was 1000000000000;" in finding
    with pytest.raises(SafetyError, match=r"every limit to be able to bind, 1 cannot: risk\.max_notional_per_order"):
        check_live(config, confirmed=True, replay=False, credentials=_creds(), interactive=True, ask=_never)


def test_notional_bound_uses_the_venue_leverage_and_a_cash_account_has_none() -> None:
    notional = '[risk.max_notional_per_order]\n"binance:BTC-USDT-PERP" = 25000\n'
    leveraged = BASE.replace('["10000 USDT"]', '["10000 USDT"]\nleverage = 3') + notional
    assert limit_findings(_config(leveraged), FIXTURE) == []
    cash = BASE.replace('["10000 USDT"]', '["10000 USDT"]\nleverage = 3\naccount_type = "cash"') + notional
    (finding,) = limit_findings(_config(cash), FIXTURE)
    assert "10000 x 1 = 10000 USDT" in finding


def test_an_account_without_usd_like_equity_cannot_check_its_notional_limits() -> None:
    text = BASE.replace('["10000 USDT"]', '["1 BTC"]') + RISK
    (finding,) = limit_findings(_config(text))
    assert "to hold a USD-like currency to check the limit against" in finding


def _fixture_instruments(*symbols: str) -> dict[InstrumentId, Any]:
    # The catalog instruments of the hand-typed fixture table (configs/instruments_mid2025.csv).
    instruments = [build_instrument(fixture_spec("binance", s)) for s in symbols]
    return {i.id: i for i in instruments}


FIXTURE = _fixture_instruments("BTC-USDT-PERP", "SOL-USDT-PERP", "BTC-USDT")


def test_leverage_above_the_venue_maximum_is_refused() -> None:
    config = _config(BASE.replace('["10000 USDT"]', '["10000 USDT"]\nleverage = 1000') + RISK + PRODUCTION)
    (finding,) = limit_findings(config, FIXTURE)
    assert finding == (
        "venues[binance].leverage: expected at most binance's maximum 150x (1 / margin_init of BTC-USDT-PERP), "
        "was 1000; lower it"
    )
    # Without a catalog holding the instrument, the maximum is unknown: leverage above 1 is refused too.
    (unknown,) = limit_findings(config, {})
    assert unknown.startswith("venues[binance].leverage: expected the margin rates of BTC-USDT-PERP to check")
    assert unknown.endswith("or trade at leverage 1, was 1000")
    with pytest.raises(SafetyError, match=r"venues\[binance\]\.leverage: expected the margin rates of BTC-USDT-PERP"):
        check_live(config, confirmed=True, replay=False, credentials=_creds(), interactive=True, ask=_never)


def test_venue_maximum_leverage_is_its_strictest_instrument() -> None:
    # The fixture table: Binance BTC perp margin_init 0.0067 (150x), SOL perp 0.01 (100x); spot has no margin rate.
    both = VenueConfig(name="binance", instruments=["BTC-USDT-PERP", "SOL-USDT-PERP"], starting_balances=["1 USDT"])
    spot = VenueConfig(name="binance", instruments=["BTC-USDT"], starting_balances=["1 USDT"])
    assert str(max_leverage(both, FIXTURE)) == "100"
    assert max_leverage(spot, FIXTURE) is None


def test_strategy_limits_that_cannot_bind_are_found() -> None:
    risk = (
        "[strategy.params.risk]\nmax_leverage = { BINANCE = 200, OKX = 2 }\n"
        "daily_loss_limit_usd = 20000\nmax_drawdown_pct = 100\n"
    )
    findings = limit_findings(_config(BASE + RISK + risk), FIXTURE)
    assert [f.split(":")[0] for f in findings] == [
        "strategy.params.risk.max_leverage.BINANCE",
        "strategy.params.risk.max_leverage.OKX",
        "strategy.params.risk.daily_loss_limit_usd",
        "strategy.params.risk.max_drawdown_pct",
    ]
    assert "expected at most binance's maximum 150x" in findings[0]
    assert "expected at most the equity of all venues, 10000 USD" in findings[2]


def test_paper_records_limits_that_cannot_bind_as_warnings(tmp_path: Path) -> None:
    from engine.live.session import check_session

    text = BASE + '[risk.max_notional_per_order]\n"binance:BTC-USDT-PERP" = 1e12\n'
    checked = check_session(_config(text), SessionOptions(mode="paper", environ={}, out_dir=None, state_dir=tmp_path))
    (warning,) = checked.warnings
    assert warning.startswith('risk.max_notional_per_order["binance:BTC-USDT-PERP"]')
    assert checked.environments == {"binance": "paper"}
    assert check_session(_config(), SessionOptions(mode="paper", environ={}, state_dir=tmp_path)).warnings == []


# Credentials: long enough, and masked in every form.


@pytest.mark.parametrize("value", ["short", "fifteen-chars-x"])
def test_a_credential_shorter_than_16_characters_is_refused_naming_the_variable(value: str) -> None:
    environ = {**ENV, "CARRYLAB_BINANCE_API_SECRET": value}
    expected = "CARRYLAB_BINANCE_API_SECRET: expected a credential of at least 16 characters"
    with pytest.raises(CredentialsError, match=expected) as caught:
        load_credentials(["binance"], environ=environ, redactor=Redactor())
    assert value not in str(caught.value)


def test_a_short_credential_in_the_secrets_file_is_refused_naming_its_field(tmp_path: Path) -> None:
    path = tmp_path / "secrets.toml"
    path.write_text(f'[binance]\napi_key = "tiny-key"\napi_secret = "{SECRET}"\n')
    path.chmod(0o600)
    with pytest.raises(CredentialsError, match=r"\[binance\] api_key in the secrets file .*at least 16") as caught:
        load_credentials(["binance"], environ={}, secrets_file=path, redactor=Redactor())
    assert "tiny-key" not in str(caught.value)


def test_every_encoded_form_of_a_quote_backslash_non_ascii_secret_is_redacted() -> None:
    redactor = Redactor()
    redactor.add([Secret(AWKWARD)])
    texts = [
        AWKWARD,
        json.dumps(AWKWARD),
        json.dumps(AWKWARD, ensure_ascii=False),
        json.dumps({"outer": json.dumps({"inner": AWKWARD})}),
        repr(AWKWARD),
        ascii(AWKWARD),
        repr(AWKWARD.encode()),
        AWKWARD.encode("unicode_escape").decode(),
        str({"key": AWKWARD}),
        __import__("urllib.parse").parse.quote(AWKWARD),
    ]
    for text in texts:
        redacted = redactor.redact(f"before {text} after")
        assert "***" in redacted, text
        assert "back-slash" not in redacted, redacted
    assert AWKWARD in encoded_forms(AWKWARD)


def test_structured_logs_mask_a_secret_in_fields_nested_values_and_exceptions() -> None:
    redactor = Redactor()
    redactor.add([Secret(AWKWARD)])
    stream = io.StringIO()
    configure_logging(stream=stream, redactor=redactor)
    log = get_logger("test")
    log.warning(f"event {AWKWARD}", field=AWKWARD, nested={"list": [AWKWARD, {AWKWARD: 1}]}, path=Path(AWKWARD))
    try:
        raise ValueError(f"bad key {AWKWARD!r}")
    except ValueError:
        log.exception("failed")
    output = stream.getvalue()
    assert "back-slash" not in output
    assert output.count("***") >= 6
    assert [json.loads(line)["event"] for line in output.splitlines()] == ["event ***", "failed"]


# The CLI in-process: refusals exit 6 and build no node; the operator's YES goes on to build it.


@pytest.fixture
def no_node(monkeypatch: pytest.MonkeyPatch) -> None:
    def never(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a refused start must not build a node")

    monkeypatch.setattr(live_session, "build_node", never)


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)


def _cli(tmp_path: Path, text: str, *args: str, ask: Any = _never, interactive: bool = True) -> int:
    from engine.live.__main__ import main

    config = tmp_path / "live.toml"
    config.write_text(text)
    argv = [str(config), "--mode", "live", "--live", "--state-dir", str(tmp_path / "state")]
    return main([*argv, "--out", str(tmp_path / "runs"), *args], ask=ask, interactive=interactive)


def _end_of_input(_: str) -> str:
    raise EOFError


@pytest.mark.usefixtures("no_node", "keys")
@pytest.mark.parametrize(
    ("text", "args", "ask"),
    [
        pytest.param(BASE + RISK + PRODUCTION, (), _end_of_input, id="end of input at the prompt"),
        pytest.param(BASE + RISK + PRODUCTION, (), lambda _: "NO", id="another word at the prompt"),
        pytest.param(BASE + RISK + PRODUCTION, ("--confirm-live", "0" * 12), _never, id="wrong hash"),
        pytest.param(BASE + RISK, (), _never, id="paper config with --live"),
        pytest.param(BASE + RISK + TESTNET, ("--confirm-live", "HASH"), _never, id="testnet asking for production"),
        pytest.param(
            BASE + '[risk.max_notional_per_order]\n"binance:BTC-USDT-PERP" = 1e12\n' + PRODUCTION,
            (),
            _never,
            id="limits that cannot bind",
        ),
        pytest.param(
            BASE.replace('["10000 USDT"]', '["10000 USDT"]\nleverage = 1000') + RISK + PRODUCTION,
            (),
            _never,
            id="leverage over the venue maximum",
        ),
    ],
)
def test_cli_refuses_accidental_live_starts_with_exit_6_and_builds_no_node(
    tmp_path: Path, text: str, args: tuple[str, ...], ask: Any
) -> None:
    if "HASH" in args:
        args = ("--confirm-live", config_hash(_config(text)))
    assert _cli(tmp_path, text, *args, ask=ask) == 6
    assert not (tmp_path / "state").exists()
    assert not (tmp_path / "runs").exists()


@pytest.mark.usefixtures("no_node")
def test_cli_refuses_missing_credentials_with_exit_6(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    text = BASE + RISK + PRODUCTION
    assert _cli(tmp_path, text, "--confirm-live", config_hash(_config(text))) == 6


@pytest.mark.usefixtures("keys", "no_node")
def test_cli_dry_run_prints_the_hash_that_confirms_and_yes_gets_past_every_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    from engine.errors import NodeError

    passed: list[str] = []

    def prepare(self: Any, progress: Any) -> None:
        # What run_session does once every check passed; the test stops there.
        passed.append(self.options.mode)
        raise NodeError("every check passed (the test stops here)")

    monkeypatch.setattr(live_session._Session, "prepare", prepare)
    text = BASE + RISK + PRODUCTION
    assert _cli(tmp_path, text, "--dry-run", interactive=False) == 0
    printed = capfd.readouterr().out
    digest = config_hash(_config(text))
    assert f"config hash: {digest}" in printed
    assert f"--confirm-live {digest}" in printed
    assert passed == []
    assert _cli(tmp_path, text, "--confirm-live", digest, interactive=False) == 8
    assert _cli(tmp_path, text, ask=lambda _: "YES") == 8
    assert passed == ["live", "live"]
