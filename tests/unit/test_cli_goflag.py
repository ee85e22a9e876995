"""cli/goflag.py parses option values exactly as runc's Go flag package.

The table was produced by Go 1.19 itself (flag.IntVar, flag.DurationVar
and strconv.ParseInt(s, 10, 64), the parsers behind runc's IntFlag,
DurationFlag and Int64SliceFlag); test_matches_go_itself re-runs Go when
it is installed.
"""

import json
import shutil
import subprocess

import pytest

from pyrunc.cli import goflag
from pyrunc.cli.goflag import go_decimal, go_duration, go_float, go_int

PARSE = "parse error"
RANGE = "value out of range"
SYNTAX = "invalid syntax"

# (text, flag.IntVar, flag.DurationVar in ns, ParseInt base 10)
GO_CASES = [
    ('0', 0, 0, 0),
    ('3', 3, PARSE, 3),
    ('-3', -3, PARSE, -3),
    ('+2', 2, PARSE, 2),
    ('0x10', 16, PARSE, SYNTAX),
    ('0X1f', 31, PARSE, SYNTAX),
    ('010', 8, PARSE, 10),
    ('0o17', 15, PARSE, SYNTAX),
    ('0b101', 5, PARSE, SYNTAX),
    ('1_000', 1000, PARSE, SYNTAX),
    ('0_7', 7, PARSE, SYNTAX),
    ('_1', PARSE, PARSE, SYNTAX),
    ('1__0', PARSE, PARSE, SYNTAX),
    ('0x_1', 1, PARSE, SYNTAX),
    ('99999999999999999999', RANGE, PARSE, RANGE),
    ('9223372036854775807', 9223372036854775807, PARSE, 9223372036854775807),
    ('9223372036854775808', RANGE, PARSE, RANGE),
    ('-9223372036854775808', -9223372036854775808, PARSE,
     -9223372036854775808),
    ('-9223372036854775809', RANGE, PARSE, RANGE),
    ('18446744073709551615', RANGE, PARSE, RANGE),
    ('18446744073709551616', RANGE, PARSE, RANGE),
    (' 1', PARSE, PARSE, SYNTAX),
    ('1 ', PARSE, PARSE, SYNTAX),
    ('x', PARSE, PARSE, SYNTAX),
    ('', PARSE, PARSE, SYNTAX),
    ('-', PARSE, PARSE, SYNTAX),
    ('+', PARSE, PARSE, SYNTAX),
    ('5s', PARSE, 5000000000, SYNTAX),
    ('1m30s', PARSE, 90000000000, SYNTAX),
    ('.5s', PARSE, 500000000, SYNTAX),
    ('5.s', PARSE, 5000000000, SYNTAX),
    ('-0', 0, 0, 0),
    ('5', 5, PARSE, 5),
    ('-1s', PARSE, -1000000000, SYNTAX),
    ('1x', PARSE, PARSE, SYNTAX),
    ('h', PARSE, PARSE, SYNTAX),
    ('1.5h2m', PARSE, 5520000000000, SYNTAX),
    ('250ms', PARSE, 250000000, SYNTAX),
    ('1us', PARSE, 1000, SYNTAX),
    ('1µs', PARSE, 1000, SYNTAX),
    ('1μs', PARSE, 1000, SYNTAX),
    ('1ns', PARSE, 1, SYNTAX),
    ('2h45m', PARSE, 9900000000000, SYNTAX),
    ('1h-1m', PARSE, PARSE, SYNTAX),
    ('+5s', PARSE, 5000000000, SYNTAX),
    ('0.0001ns', PARSE, 0, SYNTAX),
    ('1.0000000001s', PARSE, 1000000000, SYNTAX),
    ('9223372036s', PARSE, 9223372036000000000, SYNTAX),
    ('9223372037s', PARSE, PARSE, SYNTAX),
    ('2562047h', PARSE, 9223369200000000000, SYNTAX),
    ('2562048h', PARSE, PARSE, SYNTAX),
    ('1e3', PARSE, PARSE, SYNTAX),
    ('inf', PARSE, PARSE, SYNTAX),
    ('NaN', PARSE, PARSE, SYNTAX),
    ('1.5', PARSE, PARSE, SYNTAX),
    ('0x1p-2', PARSE, PARSE, SYNTAX),
    ('1_0.5', PARSE, PARSE, SYNTAX),
    ('١٢', PARSE, PARSE, SYNTAX),
]


