"""Turn device cgroup rules into a BPF_PROG_TYPE_CGROUP_DEVICE program.

cgroup v2 has no devices.allow: the kernel runs an eBPF program attached
to the cgroup for every device access. The program built here works like
runc's devicefilter: the rules are first folded through the same
emulator as the v1 driver, so that what remains is a default verdict and
a list of exceptions, each of which is one block of the program:

    r2 = type, r3 = access, r4 = major, r5 = minor   (from the context)
    block i: if r2 != type goto i+1
             if (r3 & access) != r3 goto i+1         (allow, access not rwm)
             if (r3 & access) == 0 goto i+1          (deny, access not rwm)
             if r4 != major goto i+1                 (unless major is *)
             if r5 != minor goto i+1                 (unless minor is *)
             return verdict
    last:    return default verdict

Instructions are returned as bytes, ready for bpf(BPF_PROG_LOAD).

One deliberate difference from runc: runc matches a deny exception only
when every requested access bit is denied, so with "allow all, deny c
1:3 w" an open(O_RDWR) (read and write at once) gets through. The v1
kernel denies on any overlap, and so does this program.
"""

import struct

from pyrunc.cgroups.devices import WILDCARD, Emulator
from pyrunc.errors import CgroupError

# include/uapi/linux/bpf.h
BPF_DEVCG_ACC_MKNOD = 1
BPF_DEVCG_ACC_READ = 2
BPF_DEVCG_ACC_WRITE = 4
BPF_DEVCG_DEV_BLOCK = 1
BPF_DEVCG_DEV_CHAR = 2

_ACCESS = {
    "r": BPF_DEVCG_ACC_READ,
    "w": BPF_DEVCG_ACC_WRITE,
    "m": BPF_DEVCG_ACC_MKNOD,
}
_ALL_ACCESS = BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE | BPF_DEVCG_ACC_MKNOD
_TYPES = {"c": BPF_DEVCG_DEV_CHAR, "b": BPF_DEVCG_DEV_BLOCK}

# Opcodes (instruction class | operation | source).
_LDX_MEM_W = 0x61  # BPF_LDX | BPF_MEM | BPF_W
_ALU32_AND_K = 0x54  # BPF_ALU | BPF_AND | BPF_K
_ALU32_RSH_K = 0x74  # BPF_ALU | BPF_RSH | BPF_K
_ALU32_MOV_K = 0xB4  # BPF_ALU | BPF_MOV | BPF_K
_ALU32_MOV_X = 0xBC  # BPF_ALU | BPF_MOV | BPF_X
_JEQ_K = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
_JNE_K = 0x55  # BPF_JMP | BPF_JNE | BPF_K
_JNE_X = 0x5D  # BPF_JMP | BPF_JNE | BPF_X
_EXIT = 0x95  # BPF_JMP | BPF_EXIT

R0, R1, R2, R3, R4, R5 = range(6)

LICENSE = "Apache"

# Placeholder jump offset, patched once the block's end is known.
_NEXT = object()


def _insn(code, dst=0, src=0, off=0, imm=0):
    return [code, dst, src, off, imm]


def _encode(insn):
    code, dst, src, off, imm = insn
    # struct bpf_insn: u8 code, u8 dst:4 src:4, s16 off, s32 imm.
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def _u32_imm(value, what, rule):
    if value > 0xFFFFFFFF:
        raise CgroupError(
            f"linux.resources.devices: invalid {what} in rule {rule.line()}"
        )
    # The immediate is a signed 32-bit field; the kernel compares it
    # with the u32 loaded from the context after the same conversion.
    if value >= 1 << 31:
        value -= 1 << 32
    return value


