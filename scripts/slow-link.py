#!/usr/bin/env python3
"""A slow, lossy network link made in user space, for kernels without netem.

Opens two TAP devices, OUTSIDE and INSIDE, and passes every Ethernet frame between them. Frames
that enter INSIDE (those a host sends, when INSIDE is bridged to its cable) are delayed by
--delay-ms and dropped with probability --loss, as `tc qdisc add dev <host's interface> root
netem delay 200ms loss 5%` would do on the host's way out; frames entering OUTSIDE pass at once.

The caller bridges the two devices into place after the line "ready" appears on standard
output, and ends the link by ending this process (the devices vanish with it). The random
drops follow --seed, so a run can be repeated. Needs root (CAP_NET_ADMIN) and /dev/net/tun.
"""
import argparse
import collections
import fcntl
import os
import random
import select
import signal
import struct
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
MAX_FRAME = 65536


def open_tap(name):
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI))
    return fd


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--outside", required=True, help="TAP device toward the rest of the network")
    parser.add_argument("--inside", required=True, help="TAP device toward the slowed host")
    parser.add_argument("--delay-ms", type=float, default=200, help="delay of the host's outgoing frames")
    parser.add_argument("--loss", type=float, default=0.05, help="share of the host's outgoing frames dropped")
    parser.add_argument("--seed", type=int, default=1)
    options = parser.parse_args()
    drops = random.Random(options.seed)
    delay = options.delay_ms / 1000
    outside = open_tap(options.outside)
    inside = open_tap(options.inside)
    # Frames from the host, oldest first, each with the time it may leave: one fixed delay
    # keeps them in order, as a real link does.
    held = collections.deque()
    forwarded = dropped = 0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("ready", flush=True)
    try:
        while True:
            timeout = None
            if held:
                timeout = max(0.0, held[0][0] - time.monotonic())
            readable, _, _ = select.select([outside, inside], [], [], timeout)
            if outside in readable:
                for _ in range(64):
                    try:
                        frame = os.read(outside, MAX_FRAME)
                    except BlockingIOError:
                        break
                    try:
                        os.write(inside, frame)
                    except OSError:
                        pass  # the host's queue is full: the frame is lost, as on a wire
            if inside in readable:
                now = time.monotonic()
                for _ in range(64):
                    try:
                        frame = os.read(inside, MAX_FRAME)
                    except BlockingIOError:
                        break
                    if drops.random() < options.loss:
                        dropped += 1
                    else:
                        held.append((now + delay, frame))
            now = time.monotonic()
            while held and held[0][0] <= now:
                _, frame = held.popleft()
                try:
                    os.write(outside, frame)
                    forwarded += 1
                except OSError:
                    pass
    except KeyboardInterrupt:
        pass
    finally:
        print(f"forwarded {forwarded} frames from the host, dropped {dropped}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
