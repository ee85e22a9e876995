"""The library in a threaded process: the child must not need malloc.

The executor's child is a raw clone of whichever thread called create.
Had another thread been inside malloc at that instant, the child would
inherit malloc's lock held, and any malloc of its own (glibc's fork,
opendir, a buffer) would wait forever: the container never starts. The
child takes its memory from mmap instead. Here a thread allocates
without pause, outside the GIL, through the one malloc arena while
containers are created, so that many clones happen with the lock taken.
"""

import os
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.root]

HAMMER_C = r"""
#include <stdlib.h>

void *volatile last;

/* Allocate and free until *stop: above tcache's sizes and below the
 * mmap threshold, so that each call takes the arena's lock. The pointer
 * escapes, or the compiler drops the pair. */
void hammer(volatile int *stop)
{
	while (!*stop) {
		last = malloc(100000);
		free(last);
	}
}
"""

SCRIPT = r"""
import ctypes, os, select, sys, threading
from pyrunc.container.create import create
from pyrunc.container.delete import delete
from pyrunc.container.start import start
from pyrunc.state.store import Store

root, bundle, library, rounds = sys.argv[1:5]
store = Store(root)
stop = ctypes.c_int(0)
# ctypes lets go of the GIL: the loop runs beside the creates.
hammer = ctypes.CDLL(library).hammer
worker = threading.Thread(target=hammer, args=(ctypes.byref(stop),))
worker.start()
hung = 0
try:
    for i in range(int(rounds)):
        cid = f"threaded-{os.getpid()}-{i}"
        record = create(store, cid, bundle)
        start(store, cid)
        exited = os.pidfd_open(record.pid)
        poller = select.poll()
        poller.register(exited, select.POLLIN)
        if not poller.poll(10_000):
            hung += 1
        os.close(exited)
        delete(store, cid, force=True)
        try:
            os.waitpid(record.pid, 0)
        except ChildProcessError:
            pass
finally:
    stop.value = 1
    worker.join()
print(f"hung {hung} of {rounds}")
"""


def test_created_from_a_threaded_process(bundle, tmp_path):
    source = tmp_path / "hammer.c"
    source.write_text(HAMMER_C)
    library = tmp_path / "hammer.so"
    subprocess.run(["gcc", "-O2", "-shared", "-fPIC", "-o", str(library),
                    str(source)], check=True)
    bundle.set_args("true")
    bundle.save()
    # One arena for all threads, as when there are more threads than
    # arenas: the hammer's lock is the creating thread's too.
    env = dict(os.environ, MALLOC_ARENA_MAX="1")
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "root"),
         str(bundle.path), str(library), "20"],
        capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "hung 0 of 20", done.stderr
