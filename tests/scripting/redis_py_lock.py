"""redis-py's Lock against a Conclave node, unchanged (issue 9).

Its acquire is SET NX PX; release, extend and reacquire are Lua scripts (EVALSHA after
SCRIPT LOAD, falling back to EVAL). Usage: python3 redis_py_lock.py PORT
Exits 0 and prints "redis-py Lock: N passed, 0 failed" when everything holds.
"""
import sys
import threading
import time

import redis
from redis.exceptions import LockError, LockNotOwnedError

port = int(sys.argv[1])
r = redis.Redis(port=port)
checks = []


def check(name, ok):
    checks.append((name, bool(ok)))
    print(("ok   " if ok else "FAIL ") + name)


r.delete("py-lock")
lock = r.lock("py-lock", timeout=5)
check("acquire", lock.acquire(blocking=False))
check("owned", lock.owned())
pttl = r.pttl("py-lock")
check("ttl set by SET NX PX", 0 < pttl <= 5000)
check("extend adds time", lock.extend(10))
check("extended ttl", r.pttl("py-lock") > 5000)
check("extend replace_ttl", lock.extend(3, replace_ttl=True) and r.pttl("py-lock") <= 3000)
check("reacquire resets ttl", lock.reacquire() and r.pttl("py-lock") > 3000)

other = r.lock("py-lock", timeout=5)
check("second lock refused while held", not other.acquire(blocking=False))

got = {}


def waiter():
    c = redis.Redis(port=port)
    lk = c.lock("py-lock", timeout=5, sleep=0.02)
    t0 = time.monotonic()
    got["acquired"] = lk.acquire(blocking=True, blocking_timeout=10)
    got["waited"] = time.monotonic() - t0
    got["owned"] = lk.owned()
    lk.release()


t = threading.Thread(target=waiter)
t.start()
time.sleep(0.3)
check("waiter still blocked while held", "acquired" not in got)
lock.release()
t.join(15)
check("blocked client acquires after release", got.get("acquired") is True and got.get("owned"))
check("key gone after the waiter's release", r.exists("py-lock") == 0)

try:
    lock.release()
    check("release of an unowned lock refused", False)
except LockNotOwnedError:
    check("release of an unowned lock refused", True)
except LockError:
    check("release of an unowned lock refused", True)

with r.lock("py-lock-ctx", timeout=2) as held:
    check("context manager holds", held.owned())
check("context manager released", r.exists("py-lock-ctx") == 0)

failed = sum(1 for _, ok in checks if not ok)
print(f"redis-py Lock: {len(checks) - failed} passed, {failed} failed")
sys.exit(1 if failed else 0)
