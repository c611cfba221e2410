"""Where clips come from: embedded generators (digits, drums) and folders of audio files.

``audiogan.data`` is the front door (``load_dataset``, caching, batches); the modules here make or
read the clips: ``espeak`` (eSpeak NG through the ``espeakng-loader`` wheel), ``digits``,
``drums`` and ``folders`` (recursive, streamed reading that survives bad files, SC09 / Speech
Commands layouts). This package imports nothing heavy, so the speech worker processes start fast.
"""
