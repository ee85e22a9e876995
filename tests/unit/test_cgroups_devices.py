"""The v1 devices cgroup model: parsing, folding rules and transitions."""

from types import SimpleNamespace as NS

import pytest

from pyrunc.cgroups.devices import (
    DEFAULT_RULES,
    WILDCARD,
    Emulator,
    Rule,
    effective_rules,
    spec_rules,
)
from pyrunc.errors import CgroupError


def lines(rules):
    return [("allow" if r.allow else "deny", r.line()) for r in rules]


class TestRule:
    def test_line(self):
        assert Rule(True, "c", 1, 3, "rwm").line() == "c 1:3 rwm"
        assert Rule(False, "b", WILDCARD, 7, "m").line() == "b *:7 m"
        assert Rule(False, "a", WILDCARD, WILDCARD, "rwm").line() == (
            "a *:* rwm"
        )

    def test_spec_defaults(self):
        rule = spec_rules(
            [NS(allow=False, type=None, major=None, minor=None, access="rwm")]
        )[0]
        assert rule == Rule(False, "a", WILDCARD, WILDCARD, "rwm")

    def test_dict_entries(self):
        rule = spec_rules(
            [
                {
                    "allow": True,
                    "type": "c",
                    "major": 5,
                    "minor": 1,
                    "access": "rw",
                }
            ]
        )[0]
        assert rule.line() == "c 5:1 rw"

    def test_effective_appends_defaults(self):
        rules = effective_rules([])
        assert rules == [r for _, r in DEFAULT_RULES]


class TestEmulator:
    def test_from_list_blacklist(self):
        emu = Emulator.from_list("a *:* rwm\n")
        assert emu.default_allow and emu.rules == {}

    def test_from_list_whitelist(self):
        emu = Emulator.from_list("c 1:3 rwm\nc 136:* rw\nc 1:3 m\n")
        assert not emu.default_allow
        assert emu.rules == {("c", 1, 3): 7, ("c", 136, WILDCARD): 3}

    def test_from_list_malformed(self):
        with pytest.raises(CgroupError, match="malformed"):
            Emulator.from_list("c 1 rwm\n")

    def test_blacklist_source_always_reset(self):
        target = Emulator.from_rules([Rule(True, "c", 1, 3, "rw")])
        out = Emulator.from_list("a *:* rwm\n").transition(target)
        assert lines(out) == [("deny", "a *:* rwm"), ("allow", "c 1:3 rw")]

    def test_whitelist_to_whitelist_minimal(self):
        src = Emulator.from_list("c 1:3 rwm\nc 1:5 rwm\n")
        target = Emulator.from_rules(
            [Rule(True, "c", 1, 3, "r"), Rule(True, "c", 1, 9, "rwm")]
        )
        assert lines(src.transition(target)) == [
            ("deny", "c 1:3 wm"),
            ("deny", "c 1:5 rwm"),
            ("allow", "c 1:9 rwm"),
        ]

    def test_same_state_writes_nothing(self):
        text = "c 1:3 rwm\nb *:* m\n"
        target = Emulator.from_list(text)
        assert Emulator.from_list(text).transition(target) == []

    def test_allow_all_target(self):
        rules = [Rule(True, "a", WILDCARD, WILDCARD, "rwm")]
        rules += [r for _, r in DEFAULT_RULES]
        target = Emulator.from_rules(rules)
        assert target.default_allow
        out = Emulator.from_list("a *:* rwm\n").transition(target)
        assert lines(out) == [("allow", "a *:* rwm")]

    def test_blacklist_with_deny_exception(self):
        rules = [
            Rule(True, "a", WILDCARD, WILDCARD, "rwm"),
            Rule(False, "c", 1, 3, "w"),
        ]
        out = Emulator.from_list("a *:* rwm\n").transition(
            Emulator.from_rules(rules)
        )
        assert lines(out) == [("allow", "a *:* rwm"), ("deny", "c 1:3 w")]

    def test_deny_removes_from_whitelist(self):
        emu = Emulator.from_rules(
            [Rule(True, "c", 1, 3, "rwm"), Rule(False, "c", 1, 3, "w")]
        )
        assert emu.rules == {("c", 1, 3): 5}

    def test_wildcard_hole_refused(self):
        with pytest.raises(
            CgroupError,
            match="cannot punch a hole in "
            r"c \*:\*",
        ):
            Emulator.from_rules(
                [
                    Rule(True, "c", WILDCARD, WILDCARD, "r"),
                    Rule(False, "c", 4, 1, "r"),
                ]
            )

    def test_order_is_major_minor_type(self):
        target = Emulator.from_rules(
            [
                Rule(True, "c", 10, 200, "rwm"),
                Rule(True, "c", 136, WILDCARD, "rwm"),
                Rule(True, "c", 1, 3, "rwm"),
                Rule(True, "b", WILDCARD, WILDCARD, "m"),
                Rule(True, "c", WILDCARD, WILDCARD, "m"),
            ]
        )
        out = Emulator(default_allow=False).transition(target)
        assert [r.line() for r in out] == [
            "b *:* m",
            "c *:* m",
            "c 1:3 rwm",
            "c 10:200 rwm",
            "c 136:* rwm",
        ]
