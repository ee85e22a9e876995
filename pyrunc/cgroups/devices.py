"""Device rules for the v1 devices controller, computed as runc does.

runc builds the wanted state from the spec rules followed by its default
allow list, reads the current state from devices.list, and writes only
the rules needed to get from one to the other. This module models a
devices cgroup as a default policy plus a map of exceptions, the same way
as runc's emulator, so the lines written match runc's byte for byte.
"""

from pyrunc.errors import CgroupError, ConfigError

WILDCARD = -1

_READ, _WRITE, _MKNOD = 1, 2, 4
_PERM_BITS = {"r": _READ, "w": _WRITE, "m": _MKNOD}

FIELD = "linux.resources.devices"


class Rule:
    """One devices cgroup rule: allow or deny type major:minor access."""

    __slots__ = ("allow", "type", "major", "minor", "access")

    def __init__(self, allow, type_, major, minor, access):
        self.allow = allow
        self.type = type_
        self.major = major
        self.minor = minor
        self.access = access

    def __eq__(self, other):
        return isinstance(other, Rule) and self.key() == other.key()

    def __repr__(self):
        verb = "allow" if self.allow else "deny"
        return f"Rule({verb} {self.line()})"

    def key(self):
        return (self.allow, self.type, self.major, self.minor, self.access)

    def line(self):
        """Return the text written to devices.allow or devices.deny."""
        major = "*" if self.major == WILDCARD else str(self.major)
        minor = "*" if self.minor == WILDCARD else str(self.minor)
        return f"{self.type} {major}:{minor} {self.access}"


# The devices runc lets every container use on top of the spec rules
# (libcontainer/specconv AllowedDevices), with the path that a device of
# linux.devices may override.
DEFAULT_RULES = (
    (None, Rule(True, "c", WILDCARD, WILDCARD, "m")),
    (None, Rule(True, "b", WILDCARD, WILDCARD, "m")),
    ("/dev/null", Rule(True, "c", 1, 3, "rwm")),
    ("/dev/random", Rule(True, "c", 1, 8, "rwm")),
    ("/dev/full", Rule(True, "c", 1, 7, "rwm")),
    ("/dev/tty", Rule(True, "c", 5, 0, "rwm")),
    ("/dev/zero", Rule(True, "c", 1, 5, "rwm")),
    ("/dev/urandom", Rule(True, "c", 1, 9, "rwm")),
    (None, Rule(True, "c", 136, WILDCARD, "rwm")),
    (None, Rule(True, "c", 5, 2, "rwm")),
    (None, Rule(True, "c", 10, 200, "rwm")),
)


def _bits(access):
    value = 0
    for ch in access:
        value |= _PERM_BITS.get(ch, 0)
    return value


def _access(bits):
    return "".join(ch for ch in "rwm" if bits & _PERM_BITS[ch])


def _attr(obj, name):
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


def spec_rules(spec_devices):
    """Turn linux.resources.devices entries into Rules (runc specconv)."""
    rules = []
    for i, dev in enumerate(spec_devices or ()):
        where = f"{FIELD}[{i}]"
        type_ = _attr(dev, "type") or "a"
        if type_ not in ("a", "b", "c"):
            raise ConfigError(f"{where}.type: invalid device type {type_!r}")
        access = _attr(dev, "access") or ""
        if not access:
            raise ConfigError(f"{where}.access: cannot be empty")
        if set(access) - set("rwm"):
            raise ConfigError(f"{where}.access: invalid mode {access!r}")
        major = _attr(dev, "major")
        minor = _attr(dev, "minor")
        rules.append(
            Rule(
                bool(_attr(dev, "allow")),
                type_,
                WILDCARD if major is None else int(major),
                WILDCARD if minor is None else int(minor),
                access,
            )
        )
    return rules


def effective_rules(spec_devices, linux_devices=None):
    """Return the spec rules followed by runc's default allow list.

    A default entry whose path also appears in linux.devices is dropped,
    since the spec's own device takes its place (runc createDevices).
    """
    taken = set()
    for dev in linux_devices or ():
        path = _attr(dev, "path")
        if path:
            taken.add(path)
    rules = spec_rules(spec_devices)
    for path, rule in DEFAULT_RULES:
        if path is not None and path in taken:
            continue
        rules.append(rule)
    return rules


