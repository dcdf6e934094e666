"""Several 1C bases: `ONEC_BASES_FILE` lists them (nothing secret), each base's secrets come from
`ONEC_BASE_<ID>_*`, and with no file there is exactly the one base `main` of the `ONEC_*` variables."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from onec.config import (
    BASE_ID,
    DEFAULT_BASE,
    AuthMethod,
    ConfigError,
    Settings,
    SourceKind,
    base_secret_variable,
    load_bases,
)

TWO_BASES = """
[[base]]
id = "msk"
url = "https://1c-msk.example/trade/hs/exchange"
auth = "basic"
username = "обмен"
rate_limit = 2.5
timezone = "Europe/Samara"

[[base]]
id = "spb_2"
url = "https://1c-spb.example/trade/hs/exchange"
auth = "api_key"
source = "odata"
odata_model = "models/spb.toml"
"""


def _bases_file(tmp_path: Path, text: str) -> dict[str, str]:
    path = tmp_path / "bases.toml"
    path.write_text(text, "utf-8")
    return {"ONEC_BASES_FILE": str(path)}


def test_without_a_file_there_is_one_base_main_of_the_variables() -> None:
    env = {"ONEC_BASE_URL": "https://erp.example/trade/hs/exchange", "ONEC_RATE_LIMIT": "3"}
    bases = load_bases(env)
    assert bases.ids == [DEFAULT_BASE] == ["main"]
    assert bases.base("main") == Settings.from_env(env) == bases.settings
    assert bases.secret_variables == ()
    assert load_bases({}).base("main").base_url is None  # the embedded sandbox: no file, no service


def test_a_file_names_each_base_and_the_environment_holds_its_secrets(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "spb.toml").write_text("", "utf-8")
    env = {
        **_bases_file(tmp_path, TWO_BASES),
        "ONEC_RATE_LIMIT": "7",
        "ONEC_PAGE_SIZE": "100",
        "ONEC_AUTH": "none",
        "ONEC_BASE_MSK_PASSWORD": "пароль-msk",
        "ONEC_BASE_SPB_2_API_KEY": "key-spb",
    }
    bases = load_bases(env)
    assert bases.ids == ["msk", "spb_2"]
    msk, spb = bases.base("msk"), bases.base("spb_2")
    assert (msk.base_id, msk.auth, msk.username) == ("msk", AuthMethod.BASIC, "обмен")
    assert msk.password.reveal() == "пароль-msk"
    assert (msk.rate_limit, msk.timezone, msk.page_size) == (2.5, "Europe/Samara", 100)
    assert (spb.rate_limit, spb.source, spb.api_key.reveal()) == (7.0, SourceKind.ODATA, "key-spb")
    assert spb.odata_model == tmp_path / "models" / "spb.toml"  # relative to the file's folder
    assert not spb.password and not msk.api_key
    assert sorted(bases.secret_variables) == ["ONEC_BASE_MSK_PASSWORD", "ONEC_BASE_SPB_2_API_KEY"]
    assert "пароль" not in repr(bases) and "key-spb" not in repr(bases)


def test_a_base_takes_no_connection_setting_from_the_variables(tmp_path: Path) -> None:
    """A base that names no url is an embedded sandbox, not the 1C of ONEC_BASE_URL, and logs in as nobody."""
    env = {
        **_bases_file(tmp_path, '[[base]]\nid = "demo"\nsandbox_seed = 7\n'),
        "ONEC_BASE_URL": "https://erp.example/trade/hs/exchange",
        "ONEC_AUTH": "basic",
        "ONEC_USERNAME": "u",
        "ONEC_PASSWORD": "p",
    }
    demo = load_bases(env).base("demo")
    assert (demo.base_url, demo.auth, demo.username, demo.sandbox.seed) == (None, AuthMethod.NONE, "", 7)


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        ('[[base]]\nid = "a"\n[[base]]\nid = "a"\n', {}, "base id 'a' is listed twice"),
        ('[[base]]\nid = "Msk"\n', {}, "id = 'Msk' is not a base id"),
        ('[[base]]\nid = "m-1"\n', {}, "id = 'm-1' is not a base id"),
        ('[[base]]\nurl = "https://x.example/"\n', {}, "base #1: id = None is not a base id"),
        ("", {}, "expected one or more [[base]] tables"),
        ('[base]\nid = "a"\n', {}, "expected one or more [[base]] tables"),
        ('[[base]]\nid = "a"\nrate = 3\n', {}, "base 'a': unknown key rate; known: id, url"),
        ('[[base]]\nid = "a"\nrate_limit = "fast"\n', {}, "base 'a': rate_limit = 'fast' is not a number"),
        ('[[base]]\nid = "a"\ntimezone = "Mars/Olympus"\n', {}, "timezone = 'Mars/Olympus' is not a known IANA"),
        ('[[base]]\nid = "a"\nurl = "ftp://x"\n', {}, "base 'a': url must start with http:// or https://"),
        (
            '[[base]]\nid = "shop"\nauth = "basic"\nusername = "u"\n',
            {},
            "base 'shop': auth=basic needs ONEC_BASE_SHOP_PASSWORD to be set",
        ),
        ('[[base]]\nid = "shop"\nauth = "basic"\n', {"ONEC_BASE_SHOP_PASSWORD": "p"}, "needs username to be set"),
        (
            '[[base]]\nid = "shop"\npassword = "p"\n',
            {},
            "base 'shop': password does not belong in a file; set ONEC_BASE_SHOP_PASSWORD",
        ),
        ('[[base]]\nid = "a"\nclient_cert = "missing.pem"\n', {}, "client_cert points to"),
        ("[[base]\n", {}, "ONEC_BASES_FILE"),
    ],
)
def test_a_wrong_file_is_one_error_naming_the_base_and_what_to_set(
    tmp_path: Path, text: str, env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        load_bases({**_bases_file(tmp_path, text), **env})
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_an_unknown_base_is_an_error_naming_those_configured(tmp_path: Path) -> None:
    bases = load_bases(_bases_file(tmp_path, '[[base]]\nid = "a"\n[[base]]\nid = "b"\n'))
    with pytest.raises(ConfigError, match=r"base 'c' is not configured .*; configured: a, b"):
        bases.base("c")


def test_a_missing_bases_file_is_named() -> None:
    with pytest.raises(ConfigError, match=r"ONEC_BASES_FILE points to '/nowhere\.toml'"):
        load_bases({"ONEC_BASES_FILE": "/nowhere.toml"})


def test_a_secret_in_an_error_is_never_shown(tmp_path: Path) -> None:
    env = {**_bases_file(tmp_path, '[[base]]\nid = "a"\nauth = "basic"\n'), "ONEC_BASE_A_PASSWORD": "s3cr3t"}
    with pytest.raises(ConfigError) as raised:
        load_bases(env)
    assert "s3cr3t" not in str(raised.value)


@given(st.from_regex(BASE_ID, fullmatch=True))
def test_every_base_id_names_a_variable_of_its_own(base_id: str) -> None:
    """The id is upper-cased into the variable: ids are lower case only, so two ids never share a variable."""
    name = base_secret_variable(base_id, "password")
    assert name == f"ONEC_BASE_{base_id.upper()}_PASSWORD" and name.upper() == name
    assert base_secret_variable(base_id, "api_key").endswith("_API_KEY")
