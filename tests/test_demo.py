"""relay demo: the printed curl command really works against the running relay."""
import shlex

import requests

from engine.commands.demo import curl_command, start_demo
from engine.commands.cli import main


def test_demo_once_prints_a_curl_command_and_real_ctim(capsys):
    assert main(["demo", "--once"]) == 0
    out = capsys.readouterr().out
    assert "curl -s -X POST http://127.0.0.1:" in out
    assert "verdict for 192.0.2.45: Malicious" in out


def test_the_curl_command_is_complete(abuseipdb):
    stand_in, server, relay_url, token = start_demo({"abuseipdb": abuseipdb}, "abuseipdb")
    try:
        words = shlex.split(curl_command(relay_url, token, {"type": "ip", "value": "192.0.2.45"}))
        url = words[words.index("POST") + 1]
        headers = dict(words[i + 1].split(": ", 1) for i, word in enumerate(words) if word == "-H")
        body = words[words.index("-d") + 1]
        answer = requests.post(url, data=body, headers=headers, timeout=10).json()
    finally:
        server.shutdown()
        stand_in.stop()
    assert answer["data"]["verdicts"]["docs"][0]["disposition_name"] == "Malicious"
    assert answer["data"]["sightings"]["count"] == 3


def test_demo_of_an_unknown_vendor_is_a_usage_error(capsys):
    assert main(["demo", "nobody"]) == 2
    assert "no vendor 'nobody'; the catalogue has: abuseipdb," in capsys.readouterr().err


def test_a_refer_only_vendor_demos_its_links(capsys):
    assert main(["demo", "shodan", "--once"]) == 0
    out = capsys.readouterr().out
    assert "/shodan/refer/observables" in out and "Browse IP: https://www.shodan.io/host/198.51.100.23" in out
