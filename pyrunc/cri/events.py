"""The container event stream behind GetContainerEvents.

Each subscriber gets its own bounded queue; an event is dropped for a
subscriber whose queue is full (a stalled kubelet must not stall the
server), and it is logged.
"""

import logging
import queue
import threading

log = logging.getLogger(__name__)

QUEUE_SIZE = 1000


class EventBus:
    """Fan-out of container events to the open streams."""

    def __init__(self):
        self._lock = threading.Lock()
        self._queues = []

    def subscribe(self):
        """Return a new queue that receives every later event."""
        q = queue.Queue(QUEUE_SIZE)
        with self._lock:
            self._queues.append(q)
        return q

    def unsubscribe(self, q):
        with self._lock:
            if q in self._queues:
                self._queues.remove(q)

    def publish(self, event):
        """Hand event (any object) to every subscriber."""
        with self._lock:
            queues = list(self._queues)
        for q in queues:
            try:
                q.put_nowait(event)
            except queue.Full:
                log.warning("event stream full: dropping an event")
