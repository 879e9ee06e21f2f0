"""Starts a program the way systemd socket activation does.

    sd_launch.py NAME=tcp:HOST:PORT|NAME=unix:PATH ... -- PROGRAM ARGS...

Binds and listens on each socket, moves them to fds 3, 4, ... in the order
given, sets LISTEN_FDS, LISTEN_FDNAMES and LISTEN_PID (this process's pid,
which exec keeps) and execs PROGRAM.
"""

import os
import socket
import sys


def bind(spec: str) -> socket.socket:
    kind, _, addr = spec.partition(":")
    if kind == "unix":
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(addr)
    else:
        host, _, port = addr.rpartition(":")
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, int(port)))
    s.listen(128)
    return s


def main() -> None:
    split = sys.argv.index("--")
    specs, argv = sys.argv[1:split], sys.argv[split + 1 :]
    socks, names = [], []
    for spec in specs:
        name, _, where = spec.partition("=")
        socks.append(bind(where))
        names.append(name)
    # Move them to 3.. without clobbering one another: dup high first.
    high = [os.dup(s.fileno()) for s in socks]
    for s in socks:
        s.close()
    for i, fd in enumerate(high):
        os.dup2(fd, 3 + i, inheritable=True)
    for fd in high:
        if fd >= 3 + len(high):
            os.close(fd)
    os.environ["LISTEN_FDS"] = str(len(high))
    os.environ["LISTEN_FDNAMES"] = ":".join(names)
    os.environ["LISTEN_PID"] = str(os.getpid())
    os.execv(argv[0], argv)


if __name__ == "__main__":
    main()
