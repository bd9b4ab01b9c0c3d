"""Tasks are queued through fetcher.enqueue and accounts.enqueue only, by names the worker knows.

A task is sent by its name (the tasks modules import what queues them), so nothing but this test
stops a renamed task or a changed signature from failing silently in a worker.
"""

from __future__ import annotations

import inspect
import re
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from celery import Celery

import accounts.tasks
import fetcher.tasks
from accounts import enqueue as accounts_enqueue
from fetcher import enqueue as fetcher_enqueue
from tests.conftest import BASE_DIR
from webmail.celery import app

SAMPLES: dict[str, tuple[Any, ...]] = {
    "fetcher.enqueue.parse_messages": ([1, 2, 3],),
    "fetcher.enqueue.sync_mailbox": (uuid.uuid4(),),
    "fetcher.enqueue.run_connection_test": (uuid.uuid4(),),
    "fetcher.enqueue.run_discovery": (uuid.uuid4(),),
    "fetcher.enqueue.send_outgoing": (7, 12.5),
    "fetcher.enqueue.draft_to_server": (7, 20.0),
    "accounts.enqueue.send_password_reset": (3, "mail.example.com", True, "tr"),
    "accounts.enqueue.send_signup_mail": (3, "confirm", "mail.example.com", True, "en"),
}
MODULES = [fetcher_enqueue, accounts_enqueue]


def _functions(module: ModuleType) -> dict[str, Any]:
    return {
        f"{module.__name__}.{name}": function
        for name, function in inspect.getmembers(module, inspect.isfunction)
        if function.__module__ == module.__name__ and not name.startswith("_")
    }


def _sent(
    monkeypatch: pytest.MonkeyPatch, function: Any, args: tuple[Any, ...]
) -> list[tuple[str, list[Any]]]:
    sent: list[tuple[str, list[Any]]] = []
    # On the class: whichever app is current (celery.current_app) sends through it.
    monkeypatch.setattr(
        Celery, "send_task", lambda _app, name, args, **options: sent.append((name, list(args)))
    )
    function(*args)
    return sent


def test_every_enqueue_function_sends_a_registered_task_with_arguments_it_takes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert fetcher.tasks.sync_mailbox.name in app.tasks  # both tasks modules are loaded
    assert accounts.tasks.send_signup_mail.name in app.tasks
    functions = {name: function for module in MODULES for name, function in _functions(module).items()}
    assert set(functions) == set(SAMPLES)  # a new function here needs its sample above
    for name, function in functions.items():
        sent = _sent(monkeypatch, function, SAMPLES[name])
        assert sent, name
        for task_name, args in sent:
            assert task_name in app.tasks, (name, task_name)
            inspect.signature(app.tasks[task_name].run).bind(*args)  # TypeError if the task takes others


def test_stage_two_is_queued_in_tasks_of_parse_batch_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    ids = list(range(fetcher_enqueue.PARSE_BATCH * 2 + 1))

    sent = _sent(monkeypatch, fetcher_enqueue.parse_messages, (ids,))

    assert [len(args[0]) for _name, args in sent] == [fetcher_enqueue.PARSE_BATCH] * 2 + [1]
    assert [message for _name, args in sent for message in args[0]] == ids


def test_no_task_is_sent_by_name_outside_the_enqueue_modules() -> None:
    allowed = {BASE_DIR / "fetcher" / "enqueue.py", BASE_DIR / "accounts" / "enqueue.py"}
    found = [
        f"{path.relative_to(BASE_DIR)}:{number}"
        for folder in ("accounts", "fetcher", "webmail")
        for path in sorted(Path(BASE_DIR / folder).rglob("*.py"))
        if path not in allowed
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"\bsend_task\(", line)
    ]
    assert found == []
