"""The add-on's core: plain Python, no ``bpy``.

NOTE: nothing in this package may import ``bpy``. It runs on worker threads and
in tests without Blender; the Blender layer (``..blender``) calls into it.
"""
