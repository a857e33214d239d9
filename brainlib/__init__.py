"""brainlib: reproduction package for five attention-based medical imaging papers.

Papers (keys used everywhere: claims, outputs, notebooks):
  yin2024, lin2021, he2024, wang_drct2, pandiyaraju2024 -- see docs and ../shared/papers.
Importing brainlib changes no global state (no warning filters, no seeds).
"""

__version__ = "0.1.0"

PAPERS: tuple[str, ...] = ("he2024", "wang_drct2", "yin2024", "lin2021", "pandiyaraju2024")
