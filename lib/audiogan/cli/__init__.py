"""Command-line entry points: ``python -m audiogan.cli.demo``, ``.sweep``, ``.distributed``. Each sets the
process-wide XLA flags (:func:`audiogan.xla.set_process_flags`) before JAX starts computing."""
