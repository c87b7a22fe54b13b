"""The stand-in AbuseIPDB's answers: a realistic check (25 reports, several categories each) and the
public categories page, written for the benchmark from AbuseIPDB's documented shapes."""
from __future__ import annotations

import json

CATEGORIES = [
    (1, "DNS Compromise", "Altering DNS records resulting in improper redirection."),
    (2, "DNS Poisoning", "Falsifying domain server cache (cache poisoning)."),
    (3, "Fraud Orders", "Fraudulent orders."),
    (4, "DDoS Attack", "Participating in distributed denial-of-service (usually part of botnet)."),
    (5, "FTP Brute-Force", ""),
    (6, "Ping of Death", "Oversized IP packet."),
    (7, "Phishing", "Phishing websites and/or email."),
    (8, "Fraud VoIP", ""),
    (9, "Open Proxy", "Open proxy, open relay, or Tor exit node."),
    (10, "Web Spam", "Comment/forum spam, HTTP referer spam, or other CMS spam."),
    (11, "Email Spam", "Spam email content, infected attachments, and phishing emails."),
    (12, "Blog Spam", "CMS blog comment spam."),
    (13, "VPN IP", "Conjunctive category."),
    (14, "Port Scan", "Scanning for open ports and vulnerable services."),
    (15, "Hacking", ""),
    (16, "SQL Injection", "Attempts at SQL injection."),
    (17, "Spoofing", "Email sender spoofing."),
    (18, "Brute-Force", "Credential brute-force attacks on webpage logins and services."),
    (19, "Bad Web Bot", "Webpage scraping and crawlers that do not honor robots.txt."),
    (20, "Exploited Host", "Host is likely infected with malware and being used for other attacks."),
    (21, "Web App Attack", "Attempts to probe for or exploit installed web applications."),
    (22, "SSH", "Secure Shell (SSH) abuse."),
    (23, "IoT Targeted", "Abuse was targeted at an Internet of Things type device."),
]


def categories_page() -> bytes:
    rows = "".join(f"<tr><td>{n}</td><td>{title}</td><td>{text}</td></tr>" for n, title, text in CATEGORIES)
    return (f"<html><body><table><tr><th>ID</th><th>Title</th><th>Description</th></tr>{rows}"
            "</table></body></html>").encode()


def check_answer(reports: int = 25) -> bytes:
    return json.dumps({"data": {
        "ipAddress": "192.0.2.1", "isPublic": True, "ipVersion": 4, "isWhitelisted": False,
        "abuseConfidenceScore": 92, "countryCode": "NL", "countryName": "Netherlands", "usageType": "Data Center",
        "isp": "Example Hosting", "domain": "example.net", "hostnames": [], "isTor": False,
        "totalReports": reports, "numDistinctUsers": 12, "lastReportedAt": "2026-11-30T23:12:04+00:00",
        "reports": [{
            "reportedAt": f"2026-11-{30 - n % 28:02d}T{n % 24:02d}:0{n % 6}:11+00:00",
            "comment": f"Attack number {n}: failed logins from this address",
            "categories": [14, 18, 22] if n % 3 == 0 else [4, 21] if n % 3 == 1 else [15, 20, 21, 23],
            "reporterId": 1000 + n, "reporterCountryCode": "DE", "reporterCountryName": "Germany",
        } for n in range(reports)],
    }}).encode()
