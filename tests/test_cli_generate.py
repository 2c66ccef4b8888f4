"""`qwenlong generate` and `qwenlong serve` from the command line."""

from __future__ import annotations

import io
import select
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from qwenlong.app.cli import main
from qwenlong.core.interfaces import SamplingParams
from qwenlong.core.serve import make_server
from qwenlong.core.testing import EchoChatModel

QWENLONG = str(Path(sys.executable).with_name("qwenlong"))
"""The console script installed in this environment."""


@pytest.fixture
def echo_server(echo_chat_model: EchoChatModel):
    with make_server(echo_chat_model, port=0, served_name="echo").start() as server:
        yield server, echo_chat_model


def free_port() -> int:
    """A port nothing listens on (it was free a moment ago)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def generate_args(url: str, *extra: str) -> list[str]:
    return ["generate", "--backend", "openai", "--model", "echo", "--base-url", url, *extra]


def test_generate_prints_the_completion_and_sends_the_options(echo_server, capsys) -> None:
    server, model = echo_server
    argv = generate_args(
        server.url,
        *("--system", "be brief", "--max-new-tokens", "5", "--temperature", "0"),
        *("--top-p", "0.5", "--seed", "3", "--stop", "x", "--stop", "y"),
        "hello",
    )
    main(argv)
    assert capsys.readouterr().out == "hello\n"  # "hello#0" cut at --max-new-tokens 5
    [(conversations, sampling)] = model.calls
    assert conversations == [
        [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"}]
    ]
    assert sampling == SamplingParams(
        max_new_tokens=5, temperature=0.0, top_p=0.5, n=1, stop=("x", "y"), seed=3
    )


def test_several_completions_are_numbered(echo_server, capsys) -> None:
    server, _ = echo_server
    main(generate_args(server.url, "--n", "3", "hi"))
    assert capsys.readouterr().out == "[1] hi#0\n[2] hi#1\n[3] hi#2\n"


def test_dash_reads_the_prompt_from_stdin(echo_server, capsys, monkeypatch) -> None:
    server, model = echo_server
    monkeypatch.setattr(sys, "stdin", io.StringIO("a long\nquestion"))
    main(generate_args(server.url, "-"))
    assert capsys.readouterr().out == "a long\nquestion#0\n"
    assert model.calls[0][0] == [[{"role": "user", "content": "a long\nquestion"}]]


def test_unreachable_server_is_one_line_and_exit_2(capsys) -> None:
    port = free_port()
    with pytest.raises(SystemExit) as caught:
        main(generate_args(f"http://127.0.0.1:{port}/v1", "--max-retries", "1", "hi"))
    assert caught.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"backend unavailable: http://127.0.0.1:{port}/v1/chat/completions: "
        "connection refused after 1 retry\n"
    )


def test_bad_option_value_is_one_config_line(capsys) -> None:
    with pytest.raises(SystemExit) as caught:
        main(generate_args("http://127.0.0.1:1/v1", "--max-retries", "-1", "hi"))
    assert caught.value.code == 2
    assert capsys.readouterr().err.startswith(
        "config error: generate options: openai.max_retries: "
    )


def test_unreachable_server_from_a_shell_has_no_traceback() -> None:
    port = free_port()
    result = subprocess.run(
        [QWENLONG, *generate_args(f"http://127.0.0.1:{port}/v1", "--max-retries", "0", "hi")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        f"backend unavailable: http://127.0.0.1:{port}/v1/chat/completions: connection refused"
    ]


def test_serve_then_generate_then_sigterm(tiny_model_dir) -> None:
    """The whole path a person takes: serve the tiny model, ask it, stop it with SIGTERM."""
    serve = subprocess.Popen(
        [QWENLONG, "serve", str(tiny_model_dir), "--port", "0", "--served-name", "tiny"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ready, _, _ = select.select([serve.stdout], [], [], 180)
        assert ready, "qwenlong serve printed nothing within 180 s"
        banner = serve.stdout.readline().strip()
        assert banner.startswith("serving tiny at http://127.0.0.1:"), banner
        url = banner.split(" at ")[1]
        argv = ["generate", "--backend", "openai", "--model", "tiny", "--base-url", url]
        result = subprocess.run(
            [QWENLONG, *argv, "--max-new-tokens", "4", "--n", "2", "--seed", "1", "hello"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert lines[0].startswith("[1] ") and any(line.startswith("[2] ") for line in lines)
    finally:
        serve.send_signal(signal.SIGTERM)
        _, err = serve.communicate(timeout=60)
    assert serve.returncode == 0, err
    assert "Traceback" not in err
