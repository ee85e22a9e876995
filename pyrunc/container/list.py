"""`list`: the state of every container under the root, as runc shows it."""

import os

from pyrunc import log as _log
from pyrunc.container.state import describe
from pyrunc.errors import PyruncError

log = _log.get_logger(__name__)


def list_containers(store):
    """Return runc's containerState objects for every container, by id.

    >>> list_containers(Store("/tmp/empty-root"))
    []

    owner is the user owning the container directory (runc looks it up
    by uid, "#<uid>" when unknown). A container whose state cannot be
    read is reported as a warning and left out, as runc does.
    """
    result = []
    for cid in store.ids():
        try:
            record = store.load(cid)
            status = record.status(store)
        except PyruncError as err:
            log.warning("load container %s: %s", cid, err)
            continue
        owner = _owner(store.dir(cid))
        result.append(describe(record, status, owner=owner))
    return result


def _owner(path):
    try:
        uid = os.stat(path).st_uid
    except OSError:
        return ""
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"#{uid}"


def format_table(items):
    """Return the table of `list`, aligned like Go's text/tabwriter.

    runc uses tabwriter with a minimum cell width of 12 and a padding of
    3: each column is as wide as its widest cell plus 3, at least 12.
    The last column is not padded.
    """
    rows = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")]
    for item in items:
        rows.append((item["id"], str(item["pid"]), item["status"],
                     item["bundle"], item["created"], item["owner"]))
    widths = [12] * 5
    for row in rows:
        for column in range(5):
            widths[column] = max(widths[column], len(row[column]) + 3)
    lines = []
    for row in rows:
        cells = [row[c].ljust(widths[c]) for c in range(5)]
        cells.append(row[5])
        lines.append("".join(cells) + "\n")
    return "".join(lines)
