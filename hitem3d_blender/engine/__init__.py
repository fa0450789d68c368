"""The part of the Blender layer that runs work: tasks, calls, files, the journal,
the timer and the import step.

NOTE: nothing here imports the user interface (preferences, panels, operators,
the task list, reports). What the interface needs to learn leaves through the
callbacks in ``state.Hooks``; what it decides (auto-import, the size limit, the
settings to resume with) comes in through them too. ``session`` installs them.

Modules, one job each:

- ``state``: the session's state and the hooks.
- ``files``: where results, covers and the journal live; the cache.
- ``history``: reading and saving the journal.
- ``control``: starting, cancelling and removing work.
- ``import_step``: where a finished download becomes objects in the scene.
- ``timer``: the main-thread consumer of worker results.
- ``batch``: background mode (no event loop) drives the timer itself.
"""
