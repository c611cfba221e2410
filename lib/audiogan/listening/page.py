"""The test as one self-contained HTML page: clips embedded, answers kept in the browser and saved as CSV."""

from __future__ import annotations

import base64
import html
import json
import os
from pathlib import Path

from audiogan.files import atomic_write_text
from audiogan.listening.design import ANSWER_COLUMNS, PAGE_FILE, clip_path, folder_path, load_test


# ---------------------------------------------------------------------------- the portable page
def export_html(
    folder: str | os.PathLike, path: str | os.PathLike | None = None, title: str = "Listening test",
) -> Path:
    """The test as one HTML file: every clip embedded as a base64 WAV, no script or style from
    anywhere else, answers kept in the browser (so a reload loses nothing) and saved with a button
    as a CSV file in the format of ``answers.csv``, for :func:`import_answers`."""
    folder = folder_path(folder)
    test = load_test(folder)
    audio = {}
    for clip in test.clips:
        wav = clip_path(folder, clip["id"])
        if not wav.is_file():
            raise FileNotFoundError(f"{wav} is missing: build the test again (create_test) to write its clips.")
        audio[clip["id"]] = "data:audio/wav;base64," + base64.b64encode(wav.read_bytes()).decode("ascii")
    payload = test.public() | {"audio": audio, "columns": list(ANSWER_COLUMNS)}
    data = json.dumps(payload).replace("</", "<\\/")
    page = PAGE_TEMPLATE.replace("__TITLE__", html.escape(title)).replace("__DATA__", data)
    path = folder / PAGE_FILE if path is None else Path(path)
    atomic_write_text(path, page)
    return path


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

// As answers.csv: a value a spreadsheet would run as a formula gets a leading ' (import_answers removes it).
function csvField(v) {
  v = String(v);
  if (/^[=+\-@\t\r]/.test(v) || /^'[=+\-@\t\r']/.test(v)) v = "'" + v;
  return /[",\n\r]/.test(v) ? '"' + v.replace(/"/g, '""') + '"' : v;
}

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
