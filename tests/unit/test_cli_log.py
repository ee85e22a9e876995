"""pyrunc.log: runc's line formats, the --log sink and the logging bridge.

The expected lines are pinned from runc 1.1.5 (logrus 1.8.1) output, e.g.
`runc --log-format json state nosuch`.
"""

import calendar
import os
import subprocess
import sys

import pytest

from pyrunc import log
from pyrunc.errors import ConfigError, PyruncError
from pyrunc.state.gojson import dumps, quote

# 2023-11-14T22:13:20Z
WHEN = calendar.timegm((2023, 11, 14, 22, 13, 20, 0, 0, 0))


@pytest.fixture(autouse=True)
def utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    import time

    time.tzset()
    yield
    log.reset()


class TestFormat:
    def test_text_like_logrus(self):
        line = log.format_line(log.ERROR, "container does not exist", WHEN)
        assert line == ('time="2023-11-14T22:13:20Z" level=error '
                        'msg="container does not exist"\n')

    def test_json_like_logrus(self):
        line = log.format_line(log.ERROR, "container does not exist", WHEN,
                               as_json=True)
        assert line == ('{"level":"error","msg":"container does not '
                        'exist","time":"2023-11-14T22:13:20Z"}\n')

    def test_levels(self):
        names = [log.format_line(level, "m", WHEN, as_json=True)
                 for level in (log.DEBUG, log.INFO, log.WARNING, log.ERROR,
                               log.FATAL)]
        assert [n.split('"')[3] for n in names] == [
            "debug", "info", "warning", "error", "fatal"]

    def test_text_quoting_like_go(self):
        # logrus quotes with %q unless every character is "safe".
        assert log.format_line(log.INFO, "ok/1.2_x", WHEN).endswith(
            " msg=ok/1.2_x\n")
        assert log.format_line(log.INFO, "", WHEN).endswith(" msg=\n")
        line = log.format_line(log.INFO, 'No help topic for \'x\'\n', WHEN)
        assert line.endswith(' msg="No help topic for \'x\'\\n"\n')
        assert log.go_quote('a"b\\c\td\x01é\x7f') == \
            '"a\\"b\\\\c\\td\\x01é\\x7f"'
        assert log.go_quote("\u0085\U0001F600") == '"\\u0085\U0001F600"'

    def test_json_escapes_like_go(self):
        line = log.format_line(log.ERROR, "a<b>&\"\n\x08é", WHEN,
                               as_json=True)
        assert '"msg":"a\\u003cb\\u003e\\u0026\\"\\n\\u0008é"' in line

    def test_colour_on_terminal(self):
        line = log.format_line(log.ERROR, "container does not exist",
                               log._START + 2.5, colour=True)
        assert line == ("\x1b[31mERRO\x1b[0m[0002] container does not exist"
                        + " " * 21 + "\n")
        warn = log.format_line(log.WARNING, "x", log._START, colour=True)
        assert warn.startswith("\x1b[33mWARN\x1b[0m[0000] x ")

    def test_rfc3339_offset(self, monkeypatch):
        import time

        monkeypatch.setenv("TZ", "EST+5")
        time.tzset()
        assert log.rfc3339(WHEN) == "2023-11-14T17:13:20-05:00"


class TestGoJson:
    def test_indent_like_marshal_indent(self):
        obj = {"a": 1, "b": {}, "c": [], "d": [True, None, "x"], "e": {"f": 2}}
        assert dumps(obj, indent=2) == (
            '{\n  "a": 1,\n  "b": {},\n  "c": [],\n  "d": [\n    true,\n'
            '    null,\n    "x"\n  ],\n  "e": {\n    "f": 2\n  }\n}')

    def test_compact(self):
        assert dumps(None) == "null"
        assert dumps([{"a": "b"}]) == '[{"a":"b"}]'

    def test_strings(self):
        assert quote("plain") == '"plain"'
        assert quote("\u2028&\x0c\x7f") == '"\\u2028\\u0026\\u000c\x7f"'
        assert quote("\udcff") == '"\ufffd"'

    def test_rejects_other_types(self):
        with pytest.raises(TypeError):
            dumps({"a": 1.5})


