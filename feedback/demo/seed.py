"""The demo organisation: two teams, their managers, HR and an admin, and five months of
requests and answers written through the real services with the clock set back."""

from __future__ import annotations

import random
from datetime import timedelta

from sqlalchemy import delete, func
from sqlmodel import col, select

from feedback import clock
from feedback.answers import service as answers
from feedback.answers.schemas import AnswerWrite
from feedback.crypto import Sealer
from feedback.db import Database
from feedback.mail.outbox import Outbox
from feedback.models.mail import OutboxMail
from feedback.models.people import Person, Role
from feedback.models.requests import FeedbackRequest
from feedback.people import service as people
from feedback.requests import service as requests
from feedback.requests.schemas import RequestCreate
from feedback.settings import Settings

DEMO_PASSWORD = "demo-password"

# (email, name, role, manager email)
PEOPLE = [
    ("admin@demo.example", "Ada Admin", Role.admin, None),
    ("hr@demo.example", "Hana Reyes", Role.hr, None),
    ("sales.lead@demo.example", "Sam Okafor", Role.manager, None),
    ("priya@demo.example", "Priya Natarajan", Role.employee, "sales.lead@demo.example"),
    ("tom@demo.example", "Tom Becker", Role.employee, "sales.lead@demo.example"),
    ("lucia@demo.example", "Lucía Ortega", Role.employee, "sales.lead@demo.example"),
    ("ken@demo.example", "Ken Watanabe", Role.employee, "sales.lead@demo.example"),
    ("amira@demo.example", "Amira Haddad", Role.employee, "sales.lead@demo.example"),
    ("eng.lead@demo.example", "Grace Lindqvist", Role.manager, None),
    ("jonas@demo.example", "Jonas Meyer", Role.employee, "eng.lead@demo.example"),
    ("mei@demo.example", "Mei Chen", Role.employee, "eng.lead@demo.example"),
    ("olu@demo.example", "Olu Adeyemi", Role.employee, "eng.lead@demo.example"),
    ("sara@demo.example", "Sara Costa", Role.employee, "eng.lead@demo.example"),
    ("dev@demo.example", "Dev Malhotra", Role.employee, "eng.lead@demo.example"),
    ("nina@demo.example", "Nina Petrova", Role.employee, "eng.lead@demo.example"),
]
OUTSIDE = ["buyer@acme.example", "cto@globex.example", "coach@outside.example"]

SALES_QUESTIONS: list[tuple[str, str | None, list[str]]] = [
    (
        "How well did I handle the client's price objection?",
        "Acme renewal call",
        ["objection handling"],
    ),
    (
        "Was my product demo clear enough for a non-technical buyer?",
        "Globex demo, Tuesday",
        ["presenting"],
    ),
    ("Did I listen enough before pitching?", "Discovery call with Initech", ["listening"]),
    (
        "How was the pacing of my quarterly pipeline review?",
        "QBR with the sales team",
        ["presenting"],
    ),
    ("Did the proposal email make the next step obvious?", None, ["writing"]),
]
ENG_QUESTIONS: list[tuple[str, str | None, list[str]]] = [
    (
        "Was my design review presentation easy to follow?",
        "Search indexing redesign",
        ["presenting", "design"],
    ),
    (
        "How did I run today's incident call?",
        "Checkout outage, 40 minutes",
        ["incident response", "leadership"],
    ),
    ("Were my code review comments helpful and kind?", "Payments refactor PR", ["code review"]),
    (
        "Did the launch go as smoothly as it could have from your side?",
        "Mobile app 3.0 launch",
        ["launch"],
    ),
    ("How clear was my estimate and its risks?", "Q3 planning", ["planning"]),
]
ANSWERS = [
    (5, "Really strong. You stayed calm, acknowledged the concern and brought it back to value."),
    (
        4,
        "Good overall. Next time, pause a little longer after asking a question; people need a moment.",
    ),
    (4, "Clear structure and good examples. The middle section ran long."),
    (3, "Solid, but you moved on before the main concern was fully resolved."),
    (5, "Best one I've seen from you. The summary at the end landed perfectly."),
    (3, "The content was right; slowing down would have helped the room follow."),
    (4, "You handled the hard question well. Consider sharing the numbers up front."),
    (2, "It felt rushed, and the key decision wasn't written down anywhere."),
    (None, "I'd love to see you take the lead on the next one too."),
    (
        4,
        "Helpful and specific. One or two comments could have offered an alternative, not just a problem.",
    ),
]