class Emulator:
    """State of a devices cgroup: a default policy and its exceptions."""

    def __init__(self, default_allow=False):
        self.default_allow = default_allow
        # (type, major, minor) -> permission bits
        self.rules = {}

    def __eq__(self, other):
        return (
            self.default_allow == other.default_allow
            and self.rules == other.rules
        )

    def _add(self, meta, bits):
        self.rules[meta] = self.rules.get(meta, 0) | bits

    def _remove(self, meta, bits):
        type_, major, minor = meta
        # The kernel silently ignores a request to remove part of a
        # wildcard exception; refuse it rather than pretend it worked.
        for partial in (
            (type_, WILDCARD, minor),
            (type_, major, WILDCARD),
            (type_, WILDCARD, WILDCARD),
        ):
            if partial == meta:
                continue
            if self.rules.get(partial, 0) & bits:
                wanted = Rule(False, *meta, _access(bits)).line()
                wild = Rule(False, *partial, "").line().rstrip()
                raise CgroupError(
                    f"{FIELD}: rule {wanted} is not supported by the v1 "
                    f"devices cgroup (cannot punch a hole in {wild})"
                )
        left = self.rules.get(meta, 0) & ~bits
        if left:
            self.rules[meta] = left
        else:
            self.rules.pop(meta, None)

    def apply(self, rule):
        """Fold one rule into the state, as the kernel would."""
        if rule.type == "a":
            # A wildcard rule resets the cgroup to allow-all or deny-all.
            self.default_allow = rule.allow
            self.rules = {}
            return
        meta = (rule.type, rule.major, rule.minor)
        bits = _bits(rule.access)
        if rule.allow == self.default_allow:
            self._remove(meta, bits)
        else:
            self._add(meta, bits)

    @classmethod
    def from_rules(cls, rules):
        """Build the wanted state; it starts as deny-all, as in runc."""
        emu = cls(default_allow=False)
        for rule in rules:
            emu.apply(rule)
        return emu

    @classmethod
    def from_list(cls, text):
        """Build the current state from the text of devices.list."""
        emu = cls(default_allow=False)
        for line in text.splitlines():
            if not line.strip():
                continue
            fields = line.replace(":", " ").split()
            if len(fields) != 4:
                raise CgroupError(f"malformed devices.list rule {line!r}")
            type_, major, minor, access = fields
            if type_ == "a":
                emu.default_allow = True
                emu.rules = {}
                continue
            rule = Rule(
                True,
                type_,
                WILDCARD if major == "*" else int(major),
                WILDCARD if minor == "*" else int(minor),
                access,
            )
            # devices.list only lists what is allowed; in allow-all mode
            # the deny exceptions are not visible at all.
            if not emu.default_allow:
                emu._add((rule.type, rule.major, rule.minor), _bits(access))
        return emu

    @staticmethod
    def _ordered(rules):
        # Sorted by (major, minor, type) so the output is stable; the
        # wildcard (-1) sorts first.
        def order(item):
            (type_, major, minor), _bits_ = item
            return (major, minor, type_)

        return sorted(rules.items(), key=order)

    def transition(self, target):
        """Return the rules that turn this state into target, in order.

        An allow-all source is always reset first, because its deny
        exceptions cannot be read back from devices.list.
        """
        out = []
        old = self.rules
        if self.default_allow or self.default_allow != target.default_allow:
            out.append(
                Rule(target.default_allow, "a", WILDCARD, WILDCARD, "rwm")
            )
            old = {}
        for meta, bits in self._ordered(old):
            dropped = bits & ~target.rules.get(meta, 0)
            if dropped:
                out.append(Rule(target.default_allow, *meta, _access(dropped)))
        for meta, bits in self._ordered(target.rules):
            gained = bits & ~old.get(meta, 0)
            if gained:
                out.append(
                    Rule(not target.default_allow, *meta, _access(gained))
                )
        return out
