"""The test in a notebook: ipywidgets that play the next item's clips and record the answer (for a
MUSHRA item, a player and a 0-100 slider per clip under the reference's player)."""

from __future__ import annotations

import html
from collections.abc import Callable

import ipywidgets as w

from audiogan.listening.answers import ListeningSession
from audiogan.listening.design import MUSHRA, QUESTIONS, clip_path
from audiogan.listening.mushra import letters


def session_widget(session: ListeningSession, on_done: Callable[[], None] | None = None):
    """A box that shows the session's next item (progress, question, players, answer buttons); a click
    writes the answer to disk and moves to the next item. A MUSHRA item shows the reference's player
    and a row per clip (letter, player, 0-100 slider) in ``players``, and one *Next* button that is
    enabled once every slider has been moved and writes all the ratings."""
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
        players.layout.flex_flow = "column" if item["task"] == MUSHRA else "row"
        if item["task"] == MUSHRA:
            show_mushra(item)
            return
        players.children = tuple(player(c) for c in item["clips"])
        new = []
        for choice in item["choices"]:
            b = w.Button(description=choice, layout=w.Layout(width="auto"))
            b.item_id = item["id"]
            b.on_click(click)
            new.append(b)
        buttons.children = tuple(new)

    def player(clip: str):
        return w.Audio(value=clip_path(session.folder, clip).read_bytes(), format="wav", autoplay=False, loop=False)

    def show_mushra(item):
        sliders = [w.IntSlider(value=50, min=0, max=100, step=1, description=name, continuous_update=False)
                   for name in letters(len(item["clips"]))]
        moved: set[int] = set()
        done = w.Button(description="Next (set every slider first)", disabled=True, layout=w.Layout(width="auto"))

        def moved_one(k):
            def on_change(_):
                moved.add(k)
                if len(moved) == len(sliders):
                    done.disabled, done.description = False, "Next"
            return on_change

        for k, slider in enumerate(sliders):
            slider.observe(moved_one(k), names="value")
        players.children = (w.HBox([w.Label("Reference"), player(item["reference"])]),
                            *(w.HBox([s, player(c)]) for s, c in zip(sliders, item["clips"], strict=True)))

        def rate(_):
            session.answer({c: s.value for s, c in zip(sliders, item["clips"], strict=True)}, item_id=item["id"])
            show()

        done.on_click(rate)
        buttons.children = (done,)

    show()
    return box


