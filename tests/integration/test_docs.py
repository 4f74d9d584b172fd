"""The conf.d example documents every setting the code knows."""
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_every_setting_is_documented():
    code = (ROOT / "src/core/settings.cc").read_text()
    table = code[code.index("setting_names[] = {"):]
    table = table[:table.index("nullptr")]
    names = re.findall(r'"(rawlog_ext_\w+)"', table)
    assert len(names) >= 12, names
    conf = (ROOT / "conf.d/90-rawlog_ext.conf").read_text()
    for name in names:
        assert re.search(rf"^\s*#{name} = ", conf, re.M), f"{name} not in conf.d"


def test_login_variables_are_documented():
    code = (ROOT / "src/core/login-config.cc").read_text()
    names = set(re.findall(r'"(RAWLOG_EXT_LOGIN_[A-Z_]+)"', code))
    assert names >= {"RAWLOG_EXT_LOGIN_SELECT", "RAWLOG_EXT_LOGIN_USERS",
                     "RAWLOG_EXT_LOGIN_HOLD"}, names
    conf = (ROOT / "conf.d/90-rawlog_ext.conf").read_text()
    for name in names | {"RAWLOG_EXT_LOGIN_DIR"}:
        assert f"# {name}" in conf or f"#  {name}" in conf, name