async def seed_if_empty(settings: Settings) -> tuple[bool, list[tuple[str, str, str]]]:
    """Seed the demo org unless someone exists. Returns (seeded, [(role, email, name)])."""
    logins = [
        (role.value, email, name)
        for email, name, role, _ in PEOPLE
        if email
        in {
            "admin@demo.example",
            "hr@demo.example",
            "sales.lead@demo.example",
            "priya@demo.example",
            "jonas@demo.example",
        }
    ]
    db = Database(settings)
    try:
        async with db.transaction(write=False) as session:
            if (await session.exec(select(func.count()).select_from(Person))).one():
                return False, logins
        await _seed(db, settings)
        return True, logins
    finally:
        await db.dispose()


async def _seed(db: Database, settings: Settings) -> None:
    rng = random.Random(20261125)
    outbox = Outbox(base_url=settings.base_url, sealer=Sealer(settings.resolved_secret_key()))
    start = clock.now() - timedelta(days=150)
    async with db.transaction() as session:
        with clock.frozen_at(start - timedelta(days=30)):
            for email, name, role, manager in PEOPLE:
                await people.add_person(
                    session,
                    email=email,
                    name=name,
                    role=role,
                    manager_email=manager,
                    password=DEMO_PASSWORD,
                )
        everyone = {p.email: p for p in (await session.exec(select(Person))).all()}

    teams: dict[str, tuple[list[str], list[tuple[str, str | None, list[str]]]]] = {
        "sales": ([e for e, *_ in PEOPLE[2:8]], SALES_QUESTIONS),
        "eng": ([e for e, *_ in PEOPLE[8:15]], ENG_QUESTIONS),
    }
    day = 0
    while day < 150:
        day += rng.choice([2, 3, 4])
        team, (members, questions) = rng.choice(list(teams.items()))
        asker_email = rng.choice(members)
        asker = everyone[asker_email]
        question, context, tags = rng.choice(questions)
        anonymous = rng.random() < 0.25
        peers = [m for m in members if m != asker_email]
        reviewers = rng.sample(peers, k=min(len(peers), rng.choice([3, 4, 5])))
        if rng.random() < 0.3:
            reviewers.append(rng.choice(OUTSIDE))
        asked_at = start + timedelta(days=day, hours=rng.randint(9, 16), minutes=rng.randint(0, 59))
        recent = day > 140
        async with db.transaction() as session:
            with clock.frozen_at(asked_at):
                request, invitations = await requests.create_request(
                    session,
                    requester=asker,
                    data=RequestCreate(
                        question=question,
                        context=context,
                        tags=tags,
                        reviewers=reviewers,
                        anonymous=anonymous,
                    ),
                    anonymity_k=settings.anonymity_k,
                    outbox=outbox,
                )
            for n, invitation in enumerate(invitations):
                if recent and n == 0:
                    continue  # leave something for the demo users to answer
                answered_at = asked_at + timedelta(hours=rng.randint(1, 30), minutes=n)
                with clock.frozen_at(answered_at):
                    roll = rng.random()
                    if roll < 0.12:
                        await answers.decline(session, invitation=invitation)
                    elif roll < 0.85 or anonymous:
                        rating, body = rng.choice(ANSWERS)
                        await answers.save_answer(
                            session,
                            invitation=invitation,
                            data=AnswerWrite(rating=rating, body=body),
                        )
            if not recent:
                with clock.frozen_at(asked_at + timedelta(days=7)):
                    await requests.close_request(session, requester=asker, request_id=request.id)

    # Old requests' invitation mail would only clutter the demo outbox; keep the open ones'.
    async with db.transaction() as session:
        oldest_open = (
            await session.exec(
                select(func.min(FeedbackRequest.created_at)).where(FeedbackRequest.status == "open")
            )
        ).one()
        if oldest_open is not None:
            await session.exec(delete(OutboxMail).where(col(OutboxMail.created_at) < oldest_open))
