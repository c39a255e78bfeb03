"""Regenerate docs/screenshot.png: a requester's page in the demo, with one answer arriving live.

    .venv/bin/python -m tests.browser.screenshot [docs/screenshot.png]

Seeds a throwaway demo database with `feedback demo --no-serve`, serves it on a free
loopback port, opens Priya's open request with the most answers at desktop width, has a
colleague answer from their inbox while the page is open, and captures the page once the
answer has streamed in (highlighted as new).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

from feedback.demo.seed import DEMO_PASSWORD
from feedback.settings import Settings
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, free_socket, start_server

ROOT = Path(__file__).resolve().parents[2]
REQUESTER = "priya@demo.example"
SECRET = "screenshot-secret-key-not-for-production"


def main(out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        database_url = f"sqlite:///{tmp}/demo.db"
        env = {**os.environ, "FEEDBACK_DATABASE_URL": database_url, "FEEDBACK_SECRET_KEY": SECRET}
        env.pop("FEEDBACK_SMTP_URL", None)
        subprocess.run(
            [str(Path(sys.executable).parent / "feedback"), "demo", "--no-serve"],
            env=env,
            cwd=tmp,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        sock = free_socket()
        server = start_server(
            lambda url: Settings(
                _env_file=None,  # type: ignore[call-arg]
                database_url=database_url,
                base_url=url,
                secret_key=SECRET,  # type: ignore[arg-type]
            ),
            sock=sock,
        )
        try:
            capture(server.url, out)
        finally:
            server.stop()
            sock.close()


def capture(url: str, out: Path) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        desk = browser.new_context(base_url=url, viewport={"width": 1280, "height": 800})
        login(desk, REQUESTER)
        mine = desk.request.get("/api/v1/requests").json()["requests"]
        shown = max(
            (r for r in mine if r["status"] == "open" and not r["anonymous"]),
            key=lambda r: r["progress"]["received"],
        )
        detail = desk.request.get(f"/api/v1/requests/{shown['id']}").json()
        pending = next(i for i in detail["invitees"] if i["status"] == "pending" and i["name"])

        page = desk.new_page()
        page.goto(f"/requests/{shown['id']}")
        expect(page.locator("#live-status")).to_have_text("live")
        before = page.locator("#responses .response").count()

        reviewer = browser.new_context(base_url=url)
        login(reviewer, pending["email"])
        invitation = next(
            i
            for i in reviewer.request.get("/api/v1/inbox").json()["invitations"]
            if i["request_id"] == shown["id"]
        )
        saved = reviewer.request.put(
            f"/api/v1/inbox/{invitation['invitation_id']}/response",
            data={
                "rating": 4,
                "body": "The pacing worked until the forecast slide; two minutes there "
                "would have let the team ask about the Q1 gap.",
            },
        )
        assert saved.status == 201, saved.text()
        expect(page.locator("#responses .response")).to_have_count(before + 1)
        page.get_by_text("Who was asked").click()
        out.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(out), full_page=True, animations="disabled")
        browser.close()
    print(f"wrote {out} ({out.stat().st_size // 1024} KB)")


def login(context: object, email: str) -> None:
    response = context.request.post(  # type: ignore[attr-defined]
        "/api/v1/session", data={"email": email, "password": DEMO_PASSWORD}
    )
    assert response.status == 200, response.text()


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshot.png")
