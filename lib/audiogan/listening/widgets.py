"""The test in a notebook: ipywidgets that play the next item's clips and record the answer."""

from __future__ import annotations

import html
from collections.abc import Callable

import ipywidgets as w

from audiogan.listening.answers import ListeningSession
from audiogan.listening.design import QUESTIONS, clip_path


def session_widget(session: ListeningSession, on_done: Callable[[], None] | None = None):
    """A box that shows the session's next item (players, question, answer buttons); a click
    writes the answer to disk and moves to the next item."""
    progress = w.HTML()
    question = w.HTML()
    players = w.HBox()
    buttons = w.HBox()
    box = w.VBox([progress, question, players, buttons])

    def click(button):
        session.answer(button.description, item_id=button.item_id)
        show()

    def show():
        total = len(session.test.items)
        item = session.next_item()
        if item is None:
            progress.value = f"<b>{html.escape(session.listener)}</b>: all {total} items answered, thank you."
            question.value, players.children, buttons.children = "", (), ()
            if on_done is not None:
                on_done()
            return
        progress.value = f"<b>{html.escape(session.listener)}</b>: item {total - len(session.remaining) + 1} of {total}"
        question.value = f"<p>{QUESTIONS[item['task']]}</p>"
        players.children = tuple(
            w.Audio(value=clip_path(session.folder, c).read_bytes(), format="wav", autoplay=False, loop=False)
            for c in item["clips"]
        )
        new = []
        for choice in item["choices"]:
            b = w.Button(description=choice, layout=w.Layout(width="auto"))
            b.item_id = item["id"]
            b.on_click(click)
            new.append(b)
        buttons.children = tuple(new)

    show()
    return box


