"""The eBPF device program: what it allows, and its shape (runc's)."""

import struct
from types import SimpleNamespace as NS

from hypothesis import given, settings
from hypothesis import strategies as st

from pyrunc.cgroups import devicefilter
from pyrunc.cgroups.devices import WILDCARD, Rule, effective_rules

DENY_ALL = NS(allow=False, type=None, major=None, minor=None, access="rwm")


def run(prog, dev, access):
    type_, major, minor = dev
    return devicefilter.run(prog, type_, major, minor, access)


class TestVerdicts:
    def test_runc_defaults_after_deny_all(self):
        prog = devicefilter.program(effective_rules([DENY_ALL]))
        assert run(prog, ("c", 1, 3), "rw")
        assert run(prog, ("c", 1, 3), "rwm")
        assert run(prog, ("c", 136, 7), "rw")  # /dev/pts/*
        assert run(prog, ("c", 10, 200), "r")  # /dev/net/tun
        assert run(prog, ("b", 8, 0), "m")  # mknod of any block device
        assert not run(prog, ("b", 8, 0), "r")
        assert not run(prog, ("c", 4, 1), "w")
        assert not run(prog, ("c", 1, 4), "r")

    def test_devnull_denied_when_spec_redefines_it(self):
        rules = effective_rules([DENY_ALL], [NS(path="/dev/null")])
        prog = devicefilter.program(rules)
        assert not run(prog, ("c", 1, 3), "r")
        assert not run(prog, ("c", 1, 3), "w")
        assert run(prog, ("c", 1, 3), "m")  # c *:* m still holds
        assert run(prog, ("c", 1, 5), "rw")

    def test_blacklist(self):
        rules = [
            Rule(True, "a", WILDCARD, WILDCARD, "rwm"),
            Rule(False, "c", 1, 3, "w"),
        ]
        prog = devicefilter.program(rules)
        assert run(prog, ("c", 1, 3), "r")
        assert not run(prog, ("c", 1, 3), "w")
        assert not run(prog, ("c", 1, 3), "rw")
        assert run(prog, ("c", 1, 5), "w")
        assert run(prog, ("b", 1, 3), "w")

    def test_deny_everything(self):
        prog = devicefilter.program([Rule(False, "a", -1, -1, "rwm")])
        assert len(prog) == 8 * 8
        assert not run(prog, ("c", 1, 3), "r")


class TestShape:
    def test_instruction_count_like_runc(self):
        rules = [
            Rule(True, "c", 1, 3, "rwm"),  # type, major, minor: 3 + 2
            Rule(True, "c", 5, WILDCARD, "rw"),  # type, access, major: 5 + 2
            Rule(True, "b", WILDCARD, WILDCARD, "m"),  # type, access: 4 + 2
        ]
        prog = devicefilter.program(rules)
        assert len(prog) // 8 == 6 + 5 + 7 + 6 + 2

    def test_header_and_exit(self):
        prog = devicefilter.program([Rule(True, "c", 1, 3, "rwm")])
        code, regs, off, imm = struct.unpack_from("<BBhi", prog, 0)
        # r2 = *(u32 *)(r1 + 0)
        assert (code, regs, off, imm) == (0x61, 0x12, 0, 0)
        code, regs, off, imm = struct.unpack_from("<BBhi", prog,
                                                  len(prog) - 16)
        # r0 = 0 (deny by default); exit
        assert (code, imm) == (0xB4, 0)
        assert prog[-8] == 0x95

    def test_jumps_stay_inside(self):
        rules = effective_rules([DENY_ALL])
        prog = devicefilter.program(rules)
        count = len(prog) // 8
        for pc in range(count):
            code, _regs, off, _imm = struct.unpack_from("<BBhi", prog,
                                                        pc * 8)
            if code in (0x15, 0x55, 0x5D):
                assert 0 < pc + 1 + off < count


# Random rule lists, checked against a direct reading of the emulator's
# outcome: the program must give the same verdict for every access.
types = st.sampled_from(["a", "b", "c"])
numbers = st.one_of(st.just(WILDCARD), st.integers(0, 3))
accesses = st.sampled_from(["r", "w", "m", "rw", "rm", "wm", "rwm"])
rules_st = st.lists(
    st.builds(Rule, st.booleans(), types, numbers, numbers, accesses),
    max_size=6,
)


def reference(rules, dev_type, major, minor, access):
    default, exceptions = devicefilter.clean_rules(rules)
    for rule in exceptions:
        if rule.type != dev_type:
            continue
        if rule.major not in (WILDCARD, major):
            continue
        if rule.minor not in (WILDCARD, minor):
            continue
        if rule.allow and set(access) <= set(rule.access):
            return True
        # A deny exception blocks any overlap (the v1 kernel's rule).
        if not rule.allow and set(access) & set(rule.access):
            return False
    return default


@settings(max_examples=200, deadline=None)
@given(rules_st)
def test_program_matches_emulator(rules):
    try:
        prog = devicefilter.program(rules)
    except Exception as err:  # punching holes in wildcards is refused
        assert "not supported" in str(err)
        return
    for dev_type in ("b", "c"):
        for major in range(0, 4):
            for minor in range(0, 4):
                for access in ("r", "w", "m", "rw", "rwm"):
                    want = reference(rules, dev_type, major, minor, access)
                    got = devicefilter.run(prog, dev_type, major, minor,
                                           access)
                    assert got == want, (rules, dev_type, major, minor,
                                         access)
