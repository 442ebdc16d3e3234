"""The notify role, run by Ansible on the controller, against receivers on loopback: a webhook over HTTP and
Slack's incoming-webhook endpoint over HTTPS (community.general.slack, a certificate made here for 127.0.0.1)."""

from __future__ import annotations

import subprocess

from conftest import run_role
from receiver import receiving

# As a run's end calls it (playbooks/tasks/finish.yml).
END = {
    "notify_event": "end", "notify_outcome": "rolled back", "notify_text": "Failed: deploy failed on migration m2",
    "notify_run_id": "20261202_031500", "notify_database": "backend@db:5432/backend",
}  # fmt: skip


def certificate(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def play(tmp_path, extra: dict):
    return run_role(tmp_path, "notify", extra, role_vars=END)


def test_the_end_of_a_run_reaches_the_webhook_and_slack_without_a_secret(tmp_path):
    cert, key = certificate(tmp_path)
    with receiving() as webhook, receiving(tls=True, cert=cert, key=key) as slack:
        result = play(tmp_path, {
            "notify_webhook_url": f"http://127.0.0.1:{webhook.port}/hooks/secret-path-token",
            "notify_slack_token": "slack-secret-token", "notify_slack_domain": f"127.0.0.1:{slack.port}",
            "notify_slack_channel": "#deploys", "notify_ca_file": str(cert),
        })  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:]
    assert len(webhook.received) == 1, result.stdout[-3000:]
    [(path, body)] = webhook.received
    assert path == "/hooks/secret-path-token" and body["event"] == "end" and body["outcome"] == "rolled back"
    assert body["text"] == (
        "Migration run 20261202_031500 on backend@db:5432/backend ended: rolled back."
        " Failed: deploy failed on migration m2"
    )
    [(path, message)] = slack.received
    assert path == "/services/hooks/incoming-webhook?token=slack-secret-token"
    # With a colour, Slack's text is an attachment's.
    assert message["attachments"][0]["text"] == body["text"] and message["attachments"][0]["color"] == "danger"
    assert message["channel"] == "#deploys"
    # The URL's and the token's secrets are never printed.
    assert "secret-path-token" not in result.stdout and "slack-secret-token" not in result.stdout


def test_a_receiver_that_does_not_answer_is_a_warning_not_a_failed_run(tmp_path):
    with receiving() as webhook:
        port = webhook.port  # closed once the block ends: nothing listens there any more
    result = play(tmp_path, {"notify_webhook_url": f"http://127.0.0.1:{port}/hooks/x", "notify_timeout": 3})
    assert result.returncode == 0, result.stdout[-3000:]
    assert "WARNING: the end notification could not be sent to the webhook" in " ".join(result.stdout.split())


def test_nothing_is_sent_when_no_receiver_is_set(tmp_path):
    result = play(tmp_path, {})
    assert result.returncode == 0, result.stdout[-3000:]
    assert "skipping: [localhost]" in result.stdout and "WARNING" not in result.stdout
