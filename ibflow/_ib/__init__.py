"""The only package that imports ib_async."""