class TestSink:
    def test_log_file_gets_line_and_stderr_gets_message(self, tmp_path,
                                                        capfd):
        path = tmp_path / "log.json"
        log.setup(str(path), "json")
        log.report_error("boom")
        out, err = capfd.readouterr()
        assert err == "boom\n"
        text = path.read_text()
        assert text.startswith('{"level":"error","msg":"boom","time":"')
        assert text.endswith('"}\n')

    def test_stderr_only_once(self, capfd):
        log.setup(None, "text")
        log.report_error("boom")
        _, err = capfd.readouterr()
        assert err.count("boom") == 1 and "level=error" in err

    def test_file_flags_and_mode(self, tmp_path):
        path = tmp_path / "log"
        old = os.umask(0)
        try:
            log.setup(str(path), "text")
        finally:
            os.umask(old)
        assert oct(path.stat().st_mode & 0o777) == "0o644"
        flags = int(_fdinfo(log._sink.fd)["flags"], 8)
        assert flags & os.O_APPEND and flags & os.O_SYNC
        assert flags & os.O_CLOEXEC

    def test_appends(self, tmp_path):
        path = tmp_path / "log"
        path.write_text("old\n")
        log.setup(str(path), "text")
        log.emit(log.WARNING, "new")
        assert path.read_text().startswith("old\ntime=")

    def test_levels_filter(self, tmp_path):
        path = tmp_path / "log"
        log.setup(str(path), "json")
        log.get_logger("pyrunc.x").debug("hidden %s", 1)
        log.get_logger("pyrunc.x").info("shown %s", 2)
        log.setup(str(path), "json", debug=True)
        log.get_logger("pyrunc.x").debug("shown %s", 3)
        lines = path.read_text().splitlines()
        assert ['"msg":"shown 2"' in lines[0], '"msg":"shown 3"' in lines[1]] \
            == [True, True] and len(lines) == 2

    def test_bad_format(self):
        with pytest.raises(ConfigError, match="invalid log-format: xml"):
            log.setup(None, "xml")

    def test_unopenable_file(self, tmp_path):
        path = tmp_path / "missing" / "log"
        with pytest.raises(PyruncError) as info:
            log.setup(str(path), "text")
        assert str(info.value) == f"open {path}: no such file or directory"

    def test_stdlib_records_reach_the_sink(self, tmp_path):
        import logging

        path = tmp_path / "log"
        log.setup(str(path), "json")
        logging.getLogger("pyrunc.cgroups.x").warning("from %s", "stdlib")
        logging.getLogger("pyrunc.cgroups.x").debug("not shown")
        logging.getLogger("somelib").info("not shown either")
        lines = path.read_text().splitlines()
        assert len(lines) == 1
        assert '"level":"warning","msg":"from stdlib"' in lines[0]


def test_bridge_when_logging_is_imported_later(tmp_path):
    """setup() before anyone imports logging; the import hook attaches."""
    path = tmp_path / "log"
    code = f"""
import sys
from pyrunc import log
log.setup({str(path)!r}, "json", debug=True)
assert "logging" not in sys.modules, "logging imported too early"
import logging
logging.getLogger("pyrunc.other").debug("late %d", 42)
logging.getLogger("pyrunc.other").error("err")
"""
    done = subprocess.run([sys.executable, "-S", "-c", code],
                          capture_output=True, text=True, env=_env())
    assert done.returncode == 0, done.stderr
    lines = path.read_text().splitlines()
    assert '"level":"debug","msg":"late 42"' in lines[0]
    assert '"level":"error","msg":"err"' in lines[1]
    assert done.stderr == ""


def _fdinfo(fd):
    with open(f"/proc/self/fdinfo/{fd}") as f:
        return dict(line.split(":\t", 1) for line in f.read().splitlines()
                    if ":\t" in line)


def _env():
    import pyrunc

    parent = os.path.dirname(os.path.dirname(pyrunc.__file__))
    return dict(os.environ, PYTHONPATH=parent)
