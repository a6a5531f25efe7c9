"""``spotify-etl auth``'s refusals before any request: missing credentials, no answer, a URL without a code."""

from __future__ import annotations

import io

import pytest
from spotify_etl import cli


@pytest.fixture(autouse=True)
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPOTIFY_CLIENT_ID", "unit-client-id")
    monkeypatch.setenv("SPOTIFY_CLIENT_SECRET", "unit-client-secret")


def test_without_a_client_id_it_says_what_to_give_and_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SPOTIFY_CLIENT_ID")
    assert cli.main(["auth"]) == 2
    assert capsys.readouterr().out.startswith("error: give --client-id (or SPOTIFY_CLIENT_ID)")


def test_no_answer_at_the_prompt_exits_1_after_showing_the_authorise_url(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # end of input at the prompt
    assert cli.main(["auth", "--redirect-uri", "http://127.0.0.1:9999/cb"]) == 1
    out = capsys.readouterr().out
    assert "1. Add this redirect URI to your app in the Spotify developer dashboard: http://127.0.0.1:9999/cb" in out
    assert "https://accounts.spotify.com/authorize?client_id=unit-client-id&response_type=code" in out
    assert out.endswith("error: no redirect URL or code was given\n")
    assert "unit-client-secret" not in out


def test_a_redirect_url_without_a_code_is_refused_before_any_request(capsys: pytest.CaptureFixture[str]) -> None:
    # the token URL is a closed port: reaching it would be a different error
    argv = ["auth", "--code", "http://127.0.0.1:8888/callback?state=abc", "--token-url", "http://127.0.0.1:9/token"]
    assert cli.main(argv) == 1
    assert capsys.readouterr().out == "error: the redirect URL has no 'code' parameter\n"
