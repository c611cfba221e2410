"""What a listener sees: the ipywidgets test in a notebook, and the self-contained HTML page.

The logic (order, storage, checks) is in :mod:`audiogan.listening`; this module only draws it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from audiogan.listening import ListeningSession


def session_widget(session: ListeningSession, on_done: Callable[[], None] | None = None):
    """A box that shows the session's next item (players, question, answer buttons); a click
    writes the answer to disk and moves to the next item."""
    import ipywidgets as w

    from audiogan.listening import clip_path

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
            progress.value = f"<b>{session.listener}</b>: all {total} items answered, thank you."
            question.value, players.children, buttons.children = "", (), ()
            if on_done is not None:
                on_done()
            return
        from audiogan.listening import QUESTIONS

        progress.value = f"<b>{session.listener}</b>: item {total - len(session.remaining) + 1} of {total}"
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


PAGE_TEMPLATE = r"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>__TITLE__</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 46em; margin: 2em auto; padding: 0 1em; }
button { font-size: 1.05em; margin: 0.25em; padding: 0.4em 0.9em; }
audio { display: block; margin: 0.4em 0; }
.hidden { display: none; }
#progress { color: #555; }
</style></head>
<body>
<h1>__TITLE__</h1>
<p>Listen to each clip (as often as you like), then answer. Your answers stay in this browser
until you save them with <b>Save my answers</b>; send the saved file to whoever runs the test.
Nothing is sent anywhere.</p>
<div id="start">
  <label>Your name or code: <input id="listener" autocomplete="off"></label>
  <button id="begin">Start</button> <span id="name-error"></span>
</div>
<div id="test" class="hidden">
  <p id="progress"></p>
  <p id="question"></p>
  <div id="players"></div>
  <div id="choices"></div>
</div>
<div id="finished" class="hidden"><p>All items answered, thank you. Please save your answers.</p></div>
<p><button id="download" class="hidden">Save my answers</button></p>
<script>
"use strict";
const TEST = __DATA__;
let listener = null;
let answers = [];  // {item, task, answer, answered_at}, in the order given
const $ = (id) => document.getElementById(id);
const storeKey = () => "audiogan-listening-" + TEST.test_id + "-" + listener;
const answered = () => new Set(answers.map((a) => a.item));

function begin() {
  const name = $("listener").value.trim();
  if (!name || /[,"\n\r]/.test(name)) {
    $("name-error").textContent = "Please type a name without commas or quotes.";
    return;
  }
  listener = name;
  try { answers = JSON.parse(localStorage.getItem(storeKey()) || "[]"); } catch (e) { answers = []; }
  $("start").classList.add("hidden");
  $("download").classList.remove("hidden");
  show();
}

function show() {
  const done = answered();
  const next = TEST.items.find((it) => !done.has(it.id));
  if (!next) { $("test").classList.add("hidden"); $("finished").classList.remove("hidden"); return; }
  $("test").classList.remove("hidden");
  $("progress").textContent = "Item " + (done.size + 1) + " of " + TEST.items.length;
  $("progress").dataset.item = next.id;
  $("question").textContent = next.question;
  const players = $("players"); players.replaceChildren();
  for (const clip of next.clips) {
    const a = document.createElement("audio"); a.controls = true; a.preload = "auto"; a.src = TEST.audio[clip];
    players.appendChild(a);
  }
  const choices = $("choices"); choices.replaceChildren();
  for (const c of next.choices) {
    const b = document.createElement("button"); b.textContent = c; b.className = "choice"; b.dataset.answer = c;
    b.addEventListener("click", () => answer(next, c));
    choices.appendChild(b);
  }
}

function answer(item, value) {
  answers.push({item: item.id, task: item.task, answer: value, answered_at: new Date().toISOString()});
  try { localStorage.setItem(storeKey(), JSON.stringify(answers)); } catch (e) { /* storage may be off */ }
  show();
}

function csvField(v) { v = String(v); return /[",\n\r]/.test(v) ? '"' + v.replace(/"/g, '""') + '"' : v; }

function download() {
  const rows = [TEST.columns.join(",")];
  for (const a of answers) {
    const row = {test_id: TEST.test_id, listener: listener, item: a.item, task: a.task, answer: a.answer,
                 answered_at: a.answered_at, via: "page"};
    rows.push(TEST.columns.map((c) => csvField(row[c])).join(","));
  }
  const blob = new Blob([rows.join("\n") + "\n"], {type: "text/csv"});
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = "answers-" + TEST.test_id + "-" + listener + ".csv";
  document.body.appendChild(link); link.click(); link.remove();
}

$("begin").addEventListener("click", begin);
$("listener").addEventListener("keydown", (e) => { if (e.key === "Enter") begin(); });
$("download").addEventListener("click", download);
</script>
</body></html>
"""
