"""The command line as a config-managed fleet uses it: -t, --print-config,
--schema, overlays, --set, quick start and exit statuses. No server runs
here except where a test says so."""

import json
import os
import socket
import subprocess

from conftest import BIN


def run(*args, cwd=None, env=None):
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run(
        [BIN, *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=30
    )


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


BASE = """\
app:
  target: main:app
listeners:
  - tcp: "127.0.0.1:8000"
limits:
  max_body: 1MiB
"""


def test_version_and_help_exit_zero():
    v = run("--version")
    assert v.returncode == 0 and v.stdout.startswith("saltare ")
    h = run("--help")
    assert h.returncode == 0 and "--print-config" in h.stdout


def test_unknown_option_is_a_usage_error_with_exit_78():
    r = run("--frobnicate")
    assert r.returncode == 78
    assert 'unknown option "--frobnicate"' in r.stderr


def test_check_prints_configuration_ok(tmp_path):
    r = run("-t", "-c", write(tmp_path, "base.yaml", BASE))
    assert (r.returncode, r.stdout, r.stderr) == (0, "configuration OK\n", "")


def test_check_reports_every_error_with_position_and_exit_78(tmp_path):
    prod = write(
        tmp_path,
        "prod.yaml",
        "limits:\n  max_body: lots\ntimeout:\n  header: 5s\nworkers: -1\n",
    )
    r = run("-t", "-c", write(tmp_path, "base.yaml", BASE), "-c", prod)
    assert r.returncode == 78
    assert r.stdout == ""
    assert r.stderr.splitlines() == [
        f'{prod}:2:13: limits.max_body: expected a size like "1MiB", got "lots"',
        f'{prod}:3:1: timeout: unknown key, did you mean "timeouts"?',
        f'{prod}:5:10: workers: expected an integer from 0 to 1024, got "-1"',
    ]


def test_set_errors_name_the_argument(tmp_path):
    r = run("-t", "-c", write(tmp_path, "base.yaml", BASE), "--set", "limits.max_body=lots")
    assert r.returncode == 78
    assert r.stderr.strip() == (
        '--set limits.max_body=lots: limits.max_body: expected a size like "1MiB", got "lots"'
    )


def test_check_does_not_bind(tmp_path):
    # The address is taken: -t must still pass because it binds nothing.
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        cfg = BASE.replace("8000", str(port))
        r = run("-t", "-c", write(tmp_path, "base.yaml", cfg))
    assert r.returncode == 0, r.stderr


def test_check_verifies_files_without_importing_python(tmp_path):
    cfg = f"app:\n  target: nosuchmodule:app\n  venv: {tmp_path}/missing\n"
    r = run("-t", "-c", write(tmp_path, "base.yaml", BASE), "-c", write(tmp_path, "o.yaml", cfg))
    assert r.returncode == 78
    assert "app.venv: expected an existing directory" in r.stderr
    assert "nosuchmodule" not in r.stderr  # never imported


def test_serving_a_bad_config_exits_78_before_binding(tmp_path):
    r = run("-c", write(tmp_path, "bad.yaml", BASE + "workers: many\n"))
    assert r.returncode == 78
    assert "workers: expected an integer" in r.stderr


def test_overlays_and_set_apply_in_order(tmp_path):
    prod = write(tmp_path, "prod.yaml", "limits:\n  max_body: 2MiB\nworkers: 4\n")
    r = run(
        "--print-config",
        "-c",
        write(tmp_path, "base.yaml", BASE),
        "-c",
        prod,
        "--set",
        "workers=3",
        "--set",
        'listeners.0.tcp="[::1]:9000"',
    )
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "  max_body: 2MiB\n" in out
    assert "workers: 3\n" in out
    assert '  - tcp: "[::1]:9000"\n' in out


def test_environment_interpolation_uses_the_real_environment(tmp_path):
    cfg = BASE.replace("8000", "${PORT:-8000}")
    path = write(tmp_path, "env.yaml", cfg)
    assert '"127.0.0.1:8000"' in run("--print-config", "-c", path).stdout
    r = run("--print-config", "-c", path, env={"PORT": "9123"})
    assert '"127.0.0.1:9123"' in r.stdout


def test_print_config_round_trips_through_the_binary(tmp_path):
    first = run("--print-config", "-c", write(tmp_path, "base.yaml", BASE))
    assert first.returncode == 0, first.stderr
    again = run("--print-config", "-c", write(tmp_path, "printed.yaml", first.stdout))
    assert again.returncode == 0, again.stderr
    assert again.stdout == first.stdout


def test_quick_start_builds_the_same_config_as_the_equivalent_yaml(tmp_path):
    quick = run("main:app", "--host", "::1", "--port", "9001", "--print-config")
    yaml = write(
        tmp_path,
        "q.yaml",
        'app:\n  target: main:app\n  path: ["."]\nlisteners:\n  - tcp: "[::1]:9001"\n',
    )
    from_file = run("--print-config", "-c", yaml)
    assert quick.returncode == 0, quick.stderr
    assert quick.stdout == from_file.stdout


def test_quick_start_keeps_long_arguments_whole():
    # Each argument is far longer than any fixed buffer would hold; the
    # generated YAML must carry every byte to the config compiler.
    module = "m" * 5000
    quick = run(f"{module}:app", "--port", "9" * 3000, "--workers", "3" * 2000, "--print-config")
    assert quick.returncode == 78
    lines = quick.stderr.splitlines()
    assert len(lines) == 2, quick.stderr
    assert lines[0].startswith("<command line>:5:10: listeners.0.tcp: expected a port from 0 to")
    assert lines[1].startswith("<command line>:6:10: workers: expected an integer from 0 to 1024")


def test_quick_start_long_target_is_printed_in_full():
    module = "pkg_" + "x" * 6000
    quick = run(f"{module}:app", "--host", "127.0.0.1", "--print-config")
    assert quick.returncode == 0, quick.stderr[:500]
    assert f'  target: "{module}:app"\n' in quick.stdout


def test_quick_start_control_bytes_and_quotes_reach_the_error_message():
    r = run('main:"app', "--host", "::1\n", "--print-config")
    assert r.returncode == 78
    assert r.stderr.splitlines() == [
        '<command line>:2:11: app.target: expected a module:attr target like "main:app", '
        'got "main:\\"app"',
        '<command line>:5:10: listeners.0.tcp: expected a numeric listen address like '
        '"127.0.0.1:8000", "[::1]:8000" or ":8000", got "[::1\\n]:8000"',
    ]


def test_schema_is_json_describing_every_section():
    r = run("--schema")
    assert r.returncode == 0
    schema = json.loads(r.stdout)
    props = schema["properties"]
    for key in ("app", "workers", "listeners", "timeouts", "limits", "http", "log"):
        assert key in props
    assert "app" in schema.get("required", [])