def outcome(parse, text):
    try:
        return parse(text)
    except ValueError as err:
        return str(err)


@pytest.mark.parametrize("text, as_int, as_duration, as_decimal", GO_CASES)
def test_same_values_and_errors_as_go(text, as_int, as_duration,
                                      as_decimal):
    assert outcome(go_int, text) == as_int
    if isinstance(as_duration, int):
        assert go_duration(text) == as_duration / 1e9
    else:
        assert outcome(go_duration, text) == as_duration
    quoted = json.dumps(text, ensure_ascii=False)
    if as_decimal == SYNTAX:
        as_decimal = f"strconv.ParseInt: parsing {quoted}: {SYNTAX}"
    elif as_decimal == RANGE:
        as_decimal = f"strconv.ParseInt: parsing {quoted}: {RANGE}"
    assert outcome(go_decimal, text) == as_decimal


@pytest.mark.parametrize("text, value", [
    ("1e3", 1000.0), ("1.5", 1.5), ("-0", -0.0), ("1_0.5", 10.5),
    ("0x1p-2", 0.25), ("inf", float("inf")), ("3", 3.0),
])
def test_float_values(text, value):
    assert go_float(text) == value


@pytest.mark.parametrize("text", ["0x10", " 1", "1 ", "x", "", "1.5s",
                                  "_1", "\u0661"])
def test_float_refused(text):
    with pytest.raises(ValueError, match=PARSE):
        go_float(text)


def test_format_duration():
    assert goflag.format_duration(5) == "5s"
    assert goflag.format_duration(0.25) == "0.25s"


GO_PROGRAM = """
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"
)

func main() {
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		v := sc.Text()
		fs := flag.NewFlagSet("x", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		var i int
		var d time.Duration
		fs.IntVar(&i, "n", 0, "")
		fs.DurationVar(&d, "d", 0, "")
		ni, nd := fmt.Sprint(i), ""
		if err := fs.Parse([]string{"-n", v}); err != nil {
			ni = "ERR"
		} else {
			ni = fmt.Sprint(i)
		}
		if err := fs.Parse([]string{"-d", v}); err != nil {
			nd = "ERR"
		} else {
			nd = fmt.Sprint(d.Nanoseconds())
		}
		n, err := strconv.ParseInt(v, 10, 64)
		nn := fmt.Sprint(n)
		if err != nil {
			nn = "ERR"
		}
		fmt.Printf("%s\\t%s\\t%s\\n", ni, nd, nn)
	}
}
"""


@pytest.mark.skipif(shutil.which("go") is None, reason="go is not installed")
def test_matches_go_itself(tmp_path):
    """Run the table's inputs and a few more through Go, offline."""
    (tmp_path / "main.go").write_text(GO_PROGRAM)
    (tmp_path / "go.mod").write_text("module goflagcheck\ngo 1.19\n")
    texts = [case[0] for case in GO_CASES if "\n" not in case[0]]
    texts += ["1h1m1s1ms1us1ns", "00", "-0x10", "0O7", "0B1", "1.s",
              "1..5s", ".s", "3.000000000001h", "1_0s", "1e2s"]
    env = {"PATH": "/usr/bin:/bin", "GOPROXY": "off", "GOFLAGS": "-mod=mod",
           "HOME": str(tmp_path), "GOCACHE": str(tmp_path / "cache"),
           "GOPATH": str(tmp_path / "gopath")}
    done = subprocess.run(["go", "run", "."], cwd=tmp_path, env=env,
                          input="\n".join(texts) + "\n", text=True,
                          capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr
    for text, line in zip(texts, done.stdout.splitlines(), strict=True):
        as_int, as_duration, as_decimal = line.split("\t")

        def mine(parse, convert=str):
            try:
                return convert(parse(text))
            except ValueError:
                return "ERR"

        nanos = goflag._duration_nanos(text)
        assert mine(go_int) == as_int, text
        assert ("ERR" if nanos is None else str(nanos)) == as_duration, text
        assert mine(go_decimal) == as_decimal, text
