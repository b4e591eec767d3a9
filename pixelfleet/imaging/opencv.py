"""OpenCV, imported where face crops and the JPEG fast shrink need it (never at start-up: it
adds a tenth of a second and about 20 MB to a process), set to one thread.

A worker runs one task per process and as many processes as there are cores; OpenCV's own
thread pool would otherwise start as many threads again in each of them."""

from __future__ import annotations

import cv2 as cv2

THREADS = 1
cv2.setNumThreads(THREADS)
