"""process.pid_file: the master's PID, written once the listeners are
bound, removed at a clean exit; a stale file is replaced, a running
saltare's is not."""

import os
import subprocess
import sys

from conftest import wait_for


def test_holds_the_master_pid_and_is_removed_at_exit(serve, tmp_path):
    pid_file = tmp_path / "run" / "saltare.pid"
    pid_file.parent.mkdir()
    server = serve("listen_app:app", workers=2, process={"pid_file": str(pid_file)})
    server.wait_serving()
    assert pid_file.read_text() == f"{server.pid}\n"
    assert sorted(p.name for p in pid_file.parent.iterdir()) == ["saltare.pid"]  # no temp left
    assert server.stop() == 0
    assert not pid_file.exists()


def test_a_stale_file_is_replaced(serve, tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()
    pid_file = tmp_path / "saltare.pid"
    pid_file.write_text(f"{dead.pid}\n")
    server = serve("listen_app:app", process={"pid_file": str(pid_file)})
    server.wait_serving()
    assert pid_file.read_text() == f"{server.pid}\n"
    assert f"process {dead.pid} is gone; replacing the file" in server.stderr()


def test_a_reused_pid_of_another_program_is_replaced(serve, tmp_path):
    pid_file = tmp_path / "saltare.pid"
    pid_file.write_text(f"{os.getpid()}\n")  # alive, but python, not saltare
    server = serve("listen_app:app", process={"pid_file": str(pid_file)})
    server.wait_serving()
    assert pid_file.read_text() == f"{server.pid}\n"
    assert "(a reused PID); replacing the file" in server.stderr()


def test_garbage_in_the_file_is_replaced(serve, tmp_path):
    pid_file = tmp_path / "saltare.pid"
    pid_file.write_text("not a pid\n")
    server = serve("listen_app:app", process={"pid_file": str(pid_file)})
    server.wait_serving()
    assert pid_file.read_text() == f"{server.pid}\n"


def test_a_running_saltare_keeps_its_file_and_the_second_exits_1(serve, tmp_path):
    pid_file = tmp_path / "saltare.pid"
    first = serve("listen_app:app", process={"pid_file": str(pid_file)})
    first.wait_serving()
    second = serve("listen_app:app", process={"pid_file": str(pid_file)}, ready=False)
    assert second.wait() == 1
    assert (f"pid file {pid_file}: saltare is already running as PID {first.pid}"
            in second.stderr())
    assert pid_file.read_text() == f"{first.pid}\n"
    assert first.stop() == 0
    assert not pid_file.exists()


def test_an_unwritable_directory_fails_clearly(serve, tmp_path):
    pid_file = tmp_path / "missing" / "saltare.pid"
    server = serve("listen_app:app", process={"pid_file": str(pid_file)}, ready=False)
    assert server.wait() == 1
    assert f"pid file {pid_file}: No such file or directory" in server.stderr()