def _block(rule):
    """Return the instructions of one rule; _NEXT marks the exits."""
    type_ = _TYPES.get(rule.type)
    if type_ is None:
        raise CgroupError(
            f"linux.resources.devices: invalid type in rule {rule.line()}"
        )
    access = 0
    for ch in rule.access:
        access |= _ACCESS[ch]
    insns = [_insn(_JNE_K, R2, imm=type_, off=_NEXT)]
    if access != _ALL_ACCESS:
        insns.append(_insn(_ALU32_MOV_X, R1, R3))
        insns.append(_insn(_ALU32_AND_K, R1, imm=access))
        if rule.allow:
            # Allowed only if every requested bit is among the rule's.
            insns.append(_insn(_JNE_X, R1, R3, off=_NEXT))
        else:
            # Denied as soon as one requested bit is among the rule's.
            insns.append(_insn(_JEQ_K, R1, imm=0, off=_NEXT))
    if rule.major != WILDCARD:
        imm = _u32_imm(rule.major, "major", rule)
        insns.append(_insn(_JNE_K, R4, imm=imm, off=_NEXT))
    if rule.minor != WILDCARD:
        imm = _u32_imm(rule.minor, "minor", rule)
        insns.append(_insn(_JNE_K, R5, imm=imm, off=_NEXT))
    insns.append(_insn(_ALU32_MOV_K, R0, imm=1 if rule.allow else 0))
    insns.append(_insn(_EXIT))
    # A jump offset counts from the instruction after the jump; the next
    # block starts right after this one's exit.
    for i, insn in enumerate(insns):
        if insn[3] is _NEXT:
            insn[3] = len(insns) - i - 1
    return insns


def clean_rules(rules):
    """Fold rules into (default_allow, exceptions) as runc's emulator."""
    emu = Emulator.from_rules(rules)
    # From a deny-all cgroup to the target: an optional leading wildcard
    # (the default) and then only exceptions to it.
    out = Emulator(default_allow=False).transition(emu)
    if out and out[0].type == "a":
        out = out[1:]
    for rule in out:
        if rule.allow == emu.default_allow or rule.type == "a":
            raise CgroupError(
                f"linux.resources.devices: internal error: rule "
                f"{rule.line()} is not an exception to the default"
            )
    return emu.default_allow, out


def program(rules):
    """Return the BPF program (bytes) enforcing device rules."""
    default_allow, exceptions = clean_rules(rules)
    insns = [
        # access_type is (access << 16) | type in struct
        # bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }.
        _insn(_LDX_MEM_W, R2, R1, 0),
        _insn(_ALU32_AND_K, R2, imm=0xFFFF),
        _insn(_LDX_MEM_W, R3, R1, 0),
        _insn(_ALU32_RSH_K, R3, imm=16),
        _insn(_LDX_MEM_W, R4, R1, 4),
        _insn(_LDX_MEM_W, R5, R1, 8),
    ]
    for rule in exceptions:
        insns.extend(_block(rule))
    insns.append(_insn(_ALU32_MOV_K, R0, imm=1 if default_allow else 0))
    insns.append(_insn(_EXIT))
    return b"".join(_encode(i) for i in insns)


def run(prog, dev_type, major, minor, access):
    """Interpret a program built by program() for one access (tests).

    dev_type is "c" or "b", access a subset of "rwm"; returns True when
    the program allows the access. Only the instructions program()
    emits are understood.
    """
    bits = 0
    for ch in access:
        bits |= _ACCESS[ch]
    regs = [0] * 11
    ctx = struct.pack("<III", (bits << 16) | _TYPES[dev_type], major, minor)
    pc = 0
    count = len(prog) // 8
    while pc < count:
        code, regbyte, off, imm = struct.unpack_from("<BBhi", prog, pc * 8)
        dst = regbyte & 0x0F
        src = regbyte >> 4
        pc += 1
        if code == _LDX_MEM_W:
            regs[dst] = struct.unpack_from("<I", ctx, off)[0]
        elif code == _ALU32_AND_K:
            regs[dst] = (regs[dst] & imm) & 0xFFFFFFFF
        elif code == _ALU32_RSH_K:
            regs[dst] = (regs[dst] & 0xFFFFFFFF) >> imm
        elif code == _ALU32_MOV_K:
            regs[dst] = imm & 0xFFFFFFFF
        elif code == _ALU32_MOV_X:
            regs[dst] = regs[src] & 0xFFFFFFFF
        elif code == _JNE_K:
            if regs[dst] != imm & 0xFFFFFFFFFFFFFFFF:
                pc += off
        elif code == _JEQ_K:
            if regs[dst] == imm & 0xFFFFFFFFFFFFFFFF:
                pc += off
        elif code == _JNE_X:
            if regs[dst] != regs[src]:
                pc += off
        elif code == _EXIT:
            return regs[R0] == 1
        else:
            raise ValueError(f"unknown opcode {code:#x} at {pc - 1}")
    raise ValueError("program fell off its end")
