"""Derivative URLs (images on demand): a URL an account signs binding one of its stored images
to one of its presets, whose first read derives the image and every later read serves it."""
