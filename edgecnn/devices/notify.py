"""sd_notify without a dependency: one datagram to the AF_UNIX socket named by $NOTIFY_SOCKET.

``Notifier.frame()`` is called for each processed frame and pings ``WATCHDOG=1`` at most every half
``$WATCHDOG_USEC``: pings stop when frames stop flowing, so systemd restarts a stuck service.
"""

import os
import socket
import time


def sd_notify(state: str, sock_path: str = None) -> bool:
    """Send ``state`` (e.g. ``"READY=1"``); False when not run under systemd or the send fails."""
    path = sock_path or os.environ.get("NOTIFY_SOCKET")
    if not path:
        return False
    if path.startswith("@"):
        path = "\0" + path[1:]  # abstract namespace
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | getattr(socket, "SOCK_CLOEXEC", 0)) as sock:
            sock.connect(path)
            sock.sendall(state.encode())
        return True
    except OSError:
        return False


class Notifier:
    def __init__(self, sock_path=None, watchdog_usec=None):
        self.sock_path = sock_path or os.environ.get("NOTIFY_SOCKET")
        usec = watchdog_usec if watchdog_usec is not None else os.environ.get("WATCHDOG_USEC")
        self.interval_s = int(usec) / 2e6 if usec else None
        self.enabled = bool(self.sock_path)
        self.pings = 0
        self._last = 0.0

    def ready(self, status="running"):
        return self.enabled and sd_notify(f"READY=1\nSTATUS={status}", self.sock_path)

    def frame(self, now=None):
        """A frame was processed: ping the watchdog if the interval has passed."""
        if not (self.enabled and self.interval_s):
            return False
        now = time.monotonic() if now is None else now
        if now - self._last < self.interval_s:
            return False
        self._last = now
        self.pings += 1
        return sd_notify("WATCHDOG=1", self.sock_path)

    def stopping(self):
        return self.enabled and sd_notify("STOPPING=1", self.sock_path)
