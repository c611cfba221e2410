"""Blind listening tests: design (:mod:`.design`), MUSHRA items (:mod:`.mushra`), answers that survive
a crash (:mod:`.answers`), analysis (:mod:`.analysis`), a portable test page (:mod:`.page`), notebook
widgets (:mod:`.widgets`), tests built from run folders (:mod:`.build`) and the latent-space explorer
(:mod:`.latent`).

A test lives in one folder, by default ``runs/NAME/listening/``:
```
listening/test.json     the design: clips (with their hidden source and label) and items, in order
listening/clips/        each clip as cNNN.wav; the names say nothing about where a clip comes from
listening/answers.csv   one row per answer, appended and fsync'ed the moment it is given
listening/test.html     the same test as one self-contained page (audio embedded, no server)
listening/analysis.json, analysis.png   what the answers say
```
Items are of five tasks: ``real_or_fake`` (forced choice), opinion scores from 1 to 5 for
``quality``, ``understanding`` (how easy it is to tell what a clip is) and ``diversity`` (of a
group of clips from one source), and ``label`` ("which class is this?") for clips whose class is
known. Clips come from one or several sources (runs, real data), drawn with a seed: as many real
clips as generated ones, so a listener who cannot tell them apart scores 50%, and real clips spread
over the classes. A listener's next item is the first in the test's order without an answer from
them, so a session rebuilt after a kernel restart continues where the last one stopped.

A MUSHRA test (ITU-R BS.1534-3, :func:`create_mushra`, :func:`build_mushra_from_run` for a vocoder
run) compares systems on the same clips: each item plays an open reference and, under letters in a
seeded order, the hidden reference, a low-pass anchor and each system, each rated 0 to 100; its
answers are one row per rated clip (column ``clip``), analysed per condition with 95% t intervals
and post-screened (a listener who rates the hidden reference under 90 in more than 15% of items).
"""

from audiogan.listening.analysis import (  # noqa: F401
    analyse,
    mean_interval,
    mushra_table,
    plot_analysis,
    post_screen,
    scored_answers,
    tables_html,
    wilson_interval,
    write_analysis,
)
from audiogan.listening.answers import (  # noqa: F401
    ListeningSession,
    append_answers,
    check_listener,
    import_answers,
    read_answers,
)
from audiogan.listening.build import (  # noqa: F401
    TONE_REGISTERS,
    build_from_runs,
    build_mushra_from_run,
    check_notebook_parameters,
    measured_labels,
    real_labels,
    test_folder,
    tone_register,
)
from audiogan.listening.design import (  # noqa: F401
    ANSWER_COLUMNS,
    ANSWERS_FILE,
    CLIP_COLUMN,
    GENERATED,
    MUSHRA,
    OPINION_TASKS,
    PAGE_FILE,
    QUESTIONS,
    REAL,
    TASKS,
    TEST_FILE,
    ListeningTest,
    Source,
    check_answer,
    check_tasks,
    clip_path,
    create_test,
    design_test,
    folder_path,
    load_test,
    write_test,
)
from audiogan.listening.mushra import (  # noqa: F401
    ANCHOR,
    HIDDEN_REFERENCE,
    REFERENCE,
    anchor_cutoff,
    create_mushra,
    design_mushra,
    lowpass,
)
from audiogan.listening.page import (  # noqa: F401
    PAGE_TEMPLATE,
    export_html,
)
from audiogan.listening.widgets import (  # noqa: F401
    session_widget,
)
